"""``evaluate``: a trained or exported model judged on labelled images."""
from __future__ import annotations

import argparse

from .shared import add_command, parse_options, scoped


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a trained or exported model: metrics per class and averaged, confusion matrix, curves,
    predictions."""
    from ..evaluation.metrics import summary
    from ..training.assessment import assess

    scoped(args, {"with --data": (bool(args.data), {"format": None, "option": []})})
    metrics, out, checks = assess(args.model, args.data, args.format, parse_options(args.option), args.out,
                                  args.flip_tta, args.crop_tta)
    print(checks)
    print(summary(metrics))
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
