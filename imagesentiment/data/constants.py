"""The names the data step and the command line share, with no import: the sentiments, the image and video
files read, the photo formats left out, the largest image decoded and the training augmentation's settings (so
that ``imagesentiment --help`` and a configuration's check need neither pandas nor TensorFlow)."""
from dataclasses import dataclass

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
MAX_PIXELS = 64_000_000  # 8000 x 8000: larger images are refused (their declared size, before decoding)
MAX_BYTES = 256 * 2**20  # 256 MiB: larger input files are refused before they are read (check, predict --max-bytes)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# photo formats people have that TensorFlow's decoder does not read: left out of folders, and said so
UNREAD_IMAGE_EXTENSIONS: tuple[str, ...] = (".heic", ".heif", ".avif", ".tif", ".tiff", ".jxl", ".dng", ".cr2",
                                            ".nef", ".arw", ".psd", ".svg")


@dataclass
class Augmentation:
    """How strongly training images are augmented (``train.augmentation``; a random mirror always)."""

    zoom: float = 0.2       # crop keeping 1 - zoom to all of the side, resized back (a shift and a zoom)
    jitter: float = 0.1     # brightness, contrast and saturation moved by up to this much
    rotation: float = 0.0   # rotated by up to this many degrees either way (edges reflected)
    erasing: float = 0.0    # the chance that a random rectangle (2-25 % of the image) is replaced by noise
