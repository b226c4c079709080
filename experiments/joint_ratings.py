"""Valence and arousal trained with the classes (issue 39, "valence rho >= 0.78"): does a ``ratings`` output trained
jointly in both phases of the shipped recipe (``train.ratings_loss``: class cross-entropy + lambda x the masked
mean squared error of the standardised valence and arousal; the Twitter photos, unrated, add nothing to it) give
features and ratings that carry valence better than today's recipe with a ridge head fitted afterwards?

Protocol (the locked side takes no part in any choice):

- **Sides.** The 118 OASIS photos of ``experiments/oasis_locked_test.csv`` are the locked side. A validation side
  is carved from the other 469 (15 %, stratified, seed 0: ``training.prepare.inner_split``, as a fixed test set
  is split); the rest of them and the Twitter five-agree photos (half weight) are the training side. Every
  candidate trains on the same sides with the recipe of ``pipelines/default.yaml`` (Lite2 at 260 px, 8 cached
  views, 10 + 6 epochs, the best epoch of each phase by the validation loss), seed 0.
- **Candidates.** lambda = 0 (today's recipe; its ridge head) and lambda = 0.5, 1, 2 (ratings standardised on the
  rated training photos, so that lambda weighs one standard deviation of error against the class loss).
- **Choice rule, fixed before any figure was seen:** the lambda whose own ratings output gives the highest
  valence Spearman rho on the validation side. (``select``: validation figures only; for lambda = 0 the ridge
  head is fitted on the rated training photos to give one.)
- **Locked side, scored once** (``locked``): (a) lambda = 0 with ``training.ratings.add_ratings`` fitted on the
  469 development photos; (b) the chosen lambda's own output; (b') the chosen model with a ridge head refitted on
  the 469 on its features. Accuracy, macro-F1, and valence and arousal Spearman rho, Pearson r and MAE, with 95 %
  bootstrap intervals over the photos (2000 resamples, seed 0), and the paired bootstrap intervals of the
  differences (b - a), (b' - a) on the same resamples.

    PYTHONPATH=. python experiments/joint_ratings.py select    # trains the 4 candidates into /work/runs/joint-ratings
    PYTHONPATH=. python experiments/joint_ratings.py locked    # once: recorded as joint_ratings in benchmarks/results.json

``--runs`` moves the run folders; ``--cache`` is the shared activation cache (``train.activation_cache``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # results.record: benchmarks/results.json

from results import cap_threads, record  # noqa: E402

cap_threads()  # a shared 2-core machine
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import keras  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from imagesentiment.data import ImageSet  # noqa: E402
from imagesentiment.evaluation.evaluate import predict_scores  # noqa: E402
from imagesentiment.evaluation.metrics import bootstrap_intervals, rating_metrics  # noqa: E402
from imagesentiment.training.activations import ActivationStore  # noqa: E402
from imagesentiment.training.config import Config, load_config  # noqa: E402
from imagesentiment.training.fit import fit_member  # noqa: E402
from imagesentiment.training.prepare import inner_split, load_sources  # noqa: E402
from imagesentiment.training.ratings import add_ratings, rated  # noqa: E402
from imagesentiment.training.run import Run  # noqa: E402

LOCKED = ROOT / "experiments" / "oasis_locked_test.csv"
LAMBDAS = (0.0, 0.5, 1.0, 2.0)
RATINGS = ("valence", "arousal")
RESAMPLES = 2000


def recipe(cache: str, weight: float) -> Config:
    """The shipped recipe with the activation cache and ``train.ratings_loss`` = ``weight``."""
    config = load_config(ROOT / "pipelines" / "default.yaml")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, activation_cache=cache,
                                                                 ratings_loss=weight))


def sides(config: Config, runs: Path):
    """The split: training (development less validation, with the Twitter photos), validation, locked."""
    sources = load_sources(config, runs / "skipped.csv")
    oasis = sources.images
    locked_themes = set(pd.read_csv(LOCKED)["Theme"])
    on_locked = oasis.frame["Theme"].isin(locked_themes).to_numpy()
    assert on_locked.sum() == len(locked_themes) == 118, on_locked.sum()
    split = inner_split(config, oasis.subset(np.flatnonzero(~on_locked)), oasis.subset(np.flatnonzero(on_locked)),
                        sources.extras)
    return split


def name_of(weight: float) -> str:
    return "baseline" if weight == 0 else f"lambda{weight:g}"


def trained(weight: float, cache: str, runs: Path, store: ActivationStore):
    """The candidate's model (trained into ``runs/<name>``, or read back) and its split."""
    config = recipe(cache, weight)
    split = sides(config, runs)
    run = Run(runs / name_of(weight))
    run.write_split(split)
    file = run.folder / "model.keras"
    if file.is_file():
        return keras.models.load_model(file, safe_mode=True), split
    model = fit_member(config, split, run, store)
    model.save(file)
    return model, split


def development(split) -> ImageSet:
    """The rated development photos: the OASIS photos of the training side and the validation side."""
    train = rated(split.train)
    return ImageSet(pd.concat([train.frame, split.validation.frame], ignore_index=True), split.train.classes)


