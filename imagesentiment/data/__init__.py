"""Data: sources -> file checks -> splits -> ``tf.data`` pipeline.

The file checks and the pipeline run on TensorFlow; their names load it on first use, so that reading a
data set or a configuration does not start TensorFlow.
"""
from .imageset import IMAGE_EXTENSIONS, SENTIMENTS, DataError, ImageSet, InputFileError
from .sources import (FER_TO_SENTIMENT, SOURCES, detect_format, fer2013, from_folder, from_manifest, from_votes,
                      load_source, majority_labels, oasis, twitter)
from .splits import Split, k_fold, train_val_test_split
from .synthetic import make_synthetic_set

CHECKS = ("CheckedSet", "check_image", "check_images", "check_set")
PIPELINE = ("augment", "check_pixel_range", "decode_and_resize", "decode_or_reason", "make_dataset", "rgb_array")


def __getattr__(name: str) -> object:
    """The names of the TensorFlow modules, imported when first asked for."""
    if name in CHECKS:
        from . import checks
        return getattr(checks, name)
    if name in PIPELINE:
        from . import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FER_TO_SENTIMENT", "IMAGE_EXTENSIONS", "SENTIMENTS", "CheckedSet", "DataError", "ImageSet", "InputFileError",
    "SOURCES", "Split", "augment", "check_image", "check_images", "check_pixel_range", "check_set",
    "decode_and_resize", "decode_or_reason", "detect_format",
    "fer2013", "from_folder", "from_manifest", "from_votes", "k_fold", "load_source", "majority_labels",
    "make_dataset", "make_synthetic_set", "oasis", "rgb_array", "train_val_test_split", "twitter",
]
