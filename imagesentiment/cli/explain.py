"""``explain``: heat maps of a model's predictions, or each method's faithfulness on a data set."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .shared import (COUNT, NON_NEGATIVE, UsageError, add_command, add_trust, bounded, collect_images, count, names,
                     parse_options, scoped)

PICTURES_ONLY = {"cmap": "jet", "alpha": 0.4, "filters": False, "feature_maps": None}  # the options without --evaluate
EVALUATE_ONLY = {"format": None, "option": [], "limit": 64, "steps": 20, "seed": 0}  # the options of --evaluate


def _explain_images(model, args: argparse.Namespace) -> int:
    from ..data import check_images
    from ..explain import class_names, explain_files
    from ..explain.methods import default_method

    checks = check_images(collect_images(args.images, args.out))
    for row in checks[checks.reason != ""].itertuples():
        print(f"skipped {row.path}: {row.reason}", file=sys.stderr)
    paths = checks.loc[checks.reason == "", "path"].tolist()
    if not paths:
        raise UsageError("no usable image to explain")
    methods = args.method or [default_method(model)]
    explain_files(model, paths, args.out, class_names(model, args.classes), methods, args.target, args.batch_size,
                  args.cmap, args.alpha, args.filters, args.feature_maps or (), progress=len(paths) > args.batch_size)
    print(f"{count(len(paths), 'image')} explained with {', '.join(methods)}; pictures written to {args.out}")
    return 0


def _explain_evaluate(model, args: argparse.Namespace) -> int:
    from ..data import check_set, load_source
    from ..explain.faithfulness import evaluate_on

    if len(args.images) != 1:
        raise UsageError("--evaluate takes one data set (a class-per-folder root or a CSV manifest)")
    checked = check_set(load_source(args.images[0], args.format, **parse_options(args.option)))
    print(checked.report())
    table = evaluate_on(model, checked.images, args.method, args.target, args.steps, args.seed, args.limit,
                        args.batch_size, progress=True)
    print(f"faithfulness on {table.attrs['images']} images (deletion: lower is better; insertion: higher is better)")
    print(table.to_string(float_format="%.3f"))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(args.out) / "faithfulness.csv")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Heat maps of a model's predictions: a panel and an overlay per image and a grid per batch,
    or with --evaluate a table of each method's faithfulness (deletion/insertion AUC) on a data set."""
    from ..inference.loader import default_model, load_keras

    scoped(args, {"with --evaluate": (args.evaluate, EVALUATE_ONLY),
                  "without --evaluate": (not args.evaluate, PICTURES_ONLY)})
    model, args.classes = load_keras(args.model or default_model(), args.classes, not args.trust_unverified)
    if args.target is not None and args.target.lstrip("-").isdigit():
        args.target = int(args.target)
    return _explain_evaluate(model, args) if args.evaluate else _explain_images(model, args)


def add_explain(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "explain", cmd_explain)
    add_trust(p)
    p.add_argument("images", nargs="+", help="image files or folders of them (with --evaluate: one data set)")
    p.add_argument("--model", help="a run directory, a .keras file or an exported SavedModel version "
                   "(default: the shipped model)")
    p.add_argument("--method", action="append", help="an explanation method (default: finecam, or gradcam for a "
                   "model with no finer feature map; a name it does not know is answered with the list of methods); "
                   "repeat for several (--evaluate: all but the slow Score-CAM by default)")
    p.add_argument("--target", help="the class to explain, by name or index (default: the predicted class)")
    p.add_argument("--classes", type=names, help="the model's class names, comma-separated "
                   "(default: those stored with the model, else negative,neutral,positive for three outputs)")
    p.add_argument("--out", default="runs/explain", help="output folder")
    p.add_argument("--cmap", help=f"matplotlib colour map of the heat maps (default: {PICTURES_ONLY['cmap']})")
    p.add_argument("--alpha", type=bounded(float, 0, 1),
                   help=f"opacity of the heat map in the overlay (default: {PICTURES_ONLY['alpha']})")
    p.add_argument("--batch-size", type=COUNT, default=16, help="images per batch")
    p.add_argument("--filters", action="store_true", help="also draw the first convolution's filters")
    p.add_argument("--feature-maps", type=names, metavar="LAYER,...",
                   help="also draw these layers' feature maps per image")
    p.add_argument("--evaluate", action="store_true", help="print deletion/insertion AUC per method and a random map")
    p.add_argument("--format", help="with --evaluate: the data set's format (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="with --evaluate: a source option")
    p.add_argument("--limit", type=COUNT,
                   help=f"with --evaluate: images drawn at random from the set (default: {EVALUATE_ONLY['limit']})")
    p.add_argument("--steps", type=COUNT,
                   help=f"with --evaluate: points on each curve (default: {EVALUATE_ONLY['steps']})")
    p.add_argument("--seed", type=NON_NEGATIVE,
                   help=f"with --evaluate: the seed of the random draw (default: {EVALUATE_ONLY['seed']})")
