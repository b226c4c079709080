"""Training: the pipeline configuration (no TensorFlow), the data it names prepared and split, the run directory,
the activation cache, callbacks, strategies, fitting and cross-validation. Each name is imported when first
asked for."""
from typing import Any

CONFIG = ("Config", "ConfigError", "load_config")
FIT = ("TrainingError", "build_model", "train")
__all__ = [*CONFIG, *FIT, "Run", "assess", "cross_validate", "load_overridden"]


def __getattr__(name: str) -> Any:
    if name in CONFIG:
        from . import config as module
    elif name in FIT:
        from . import fit as module
    elif name == "load_overridden":
        from . import overrides as module
    elif name == "Run":
        from . import run as module
    elif name == "cross_validate":
        from . import cv as module
    elif name == "assess":
        from . import assessment as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
