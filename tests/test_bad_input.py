"""Bad input at every entry point (issue 9): one table of files, each entry point fed all of them.

Every file is either *usable* (it gets a prediction, the same one at every entry point, the one
its pixels give in the training pipeline) or *unusable* (it is skipped and reported with the
reason, or refused with an error naming it; never a prediction). docs/input-handling.md is this
table in words.

Related tests elsewhere: the checks' reasons (test_checks.py), declared sizes refused before
decoding (test_pipeline.py), manifest rules (test_sources.py), broken videos (test_video.py),
bytes through a fresh serving process (test_export.py, test_soak.py).
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from imagesentiment.data import DataError, check_image, check_set, decode_and_resize, from_folder, from_manifest
from imagesentiment.data.synthetic import synthetic_image
from imagesentiment.explain import load_images
from imagesentiment.export import convert, export_savedmodel
from imagesentiment.inference import KerasPredictor, TFLitePredictor
from imagesentiment.scoring.batch import predict_files

from conftest import encode, huge_png_header

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["negative", "neutral", "positive"]

# unusable file -> what the reason says (any entry point's wording)
UNUSABLE = {
    "zero_byte.jpg": r"empty",
    "truncated.jpg": r"Truncated|Invalid JPEG data",
    "truncated.png": r"Invalid PNG data|[Tt]runcated",
    "text.jpg": r"not an image|unknown image format: its first bytes are none of JPEG, PNG, GIF, BMP or WebP",
    "huge.png": r"image too large",  # 30,000 x 30,000 declared: refused before decoding
    "many_frames.gif": r"image too large",  # 8 frames of 3,000 x 3,000: the decoder would read them all
}
# usable file -> the label it must get (None: no colour left to tell, only consistency is checked)
USABLE = {
    "plain.png": "positive", "rgba.png": "positive", "palette.png": "positive", "cmyk.jpg": "positive",
    "sixteen_bit_rgb.png": "positive", "animated.gif": "positive",  # its first frame; the second is negative
    "spaces and ünïcode.webp": "positive", "png_named.jpg": "positive", "grey.jpg": None, "sixteen_bit_grey.png": None, "one_pixel.png": None,
}


def write_corpus(folder: Path) -> dict[str, Path]:
    """Every kind of file in the table, written into ``folder``."""
    rng = np.random.default_rng(7)
    positive = Image.fromarray(synthetic_image("positive", 48, rng)[0])
    negative = Image.fromarray(synthetic_image("negative", 48, rng)[0])
    rgba = positive.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)))
    wide = np.asarray(positive).astype(np.uint16) * 257 + rng.integers(0, 257, (48, 48, 3)).astype(np.uint16)
    grey16 = Image.fromarray(np.asarray(positive.convert("L")).astype(np.uint16) * 257)
    frames = [Image.new("P", (3000, 3000), i % 2) for i in range(2)]
    contents = {
        "zero_byte.jpg": b"",
        "truncated.jpg": encode(positive, "JPEG")[:200],
        "truncated.png": encode(positive, "PNG")[:200],
        "text.jpg": b"this is not an image\n",
        "huge.png": huge_png_header(30_000, 30_000),
        "many_frames.gif": encode(frames[0], "GIF", save_all=True, append_images=frames * 4),
        "plain.png": encode(positive, "PNG"),
        "rgba.png": encode(rgba, "PNG"),
        "palette.png": encode(positive.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "cmyk.jpg": encode(positive.convert("CMYK"), "JPEG", quality=95),
        "sixteen_bit_rgb.png": tf.io.encode_png(wide).numpy(),
        "animated.gif": encode(positive, "GIF", save_all=True, append_images=[negative]),
        "spaces and ünïcode.webp": encode(positive, "WEBP", lossless=True),
        "png_named.jpg": encode(positive, "PNG"),  # the content decides, not the extension
        "grey.jpg": encode(positive.convert("L"), "JPEG", quality=95),
        "sixteen_bit_grey.png": encode(grey16, "PNG"),
        "one_pixel.png": encode(np.full((1, 1, 3), 200, np.uint8), "PNG"),
    }
    assert set(contents) == set(UNUSABLE) | set(USABLE)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in contents}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "photos")


@pytest.fixture(scope="module")
def reference(trained_cnn, corpus) -> dict[str, np.ndarray]:
    """What the model says of each usable file's pixels as the training pipeline decodes them."""
    model, _ = trained_cnn
    pixels = np.stack([decode_and_resize(tf.constant(corpus[name].read_bytes()), (48, 48)).numpy()
                       for name in USABLE]).astype(np.float32)
    return dict(zip(USABLE, model(pixels, training=False).numpy()))


