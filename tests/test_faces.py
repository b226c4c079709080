"""Faces: the detector, the crops the faces model sees, and face rows from the API, ``predict --faces``,
``report`` and ``video --faces``; a small CNN trained in the test stands in for the faces model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imagesentiment.cli import main
from imagesentiment.faces.detect import Face, detect_faces
from imagesentiment.faces.scorer import MIN_FACE, face_crop, find_faces, predict_with_faces

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
CLASSES = ["negative", "neutral", "positive"]


def astronaut(mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert(mode))


def test_the_detector_finds_the_astronauts_face_and_none_in_a_blank_image():
    faces = detect_faces(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert 150 < face.left + face.width / 2 < 300 and 60 < face.top + face.height / 2 < 200  # her face, not the suit
    assert 60 < face.width < 160 and face.score > 0.8
    assert detect_faces(np.full((300, 400, 3), 128, np.uint8)) == []
    assert detect_faces(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_greyscale_rgba_and_16_bit_photos_are_searched_as_rgb(mode):
    image = Image.open(ASTRONAUT).convert("L" if mode == "I;16" else mode)
    pixels = np.asarray(image).astype(np.uint16) * 257 if mode == "I;16" else np.asarray(image)
    faces = detect_faces(pixels)
    assert len(faces) == 1 and abs(faces[0].left - detect_faces(astronaut())[0].left) < 10


def test_a_box_at_the_border_is_padded_not_shifted():
    photo = astronaut()
    face = detect_faces(photo)[0]
    cut = photo[face.top + face.height // 2:]  # the photo cut through the middle of her face
    box = Face(face.left, face.top - (face.top + face.height // 2), face.width, face.height, face.score)
    crop = face_crop(cut, box, (48, 48))
    whole = face_crop(photo, face, (48, 48))
    assert crop.shape == (48, 48, 3) and np.array_equal(crop[..., 0], crop[..., 2])  # greyscale, as FER-2013
    # the lower half is the same face in the same place; the upper half repeats the cut's edge down each column
    assert np.abs(crop[26:] - whole[26:]).mean() < 3
    assert np.ptp(crop[:22, :, 0], axis=0).max() < 2


def test_a_face_too_small_to_read_is_left_out_with_a_note_naming_the_photo():
    small = np.asarray(Image.open(ASTRONAUT).resize((64, 64)))  # her face becomes about 13 px
    notes: list[str] = []
    assert find_faces(small, "tiny.jpg", notes) == []
    assert notes and notes[0].startswith("tiny.jpg: a face of") and f"smaller than {MIN_FACE} px" in notes[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, trained_cnn) -> Path:
    """The small trained CNN (48 x 48 input, three classes) as a .keras file: the photos' and the faces' model."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    trained_cnn[0].save(path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    Image.open(ASTRONAUT).save(folder / "astronaut.jpg")
    Image.open(ASTRONAUT).convert("L").save(folder / "grey.png")
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(folder / "blank.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_the_api_gives_a_row_per_face_after_its_photos(tiny_model, photos):
    import imagesentiment

    model = imagesentiment.load(tiny_model)
    index = pd.Index(["a", "b", "c"])
    table = predict_with_faces(model, pd.Series([str(photos / "astronaut.jpg"), astronaut("RGBA"),
                                                 str(photos / "blank.png")], index=index), faces=model)
    assert list(table.index) == ["a", "a", "b", "b", "c"]
    assert table["face"].isna().tolist() == [True, False, True, False, True]
    assert list(table.columns[:6]) == ["face", "box_left", "box_top", "box_width", "box_height", "face_score"]
    assert table.iloc[1]["box_width"] > 50 and table.iloc[1]["label"] in CLASSES
    assert table["face_score"].isna().tolist() == table["face"].isna().tolist()  # the detector's, on face rows
    assert ((table["face_score"].dropna() >= 0.5) & (table["face_score"].dropna() <= 1)).all()
    surest = table["face_score"].max()
    fewer = predict_with_faces(model, [str(photos / "astronaut.jpg")], faces=model, min_score=min(1.0, surest + 1e-3))
    assert fewer["face"].notna().sum() == 0  # no box is as sure as that
    assert np.allclose(table[CLASSES].sum(axis=1), 1, atol=1e-4)


def test_predict_faces_writes_face_rows_with_boxes_and_a_photo_without_a_face_gets_one_row(tiny_model, photos,
                                                                                         tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["predict", str(photos), "--model", str(tiny_model), "--faces", "--faces-model", str(tiny_model),
                 "--out", str(out), "--explain", str(tmp_path / "maps")]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:6]) == ["path", "face", "box_left", "box_top", "box_width", "box_height"]
    by_name = table.assign(name=table["path"].map(lambda p: Path(p).name))
    assert by_name["name"].value_counts().to_dict() == {"astronaut.jpg": 2, "grey.png": 2, "blank.png": 1,
                                                        "broken.jpg": 1}
    faces = by_name[by_name["face"].notna()]
    assert (faces["box_width"] > 50).all() and faces["label"].isin(CLASSES).all() and faces["error"].isna().all()
    assert faces["heatmap"].map(lambda p: Path(p).name.endswith("-face0_gradcam_overlay.jpg") and Path(p).is_file()).all()
    broken = by_name[by_name["name"] == "broken.jpg"].iloc[0]
    assert isinstance(broken["error"], str) and pd.isna(broken["face"])
    assert "2 faces found" in capsys.readouterr().out
    # resumed: nothing scored twice, the face rows kept
    assert main(["predict", str(photos), "--model", str(tiny_model), "--faces", "--faces-model", str(tiny_model),
                 "--out", str(out), "--resume"]) == 0
    again = pd.read_csv(out)
    assert len(again) == len(table) and again["face"].notna().sum() == 2


