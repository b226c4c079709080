"""Calibrated probabilities: one temperature fitted on a trained model's validation side and folded into its
``logits`` layer, so that a top probability of 0.8 is right about 8 times in 10 (``train.calibrate``).

The temperature is the one that minimises the log-loss of the validation answers (one view each); the classes
a model predicts never change, and the test side it is judged on played no part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import ImageSet
from ..evaluation.evaluate import predict_probabilities
from ..evaluation.metrics import fit_temperature, tempered_log_loss
from ..models.build import with_temperature
from ..runtime import keras

MIN_IMAGES = 30  # fewer validation images than this: the temperature would follow their noise, none is fitted


@dataclass(frozen=True)
class Temperature:
    """The fitted ``temperature``, the ``images`` it was fitted on, and their log-loss before and after."""

    temperature: float
    images: int
    log_loss: tuple[float, float]

    def __str__(self) -> str:
        return (f"calibration: temperature {self.temperature:.3g} fitted on {self.images} validation images "
                f"(log-loss {self.log_loss[0]:.4f} -> {self.log_loss[1]:.4f})")


def calibrate(model: keras.Model, validation: ImageSet) -> Temperature | None:
    """Fit a temperature on ``validation`` and fold it into ``model`` (changed in place); None, with the model
    as it was, where the side has fewer than :data:`MIN_IMAGES` images."""
    if len(validation) < MIN_IMAGES:
        return None
    y = validation.label_ids.to_numpy()
    logits = np.log(np.maximum(predict_probabilities(model, validation), 1e-12))
    temperature = fit_temperature(logits, y)
    with_temperature(model, temperature)
    return Temperature(temperature, len(y), (tempered_log_loss(logits, y), tempered_log_loss(logits, y, temperature)))
