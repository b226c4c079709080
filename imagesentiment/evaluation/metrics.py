"""Metrics of answers against labels, with no model and no TensorFlow: accuracy, precision, recall and F1
per class and averaged, intervals, ranking scores, calibration, the summary table and the plots.

Metrics come from scikit-learn over the classes present in the labels or the predictions, so a data
set without ``neutral`` is not marked down for it. A model that predicts one class for every image is
flagged loudly. :mod:`.evaluate` runs models to get the answers; ``report`` scores a
predictions table with these alone, so it starts without TensorFlow.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import rankdata
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score, roc_curve)

METRICS_FILE = "metrics.json"  # what an evaluation writes into its folder, beside its plots


def read_metrics(folder: Path) -> dict[str, Any]:
    """The metrics an evaluation wrote into ``folder`` (its ``metrics.json``); empty where it wrote none."""
    path = folder / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


CROP_VIEWS = 5  # test-time crops: the centre and the four corners (imagesentiment.views.crop_boxes)


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int], groups: Sequence | None = None,
                        resamples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of accuracy and macro-F1 (over those of ``labels`` that each resample
    has a labelled image of, as the whole set's average is over its labelled classes): the test images drawn
    again with replacement ``resamples`` times, or whole ``groups`` (the frames of one clip) when given,
    since images of one group are not independent draws. The same answers in another row order give the
    same intervals (a report and an evaluation of one table agree)."""
    if groups is None:  # draws depend on the order of the rows: put them in one order of (truth, answer)
        order = np.lexsort((y_pred, y_true))
        y_true, y_pred = np.asarray(y_true)[order], np.asarray(y_pred)[order]
    keys, group_of = np.unique(np.arange(len(y_true)) if groups is None else np.asarray(groups), return_inverse=True)
    rng = np.random.default_rng(seed)
    correct = (y_true == y_pred).astype(float)
    truth = np.stack([y_true == k for k in labels], 1).astype(float)
    hits = np.stack([(y_true == k) & (y_pred == k) for k in labels], 1).astype(float)
    given = truth + np.stack([y_pred == k for k in labels], 1)
    accuracy, macro_f1 = [], []
    for block in np.array_split(np.arange(resamples), max(1, resamples // 100)):  # ~100 resamples at a time
        weights = rng.multinomial(len(keys), np.full(len(keys), 1 / len(keys)), size=len(block))[:, group_of]
        accuracy.append(weights @ correct / weights.sum(1))
        f1 = 2 * (weights @ hits) / np.maximum(weights @ given, 1e-12)
        labelled = (weights @ truth) > 0  # as for the whole set: a class no drawn image is labelled is left out
        macro_f1.append((f1 * labelled).sum(1) / np.maximum(labelled.sum(1), 1))
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {name: np.percentile(np.concatenate(values), tails).tolist()
            for name, values in (("accuracy", accuracy), ("macro_f1", macro_f1))}


def wilson_interval(successes: int, total: int, level: float = 0.95) -> list[float]:
    """The Wilson score interval of a proportion: unlike the bootstrap it does not shrink to a point when
    every test image is right (6 of 6 correct: 0.61 to 1, not 1 to 1)."""
    z = float(NormalDist().inv_cdf((1 + level) / 2))
    share, spread = successes / total, z * z / total
    centre = (share + spread / 2) / (1 + spread)
    half = z * math.sqrt(share * (1 - share) / total + spread / (4 * total)) / (1 + spread)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
                           groups: Sequence | None = None) -> dict:
    """Accuracy; precision, recall, F1 and support per class, macro and weighted; the confusion matrix;
    95 % intervals of accuracy (Wilson; with ``groups``, the bootstrap over groups) and macro-F1
    (see :func:`bootstrap_intervals`). The table covers the classes labelled or predicted; the averages
    the labelled ones (``averaged_over``): a class with no image to find has no recall, and counting it as
    0 would cut a 3-class model's macro-F1 by a third on a set without neutral photos."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labelled = sorted(set(y_true.tolist()))
    present = sorted(set(labelled) | set(y_pred.tolist()))
    names = [classes[i] for i in present]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    report = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {n: {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(d)}
                      for n, a, b, c, d in zip(names, p, r, f, s)},
        "classes": names,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=present).tolist(),
        "predicted_classes": sorted({classes[i] for i in y_pred.tolist()}),
        "averaged_over": [classes[i] for i in labelled],
    }
    for average in ("macro", "weighted"):
        a, b, c, _ = precision_recall_fscore_support(y_true, y_pred, labels=labelled, average=average,
                                                     zero_division=0)
        report[average] = {"precision": float(a), "recall": float(b), "f1": float(c)}
    report["single_class"] = len(report["predicted_classes"]) == 1 and len(labelled) > 1
    report["intervals_95"] = bootstrap_intervals(y_true, y_pred, labelled, groups) if len(y_true) else {}
    if len(y_true) and groups is None:  # independent images: the exact-enough interval of a proportion
        report["intervals_95"]["accuracy"] = wilson_interval(int((y_true == y_pred).sum()), len(y_true))
    return report


def ranking_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> dict:
    """One-vs-rest ROC AUC and average precision (the area under the precision-recall curve) of each
    class's probability, for the classes with images on both sides, and their macro means: how well
    the scores rank, whatever the threshold the argmax puts on them."""
    per_class = {name: {"roc_auc": float(roc_auc_score(y_true == k, probabilities[:, k])),
                        "average_precision": float(average_precision_score(y_true == k, probabilities[:, k]))}
                 for k, name in enumerate(classes) if 0 < np.sum(y_true == k) < len(y_true)}
    macro = {key: float(np.mean([m[key] for m in per_class.values()])) if per_class else None
             for key in ("roc_auc", "average_precision")}
    return {"per_class": per_class, "macro": macro}


def plot_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], ranking: dict,
                path: str | os.PathLike) -> None:
    """ROC and precision-recall curves, one-vs-rest, one line per class, as a PNG."""
    fig = Figure(figsize=(10, 4.2))
    roc, pr = fig.subplots(1, 2)
    for k, name in enumerate(classes):
        if name not in ranking["per_class"]:
            continue
        scores = ranking["per_class"][name]
        fpr, tpr, _ = roc_curve(y_true == k, probabilities[:, k])
        roc.plot(fpr, tpr, label=f"{name} (AUC {scores['roc_auc']:.3f})")
        precision, recall, _ = precision_recall_curve(y_true == k, probabilities[:, k])
        pr.plot(recall, precision, label=f"{name} (AP {scores['average_precision']:.3f})")
    roc.plot([0, 1], [0, 1], color="#999", linestyle=":", label="chance")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, one class against the rest")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.legend(loc="lower right" if ax is roc else "lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def calibration_metrics(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict:
    """How far the top probability is from how often it is right: the expected calibration error over ``bins``
    equal-width bins of confidence (the gap in each bin, weighted by its share of images), the multi-class Brier
    score (mean squared distance of the probabilities from the one-hot truth), and each bin's confidence,
    accuracy and count (a reliability diagram: :func:`plot_reliability`)."""
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities, np.float64)
    confidence, answer = probabilities.max(axis=1), probabilities.argmax(axis=1)
    correct = (answer == y_true).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)  # a confidence of 1 goes in the last bin
    count = np.bincount(which, minlength=bins)
    shown = count > 0
    mean_confidence = np.bincount(which, confidence, bins)[shown] / count[shown]
    accuracy = np.bincount(which, correct, bins)[shown] / count[shown]
    truth = np.eye(probabilities.shape[1])[y_true]
    return {"ece": float(np.sum(count[shown] / len(y_true) * np.abs(accuracy - mean_confidence))),
            "brier": float(np.mean(np.sum((probabilities - truth) ** 2, axis=1))),
            "bins": {"upper_edge": [round((k + 1) / bins, 6) for k in np.flatnonzero(shown)],
                     "confidence": mean_confidence.tolist(), "accuracy": accuracy.tolist(),
                     "count": count[shown].tolist()}}


def softmax(logits: np.ndarray) -> np.ndarray:
    """The softmax over the last axis."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def tempered(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities ``softmax(logits / temperature)``; ``logits`` ``(N, C)``, or ``(N, views, C)`` whose
    views' probabilities are averaged. The logarithms of softmax probabilities serve as logits."""
    probabilities = softmax(np.asarray(logits, np.float64) / temperature)
    return probabilities.mean(axis=1) if probabilities.ndim == 3 else probabilities


def tempered_log_loss(logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0) -> float:
    """The mean log-loss of :func:`tempered` probabilities against the labels ``y_true``."""
    y_true = np.asarray(y_true)
    return float(-np.log(np.maximum(tempered(logits, temperature)[np.arange(len(y_true)), y_true], 1e-12)).mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The one temperature (between 0.05 and 20) that minimises :func:`tempered_log_loss` on labelled answers:
    above 1 it softens an over-confident model's probabilities, below 1 it sharpens them; the predicted classes
    never change."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda log_t: tempered_log_loss(logits, y_true, np.exp(log_t)), bounds=(-3.0, 3.0),
                            method="bounded")
    return float(np.exp(found.x))


def rating_metrics(truth: np.ndarray, predicted: np.ndarray, resamples: int = 1000, level: float = 0.95,
                   seed: int = 0) -> dict:
    """Pearson r, Spearman rho and mean absolute error of ``predicted`` ratings against rated ones (one rating:
    valence, say), each with a percentile bootstrap interval over the photos."""
    truth, predicted = np.asarray(truth, np.float64), np.asarray(predicted, np.float64)

    def figures(rows: np.ndarray) -> tuple[float, float, float]:
        t, p = truth[rows], predicted[rows]
        ranks = [rankdata(v) for v in (t, p)]  # tied ratings share their mean rank
        return (float(np.corrcoef(t, p)[0, 1]), float(np.corrcoef(*ranks)[0, 1]), float(np.abs(t - p).mean()))

    rng = np.random.default_rng(seed)
    draws = np.array([figures(rng.integers(0, len(truth), len(truth))) for _ in range(resamples)])
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    point = figures(np.arange(len(truth)))
    return {name: point[k] for k, name in enumerate(("pearson_r", "spearman_rho", "mae"))} | {
        "intervals_95": {name: np.nanpercentile(draws[:, k], tails).tolist()
                         for k, name in enumerate(("pearson_r", "spearman_rho", "mae"))},
        "photos": len(truth)}


def plot_reliability(calibration: dict, path: str | os.PathLike) -> None:
    """The reliability diagram of :func:`calibration_metrics`: each bin's accuracy against its confidence, the
    diagonal a perfectly calibrated model would follow."""
    bins = calibration["bins"]
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    axes.scatter(bins["confidence"], bins["accuracy"], s=[12 + 60 * c / max(bins["count"]) for c in bins["count"]],
                 label="bins (size: images)")
    axes.plot(bins["confidence"], bins["accuracy"])
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
             title=f"ECE {calibration['ece']:.3f}, Brier {calibration['brier']:.3f}")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def summary(metrics: dict) -> str:
    """A short text table of the metrics; a single-class model is called out."""
    spread = {name: f" ({low:.3f}-{high:.3f})" for name, (low, high) in metrics.get("intervals_95", {}).items()}
    lines = [f"accuracy {metrics['accuracy']:.4f}{spread.get('accuracy', '')}   macro-F1 {metrics['macro']['f1']:.4f}"
             f"{spread.get('macro_f1', '')}   weighted-F1 {metrics['weighted']['f1']:.4f}"
             + ("   (in brackets: 95 % interval)" if spread else ""),
             f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:>10} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:7d}")
    unlabelled = [name for name in metrics["classes"] if name not in metrics.get("averaged_over", metrics["classes"])]
    if unlabelled:
        lines.append(f"averages over the labelled classes; {', '.join(unlabelled)}: predicted, no image labelled so")
    calibration = metrics.get("calibration")
    if calibration:
        lines.append(f"calibration of the top probability: expected calibration error {calibration['ece']:.4f}, "
                     f"Brier score {calibration['brier']:.4f} (0 is best for both)")
    for name, rating in (metrics.get("ratings") or {}).items():
        spread = rating["intervals_95"]["spearman_rho"]
        lines.append(f"{name}: Spearman rho {rating['spearman_rho']:.3f} ({spread[0]:.3f}-{spread[1]:.3f}), Pearson r "
                     f"{rating['pearson_r']:.3f}, mean absolute error {rating['mae']:.3f} ({rating['photos']} rated photos)")
    ranking = (metrics.get("ranking") or {}).get("macro") or {}
    if ranking.get("roc_auc") is not None:
        lines.append(f"one class against the rest, macro: ROC AUC {ranking['roc_auc']:.4f}, "
                     f"average precision {ranking['average_precision']:.4f}")
    views = metrics.get("test_time_views")
    if views:
        count = (1 + (CROP_VIEWS if views["crop_tta"] else 0)) * (2 if views["flip_tta"] else 1)
        lines.append(f"averaged over {count} test-time views per image" if count > 1
                     else "no test-time views added by the evaluation (a model's own are in its graph)")
    if metrics["single_class"]:
        lines.append(f"WARNING: the model predicts a single class ({metrics['predicted_classes'][0]}) "
                     "for every image: it has collapsed to one class and learned nothing useful")
    return "\n".join(lines)


def plot_confusion_matrix(metrics: dict, path: str | os.PathLike) -> None:
    """The confusion matrix as a PNG, counts in the cells."""
    matrix = np.array(metrics["confusion_matrix"])
    names = metrics["classes"]
    fig = Figure(figsize=(1.6 + 1.1 * len(names), 1.2 + 1.1 * len(names)))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=f"accuracy {metrics['accuracy']:.3f}")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_history(history: pd.DataFrame, path: str | os.PathLike) -> None:
    """Training and validation loss and accuracy per epoch, as a PNG."""
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix in ("", "val_"):
            if prefix + metric in history:
                ax.plot(history.index + 1, history[prefix + metric], label=(prefix or "train_") + metric)
        ax.set(xlabel="epoch", title=metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
