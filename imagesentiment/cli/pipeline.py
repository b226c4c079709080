"""``train``, ``cv`` and ``shard``: the commands that run a pipeline configuration."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .shared import COUNT, NON_NEGATIVE, UsageError, add_command, bounded, count, parse_options


def _config(args: argparse.Namespace):
    """The configuration ``args`` name, with their overrides, and the run directory (``--out``)."""
    from ..training.overrides import load_overridden

    config = load_overridden(args.config, parse_options(args.set), {
        "train.epochs": args.epochs, "train.batch_size": args.batch_size, "train.learning_rate": args.learning_rate,
        "seed": args.seed})
    return config, Path(args.out or Path("runs") / config.name)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model from a pipeline configuration; run again to resume an interrupted run."""
    config, out = _config(args)
    if args.refit:
        from ..training.refit import RefitError, refit_config

        try:
            config, chosen = refit_config(config, args.refit)
        except RefitError as exc:
            raise UsageError(str(exc)) from None
        print(chosen)
    args.start_tensorflow()  # the configuration is checked: now TensorFlow
    from ..training.fit import train

    train(config, out)
    print(f"run written to {out}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    """k-fold cross-validation of a pipeline configuration (mean and standard deviation)."""
    config, out = _config(args)
    args.start_tensorflow()
    from ..training.cv import cross_validate

    cross_validate(config, out)
    print(f"folds written to {out}")
    return 0


def _add_training(sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
                  after_interrupt: str) -> argparse.ArgumentParser:
    p = add_command(sub, name, run, after_interrupt, inputs_first=True)
    p.add_argument("config", help="a YAML file, e.g. pipelines/oasis.yaml")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--epochs", type=COUNT, help="overrides train.epochs")
    p.add_argument("--batch-size", type=COUNT, help="overrides train.batch_size")
    p.add_argument("--learning-rate", type=bounded(float, 0, above=True), help="overrides train.learning_rate")
    p.add_argument("--seed", type=NON_NEGATIVE, help="overrides seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any key, e.g. --set model.input_size=128")
    return p


def add_train(sub: argparse._SubParsersAction) -> None:
    p = _add_training(sub, "train", cmd_train, "every finished epoch is kept (none if it stopped while reading the "
                      "data); run the same command again to go on")
    p.add_argument("--refit", metavar="RUN", help="train the final model on every photo (no validation or test side) "
                   "for the epochs, and with the temperature, that RUN's validation sides chose (a finished train or "
                   "cv run of this configuration)")


def add_cv(sub: argparse._SubParsersAction) -> None:
    _add_training(sub, "cv", cmd_cv, "finished folds and the current fold's finished epochs are kept; run the "
                  "same command again to go on")


def cmd_shard(args: argparse.Namespace) -> int:
    """Write the configured data, checked and split as training splits it, as TFRecord shards
    PREFIX/train, PREFIX/validation and PREFIX/test (local or gs://...); train from them with
    --set data.shards=PREFIX."""
    import tempfile

    from ..runtime import tf

    from ..training.prepare import prepare_split
    from ..data.shards import write_split
    from ..training.run import Run

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
        print(f"{name:>10}: {count(shards.count, 'image')} in {count(len(shards.files), 'shard')} {shards.counts}")
    print(f"shards written to {prefix}; train from them with --set data.shards={prefix}")
    return 0


def add_shard(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "shard", cmd_shard)
    p.add_argument("config", help="a YAML file, e.g. pipelines/oasis.yaml")
    p.add_argument("--out", required=True, metavar="PREFIX", help="where the shard sets go (local or gs://...)")
    p.add_argument("--shard-size", type=COUNT, default=1000, help="images per shard file")
    p.add_argument("--seed", type=NON_NEGATIVE, help="overrides seed (the split's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key")
