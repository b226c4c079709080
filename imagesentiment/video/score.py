"""Sentiment over time in a video: sampled frames scored in batches, a timeline, a summary,
and optionally a copy of the video with the Grad-CAM heat map blended in.

Frames are streamed (:mod:`imagesentiment.data.frames`): memory stays flat whatever the length.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm import tqdm

from ..data.frames import FrameStream, VideoError, VideoInfo, open_video, sampling_step
from ..data.pipeline import check_batch_size
from ..explain.plots import overlay
from ..atomic import replacing
from ..contract import RATING_SCALE, RATINGS
from ..faces.detect import Face
from ..faces.scorer import FaceScorer, draw_boxes
from ..inference.predictors import Predictor, to_pixels
from ..table.columns import BOX, answers, face_answers, largest_faces
from ..faces.tracks import link

MAX_TRACK_BANDS = 5  # the timeline shows the face tracks seen in the most samples, at most this many


def annotate(frame: np.ndarray, heatmap: np.ndarray, text: str, faces: Sequence[Face] = (),
             opacity: float = 0.4) -> np.ndarray:
    """``frame`` (RGB) with ``heatmap`` blended in (see :func:`imagesentiment.explain.plots.overlay`), the boxes
    of its ``faces`` numbered as their rows (:func:`~imagesentiment.faces.scorer.draw_boxes`) and ``text`` drawn."""
    blended = overlay(frame, heatmap, alpha=opacity)
    blended = np.array(draw_boxes(blended, faces)) if faces else np.ascontiguousarray(blended)  # writable
    scale = max(0.4, frame.shape[1] / 640)
    x, y, r = 8, int(24 * scale), max(1, round(scale))
    # the dark outline is the thin text drawn shifted around it: OpenCV 5 widens each glyph's advance with
    # the stroke's thickness, so a thick dark copy ran ahead of the white text ("0.87" read "0.837")
    for dx, dy in itertools.product((-r, 0, r), repeat=2):
        if dx or dy:
            cv2.putText(blended, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(blended, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return blended


def smooth(table: pd.DataFrame, classes: Sequence[str], window: int, by: str | None = None) -> pd.DataFrame:
    """Adds ``smoothed_<class>`` and, where the table has them, ``smoothed_valence`` and ``smoothed_arousal``
    (centred moving average over ``window`` samples; with ``by``, over the rows of the same ``by`` value, such as
    a face track's) and ``smoothed_label``."""
    probabilities = table[[*classes, *(name for name in RATINGS if name in table)]]
    if by is None:
        smoothed = probabilities.rolling(window, center=True, min_periods=1).mean()
    else:
        smoothed = (probabilities.groupby(table[by]).rolling(window, center=True, min_periods=1).mean()
                    .reset_index(level=0, drop=True).reindex(table.index))
    table = table.join(smoothed.add_prefix("smoothed_"))
    table["smoothed_label"] = [classes[i] for i in smoothed[list(classes)].to_numpy().argmax(axis=1)]
    return table


@dataclass
class VideoResult:
    table: pd.DataFrame          # one row per sampled frame
    summary: dict
    truncated: bool
    faces: pd.DataFrame | None = None  # with faces: one row per face of each sampled frame, with its track


class _Scorer:
    """Scores batches of frames (and with ``faces``, their faces) and, with a writer, blends each frame with the
    latest sampled frame's heat map."""

    def __init__(self, predictor: Predictor, fps: float, writer: cv2.VideoWriter | None,
                 faces: FaceScorer | None = None) -> None:
        self.predictor, self.fps, self.writer, self.faces = predictor, fps, writer, faces
        self.face_rows: list[pd.DataFrame] = []  # each sampled frame's faces' rows
        self.notes: list[str] = []
        self.explainer = predictor.explainer() if writer is not None else None
        self.classes = predictor.class_names
        self.frames: list[int] = []
        self.probabilities: list[np.ndarray] = []
        self.rated: dict[str, list[np.ndarray]] = {name: [] for name in predictor.ratings}  # valence, arousal
        self.best: dict[str, tuple[float, int, np.ndarray]] = {}
        self.latest = (np.zeros((2, 2), np.float32), "", [])

    def table(self) -> pd.DataFrame:
        """A row per sampled frame: its index, its time and the answers (:func:`imagesentiment.table.answers`);
        with faces, how many and the largest one's box and answers (:func:`~imagesentiment.table.largest_faces`)."""
        frames = np.asarray(self.frames, np.int64)
        table = pd.DataFrame({"frame": frames, "time_s": frames / self.fps}).join(
            answers(np.reshape(self.probabilities, (-1, len(self.classes))), self.classes,
                    ratings={name: np.concatenate([np.zeros(0), *parts]) for name, parts in self.rated.items()}))
        return table.join(largest_faces(self.face_rows, self.classes)) if self.faces is not None else table

    def face_table(self) -> pd.DataFrame:
        """A row per face of each sampled frame: the frame's index and time, the face's ``track``
        (:func:`imagesentiment.faces.tracks.link`), its box and its answers; the frame's faces in their order."""
        boxes = [faces[list(BOX)].to_numpy(float) for faces in self.face_rows]
        frames = np.repeat(np.asarray(self.frames, np.int64), [len(b) for b in boxes])
        none = face_answers(np.zeros((0, len(self.classes)), np.float32), self.classes, [])
        rows = pd.concat([none, *self.face_rows], ignore_index=True)[[*BOX, "label", "confidence", *self.classes]]
        table = pd.DataFrame({"frame": frames, "time_s": frames / self.fps,
                              "track": np.concatenate([np.zeros(0, np.int64), *link(boxes)])})
        return table.join(rows.astype({column: np.int64 for column in BOX}))

    def __call__(self, batch: list[tuple[int, np.ndarray, bool]]) -> None:
        sampled = [(i, f) for i, f, s in batch if s]
        pixels = to_pixels([f for _, f in sampled], self.predictor.image_size)
        explaining = self.explainer is not None and len(sampled) > 0  # the heat maps' pass gives the scores too
        scores = self.explainer(pixels) if explaining else self.predictor.scores(pixels)
        probabilities, heatmaps = np.asarray(scores["probabilities"]), scores.get("heatmap")
        for name, values in self.rated.items():
            values.append(scores[name])
        found = self.faces([(f"frame {i}", f) for i, f in sampled], self.notes) if self.faces is not None else []
        self.face_rows += [one.table for one in found]
        boxes = {index: one.faces for (index, _), one in zip(sampled, found)}
        marks = {}
        for k, ((index, frame), p) in enumerate(zip(sampled, probabilities)):
            label = self.classes[int(p.argmax())]
            self.frames.append(index)
            self.probabilities.append(p)
            for name in ("positive", "negative"):  # among the frames that answer it: none, no picture
                if label == name and p[self.classes.index(name)] > self.best.get(name, (-1.0,))[0]:
                    self.best[name] = (float(p[self.classes.index(name)]), index, frame.copy())
            if heatmaps is not None:
                marks[index] = (heatmaps[k], f"{label} {p.max():.2f}", boxes.get(index, []))
        if self.writer is not None:
            for index, frame, _ in batch:
                self.latest = marks.get(index, self.latest)
                self.writer.write(cv2.cvtColor(annotate(frame, *self.latest), cv2.COLOR_RGB2BGR))


def _best_frames(scorer: _Scorer, info: VideoInfo, out: Path) -> dict[str, dict]:
    """Write the most positive and most negative frames into ``out`` (of the frames answered positive, negative:
    where none is, no picture, and an earlier run's is removed); their entries of the summary."""
    found = {}
    for name in ("positive", "negative"):
        if name not in scorer.best:
            (out / f"most_{name}.jpg").unlink(missing_ok=True)
    for name, (score, index, frame) in scorer.best.items():
        target = out / f"most_{name}.jpg"
        cv2.imwrite(str(target), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        found[f"most_{name}"] = {"frame": index, "time_s": index / info.fps, "probability": score, "image": target.name}
    return found


def score_video(path: str | os.PathLike, predictor: Predictor, out: str | os.PathLike, every: int | None = None,
                per_second: float | None = None, batch_size: int = 32, smoothing: int = 0,
                overlay_path: str | os.PathLike | None = None, progress: bool = True,
                overwrite: bool = False, faces: FaceScorer | None = None) -> VideoResult:
    """Score sampled frames of the video at ``path`` and write ``frames.csv``, ``timeline.png``,
    ``summary.json`` and the most positive/negative frames into ``out``.

    With ``overlay_path``, also writes a copy of the video (every frame, same size and rate)
    with the heat map of the latest sampled frame and its label blended in; that needs a
    predictor that can explain. At most ``batch_size`` frames are held at once. An earlier run's
    results in ``out`` and an existing ``overlay_path`` are refused unless ``overwrite`` (see
    :func:`check_outputs`); the copy is written under another name and moved into place once complete.
    With ``faces`` (:func:`~imagesentiment.faces.scorer.face_scorer`), each
    frame's row also holds how many faces it shows and its largest face's box and answers (``face_`` columns),
    and ``faces.csv`` (:attr:`VideoResult.faces`) a row per face with its track (:func:`imagesentiment.faces.tracks.link`);
    the summary gives each track's times and shares, and the timeline a band per track (:func:`track_bands`).
    """
    check_batch_size(batch_size)  # below 1 the buffer would never flush: every frame held at once
    capture, info = open_video(path)
    capture.release()
    check_outputs(path, out, overlay_path, overwrite)
    step = sampling_step(info, every, per_second)
    if per_second is not None and abs(info.fps / step - per_second) > 0.01 * per_second:  # whole frames apart
        print(f"note: {path}: {info.fps:g} frames a second, so {'every frame' if step == 1 else f'one frame in {step}'}"
              f" is sampled: {info.fps / step:g} a second, not {per_second:g}", file=sys.stderr)
    (out := Path(out)).mkdir(parents=True, exist_ok=True)
    stream = FrameStream(info, step)
    with _overlay_writer(overlay_path, info) as writer:
        scorer = _Scorer(predictor, info.fps, writer, faces)
        with tqdm(total=info.frames or None, unit="frame", disable=not progress,
                  desc=os.path.basename(str(path))) as bar:
            _score_stream(stream, scorer, batch_size, bar)
    classes = predictor.class_names
    table, tracked = scorer.table(), scorer.face_table() if faces is not None else None
    if scorer.notes:
        print(f"note: {path}: {len(scorer.notes)} faces smaller than the faces model reads left out "
              f"({scorer.notes[0]}{', ...' if len(scorer.notes) > 1 else ''})", file=sys.stderr)
    if smoothing > 1:
        table = smooth(table, classes, smoothing)
        tracked = None if tracked is None else smooth(tracked, classes, smoothing, by="track")
    if smoothing > max(1, len(table)):
        print(f"warning: smoothing over {smoothing} samples, more than the {len(table)} sampled: each smoothed "
              "label averages most of the video; give a smaller --smooth or sample more often", file=sys.stderr)
    summary = {**summarize(table, classes, info, stream, step, tracked), **_best_frames(scorer, info, out)}
    if stream.truncated:
        print(f"warning: {path}: stopped after {stream.frames_read} of {info.frames} frames (truncated or damaged); "
              "the frames read so far are kept", file=sys.stderr)
    result = VideoResult(table, summary, stream.truncated, tracked)
    write_results(result, classes, out)
    return result


RESULTS = ("frames.csv", "faces.csv", "summary.json")  # what marks a folder as holding an earlier run's results


def write_results(result: VideoResult, classes: Sequence[str], out: Path) -> None:
    """``frames.csv``, ``faces.csv`` (with faces; without, an earlier run's is removed), ``summary.json`` and
    ``timeline.png`` in ``out``, each written whole (:func:`imagesentiment.atomic.replacing`)."""
    if result.faces is None:
        (out / "faces.csv").unlink(missing_ok=True)  # it would not be of this run
    for name, table in (("frames.csv", result.table), ("faces.csv", result.faces)):
        if table is not None:
            with replacing(out / name) as partial:
                table.to_csv(partial, index=False)
    with replacing(out / "summary.json") as partial:
        partial.write_text(json.dumps(result.summary, indent=2))
    with replacing(out / "timeline.png") as partial:
        plot_timeline(result.table, classes, partial, result.faces)


def check_outputs(video: str | os.PathLike, out: str | os.PathLike, overlay_path: str | os.PathLike | None = None,
                  overwrite: bool = False) -> None:
    """Refuses, before any work, to write the heat-map copy over the video itself and, unless ``overwrite``,
    to replace an earlier run's results in ``out`` or an existing file at ``overlay_path``."""
    if overlay_path is not None and os.path.exists(overlay_path) and os.path.samefile(video, overlay_path):
        raise VideoError(f"{overlay_path}: is the video being scored; writing the heat-map copy there would "
                         "destroy it, give the copy another name")
    if overwrite:
        return
    if any((Path(out) / name).exists() for name in RESULTS):
        earlier = _video_of(Path(out) / "summary.json")
        raise FileExistsError(f"{out}: holds the results of an earlier run{f' (of {earlier})' if earlier else ''}; "
                              "pass overwrite=True (--overwrite) to replace them, or give another --out")
    if overlay_path is not None and os.path.exists(overlay_path):
        raise FileExistsError(f"{overlay_path}: exists; pass overwrite=True (--overwrite) to replace it, "
                              "or give --overlay another name")


def _video_of(summary: Path) -> str | None:
    """The video an earlier run's ``summary.json`` names; None if there is none, or it cannot be read."""
    try:
        earlier = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return earlier.get("video") if isinstance(earlier, dict) else None


def _score_stream(stream: FrameStream, scorer: _Scorer, batch_size: int, bar: tqdm) -> None:
    """Feed ``stream``'s frames to ``scorer`` in batches of ``batch_size``: the sampled ones, and every frame
    where it writes the heat-map copy."""
    buffer: list[tuple[int, np.ndarray, bool]] = []
    for item in stream:
        if item[2] or scorer.writer is not None:
            buffer.append(item)
        if len(buffer) == batch_size:
            scorer(buffer)
            buffer = []
        bar.update(1)
    if buffer:
        scorer(buffer)


@contextmanager
def _overlay_writer(path: str | os.PathLike | None, info: VideoInfo) -> Iterator[cv2.VideoWriter | None]:
    """A writer for the heat-map copy at ``path`` (None without one). It writes beside ``path``, with the same
    extension (which picks the codec), and the copy is moved into place once complete: a run stopped (Ctrl-C,
    an error) leaves no half-written copy, and an earlier one is kept."""
    if path is None:
        yield None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    codec = "MJPG" if Path(path).suffix.lower() == ".avi" else "mp4v"
    with replacing(path) as partial:
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*codec), info.fps, (info.width, info.height))
        if not writer.isOpened():
            raise VideoError(f"{path}: cannot write a video here (codec {codec})")
        try:
            yield writer
        finally:
            writer.release()


