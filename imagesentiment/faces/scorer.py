"""The faces of photos, answered by a faces model: each face the detector finds (:mod:`.detect`)
cut out as a square with a margin around its box, padded where it reaches past the photo's edge (the face
stays centred, not shifted), in greyscale at the faces model's input size, as FER-2013's faces are; and
its row of answers (:func:`imagesentiment.table.columns.face_answers`), after its photo's
(:func:`with_face_rows`, the one place a photo's row and its faces' rows are put together). A faces scorer wraps
the photos' predictor (:func:`face_scorer`); the predictors know nothing of faces.

A box smaller than :data:`MIN_FACE` pixels is left out with a note naming the photo: a face that small
holds too little of an expression to read; larger ones smaller than the model's input are scaled up.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import PIL.Image
import PIL.ImageDraw

from ..contract import shipped_model
from ..data.constants import MAX_BYTES
from ..inference.predictors import Image, Predictor, SavedModelPredictor, as_list, original_pixels
from ..table.columns import BOX, FACE, FACE_SCORE, face_answers
from .detect import MIN_SCORE, Face, detect_faces, detectors

MARGIN = 0.25  # share of the box's side added on every side: FER-2013's faces show the whole head
MIN_FACE = 16  # pixels: a box smaller on either side is left out

# float pixels (B, H, W, 3) -> "probabilities" (B, classes) and, where asked for, "heatmap" (B, H, W)
Run = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def face_crop(photo: np.ndarray, face: Face, size: Sequence[int], margin: float = MARGIN) -> np.ndarray:
    """Float32 ``(H, W, 3)`` greyscale pixels (the grey repeated in each channel, as the decoder makes a
    greyscale file) of the square around ``face`` in ``photo`` (RGB, ``(h, w, 3)``), its side the box's
    longer side and ``margin`` of it on every side, at ``size``; where the square reaches past the photo's
    edge, the edge's pixels are repeated."""
    side = max(1, round(max(face.width, face.height) * (1 + 2 * margin)))
    left = round(face.left + face.width / 2 - side / 2)
    top = round(face.top + face.height / 2 - side / 2)
    height, width = photo.shape[:2]
    inside = photo[min(max(top, 0), height - 1):max(min(top + side, height), 1),
                   min(max(left, 0), width - 1):max(min(left + side, width), 1)]
    padding = ((max(0, -top), side - inside.shape[0] - max(0, -top)),
               (max(0, -left), side - inside.shape[1] - max(0, -left)), (0, 0))
    square = np.pad(np.asarray(inside, np.uint8), padding, mode="edge")
    grey = PIL.Image.fromarray(square).convert("L").resize((int(size[1]), int(size[0])), PIL.Image.BILINEAR)
    return np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=-1)


def find_faces(photo: np.ndarray, name: str, notes: list[str], min_score: float = MIN_SCORE) -> list[Face]:
    """The faces :func:`~imagesentiment.detect.detect_faces` finds in ``photo`` with a score of at least
    ``min_score``; a box smaller than :data:`MIN_FACE` is left out, and a note naming ``name`` (the photo) added
    to ``notes`` says so."""
    faces = []
    for face in detect_faces(photo, min_score):
        if min(face.width, face.height) < MIN_FACE:
            notes.append(f"{name}: a face of {face.width}x{face.height} px at ({face.left}, {face.top}) left out: "
                         f"smaller than {MIN_FACE} px, too little to read an expression from")
        else:
            faces.append(face)
    return faces


