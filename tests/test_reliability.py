"""Reliability, second round (issue 28): nothing lost with odd file names, two writers or a full disk; every
input a walk meets is used or named; exported models refuse what they cannot answer truthfully and are
verified when loaded."""
from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

import imagesentiment
from imagesentiment.table import journal as journal_module
from imagesentiment.data import DataError
from imagesentiment.data.pipeline import decode_or_reason
from imagesentiment.export import convert, export_savedmodel, read_metadata
from imagesentiment.contract import CHECKSUM_NAME, RECORD
from imagesentiment.inference import KerasPredictor, ModelFileError, TFLitePredictor
from imagesentiment.scoring.inputs import collect_images
from imagesentiment.table.journal import OutputInUseError
from imagesentiment.scoring.batch import predict_files

from conftest import encode, huge_png_header

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["negative", "neutral", "positive"]
PACKAGE_ROOT = Path(imagesentiment.__file__).resolve().parents[1]


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="d")(x))


@pytest.fixture(scope="module")
def tiny() -> keras.Model:
    return _tiny_model()


@pytest.fixture(scope="module")
def predictor(tiny) -> KerasPredictor:
    return KerasPredictor(tiny, CLASSES)


def _photos(folder: Path, count: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"photo_{i}.png" for i in range(count)]
    for path in paths:
        path.write_bytes(encode(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)))
    return paths


def _jpeg() -> bytes:
    return encode(np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8), "JPEG")


# -- data loss ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_file_name_that_is_not_utf8_gets_its_row_and_resume_finishes(tmp_path, predictor, suffix):
    folder = tmp_path / "photos"
    _photos(folder)
    odd = os.path.join(os.fsencode(folder), b"x_\xe9.jpg")  # Latin-1 bytes, as an old camera or a zip wrote them
    Path(os.fsdecode(odd)).write_bytes(_jpeg())
    paths = collect_images([folder])
    out = tmp_path / f"out{suffix}"
    table = predict_files(predictor, paths, out, batch_size=4, progress=False)
    assert len(table) == 6 and table["label"].notna().all(), table
    assert str(folder / "x_\\xe9.jpg") in set(table["path"])  # the name kept, its byte escaped
    again = predict_files(predictor, paths, out, batch_size=4, progress=False, resume=True)
    assert again.attrs["read_now"] == 0 and len(again) == 6


def test_a_predict_table_keeps_an_escaped_name_apart_from_its_file(tmp_path, predictor):
    """The escaped name is what the table shows; the file itself is still read (not a missing-file row)."""
    odd = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")))
    odd.write_bytes(encode(np.zeros((8, 8, 3), np.uint8)))
    table = predict_files(predictor, [str(odd)], tmp_path / "out.jsonl", progress=False)
    assert table.loc[0, "error"] in ("", None) or pd.isna(table.loc[0, "error"])
    assert table.loc[0, "path"].endswith("caf\\xe9.png")


_HOLDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from imagesentiment.inference import Predictor
    from imagesentiment.scoring.batch import predict_files

    class Slow(Predictor):
        def _run(self, pixels):
            time.sleep(0.3)
            return np.tile([0.2, 0.3, 0.5], (len(pixels), 1)).astype(np.float32)

    paths, out = sys.argv[2:], sys.argv[1]
    predict_files(Slow(["negative", "neutral", "positive"], (8, 8), 3), paths, out, batch_size=1,
                  progress=False)
""")


def _slow_predictor():
    from imagesentiment.inference import Predictor

    class Slow(Predictor):
        def _run(self, pixels):
            return np.tile([0.2, 0.3, 0.5], (len(pixels), 1)).astype(np.float32)
    return Slow(CLASSES, (8, 8), 3)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_two_runs_on_one_table_take_turns(tmp_path, suffix):
    """Two real processes: the second run is refused naming the first's process, or waits for it when asked."""
    paths = [str(p) for p in _photos(tmp_path / "photos", 12)]
    out = tmp_path / f"out{suffix}"
    lock = tmp_path / f"out{suffix}.lock"
    first = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), *paths], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    try:
        deadline = time.time() + 120
        while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        with pytest.raises(OutputInUseError, match=rf"being written by another predict run \(process {first.pid}"):
            predict_files(_slow_predictor(), paths, out, resume=True, progress=False)
        table = predict_files(_slow_predictor(), paths, out, resume=True, progress=False, wait=True)
        assert first.wait(60) == 0, first.stderr.read()
    finally:
        first.kill()
    assert table.attrs["read_now"] == 0, "the waiting run started before the first had finished"
    assert sorted(table["path"]) == sorted(paths)  # each image once
    assert not lock.exists()


