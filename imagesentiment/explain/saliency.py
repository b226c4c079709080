"""Vanilla saliency (the largest absolute input gradient over colour channels) and SmoothGrad
(that gradient averaged over noisy copies of the image).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..runtime import keras
from tf_keras_vis.saliency import Saliency as SaliencyMap

from .base import Explainer


class Saliency(Explainer):
    """Vanilla saliency (Simonyan et al. 2014) through tf-keras-vis; ``smooth_samples`` > 0 makes it SmoothGrad."""

    name = "saliency"
    visualization_class = SaliencyMap

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None,
                 smooth_samples: int = 0, smooth_noise: float = 0.2) -> None:
        super().__init__(model, classes)
        self.smooth_samples = smooth_samples
        self.smooth_noise = smooth_noise

    def options(self) -> dict[str, Any]:
        return {"smooth_samples": self.smooth_samples, "smooth_noise": self.smooth_noise, "normalize_map": False}


class SmoothGrad(Saliency):
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over ``smooth_samples`` noisy copies
    (noise of ``smooth_noise`` times the image's value range; tf-keras-vis draws it from NumPy's global generator).
    """

    name = "smoothgrad"

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None,
                 smooth_samples: int = 20, smooth_noise: float = 0.2) -> None:
        super().__init__(model, classes, smooth_samples, smooth_noise)
