"""Checksums of exported models: ``export`` records a SHA-256 of what it writes, ``load`` verifies it, so that
a damaged or altered model file is refused rather than answering (a TFLite file with 60 random bytes changed
loaded and answered in 19 of 60 trials).

A SavedModel version holds ``assets.extra/imagesentiment.json`` with the digest of each of its files; a
``.tflite`` file holds the digest of its own bytes in its metadata entry ``imagesentiment.checksum``,
computed with the digest's place there filled with zeros. Models without the record (another tool's, or exported
before this release) load with a note.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from .contract import ModelFileError

DIGEST = "sha256"
PLACEHOLDER = "0" * 64  # the digest's place while the digest of a TFLite file is computed
RECORD = Path("assets.extra") / "imagesentiment.json"
TRUST = "the file is damaged or was altered: export it again, or load it with verify=False if you trust it"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digests(version_dir: str | os.PathLike) -> dict[str, str]:
    """The SHA-256 of every file of a SavedModel version but the record, by path inside it."""
    root = Path(version_dir)
    return {path.relative_to(root).as_posix(): _digest(path.read_bytes())
            for path in sorted(root.rglob("*")) if path.is_file() and path.relative_to(root) != RECORD}


def record_savedmodel(version_dir: str | os.PathLike) -> None:
    """Write the digests of a version's files (:func:`file_digests`) into its ``assets.extra``."""
    (Path(version_dir) / RECORD).write_text(json.dumps({DIGEST: file_digests(version_dir)}, indent=1) + "\n")


def verify_savedmodel(version_dir: str | os.PathLike) -> None:
    """Refuse (:class:`~imagesentiment.contract.ModelFileError`) a version whose files differ from the digests
    recorded at export, naming them; a version without the record gets a note on stderr."""
    record = Path(version_dir) / RECORD
    if not record.is_file():
        _note(version_dir)
        return
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))[DIGEST]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{version_dir}: its checksum record {RECORD} cannot be read ({exc}); {TRUST}") from None
    found = file_digests(version_dir)
    changed = sorted(path for path in recorded if found.get(path) != recorded[path])
    if changed:
        raise ModelFileError(f"{version_dir}: {', '.join(changed)} {'differs' if len(changed) == 1 else 'differ'} "
                             f"from the checksum recorded at export (missing or changed); {TRUST}")


def stamp_tflite(content: bytes) -> bytes:
    """``content``, whose metadata holds :data:`PLACEHOLDER` as its digest, with the digest of ``content`` there."""
    digest = _digest(content)
    return content.replace(_entry(PLACEHOLDER), _entry(digest), 1)


def verify_tflite(content: bytes, record: dict | None, name: str) -> None:
    """Refuse a TFLite model whose bytes differ from the digest in its checksum ``record`` (its metadata entry),
    or whose record is there without a readable digest; a note on stderr where it has no record."""
    if record is None:
        _note(name)
        return
    recorded = record.get(DIGEST) if isinstance(record, dict) else None
    if not isinstance(recorded, str):
        raise ModelFileError(f"{name}: its checksum record cannot be read (the file differs from the checksum "
                             f"recorded at export); {TRUST}")
    entry = _entry(recorded)
    if content.count(entry) != 1 or _digest(content.replace(entry, _entry(PLACEHOLDER))) != recorded:
        raise ModelFileError(f"{name}: its content differs from the checksum recorded at export; {TRUST}")


def _entry(digest: str) -> bytes:
    """The digest as it stands in the metadata's JSON."""
    return json.dumps({DIGEST: digest})[1:-1].encode("utf-8")


def _note(name: str | os.PathLike) -> None:
    print(f"note: {name}: no checksum recorded (not exported by imagesentiment, or by an earlier release): "
          "loaded without checking that it is intact", file=sys.stderr)
