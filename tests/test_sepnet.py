"""The sepnet model kind (depthwise-separable residual blocks) and the recipe keys it trains with: label
smoothing, the cosine schedule, rotation and random erasing. Tiny synthetic data, seconds."""
from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from imagesentiment.cli import main
from imagesentiment.contract import EXPLAIN
from imagesentiment.data import augment
from imagesentiment.data.constants import Augmentation
from imagesentiment.explain.onepass import GradCamPredictor
from imagesentiment.inference import load_keras
from imagesentiment.models.build import SmoothedCrossentropy, build_sepnet, find_target_layer
from imagesentiment.training.callbacks import CosineSchedule
from imagesentiment.training.config import ConfigError, load_config
from imagesentiment.training.fit import train

RECIPE = ("train: {epochs: 6, batch_size: 16, learning_rate: 0.003, patience: 8, schedule: cosine, "
          "label_smoothing: 0.1, augmentation: {rotation: 15, erasing: 0.5}}")


def write_config(folder: Path, images: Path, model: str = "{kind: sepnet, input_size: 48, widths: [8, 16, 32]}",
                 train_section: str = RECIPE) -> Path:
    path = folder / "config.yaml"
    path.write_text(f"data: {{source: {{path: {images}}}}}\nmodel: {model}\n{train_section}\n"
                    "split: {validation: 0.2, test: 0.2}\n")
    return path


@pytest.fixture(scope="module")
def sepnet_run(tmp_path_factory, synthetic_root) -> tuple[Path, dict]:
    """A sepnet trained with the whole recipe on the synthetic set: its run folder and test metrics."""
    folder = tmp_path_factory.mktemp("sepnet")
    return folder / "run", train(load_config(write_config(folder, synthetic_root)), folder / "run")


def test_sepnet_is_small_residual_and_separable_with_a_gradcam_layer():
    model = build_sepnet(3, (48, 48, 3), (16, 32, 64, 128, 256))
    assert 150_000 < model.count_params() < 250_000  # mini-Xception's size class, a sixth of the faces CNN
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"SeparableConv2D", "Add", "BatchNormalization"} <= kinds
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Add)]) == 4
    assert {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.9}
    assert find_target_layer(model) == "last_conv"
    assert model.get_layer("last_conv").output.shape[1:] == (6, 6, 256)  # three poolings, the last block unpooled
    with pytest.raises(ValueError, match="stem's filters and at least one block's"):
        build_sepnet(3, (48, 48, 3), (16,))


def test_a_sepnet_run_learns_with_a_cosine_rate_and_loads_back(sepnet_run):
    run, metrics = sepnet_run
    assert metrics["accuracy"] > 0.8  # chance is 1/3
    rates = pd.read_csv(run / "history.csv")["learning_rate"].to_numpy()
    assert rates[0] == pytest.approx(0.003, rel=1e-3)  # the end of the warm-up epoch: the peak
    assert np.all(np.diff(rates) < 0) and rates[-1] < 0.0001  # then down the half cosine to about 0
    model, classes = load_keras(run)  # the smoothed loss it was compiled with is registered: it loads
    assert isinstance(model.loss, SmoothedCrossentropy) and model.loss.smoothing == pytest.approx(0.1)
    assert classes == ["negative", "neutral", "positive"]


def test_a_sepnet_exports_with_its_heat_map_to_savedmodel_and_tflite(sepnet_run, tmp_path):
    run, _ = sepnet_run
    model, _ = load_keras(run)
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    expected = GradCamPredictor(model)(x)
    assert main(["export", str(run), "--out", str(tmp_path / "serving"), "--name", "small"]) == 0
    served = tf.saved_model.load(str(tmp_path / "serving" / "small" / "1"))
    out = served.signatures["explain_images"](images=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["heatmap"].numpy(), expected["heatmap"].numpy(), atol=1e-5)
    assert main(["export", str(run), "--format", "tflite", "--quantize", "float16", "--name", "small",
                 "--out", str(tmp_path / "tflite")]) == 0
    interpreter = Interpreter(model_path=str(tmp_path / "tflite" / "small-float16.tflite"))
    answer = interpreter.get_signature_runner(EXPLAIN)(images=x)
    assert answer["class_id"].tolist() == expected["class_id"].numpy().tolist()
    np.testing.assert_allclose(answer["heatmap"], expected["heatmap"].numpy(), atol=0.02)


