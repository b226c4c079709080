"""What the commands share: the usage error, option types and parsing, path checks, and adding a command."""
from __future__ import annotations

import argparse
import glob
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ..data.constants import MAX_BYTES

# the options of --faces (predict, video): the shipped faces model by default; the detector's own threshold
FACES_ONLY = {"faces_model": "faces", "min_face_score": None}


def add_faces(parser: argparse.ArgumentParser, what: str) -> None:
    """``--faces`` and ``--faces-model`` (see :data:`FACES_ONLY`); ``what``: the rows the faces' answers go in."""
    parser.add_argument("--faces", action="store_true", help="also find the faces in each photo or frame and "
                        f"score each with the faces model: {what}")
    parser.add_argument("--faces-model", help="with --faces: the faces model, any model form (default: "
                        f"{FACES_ONLY['faces_model']}, the shipped faces model in exported_models/faces)")
    parser.add_argument("--min-face-score", type=bounded(float, 0, 1, above=True),
                        help="with --faces: the detector's score (in the face_score column) a box needs to count as "
                        "a face; higher finds fewer faces that are not (default: the detector's own threshold, 0.5)")


def add_trust(parser: argparse.ArgumentParser) -> None:
    """``--trust-unverified``: load a model whose checksum record is missing or does not match (``verify=False``)."""
    parser.add_argument("--trust-unverified", action="store_true", help="load an exported model whose checksum "
                        "record is missing or does not match its files, with a warning (default: refused)")


def add_max_bytes(parser: argparse.ArgumentParser, what: str) -> None:
    """``--max-bytes``: the largest input file read (``check``, ``predict``); ``what``: what a larger one gets."""
    parser.add_argument("--max-bytes", type=COUNT, default=MAX_BYTES, metavar="BYTES", help=f"a larger file {what}, "
                        f"unread (default: {MAX_BYTES}, {MAX_BYTES // 2**20} MiB)")


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


def names(text: str) -> list[str]:
    """An argparse type: comma-separated names (``--classes negative,neutral,positive``)."""
    return text.split(",")


def not_an_input(out: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """Refuse an output path that is one of the command's input files: writing it would destroy the input."""
    for given in inputs:
        if os.path.isfile(given) and os.path.exists(out) and os.path.samefile(given, out):
            raise UsageError(f"{out}: is an input of this command ({given}); write the output under another name")


def count(number: int, noun: str) -> str:
    """``1 image``, ``3 images``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def scoped(args: argparse.Namespace, scopes: dict[str, tuple[bool, dict[str, Any]]]) -> None:
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


def collect_images(inputs: Sequence[str], pictures: str | None = None,
                   columns: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The image files among ``inputs`` (``inputs.collect_images``, which fills ``columns``), saying which
    photos it cannot read; those in ``pictures``, the folder the command draws heat maps into, are left out:
    with the maps kept beside the photos (``photos/ --explain photos/maps``) the next run scored the maps."""
    missing = next((i for i in map(str, inputs) if not os.path.lexists(i) and not glob.has_magic(i)), None)
    if missing is not None:  # said before pandas loads; scoring.inputs says it too, for the API
        raise UsageError(f"{missing}: no such file or folder")
    from ..scoring.inputs import collect_images

    notes: list[str] = []
    paths = collect_images(inputs, notes=notes, columns=columns)
    if pictures:
        drawn = [Path(os.path.abspath(p)).is_relative_to(os.path.abspath(pictures)) for p in paths]
        if any(drawn):
            paths = [p for p, inside in zip(paths, drawn) if not inside]
            notes.append(f"{pictures}: {count(sum(drawn), 'image')} left out, in the folder heat maps are drawn into")
    for note in notes:
        print(note, file=sys.stderr)
    if not paths:
        raise UsageError(f"no images left: all are in {pictures}, the folder heat maps are drawn into; give it "
                         "another folder")
    return paths


class ShowDefaults(argparse.HelpFormatter):
    """Help that ends each option with its default, unless it has none or the text already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default in ([], argparse.SUPPRESS)
        if not action.option_strings or unset or "default" in text:  # 0 is a default to show, False is not
            return text
        return f"{text} (default: %(default)s)".lstrip()


def add_command(sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
                after_interrupt: str | None = None, inputs_first: bool = False) -> argparse.ArgumentParser:
    """The parser of command ``name``, which ``run`` carries out; its help is ``run``'s docstring.
    ``after_interrupt``: what Ctrl-C keeps and how to go on; ``inputs_first``: the command checks its inputs
    before TensorFlow starts (it calls ``args.start_tensorflow()`` when it needs the model)."""
    parser = sub.add_parser(name, help=run.__doc__, description=run.__doc__, formatter_class=ShowDefaults)
    parser.set_defaults(run=run, after_interrupt=after_interrupt, inputs_first=inputs_first)
    return parser
