"""Videos made by the tests with OpenCV: the first half shows the negative pattern, the second the
positive one, so the expected timeline is known."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from imagesentiment.cli import main
from imagesentiment.data import detect_format, k_fold, load_source
from imagesentiment.data.frames import VideoError
from imagesentiment.data.synthetic import synthetic_image
from imagesentiment.inference import KerasPredictor
from imagesentiment.video.score import score_video


def make_video(path, labels, fps=10, size=48, seed=0, codec="mp4v"):
    """One frame per entry of ``labels``, each a synthetic image of that class."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (size, size))
    for label in labels:
        frame, _ = synthetic_image(label, size, rng)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def predictor(trained_cnn):
    return KerasPredictor(trained_cnn[0])


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4", ["negative"] * 20 + ["positive"] * 20)


def test_timeline_follows_the_content(video, predictor, tmp_path):
    result = score_video(video, predictor, tmp_path, every=2, smoothing=3, progress=False)
    table = pd.read_csv(tmp_path / "frames.csv")
    assert table["frame"].tolist() == list(range(0, 40, 2))
    assert np.allclose(table["time_s"], table["frame"] / 10)
    first, second = table[table["frame"] < 20], table[table["frame"] >= 20]
    assert (first["label"] == "negative").mean() >= 0.9 and (second["label"] == "positive").mean() >= 0.9
    assert {"smoothed_positive", "smoothed_label", "positive"} <= set(table.columns)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames_read"] == 40 and not summary["truncated"]
    assert summary["share_of_time"]["negative"] == pytest.approx(0.5, abs=0.1)
    smoothed = table["smoothed_label"].value_counts(normalize=True)  # what the timeline's band shows
    assert summary["smoothed_share_of_time"] == {c: pytest.approx(smoothed.get(c, 0.0)) for c in table.columns[4:7]}
    assert summary["most_positive"]["frame"] >= 20 and summary["most_negative"]["frame"] < 20
    for name in ("timeline.png", "most_positive.jpg", "most_negative.jpg"):
        assert (tmp_path / name).stat().st_size > 0
    assert not result.truncated