def test_a_sepnet_explains_and_evaluates_from_the_command_line(sepnet_run, synthetic_root, tmp_path):
    run, _ = sepnet_run
    image = sorted(Path(synthetic_root).rglob("*.png"))[0]
    assert main(["explain", str(image), "--model", str(run), "--out", str(tmp_path / "explain")]) == 0
    assert len(list((tmp_path / "explain").glob(f"{image.stem}-????????_finecam_overlay.jpg"))) == 1
    assert main(["evaluate", str(run), "--flip-tta", "--out", str(tmp_path / "evaluate")]) == 0
    again = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    assert again["test_time_views"] == {"flip_tta": True, "crop_tta": False} and again["accuracy"] > 0.8
    assert sum(c["support"] for c in again["per_class"].values()) == 18  # the run's test side


def test_smoothed_crossentropy_is_the_cross_entropy_against_smoothed_targets():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    smoothed = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[labels]
    expected = -(smoothed * np.log(probabilities)).sum(axis=1).mean()
    assert float(SmoothedCrossentropy(0.1)(labels, probabilities)) == pytest.approx(expected, rel=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)
    assert float(SmoothedCrossentropy(0.0)(labels, probabilities)) == pytest.approx(float(plain), rel=1e-5)


def test_the_cosine_rate_warms_up_for_an_epoch_then_falls_to_zero():
    schedule = CosineSchedule(0.01, epochs=5, steps=10)
    assert schedule.rate(0, 0) == pytest.approx(0.001) and schedule.rate(0, 9) == pytest.approx(0.01)
    assert schedule.rate(1, 0) == pytest.approx(0.01)
    assert schedule.rate(3, 0) == pytest.approx(0.005)  # half way down the four epochs after the warm-up
    assert schedule.rate(4, 9) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 39 / 40)))
    assert CosineSchedule(0.01, epochs=1, steps=4).rate(0, 0) == pytest.approx(0.01)  # one epoch: no warm-up


def test_rotation_and_erasing_change_the_image_as_asked():
    image = tf.constant(np.tile(np.linspace(0, 255, 48, dtype=np.float32)[:, None, None], (1, 48, 3)))
    seed = tf.constant([3, 4], tf.int64)
    plain = Augmentation(zoom=0.0, jitter=0.0)
    base = augment(image, seed, plain).numpy()
    np.testing.assert_array_equal(augment(image, seed, plain).numpy(), base)  # reproducible from its seed
    turned = augment(image, seed, Augmentation(zoom=0.0, jitter=0.0, rotation=30)).numpy()
    assert np.abs(turned - base).mean() > 1 and turned.min() >= 0 and turned.max() <= 255
    grey = np.full((48, 48, 3), 128, np.float32)  # reflection fills the corners: a flat image stays flat
    np.testing.assert_allclose(augment(grey, seed, Augmentation(zoom=0.0, jitter=0.0, rotation=30)), grey, atol=0.5)
    erased = augment(image, seed, Augmentation(zoom=0.0, jitter=0.0, erasing=1.0)).numpy()
    rows, cols = np.nonzero(np.any(erased != base, axis=-1))
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0.02 * 48 * 48 * 0.5 <= box <= 0.25 * 48 * 48 * 1.1  # one rectangle of 2-25 % of the image
    np.testing.assert_array_equal(erased[..., 0], erased[..., 2])  # grey noise on a grey face
    never = augment(image, seed, Augmentation(zoom=0.0, jitter=0.0, erasing=0.0)).numpy()
    np.testing.assert_array_equal(never, base)


@pytest.mark.parametrize("model, train_section, message", [
    ("{kind: sepnet, widths: [16]}", "train: {}", "model.widths: expected a list of widths >= 1: one at least, two"),
    ("{kind: sepnet, widths: [8, 16, 32, 64], input_size: 2}", "train: {}", "model.input_size: expected at least 4"),
    ("{kind: sepnets}", "train: {}", "model.kind: expected one of 'cnn', 'sepnet', 'transfer'"),
    ("{kind: sepnet}", "train: {label_smoothing: 1}", r"train.label_smoothing: expected a share in \[0, 1\)"),
    ("{kind: sepnet}", "train: {schedule: linear}", "train.schedule: expected one of plateau, cosine"),
    ("{kind: sepnet}", "train: {augmentation: {rotation: 200}}", "train.augmentation.rotation: expected degrees"),
    ("{kind: sepnet}", "train: {augmentation: {erasing: 1.5}}", "train.augmentation.erasing: expected a chance"),
    ("{kind: sepnet}", "train: {augmentation: {zoom: -0.1}}", "train.augmentation.zoom: expected a share"),
    ("{kind: sepnet}", "train: {augmentation: {shear: 5}}", "unknown key train.augmentation.shear"),
])
def test_bad_sepnet_and_recipe_values_are_refused_by_key(tmp_path, synthetic_root, model, train_section, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, synthetic_root, model, train_section))
