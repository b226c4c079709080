"""Valence and arousal trained with the classes (``train.ratings_loss``): the model carries its ``ratings`` output
from the start, and both phases minimise the class loss plus ``ratings_loss`` times the mean squared error of the
ratings, each rating standardised on the rated training photos. Photos without both ratings (a Twitter photo)
take no part in that error: their targets are NaN and the loss leaves them out.

The output is the one :func:`~imagesentiment.models.build.with_ratings` makes (a linear ``ratings`` layer on the
pooled features, on OASIS's 1-7 scale), so a model trained so exports and serves as one with a fitted head.
"""
from __future__ import annotations

import numpy as np

from ..contract import RATINGS
from ..data import ImageSet
from ..models.build import pooled_features, rating_names, with_ratings
from ..runtime import keras
from .ratings import MIN_RATED  # fewer rated training photos: no ratings output, as no fitted head


def rating_targets(images: ImageSet) -> np.ndarray:
    """``(N, 2)`` float32 valence and arousal of each image; NaN where a photo lacks either (or the set has none)."""
    frame = images.frame
    if not set(RATINGS) <= set(frame.columns):
        return np.full((len(frame), len(RATINGS)), np.nan, np.float32)
    targets = frame[list(RATINGS)].to_numpy(np.float32)
    targets[np.isnan(targets).any(axis=1)] = np.nan
    return targets


def rating_scale(images: ImageSet) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and standard deviation of each rating over the photos of ``images`` rated for both, or None under
    :data:`MIN_RATED` of them."""
    targets = rating_targets(images)
    rated = targets[~np.isnan(targets).any(axis=1)]
    if len(rated) < MIN_RATED:
        return None
    return rated.mean(axis=0), np.maximum(rated.std(axis=0), 1e-3)


def joint_model(model: keras.Model, images: ImageSet) -> keras.Model:
    """``model`` with a ``ratings`` output starting at the mean ratings of ``images`` (a zero kernel); ``model``
    itself where fewer than :data:`MIN_RATED` of them are rated for both."""
    scale = rating_scale(images)
    if scale is None:
        return model
    features = pooled_features(model).shape[-1]
    return with_ratings(model, np.zeros((features, len(RATINGS)), np.float32), scale[0])


@keras.saving.register_keras_serializable(package="imagesentiment")
class MaskedRatingsError(keras.losses.Loss):
    """Mean squared error of the ratings in units of ``scale`` (one per rating), over the photos of the batch whose
    targets are finite: a photo with NaN targets adds nothing, and the error is their mean, not diluted by the
    photos without ratings; sample weights are ignored. Registered, so that a saved model compiled with it loads."""

    def __init__(self, scale: tuple[float, ...] = (1.0, 1.0), name: str = "masked_ratings_error", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.scale = tuple(float(s) for s in scale)

    def __call__(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor, sample_weight=None) -> keras.KerasTensor:
        """The loss, every rated photo weighing the same: the sample weights (the classes' balance, the Twitter
        photos' share) are the class loss's."""
        return super().__call__(y_true, y_pred, None)

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        known = ops.all(ops.isfinite(y_true), axis=-1)
        error = (y_pred - ops.where(ops.isfinite(y_true), y_true, y_pred)) / ops.array(self.scale, y_pred.dtype)
        per_photo = ops.where(known, ops.mean(ops.square(error), axis=-1), 0.0)
        # Keras averages over the whole batch: scale up so that the average is over the rated photos alone
        share = ops.cast(ops.shape(per_photo)[0], y_pred.dtype) / ops.maximum(ops.sum(ops.cast(known, y_pred.dtype)),
                                                                                1.0)
        return per_photo * share

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": list(self.scale)}


def compile_args(model: keras.Model, class_loss: object, weight: float, images: ImageSet) -> dict:
    """``model.compile``'s loss, loss weights and metrics: the class loss alone with accuracy for a model without
    a ``ratings`` output; else one per output, the ratings' error weighted ``weight``, standardised on ``images``."""
    if not has_ratings_output(model):
        return {"loss": class_loss, "metrics": ["accuracy"]}
    scale = rating_scale(images)
    std = tuple(scale[1]) if scale is not None else (1.0,) * len(RATINGS)
    return {"loss": [class_loss, MaskedRatingsError(std)], "loss_weights": [1.0, float(weight)],
            "metrics": [["accuracy"], []]}


def targets(images: ImageSet, with_rating: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """What a phase fits ``images`` to: class ids, or (class ids, rating targets) for a model with ratings."""
    ids = images.label_ids.to_numpy().astype(np.int32)
    return (ids, rating_targets(images)) if with_rating else ids


def has_ratings_output(model: keras.Model) -> bool:
    """Whether ``model``'s outputs are (classes, ratings)."""
    return len(model.outputs) == 2 and bool(rating_names(model))

