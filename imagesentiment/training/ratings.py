"""Valence and arousal beside the classes: a linear ``ratings`` head fitted to convergence on a trained model's
pooled features, with its L2 weight chosen by cross-validation (scikit-learn's ``RidgeCV``), and written into
the model as an ordinary Keras ``Dense`` layer, so that every path (SavedModel, TFLite, the predictors) carries
it.

Each photo's features are those of the photo and of its mirror image (the head learns from both); the photos
without both ratings (a Twitter photo, a folder per class) are left out of the fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import RATINGS
from ..data import ImageSet
from ..data.shards import image_batches
from ..models.build import ensemble_members, pooled_features, with_ratings
from ..runtime import keras, tf

ALPHAS = np.logspace(-1, 5, 25)  # the L2 weights RidgeCV chooses among (on standardised features)
MIN_RATED = 10  # fewer rated photos fit no head


@dataclass(frozen=True)
class RatingHead:
    """A fitted head: ``kernel`` ``(features, 2)`` and ``bias`` ``(2,)`` on the raw pooled features (the
    standardisation folded in), the L2 weight chosen and the photos it was fitted on."""

    kernel: np.ndarray
    bias: np.ndarray
    alpha: float
    photos: int


def rated(images: ImageSet) -> ImageSet:
    """The photos of ``images`` with both ratings (columns :data:`~imagesentiment.contract.RATINGS`)."""
    if not set(RATINGS) <= set(images.frame.columns):
        raise ValueError(f"the images carry no {' and '.join(RATINGS)} ratings (a source that rates its photos: "
                         "oasis, or a manifest with valence and arousal columns)")
    keep = images.frame[list(RATINGS)].notna().all(axis=1).to_numpy()
    return images.subset(np.flatnonzero(keep))


def features(model: keras.Model, images: ImageSet, batch_size: int = 32) -> np.ndarray:
    """The pooled features ``(2 N, F)`` of each photo and then of each mirrored photo, as the model sees them."""
    pooled = keras.Model(model.inputs, pooled_features(model))
    size = model.inputs[0].shape[1:3]
    batches = [batch for batch, _ in image_batches(images, size, batch_size)]
    return np.concatenate([np.concatenate([pooled(view, training=False).numpy() for view in views])
                           for views in (batches, [tf.image.flip_left_right(b) for b in batches])])


def photo_folds(photos: int, views: int, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds of the rows of ``photos`` photos seen in ``views`` views each (row ``v * photos + i``
    is view ``v`` of photo ``i``): a photo's views always on one side, so that its mirror does not answer for it."""
    from sklearn.model_selection import KFold

    rows = np.arange(photos * views).reshape(views, photos)
    return [(rows[:, train].ravel(), rows[:, test].ravel())
            for train, test in KFold(folds, shuffle=True, random_state=seed).split(np.arange(photos))]


def linear_fit(estimator, x: np.ndarray, y: np.ndarray, **fit_options) -> tuple[np.ndarray, np.ndarray]:
    """Fit a scikit-learn linear ``estimator`` on standardised ``x``; its ``(kernel, bias)`` on the raw ``x``
    (the standardisation folded back), as float32 weights of a Keras ``Dense`` layer."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    estimator.fit((x - mean) / scale, y, **fit_options)
    kernel = (np.atleast_2d(estimator.coef_) / scale).T.astype(np.float32)
    return kernel, (estimator.intercept_ - mean @ kernel).astype(np.float32)


def fit_head(x: np.ndarray, ratings: np.ndarray, views: int = 2) -> RatingHead:
    """Ridge regression of ``ratings`` ``(rows, 2)`` on standardised ``x`` (each photo in ``views`` views), its L2
    weight chosen by 5-fold cross-validation over photos, folded back onto the raw features."""
    from sklearn.linear_model import RidgeCV

    ridge = RidgeCV(alphas=ALPHAS, cv=photo_folds(len(x) // views, views))
    kernel, bias = linear_fit(ridge, x, ratings)
    return RatingHead(kernel, bias, float(ridge.alpha_), len(x) // views)


def add_ratings(model: keras.Model, images: ImageSet, batch_size: int = 32) -> tuple[keras.Model, RatingHead]:
    """``model`` with a ``ratings`` output (valence, arousal) fitted on the rated photos of ``images``."""
    photos = rated(images)
    if len(photos) < MIN_RATED:
        raise ValueError(f"{len(photos)} rated photos: too few to fit valence and arousal (at least {MIN_RATED})")
    truth = photos.frame[list(RATINGS)].to_numpy(np.float64)
    head = fit_head(features(model, photos, batch_size), np.concatenate([truth, truth]))
    return with_ratings(model, head.kernel, head.bias), head


def with_fitted_ratings(model: keras.Model, images: ImageSet, batch_size: int = 32) -> keras.Model:
    """``model`` with a ratings head fitted on the rated photos of ``images`` (a run's training side), saying
    so, where at least :data:`MIN_RATED` carry both ratings and the model is no ensemble; else ``model``."""
    rated_photos = len(rated(images)) if set(RATINGS) <= set(images.frame.columns) else 0
    if rated_photos < MIN_RATED:
        return model
    if len(ensemble_members(model)) > 1:
        print(f"ratings: {rated_photos} training photos are rated, but an ensemble takes no ratings head; "
              "train one member (train.ensemble: 1) for valence and arousal")
        return model
    fitted, head = add_ratings(model, images, batch_size)
    print(f"ratings: a valence and arousal head fitted on {head.photos} rated training photos (ridge, L2 weight "
          f"{head.alpha:.3g} by cross-validation over them)")
    return fitted

