"""Stratified, seeded splits in which exact duplicate images never straddle two sides.

Rows with the same content hash (the ``sha1`` column that :func:`check_set`
adds), or the same ``group`` (the clip of a video frame), form one group;
groups, not rows, are assigned to the sides, stratified by their label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from .imageset import DataError, ImageSet


@dataclass
class Split:
    """The three sides of a train/validation/test split."""

    train: ImageSet
    validation: ImageSet
    test: ImageSet


def _groups(images: ImageSet) -> tuple[np.ndarray, pd.Series]:
    """Group id per row, and each group's label (its most common one).

    Rows group by the ``group`` column where there is one (the clip a video frame
    came from), else by content hash, else each row stands alone.
    """
    frame = images.frame
    column = next((c for c in ("group", "sha1") if c in frame.columns), None)
    key = frame[column] if column else pd.Series(np.arange(len(frame)), index=frame.index)
    codes, _ = pd.factorize(key)
    labels = frame["label"].groupby(codes).agg(lambda s: s.mode().iloc[0])
    return codes, labels


def _require_classes(images: ImageSet, parts: int, what: str) -> None:
    counts = {k: v for k, v in images.counts().items() if v}
    if len(counts) < 2:
        raise DataError(f"{what} needs at least two classes with images; found {counts or 'no images'}")
    if len(images) < parts:
        raise DataError(f"{what} needs at least {parts} images; found {len(images)}")


def _rows(codes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(codes, groups))


def _stratify(labels: pd.Series) -> pd.Series | None:
    """Stratify by label when every class has at least two groups; else split at random."""
    return labels if labels.value_counts().min() >= 2 else None


def train_val_test_split(images: ImageSet, validation: float = 0.15, test: float = 0.15,
                         seed: int = 0, validation_seed: int | None = None) -> Split:
    """Split by group, stratified by label, reproducibly from ``seed``.

    ``validation_seed`` (default ``seed``) draws the validation side alone: other values keep
    the same test side and carve another validation side from the rest.
    """
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ValueError(f"validation ({validation}) and test ({test}) must be fractions summing below 1")
    _require_classes(images, 3, "a train/validation/test split")
    codes, labels = _groups(images)
    ids = labels.index.to_numpy()
    units = "clips" if "group" in images.frame else "images"
    too_few = (f"{len(ids)} {units} are too few for a {validation:.0%} validation and {test:.0%} test side "
               f"that keep every class on the training side: add {units}, or lower split.validation and split.test")
    try:
        rest, test_ids = (ids, ids[:0]) if test == 0 else train_test_split(
            ids, test_size=test, random_state=seed, stratify=_stratify(labels))
        train_ids, val_ids = (rest, rest[:0]) if validation == 0 else train_test_split(
            rest, test_size=validation / (1 - test), random_state=seed if validation_seed is None else validation_seed,
            stratify=_stratify(labels.loc[rest]))
    except ValueError as exc:  # scikit-learn: a side smaller than the number of classes cannot be stratified
        raise DataError(f"{too_few} ({exc})") from None
    split = Split(*(images.subset(_rows(codes, g)) for g in (train_ids, val_ids, test_ids)))
    untrained = [name for name, count in split.train.counts().items() if count == 0 and images.counts()[name]]
    if untrained:
        raise DataError(f"{too_few}; the training side would have no {', '.join(untrained)} image")
    return split


def k_fold(images: ImageSet, folds: int = 5, seed: int = 0) -> Iterator[tuple[ImageSet, ImageSet]]:
    """Stratified k-fold by group: yields ``(train, held_out)`` for each fold."""
    if folds < 2:
        raise ValueError(f"k-fold needs at least 2 folds, not {folds}")
    _require_classes(images, folds, f"{folds}-fold cross-validation")
    codes, labels = _groups(images)
    smallest = labels.value_counts().min()
    if smallest < folds:
        raise DataError(f"{folds}-fold cross-validation needs at least {folds} distinct images per "
                        f"class; the smallest class has {smallest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    ids = labels.index.to_numpy()
    for train_pos, held_pos in splitter.split(ids, labels.to_numpy()):
        yield images.subset(_rows(codes, ids[train_pos])), images.subset(_rows(codes, ids[held_pos]))
