"""Any method on an ensemble (:func:`imagesentiment.model.average_models`): each member's map for the
class the ensemble predicts (or the one asked for), normalised, then averaged."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Explainer, clean_maps


class EnsembleExplainer(Explainer):
    """The members' explainers of one method, answering as one; built by ``get_explainer``."""

    def __init__(self, members: Sequence[Explainer]) -> None:  # no super().__init__: no top-level logits
        self.members = list(members)
        self.name, self.classes, self.image_size = members[0].name, members[0].classes, members[0].image_size

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The mean of the members' probabilities, as the ensemble's ``predictions`` layer computes."""
        return np.mean([member.probabilities(images) for member in self.members], axis=0)

    def compute(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.mean([clean_maps(member.compute(images, targets), images) for member in self.members], axis=0)
