"""Writing a predictions table as rows come: one run at a time (:func:`held`), begun anew or resumed by the model
that began it (:func:`begin`), rows appended a batch at a time to a :class:`Journal` that a killed run leaves
whole but for its last line, and a table of a format written whole finished at the end (:func:`finish`)."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ..atomic import replacing, write_atomically
from .columns import latest, model_record
from .formats import table_format


def journal_of(out: Path) -> Path:
    """Where the rows of a run on ``out`` go as they come: ``out`` itself if rows can be appended to its format,
    else a JSON Lines journal beside it (``OUT.partial.jsonl``)."""
    return out if table_format(out).lines else out.with_name(out.name + ".partial.jsonl")


class Journal:
    """An append-only table of whole rows in a format rows can be appended to (:data:`~.formats.FORMATS`); a
    torn last line from a killed run is cut off when the journal is reopened."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = path, list(columns)
        self.format = table_format(path)
        self._repair()

    def _repair(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def read(self) -> pd.DataFrame:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return pd.DataFrame(columns=self.columns)
        return self.format.read(self.path)

    def keep_last(self) -> None:
        """Keep each path's last scoring only (an image tried again supersedes its error row; see
        :func:`~.columns.latest`), the other rows as written; the file is replaced at once, and only where rows
        are superseded."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        table = self.format.read_text(self.path)  # every cell as written: a post id 00123 stays 00123
        keep = latest(table)
        if keep.all():
            return
        text = self.format.lines(table[keep], True)
        with writing(self.path):
            write_atomically(self.path, text.encode("utf-8"))

    def append(self, rows: pd.DataFrame) -> None:
        new = not self.path.is_file() or self.path.stat().st_size == 0
        text = self.format.lines(rows.reindex(columns=self.columns), new)
        with writing(self.path), open(self.path, "a", encoding="utf-8") as handle:  # one write per batch, flushed
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """A full disk while writing ``path`` said with the file's name (the one the error names, where it names one)
    and what to do: the rows written before are kept (a torn last line is cut off on resuming)."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise OSError(errno.ENOSPC, "no space left on the device; the rows written before are kept: free some "
                      "space, then run the same command with resume=True (--resume) to continue",
                      exc.filename or str(path)) from exc


class OutputInUseError(FileExistsError):
    """Another run is writing the same table; the message names its process."""


@contextlib.contextmanager
def held(out: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``out`` for this run alone, through a lock file ``OUT.lock`` beside it that names this process; a
    second run on it is refused with :class:`OutputInUseError`, or with ``wait`` waits until the first ends.
    The lock goes with the process (also a killed one); the file is removed at the end."""
    lock = out.with_name(out.name + ".lock")
    while True:
        handle = open(lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = f"process {handle.read().strip() or '?'}"
            if not wait:
                handle.close()
                raise OutputInUseError(f"{out} is being written by another predict run ({holder}, see {lock}): two "
                                       "runs on one table lose or repeat rows; wait for it to end, or pass wait=True "
                                       "(--wait) to start once it has") from None
            print(f"{out} is being written by {holder}: waiting for it to end", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        there = os.stat(lock) if lock.exists() else None
        if there is not None and os.path.samestat(os.fstat(handle.fileno()), there):
            break
        handle.close()  # the run before removed the file as it ended: lock the one there now
    try:
        with writing(lock):
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def begin(out: Path, stamp: dict, resume: bool, overwrite: bool) -> None:
    """Clear ``out`` for a new table (``overwrite``), or refuse one that exists unless ``resume``; record the
    model that writes it (``stamp``: its classes, input size and probabilities on fixed images), and refuse to
    resume a table another model began."""
    journal_path, stamp_path = journal_of(out), model_record(out)
    if overwrite:
        for stale in {out, journal_path, stamp_path}:
            stale.unlink(missing_ok=True)
    if not resume and (out.exists() or journal_path.exists()):
        taken = f"{out} already exists" if out.exists() else f"{journal_path} holds the rows of a stopped run"
        raise FileExistsError(f"{taken}: resume=True (--resume) continues it, overwrite=True (--overwrite) "
                              "replaces it")
    _continue_with(stamp, stamp_path, out, resume,
                   begun=any(path.is_file() and path.stat().st_size > 0 for path in (out, journal_path)))


def _continue_with(stamp: dict, stamp_path: Path, out: Path, resume: bool, begun: bool) -> None:
    """Record the model (its ``stamp``) in ``stamp_path``; refuse to resume ``out`` (``begun``: it holds rows)
    with another model than the one that began it, or when the record of that model is gone."""
    if resume and begun and not stamp_path.is_file():
        raise ValueError(f"{out} holds rows but {stamp_path.name}, the record of the model that wrote them, is "
                         "gone: which model began it cannot be told; overwrite=True (--overwrite) starts again")
    if resume and stamp_path.is_file():
        before = json.loads(stamp_path.read_text())
        differ = [f"{what} {before[key]} then, {stamp[key]} now" for what, key in (("classes", "classes"),
                  ("input size", "image_size")) if before[key] != stamp[key]]
        if not differ and not np.allclose(before["probe_probabilities"], stamp["probe_probabilities"], atol=1e-3):
            differ = ["same classes and input size, other probabilities on fixed test images"]
        if differ:
            raise ValueError(f"{out} was begun by another model ({'; '.join(differ)}; see {stamp_path.name}): "
                             "resume it with that model, or write to another file")
        stamp["scored"] = before.get("scored", stamp["scored"])  # when the table was begun
    with writing(stamp_path):  # whole or not at all: a torn record would stop every --resume
        write_atomically(stamp_path, (json.dumps(stamp) + "\n").encode("utf-8"))


def finish(out: Path, finished: pd.DataFrame | None, table: pd.DataFrame) -> pd.DataFrame:
    """Write a table of a format written whole (Parquet), an earlier run's rows (``finished``) superseded by this
    run's (``table``), and drop the journal that held this run's rows while it ran."""
    if finished is not None:
        table = pd.concat([finished, table], ignore_index=True)
        table = table[latest(table)].reset_index(drop=True)
    with writing(out), replacing(out) as partial:
        table_format(out).write(table, partial)
    journal_of(out).unlink(missing_ok=True)  # none where a resumed run had nothing left to score
    return table
