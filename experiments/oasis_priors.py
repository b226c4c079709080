"""Class frequencies for the OASIS target of issue 3: does undoing the class balance help accuracy?

The pipeline weighs every class the same in the loss (``train.class_weights``), so its models'
probabilities take the classes as equally common; about half of the OASIS photos are positive.
For each fold of one or more ``imagesentiment cv`` runs, the saved held-out probabilities
(``test/predictions.csv``) are multiplied by the class frequencies of the fold's own photos
(training and validation sides, extra training sources left out) raised to a power, 0 (as is),
0.5 or 1 (the full correction for the balance), and scored again. Nothing is fitted to held-out
photos.

With ``--neutral``, the neutral probability is multiplied instead by e^b for a range of biases b (a
constant added to its log-probability), recorded under ``oasis_neutral_bias``: an upper bound on what
calling neutral more often could gain, since the best b is read off the held-out photos themselves.

    python experiments/oasis_priors.py RUN [RUN ...] [--neutral]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # results.record: benchmarks/results.json

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, recall_score  # noqa: E402

from results import record  # noqa: E402

POWERS = (0.0, 0.5, 1.0)
NEUTRAL_BIASES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def prior_factors(fold: Path, classes: list[str], power: float) -> np.ndarray:
    """The class frequencies of the fold's own photos raised to ``power``."""
    train = pd.read_csv(fold / "split_train.csv")
    own = pd.concat([train[train["weight"].isna()] if "weight" in train else train,
                     pd.read_csv(fold / "split_validation.csv")])
    return own["label"].value_counts(normalize=True).reindex(classes, fill_value=0).to_numpy() ** power


def neutral_factors(fold: Path, classes: list[str], bias: float) -> np.ndarray:
    """e^bias for the neutral class, 1 for the others."""
    return np.exp(bias * (np.array(classes) == "neutral"))


def fold_scores(held_out: pd.DataFrame, classes: list[str], factors: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Accuracy, macro-F1 and per-class recall of one fold's held-out photos (its ``test/predictions.csv``),
    their probabilities multiplied by ``factors``."""
    predicted = np.array(classes)[(held_out[classes].to_numpy() * factors).argmax(axis=1)]
    truth = held_out["true_label"] if "true_label" in held_out else held_out["label"]  # runs before: label
    return (accuracy_score(truth, predicted), f1_score(truth, predicted, average="macro"),
            recall_score(truth, predicted, labels=classes, average=None))


def run_priors(run: Path, factors: Callable[[Path, list[str], float], np.ndarray], values: tuple[float, ...],
               name: str) -> dict:
    """Mean accuracy, macro-F1 and class recalls over the run's folds at each of ``values``."""
    folds = sorted(run.glob("fold*"))
    classes = pd.read_json(folds[0] / "classes.json", typ="series").tolist()
    held_out = [pd.read_csv(fold / "test" / "predictions.csv") for fold in folds]
    out = {}
    for value in values:
        scores = [fold_scores(held, classes, factors(fold, classes, value)) for fold, held in zip(folds, held_out)]
        out[f"{name} {value}"] = {
            "accuracy": round(float(np.mean([s[0] for s in scores])), 4),
            "macro_f1": round(float(np.mean([s[1] for s in scores])), 4),
            "recall": dict(zip(classes, np.round(np.mean([s[2] for s in scores], axis=0), 3).tolist())),
            "folds": [round(float(s[0]), 3) for s in scores]}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="imagesentiment cv run folders")
    parser.add_argument("--neutral", action="store_true", help="a bias towards neutral instead of the class frequencies")
    args = parser.parse_args()
    if args.neutral:
        record("oasis_neutral_bias", {str(run): run_priors(run, neutral_factors, NEUTRAL_BIASES, "bias")
                                      for run in args.runs})
    else:
        record("oasis_priors", {str(run): run_priors(run, prior_factors, POWERS, "power") for run in args.runs})
