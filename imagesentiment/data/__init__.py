"""Data: sources -> file checks -> splits -> ``tf.data`` pipeline.

Importing the package reads nothing heavy: the shared names (:mod:`.constants`) come with it, and every other
name is imported when first asked for (an ``ImageSet`` loads pandas, the splits scikit-learn, the checks and
the pipeline TensorFlow), so that
``imagesentiment --help`` and a configuration's check answer at once.
"""
from typing import Any

from .constants import IMAGE_EXTENSIONS, SENTIMENTS

IMAGESET = ("DataError", "ImageSet", "InputFileError")
SOURCES_NAMES = ("FER_TO_SENTIMENT", "SOURCES", "detect_format", "fer2013", "from_folder", "from_manifest",
                 "from_votes", "load_source", "majority_labels", "oasis", "twitter")
SPLITS = ("Split", "k_fold", "train_val_test_split")
CHECKS = ("CheckedSet", "check_image", "check_images", "check_set")
PIPELINE = ("augment", "check_pixel_range", "decode_and_resize", "decode_or_reason", "make_dataset", "rgb_array")


def __getattr__(name: str) -> Any:
    """The names of the other modules, imported when first asked for."""
    if name in IMAGESET:
        from . import imageset as module
    elif name in SOURCES_NAMES:
        from . import sources as module
    elif name in SPLITS:
        from . import splits as module
    elif name in CHECKS:
        from . import checks as module
    elif name in PIPELINE:
        from . import pipeline as module
    elif name == "make_synthetic_set":
        from . import synthetic as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["IMAGE_EXTENSIONS", "SENTIMENTS", *IMAGESET, *SOURCES_NAMES, *SPLITS, *CHECKS, *PIPELINE,
           "make_synthetic_set"]
