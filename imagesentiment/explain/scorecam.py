"""Score-CAM: feature maps weighted by the class probability of the image masked by each of them.

Gradient-free and expensive (one forward pass per channel and image);
Faster Score-CAM keeps only the ``max_N`` channels of largest spatial variance.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
from ..runtime import keras
from tf_keras_vis.scorecam import Scorecam

from .base import CamExplainer


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Keep Keras's ``predict`` progress bars (tf-keras-vis calls it) off the terminal."""
    enabled = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if enabled:
            keras.config.enable_interactive_logging()


class ScoreCam(CamExplainer):
    """Score-CAM (Wang et al. 2020) through tf-keras-vis; ``max_N`` > 0 makes it Faster Score-CAM."""

    name = "scorecam"
    visualization_class = Scorecam

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None, layer: str | None = None,
                 max_N: int | None = None, batch_size: int = 32) -> None:
        super().__init__(model, classes, layer)
        channels = int(self.scores.get_layer(self.layer).output.shape[-1])
        self.max_N = None if max_N is None else min(max_N, channels)
        self.batch_size = batch_size

    def options(self) -> dict[str, Any]:
        return {**super().options(), "max_N": self.max_N, "batch_size": self.batch_size}

    def compute(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One image at a time: on a batch tf-keras-vis scores the union of every image's top
        channels for every image, and its masked copies of the whole batch fill memory.
        """
        one = super().compute
        with quiet_progress():
            return np.concatenate([one(images[i:i + 1], targets[i:i + 1]) for i in range(len(images))])


class FasterScoreCam(ScoreCam):
    """Score-CAM on the ``max_N`` channels of largest spatial variance (10 by default)."""

    name = "faster_scorecam"

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None, layer: str | None = None,
                 max_N: int = 10, batch_size: int = 32) -> None:
        super().__init__(model, classes, layer, max_N, batch_size)
