"""Honest evaluation: a model's answers on labelled images, in test-time views, scored by
:mod:`imagesentiment.evaluation.metrics` (per-class and averaged metrics, the confusion matrix, ROC and
precision-recall curves) and written to an evaluation folder.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..runtime import keras, tf
from ..data import DataError, ImageSet
from ..data.shards import image_batches
from .metrics import (METRICS_FILE, calibration_metrics, classification_metrics, plot_confusion_matrix, plot_curves,
                      plot_reliability, ranking_metrics, rating_metrics)
from ..inference.predictors import KerasPredictor, Predictor
from ..table.columns import answers

def predict_scores(model: keras.Model | Predictor, images: ImageSet, batch_size: int = 64,
                   flip_tta: bool = False, crop_tta: bool = False) -> dict[str, np.ndarray]:
    """Class ``probabilities`` ``(N, C)`` for every image, averaged over its ``test_time_views``, and each
    rating the model gives ``(N,)`` (of the whole image), from one pass; ``model`` is a Keras model or any
    loaded form (:func:`imagesentiment.load`: a SavedModel, a ``.tflite`` file). An image that cannot be
    decoded is a DataError naming it (:func:`imagesentiment.data.check_set` leaves such files out beforehand,
    as the commands do)."""
    try:
        predictor = as_predictor(model)
        parts = [predictor.view_scores(batch, flip_tta, crop_tta)
                 for batch, _ in image_batches(images, predictor.image_size, batch_size)]
    except tf.errors.InvalidArgumentError as exc:  # the pipeline's decoder names no file: find them
        from ..data import check_set

        skipped = check_set(images).skipped
        named = "; ".join(f"{row.path}: {row.reason}" for row in skipped.head(3).itertuples())
        raise DataError(f"{len(skipped) or 'an'} image{'s' if len(skipped) > 1 else ''} cannot be used "
                        f"({named or exc.message.splitlines()[0]}); imagesentiment.data.check_set(images).images "
                        "leaves such files out") from None
    return {key: np.concatenate([part[key] for part in parts]) for key in ("probabilities", *predictor.ratings)}


def predict_probabilities(model: keras.Model | Predictor, images: ImageSet, batch_size: int = 64,
                          flip_tta: bool = False, crop_tta: bool = False) -> np.ndarray:
    """The class probabilities of :func:`predict_scores`."""
    return predict_scores(model, images, batch_size, flip_tta, crop_tta)["probabilities"]


def as_predictor(model: keras.Model | Predictor, classes: Sequence[str] | None = None) -> Predictor:
    """``model`` as the one type evaluation works with: a Keras model wrapped in a :class:`KerasPredictor`
    (one compiled graph; its class names ``classes``, else the ones it carries)."""
    return model if isinstance(model, Predictor) else KerasPredictor(model, classes)


def judged_ratings(images: ImageSet, ratings: dict[str, np.ndarray]) -> dict:
    """:func:`~.metrics.rating_metrics` of each rating on the images rated for it (none rated: ``{}``)."""
    judged = {}
    for name, predicted in ratings.items():
        truth = images.frame[name].to_numpy(float) if name in images.frame else np.full(len(images), np.nan)
        rated = ~np.isnan(truth)
        if rated.sum() >= 3:
            judged[name] = rating_metrics(truth[rated], predicted[rated])
    return judged


def evaluate_model(model: keras.Model | Predictor, images: ImageSet, out: str | os.PathLike | None = None,
                   flip_tta: bool = False, crop_tta: bool = False, data: str | None = None,
                   classes: Sequence[str] | None = None) -> dict:
    """Metrics of ``model`` (see :func:`predict_scores`) on ``images``, whose labels are matched to
    the model's ``classes`` by name (default: the names it carries, :func:`imagesentiment.model.class_names`;
    a folder's classes come sorted, which need not be the model's output order); with ``out``, writes
    metrics.json, the confusion matrix (CSV and PNG), the curves, the reliability diagram and predictions.csv there (as ``predict``
    writes it, with ``true_label``: ``imagesentiment report`` shows it). ``flip_tta``, ``crop_tta``: see
    test_time_views. ``data``: where the images came from, recorded in the metrics. A model that gives ratings is
    also judged on the images rated for them (``ratings``: Pearson r, Spearman rho, mean absolute error)."""
    carried = classes is not None or not isinstance(model, keras.Model) or hasattr(model, "class_names")
    predictor = as_predictor(model, classes)
    classes = list(classes or predictor.class_names)
    try:
        images = images.with_classes(classes, data or "the images")
    except DataError as exc:
        raise DataError(f"{exc}" + ("" if carried else "; this Keras model carries no class names: pass "
                                    "classes=[...] in its output order, or load it with "
                                    "imagesentiment.inference.load_keras")) from None
    scores = predict_scores(predictor, images, flip_tta=flip_tta, crop_tta=crop_tta)
    probabilities, ratings = scores.pop("probabilities"), scores
    y_pred = probabilities.argmax(axis=1)
    groups = images.frame["group"] if "group" in images.frame else None  # a clip's frames are resampled together
    metrics = classification_metrics(images.label_ids.to_numpy(), y_pred, images.classes, groups)
    metrics["ranking"] = ranking_metrics(images.label_ids.to_numpy(), probabilities, images.classes)
    metrics["calibration"] = calibration_metrics(images.label_ids.to_numpy(), probabilities)
    metrics["ratings"] = judged_ratings(images, ratings)
    metrics["test_time_views"] = {"flip_tta": flip_tta, "crop_tta": crop_tta}
    if data is not None:
        metrics["data"] = data
    if metrics["single_class"]:
        print(f"WARNING: the model predicts only {metrics['predicted_classes'][0]!r} for all "
              f"{len(images)} images", file=sys.stderr)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        pd.DataFrame(metrics["confusion_matrix"], index=metrics["classes"],
                     columns=metrics["classes"]).to_csv(out / "confusion_matrix.csv")
        plot_confusion_matrix(metrics, out / "confusion_matrix.png")
        plot_curves(images.label_ids.to_numpy(), probabilities, images.classes, metrics["ranking"], out / "curves.png")
        plot_reliability(metrics["calibration"], out / "reliability.png")
        table = images.frame[["path"]].join(answers(probabilities, images.classes, images.frame.index, ratings))
        table.assign(true_label=images.frame["label"]).to_csv(out / "predictions.csv", index=False)
    return metrics
