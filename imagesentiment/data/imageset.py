"""Labelled images as a table: :class:`ImageSet`, the :class:`DataError` every data problem raises, the
checks of file names the sources share (the names themselves: :mod:`.constants`), and the one check of every
input file before it is read (:func:`file_problem`, :func:`read_input`). The sources (:mod:`.sources`) and the video frames
(:mod:`.frames`) build on it.

An ``ImageSet`` is a pandas table with at least the columns ``path`` (absolute)
and ``label`` (a class name), plus the ordered class names the model predicts.
A data set may bring only some of the classes (the Twitter set has no
``neutral``); the model still gets one output per class.
"""
from __future__ import annotations

import errno
import numbers
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .constants import MAX_BYTES, SENTIMENTS, UNREAD_IMAGE_EXTENSIONS

if TYPE_CHECKING:  # pandas loads with the first table: a command that refuses its inputs never waits for it
    import pandas as pd


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


class InputFileError(DataError):
    """An input that is not to be read: not a regular file, or larger than the limit. The message names the file;
    ``reason`` says why without it (an error row's text)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fsdecode(path)}: {reason}")
        self.reason = reason


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _too_large(size: int, max_bytes: int) -> str:
    def amount(count: int) -> str:
        return f"{count:,} bytes" + (f" ({count / 2**20:,.1f} MiB)" if count >= 2**20 else "")
    return (f"file too large: {amount(size)}, over the limit of {amount(max_bytes)}; raise the limit to read it "
            "(--max-bytes, or max_bytes= in Python)")


def _problem(status: os.stat_result, max_bytes: int | None) -> str:
    """Why a file of this ``os.stat`` status is not to be read (``max_bytes``: None for no limit), or ``""``; a
    folder raises ``IsADirectoryError``, as opening it would."""
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "of an unknown kind")
        return f"not a regular file ({kind}); only regular files are read, not pipes, devices or sockets"
    if max_bytes is not None and status.st_size > max_bytes:
        return _too_large(status.st_size, max_bytes)
    return ""


def file_problem(path: str | os.PathLike, max_bytes: int | None = MAX_BYTES) -> str:
    """Why the file at ``path`` (links followed) is not to be read, from ``os.stat`` alone, before anything opens
    it (a FIFO would block its reader for good, a device such as ``/dev/zero`` never ends): not a regular file, or
    larger than ``max_bytes`` (None: no limit, for videos, which are streamed); ``""`` if it may be read. An
    ``OSError`` where it cannot be looked at (missing, no permission) or is a folder: the caller words that."""
    return _problem(os.stat(path), max_bytes)


def read_input(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the input file at ``path`` if :func:`file_problem` finds no problem with it; else
    :class:`InputFileError` naming it. The file opened is checked again (opened without waiting, should a FIFO
    have taken its place since), and no more than ``max_bytes`` are read, should it have grown. ``OSError`` where
    it cannot be opened or read."""
    problem = file_problem(path, max_bytes)
    if not problem:
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            problem = _problem(os.fstat(handle.fileno()), max_bytes)
            data = b"" if problem else handle.read(max_bytes + 1)
            if len(data) > max_bytes:  # it grew after it was looked at
                problem = _too_large(max(len(data), os.fstat(handle.fileno()).st_size), max_bytes)
    if problem:
        raise InputFileError(path, problem)
    return data
