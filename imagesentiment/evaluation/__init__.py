"""Evaluation: metrics with no model and no TensorFlow (``metrics``), and a model judged on labelled images
(``evaluate``). Each name is imported when first asked for."""
from typing import Any

METRICS = ("METRICS_FILE", "bootstrap_intervals", "classification_metrics", "ranking_metrics", "read_metrics", "summary")
EVALUATE = ("evaluate_model", "predict_probabilities", "predict_scores")
__all__ = [*METRICS, *EVALUATE]


def __getattr__(name: str) -> Any:
    if name in METRICS:
        from . import metrics as module
    elif name in EVALUATE:
        from . import evaluate as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
