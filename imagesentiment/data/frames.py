"""Reading video frames with OpenCV, and video folders as training data.

Frames are streamed one at a time. A folder per class of video files becomes an
:class:`ImageSet` of sampled frames with a ``group`` column (the clip), so that
the splits keep every clip on one side.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from ..runtime import VIDEO_NOISE, filtered, without
from .constants import SENTIMENTS, VIDEO_EXTENSIONS
from .imageset import DataError, ImageSet, file_problem, is_number


class VideoError(DataError):
    """A video that cannot be read; the message names the file."""


@dataclass
class VideoInfo:
    path: str
    frames: int          # as the container declares (0 if unknown)
    fps: float
    width: int
    height: int


def open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened capture and what the container says about the video, or a VideoError naming the file: one that is
    not a regular file (a FIFO, a device) is refused before OpenCV opens it (:func:`~.imageset.file_problem`)."""
    path = str(path)
    try:
        problem = file_problem(path, None)  # no size limit: frames are streamed
    except OSError as exc:
        raise VideoError(f"{path}: {'no such file' if isinstance(exc, FileNotFoundError) else exc.strerror}") from None
    if problem:
        raise VideoError(f"{path}: {problem}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    with filtered(without(VIDEO_NOISE)):  # FFmpeg's own lines on a file that gets its error ("moov atom not found")
        capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError(f"{path}: not a video, or one that cannot be decoded (truncated container?)")
    info = VideoInfo(path, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), capture.get(cv2.CAP_PROP_FPS) or 0.0,
                     int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if info.fps <= 0:
        info.fps = 25.0
    return capture, info


def sampling_step(info: VideoInfo, every: int | None = None, per_second: float | None = None) -> int:
    """Frames between two sampled frames: ``every`` N frames, or ``per_second`` samples a second."""
    if every is not None and per_second is not None:
        raise ValueError("give either every or per_second, not both")
    if per_second is not None:
        if per_second <= 0:
            raise ValueError(f"per_second must be positive, not {per_second}")
        return max(1, round(info.fps / per_second))
    if every is not None and every < 1:
        raise ValueError(f"every must be at least 1, not {every}")
    return every or 1


@dataclass
class FrameStream:
    """Frames of a video, every one of them (RGB uint8), with a flag on those to sample."""

    info: VideoInfo
    step: int
    frames_read: int = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        capture, _ = open_video(self.info.path)
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                index = self.frames_read
                self.frames_read += 1
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index % self.step == 0
        finally:
            capture.release()
        if self.frames_read == 0:
            raise VideoError(f"{self.info.path}: no frame could be decoded (a zero-length or broken video)")

    @property
    def truncated(self) -> bool:
        """Fewer frames decoded than the container declares."""
        return 0 < self.info.frames and self.frames_read < self.info.frames


def from_video_folder(root: str | os.PathLike, frames_dir: str | os.PathLike, every_seconds: float = 1.0,
                      classes: Sequence[str] | None = None) -> ImageSet:
    """Training data from ``root/<class>/<video>``: one JPEG per ``every_seconds`` of each clip,
    written under ``frames_dir``; the ``group`` column (the clip) keeps a clip on one side of a split.
    Videos that cannot be read are left out and noted."""
    if not is_number(every_seconds) or not every_seconds > 0:
        raise ValueError(f"every_seconds must be a number of seconds above 0, not {every_seconds!r}")
    root, frames_dir = Path(root), Path(frames_dir)
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not folders:
        raise DataError(f"{root}: no class folders of videos found")
    classes = tuple(classes or (SENTIMENTS if set(folders) <= set(SENTIMENTS) else folders))
    rows, notes, left_out = [], [], []
    for label in folders:
        for video in sorted(p for p in (root / label).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS):
            clip = f"{label}/{video.relative_to(root / label).with_suffix('')}"
            try:
                capture, info = open_video(video)
                capture.release()
                stream = FrameStream(info, sampling_step(info, per_second=1 / every_seconds))
                for index, frame, sampled in stream:
                    if sampled:
                        target = frames_dir / label / f"{clip.replace('/', '__')}_{index:06d}.jpg"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        cv2.imwrite(str(target), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                        rows.append((str(target.resolve()), label, clip, index / info.fps))
            except VideoError as exc:
                notes.append(f"{exc}; left out")
                left_out.append((str(video), str(exc)))
    return ImageSet(pd.DataFrame(rows, columns=["path", "label", "group", "time_s"]), classes, notes, left_out)