def test_faces_model_is_refused_without_faces(tiny_model, photos, tmp_path, capsys):
    assert main(["predict", str(photos), "--faces-model", str(tiny_model), "--out", str(tmp_path / "s.csv")]) == 2
    assert "--faces-model applies only with --faces" in capsys.readouterr().err
    assert main(["predict", str(photos), "--min-face-score", "0.9", "--out", str(tmp_path / "s.csv")]) == 2
    assert "--min-face-score applies only with --faces" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(photos), "--faces", "--min-face-score", "1.5", "--out", str(tmp_path / "s.csv")])
    assert "--min-face-score: expected a number > 0 and <= 1, got '1.5'" in capsys.readouterr().err


def test_report_groups_the_faces_under_their_photos_card(tiny_model, photos, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["predict", str(photos), "--model", str(tiny_model), "--faces", "--faces-model", str(tiny_model),
                 "--out", str(out)]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert '<span id="total">3</span> images scored' in page  # the photos; faces are not counted as images
    assert page.count('class="card') == 3 and page.count('<figure class="face"') == 2
    for card in page.split('<div class="card')[1:]:
        name = card.split('data-name="')[1].split('"')[0]
        assert card.count('class="face"') == (1 if name in ("astronaut.jpg", "grey.png") else 0), name


def make_video(path: Path, frames: list[np.ndarray], fps: int = 5) -> Path:
    import cv2

    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_faces_gives_the_largest_face_of_each_frame(tiny_model, tmp_path, capsys):
    photo = np.asarray(Image.open(ASTRONAUT).resize((256, 256)))
    blank = np.full_like(photo, 90)
    video = make_video(tmp_path / "clip.mp4", [photo] * 3 + [blank] * 2)
    assert main(["video", str(video), "--model", str(tiny_model), "--faces", "--faces-model", str(tiny_model),
                 "--out", str(tmp_path / "out")]) == 0
    frames = pd.read_csv(tmp_path / "out" / "frames.csv")
    assert frames["faces"].tolist() == [1, 1, 1, 0, 0]
    assert frames["face_label"].iloc[:3].isin(CLASSES).all() and frames["face_label"].iloc[3:].isna().all()
    assert (frames["face_box_width"].iloc[:3] > 25).all()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["samples_with_a_face"] == 3 and abs(sum(summary["face_share_of_time"].values()) - 1) < 1e-6
    printed = capsys.readouterr().out
    assert "the largest face in 3 frames" in printed and "; 1 face track)" in printed
    tracked = pd.read_csv(tmp_path / "out" / "faces.csv")
    assert tracked["frame"].tolist() == [0, 1, 2] and tracked["track"].tolist() == [0, 0, 0]
    assert summary["tracks"] == [{"track": 0, "first_s": 0.0, "last_s": 0.4, "samples": 3,
                                  "share_of_time": summary["face_share_of_time"]}]


@pytest.fixture()
def shipped(tmp_path, tiny_model, monkeypatch) -> Path:
    """A stand-in for exported_models/ holding a faces model (the tiny CNN, version 1 as a run directory)."""
    import imagesentiment.contract

    (tmp_path / "exported" / "faces" / "1").mkdir(parents=True)
    (tmp_path / "exported" / "faces" / "1" / "model.keras").write_bytes(tiny_model.read_bytes())
    monkeypatch.setattr(imagesentiment.contract, "SHIPPED_MODELS", tmp_path / "exported")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "exported" / "faces" / "1"


def test_the_name_faces_selects_the_shipped_faces_model_in_every_command(shipped, tiny_model, photos,
                                                                         synthetic_root, tmp_path):
    import imagesentiment
    from imagesentiment.inference import resolve

    assert resolve("faces") == shipped and resolve("elsewhere/model.keras") == Path("elsewhere/model.keras")
    assert imagesentiment.load("faces").source == str(shipped)
    assert main(["predict", str(photos / "astronaut.jpg"), "--model", str(tiny_model), "--faces",
                 "--out", str(tmp_path / "faces.csv")]) == 0  # --faces-model left out: the shipped one
    assert pd.read_csv(tmp_path / "faces.csv")["face"].notna().sum() == 1
    assert main(["predict", str(photos / "blank.png"), "--model", "faces", "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["evaluate", "faces", "--data", str(synthetic_root), "--out", str(tmp_path / "evaluation")]) == 0
    assert (tmp_path / "evaluation" / "metrics.json").is_file()
    assert main(["explain", str(photos / "astronaut.jpg"), "--model", "faces", "--out", str(tmp_path / "maps")]) == 0
    (tmp_path / "faces").mkdir()  # a folder of that name here is what the name means
    assert resolve("faces") == Path("faces")


def test_a_missing_faces_model_is_named(tmp_path, monkeypatch):
    import imagesentiment
    import imagesentiment.contract

    monkeypatch.setattr(imagesentiment.contract, "SHIPPED_MODELS", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"no faces model: {tmp_path / 'faces'} holds no version"):
        imagesentiment.load("faces")


@pytest.mark.skipif(not (ROOT / "exported_models" / "faces").is_dir(),
                    reason="the shipped faces model (exported_models/faces) is not in this checkout")
def test_the_shipped_faces_model_reads_the_astronauts_face():
    import imagesentiment

    faces = imagesentiment.load("faces")
    assert faces.image_size == (48, 48)
    table = predict_with_faces(imagesentiment.load(), [str(ASTRONAUT)])
    assert len(table) == 2 and table.iloc[1]["label"] == "positive"  # she smiles
