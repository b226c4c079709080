"""A trained or exported model judged on held-out photos, as ``imagesentiment evaluate`` judges it: which photos
(its run's test side, another run's, or a data set), in which test-time views (those the run's own test
metrics were measured with, unless given) and where the evaluation goes (one folder per data set in the run)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data import DataError, ImageSet, check_set, load_source
from ..evaluation.evaluate import evaluate_model
from ..evaluation.metrics import read_metrics
from ..inference.loader import load
from .run import Run

VIEWS = ("flip_tta", "crop_tta")


def _view_flags(views: dict[str, bool]) -> str:
    """``--flip-tta --no-crop-tta``: test-time views as the options that choose them."""
    return " ".join(f"--{'' if on else 'no-'}{key.replace('_', '-')}" for key, on in views.items())


def _held_out(run: Run | None, data: str | os.PathLike | None, data_run: Run | None, classes: list[str],
              data_format: str | None, options: dict[str, Any]) -> ImageSet:
    """The photos to judge on: a run's test side given as the data, the data set, or the model's run's test side."""
    if data_run and not data_format:
        return data_run.sides(classes, "test")
    if data:
        return load_source(data, data_format, **options).with_classes(classes, data)
    if run and run.has_sides("test"):
        return run.sides(classes, "test")
    raise DataError("give --data, or a run directory that holds split_test.csv")


def assess(model: str | os.PathLike, data: str | os.PathLike | None = None, data_format: str | None = None,
           options: dict[str, Any] | None = None, out: str | os.PathLike | None = None,
           flip_tta: bool | None = None, crop_tta: bool | None = None) -> tuple[dict, Path | None, str]:
    """Judge ``model`` (any form) on held-out photos; returns the metrics, the folder written (None: a model
    without a run and no ``out``) and the report of the file checks. ``data``: a data set or a run directory
    (its test side); none: the model's run's test side. A view left as None is the one its run measured with."""
    model_path = Path(model)
    run = Run(model_path) if Run(model_path).has_model() else None  # not a SavedModel's own folder
    named, data = data, str(Path(data).resolve()) if data else None
    data_run = Run(data) if data and Run(data).has_sides("test") else None
    folds = [fold.folder.name for fold in Run(data).folds()] if data else []
    if folds and not data_run:
        raise DataError(f"{named}: a cross-validation run; give one of its folds ({', '.join(folds)}) to evaluate "
                        "on that fold's test side")
    folder = Path(out) if out else (run.evaluation_folder(data) if run else None)  # one per data set
    # the model's run's views, else (an exported file judged on the test side of its run) the data's
    stored = (run or data_run).test_time_views() if run or data_run else {}
    views = {key: stored.get(key, False) if given is None else given for key, given in zip(VIEWS, (flip_tta, crop_tta))}
    earlier = read_metrics(folder) if folder else {}
    if not out and earlier.get("data") not in (None, data):
        raise DataError(f"{folder} holds the evaluation on {earlier['data']}; give --out for the one on {data}")
    if not out and earlier.get("test_time_views") not in (None, views):
        raise DataError(f"{folder} holds the evaluation with {_view_flags(earlier['test_time_views'])}; give --out "
                        f"for the one with {_view_flags(views)}")
    predictor = load(model_path)  # safe mode; a file that is not a model gets an error naming it
    classes = predictor.class_names
    checked = check_set(_held_out(run, named, data_run, classes, data_format, options or {}))
    return (evaluate_model(predictor, checked.images, folder, **views, data=data, classes=classes), folder,
            checked.report())
