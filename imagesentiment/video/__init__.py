"""Videos: frames sampled and scored, faces followed, and a timeline of the sentiment over time."""
from typing import Any

__all__ = ["score_video"]


def __getattr__(name: str) -> Any:
    if name == "score_video":
        from .score import score_video
        return score_video
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
