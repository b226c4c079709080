"""Checking image files before anything trains: bad files are left out and reported.

Every file is opened the way the pipeline will open it: the header is read
first (so an absurdly large image is refused before it is decoded), then the
whole image is decoded with TensorFlow, exactly as ``tf.data`` will decode it.
The content hash found on the way serves the duplicate check of the splits.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
from PIL import Image

from ..runtime import tf
from .constants import MAX_BYTES, MAX_PIXELS
from .imageset import InputFileError, read_input
from .pipeline import decode_and_resize
from .sources import DataError, ImageSet


@dataclass(frozen=True)
class FileCheck:
    """The outcome for one file: ``reason`` is empty when the file is usable."""

    path: str
    reason: str = ""
    sha1: str = ""
    width: int = 0
    height: int = 0


def _tf_message(exc: tf.errors.OpError) -> str:
    text = str(exc.message).split("}}")[-1]
    return re.sub(r"\s*\[Op:\w+\].*$", "", text, flags=re.S).strip()


def check_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> FileCheck:
    """Open one image as the pipeline will; say why it is unusable, if it is (a file that is not a regular one, or
    larger than ``max_bytes``, is not read: :func:`~.imageset.read_input`)."""
    path = str(path)
    try:
        data = read_input(path, max_bytes)
    except InputFileError as exc:
        return FileCheck(path, exc.reason)
    except OSError as exc:
        return FileCheck(path, f"unreadable: {exc.strerror or exc}")
    if not data:
        return FileCheck(path, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:
        return FileCheck(path, f"image too large: {exc}")
    except Image.UnidentifiedImageError as exc:  # it names the file, not the bytes read from it
        return FileCheck(path, f"not an image: {type(exc).__name__}: cannot identify image file {path!r}")
    except Exception as exc:  # PIL raises many types for non-images
        return FileCheck(path, f"not an image: {type(exc).__name__}: {exc}")
    if width * height > max_pixels:
        return FileCheck(path, f"image too large: {width}x{height} pixels > {max_pixels}")
    if width < 1 or height < 1:
        return FileCheck(path, f"image has no pixels ({width}x{height})")
    try:
        decode_and_resize(data, (8, 8), max_pixels)
    except tf.errors.OpError as exc:
        return FileCheck(path, f"cannot be decoded: {_tf_message(exc)}")
    return FileCheck(path, "", hashlib.sha1(data).hexdigest(), width, height)


def check_images(paths: Iterable[str], max_pixels: int = MAX_PIXELS,
                 workers: int | None = None, max_bytes: int = MAX_BYTES) -> pd.DataFrame:
    """Check many files in parallel; one row per file: path, reason, sha1, width, height."""
    paths = list(paths)
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: check_image(p, max_pixels, max_bytes), paths))
    return pd.DataFrame(results, columns=["path", "reason", "sha1", "width", "height"])


def file_in_the_way(folder: Path) -> Path | None:
    """The file at ``folder`` or at one of its parents, which stops the folder being made; else None."""
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)


REPORTED = 50  # left-out files a report names one by one


@dataclass
class CheckedSet:
    """The usable part of an image set, the files left out and why, and what the checks noted."""

    images: ImageSet
    skipped: pd.DataFrame
    notes: list[str]

    def report(self) -> str:
        """A human-readable summary, one line per left-out file."""
        lines = [f"{len(self.images)} usable images; {len(self.skipped)} left out"] + self.notes
        lines += [f"  {row.path}: {row.reason}" for row in self.skipped.head(REPORTED).itertuples()]
        if len(self.skipped) > REPORTED:
            lines.append(f"  ... and {len(self.skipped) - REPORTED} more, all in the skipped-files table")
        return "\n".join(lines)

    def write_skipped(self, where: str | os.PathLike) -> Path:
        """Write the skipped files (path, reason) to ``where``: a ``.csv`` file, or ``skipped_files.csv`` in
        a folder; return the file's path."""
        target = Path(where) if Path(where).suffix.lower() == ".csv" else Path(where) / "skipped_files.csv"
        standing = file_in_the_way(target.parent)
        if standing is not None:
            raise DataError(f"{standing}: a file, not a folder; give a folder or a .csv file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.skipped[["path", "reason"]].to_csv(target, index=False)
        return target


def check_set(images: ImageSet, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> CheckedSet:
    """Check every file of ``images``; keep the usable ones with their hash and size (a file larger than
    ``max_bytes`` is left out unread)."""
    results = check_images(images.frame["path"], max_pixels, max_bytes=max_bytes)
    bad = results["reason"] != ""
    frame = images.frame.drop(columns=["sha1", "width", "height"], errors="ignore")
    frame = frame.join(results[["sha1", "width", "height"]])[~bad.to_numpy()]
    notes = list(images.notes)
    duplicates = int(frame.duplicated("sha1").sum())
    if duplicates:
        groups = frame[frame.duplicated("sha1", keep=False)].groupby("sha1", sort=False)
        conflicts = [" = ".join(f"{row.path} ({row.label})" for row in group.itertuples())
                     for _, group in groups if group["label"].nunique() > 1]
        named = (": " + "; ".join(conflicts[:3]) + ("; ..." if len(conflicts) > 3 else "")) if conflicts else ""
        notes.append(f"{duplicates} exact duplicate images found (same content hash); kept on one "
                     f"side of every split; {len(conflicts)} duplicated images carry conflicting labels{named}")
    skipped = pd.concat([results[bad], pd.DataFrame(images.left_out, columns=["path", "reason"])], ignore_index=True)
    return CheckedSet(ImageSet(frame, images.classes, images.notes), skipped, notes)
