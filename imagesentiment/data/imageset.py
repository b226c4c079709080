"""Labelled images as a table: :class:`ImageSet`, the :class:`DataError` every data problem raises, and the
checks of file names the sources share (the names themselves: :mod:`.constants`). The sources (:mod:`.sources`) and the video frames
(:mod:`.frames`) build on it.

An ``ImageSet`` is a pandas table with at least the columns ``path`` (absolute)
and ``label`` (a class name), plus the ordered class names the model predicts.
A data set may bring only some of the classes (the Twitter set has no
``neutral``); the model still gets one output per class.
"""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .constants import SENTIMENTS, UNREAD_IMAGE_EXTENSIONS


def is_number(value: object) -> bool:
    """``value`` is a real number (a NumPy one too), not a bool: what a numeric source option must be."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def unread_files(paths: Iterable[Path]) -> list[Path]:
    """The photos among ``paths`` in formats that are not read (HEIC, TIFF, raw ...)."""
    return [path for path in paths if path.suffix.lower() in UNREAD_IMAGE_EXTENSIONS and path.is_file()]


def unread_images(folder: str | os.PathLike, paths: Iterable[Path]) -> str:
    """A note on the photos among ``paths`` (those under ``folder``) in formats that are not read, or ``""``."""
    counts: dict[str, int] = {}
    for path in unread_files(paths):
        counts[path.suffix.lower()] = counts.get(path.suffix.lower(), 0) + 1
    if not counts:
        return ""
    listed = ", ".join(f"{count} {suffix}" for suffix, count in sorted(counts.items()))
    return (f"{folder}: {sum(counts.values())} photos left out, in formats not read ({listed}); "
            "convert them to JPEG or PNG to use them")

def miscased(names: Iterable[str], classes: Sequence[str]) -> list[str]:
    """The ``names`` that are one of ``classes`` but for upper and lower case (``Positive`` for ``positive``)."""
    lower = {c.lower() for c in classes}
    return [n for n in names if n not in classes and n.lower() in lower]


class DataError(ValueError):
    """A data set cannot be used as given; the message names the file and the problem."""


@dataclass
class ImageSet:
    """Labelled images: ``frame`` has ``path`` and ``label`` columns; ``classes`` is the output order;
    ``left_out``: the files the source found and did not use, each with why (:func:`check_set` lists them
    with the files that do not decode)."""

    frame: pd.DataFrame
    classes: tuple[str, ...] = SENTIMENTS
    notes: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = {"path", "label"} - set(self.frame.columns)
        if missing:
            raise DataError(f"an ImageSet table needs the columns {sorted(missing)}")
        unknown = sorted(set(self.frame["label"]) - set(self.classes))
        if unknown:
            raise DataError(f"labels {unknown} are not in the class list {list(self.classes)}")
        self.frame = self.frame.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def label_ids(self) -> "pd.Series":
        """Integer class index of each row, in the order of ``classes``."""
        return self.frame["label"].map({c: i for i, c in enumerate(self.classes)}).astype("int32")

    def counts(self) -> dict[str, int]:
        """Images per class, every class listed (zero for absent ones)."""
        counts = self.frame["label"].value_counts()
        return {c: int(counts.get(c, 0)) for c in self.classes}

    def subset(self, rows: Sequence[int]) -> "ImageSet":
        """The rows at the given positions, same classes."""
        return ImageSet(self.frame.iloc[list(rows)], self.classes, list(self.notes), list(self.left_out))

    def with_classes(self, classes: Sequence[str], source: str | os.PathLike) -> "ImageSet":
        """The same images with ``classes`` as the output order, labels matched by name (a folder's
        classes come sorted, which need not be the order wanted); a label outside ``classes`` is an
        error naming ``source``."""
        unknown = sorted(set(self.frame["label"]) - set(classes))
        if unknown:
            raise DataError(f"{source}: labels {unknown} are not among the classes {list(classes)}")
        return ImageSet(self.frame, tuple(classes), list(self.notes), list(self.left_out))
