"""The predictions table: its columns and rows (``columns``), its file formats (``formats``) and the writer that
appends rows as they come and resumes (``journal``). No TensorFlow here; each name is imported when first asked
for, so that the command line lists the formats without loading pandas."""
from typing import Any

__all__ = ["answers", "columns", "face_answers", "photo_rows"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import columns as module
    return getattr(module, name)