def test_a_video_with_no_negative_frame_has_no_most_negative_picture(predictor, tmp_path):
    """The 'most negative' frame of a video whose every frame is positive was a positive one."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "most_negative.jpg").write_bytes(b"an earlier run's")
    clip = make_video(tmp_path / "happy.mp4", ["positive"] * 20, seed=3)
    score_video(clip, predictor, tmp_path / "out", every=2, progress=False, overwrite=True)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "most_negative" not in summary and not (tmp_path / "out" / "most_negative.jpg").exists()
    assert (tmp_path / "out" / "most_positive.jpg").stat().st_size > 0 and "most_positive" in summary


def test_per_second_sampling(video, predictor, tmp_path, capsys):
    result = score_video(video, predictor, tmp_path, per_second=2, progress=False)
    assert result.table["frame"].tolist() == [0, 5, 10, 15, 20, 25, 30, 35]
    assert result.summary["samples_per_second"] == 2 and capsys.readouterr().err == ""


def test_a_rate_or_window_the_video_cannot_give_is_said(video, predictor, tmp_path, capsys):
    """4 a second on a 10-frame-a-second video sampled 5 a second, and a window over more samples than were
    taken made one smoothed class of the whole video, without a word."""
    result = score_video(video, predictor, tmp_path / "a", per_second=4, progress=False)
    assert result.summary["samples_per_second"] == 5 and len(result.table) == 20
    assert "10 frames a second, so one frame in 2 is sampled: 5 a second, not 4" in capsys.readouterr().err
    score_video(video, predictor, tmp_path / "b", every=4, smoothing=20, progress=False)
    assert "smoothing over 20 samples, more than the 10 sampled" in capsys.readouterr().err


def test_overlay_keeps_frame_count_and_size(video, predictor, tmp_path):
    out = tmp_path / "overlay.mp4"
    score_video(video, predictor, tmp_path, every=4, overlay_path=out, batch_size=8, progress=False)
    capture = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 40 and frames[0].shape == (48, 48, 3)
    original = cv2.VideoCapture(str(video)).read()[1]
    assert np.abs(frames[0].astype(int) - original.astype(int)).mean() > 5, "the heat map is blended in"


def test_an_overlay_named_as_the_video_itself_is_refused_and_the_video_kept(video, predictor, tmp_path):
    source = tmp_path / "ad.mp4"
    source.write_bytes(video.read_bytes())
    (tmp_path / "link.mp4").symlink_to(source)
    for name in ("ad.mp4", "link.mp4"):
        with pytest.raises(VideoError, match="is the video being scored"):
            score_video(source, predictor, tmp_path / "out", overlay_path=tmp_path / name, progress=False)
    assert source.read_bytes() == video.read_bytes()


class _StopsOnSecondBatch:
    """A predictor whose explainer is interrupted (as by Ctrl-C) on its second batch."""

    def __init__(self, predictor):
        self.class_names, self.image_size, self.inner = predictor.class_names, predictor.image_size, predictor
        self.ratings, self.scores = predictor.ratings, predictor.scores

    def explainer(self):
        explain, calls = self.inner.explainer(), []

        def run(pixels):
            calls.append(len(pixels))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return explain(pixels)
        return run


def test_earlier_results_are_kept_unless_overwrite(video, predictor, trained_cnn, tmp_path, capsys):
    """A second run into the same folder once replaced the first silently, and a run stopped while writing
    the heat-map copy left a half-written video in its place."""
    out, copy = tmp_path / "out", tmp_path / "overlay.mp4"
    score_video(video, predictor, out, every=4, overlay_path=copy, batch_size=8, progress=False)
    written = {p.name: p.read_bytes() for p in out.iterdir()}, copy.read_bytes()
    with pytest.raises(FileExistsError, match=f"out: holds the results of an earlier run \\(of {video}\\); "
                       "pass overwrite=True \\(--overwrite\\)"):
        score_video(video, predictor, out, progress=False)
    for damaged in ("{broken", "[1, 2]"):  # a summary.json it did not write: still refused, not a crash
        (tmp_path / "other").mkdir(exist_ok=True)
        (tmp_path / "other" / "summary.json").write_text(damaged)
        with pytest.raises(FileExistsError, match="other: holds the results of an earlier run; pass overwrite"):
            score_video(video, predictor, tmp_path / "other", progress=False)
    shutil.rmtree(tmp_path / "other")
    with pytest.raises(FileExistsError, match="overlay.mp4: exists; pass overwrite=True"):
        score_video(video, predictor, tmp_path / "elsewhere", overlay_path=copy, progress=False)
    with pytest.raises(KeyboardInterrupt):
        score_video(video, _StopsOnSecondBatch(predictor), out, every=4, overlay_path=copy, batch_size=8,
                    progress=False, overwrite=True)
    assert ({p.name: p.read_bytes() for p in out.iterdir()}, copy.read_bytes()) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "overlay.mp4"], "no half-written copy left"


    trained_cnn[0].save(tmp_path / "cnn.keras")
    command = ["video", str(video), "--model", str(tmp_path / "cnn.keras"), "--out", str(out), "--every", "4",
               "--smooth", "3"]
    assert main(command) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(command + ["--overwrite"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    shares = ", ".join(f"{c} {v:.0%}" for c, v in summary["smoothed_share_of_time"].items())
    assert f"10 frames scored ({shares}, smoothed over 3 samples)" in capsys.readouterr().out


def test_bad_videos_give_clear_errors(tmp_path, predictor, video):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    for path, message in ((text, "not a video"), (empty, "empty file"), (cut, "cannot be decoded"),
                          (tmp_path / "missing.mp4", "no such file")):
        with pytest.raises(VideoError, match=message) as info:
            score_video(path, predictor, tmp_path / "out", progress=False)
        assert path.name in str(info.value)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        score_video(video, predictor, tmp_path / "out", batch_size=0, progress=False)


def test_damaged_video_keeps_the_frames_read(tmp_path, predictor, capsys):
    path = make_video(tmp_path / "long.mp4", ["positive"] * 40, seed=1)
    data = bytearray(path.read_bytes())
    moov = data.find(b"moov")
    data[moov // 2: moov - 8] = bytes(moov - 8 - moov // 2)  # damage the second half of the frame data
    path.write_bytes(data)
    result = score_video(path, predictor, tmp_path / "out", progress=False)
    assert result.truncated and 0 < result.summary["frames_read"] < 40
    assert len(result.table) == result.summary["frames_read"]
    assert "stopped after" in capsys.readouterr().err


def test_video_folder_data_set_splits_by_clip(tmp_path):
    for label in ("negative", "positive"):
        for clip in range(5):
            (tmp_path / "videos" / label).mkdir(parents=True, exist_ok=True)
            make_video(tmp_path / "videos" / label / f"clip{clip}.mp4", [label] * 30, seed=clip)
    (tmp_path / "videos" / "positive" / "broken.mp4").write_text("nope")
    images = load_source(tmp_path / "videos", "videos", every_seconds=1.0, frames_dir=tmp_path / "frames")
    assert len(images) == 10 * 3 and images.frame["group"].nunique() == 10
    assert any("broken.mp4" in note for note in images.notes)
    assert [Path(path).name for path, _ in images.left_out] == ["broken.mp4"]  # listed with the skipped files
    for train, held in k_fold(images, folds=5, seed=0):
        assert not set(train.frame["group"]) & set(held.frame["group"])
    # a folder of video clips is recognised as one (it was taken for image folders, all "empty"), also
    # once the frames sit in its hidden .frames folder; a sampling interval must be a positive number
    for _ in range(2):
        assert detect_format(tmp_path / "videos") == "videos"
        assert len(load_source(tmp_path / "videos")) == 30
    assert main(["check", str(tmp_path / "videos"), "--format", "videos"]) == 0  # argparse once refused it
    for every in (0, "often"):
        with pytest.raises(ValueError, match=f"every_seconds must be a number of seconds above 0, not {every!r}"):
            load_source(tmp_path / "videos", every_seconds=every)


@pytest.mark.parametrize("width", [320, 640, 1280])
def test_the_label_outline_hugs_the_white_text(width):
    """The dark outline spans the white text's box and at most its own width more on each side: it was drawn
    with a thicker stroke, whose wider glyph advance ran 10 px past the text ("0.87" read "0.837")."""
    from imagesentiment.video.score import annotate

    grey = np.full((width * 9 // 16, width, 3), 128, np.uint8)
    drawn = annotate(grey, np.zeros(grey.shape[:2], np.float32), "negative 0.87", opacity=0.0)
    white = np.argwhere((drawn > 200).all(axis=-1))
    dark = np.argwhere((drawn < 60).all(axis=-1))
    r = max(1, round(width / 640))
    assert len(white) and len(dark)
    assert (dark.min(0) >= white.min(0) - r - 1).all() and (dark.max(0) <= white.max(0) + r + 1).all()
