"""Integrity fails closed: a model this release exported is refused without its checksum record; older and
hand-made files load with a warning, any file with ``verify=False`` (``--trust-unverified``); a ``.keras`` file
whose config.json is too large is refused before it is parsed."""
from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import imagesentiment
from imagesentiment.cli import main
from imagesentiment.contract import CHECKSUM_NAME, RECORD
from imagesentiment.export import convert, export_savedmodel
from imagesentiment.inference import ModelFileError, TFLitePredictor, load_keras

from conftest import encode

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def tiny() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="d")(x))


def test_a_version_of_this_release_without_its_record_is_refused(tiny, tmp_path, capsys):
    version = export_savedmodel(tiny, tmp_path, "m", CLASSES)
    (version / RECORD).unlink()
    with pytest.raises(ModelFileError, match=rf"{version}: its checksum record {RECORD} is missing.*verify=False"):
        imagesentiment.load(version)
    with pytest.raises(ModelFileError, match="checksum record"):
        load_keras(version)  # explain and export rebuild it: checked alike
    capsys.readouterr()
    assert imagesentiment.load(version, verify=False).class_names == CLASSES
    assert f"warning: {version}: loaded without verifying" in capsys.readouterr().err


def test_a_hand_made_version_without_a_record_loads_with_a_warning(tmp_path, capsys):
    class Hand(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
        def predict_images(self, images):
            return {"probabilities": tf.nn.softmax(tf.reduce_mean(images, [1, 2]))}

    module = Hand()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"predict_images": module.predict_images})
    (tmp_path / "1" / "assets").mkdir(exist_ok=True)
    (tmp_path / "1" / "assets" / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    assert imagesentiment.load(tmp_path / "1").predict(np.zeros((8, 8, 3), np.uint8)).shape[0] == 1
    assert "warning: " in capsys.readouterr().err


def test_a_tflite_file_whose_checksum_entry_name_is_damaged_is_refused(tiny, tmp_path):
    content = convert(tiny, "float32", class_names=CLASSES)
    damaged = bytearray(content.replace(CHECKSUM_NAME.encode(), CHECKSUM_NAME.encode()[:-1] + b"X", 1))
    kernel = bytes(damaged).find(np.asarray(tiny.get_layer("d").kernel).tobytes())
    damaged[kernel + 5] ^= 1  # a weight changed too: the file still runs
    (tmp_path / "m.tflite").write_bytes(damaged)
    with pytest.raises(ModelFileError, match=r"m.tflite: its checksum record .* is missing.*verify=False"):
        imagesentiment.load(tmp_path / "m.tflite")
    assert TFLitePredictor(bytes(damaged), verify=False).class_names == CLASSES


def test_trust_unverified_loads_a_model_without_its_record_from_the_command_line(tiny, tmp_path, capsys):
    version = export_savedmodel(tiny, tmp_path, "m", CLASSES)
    (version / RECORD).unlink()
    photo = tmp_path / "a.png"
    photo.write_bytes(encode(np.full((8, 8, 3), 90, np.uint8)))
    assert main(["predict", str(photo), "--model", str(version), "--out", str(tmp_path / "a.csv")]) == 2
    assert "checksum record" in capsys.readouterr().err
    assert main(["predict", str(photo), "--model", str(version), "--out", str(tmp_path / "a.csv"),
                 "--trust-unverified"]) == 0
    assert "loaded without verifying" in capsys.readouterr().err


def test_a_keras_file_whose_config_is_too_large_is_refused_before_it_is_parsed(tiny, tmp_path):
    saved = tmp_path / "m.keras"
    tiny.save(saved)
    bloated = tmp_path / "bloated.keras"
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(bloated, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":  # valid JSON, 17 MB once inflated, 17 KB in the file
                data = json.dumps(json.loads(data)).encode() + b" " * 17_000_000
            target.writestr(item, data, zipfile.ZIP_DEFLATED)
    assert bloated.stat().st_size < 1_000_000
    with pytest.raises(ModelFileError, match=r"bloated.keras: its config.json holds 17,0\d\d,\d{3} bytes once "
                                             r"inflated, more than the 16 MB a model's description takes"):
        load_keras(bloated)
    assert load_keras(saved)[0].count_params() == tiny.count_params()
