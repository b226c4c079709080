"""k-fold cross-validation: one model per fold, trained as :func:`~imagesentiment.training.fit.train_split`
trains one, judged on the fold's held-out photos, and the folds' summary."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import k_fold
from .activations import ActivationStore
from .config import Config, check_config
from ..contract import RATINGS
from .fit import TrainingError, check_resumable, check_same_data, train_split
from .prepare import inner_split, load_sources
from .run import Run


RATING_FIGURES = {"rho": "spearman_rho", "mae": "mae"}  # each fold's figures of each rating, by column suffix


def cross_validate(config: Config, run_dir: str | Path) -> pd.DataFrame:
    """k-fold cross-validation: one model per fold (validation carved from the fold's training side).

    Writes a table of the folds' results and their summary (mean and standard deviation).
    """
    run = Run(run_dir)
    config = check_config(config)
    if config.data.shards or config.train.strategy != "default":
        raise TrainingError("cross-validation splits the image files in one process: it does not take "
                            "data.shards or a train.strategy other than default")
    if config.train.refit:
        raise TrainingError("train.refit trains one model on every photo, leaving none to judge it: cross-validation "
                            "judges the recipe first; refit it with imagesentiment train --refit CV_RUN")
    check_resumable(config, run)
    sources = load_sources(config, run.skipped_file)
    store = ActivationStore(config.train.activation_cache)  # each image's views computed once for all folds
    rows = []
    for fold, (rest, held) in enumerate(k_fold(sources.images, config.split.folds, config.seed)):
        fold_split = functools.partial(inner_split, config, rest, held, sources.extras)
        split = fold_split()
        fold_run = run.fold(fold)
        if fold_run.has_model():
            check_same_data(split, fold_run)
            metrics = fold_run.metrics()
            print(f"fold {fold}: already done")
        else:
            print(f"fold {fold}: {len(split.train)} training, {len(split.validation)} validation, {len(held)} held out")
            metrics = train_split(config, split, fold_run, store, fold_split)
        rows.append({"fold": fold, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro"]["f1"],
                     "weighted_f1": metrics["weighted"]["f1"], "single_class": metrics["single_class"],
                     "macro_roc_auc": (metrics.get("ranking") or {}).get("macro", {}).get("roc_auc", np.nan),
                     **{key: (metrics.get("calibration") or {}).get(key, np.nan) for key in ("ece", "brier")},
                     **{f"{name}_{key}": (metrics.get("ratings") or {}).get(name, {}).get(figure, np.nan)
                        for name in RATINGS for key, figure in RATING_FIGURES.items()}})
    table = pd.DataFrame(rows)
    table.to_csv(run.cv_results_file, index=False)
    summarize_folds(table, run, config.split.folds)
    return table


def summarize_folds(table: pd.DataFrame, run: Run, folds: int) -> dict:
    """The folds' mean and standard deviation, written to the run's summary and printed."""
    result: dict = {"folds": len(table)}
    ratings = [f"{name}_{key}" for name in RATINGS for key in RATING_FIGURES]
    for key in ("accuracy", "macro_f1", "macro_roc_auc", "ece", "brier", *ratings):  # one earlier folds lack: none
        column = table[key] if key in table else pd.Series(np.nan, index=table.index)
        for name, value in (("mean", column.mean()), ("std", column.std())):
            result[f"{key}_{name}"] = None if np.isnan(value) else float(value)
    result["single_class_folds"] = table.loc[table["single_class"], "fold"].tolist()
    run.cv_summary_file.write_text(json.dumps(result, indent=2))
    print(f"{folds}-fold: accuracy {result['accuracy_mean']:.4f} ± {result['accuracy_std']:.4f}, "
          f"macro-F1 {result['macro_f1_mean']:.4f} ± {result['macro_f1_std']:.4f}"
          + (f", ROC AUC {result['macro_roc_auc_mean']:.4f} ± {result['macro_roc_auc_std']:.4f}"
             if result["macro_roc_auc_std"] is not None else "")
          + (f", calibration error {result['ece_mean']:.4f}, Brier {result['brier_mean']:.4f}"
             if result["ece_mean"] is not None else "")
          + "".join(f", {name} rho {result[f'{name}_rho_mean']:.3f} ± {result[f'{name}_rho_std'] or 0:.3f}"
                    for name in RATINGS if result[f"{name}_rho_mean"] is not None))
    if result["single_class_folds"]:  # the mean would hide them
        print(f"WARNING: the models of folds {result['single_class_folds']} predict a single class for every "
              "held-out image: they have collapsed, and the mean above includes them", file=sys.stderr)
    return result