def test_a_full_disk_names_the_file_and_says_resume_continues(tmp_path, predictor, monkeypatch):
    paths = [str(p) for p in _photos(tmp_path / "photos", 6)]
    out = tmp_path / "out.csv"
    writes = []

    class Filling(io.TextIOWrapper):
        def write(self, text: str) -> int:
            writes.append(text)
            if len(writes) == 2:  # the second batch: half of it fits
                super().write(text[:len(text) // 2])
                self.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(text)

    def filling_open(path, mode="r", encoding=None, **kwargs):
        return Filling(open(path, mode.replace("a", "ab") if "a" in mode else mode), encoding=encoding)

    monkeypatch.setattr(journal_module, "open", filling_open, raising=False)
    with pytest.raises(OSError) as raised:
        predict_files(predictor, paths, out, batch_size=2, progress=False)
    assert raised.value.filename == str(out) and raised.value.errno == errno.ENOSPC
    assert "--resume" in raised.value.strerror and "kept" in raised.value.strerror
    monkeypatch.undo()
    table = predict_files(predictor, paths, out, batch_size=2, progress=False, resume=True)
    assert sorted(table["path"]) == sorted(paths) and table["label"].notna().all()


# -- silent skips ------------------------------------------------------------------------------------------------

def test_an_unreadable_folder_and_a_folder_named_like_an_image_are_noted(tmp_path, monkeypatch):
    top = tmp_path / "photos"
    _photos(top, 2)
    locked = top / "locked"
    _photos(locked, 2)
    (top / "x.jpg").mkdir()
    scandir = os.scandir

    def refusing(path=".", *args):
        if os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return scandir(path, *args)

    monkeypatch.setattr(os, "scandir", refusing)
    notes: list[str] = []
    assert len(collect_images([top], notes=notes)) == 2
    assert any(note.startswith(f"{locked}: a folder that cannot be read (Permission denied)") for note in notes), notes
    assert any(note.startswith(f"{top / 'x.jpg'}: a folder named like an image") for note in notes), notes
    with pytest.raises(DataError, match=r"no images found in .*locked \(.*cannot be read \(Permission denied\)"):
        collect_images([locked])


# -- answers that lie ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signatures(tiny, tmp_path_factory):
    version = export_savedmodel(tiny, tmp_path_factory.mktemp("serving"), "m", CLASSES)
    return version, tf.saved_model.load(str(version)).signatures


@pytest.mark.parametrize("name, images, check", [
    ("NaN", np.full((2, 8, 8, 3), np.nan, np.float32), r"finite numbers in \[0, 255\]"),
    ("infinity", np.full((1, 8, 8, 3), np.inf, np.float32), r"finite numbers in \[0, 255\]"),
    ("1e6", np.full((1, 8, 8, 3), 1e6, np.float32), r"finite numbers in \[0, 255\]"),
    ("negative", np.full((1, 8, 8, 3), -3, np.float32), r"finite numbers in \[0, 255\]"),
    ("another size", np.zeros((1, 9, 9, 3), np.float32), r"images must be 8x8 pixels.*send the encoded images"),
])
def test_the_pixel_signatures_refuse_what_they_cannot_answer(signatures, name, images, check):
    _, signature = signatures
    for key in ("predict_images", "explain_images"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=check):
            signature[key](images=tf.constant(images))
    assert signature["predict_images"](images=tf.zeros([1, 8, 8, 3]))["label"].shape == (1,)


def test_serving_default_names_the_bad_item_of_a_batch(signatures):
    _, signature = signatures
    good = encode(np.zeros((10, 10, 3), np.uint8))
    for batch, message in [([good, b"not an image", good],
                            "item 1 of the batch is not a usable image: unknown image format"),
                           ([good, good, good[:40]], "item 2 of the batch is not a usable image: Invalid PNG data"),
                           ([b"", good], r"item 0 of the batch is not a usable image: empty"),
                           ([good, huge_png_header()], "item 1 of the batch is not a usable image: image too large")]:
        for key in ("serving_default", "explain"):
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                signature[key](image_bytes=tf.constant(batch))
    assert list(signature["serving_default"](image_bytes=tf.constant([good, good]))["label"].shape) == [2]


def test_the_api_checks_pixels_before_every_model_form(tiny, signatures, tmp_path):
    """The float16 TFLite file answers NaN pixels with NaN probabilities: the API's checks run before any form."""
    version, _ = signatures
    lite = tmp_path / "m.tflite"
    lite.write_bytes(convert(tiny, "float16", class_names=CLASSES))
    for model in (KerasPredictor(tiny, CLASSES), imagesentiment.load(version), imagesentiment.load(lite)):
        for bad in (np.full((8, 8, 3), np.nan, np.float32), np.full((8, 8, 3), 1e6, np.float32)):
            with pytest.raises(ValueError, match=r"must lie in \[0, 255\]"):
                model.predict(bad)


# -- messages -------------------------------------------------------------------------------------------------

def _gif(frames: int, size: int) -> bytes:
    images = [Image.new("RGB", (size, size), (40 * i, 0, 0)) for i in range(frames)]  # alike frames would be merged
    return encode(images[0], "GIF", save_all=True, append_images=images[1:])


def test_the_gif_clause_of_image_too_large_comes_with_gifs_only():
    _, png = decode_or_reason(huge_png_header(), (8, 8))
    assert png.startswith("image too large") and "GIF" not in png
    _, gif = decode_or_reason(_gif(3, 100), (8, 8), max_pixels=20_000)
    assert gif.startswith("image too large") and "(a GIF: all frames together)" in gif


def _huge_jpeg(width: int = 20_000, height: int = 20_000) -> bytes:
    """A small JPEG whose header declares ``width`` x ``height``."""
    data = bytearray(_jpeg())
    frame = data.find(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_a_jpeg_larger_than_the_decoder_takes_gets_a_clear_row(tmp_path, predictor, capfd):
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(_huge_jpeg())
    table = predict_files(predictor, [str(huge)], tmp_path / "out.csv", progress=False, max_pixels=10**10)
    assert table.loc[0, "error"].startswith("not a readable image: image too large: TensorFlow's JPEG decoder takes")
    assert "Image too large" not in capfd.readouterr().err


def test_libjpeg_lines_are_kept_off_stderr(tmp_path, predictor, capfd):
    whole = _jpeg()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "no_end.jpg").write_bytes(whole[:-2])  # libjpeg: "Premature end of JPEG data"
    (tmp_path / "photos" / "half.jpg").write_bytes(whole[:len(whole) // 2])  # "Improper call to JPEG library"
    capfd.readouterr()
    table = predictor.predict([whole[:-2], whole[:len(whole) // 2]], errors="keep")
    assert table["error"].str.contains("Invalid JPEG data").all()
    paths = collect_images([tmp_path / "photos"])
    predict_files(predictor, paths, tmp_path / "out.csv", progress=False)
    err = capfd.readouterr().err
    assert "JPEG" not in err, err


def test_a_0d_array_is_refused_with_a_clear_error(predictor):
    with pytest.raises(TypeError, match=r"a 0-d array \(3.0\) is not an image"):
        predictor.predict(np.array(3.0))


# -- untrusted model files -------------------------------------------------------------------------------------

def test_a_tflite_file_is_verified_against_its_checksum(tiny, tmp_path, capsys):
    content = convert(tiny, "float32", class_names=CLASSES)
    assert len(read_metadata(content, CHECKSUM_NAME)["sha256"]) == 64
    TFLitePredictor(content)
    assert "note" not in capsys.readouterr().err
    rng = np.random.default_rng(0)
    answered = 0
    for trial in range(20):
        mutated = bytearray(content)
        for position in rng.choice(np.arange(8, len(content)), 3, replace=False):
            mutated[position] ^= int(rng.integers(1, 256))
        try:
            TFLitePredictor(bytes(mutated))
            answered += 1
        except ModelFileError as exc:
            assert "differs from the checksum" in str(exc) or "not a usable TFLite model" in str(exc)
    assert answered == 0
    weights = bytearray(content)
    kernel = content.find(np.asarray(tiny.get_layer("d").kernel).tobytes())  # a weight changed: the file still runs
    weights[kernel + 5] ^= 1
    (tmp_path / "m.tflite").write_bytes(weights)
    with pytest.raises(ModelFileError, match=r"m.tflite: its content differs from the checksum.*verify=False"):
        imagesentiment.load(tmp_path / "m.tflite")
    assert imagesentiment.load(tmp_path / "m.tflite", verify=False).class_names == CLASSES


def test_a_tflite_file_whose_checksum_record_is_damaged_is_refused(tiny):
    """A byte changed inside the record's key left a record without a digest: it loaded as a model that has no
    record (with a note), although its record was there and damaged."""
    content = convert(tiny, "float32", class_names=CLASSES)
    damaged = content.replace(b'{"sha256": "', b'{"sha2X6": "', 1)
    with pytest.raises(ModelFileError, match="its checksum record cannot be read"):
        TFLitePredictor(damaged)


def test_a_third_party_tflite_file_loads_with_a_note(tmp_path, capsys):
    def model(images):
        return {"probabilities": tf.nn.softmax(tf.reduce_mean(images, [1, 2]))}

    function = tf.function(model, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
    content = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], tf.Module()).convert()
    (tmp_path / "other.tflite").write_bytes(content)
    assert imagesentiment.load(tmp_path / "other.tflite").predict(np.zeros((8, 8, 3), np.uint8)).shape[0] == 1
    assert "other.tflite: no checksum recorded" in capsys.readouterr().err


def test_a_savedmodel_is_verified_against_its_checksums(tiny, tmp_path, capsys):
    version = export_savedmodel(tiny, tmp_path, "m", CLASSES)
    assert "saved_model.pb" in json.loads((version / RECORD).read_text())["sha256"]
    imagesentiment.load(version)
    (version / "assets" / "classes.txt").write_text("positive\nneutral\nnegative\n")  # classes swapped
    with pytest.raises(ModelFileError, match=r"assets/classes.txt differs from the checksum.*verify=False"):
        imagesentiment.load(version)
    assert imagesentiment.load(version, verify=False).class_names == CLASSES[::-1]
    (version / RECORD).unlink()  # its record lost: refused, as one exported with a record (test_integrity.py)
    with pytest.raises(ModelFileError, match="its checksum record .* is missing"):
        imagesentiment.load(version)
