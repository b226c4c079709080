"""The ``imagesentiment`` command line: one sub-command per step of the data flow."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .native_stderr import start_tensorflow_quietly


class UsageError(ValueError):
    """A command given what it cannot use; ``main`` prints it as ``error: ...`` and exits with status 2."""


def parse_options(pairs: Sequence[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, each value read as a YAML scalar (``five``, ``3``, ``[3.5, 4.5]``)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"option {pair!r} is not of the form KEY=VALUE")
        try:  # safe_load: a value is data; a tag such as !!python/object is refused
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UsageError(f"option {pair!r}: the value is not a plain YAML scalar or list ({exc})") from None
    return options


def bounded(kind: type[int] | type[float], low: float, high: float = math.inf,
            above: bool = False) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` at least ``low`` (above it with ``above``) and at most ``high``."""
    want = (f"a {'whole ' if kind is int else ''}number {'>' if above else '>='} {low}"
            + (f" and <= {high}" if high < math.inf else ""))

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > low if above else value >= low) or value > high:
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return value
    return parse


COUNT, NON_NEGATIVE = bounded(int, 1), bounded(int, 0)  # e.g. --batch-size; --seed, --smooth


def _not_an_input(out: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """Refuse an output path that is one of the command's input files: writing it would destroy the input."""
    for given in inputs:
        if os.path.isfile(given) and os.path.exists(out) and os.path.samefile(given, out):
            raise UsageError(f"{out}: is an input of this command ({given}); write the output under another name")


def _count(number: int, noun: str) -> str:
    """``1 image``, ``3 images``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cmd_check(args: argparse.Namespace) -> int:
    """Check every image of a data set and list the files left out."""
    from .data import check_set, load_source

    images = load_source(args.path, args.format, **parse_options(args.option))
    checked = check_set(images, args.max_pixels)
    print(checked.report())
    print("per class:", checked.images.counts())
    if args.out:
        print("skipped files written to", checked.write_skipped(args.out))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a small image set and run it through checks, split and pipeline."""
    import time

    from .data import check_set, make_dataset, make_synthetic_set, train_val_test_split

    out = Path(args.out)
    images = make_synthetic_set(out / "images", per_class=args.per_class, size=args.size, seed=args.seed)
    checked = check_set(images)
    checked.write_skipped(out)
    split = train_val_test_split(checked.images, seed=args.seed)
    print(checked.report())
    for name in ("train", "validation", "test"):
        print(f"{name:>10}: {getattr(split, name).counts()}")
    start, seen = time.perf_counter(), 0
    for batch, _ in make_dataset(split.train, (args.size, args.size), 32, training=True, seed=args.seed):
        seen += int(batch.shape[0])
    print(f"pipeline: {seen} training images in {time.perf_counter() - start:.2f} s")
    return 0


def _absolute(value: object) -> object:
    """A path given on the command line made absolute against the working folder (each of a list)."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    return os.path.abspath(value) if isinstance(value, str) and value != "imagenet" and "://" not in value else value


def _config(args: argparse.Namespace):
    from .config import load_config

    given = parse_options(args.set)
    overrides = dict(given)
    for key, value in given.items():  # paths given here are relative to the working folder
        if key.endswith((".path", ".weights", ".shards")):
            overrides[key] = _absolute(value)
    for key, value in (("train.epochs", args.epochs), ("train.batch_size", args.batch_size),
                       ("train.learning_rate", args.learning_rate), ("seed", args.seed)):
        if value is not None:
            overrides[key] = value
    config = load_config(args.config, overrides)
    _check_data_paths(config, given, Path(args.config))
    return config, Path(args.out or Path("runs") / config.name)


def _check_data_paths(config, given: dict[str, object], yaml: Path) -> None:
    """A data path that names nothing, refused with the one rule: a relative path is read from the folder of
    where it was written (the configuration file's folder; the working folder for --set), and the path it
    would name the other way when something is there (a line copied from the file to --set)."""
    data = config.data
    named = [("data.source", data.source), ("data.test", data.test),
             *((f"data.extra_training[{i}]", s) for i, s in enumerate(data.extra_training))]
    for key, source in named:
        if source is None or "://" in source.path or os.path.exists(source.path):
            continue
        typed = given.get(f"{key}.path")
        if isinstance(typed, str):
            where, other = f"given with --set: read from the working folder {os.getcwd()}", yaml.resolve().parent / typed
        else:
            where, other = f"written in {yaml}: read from its folder {yaml.resolve().parent}", None
        hint = f"; {other.resolve()} exists: give that path" if other is not None and other.exists() else ""
        raise UsageError(f"{key}.path: no such file or folder {source.path} (a relative path is read from the "
                         f"folder of where it is written; {where}){hint}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model from a pipeline configuration; run again to resume an interrupted run."""
    from .train import train

    config, out = _config(args)
    train(config, out)
    print(f"run written to {out}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    """k-fold cross-validation of a pipeline configuration (mean and standard deviation)."""
    from .train import cross_validate

    config, out = _config(args)
    cross_validate(config, out)
    print(f"folds written to {out}")
    return 0


def _run_views(run_dir: Path | None) -> dict[str, bool]:
    """The test-time views of a run (its config.yaml's ``evaluate``); none for a bare model file."""
    path = run_dir / "config.yaml" if run_dir else None
    stored = {}
    if path is not None and path.is_file():
        stored = (yaml.safe_load(path.read_text()) or {}).get("evaluate") or {}
    return {key: bool(stored.get(key, False)) for key in ("flip_tta", "crop_tta")}


def _view_flags(views: dict[str, bool]) -> str:
    """``--flip-tta --no-crop-tta``: test-time views as the options that choose them."""
    return " ".join(f"--{'' if on else 'no-'}{key.replace('_', '-')}" for key, on in views.items())


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a trained or exported model: metrics per class and averaged, confusion matrix, curves,
    predictions."""
    from .data import check_set
    from .evaluate import evaluate_model
    from .metrics import summary
    from .inference import KerasPredictor, load

    _scoped(args, {"with --data": (bool(args.data), {"format": None, "option": []})})
    model_path = Path(args.model)
    run_dir = model_path if (model_path / "model.keras").is_file() else None  # not a SavedModel's own folder
    data = str(Path(args.data).resolve()) if args.data else None
    data_run = Path(data) if data and (Path(data) / "split_test.csv").is_file() else None  # a run's test side
    folds = sorted(p.parent.name for p in Path(data).glob("fold*/split_test.csv")) if data else []
    if folds and not data_run:
        raise UsageError(f"{args.data}: a cross-validation run; give one of its folds ({', '.join(folds)}) "
                         "to evaluate on that fold's test side")
    folder = f"evaluation_{Path(data).stem}" if data else "evaluation"  # one per data set
    out = Path(args.out) if args.out else (run_dir / folder if run_dir else None)
    # by default the views the run's own test metrics were measured with: the model's run, else (an exported
    # file judged on the test side of the run it came from) the data's
    views = _run_views(run_dir or data_run)
    views = {key: views[key] if getattr(args, key) is None else getattr(args, key) for key in views}
    earlier = (json.loads((out / "metrics.json").read_text()) if out and (out / "metrics.json").is_file() else {})
    if not args.out and earlier.get("data") not in (None, data):
        raise UsageError(f"{out} holds the evaluation on {earlier['data']}; give --out for the one on {data}")
    if not args.out and earlier.get("test_time_views") not in (None, views):
        raise UsageError(f"{out} holds the evaluation with {_view_flags(earlier['test_time_views'])}; give --out "
                         f"for the one with {_view_flags(views)}")
    predictor = load(model_path)  # safe mode; a file that is not a model gets an error naming it
    model = predictor.model if isinstance(predictor, KerasPredictor) else predictor  # Keras: one compiled graph
    classes = predictor.class_names
    if data_run and not args.format:
        images = _run_side(data_run, classes, "test")
    elif args.data:
        images = _labelled_data(args, classes, args.format)
    elif run_dir and (run_dir / "split_test.csv").is_file():
        images = _run_side(run_dir, classes, "test")
    else:
        raise UsageError("give --data, or a run directory that holds split_test.csv")
    checked = check_set(images)
    print(checked.report())
    print(summary(evaluate_model(model, checked.images, out, **views, data=data, classes=classes)))
    if out:
        print(f"metrics written to {out}")
    return 0


def _collect_images(inputs: Sequence[str], pictures: str | None = None,
                    columns: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The image files among ``inputs`` (``inputs.collect_images``, which fills ``columns``), saying which
    photos it cannot read; those in ``pictures``, the folder the command draws heat maps into, are left out:
    with the maps kept beside the photos (``photos/ --explain photos/maps``) the next run scored the maps."""
    from .inputs import collect_images

    notes: list[str] = []
    paths = collect_images(inputs, notes=notes, columns=columns)
    if pictures:
        drawn = [Path(os.path.abspath(p)).is_relative_to(os.path.abspath(pictures)) for p in paths]
        if any(drawn):
            paths = [p for p, inside in zip(paths, drawn) if not inside]
            notes.append(f"{pictures}: {_count(sum(drawn), 'image')} left out, in the folder heat maps are drawn into")
    for note in notes:
        print(note, file=sys.stderr)
    if not paths:
        raise UsageError(f"no images left: all are in {pictures}, the folder heat maps are drawn into; give it "
                         "another folder")
    return paths


def _explain_images(model, args: argparse.Namespace) -> int:
    from .data import check_images
    from .explain import class_names, explain_files

    checks = check_images(_collect_images(args.images, args.out))
    for row in checks[checks.reason != ""].itertuples():
        print(f"skipped {row.path}: {row.reason}", file=sys.stderr)
    paths = checks.loc[checks.reason == "", "path"].tolist()
    if not paths:
        raise UsageError("no usable image to explain")
    methods = args.method or ["gradcam"]
    explain_files(model, paths, args.out, class_names(model, args.classes), methods, args.target, args.batch_size,
                  args.cmap, args.alpha, args.filters, args.feature_maps or (), progress=len(paths) > args.batch_size)
    print(f"{_count(len(paths), 'image')} explained with {', '.join(methods)}; pictures written to {args.out}")
    return 0


def _explain_evaluate(model, args: argparse.Namespace) -> int:
    import numpy as np

    from .data import check_set, load_source, make_dataset
    from .explain import METHODS, evaluate

    if len(args.images) != 1:
        raise UsageError("--evaluate takes one data set (a class-per-folder root or a CSV manifest)")
    checked = check_set(load_source(args.images[0], args.format, **parse_options(args.option)))
    print(checked.report())
    images = checked.images
    rows = np.random.default_rng(args.seed).permutation(len(images))[:args.limit]
    batches = make_dataset(images.subset(sorted(rows)), model.input_shape[1:3], args.batch_size)
    x = np.concatenate([batch.numpy() for batch, _ in batches])
    methods = args.method or [m for m in METHODS if m != "scorecam"]
    table = evaluate(model, x, methods, args.target, args.steps, args.seed, progress=True)
    print(f"faithfulness on {len(x)} images (deletion: lower is better; insertion: higher is better)")
    print(table.to_string(float_format="%.3f"))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(args.out) / "faithfulness.csv")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Heat maps of a model's predictions: a panel and an overlay per image and a grid per batch,
    or with --evaluate a table of each method's faithfulness (deletion/insertion AUC) on a data set."""
    from .inference import default_model, load_keras

    _scoped(args, {"with --evaluate": (args.evaluate, {"format": None, "option": [], "limit": 64, "steps": 20,
                                                       "seed": 0}),
                   "without --evaluate": (not args.evaluate, {"cmap": "jet", "alpha": 0.4, "filters": False,
                                                              "feature_maps": None})})
    model, args.classes = load_keras(args.model or default_model(), args.classes)
    if args.target is not None and args.target.lstrip("-").isdigit():
        args.target = int(args.target)
    return _explain_evaluate(model, args) if args.evaluate else _explain_images(model, args)


def cmd_report(args: argparse.Namespace) -> int:
    """Write a self-contained HTML report of a predictions table (CSV, JSON Lines or Parquet)."""
    from .report import build_report, check_out, read_predictions

    _not_an_input(args.out, [args.predictions])
    check_out(args.out, args.predictions, args.overwrite)
    predictions = read_predictions(args.predictions)
    try:
        out = build_report(predictions, args.out, args.title, gallery=args.gallery, source=args.predictions,
                           overwrite=args.overwrite)
    except ValueError as exc:  # the table's content: name the file
        raise UsageError(f"{args.predictions}: {exc}") from None
    print(f"report written to {out}")
    return 0


def _run_side(run_dir: Path, classes: Sequence[str], *names: str):
    """The ``names`` sides (train, validation, test) of the split a training run wrote
    (``split_NAME.csv``), as one set; a side without its file is left out."""
    import pandas as pd

    from .data import ImageSet

    files = [run_dir / f"split_{name}.csv" for name in names]
    return ImageSet(pd.concat([pd.read_csv(f) for f in files if f.is_file()], ignore_index=True), tuple(classes))


def _labelled_data(args: argparse.Namespace, classes: Sequence[str], data_format: str | None):
    """The data set of ``--data``, its labels matched by name to the model's ``classes`` (a folder's
    classes come sorted, which need not be the model's output order)."""
    from .data import load_source

    return load_source(args.data, data_format, **parse_options(args.option)).with_classes(classes, args.data)


def _export_sets(args: argparse.Namespace, classes: Sequence[str]):
    """(training side for int8 calibration, held-out images for the LiteRT checks) of --data (its test
    side) or the run directory (its test and validation sides: no weight was fitted on either)."""
    from .data import check_set, train_val_test_split

    if args.data:
        images = check_set(_labelled_data(args, classes, args.data_format)).images
        split = train_val_test_split(images, seed=args.seed)
        return split.train, split.test
    run_dir = Path(args.model)
    if all((run_dir / f"split_{name}.csv").is_file() for name in ("train", "test")):
        return _run_side(run_dir, classes, "train"), _run_side(run_dir, classes, "validation", "test")
    raise UsageError("a TFLite export is checked on labelled held-out images: give --data, "
                     "or a run directory that holds split_train.csv and split_test.csv")


def _max_layer_error(args: argparse.Namespace) -> float | None:
    from .export.tflite import MAX_LAYER_ERROR

    return None if args.all_integer else (MAX_LAYER_ERROR if args.max_layer_error is None else args.max_layer_error)


def _scoped(args: argparse.Namespace, scopes: dict[str, tuple[bool, dict[str, Any]]]) -> None:
    """Refuse options given where they would be ignored, naming them; then give the ones left out their
    defaults. ``scopes`` maps where options apply (``"with --evaluate"``) to (whether that holds, {option: default})."""
    for scope, (holds, options) in scopes.items():
        given = ["--" + o.replace("_", "-") for o in options if getattr(args, o) not in (None, False, [])]
        if given and not holds:
            raise UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only {scope}")
    for _, options in scopes.values():
        for option, default in options.items():
            if getattr(args, option) is None:
                setattr(args, option, default)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained model: a SavedModel version for TF Serving (BASE/NAME/VERSION), or TFLite
    files (float32, float16, dynamic-range, int8), each checked with the LiteRT interpreter against the model."""
    from .export import check_destination, export_savedmodel, export_tflite, image_arrays, input_size
    from .export.tflite import check_files
    from .inference import load_keras

    int8 = {"representative_images": 200, "max_layer_error": None, "all_integer": False}
    _scoped(args, {"to --format tflite": (args.format == "tflite", {
        "quantize": ["float32"], "data": None, "data_format": None, "option": [], "check_images": None, **int8}),
        "to --format savedmodel": (args.format == "savedmodel", {"version": None}),
        "to --quantize int8": ("int8" in (args.quantize or []), int8),
        "with --data": (bool(args.data), {"data_format": None, "option": []})})
    check_destination(args.out, args.name)
    model, classes = load_keras(args.model, args.classes)
    if args.format == "savedmodel":
        folder = export_savedmodel(model, args.out, args.name, classes, args.version, args.overwrite)
        print(f"SavedModel written to {folder}")
        return 0
    check_files(args.out, args.name, args.quantize, classes, args.overwrite)  # before the images are read
    train, test = _export_sets(args, classes)
    size = input_size(model)
    checks = image_arrays(test, size, classes, args.check_images, args.seed)
    representative = (image_arrays(train, size, classes, args.representative_images, args.seed)[0]
                      if "int8" in args.quantize else None)
    for quantization, (path, _) in export_tflite(model, args.out, args.quantize, checks, representative, classes,
                                                 args.name, _max_layer_error(args), args.overwrite).items():
        print(f"{quantization} model written to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


SHOWN_ROWS = 20  # predict prints each answer for at most this many photos


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the sentiment of images (files, folders, globs or a CSV with a path column) with any model
    form (default: the shipped model); rows are written as they come, --resume continues a stopped run."""
    _not_an_input(args.out, args.images)
    columns: dict[str, dict[str, Any]] = {}  # a CSV of inputs' other columns, carried into the table
    paths = _collect_images(args.images, args.explain, columns)
    args.start_tensorflow()  # the inputs are there: now the model
    from .inference import load
    from .predict import predict_files

    table = predict_files(load(args.model, args.classes), paths, args.out, args.batch_size, args.explain,
                          args.resume, args.overwrite, progress=len(paths) > args.batch_size,
                          max_pixels=args.max_pixels, columns=columns, wait=args.wait)
    failed = table[table["error"].notna() & (table["error"] != "")]
    for row in failed.itertuples():
        print(f"{row.path}: {row.error}", file=sys.stderr)
    if len(table) <= SHOWN_ROWS:  # a few photos: the answers here, not only in the table
        for row in table.drop(failed.index).itertuples():
            print(f"{row.path}: {row.label} ({row.confidence:.2f})")
    counts = table["label"].value_counts().to_dict()
    now = table.attrs["read_now"]
    before = f" ({len(table) - now} of these rows from before, {now} now)" if now < len(table) else ""
    print(f"{_count(len(table) - len(failed), 'image')} scored {counts}, {len(failed)} unreadable{before}; "
          f"written to {args.out}")
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    """Write the configured data, checked and split as training splits it, as TFRecord shards
    PREFIX/train, PREFIX/validation and PREFIX/test (local or gs://...); train from them with
    --set data.shards=PREFIX."""
    import tempfile

    import tensorflow as tf

    from .data.prepare import prepare_split
    from .data.shards import write_split
    from .run import Run

    args.epochs = args.batch_size = args.learning_rate = None
    config, _ = _config(args)
    if any(source.weight != 1.0 for source in config.data.extra_training):
        raise UsageError("shards keep no per-source weight; drop data.extra_training's weight "
                         "to shard this configuration, or train from the files")
    prefix = args.out.rstrip("/")
    with tempfile.TemporaryDirectory() as scratch:
        skipped = Run(scratch).skipped_file
        split = prepare_split(config, skipped)
        written = write_split(split, prefix, args.shard_size, config.seed)
        tf.io.gfile.copy(str(skipped), f"{prefix}/{skipped.name}", overwrite=True)
    for name, shards in written.items():
        print(f"{name:>10}: {_count(shards.count, 'image')} in {_count(len(shards.files), 'shard')} {shards.counts}")
    print(f"shards written to {prefix}; train from them with --set data.shards={prefix}")
    return 0


def cmd_score_beam(args: argparse.Namespace) -> int:
    """Score a large collection with an exported SavedModel on Apache Beam (RunInference), on the local
    runner or, with Beam's options after the others (--runner DataflowRunner ...), on a cluster;
    writes OUT-0000i-of-0000N.parquet (or .csv). Needs pip install imagesentiment[scale]."""
    try:
        from .scale import score
    except ImportError as exc:
        raise UsageError(str(exc)) from None

    files = score(args.images, args.model, args.out, args.format, args.tfrecords, args.batch_size,
                  args.beam_args, args.overwrite)
    print(f"scores written to {', '.join(files)}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    """Sentiment over time in a video: per-frame table, timeline plot, summary, optional heat-map overlay."""
    from .inference import load
    from .video import check_outputs, score_video

    out = Path(args.out or Path("runs") / "video" / Path(args.file).stem)
    check_outputs(args.file, out, args.overlay, args.overwrite)  # before the model loads
    result = score_video(args.file, load(args.model), out, args.every, args.per_second, args.batch_size,
                         args.smooth, args.overlay, overwrite=args.overwrite)
    smoothed = "smoothed_share_of_time" in result.summary
    shares = ", ".join(f"{c} {v:.0%}" for c, v in
                       result.summary["smoothed_share_of_time" if smoothed else "share_of_time"].items())
    print(f"{_count(result.summary['samples'], 'frame')} scored ({shares}"
          f"{f', smoothed over {args.smooth} samples' if smoothed else ''}); written to {out}"
          + (f", heat-map copy to {args.overlay}" if args.overlay else ""))
    return 0


class _ShowDefaults(argparse.HelpFormatter):
    """Help that ends each option with its default, unless it has none or the text already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def _add(sub: argparse._SubParsersAction, name: str,
         run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=run.__doc__, description=run.__doc__, formatter_class=_ShowDefaults)
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagesentiment",
                                     description=__doc__.split("\n")[0].replace("``", "") if __doc__ else None)
    from . import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "check", cmd_check)
    p.add_argument("path", help="a class-per-folder root, a CSV manifest, or a bundled data set's folder")
    p.add_argument("--format", help="the data set's format: folder, manifest, votes, twitter, oasis, fer2013 or "
                   "videos (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a source option, e.g. agreement=four, split=test, min_agreement=0.6")
    p.add_argument("--max-pixels", type=COUNT, default=64_000_000, help="refuse larger images")
    p.add_argument("--out", help="where to list the skipped files: a .csv file, or a folder for skipped_files.csv")

    for name, run in (("train", cmd_train), ("cv", cmd_cv)):
        p = _add(sub, name, run)
        p.add_argument("config", help="a YAML file, e.g. pipelines/oasis.yaml")
        p.add_argument("--out", help="run directory (default: runs/<config name>)")
        p.add_argument("--epochs", type=COUNT, help="overrides train.epochs")
        p.add_argument("--batch-size", type=COUNT, help="overrides train.batch_size")
        p.add_argument("--learning-rate", type=bounded(float, 0, above=True), help="overrides train.learning_rate")
        p.add_argument("--seed", type=NON_NEGATIVE, help="overrides seed")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any key, e.g. --set model.input_size=128")

    p = _add(sub, "evaluate", cmd_evaluate)
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

    p = _add(sub, "explain", cmd_explain)
    p.add_argument("images", nargs="+", help="image files or folders of them (with --evaluate: one data set)")
    p.add_argument("--model", help="a run directory, a .keras file or an exported SavedModel version "
                   "(default: the shipped model)")
    p.add_argument("--method", action="append", help="gradcam (default), gradcam++, scorecam, faster_scorecam, "
                   "layercam, saliency or smoothgrad; repeat for several (--evaluate: all but scorecam by default)")
    p.add_argument("--target", help="the class to explain, by name or index (default: the predicted class)")
    p.add_argument("--classes", type=lambda s: s.split(","), help="the model's class names, comma-separated "
                   "(default: those stored with the model, else negative,neutral,positive for three outputs)")
    p.add_argument("--out", default="runs/explain", help="output folder")
    p.add_argument("--cmap", help="matplotlib colour map of the heat maps (default: jet)")
    p.add_argument("--alpha", type=bounded(float, 0, 1), help="opacity of the heat map in the overlay (default: 0.4)")
    p.add_argument("--batch-size", type=COUNT, default=16, help="images per batch")
    p.add_argument("--filters", action="store_true", help="also draw the first convolution's filters")
    p.add_argument("--feature-maps", type=lambda s: s.split(","), metavar="LAYER,...",
                   help="also draw these layers' feature maps per image")
    p.add_argument("--evaluate", action="store_true", help="print deletion/insertion AUC per method and a random map")
    p.add_argument("--format", help="with --evaluate: the data set's format (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="with --evaluate: a source option")
    p.add_argument("--limit", type=COUNT, help="with --evaluate: images drawn at random from the set (default: 64)")
    p.add_argument("--steps", type=COUNT, help="with --evaluate: points on each curve (default: 20)")
    p.add_argument("--seed", type=NON_NEGATIVE, help="with --evaluate: the seed of the random draw (default: 0)")

    p = _add(sub, "report", cmd_report)
    p.add_argument("predictions", help="the output of imagesentiment predict (.csv, .jsonl or .parquet)")
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.add_argument("--title", default="Image sentiment report", help="the page's heading")
    p.add_argument("--gallery", type=NON_NEGATIVE, default=1000,
                   help="at most this many thumbnails, misclassified first, then each class in turn (0: all)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out even if it is another table's report or not a report")

    p = _add(sub, "export", cmd_export)
    p.add_argument("model", help="a run directory (with model.keras) or a .keras file")
    p.add_argument("--format", choices=["savedmodel", "tflite"], default="savedmodel", help="what to export")
    p.add_argument("--out", default="exported_models",
                   help="savedmodel: the base folder a server watches (BASE/NAME/VERSION); tflite: the output folder")
    p.add_argument("--name", default="imagesentiment", help="the model's name (serving) or file name prefix (tflite)")
    p.add_argument("--classes", type=lambda s: s.split(","),
                   help="class names in output order, comma-separated (default: the run's classes.json, "
                   "else negative,neutral,positive)")
    p.add_argument("--version", type=COUNT, help="savedmodel: the version number (default: the next one)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing version (savedmodel) or existing files (tflite)")
    p.add_argument("--quantize", nargs="+", choices=["float32", "float16", "dynamic", "int8"],
                   help="tflite: one file per choice (default: float32)")
    p.add_argument("--data", help="tflite: a labelled data set, split as in training (--seed): calibration "
                   "images from its training side, checks on its test side (default: the run's split tables)")
    p.add_argument("--data-format", help="the data set's format (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="a source option")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the split seed (the training run's)")
    p.add_argument("--check-images", type=COUNT, help="tflite: test images to check on (default: all)")
    p.add_argument("--representative-images", type=COUNT, help="int8: calibration images (default 200)")
    layers = p.add_mutually_exclusive_group()
    layers.add_argument("--max-layer-error", type=bounded(float, 0),
                        help="int8: layers whose quantization error exceeds "
                        "this many steps stay in float (default 0.4; rounding alone gives 0.29)")
    layers.add_argument("--all-integer", action="store_true", help="int8: quantize every layer (for "
                        "integer-only accelerators), however large its error")

    p = _add(sub, "predict", cmd_predict)
    p.add_argument("images", nargs="+", help="image files, folders (searched recursively), globs, or CSV files "
                   "with a path column")
    p.add_argument("--model", help="a run directory, a .keras file, a SavedModel version folder or a .tflite "
                   "file (default: the shipped model)")
    p.add_argument("--classes", type=lambda s: s.split(","), help="class names, comma-separated (default: "
                   "those stored with the model)")
    p.add_argument("--out", default="predictions.csv", help="the table to write: .csv, .jsonl or .parquet")
    p.add_argument("--explain", metavar="DIR", help="also write a heat-map figure and overlay per image here")
    continuing = p.add_mutually_exclusive_group()
    continuing.add_argument("--resume", action="store_true", help="continue a stopped run: skip the images in --out")
    continuing.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--wait", action="store_true", help="if another run is writing --out, wait for it to end "
                   "(default: refuse)")
    p.add_argument("--batch-size", type=COUNT, default=32, help="images per batch")
    p.add_argument("--max-pixels", type=COUNT, default=64_000_000, help="larger images get an error row, "
                   "not decoded")

    p = _add(sub, "shard", cmd_shard)
    p.add_argument("config", help="a YAML file, e.g. pipelines/oasis.yaml")
    p.add_argument("--out", required=True, metavar="PREFIX", help="where the shard sets go (local or gs://...)")
    p.add_argument("--shard-size", type=COUNT, default=1000, help="images per shard file")
    p.add_argument("--seed", type=NON_NEGATIVE, help="overrides seed (the split's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key")

    p = _add(sub, "score-beam", cmd_score_beam)
    p.add_argument("images", nargs="+", help="file patterns (gs://bucket/photos/**.jpg) or folders; with "
                   "--tfrecords, patterns of shard files (PREFIX/test-*.tfrecord)")
    p.add_argument("--model", required=True, help="an exported SavedModel version folder (local or gs://...)")
    p.add_argument("--out", required=True, metavar="PREFIX", help="the output files' prefix")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="the output files' format")
    p.add_argument("--tfrecords", action="store_true", help="the inputs are TFRecord shards (imagesentiment shard)")
    p.add_argument("--batch-size", type=COUNT, default=32, help="the largest batch RunInference forms")
    p.add_argument("--overwrite", action="store_true", help="replace scores already written at --out")
    p.epilog = ("Any other option goes to Beam, best written --name=value: --runner=DataflowRunner --project=P "
                "--region=R --temp_location=gs://... ; locally --direct_num_workers=2 "
                "--direct_running_mode=multi_processing")

    p = _add(sub, "video", cmd_video)
    p.add_argument("file", help="a video file (anything OpenCV reads: mp4, avi, mov, mkv, ...)")
    p.add_argument("--model", help="a run directory, .keras, SavedModel version folder or .tflite "
                   "(default: the shipped model)")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=COUNT, help="score every N-th frame (default: every frame)")
    sampling.add_argument("--per-second", type=bounded(float, 0, above=True), help="score N frames per second of video")
    p.add_argument("--smooth", type=NON_NEGATIVE, default=0, metavar="N",
                   help="moving average over N samples (raw kept)")
    p.add_argument("--overlay", metavar="OUT.mp4", help="write a copy with heat maps and labels drawn in")
    p.add_argument("--batch-size", type=COUNT, default=32, help="frames per batch")
    p.add_argument("--out", help="output folder (default: runs/video/<name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's results in --out and "
                   "an existing --overlay file")

    p = _add(sub, "demo", cmd_demo)
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--per-class", type=COUNT, default=40, help="images generated per class")
    p.add_argument("--size", type=bounded(int, 2), default=64, help="their width and height in pixels")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the seed of the images and the split")
    return parser


