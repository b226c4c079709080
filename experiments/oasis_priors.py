"""Class frequencies for the OASIS target of issue 3: does undoing the class balance help accuracy?

The pipeline weighs every class the same in the loss (``train.class_weights``), so its models'
probabilities take the classes as equally common; about half of the OASIS photos are positive.
For each fold of one or more ``imagesentiment cv`` runs, the saved held-out probabilities
(``test/predictions.csv``) are multiplied by the class frequencies of the fold's own photos
(training and validation sides, extra training sources left out) raised to a power, 0 (as is),
0.5 or 1 (the full correction for the balance), and scored again. Nothing is fitted to held-out
photos.

    python experiments/oasis_priors.py RUN [RUN ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # results.record: benchmarks/results.json

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, recall_score  # noqa: E402

from results import record  # noqa: E402

POWERS = (0.0, 0.5, 1.0)


def fold_scores(fold: Path, classes: list[str], power: float) -> tuple[float, float, np.ndarray]:
    """Accuracy, macro-F1 and per-class recall of one fold's held-out photos, corrected by ``power``."""
    held_out = pd.read_csv(fold / "test" / "predictions.csv")
    train = pd.read_csv(fold / "split_train.csv")
    own = pd.concat([train[train["weight"].isna()] if "weight" in train else train,
                     pd.read_csv(fold / "split_validation.csv")])
    frequency = own["label"].value_counts(normalize=True).reindex(classes, fill_value=0).to_numpy()
    predicted = np.array(classes)[(held_out[classes].to_numpy() * frequency ** power).argmax(axis=1)]
    truth = held_out["true_label"] if "true_label" in held_out else held_out["label"]  # runs before: label
    return (accuracy_score(truth, predicted), f1_score(truth, predicted, average="macro"),
            recall_score(truth, predicted, labels=classes, average=None))


def run_priors(run: Path) -> dict:
    """Mean accuracy, macro-F1 and class recalls over the run's folds at each power."""
    folds = sorted(run.glob("fold*"))
    classes = pd.read_json(folds[0] / "classes.json", typ="series").tolist()
    out = {}
    for power in POWERS:
        scores = [fold_scores(fold, classes, power) for fold in folds]
        out[f"power {power}"] = {
            "accuracy": round(float(np.mean([s[0] for s in scores])), 4),
            "macro_f1": round(float(np.mean([s[1] for s in scores])), 4),
            "recall": dict(zip(classes, np.round(np.mean([s[2] for s in scores], axis=0), 3).tolist())),
            "folds": [round(float(s[0]), 3) for s in scores]}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="imagesentiment cv run folders")
    args = parser.parse_args()
    record("oasis_priors", {str(run): run_priors(run) for run in args.runs})
