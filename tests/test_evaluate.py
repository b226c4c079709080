import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from imagesentiment.data import ImageSet
from imagesentiment.evaluate import CROP_KEEP, classification_metrics, evaluate_model, predict_probabilities, summary

CLASSES = ("negative", "neutral", "positive")


def _from_confusion(matrix):
    """Label pairs that produce exactly the given confusion matrix."""
    pairs = [(t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) for _ in range(n)]
    return np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])


def test_metrics_of_a_known_confusion_matrix():
    matrix = [[8, 1, 1], [2, 6, 2], [0, 3, 7]]
    y_true, y_pred = _from_confusion(matrix)
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["confusion_matrix"] == matrix
    assert m["accuracy"] == pytest.approx(21 / 30)
    assert m["per_class"]["negative"]["precision"] == pytest.approx(8 / 10)
    assert m["per_class"]["neutral"]["recall"] == pytest.approx(6 / 10)
    assert m["per_class"]["positive"]["precision"] == pytest.approx(7 / 10)
    neutral_f1 = 2 * (6 / 10) * (6 / 10) / (6 / 10 + 6 / 10)
    assert m["per_class"]["neutral"]["f1"] == pytest.approx(neutral_f1)
    assert m["macro"]["f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert not m["single_class"]


def test_absent_classes_are_not_scored_and_collapse_is_flagged():
    y_true = np.array([0, 0, 2, 2, 2])
    m = classification_metrics(y_true, np.array([2, 2, 2, 2, 2]), CLASSES)
    assert m["classes"] == ["negative", "positive"]
    assert m["single_class"] and "single class (positive)" in summary(m)


def test_evaluate_model_writes_its_files(trained_cnn, tmp_path):
    model, images = trained_cnn
    metrics = evaluate_model(model, images, tmp_path, flip_tta=True)
    assert metrics["accuracy"] > 0.9
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    for name in ("confusion_matrix.png", "confusion_matrix.csv", "predictions.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_test_time_views_average_the_crops_and_mirrors(tmp_path):
    """A photo red on its left 30 %: the model's output is the mean colour, so each view's red share
    is known from its box: the whole 0.3, the centre crop and the four corner crops (0.3 - left) / keep."""
    pixels = np.zeros((64, 160, 3), np.uint8)
    pixels[:, :48, 0] = 255
    Image.fromarray(pixels).save(tmp_path / "left_red.png")
    images = ImageSet(pd.DataFrame({"path": [str(tmp_path / "left_red.png")], "label": ["neutral"]}))
    inputs = keras.Input((64, 64, 3))
    mean_colour = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs) / 255.0)
    o = 1 - CROP_KEEP
    crops = [(0.3 - o / 2) / CROP_KEEP] + [0.3 / CROP_KEEP] * 2 + [(0.3 - o) / CROP_KEEP] * 2
    expected = (0.3 + sum(crops)) / 6
    red = {(flip, crop): predict_probabilities(mean_colour, images, flip_tta=flip, crop_tta=crop)[0, 0]
           for flip in (False, True) for crop in (False, True)}
    assert red[False, False] == pytest.approx(0.3, abs=0.01)
    assert red[True, False] == pytest.approx(0.3, abs=0.01)  # the mirror keeps the red share
    assert red[False, True] == pytest.approx(expected, abs=0.01)
    assert red[True, True] == pytest.approx(expected, abs=0.01)
    assert abs(expected - 0.3) > 0.02  # the crops do change what the model sees