class Refused(str):
    """An entry point's error message or skip reason for one file."""


def check_outcomes(outcomes: dict[str, object], reference: dict[str, np.ndarray], atol: float,
                   labels_only: bool = False) -> None:
    """``outcomes``: file name -> probabilities (or a label) or :class:`Refused` (why)."""
    assert set(outcomes) == set(UNUSABLE) | set(USABLE)
    for name, pattern in UNUSABLE.items():
        assert isinstance(outcomes[name], Refused), f"{name} got a prediction: {outcomes[name]}"
        assert re.search(pattern, outcomes[name]), f"{name}: {outcomes[name]!r} does not say why ({pattern})"
    for name, label in USABLE.items():
        got = outcomes[name]
        assert not isinstance(got, Refused), f"{name} was refused: {got}"
        expected = reference[name]
        if labels_only:
            assert got == CLASSES[int(expected.argmax())], name
        else:
            np.testing.assert_allclose(got, expected, atol=atol, err_msg=name)
        if label is not None:
            assert CLASSES[int(np.argmax(expected))] == label, f"{name} decoded wrongly: {expected}"


def test_decoding_matches_an_independent_decoder(corpus):
    """The pipeline's full-size RGB equals Pillow's reading of the first frame (16-bit: the top 8 bits);
    JPEG decoders may differ by rounding."""
    for name in USABLE:
        data = corpus[name].read_bytes()
        ours = tf.io.decode_image(data, channels=3, expand_animations=False).numpy().astype(int)
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            if image.mode.startswith("I;16"):
                theirs = np.repeat((np.asarray(image).astype(int) >> 8)[..., None], 3, axis=-1)
            else:
                theirs = np.asarray(image.convert("RGB")).astype(int)
        assert ours.shape == theirs.shape, name
        difference = np.abs(ours - theirs)
        if name.endswith(".jpg"):  # two JPEG decoders (CMYK: two colour conversions): rounding, not another picture
            assert difference.mean() < 2 and difference.max() <= 16, name
        else:
            assert difference.max() == 0, name


def test_data_checks_skip_each_unusable_file_with_its_reason(corpus):
    checked = check_set(from_folder(corpus["plain.png"].parent.parent, classes=["photos"]))
    reasons = dict(zip(checked.skipped["path"].map(lambda p: Path(p).name), checked.skipped["reason"]))
    assert sorted(reasons) == sorted(UNUSABLE)
    for name, pattern in UNUSABLE.items():
        assert re.search(pattern, reasons[name]), (name, reasons[name])
    assert sorted(Path(p).name for p in checked.images.frame["path"]) == sorted(USABLE)
    assert (checked.images.frame["width"] > 0).all()
    assert check_image(corpus["plain.png"].parent).reason.startswith("unreadable")  # a folder named as a file


def test_predict_files_reports_each_file_once(trained_cnn, corpus, reference, tmp_path):
    paths = [str(p) for p in corpus.values()]
    table = predict_files(KerasPredictor(trained_cnn[0]), paths, tmp_path / "out.csv", batch_size=4, progress=False)
    assert table["path"].tolist() == paths
    rows = table.set_index(table["path"].map(lambda p: Path(p).name))
    check_outcomes({name: Refused(row.error) if isinstance(row.error, str) and row.error
                    else row[CLASSES].to_numpy(float) for name, row in rows.iterrows()}, reference, atol=1e-5)
    assert pd.read_csv(tmp_path / "out.csv")["path"].tolist() == paths  # the non-ASCII name survives the CSV


def _one_by_one(predict, corpus) -> dict[str, object]:
    outcomes = {}
    for name, path in corpus.items():
        try:
            outcomes[name] = predict(path)
        except ValueError as exc:
            assert str(path) in str(exc), f"the error does not name the file: {exc}"
            outcomes[name] = Refused(exc)
    return outcomes


