"""What a file's first bytes say it is, read without TensorFlow: a file that is no image is refused from its
header before any model loads. The decoder (:mod:`~imagesentiment.data.pipeline`) refuses it in the same words."""
from __future__ import annotations

import os
import stat

EMPTY = "empty (0 bytes)"
UNKNOWN_FORMAT = "unknown image format: its first bytes are none of JPEG, PNG, GIF, BMP or WebP"
UNSUPPORTED_JPEG_XL = "unsupported image format: JPEG XL (use JPEG, PNG, GIF, BMP or WebP)"
SIGNATURES = {"JPEG": (0, b"\xff\xd8\xff"), "PNG": (0, b"\x89PNG\r\n\x1a\n"), "GIF": (0, b"GIF"), "BMP": (0, b"BM"),
              "WebP": (8, b"WEBP")}  # WebP: after RIFF and the size
JPEG_XL = (b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n")  # a codestream, a container


def unreadable(reason: str) -> str:
    """An input's error as every command words it, with the reason it is refused."""
    return f"not a readable image: {reason}"


def header_problem(head: bytes) -> str | None:
    """Why a file starting with ``head`` (its first 12 bytes or all of it) is no image the decoder takes; None
    where its header names a supported format (its body may still be damaged)."""
    if not head:
        return EMPTY
    if head.startswith(JPEG_XL):
        return UNSUPPORTED_JPEG_XL
    found = [name for name, (at, magic) in SIGNATURES.items() if head[at:at + len(magic)] == magic]
    return None if found and (found != ["WebP"] or head.startswith(b"RIFF")) else UNKNOWN_FORMAT


def file_header_problem(path: str | os.PathLike) -> str | None:
    """:func:`header_problem` of the regular file at ``path``; None for anything else (missing, unreadable, a FIFO
    or a device), which the full read names itself."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return header_problem(handle.read(12))
    except OSError:
        return None
