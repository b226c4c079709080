"""Files written whole: a reader, or a run killed mid-write, sees the old file or the whole new one, never a part."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def partial_path(path: Path) -> Path:
    """The hidden file beside ``path`` that is written first, with ``path``'s suffixes kept (a writer may choose
    its format by them): ``.phase1.partial.weights.h5`` for ``phase1.weights.h5``."""
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{stem}.partial{dot}{suffixes}")


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """The path to write ``path``'s new content to: renamed over ``path`` when the block ends, removed if it
    raises (Ctrl-C included), so that an earlier ``path`` stays as it was; an error naming that hidden file
    (it could not be made: a full disk) names ``path`` instead."""
    partial = partial_path(Path(path))
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:  # the hidden file is the writer's business: an error on it names ``path``
        if exc.filename is None or Path(exc.filename) != partial:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        partial.unlink(missing_ok=True)


def write_atomically(path: str | os.PathLike, content: bytes) -> None:
    """Write ``content`` to ``path`` whole (:func:`replacing`), flushed to the disk before the rename."""
    with replacing(path) as partial, open(partial, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