AFTER_INTERRUPT = {
    "train": "every finished epoch is kept (none if it stopped while reading the data); run the same command "
             "again to go on",
    "cv": "finished folds and the current fold's finished epochs are kept; run the same command again to go on",
    "predict": "the rows written so far are kept; run the same command with --resume to continue",
    "video": "nothing was written, no half-written heat-map copy either; run the same command again",
}


# commands that check their inputs before TensorFlow starts (report never starts it), so that a typo is
# answered in a fraction of a second; each calls args.start_tensorflow() when it needs the model
INPUTS_FIRST = {"report", "predict"}


def _training_errors() -> tuple[type[Exception], ...]:
    """TrainingError if training code was imported (only it raises one), without importing TensorFlow for it."""
    train = sys.modules.get(f"{__package__}.train")
    return (train.TrainingError,) if train else ()


def main(argv: Sequence[str] | None = None) -> int:
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # a level the user set means they want TensorFlow's lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "score-beam":  # only Beam takes options of its own
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    args.start_tensorflow = start_tensorflow_quietly if quiet else lambda: None
    if args.command not in INPUTS_FIRST:
        args.start_tensorflow()
    try:
        return args.run(args)
    except (ValueError, *_training_errors()) as exc:  # ConfigError, DataError and ExportError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written (no such file, a folder, no permission, offline)
        print(f"error: {exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"error: {exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: say what was kept and how to go on, not a traceback
        hint = AFTER_INTERRUPT.get(args.command)
        print(f"interrupted{': ' + hint if hint else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
