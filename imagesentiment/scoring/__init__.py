"""Scoring many files: what ``predict`` reads (``inputs``, no TensorFlow), a table written as it goes
(``batch``), and the same on Apache Beam (``beam``). Each name is imported when first asked for."""
from typing import Any

__all__ = ["collect_images", "predict_files"]


def __getattr__(name: str) -> Any:
    if name == "collect_images":
        from . import inputs as module
    elif name == "predict_files":
        from . import batch as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
