"""Models: the backbone registry (no TensorFlow), EfficientNet-Lite, the CNN, sepnet, transfer and fused builders, and
the test-time views a model can carry into its export. Each name is imported when first asked for."""
from typing import Any

BUILD = ("LOGITS", "PREDICTIONS", "SmoothedCrossentropy", "average_models", "build_cnn", "build_sepnet",
         "build_transfer", "class_names", "ensemble_members", "find_target_layer", "frozen_cut", "score_model",
         "unfreeze_top")
VIEWS = ("model_views", "test_time_views", "with_views")
__all__ = ["BACKBONES", "Backbone", *BUILD, *VIEWS]


def __getattr__(name: str) -> Any:
    if name in ("BACKBONES", "Backbone"):
        from . import backbones as module
    elif name in BUILD:
        from . import build as module
    elif name in VIEWS:
        from . import views as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
