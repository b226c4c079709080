"""What a run says when something goes wrong: a full disk at the start or in the heat-map folder names the file,
says --resume continues and leaves no half-written file; a text confidence column in ``report`` is named; an
animated WebP gets one reason everywhere; ffmpeg's lines on a broken video stay off stderr; the ``heatmap``
column comes with ``--explain`` only."""
from __future__ import annotations

import builtins
import errno
import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from imagesentiment.cli import main
from imagesentiment.data.frames import VideoError, open_video
from imagesentiment.data.pipeline import decode_or_reason
from imagesentiment.scoring.batch import predict_files
from imagesentiment.table.columns import model_record

from conftest import encode

CLASSES = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
    return tiny_predictor


def _photos(folder: Path, count: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i}.png" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_bytes(encode(np.full((12, 12, 3), 60 * i, np.uint8)))
    return [str(p) for p in paths]


class _Full:
    """A file on a full disk: half of the first write lands, then ENOSPC."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data):
        self.handle.write(data[:len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        if name == "fileno":  # so that Pillow writes through write(), not to the descriptor
            raise AttributeError(name)
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def _fill_disk_for(monkeypatch, part: str, ending: str) -> None:
    """Files opened for writing whose names hold ``part`` and end with ``ending`` behave as on a full disk (the
    partial file written first included)."""
    real = io.open

    def opening(file, mode="r", *args, **kwargs):
        handle = real(file, mode, *args, **kwargs)
        writing = isinstance(file, (str, os.PathLike)) and any(m in mode for m in "wax+")
        name = os.path.basename(os.fspath(file)) if writing else ""
        return _Full(handle) if part in name and name.endswith(ending) else handle
    monkeypatch.setattr(builtins, "open", opening)
    monkeypatch.setattr(io, "open", opening)


def _left_behind(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and ".partial" in p.name)


def test_a_full_disk_at_the_start_names_the_file_says_resume_and_leaves_nothing_half_written(
        tmp_path, predictor, monkeypatch):
    paths, out = _photos(tmp_path / "photos"), tmp_path / "out.csv"
    _fill_disk_for(monkeypatch, "out", ".model.json")
    with pytest.raises(OSError) as raised:
        predict_files(predictor, paths, out, progress=False)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(model_record(out))
    assert "--resume" in raised.value.strerror
    assert not model_record(out).exists() and _left_behind(tmp_path) == []
    table = predict_files(predictor, paths, out, progress=False, resume=True)
    assert len(table) == 3 and table["label"].notna().all()


def test_a_full_disk_when_the_hidden_file_is_made_names_the_file_meant(tmp_path, monkeypatch):
    from imagesentiment.atomic import write_atomically

    real = io.open

    def opening(file, mode="r", *args, **kwargs):
        if ".partial" in os.fspath(file):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real(file, mode, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", opening)
    with pytest.raises(OSError) as raised:
        write_atomically(tmp_path / "record.json", b"{}")
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "record.json")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_the_explain_folder_names_the_picture_and_leaves_no_half_written_jpeg(
        tmp_path, predictor, monkeypatch):
    paths, out, maps = _photos(tmp_path / "photos"), tmp_path / "out.csv", tmp_path / "maps"
    _fill_disk_for(monkeypatch, "_overlay", ".jpg")
    with pytest.raises(OSError) as raised:
        predict_files(predictor, paths, out, explain_dir=maps, progress=False)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename.endswith("_overlay.jpg")
    assert raised.value.filename.startswith(str(maps)) and "--resume" in raised.value.strerror
    assert _left_behind(maps) == [] and not any(maps.glob("*_overlay.jpg"))
    table = predict_files(predictor, paths, out, explain_dir=maps, progress=False, resume=True)
    assert len(table) == 3 and all(Path(p).is_file() for p in table["heatmap"])


def test_report_on_a_text_confidence_names_the_file_and_the_column(tmp_path, capsys):
    table = tmp_path / "scores.csv"
    table.write_text("path,label,confidence,negative,neutral,positive\na.jpg,positive,high,0.1,0.2,0.7\n")
    assert main(["report", str(table), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"{table}: the column confidence holds text" in err and "'high'" in err, err
    assert "Unknown format code" not in err


def _animated_webp() -> bytes:
    frames = [Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def test_an_animated_webp_gets_one_reason_from_predict_and_from_serving(tmp_path, predictor):
    import tensorflow as tf
    from imagesentiment.export import export_savedmodel

    webp = _animated_webp()
    _, reason = decode_or_reason(webp, (8, 8))
    assert reason.startswith("unsupported image: an animated WebP"), reason
    served = tf.saved_model.load(str(export_savedmodel(predictor.model, tmp_path, "m", CLASSES))).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match="item 0 of the batch is not a usable image: "
                                                                + re.escape(reason)):
        served["serving_default"](image_bytes=tf.constant([webp]))


def test_ffmpeg_lines_on_a_broken_video_stay_off_stderr(tmp_path, capfd):
    video = str(tmp_path / "v.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    for i in range(10):
        writer.write(np.full((32, 32, 3), i * 20, np.uint8))
    writer.release()
    Path(video).write_bytes(Path(video).read_bytes()[:200])  # the moov atom, at the end, cut off
    capfd.readouterr()
    with pytest.raises(VideoError, match="v.mp4: not a video"):
        open_video(video)
    assert "moov atom" not in capfd.readouterr().err


def test_the_heatmap_column_comes_with_explain_only(tmp_path, predictor):
    paths = _photos(tmp_path / "photos", 2)
    plain = predict_files(predictor, paths, tmp_path / "plain.csv", progress=False)
    assert "heatmap" not in plain.columns
    assert "heatmap" not in (tmp_path / "plain.csv").read_text().splitlines()[0].split(",")
    explained = predict_files(predictor, paths[:1], tmp_path / "maps.csv", explain_dir=tmp_path / "maps",
                              progress=False)
    assert explained["heatmap"].notna().all()
    resumed = predict_files(predictor, paths, tmp_path / "maps.csv", progress=False, resume=True)  # no --explain
    assert list(resumed.columns) == list(explained.columns) and resumed["heatmap"].isna().tolist() == [False, True]
