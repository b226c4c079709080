"""Data: sources -> file checks -> splits -> ``tf.data`` pipeline."""
from .checks import CheckedSet, check_image, check_images, check_set
from .pipeline import augment, check_pixel_range, decode_and_resize, decode_or_reason, make_dataset
from .sources import (FER_TO_SENTIMENT, IMAGE_EXTENSIONS, SENTIMENTS, DataError, ImageSet, SOURCES, detect_format,
                      fer2013, load_source,
                      from_folder, from_manifest, from_votes, majority_labels, oasis, twitter)
from .splits import Split, k_fold, train_val_test_split
from .synthetic import make_synthetic_set

__all__ = [
    "FER_TO_SENTIMENT", "IMAGE_EXTENSIONS", "SENTIMENTS", "CheckedSet", "DataError", "ImageSet",
    "SOURCES", "Split", "augment", "check_image", "check_images", "check_pixel_range", "check_set",
    "decode_and_resize", "decode_or_reason", "detect_format",
    "fer2013", "from_folder", "from_manifest", "from_votes", "k_fold", "load_source", "majority_labels",
    "make_dataset", "make_synthetic_set", "oasis", "train_val_test_split", "twitter",
]
