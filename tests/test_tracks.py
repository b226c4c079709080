"""Face tracks: the linking of boxes from one sampled frame to the next on boxes made up for the test, and
``video --faces`` end to end on a clip of two faces (the astronaut's, and its mirror image) that move,
leave and come back; the small CNN trained by the tests stands in for both models."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imagesentiment.faces.scorer import face_scorer
from imagesentiment.faces.tracks import MAX_MISSED, link, overlaps
from imagesentiment.video.score import smooth, track_bands

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
CLASSES = ["negative", "neutral", "positive"]


def ids(frames):
    return [numbers.tolist() for numbers in link([np.asarray(boxes, float).reshape(-1, 4) for boxes in frames])]


def test_overlap_is_intersection_over_union():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]])
    scores = overlaps(boxes, boxes)
    assert scores[0, 0] == 1 and scores[0, 1] == pytest.approx(50 / 150) and scores[0, 2] == 0
    assert np.array_equal(scores, scores.T) and (scores[3] == 0).all()  # an empty box overlaps nothing
    assert overlaps(np.zeros((0, 4)), boxes).shape == (0, 4)


def test_two_faces_crossing_paths_slowly_keep_their_numbers_whatever_the_detectors_order():
    frames = []
    for step in range(11):
        a, b = (10 * step, 0, 40, 40), (100 - 10 * step, 10, 40, 40)  # they cross at step 5, b lower
        frames.append([a, b] if step % 2 else [b, a])
    assert overlaps(np.array([frames[4][1]]), np.array(frames[5])).min() > 0.3  # both faces could continue a
    assert ids(frames) == [[1, 0] if step % 2 else [0, 1] for step in range(11)]


def test_a_face_missed_for_a_few_samples_keeps_its_number_and_one_gone_longer_gets_a_new_one():
    face, other = (100, 100, 50, 50), (300, 100, 50, 50)
    assert ids([[face], [], [face]]) == [[0], [], [0]]
    assert ids([[face], *[[other]] * MAX_MISSED, [face, other]]) == [[0], *[[1]] * MAX_MISSED, [0, 1]]
    assert ids([[face], *[[]] * (MAX_MISSED + 1), [face]]) == [[0], *[[]] * (MAX_MISSED + 1), [1]]


def test_empty_frames_new_faces_and_one_face_per_track():
    assert ids([]) == [] and ids([[], []]) == [[], []]
    face = (0, 0, 40, 40)
    # numbered in order of first appearance; of two faces on one track's box, the closer continues it
    assert ids([[face], [(100, 0, 40, 40), (2, 0, 40, 40)], [(10, 0, 40, 40), (4, 0, 40, 40)]]) == \
        [[0], [1, 0], [2, 0]]
    assert ids([[face], [(30, 30, 40, 40)]]) == [[0], [1]]  # overlapping, but too little (IoU 0.03)


def test_the_timeline_shows_the_longest_tracks_in_their_order():
    table = pd.DataFrame({"frame": range(10), "label": ["neutral"] * 10})
    seen = {0: range(2), 1: range(10), 2: range(3), 3: range(1), 4: range(6), 5: range(4), 6: range(5)}
    faces = pd.DataFrame([{"frame": f, "track": t, "label": "positive" if t % 2 else "negative"}
                          for t, frames in seen.items() for f in frames])
    bands = track_bands(table, faces)
    assert list(bands) == ["face 1", "face 2", "face 4", "face 5", "face 6"]  # face 0 (2) and face 3 (1) left out
    assert bands["face 1"].tolist() == ["positive"] * 10
    assert bands["face 2"].iloc[:3].tolist() == ["negative"] * 3 and bands["face 2"].iloc[3:].isna().all()


def test_smoothing_by_track_averages_each_tracks_own_samples():
    rng = np.random.default_rng(0)
    faces = pd.DataFrame(rng.dirichlet([1, 1, 1], 7), columns=CLASSES).assign(track=[0, 1, 0, 1, 1, 0, 2])
    smoothed = smooth(faces, CLASSES, 3, by="track")
    for _, rows in faces.groupby("track"):
        expected = rows[CLASSES].rolling(3, center=True, min_periods=1).mean()
        assert np.allclose(smoothed.loc[rows.index, [f"smoothed_{c}" for c in CLASSES]], expected)
    assert smoothed["smoothed_label"].tolist() == [CLASSES[k] for k in
                                                   smoothed[[f"smoothed_{c}" for c in CLASSES]].to_numpy().argmax(1)]
    assert list(smooth(faces.iloc[:0], CLASSES, 3, by="track").columns) == list(smoothed.columns)  # no faces


def two_faces(left: int | None, right: int | None) -> np.ndarray:
    """A 320 x 128 frame with the astronaut's head at ``left`` px and its mirror image at ``right``
    (None: not there)."""
    head = np.asarray(Image.open(ASTRONAUT).crop((96, 0, 352, 256)).resize((112, 112)))
    frame = np.full((128, 320, 3), 90, np.uint8)
    if left is not None:
        frame[8:120, left:left + 112] = head
    if right is not None:
        frame[8:120, right:right + 112] = head[:, ::-1]
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """8 frames at 5 a second: both faces drawing closer (0-3), the left one alone (4-5), none (6), the left
    one again (7)."""
    frames = [two_faces(10 + 6 * k, 200 - 6 * k) for k in range(4)]
    frames += [two_faces(34 + 6 * k, None) for k in range(2)] + [two_faces(None, None), two_faces(46, None)]
    path = tmp_path_factory.mktemp("clip") / "two.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 128))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_faces_writes_a_row_per_face_with_its_track(clip, trained_cnn, tmp_path):
    from imagesentiment.inference import KerasPredictor
    from imagesentiment.video.score import score_video

    predictor = KerasPredictor(trained_cnn[0])
    result = score_video(clip, predictor, tmp_path, smoothing=3, progress=False, faces=face_scorer(predictor, predictor))
    frames, faces = pd.read_csv(tmp_path / "frames.csv"), pd.read_csv(tmp_path / "faces.csv")
    assert frames["faces"].tolist() == [2, 2, 2, 2, 1, 1, 0, 1]
    assert list(faces.columns[:7]) == ["frame", "time_s", "track", "box_left", "box_top", "box_width", "box_height"]
    assert {"label", "confidence", *CLASSES, "smoothed_label"} <= set(faces.columns)
    assert faces["label"].isin(CLASSES).all() and np.allclose(faces[CLASSES].sum(axis=1), 1, atol=1e-4)
    assert faces["frame"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 7]  # none in frame 6
    assert np.allclose(faces["time_s"], faces["frame"] / 5)
    assert faces["track"].iloc[:2].tolist() == [0, 1]  # numbered in the first frame's order
    left = faces["box_left"] < 160  # each face keeps its track, the left one after a frame without it too
    assert faces[left]["track"].nunique() == 1 and faces[~left]["track"].nunique() == 1
    on_left, on_right = faces[left]["track"].iloc[0], faces[~left]["track"].iloc[0]
    tracks = json.loads((tmp_path / "summary.json").read_text())["tracks"]
    assert {t["track"]: (t["first_s"], t["last_s"], t["samples"]) for t in tracks} == {on_left: (0.0, 1.4, 7),
                                                                                      on_right: (0.0, 0.6, 4)}
    for track in tracks:
        rows = faces[faces["track"] == track["track"]]
        assert track["share_of_time"] == {c: pytest.approx((rows["label"] == c).mean()) for c in CLASSES}
        assert sum(track["smoothed_share_of_time"].values()) == pytest.approx(1)
    assert result.faces is not None and result.faces[["frame", "track"]].equals(faces[["frame", "track"]])
    assert Image.open(tmp_path / "timeline.png").size == (1000, 520)  # a band for the frame and one per track
    again = score_video(clip, predictor, tmp_path, every=4, progress=False, overwrite=True)  # without faces
    assert again.faces is None and "tracks" not in again.summary and not (tmp_path / "faces.csv").exists()


def test_the_heat_map_copy_of_a_video_draws_each_faces_box(clip, trained_cnn, tmp_path):
    """video --overlay with --faces drew no face boxes."""
    from imagesentiment.inference import KerasPredictor
    from imagesentiment.video.score import score_video

    predictor = KerasPredictor(trained_cnn[0])
    copy = tmp_path / "copy.mp4"
    score_video(clip, predictor, tmp_path / "out", progress=False, faces=face_scorer(predictor, predictor),
                overlay_path=copy)
    faces = pd.read_csv(tmp_path / "out" / "faces.csv")
    capture = cv2.VideoCapture(str(copy))
    ok, first = capture.read()
    capture.release()
    assert ok
    face = faces[faces["frame"] == 0].iloc[0]
    top, left = int(face["box_top"]), int(face["box_left"])
    edge = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)[top:top + 2, left + 4:left + int(face["box_width"]) - 4]
    yellow = (edge[..., 0] > 170) & (edge[..., 1] > 170) & (edge[..., 2] < 120)  # the box's top edge, in yellow
    assert yellow.any(axis=0).mean() > 0.8, edge[:, ::8]
