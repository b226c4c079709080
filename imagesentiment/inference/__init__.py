"""Inference: a model in any form it ships in (Keras, SavedModel, TFLite) loaded by one ``load()``, and answering
probabilities, tables and one-pass heat maps. Each name is imported when first asked for."""
from typing import Any

LOAD = ("SHIPPED_MODELS", "ModelFileError", "default_model", "load", "load_keras", "rebuild_keras", "resolve")
PREDICTORS = ("Image", "KerasPredictor", "Predictor", "SavedModelPredictor", "TFLitePredictor", "to_pixels")
__all__ = [*LOAD, *PREDICTORS]


def __getattr__(name: str) -> Any:
    if name in LOAD:
        from . import loader as module
    elif name in PREDICTORS:
        from . import predictors as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
