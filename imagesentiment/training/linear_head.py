"""A linear class head fitted to convergence (``train.head: linear``): in place of the head's first training
phase, multinomial logistic regression on the pooled features of the frozen model, each photo in every view
(its cached views with ``train.cached_views``, else the photo and its mirror), weighted as the training loss
weighs the photos, its L2 weight chosen by cross-validation over photos (scikit-learn's
``LogisticRegressionCV``). It is written into the model's ``logits`` layer, so that every path carries it; a
fine-tune phase (``train.fine_tune``) then starts from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import ActivationStore
from .config import Config
from ..data import ImageSet
from ..models.build import LOGITS, pooled_features
from ..runtime import keras
from .ratings import features, linear_fit, photo_folds

CS = np.logspace(-5, 0, 11)  # the inverse L2 weights chosen among (on standardised features)


@dataclass(frozen=True)
class LinearHead:
    """The inverse L2 weight chosen, and the photos and views the head was fitted on."""

    c: float
    photos: int
    views: int

    def __str__(self) -> str:
        return (f"linear head: logistic regression on {self.photos} training photos in {self.views} views each, "
                f"inverse L2 weight C = {self.c:.3g} chosen by cross-validation over the photos")


def view_features(model: keras.Model, images: ImageSet, config: Config, store: ActivationStore | None,
                  frozen: tuple[keras.Model, keras.Model] | None) -> tuple[np.ndarray, int]:
    """The pooled features of every view of every photo (row ``v * N + i``: view ``v`` of photo ``i``) and the
    number of views: from the stored activations of the ``frozen`` (bottom, top) parts, else photo and mirror."""
    if frozen is None:
        return features(model, images, config.train.batch_size), 2
    bottom, _ = frozen
    views = config.train.cached_views
    stored = store.activations(bottom, images, config, views)
    pooled = keras.Model(bottom.outputs, pooled_features(model))  # the part above the cut, to the pooling
    return np.concatenate([pooled.predict(stored[:, v].astype(np.float32), batch_size=config.train.batch_size,
                                          verbose=0) for v in range(views)]), views


def fit_linear_head(model: keras.Model, images: ImageSet, weights: np.ndarray | None, config: Config,
                    store: ActivationStore | None = None,
                    frozen: tuple[keras.Model, keras.Model] | None = None) -> LinearHead:
    """Fit the class head of ``model`` (changed in place) on the training photos ``images``, each weighted by
    ``weights`` (None: equally), as the module docstring says."""
    from sklearn.linear_model import LogisticRegressionCV

    x, views = view_features(model, images, config, store, frozen)
    photos = len(images)
    weights = np.ones(photos) if weights is None else weights
    logistic = LogisticRegressionCV(Cs=CS, l1_ratios=(0,), cv=photo_folds(photos, views, seed=config.seed),
                                    scoring="neg_log_loss", max_iter=3000, use_legacy_attributes=False)
    kernel, bias = linear_fit(logistic, x, np.tile(images.label_ids.to_numpy(), views),
                              sample_weight=np.tile(weights, views))
    if kernel.shape[1] == 1:  # two classes: scikit-learn's one logit, as two whose softmax is its sigmoid
        kernel, bias = np.hstack([-kernel / 2, kernel / 2]), np.hstack([-bias / 2, bias / 2])
    model.get_layer(LOGITS).set_weights([kernel, bias])
    return LinearHead(float(logistic.C_), photos, views)
