"""The predictions table: its columns, the rows every writer builds the same way (:func:`answers`), and
the files ``predict`` writes (CSV, JSON Lines or Parquet) with, beside it, the record of the model that
began it. ``predict``, ``evaluate``, ``explain``, ``video`` and the Beam pipeline write it and ``report``
reads it; no TensorFlow here."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


def answers(probabilities: np.ndarray, classes: Sequence[str], index: Sequence | pd.Index | None = None
            ) -> pd.DataFrame:
    """``label``, ``confidence`` and one probability column per class, a row per image, from probabilities
    ``(N, classes)``; a row of NaN (an image that could not be scored) gets no label and no confidence."""
    classes = list(classes)
    probabilities = np.asarray(probabilities, np.float32).reshape(-1, len(classes))
    scored = ~np.isnan(probabilities).any(axis=1)
    top = np.nan_to_num(probabilities, nan=0.0).argmax(axis=1)
    table = pd.DataFrame(probabilities, columns=classes, index=index)
    table.insert(0, "confidence", np.where(scored, probabilities.max(axis=1, initial=-np.inf), np.nan)
                    .astype(np.float32))
    table.insert(0, "label", [classes[k] if ok else None for k, ok in zip(top, scored)])
    return table


def answer_rows(probabilities: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """:func:`answers` as one dict of plain Python values per image (None where a row was not scored), for
    writers that stream rows one at a time."""
    table = answers(probabilities, classes)
    return table.astype(object).where(table.notna(), None).to_dict("records")


def model_record(out: Path) -> Path:
    """``OUT.model.json``, beside a predictions table: the record of the model that began it."""
    return out.with_name(out.name + ".model.json")
