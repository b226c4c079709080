"""Any method on an ensemble (:func:`imagesentiment.model.average_models`) or a model with test-time views
(:func:`imagesentiment.views.with_views`): each member's map of the whole image for the class the model
predicts (or the one asked for), normalised, then averaged."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .base import Explainer, clean_maps


class EnsembleExplainer(Explainer):
    """The members' explainers of one method, answering as one; built by ``get_explainer``. ``views``: the
    model's test-time views (:func:`imagesentiment.views.model_views`), the whole image first."""

    def __init__(self, members: Sequence[Explainer], views: Sequence[Callable]) -> None:  # no top-level logits
        self.members, self.views = list(members), list(views)
        self.name, self.classes, self.image_size = members[0].name, members[0].classes, members[0].image_size
        self.ratings = members[0].ratings

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The mean of the members' probabilities over the views, as the model's ``predictions`` layer computes."""
        return np.mean([member.probabilities(np.asarray(view(images))) for view in self.views
                        for member in self.members], axis=0)

    def compute(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.mean([clean_maps(member.compute(images, targets), images) for member in self.members], axis=0)
