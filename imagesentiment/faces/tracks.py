"""Faces followed through the sampled frames of a video: each face joins the track whose last box overlaps
it most, or starts one. No TensorFlow here.

Boxes are ``(left, top, width, height)`` in pixels. A face joins a track when their boxes overlap by more
than :data:`MIN_OVERLAP` (intersection over union) and the track was seen in one of the last
:data:`MAX_MISSED` + 1 sampled frames; the pairs are made greedily, the most overlapping first, each track
taking at most one face of a frame. Tracks are numbered 0, 1, ... in the order they first appear (within a
frame, in the order of its faces). Nothing identifies a person: a face that leaves the frame for longer, or
moves further than its box's size between two samples, starts a new track.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MIN_OVERLAP = 0.3  # intersection over union above which a face continues a track
MAX_MISSED = 3  # sampled frames in a row a track may go unseen and still be continued


def overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union ``(len(boxes), len(others))`` of two arrays of boxes ``(N, 4)``."""
    boxes, others = np.asarray(boxes, float).reshape(-1, 1, 4), np.asarray(others, float).reshape(1, -1, 4)
    low = np.maximum(boxes[..., :2], others[..., :2])
    high = np.minimum(boxes[..., :2] + boxes[..., 2:], others[..., :2] + others[..., 2:])
    shared = np.clip(high - low, 0, None).prod(axis=-1)
    union = boxes[..., 2:].prod(axis=-1) + others[..., 2:].prod(axis=-1) - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


@dataclass
class Track:
    """A track's number, its last box and the sample (position among the sampled frames) it was last seen in."""

    number: int
    box: np.ndarray
    seen: int


def pairs(scores: np.ndarray, min_overlap: float) -> list[tuple[int, int]]:
    """``(row, column)`` pairs of ``scores`` above ``min_overlap``, the highest first, each row and column
    used once; ties go to the lower row, then the lower column."""
    rows, columns = np.nonzero(scores > min_overlap)
    order = np.lexsort((columns, rows, -scores[rows, columns]))
    taken_rows, taken_columns, chosen = set(), set(), []
    for row, column in zip(rows[order].tolist(), columns[order].tolist()):
        if row not in taken_rows and column not in taken_columns:
            taken_rows.add(row)
            taken_columns.add(column)
            chosen.append((row, column))
    return chosen


def link(frames: Sequence[np.ndarray], min_overlap: float = MIN_OVERLAP,
         max_missed: int = MAX_MISSED) -> list[np.ndarray]:
    """The track number of each face of each sampled frame: ``frames`` holds each frame's boxes ``(N, 4)``
    (``N`` may be 0), the result each frame's numbers ``(N,)``, in the same order."""
    live: list[Track] = []  # the tracks that may still be continued
    numbers, started = [], 0
    for sample, boxes in enumerate(frames):
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        live = [track for track in live if sample - track.seen <= max_missed + 1]
        scores = overlaps(np.array([track.box for track in live]).reshape(-1, 4), boxes)
        found = np.full(len(boxes), -1)
        for row, column in pairs(scores, min_overlap):
            track = live[row]
            track.box, track.seen, found[column] = boxes[column], sample, track.number
        for column in np.flatnonzero(found < 0):
            live.append(Track(started, boxes[column], sample))
            found[column], started = started, started + 1
        numbers.append(found)
    return numbers
