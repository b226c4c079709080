"""Calibrated probabilities: a temperature fitted on labelled answers, folded into a model's logits layer by
training, so that the predicted classes stay and the probabilities mean what they say."""
from __future__ import annotations

import numpy as np
import pytest

from imagesentiment.data import ImageSet
from imagesentiment.evaluation.evaluate import predict_probabilities
from imagesentiment.evaluation.metrics import calibration_metrics, fit_temperature, softmax, tempered
from imagesentiment.training.calibration import MIN_IMAGES, calibrate


def test_the_fitted_temperature_undoes_an_overconfident_scale():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(logits)])  # labels drawn as the true logits say
    assert fit_temperature(3 * logits, y) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(logits / 2, y) == pytest.approx(0.5, rel=0.1)
    before, after = (calibration_metrics(y, tempered(3 * logits, t))["ece"] for t in (1.0, 3.0))
    assert after < before / 3


def test_views_are_tempered_one_by_one_then_averaged():
    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.5, 0.4, 0.1]]]))
    np.testing.assert_allclose(tempered(logits, 2.0), (softmax(logits[:, 0] / 2) + softmax(logits[:, 1] / 2)) / 2)


def test_calibrate_folds_the_temperature_into_the_model(trained_cnn):
    import keras

    model, images = trained_cnn
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    logits = copy.get_layer("logits")
    logits.set_weights([w * 4 for w in logits.get_weights()])  # four times too sure of itself
    labels = images.frame["label"].to_numpy().copy()
    labels[::3] = np.roll(labels[::3], 1)  # and a third of the labels it is judged on now disagree with it
    judged = ImageSet(images.frame.assign(label=labels), images.classes)
    before = predict_probabilities(copy, images)
    fitted = calibrate(copy, judged)
    after = predict_probabilities(copy, images)
    assert fitted.temperature > 1.5 and fitted.images == len(images)
    assert fitted.log_loss[1] < fitted.log_loss[0]
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))  # the same answers
    np.testing.assert_allclose(after, tempered(np.log(before), fitted.temperature), atol=1e-4)
    assert "temperature" in str(fitted)


def test_too_few_validation_images_leave_the_model_as_it_was(trained_cnn):
    model, images = trained_cnn
    weights = model.get_layer("logits").get_weights()
    assert calibrate(model, images.subset(np.arange(MIN_IMAGES - 1))) is None
    for kept, old in zip(model.get_layer("logits").get_weights(), weights):
        np.testing.assert_array_equal(kept, old)