def draw_boxes(photo: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """``photo`` (RGB) with each face's box drawn and numbered as its row is (0, 1, ...)."""
    picture = PIL.Image.fromarray(np.asarray(photo, np.uint8))
    draw, line = PIL.ImageDraw.Draw(picture), max(2, round(max(picture.size) / 300))
    for number, face in enumerate(faces):
        box = [face.left, face.top, face.left + face.width, face.top + face.height]
        draw.rectangle(box, outline=(255, 255, 0), width=line)
        draw.text((face.left + line + 1, face.top + line), str(number), fill=(255, 255, 0),
                  font_size=max(10, face.height // 5))
    return np.asarray(picture)


@dataclass
class FaceAnswers:
    """One photo's faces: the boxes, what the faces model saw of them, their rows, and their heat maps
    (None unless asked for)."""

    faces: list[Face]
    crops: np.ndarray
    table: pd.DataFrame
    heatmaps: np.ndarray | None


class FaceScorer:
    """A faces model's answers on the faces of photos, in the order of ``classes`` (the photos' model's):
    ``run`` answers float pixels at ``size``; ``face_classes`` are its classes, the same names in any order
    (else refused, naming ``source``, the faces model)."""

    def __init__(self, run: Run, size: Sequence[int], face_classes: Sequence[str], classes: Sequence[str],
                 source: str, min_score: float = MIN_SCORE) -> None:
        if sorted(face_classes) != sorted(classes):
            raise ValueError(f"{source}: a faces model with the classes {list(face_classes)}; the photos' model has "
                             f"{list(classes)}: give a faces model with the same classes")
        if not 0 < min_score <= 1:
            raise ValueError(f"min_score (--min-face-score): the detector's score a face needs, in (0, 1], not "
                             f"{min_score}")
        self.run, self.size, self.classes = run, tuple(int(s) for s in size), list(classes)
        self.min_score = min_score
        self.order = [list(face_classes).index(c) for c in classes]
        detectors()  # loaded here, not in the threads that call crops()

    def crops(self, name: str, photo: np.ndarray, notes: list[str]) -> tuple[list[Face], np.ndarray]:
        """The faces of one photo (RGB pixels at its own size; ``name`` names it in the notes on faces left
        out, added to ``notes``) and what the faces model sees of them; threads may call it at once."""
        photo = photo if photo.dtype == np.uint8 else np.clip(np.round(photo), 0, 255).astype(np.uint8)
        faces = find_faces(photo, name, notes, self.min_score)
        return faces, (np.stack([face_crop(photo, face, self.size) for face in faces]) if faces
                       else np.zeros([0, *self.size, 3], np.float32))

    def score(self, found: Sequence[tuple[list[Face], np.ndarray]]) -> list[FaceAnswers]:
        """The answers on photos' faces and crops (:meth:`crops`), in one batch."""
        every = np.concatenate([crops for _, crops in found]) if found else np.zeros([0, *self.size, 3], np.float32)
        result = self.run(every) if len(every) else {}
        probabilities = np.asarray(result.get("probabilities", np.zeros([0, len(self.classes)])))[:, self.order]
        heatmaps = np.asarray(result["heatmap"]) if "heatmap" in result else None
        ends = np.cumsum([len(faces) for faces, _ in found])
        return [FaceAnswers(faces, crops, face_answers(probabilities[end - len(faces):end], self.classes,
                                                       [(f.left, f.top, f.width, f.height) for f in faces],
                                                       [f.score for f in faces]),
                            None if heatmaps is None else heatmaps[end - len(faces):end])
                for (faces, crops), end in zip(found, ends)]

    def __call__(self, photos: Sequence[tuple[str, np.ndarray]], notes: list[str]) -> list[FaceAnswers]:
        """The faces of each ``(name, photo)`` (:meth:`crops`), scored in one batch (:meth:`score`)."""
        return self.score([self.crops(name, np.asarray(photo), notes) for name, photo in photos])


def face_scorer(predictor: Predictor, faces: Predictor | None = None, explain: bool = False,
                min_score: float | None = None) -> FaceScorer:
    """The faces of the photos ``predictor`` answers, answered by ``faces`` (default: the shipped faces model,
    ``exported_models/faces``) in ``predictor``'s classes; with heat maps if ``explain``; only the boxes the
    detector scores at least ``min_score`` (None: its own threshold, :data:`~.detect.MIN_SCORE`)."""
    model = faces if faces is not None else SavedModelPredictor(shipped_model("faces"))
    run = model.explainer() if explain else (lambda pixels: {"probabilities": model.probabilities(pixels)})
    return FaceScorer(run, model.image_size, model.class_names, predictor.class_names, model.source,
                      MIN_SCORE if min_score is None else min_score)


def with_face_rows(rows: pd.DataFrame, found: Mapping[int, FaceAnswers], copied: Sequence[str] = ()) -> pd.DataFrame:
    """``rows`` (one per photo) with each photo's faces' rows after its own: ``found[i].table`` after the row at
    position ``i``, each with that row's index label and its ``copied`` columns (the path, a CSV's columns)."""
    blocks = []
    for i in range(len(rows)):
        blocks.append(rows.iloc[[i]])
        if i in found:
            block = found[i].table.assign(**{column: rows[column].iloc[i] for column in copied})
            blocks.append(block.set_axis([rows.index[i]] * len(block)))
    return pd.concat(blocks) if blocks else rows


def predict_with_faces(predictor: Predictor, images: Image | Sequence[Image], faces: Predictor | None = None,
                       batch_size: int = 32, errors: str = "raise", max_bytes: int = MAX_BYTES,
                       min_score: float = MIN_SCORE) -> pd.DataFrame:
    """:meth:`Predictor.predict <imagesentiment.inference.Predictor.predict>`'s table with, after each scored
    image's row, a row per face found in it: ``face`` (0, 1, ...; none on the image's own row), its box
    (``box_left``, ``box_top``, ``box_width``, ``box_height``, in pixels of the image), the detector's
    ``face_score`` (only boxes scored at least ``min_score``) and the answers of ``faces`` (default: the shipped
    faces model); a face row has its image's index. Why a face was left out (too small) is in
    ``table.attrs["notes"]``. ``errors`` and ``max_bytes``: as for ``predict``."""
    items = as_list(images)
    table = predictor.predict(images, batch_size, errors, max_bytes)
    scorer, notes = face_scorer(predictor, faces, min_score=min_score), []
    found = {}
    for i in np.flatnonzero(table["label"].notna().to_numpy()):  # one photo at a time at its own size
        name = str(items[i]) if isinstance(items[i], (str, os.PathLike)) else f"image {i} of the batch"
        found[i] = scorer([(name, original_pixels(items[i], i, max_bytes))], notes)[0]
    merged = with_face_rows(table, found).reindex(columns=[FACE, *BOX, FACE_SCORE, *table.columns])
    merged.attrs["notes"] = notes
    return merged