def summarize(table: pd.DataFrame, classes: Sequence[str], info: VideoInfo, stream: FrameStream, step: int,
              faces: pd.DataFrame | None = None) -> dict:
    """Share of the sampled time per sentiment (raw and, with smoothing, smoothed), and what was read; with
    ``faces`` (:attr:`VideoResult.faces`), each face track's (:func:`summarize_tracks`)."""
    summary = {"video": info.path, "frames_declared": info.frames, "frames_read": stream.frames_read,
               "truncated": stream.truncated, "fps": info.fps, "sampled_every": step,
               "samples_per_second": info.fps / step, "samples": len(table),
               "duration_s": stream.frames_read / info.fps, "share_of_time": _shares(table["label"], classes)}
    if "smoothed_label" in table:  # what the timeline's band shows
        summary["smoothed_share_of_time"] = _shares(table["smoothed_label"], classes)
    if "faces" in table:  # the largest face's expression, over the frames that show one
        summary["samples_with_a_face"] = int((table["faces"] > 0).sum())
        summary["face_share_of_time"] = _shares(table["face_label"].dropna(), classes)
    if faces is not None:
        summary["tracks"] = summarize_tracks(faces, classes)
    return summary


def summarize_tracks(faces: pd.DataFrame, classes: Sequence[str]) -> list[dict]:
    """Each face track's first and last time seen, how many samples show it and the share of those per
    sentiment (raw and, with smoothing, smoothed)."""
    tracks = []
    for number, rows in faces.groupby("track"):
        track = {"track": int(number), "first_s": float(rows["time_s"].min()), "last_s": float(rows["time_s"].max()),
                 "samples": len(rows), "share_of_time": _shares(rows["label"], classes)}
        if "smoothed_label" in rows:
            track["smoothed_share_of_time"] = _shares(rows["smoothed_label"], classes)
        tracks.append(track)
    return tracks


