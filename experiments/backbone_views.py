"""Backbone comparison: each fold of ``imagesentiment cv`` runs scored again in 1, 2 and 12 test-time views.

For every fold of each run, the fold's saved model (and, for an ensemble, its first member alone: one
model per split) scores its held-out photos in the whole photo alone, with its mirror (``flip_tta``),
and with ``--crops`` in 12 views (``flip_tta`` with ``crop_tta``). It prints and records the mean accuracy and macro-F1
over the folds, and each fold's accuracy, under ``backbone_views_RUNNAME`` in benchmarks/results.json.
With ``--average``, runs on the same partition into folds are also scored as one ensemble (each fold's
models' probabilities averaged), under ``backbone_views_RUN1+RUN2``.

    python experiments/backbone_views.py RUN [RUN ...] [--crops] [--average]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from imagesentiment.data import ImageSet  # noqa: E402
from imagesentiment.data.shards import image_batches  # noqa: E402
from imagesentiment.models.views import test_time_views  # noqa: E402
from imagesentiment.models.build import ensemble_members  # noqa: E402
from results import record  # noqa: E402

def subsets(crops: bool) -> dict[str, list[int]]:
    """View subsets by their indices in test_time_views' order (the crops, when computed, come before the mirrors)."""
    if not crops:
        return {"one view": [0], "whole + mirror": [0, 1]}
    return {"one view": [0], "whole + mirror": [0, 6], "12 views": list(range(12))}


def view_probabilities(model: keras.Model, images: ImageSet, crops: bool) -> np.ndarray:
    """Class probabilities of every photo in its views: (N, 2 or 12, C)."""
    size = tuple(model.input_shape[1:3])

    @tf.function(input_signature=[tf.TensorSpec([None, *size, 3], tf.float32)])
    def forward(batch: tf.Tensor) -> tf.Tensor:
        views = test_time_views(batch, flip_tta=True, crop_tta=crops)
        return tf.stack([model(view, training=False) for view in views], axis=1)

    return np.concatenate([forward(batch).numpy() for batch, _ in image_batches(images, size, 32)])


def fold_probabilities(run: Path, crops: bool) -> list[tuple[pd.Series, np.ndarray, dict[str, np.ndarray]]]:
    """Per fold: its held-out paths, their class ids and, per model kind (the fold's model; also its first
    member when it is an ensemble), the photos' class probabilities in their views."""
    folds = []
    for fold in sorted(run.glob("fold*")):
        images = ImageSet(pd.read_csv(fold / "split_test.csv"),
                          classes=json.loads((fold / "classes.json").read_text()))
        model = keras.models.load_model(fold / "model.keras", safe_mode=True)
        members = ensemble_members(model)
        kinds = {"ensemble" if len(members) > 1 else "one model": model}
        if len(members) > 1:
            kinds["one model (member 0)"] = members[0]
        folds.append((images.frame["path"], images.label_ids.to_numpy(),
                      {kind: view_probabilities(m, images, crops) for kind, m in kinds.items()}))
        print(f"{run.name}/{fold.name}: {len(images)} photos", flush=True)
    return folds


def averaged(runs: list[list], names: list[str]) -> list:
    """The runs' folds as one ensemble: each fold's first model kind's probabilities averaged over the runs,
    which must hold the same held-out photos in each fold."""
    together = []
    for folds in zip(*runs, strict=True):
        paths, truth, _ = folds[0]
        if any(not other.equals(paths) for other, _, _ in folds[1:]):
            raise SystemExit(f"{' and '.join(names)}: their folds hold different photos; --average needs the same partition")
        together.append((paths, truth, {"averaged": np.mean([next(iter(kinds.values())) for _, _, kinds in folds], axis=0)}))
    return together


def scores(folds: list, crops: bool) -> dict:
    """Per model kind and view subset: mean accuracy and macro-F1 over the folds, and the folds' accuracies."""
    found: dict[str, list] = {}
    for _, truth, kinds in folds:
        for kind, probs in kinds.items():
            for name, views in subsets(crops).items():
                pred = probs[:, views].mean(axis=1).argmax(axis=1)
                found.setdefault(f"{kind}, {name}", []).append(
                    (accuracy_score(truth, pred), f1_score(truth, pred, average="macro")))
    return {key: {"accuracy": round(float(np.mean(s, 0)[0]), 4), "accuracy_std": round(float(np.std(s, 0, ddof=1)[0]), 4),
                  "macro_f1": round(float(np.mean(s, 0)[1]), 4), "folds": [round(float(a), 3) for a, _ in s]}
            for key, s in found.items()}


def report(name: str, runs: list[Path], result: dict) -> None:
    """Print ``result`` (:func:`scores`) and record it under ``backbone_views_NAME``."""
    for key, value in result.items():
        print(f"{name:>20}  {key:<36} accuracy {value['accuracy']:.4f} ± {value['accuracy_std']:.4f}  "
              f"macro-F1 {value['macro_f1']:.4f}  folds {value['folds']}")
    record(f"backbone_views_{name}", {"run": " + ".join(map(str, runs)), **result})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="imagesentiment cv run folders")
    parser.add_argument("--crops", action="store_true", help="also the centre and corner crops: 12 views")
    parser.add_argument("--average", action="store_true",
                        help="also score the runs as one ensemble: their models' probabilities averaged on each fold")
    args = parser.parse_args()
    every = [fold_probabilities(run, args.crops) for run in args.runs]
    for run, folds in zip(args.runs, every):
        report(run.name, [run], scores(folds, args.crops))
    if args.average:
        names = [run.name for run in args.runs]
        report("+".join(names), args.runs, scores(averaged(every, names), args.crops))
