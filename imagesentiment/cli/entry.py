"""The ``imagesentiment`` command line: one sub-command per step of the data flow."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Sequence

from . import data, evaluate, explain, export, pipeline, predict, video
from ..contract import missing_model
from ..runtime import start_tensorflow_quietly

# each command in the order the help lists them; its module holds its options beside its function
COMMANDS = (data.add_check, pipeline.add_train, pipeline.add_cv, evaluate.add_evaluate, explain.add_explain,
            predict.add_report, export.add_export, predict.add_predict, pipeline.add_shard, predict.add_score_beam,
            video.add_video, data.add_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagesentiment",
                                     description=__doc__.split("\n")[0].replace("``", "") if __doc__ else None)
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _training_errors() -> tuple[type[Exception], ...]:
    """TrainingError if training code was imported (only it raises one), without importing TensorFlow for it."""
    train = sys.modules.get("imagesentiment.training.fit")
    return (train.TrainingError,) if train else ()


# the library's messages name what to pass both ways, "overwrite=True (--overwrite)": here only the option
PYTHON_AND_OPTION = re.compile(r"\b[a-z_]+=[\w.]+ \((--[a-z-]+)\)")


def options_only(message: str) -> str:
    """An error's message as the command line says it: ``overwrite=True (--overwrite)`` becomes ``--overwrite``."""
    return PYTHON_AND_OPTION.sub(r"\1", message)


def main(argv: Sequence[str] | None = None) -> int:
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # a level the user set means they want TensorFlow's lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "score-beam":  # only Beam takes options of its own
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    args.start_tensorflow = start_tensorflow_quietly if quiet else lambda: None
    for given in (getattr(args, "model", None), getattr(args, "faces_model", None)):  # before anything is read
        problem = missing_model(given) if given else None
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    if not args.inputs_first:
        args.start_tensorflow()
    try:
        return args.run(args)
    except (ValueError, *_training_errors()) as exc:  # ConfigError, DataError and ExportError are ValueErrors
        print(f"error: {options_only(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written (no such file, a folder, no permission, offline)
        said = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        print(f"error: {options_only(said)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: say what was kept and how to go on, not a traceback
        hint = args.after_interrupt
        print(f"interrupted{': ' + hint if hint else ''}", file=sys.stderr)
        return 130