def figures(model, images: ImageSet) -> tuple[dict, dict]:
    """The answers (probabilities, ratings) and the figures of ``model`` on ``images``."""
    answers = predict_scores(model, images)
    y = images.label_ids.to_numpy()
    predicted = answers["probabilities"].argmax(axis=1)
    from sklearn.metrics import f1_score

    out = {"accuracy": float((predicted == y).mean()),
           "macro_f1": float(f1_score(y, predicted, average="macro")),
           "intervals_95": bootstrap_intervals(y, predicted, [0, 1, 2], resamples=RESAMPLES)}
    for name in RATINGS:
        if name in answers:
            out[name] = rating_metrics(images.frame[name].to_numpy(), answers[name], resamples=RESAMPLES)
    return answers, out


def select(args) -> None:
    store = ActivationStore(args.cache)
    table = {}
    for weight in LAMBDAS:
        model, split = trained(weight, args.cache, args.runs, store)
        if weight == 0:
            model, _ = add_ratings(model, rated(split.train))  # a validation figure for the baseline
        _, table[name_of(weight)] = figures(model, split.validation)
        v = table[name_of(weight)]
        print(f"{name_of(weight)}: validation accuracy {v['accuracy']:.3f} macro-F1 {v['macro_f1']:.3f} valence rho "
              f"{v['valence']['spearman_rho']:.3f} arousal rho {v['arousal']['spearman_rho']:.3f}", flush=True)
    chosen = max(LAMBDAS[1:], key=lambda w: table[name_of(w)]["valence"]["spearman_rho"])
    (args.runs / "choice.json").write_text(json.dumps({"chosen": chosen, "validation": table,
                                                       "photos": len(split.validation)}, indent=2))
    print(f"chosen: lambda = {chosen:g}")


def paired(truth: np.ndarray, y: np.ndarray, a: dict, b: dict) -> dict:
    """Paired bootstrap (same resamples) of b - a: valence and arousal rho, accuracy, macro-F1."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)

    def rho(t, p):
        return np.corrcoef(rankdata(t), rankdata(p))[0, 1]

    def stats(rows, answers):
        pred = answers["probabilities"][rows].argmax(axis=1)
        return np.array([rho(truth[rows, 0], answers["valence"][rows]), rho(truth[rows, 1], answers["arousal"][rows]),
                         (pred == y[rows]).mean(), f1_score(y[rows], pred, average="macro")])

    every = np.arange(len(y))
    point = stats(every, b) - stats(every, a)
    draws = []
    for _ in range(RESAMPLES):
        rows = rng.integers(0, len(y), len(y))
        draws.append(stats(rows, b) - stats(rows, a))
    low, high = np.nanpercentile(np.array(draws), [2.5, 97.5], axis=0)
    keys = ("valence_rho", "arousal_rho", "accuracy", "macro_f1")
    return {k: {"difference": float(point[i]), "interval_95": [float(low[i]), float(high[i])]}
            for i, k in enumerate(keys)}


def locked(args) -> None:
    choice = json.loads((args.runs / "choice.json").read_text())
    store = ActivationStore(args.cache)
    base, split = trained(0.0, args.cache, args.runs, store)
    joint, _ = trained(choice["chosen"], args.cache, args.runs, store)
    dev = development(split)
    base_rated, base_head = add_ratings(base, dev)
    joint_ridge, joint_head = add_ratings(joint, dev)
    test = split.test
    y, truth = test.label_ids.to_numpy(), test.frame[list(RATINGS)].to_numpy(np.float64)
    answers, scored = {}, {}
    for key, model in (("a_baseline_ridge", base_rated), ("b_joint_own", joint), ("b_joint_ridge", joint_ridge)):
        answers[key], scored[key] = figures(model, test)
    record("joint_ratings", {
        "question": "issue 39: a ratings output trained with the classes in both phases (train.ratings_loss) "
                    "against the post-hoc ridge head, scored once on the locked OASIS side",
        "recipe": "pipelines/default.yaml (Lite2 260 px, 8 cached views, 10 + 6 epochs, Twitter five-agree x0.5)",
        "sides": {"locked": len(test), "validation": len(split.validation), "training_oasis": len(rated(split.train)),
                  "training_all": len(split.train)},
        "which_photos_saw_which_choice": (
            "lambda in (0.5, 1, 2) chosen on the validation side (15 % of the 469 development photos, seed 0) by "
            "its own valence rho; epochs (best per phase) and the temperature by the validation side; ridge L2 "
            "weights by 5-fold CV over the 469 development photos; the locked 118 photos scored once here"),
        "chosen_lambda": choice["chosen"], "validation": choice["validation"],
        "ridge_alpha": {"a_baseline_ridge": base_head.alpha, "b_joint_ridge": joint_head.alpha},
        "locked": scored,
        "paired_b_minus_a": {"b_joint_own": paired(truth, y, answers["a_baseline_ridge"], answers["b_joint_own"]),
                             "b_joint_ridge": paired(truth, y, answers["a_baseline_ridge"],
                                                     answers["b_joint_ridge"])},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("select", "locked"))
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "joint-ratings")
    parser.add_argument("--cache", default=str(ROOT / "runs" / "activation-cache"))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    select(args) if args.stage == "select" else locked(args)


if __name__ == "__main__":
    main()
