"""Faces: boxes from the BlazeFace detectors, each face's crop answered by a faces model in rows after its
photo's, and faces followed across a video's frames (``tracks``, no TensorFlow). Each name is imported when
first asked for."""
from typing import Any

SCORER = ("MIN_FACE", "FaceScorer", "face_crop", "face_scorer", "find_faces", "predict_with_faces", "with_face_rows")
__all__ = [*SCORER, "detect_faces", "link"]


def __getattr__(name: str) -> Any:
    if name in SCORER:
        from . import scorer as module
    elif name == "detect_faces":
        from . import detect as module
    elif name == "link":
        from . import tracks as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
