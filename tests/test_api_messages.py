"""What a user of the Python API and of export sees (issue 27): no TensorFlow start-up lines, a loaded model
that says what it is, export saying what it does, and layer names where int8 keeps some in float."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import imagesentiment
from imagesentiment.export import export_savedmodel, export_tflite, image_arrays
from imagesentiment.inference import KerasPredictor

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["sad", "meh", "glad"]
START_UP = re.compile(r"cuInit|oneDNN|absl::InitializeLog|cudart_stub")


@pytest.fixture(scope="module")
def exported(trained_cnn, tmp_path_factory) -> dict[str, Path]:
    model, images = trained_cnn
    root = tmp_path_factory.mktemp("exported")
    x, y = image_arrays(images.subset(range(0, 90, 3)), (48, 48), images.classes)
    version = export_savedmodel(model, root / "serving", "m", CLASSES)
    written = export_tflite(model, root / "lite", ["float32", "int8"], (x, y), x, CLASSES)
    return {"savedmodel": version, "float32": written["float32"][0], "int8": written["int8"][0]}


@pytest.mark.parametrize("level, quiet", [(None, True), ("0", False)])
def test_the_api_keeps_tensorflows_start_up_lines_out_unless_a_log_level_is_set(exported, level, quiet):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    script = f"import imagesentiment; print(imagesentiment.load({str(exported['savedmodel'])!r}).class_names)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(CLASSES)
    assert bool(START_UP.search(done.stderr)) != quiet, done.stderr


def test_a_model_with_half_precision_weights_answers_without_onednns_notice(trained_cnn, tmp_path):
    """The shipped model stores float16 weights: its first answer made oneDNN write an error-level line."""
    version = export_savedmodel(trained_cnn[0], tmp_path, "m", CLASSES, weight_precision="float16")
    script = ("import numpy as np, imagesentiment; p = imagesentiment.load(%r); "
              "print(p.predict([np.full((48, 48, 3), 128, np.uint8)])['label'][0])" % str(version))
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in CLASSES and not START_UP.search(done.stderr), done.stderr


def test_a_loaded_model_says_its_form_path_classes_and_input_size(trained_cnn, exported):
    for form, path in exported.items():
        text = repr(imagesentiment.load(path))
        assert text.startswith("<SavedModel " if form == "savedmodel" else "<TFLite model "), text
        assert str(path) in text and "classes sad, meh, glad; input 48x48" in text, text
    assert "(int8)" in repr(imagesentiment.load(exported["int8"]))
    assert repr(KerasPredictor(trained_cnn[0], CLASSES)).startswith("<Keras model ")


def test_export_says_what_it_does_and_names_layers_kept_in_float(trained_cnn, tmp_path, capsys):
    model, images = trained_cnn
    x, y = image_arrays(images.subset(range(0, 90, 3)), (48, 48), images.classes)
    export_tflite(model, tmp_path, ["float32", "int8"], (x, y), x, CLASSES, max_layer_error=0.0)
    out = capsys.readouterr().out
    for step in ("float32: converting", "float32: checking with LiteRT on 30 test images", "int8: converting",
                 "int8: calibrating", "int8: checking with LiteRT"):
        assert step in out, out
    kept = next(line for line in out.splitlines() if "kept in float" in line)
    named = kept.split(": ", 2)[-1].split(", ")
    layers = {layer.name for layer in model.layers}
    assert {"last_conv", "logits"} <= set(named), kept
    assert all(name in layers or re.fullmatch(r"\d+ ops? outside the model's layers", name) for name in named), kept
    assert json.loads((tmp_path / "classes.json").read_text()) == CLASSES
