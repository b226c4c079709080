"""imagesentiment: is a photo positive, neutral or negative, and where in it does that come from.

The package's folders are the steps of the data flow, each importing only those before it:
``data`` -> ``table`` -> ``models`` -> ``explain`` -> ``inference`` -> ``evaluation`` -> ``training`` ->
``export`` -> ``faces`` -> ``scoring`` -> ``video`` -> ``report`` -> ``cli`` (``docs/architecture.md``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["SENTIMENTS", "__version__", "load"]

if TYPE_CHECKING:
    from .data import SENTIMENTS
    from .inference import load


def __getattr__(name: str) -> Any:
    """``load`` and ``SENTIMENTS`` on first use, so that ``imagesentiment --help`` does not start TensorFlow."""
    if name == "load":
        from .inference import loader
        return loader.load
    if name == "SENTIMENTS":
        from .data import imageset
        return imageset.SENTIMENTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