def test_inference_api_keras_model(trained_cnn, corpus, reference):
    predictor = KerasPredictor(trained_cnn[0])
    check_outcomes(_one_by_one(lambda p: predictor.probabilities(str(p))[0], corpus), reference, atol=1e-5)


@pytest.fixture(scope="module")
def tflite(trained_cnn) -> bytes:
    return convert(trained_cnn[0], "float32")


def test_tflite_runner(tflite, corpus, reference):
    predictor = TFLitePredictor(tflite)
    check_outcomes(_one_by_one(lambda p: predictor.probabilities(p)[0], corpus), reference, atol=1e-4)


def test_explain_images(trained_cnn, corpus, reference):
    model, _ = trained_cnn

    def explain(path):
        batch, originals = load_images([path], (48, 48))
        assert originals[0].dtype == np.uint8 and originals[0].shape[-1] == 3
        return model(batch, training=False).numpy()[0]

    check_outcomes(_one_by_one(explain, corpus), reference, atol=1e-5)


def test_explain_command_skips_unusable_files_and_explains_the_rest(trained_cnn, corpus, reference, tmp_path, capsys):
    from imagesentiment.cli import main

    model, _ = trained_cnn
    model.save(tmp_path / "model.keras")
    out = tmp_path / "explained"
    assert main(["explain", str(corpus["plain.png"].parent), "--model", str(tmp_path / "model.keras"),
                 "--out", str(out), "--batch-size", "4"]) == 0
    skipped = dict(re.findall(r"^skipped (.+?): (.*)$", capsys.readouterr().err, flags=re.M))
    table = pd.read_csv(out / "predictions.csv")
    outcomes = {Path(p).name: Refused(reason) for p, reason in skipped.items()}
    outcomes.update(zip(table["path"].map(lambda p: Path(p).name), table["label"]))
    check_outcomes(outcomes, reference, atol=0, labels_only=True)
    assert len(list(out.glob("*_finecam_overlay.jpg"))) == len(USABLE)  # the default method: finecam


@pytest.fixture(scope="module")
def serving(trained_cnn, tmp_path_factory):
    version = export_savedmodel(trained_cnn[0], tmp_path_factory.mktemp("serving"), "m")
    return tf.saved_model.load(str(version)).signatures["serving_default"]


def test_serving_signature(serving, corpus, reference):
    def answer(path):
        try:
            return serving(image_bytes=tf.constant([path.read_bytes()]))["probabilities"].numpy()[0]
        except tf.errors.InvalidArgumentError as exc:
            return Refused(exc.message)

    check_outcomes({name: answer(path) for name, path in corpus.items()}, reference, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError):  # one bad image fails its whole request (HTTP 400)
        serving(image_bytes=tf.constant([corpus["plain.png"].read_bytes(), b""]))
    assert serving(image_bytes=tf.constant([corpus["plain.png"].read_bytes()]))["label"].numpy()[0] == b"positive"


ARRAYS = {  # pixels handed over as arrays: accepted the way files are decoded, or refused with the reason
    "uint16 RGB": (lambda rgb: rgb.astype(np.uint16) * 257, None),
    "greyscale (H, W)": (lambda rgb: rgb.mean(-1).astype(np.uint8), None),
    "greyscale (H, W, 1)": (lambda rgb: rgb.mean(-1, keepdims=True).astype(np.uint8), None),
    "RGBA": (lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)]), None),
    "1 x 1": (lambda rgb: rgb[:1, :1], None),
    "no pixels": (lambda rgb: rgb[:0], "has no pixels"),
    "two channels": (lambda rgb: rgb[..., :2], r"must be \(H, W, 3\) RGB"),
    "NaN": (lambda rgb: np.full(rgb.shape, np.nan, np.float32), r"must lie in \[0, 255\]"),
    "scaled to [-1, 1]": (lambda rgb: rgb / 127.5 - 1, r"must lie in \[0, 255\]"),
    "scaled to [0, 1]": (lambda rgb: rgb / 255.0, r"look like the \[0, 1\] scale.*multiply by 255"),
    "booleans": (lambda rgb: rgb > 128, "must be numbers"),
}


