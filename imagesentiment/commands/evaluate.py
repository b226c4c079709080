"""``evaluate``: a trained or exported model judged on labelled images."""
from __future__ import annotations

import argparse
from pathlib import Path

from .shared import UsageError, add_command, labelled_data, scoped


def _test_time_views(args: argparse.Namespace, run) -> dict[str, bool]:
    """The test-time views given, else those ``run``'s own test metrics were measured with (none without a run)."""
    stored = run.test_time_views() if run else {}
    return {key: stored.get(key, False) if getattr(args, key) is None else getattr(args, key)
            for key in ("flip_tta", "crop_tta")}


def _view_flags(views: dict[str, bool]) -> str:
    """``--flip-tta --no-crop-tta``: test-time views as the options that choose them."""
    return " ".join(f"--{'' if on else 'no-'}{key.replace('_', '-')}" for key, on in views.items())


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a trained or exported model: metrics per class and averaged, confusion matrix, curves,
    predictions."""
    from ..data import check_set
    from ..evaluate import evaluate_model
    from ..inference import load
    from ..metrics import summary
    from ..run import Run, read_metrics

    scoped(args, {"with --data": (bool(args.data), {"format": None, "option": []})})
    model_path = Path(args.model)
    run = Run(model_path) if Run(model_path).has_model() else None  # not a SavedModel's own folder
    data = str(Path(args.data).resolve()) if args.data else None
    data_run = Run(data) if data and Run(data).has_sides("test") else None  # a run's test side
    folds = [fold.folder.name for fold in Run(data).folds()] if data else []
    if folds and not data_run:
        raise UsageError(f"{args.data}: a cross-validation run; give one of its folds ({', '.join(folds)}) "
                         "to evaluate on that fold's test side")
    out = Path(args.out) if args.out else (run.evaluation_folder(data) if run else None)  # one per data set
    # by default the views the run's own test metrics were measured with: the model's run, else (an exported
    # file judged on the test side of the run it came from) the data's
    views = _test_time_views(args, run or data_run)
    earlier = read_metrics(out) if out else {}
    if not args.out and earlier.get("data") not in (None, data):
        raise UsageError(f"{out} holds the evaluation on {earlier['data']}; give --out for the one on {data}")
    if not args.out and earlier.get("test_time_views") not in (None, views):
        raise UsageError(f"{out} holds the evaluation with {_view_flags(earlier['test_time_views'])}; give --out "
                         f"for the one with {_view_flags(views)}")
    predictor = load(model_path)  # safe mode; a file that is not a model gets an error naming it
    classes = predictor.class_names
    if data_run and not args.format:
        images = data_run.sides(classes, "test")
    elif args.data:
        images = labelled_data(args, classes, args.format)
    elif run and run.has_sides("test"):
        images = run.sides(classes, "test")
    else:
        raise UsageError("give --data, or a run directory that holds split_test.csv")
    checked = check_set(images)
    print(checked.report())
    print(summary(evaluate_model(predictor, checked.images, out, **views, data=data, classes=classes)))
    if out:
        print(f"metrics written to {out}")
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "evaluate", cmd_evaluate)
    p.add_argument("model", help="a run directory, a .keras file, a SavedModel version folder or a .tflite file")
    p.add_argument("--data", help="a data set to evaluate on, or a run directory: its test side "
                   "(default: the run's test split)")
    p.add_argument("--format", help="the data set's format (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a source option, e.g. split=test")
    p.add_argument("--flip-tta", action=argparse.BooleanOptionalAction,
                   help="average with the mirrored image's prediction (default: as the run's config.yaml says)")
    p.add_argument("--crop-tta", action=argparse.BooleanOptionalAction,
                   help="average with the centre and four corner crops' predictions (with --flip-tta: 12 views; "
                   "default: as the run's config.yaml says)")
    p.add_argument("--out", help="output folder (default: RUN/evaluation, with --data RUN/evaluation_DATANAME)")
