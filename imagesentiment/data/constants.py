"""The names the data step and the command line share, with no import: the sentiments, the image and video
files read, the photo formats left out, and the largest image decoded (so that ``imagesentiment --help`` needs
neither pandas nor TensorFlow)."""

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
MAX_PIXELS = 64_000_000  # 8000 x 8000: larger images are refused (their declared size, before decoding)
MAX_BYTES = 256 * 2**20  # 256 MiB: larger input files are refused before they are read (check, predict --max-bytes)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# photo formats people have that TensorFlow's decoder does not read: left out of folders, and said so
UNREAD_IMAGE_EXTENSIONS: tuple[str, ...] = (".heic", ".heif", ".avif", ".tif", ".tiff", ".jxl", ".dng", ".cr2",
                                            ".nef", ".arw", ".psd", ".svg")
