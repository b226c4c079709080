"""Fine Grad-CAM: Grad-CAM on the model's last feature map, which knows where the class evidence lies, sharpened
by Layer-CAM on the last feature map of twice its resolution (stride 16 under a stride-32 last map: EfficientNet-
Lite2's 17 x 17 under its 9 x 9 at 260 px). The two maps, each normalised, are combined by their geometric mean,
so that a spot lights up where both point."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..runtime import keras
from .base import CamExplainer, clean_maps, feature_layers
from .gradcam import GradCam
from .layercam import LayerCam


def finer_layer(model: keras.Model, layer: str) -> str:
    """The last layer before ``layer`` whose feature map has at least twice its resolution."""
    names = feature_layers(model)
    size = model.get_layer(layer).output.shape[1]
    finer = [name for name in names[:names.index(layer)] if model.get_layer(name).output.shape[1] >= 2 * size - 1]
    if not finer:
        raise ValueError(f"{model.name}: no feature map before {layer!r} at twice its resolution to sharpen it "
                         "with; use gradcam")
    return finer[-1]


class FineCam(CamExplainer):
    """Grad-CAM on ``layer`` (the model's target layer by default) times Layer-CAM on :func:`finer_layer`."""

    name = "finecam"

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None, layer: str | None = None) -> None:
        super().__init__(model, classes, layer)
        self.fine_layer = finer_layer(model, self.layer)
        self.parts = (GradCam(model, classes, self.layer), LayerCam(model, classes, self.fine_layer))

    def compute(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        coarse, fine = (clean_maps(part.compute(images, targets), images) for part in self.parts)
        return np.sqrt(coarse * fine)