@pytest.mark.parametrize("kind", ["keras", "tflite"])
def test_pixel_arrays(trained_cnn, tflite, kind):
    predictor = KerasPredictor(trained_cnn[0]) if kind == "keras" else TFLitePredictor(tflite)
    rgb = synthetic_image("positive", 48, np.random.default_rng(3))[0]
    for name, (make, refusal) in ARRAYS.items():
        array = make(rgb)
        if refusal:
            with pytest.raises(ValueError, match=refusal):
                predictor.predict(array)
            continue
        got = predictor.probabilities(array)
        assert got.shape == (1, 3) and np.isfinite(got).all(), name
        if name in ("uint16 RGB", "RGBA"):  # the same picture as the 8-bit RGB array
            np.testing.assert_allclose(got, predictor.probabilities(rgb), atol=1e-4, err_msg=name)
        if name.startswith("greyscale"):
            grey = np.repeat(rgb.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
            np.testing.assert_allclose(got, predictor.probabilities(grey), atol=1e-4, err_msg=name)


def test_training_skips_unusable_files_and_reports_them(tmp_path, synthetic_root, corpus, capsys):
    """A scraped folder: bad and odd files mixed into the classes, and an empty class folder."""
    from imagesentiment.cli import main

    data = tmp_path / "data"
    for label in ("negative", "positive"):
        (data / label).mkdir(parents=True)
        for source in sorted((synthetic_root / label).glob("*.png"))[:15]:
            (data / label / source.name).write_bytes(source.read_bytes())
    (data / "neutral").mkdir()
    for name, path in corpus.items():
        (data / "positive" / name).write_bytes(path.read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {{source: {{path: {data}}}}}\nmodel: {{kind: cnn, input_size: 32, widths: [8, 16]}}\n"
                      "train: {epochs: 1, batch_size: 16}\nsplit: {validation: 0.2, test: 0.2}\n")
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "neutral: empty class folder" in printed
    skipped = pd.read_csv(tmp_path / "run" / "skipped_files.csv")
    reasons = dict(zip(skipped["path"].map(lambda p: Path(p).name), skipped["reason"]))
    assert sorted(reasons) == sorted(UNUSABLE)
    for name, pattern in UNUSABLE.items():
        assert re.search(pattern, reasons[name]) and name in printed, name
    used = pd.concat([pd.read_csv(tmp_path / "run" / f"split_{s}.csv") for s in ("train", "validation", "test")])
    assert sorted(set(used["path"].map(lambda p: Path(p).name)) & set(corpus)) == sorted(USABLE)
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == CLASSES  # all three outputs kept
    assert (tmp_path / "run" / "model.keras").is_file()


def test_training_refuses_a_bad_manifest_before_anything_trains(tmp_path, synthetic_root, capsys):
    from imagesentiment.cli import main

    (tmp_path / "data").mkdir()
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.write_text("path,label\n../escape.png,positive\n")
    (tmp_path / "escape.png").write_bytes((synthetic_root / "positive" / "0000.png").read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {{source: {{path: {manifest}}}}}\nmodel: {{kind: cnn, input_size: 32}}\n")
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "'../escape.png' is outside the data root" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.fixture
def manifest_root(tmp_path, synthetic_root) -> Path:
    root = tmp_path / "root"
    (root / "sub dir").mkdir(parents=True)
    image = (synthetic_root / "positive" / "0000.png").read_bytes()
    for name in ("a.png", "sub dir/ünïcode name.png"):
        (root / name).write_bytes(image)
    (tmp_path / "outside.png").write_bytes(image)
    return root


MANIFEST_ROWS = [  # (path, label) -> what from_manifest does
    ([("a.png", "positive"), ("sub dir/ünïcode name.png", " negative ")], 2, None),
    ([("a.png", "positive"), ("missing.png", "positive")], None, r"'missing.png' does not exist"),
    ([("a.png", "positive"), ("sub dir", "positive")], None, r"'sub dir' is a folder"),
    ([("a.png", "positive"), ("", "positive")], None, r"line 3 has an empty path"),
    ([("../outside.png", "positive")], None, r"'../outside.png' is outside the data root"),
    ([("{outside}", "positive")], None, r"is outside the data root"),  # an absolute path elsewhere
    ([("a.png", "joyful")], None, r"labels \['joyful'\] \(lines \[2\]\) are not in the class list"),
    ([("a.png", "")], None, r"labels \[''\]"),
    ([("a.png", "positive")] * 3 + [("sub dir/ünïcode name.png", "neutral")], 2, "2 duplicated rows left out"),
]


@pytest.mark.parametrize("rows, kept, outcome", MANIFEST_ROWS)
def test_manifest_rows(manifest_root, rows, kept, outcome):
    rows = [(p.format(outside=manifest_root.parent / "outside.png"), label) for p, label in rows]
    csv = manifest_root / "manifest.csv"
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(csv, index=False)
    if kept is None:
        with pytest.raises(DataError, match=outcome) as info:
            from_manifest(csv)
        assert str(csv) in str(info.value)
        return
    images = from_manifest(csv)
    assert len(images) == kept and all(Path(p).is_file() for p in images.frame["path"])
    assert sorted(images.frame["label"]) == sorted({label.strip() for _, label in rows})
    if outcome:
        assert any(outcome in note for note in images.notes)


@pytest.mark.parametrize("text, refusal", [
    # the first row longer than the header: pandas took its leading fields as an index and the file
    # crashed later with a TypeError (or, told index_col=False, would drop the extra fields unsaid)
    ("path,label\na.png,posi,tive\na.png,positive\n", r"lines \[2\] have more fields than the header \(2\)"),
    ("path,label\na.png,positive\na.png,posi,tive\n", r"not a readable CSV file \(.*line 3, saw 3\)$"),
])
def test_manifest_rows_with_too_many_fields_are_refused_by_line(manifest_root, text, refusal):
    (manifest_root / "manifest.csv").write_text(text)
    with pytest.raises(DataError, match=refusal):
        from_manifest(manifest_root / "manifest.csv")


def test_manifest_rows_skipped_or_allowed_on_request(manifest_root):
    csv = manifest_root / "manifest.csv"
    pd.DataFrame([("a.png", "positive"), ("missing.png", "positive"), ("", "neutral"), ("../outside.png", "negative")],
                 columns=["path", "label"]).to_csv(csv, index=False)
    images = from_manifest(csv, missing="skip", allow_outside_root=True)
    assert images.frame["label"].tolist() == ["positive", "negative"]
    assert any("2 images left out in all, each listed with the skipped files" in note for note in images.notes)
    skipped = check_set(images).skipped  # what skipped_files.csv lists, beside the files that do not decode
    assert [Path(p).name for p in skipped["path"]] == ["missing.png", manifest_root.name]
    assert skipped["reason"].str.contains("does not exist|line 4 has an empty path").all()


def test_empty_class_folder_is_noted_and_the_class_kept(tmp_path, synthetic_root):
    for label in ("negative", "positive"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "0.png").write_bytes((synthetic_root / label / "0000.png").read_bytes())
    (tmp_path / "neutral").mkdir()
    images = from_folder(tmp_path)
    assert images.classes == tuple(CLASSES) and images.counts() == {"negative": 1, "neutral": 0, "positive": 1}
    assert images.notes == [f"{tmp_path / 'neutral'}: empty class folder"]


def _video(path: Path, size: int, frames: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (size, size))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(cv2.cvtColor(synthetic_image("positive", size, rng)[0], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_entry_point(trained_cnn, tmp_path, corpus):
    """Broken videos (empty, text, truncated) are in test_video.py; here: odd names, tiny frames, a still image."""
    from imagesentiment.data.frames import VideoError
    from imagesentiment.video.score import score_video

    predictor = KerasPredictor(trained_cnn[0])
    named = _video(tmp_path / "a clip ünïcode.avi", 48)
    result = score_video(named, predictor, tmp_path / "named", progress=False)
    assert len(result.table) == 6 and (result.table["label"] == "positive").all()
    tiny = score_video(_video(tmp_path / "tiny.avi", 8), predictor, tmp_path / "tiny", progress=False)
    assert len(tiny.table) == 6 and np.isfinite(tiny.table[CLASSES].to_numpy()).all()
    with pytest.raises(VideoError, match="text.avi"):
        (tmp_path / "text.avi").write_bytes(corpus["text.jpg"].read_bytes())
        score_video(tmp_path / "text.avi", predictor, tmp_path / "text", progress=False)
