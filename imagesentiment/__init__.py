"""imagesentiment: is a photo positive, neutral or negative, and where in it does that come from."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["SENTIMENTS", "__version__", "load"]

if TYPE_CHECKING:
    from .data import SENTIMENTS
    from .inference import load


def __getattr__(name: str) -> Any:
    """``load`` and ``SENTIMENTS`` on first use, so that importing the package (``imagesentiment --help``,
    a mistyped option) does not start TensorFlow: 0.2 s instead of 4 s."""
    if name == "load":
        from .inference import load
        return load
    if name == "SENTIMENTS":
        from .data import SENTIMENTS
        return SENTIMENTS
    raise AttributeError(f"module 'imagesentiment' has no attribute {name!r}")