def _shares(labels: pd.Series, classes: Sequence[str]) -> dict[str, float]:
    shares = labels.value_counts(normalize=True)
    return {c: float(shares.get(c, 0.0)) for c in classes}


def plot_timeline(table: pd.DataFrame, classes: Sequence[str], path: str | os.PathLike,
                  faces: pd.DataFrame | None = None) -> None:
    """Each class's probability over time, with the predicted label as a coloured band beneath and, with
    ``faces`` (:attr:`VideoResult.faces`), a band of each of the longest face tracks' labels
    (:func:`track_bands`; white where the track is not seen)."""
    colours = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}
    bands = {"frame": table["smoothed_label" if "smoothed_label" in table else "label"]}
    bands.update(track_bands(table, faces) if faces is not None else {})
    fig = Figure(figsize=(10, 4 + 0.6 * (len(bands) - 1)))
    ax, *rows = fig.subplots(1 + len(bands), 1, sharex=True, gridspec_kw={"height_ratios": [5] + [1] * len(bands)})
    for c in classes:
        column = f"smoothed_{c}" if f"smoothed_{c}" in table else c
        ax.plot(table["time_s"], table[column], label=c, color=colours.get(c))
    ax.set(ylabel="probability", ylim=(0, 1), title="sentiment over time")
    ax.legend(loc="upper left")
    if "valence" in table:  # the model's valence on its own scale, raw and smoothed
        scale = ax.twinx()
        scale.plot(table["time_s"], table["valence"], color="#8e44ad", alpha=0.35, linewidth=1)
        if "smoothed_valence" in table:
            scale.plot(table["time_s"], table["smoothed_valence"], color="#8e44ad", label="valence (smoothed)")
        scale.set(ylabel="valence (1-7)", ylim=RATING_SCALE)
        scale.legend(loc="upper right")
    times = table["time_s"].to_numpy()
    edges = np.append(times, times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0))
    for band, (name, labels) in zip(rows, bands.items()):
        for start, end, label in zip(edges[:-1], edges[1:], labels):
            band.axvspan(start, end, color=colours.get(label, "#3b7dd8") if isinstance(label, str) else "white")
        band.set(yticks=[0.5] if len(bands) > 1 else [], yticklabels=[name] if len(bands) > 1 else [])
    rows[-1].set(xlabel="time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def track_bands(table: pd.DataFrame, faces: pd.DataFrame, most: int = MAX_TRACK_BANDS) -> dict[str, pd.Series]:
    """The label (smoothed, where smoothed) of each of the ``most`` face tracks seen in the most samples, in
    the order of their numbers, at each of ``table``'s frames (NaN where the track is not seen)."""
    column = "smoothed_label" if "smoothed_label" in faces else "label"
    counts = faces["track"].value_counts().sort_index()
    longest = sorted(counts.sort_values(ascending=False, kind="stable").index[:most])
    return {f"face {number}": table["frame"].map(faces[faces["track"] == number].set_index("frame")[column])
            for number in longest}
