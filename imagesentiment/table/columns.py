"""The predictions table: its columns (:func:`columns`), the rows every writer builds the same way
(:func:`answers`; a face's, :func:`face_answers`), and the files ``predict`` writes (CSV, JSON Lines or
Parquet) with, beside it, the record of the model that began it. ``predict``, ``evaluate``, ``explain``,
``video`` and the Beam pipeline write it and ``report`` reads it; no TensorFlow here."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas loads where a table is built: collecting inputs never waits for it
    import pandas as pd

def answers(probabilities: np.ndarray, classes: Sequence[str], index: Sequence | pd.Index | None = None,
            ratings: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``label``, ``confidence``, one probability column per class and one per rating (``valence``,
    ``arousal``: ``ratings``, where the model gives them), a row per image, from probabilities ``(N, classes)``;
    a row of NaN (an image that could not be scored) gets no label and no confidence."""
    import pandas as pd

    classes = list(classes)
    probabilities = np.asarray(probabilities, np.float32).reshape(-1, len(classes))
    scored = ~np.isnan(probabilities).any(axis=1)
    top = np.nan_to_num(probabilities, nan=0.0).argmax(axis=1)
    table = pd.DataFrame(probabilities, columns=classes, index=index)
    table.insert(0, "confidence", np.where(scored, probabilities.max(axis=1, initial=-np.inf), np.nan)
                    .astype(np.float32))
    table.insert(0, "label", [classes[k] if ok else None for k, ok in zip(top, scored)])
    for name, values in (ratings or {}).items():
        table[name] = np.asarray(values, np.float32).reshape(-1)
    return table


FACE = "face"  # a face's number in its photo (0: the one the detector is surest of); none on the photo's own row
BOX = ("box_left", "box_top", "box_width", "box_height")  # the face's box, in pixels of the photo
FACE_SCORE = "face_score"  # how sure the face detector is that the box holds a face, in [0, 1]


def columns(classes: Sequence[str], faces: bool = False, ratings: Sequence[str] = (),
            heatmap: bool = False) -> list[str]:
    """The columns ``predict`` writes before those carried from a CSV of inputs: ``path``, with ``faces``
    :data:`FACE`, the :data:`BOX` columns and :data:`FACE_SCORE`, ``label``, ``confidence``, one per class, one
    per rating, with ``heatmap`` (``--explain``) ``heatmap``, then ``error``."""
    return ["path", *((FACE, *BOX, FACE_SCORE) if faces else ()), "label", "confidence", *classes, *ratings,
            *(("heatmap",) if heatmap else ()), "error"]


def face_answers(probabilities: np.ndarray, classes: Sequence[str], boxes: Sequence[Sequence[int]],
                 scores: Sequence[float] = ()) -> pd.DataFrame:
    """The rows of one photo's faces: :data:`FACE` (0, 1, ...), the :data:`BOX` columns from ``boxes``
    (left, top, width, height each), :data:`FACE_SCORE` from the detector's ``scores`` (where given), then
    :func:`answers`."""
    import pandas as pd

    table = answers(probabilities, classes)
    values = {FACE: list(range(len(boxes))), **{name: [int(box[k]) for box in boxes] for k, name in enumerate(BOX)}}
    for position, (column, value) in enumerate(values.items()):
        table.insert(position, column, pd.Series(value, index=table.index, dtype=object))
    if len(scores) == len(boxes) and len(boxes):
        table.insert(len(values), FACE_SCORE, np.round(np.asarray(scores, np.float32), 4))
    return table


def largest_faces(per_frame: Sequence[pd.DataFrame], classes: Sequence[str]) -> pd.DataFrame:
    """A row per frame (or photo) from its faces' rows (:func:`face_answers`): ``faces``, how many were found,
    then the largest one's box and answers, each prefixed ``face_`` (empty where none was found)."""
    import pandas as pd

    kept = [faces.iloc[(faces[BOX[2]].astype(float) * faces[BOX[3]].astype(float)).to_numpy().argmax()]
            if len(faces) else pd.Series(dtype=object) for faces in per_frame]
    table = pd.DataFrame(kept, columns=[*BOX, "label", "confidence", *classes]).reset_index(drop=True)
    table = table.astype({**{column: "Int64" for column in BOX}, **{column: np.float32 for column in
                                                                     ["confidence", *classes]}}).add_prefix("face_")
    table.insert(0, "faces", [len(faces) for faces in per_frame])
    return table


def path_key(path: str | os.PathLike) -> str:
    """A file's ``path`` in the table: its name as text, one to one with the name's bytes, so that each file
    has its own row and heat-map files: a backslash is written ``\\\\``, a byte that is not UTF-8 (kept by
    Python as a surrogate, which no UTF-8 file takes) ``\\xe9``; other names as they are. :func:`key_path`
    reverses it."""
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def picture_name(key: str, method: str, part: str = "") -> str:
    """The name (without its ``.jpg``) of the heat-map pictures of the file whose row's ``path`` is ``key``
    (:func:`path_key`), drawn by ``method``: its stem and a hash of the key, as unique as the row, then ``part``
    (a face's ``-face0``) and the method: ``cat-a1d6a89f_gradcam``, the same from ``predict --explain`` and
    ``explain``."""
    return f"{Path(key).stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}{part}_{method}"


_ESCAPED = re.compile(rb"\\(\\|x[0-9a-f]{2})")


def key_path(key: str) -> str:
    """The file a :func:`path_key` names, as Python names it (a byte that is not UTF-8 as a surrogate)."""
    return os.fsdecode(_ESCAPED.sub(lambda m: b"\\" if m[1] == b"\\" else bytes([int(m[1][1:], 16)]),
                                    key.encode("utf-8", "surrogateescape")))


def photo_rows(table: pd.DataFrame) -> np.ndarray:
    """Which rows of a predictions table are photos' own rows (every row of a table without faces)."""
    if FACE not in table:
        return np.ones(len(table), bool)
    return (table[FACE].isna() | (table[FACE].astype(str) == "")).to_numpy()


def latest(table: pd.DataFrame) -> np.ndarray:
    """Which rows are of each path's last scoring: its last photo row and the rows after it (a photo
    scored again, such as one that could not be read before, supersedes its earlier rows, faces too)."""
    import pandas as pd

    order = pd.Series(np.arange(len(table)), index=table.index)
    last = order[photo_rows(table)].groupby(table["path"][photo_rows(table)]).max()
    return (order >= table["path"].map(last).fillna(-1)).to_numpy()


def answer_rows(probabilities: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """:func:`answers` as one dict of plain Python values per image (None where a row was not scored), for
    writers that stream rows one at a time."""
    table = answers(probabilities, classes)
    return table.astype(object).where(table.notna(), None).to_dict("records")


def model_record(out: Path) -> Path:
    """``OUT.model.json``, beside a predictions table: the record of the model that began it."""
    return out.with_name(out.name + ".model.json")
