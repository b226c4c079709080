"""Data sources: each turns one on-disk format into an :class:`~.imageset.ImageSet`."""
from __future__ import annotations

import csv
import inspect
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .frames import from_video_folder
from ..contract import RATING_SCALE, RATINGS
from .constants import IMAGE_EXTENSIONS, SENTIMENTS, VIDEO_EXTENSIONS
from .imageset import is_number, unread_files, unread_images, miscased, DataError, ImageSet

FER_TO_SENTIMENT: dict[str, str | None] = {
    "angry": "negative", "disgust": "negative", "fear": "negative", "sad": "negative",
    "happy": "positive", "neutral": "neutral", "surprise": None,
}
TWITTER_AGREEMENTS = ("five", "four", "three")


def from_folder(root: str | os.PathLike, classes: Sequence[str] | None = None,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> ImageSet:
    """Images in ``root/<class>/`` (searched recursively), one folder per class.

    ``classes`` defaults to the sentiment classes when every folder is one of
    them, otherwise to the sorted folder names.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class folders found (expected {root}/<class>/<image>)")
    notes = []
    if classes is None:
        classes = SENTIMENTS if set(folders) <= set(SENTIMENTS) else tuple(folders)
        if classes != SENTIMENTS:  # train's classes are the sentiments unless data.classes says otherwise
            cased = miscased(folders, SENTIMENTS)
            notes.append(f"{root}: classes {list(classes)} from the folder names, not {list(SENTIMENTS)}"
                         + (f" ({', '.join(cased)}: name the folder in lower case)" if cased else
                            "; give them as data.classes to train on them"))
    extra = sorted(set(folders) - set(classes))
    if extra:
        raise DataError(f"{root}: folders {extra} are not in the class list {list(classes)}")
    rows, files, left_out = [], [], []
    for name in folders:
        inside = [p for p in (root / name).rglob("*") if p.is_file()]
        found = sorted(p for p in inside if p.suffix.lower() in extensions)
        videos = sum(p.suffix.lower() in VIDEO_EXTENSIONS for p in inside)
        if not found:
            notes.append(f"{root / name}: empty class folder" + (
                f" ({videos} videos: for their frames, give the format videos)" if videos else ""))
        rows += [(str(p.resolve()), name) for p in found]
        files += inside
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if loose:
        notes.append(f"{root}: {len(loose)} images in no class folder left out (e.g. {loose[0].name}); "
                     "move them into the folder of their class")
    unread_paths = unread_files(files)
    left_out += [(str(p), "in no class folder") for p in loose]
    left_out += [(str(p), f"a {p.suffix.lower()} file: a format not read") for p in unread_paths]
    unread = unread_images(root, unread_paths)
    return ImageSet(pd.DataFrame(rows, columns=["path", "label"]), tuple(classes), ([unread] if unread else []) + notes,
                    left_out)


def resolve_paths(paths: "pd.Series", root: Path, source: str, missing: str = "error",
                  allow_outside_root: bool = False) -> tuple["pd.Series", list[tuple[str, str]]]:
    """Absolute paths for ``paths`` (indexed by line number in ``source``) taken relative to ``root``,
    and the rows left out: (path, why).

    A path that leaves ``root`` (``../``, an absolute path elsewhere) is refused
    unless ``allow_outside_root``; a missing file is an error naming it, or, with
    ``missing="skip"``, left out (None in the paths).
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', not {missing!r}")
    root = Path(os.path.abspath(root))
    resolved, left_out = [], []
    for line, raw in paths.fillna("").astype(str).items():
        path = Path(os.path.abspath(root / raw))
        if not allow_outside_root and not path.is_relative_to(root):
            raise DataError(f"{source}: path {raw!r} is outside the data root {root} "
                            "(pass allow_outside_root=True, -o allow_outside_root=true, to permit it)")
        if not raw.strip() or not path.is_file():
            what = (f"line {line} has an empty path" if not raw.strip() else f"file {raw!r} "
                    f"{'is a folder' if path.is_dir() else 'does not exist'} (looked for {path})")
            if missing == "error":
                raise DataError(f"{source}: {what}; pass missing='skip' (-o missing=skip) to leave such rows out")
            left_out.append((str(path), f"{source}: {what}"))
            resolved.append(None)
            continue
        resolved.append(str(path))
    return pd.Series(resolved, index=paths.index, dtype="object"), left_out


def read_csv_lines(path: Path, text_columns: Sequence[str] | None = ()) -> pd.DataFrame:
    """The CSV's table, indexed by line number in the file (line 1 is the header), so errors name lines;
    ``text_columns`` are read as text, as written (None: every column)."""
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    try:
        with warnings.catch_warnings():  # a row longer than the header: pandas would shift it or drop fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str if text_columns is None else {c: str for c in text_columns},
                                index_col=False)
    except pd.errors.ParserWarning:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = csv.reader(handle)
            width = len(next(rows))
            long = [rows.line_num for row in rows if len(row) > width]
        raise DataError(f"{path}: lines {long[:5]} have more fields than the header ({width}); put values "
                        "that hold commas in double quotes") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).strip()})") from exc
    return frame.set_axis(frame.index + 2)


def _numbers(frame: pd.DataFrame, columns: Sequence[str], source: Path, what: str) -> pd.DataFrame:
    """``frame[columns]`` as floats; an empty or non-numeric cell is an error naming its lines."""
    values = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
    bad = frame.index[values.isna().any(axis=1)]
    if len(bad):
        raise DataError(f"{source}: {what} must be numbers (lines {bad[:5].tolist()})")
    return values


def _ratings(frame: pd.DataFrame, column: str, source: Path) -> "pd.Series":
    """``frame[column]`` as ratings on :data:`~imagesentiment.contract.RATING_SCALE`; a missing, non-numeric or
    out-of-range cell is an error naming the file, its line and the column."""
    values = pd.to_numeric(frame[column], errors="coerce")
    low, high = RATING_SCALE
    bad = frame.index[~values.between(low, high)]  # NaN (empty, not a number) is not between either
    if len(bad):
        cell = frame.at[bad[0], column]
        shown = "an empty cell" if pd.isna(cell) else repr(str(cell))
        raise DataError(f"{source}, line {bad[0]}, column {column}: {shown} is not a rating "
                        f"from {low:g} to {high:g}" + (f" ({len(bad) - 1} more such lines)" if len(bad) > 1 else ""))
    return values.astype(float)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: Path) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(f"{source}: columns {absent} not found; the file has {list(frame.columns)}")


def _finish(frame: pd.DataFrame, paths: "pd.Series", classes: Sequence[str], notes: list[str], source: Path,
            left_out: list[tuple[str, str]] = ()) -> ImageSet:
    """The table's rows with a file, as an ImageSet: an image under two labels left out, repeats dropped;
    what is left out (``left_out``: rows without a file, ...) is counted in the notes and kept to be
    listed with the skipped files."""
    left_out = list(left_out)
    frame = frame.assign(path=paths)[paths.notna()]
    labels_of = frame.groupby("path")["label"].nunique()
    conflicting = frame["path"].isin(labels_of.index[labels_of > 1])
    if conflicting.any():  # which row is right cannot be told: none is kept
        lines = {path: ", ".join(f"line {line}: {label}" for line, label in rows["label"].items())
                 for path, rows in frame[conflicting].groupby("path", sort=False)}
        left_out += [(path, f"{source}: listed with conflicting labels ({which})") for path, which in lines.items()]
        named = [f"{path} ({which})" for path, which in lines.items()]
        notes.append(f"{source}: {len(named)} image{'s' if len(named) > 1 else ''} listed with conflicting labels, "
                     "left out: " + "; ".join(named[:3]) + ("; ..." if len(named) > 3 else ""))
        frame = frame[~conflicting]
    duplicated = frame.duplicated("path")
    if duplicated.any():
        notes.append(f"{source}: {int(duplicated.sum())} duplicated rows left out")
        frame = frame[~duplicated]
    if left_out:
        notes.append(f"{source}: {len({path for path, _ in left_out})} images left out in all, each listed with "
                     "the skipped files "
                     f"(the first: {left_out[0][0]}: {left_out[0][1]})")
    columns = ["path", "label"] + [c for c in frame.columns if c not in ("path", "label")]
    return ImageSet(frame[columns], tuple(classes), notes, left_out)


def from_manifest(csv: str | os.PathLike, path_column: str = "path", label_column: str = "label",
                  root: str | os.PathLike | None = None, classes: Sequence[str] = SENTIMENTS,
                  missing: str = "error", allow_outside_root: bool = False) -> ImageSet:
    """A CSV with a path and a label column; paths are relative to ``root`` (default: the CSV's folder)."""
    csv = Path(csv)
    frame = read_csv_lines(csv, [path_column, label_column])
    _require_columns(frame, [path_column, label_column], csv)
    clashes = {name: f"csv_{name}" for name in ("path", "label")
               if name in frame.columns and name not in (path_column, label_column)}
    notes = [f"{csv}: its own column{'s' if len(clashes) > 1 else ''} {', '.join(clashes)} kept as "
             f"{', '.join(clashes.values())}"] if clashes else []
    frame = frame.rename(columns=clashes).rename(columns={path_column: "path", label_column: "label"})
    frame["label"] = frame["label"].fillna("").astype(str).str.strip()
    unknown = sorted(set(frame["label"]) - set(classes))
    if unknown:
        lines = frame.index[~frame["label"].isin(classes)][:5].tolist()
        raise DataError(f"{csv}: labels {unknown} (lines {lines}) are not in the class list {list(classes)}")
    paths, left_out = resolve_paths(frame["path"], Path(root) if root else csv.parent, str(csv),
                                    missing, allow_outside_root)
    return _finish(frame, paths, classes, notes, csv, left_out)


def majority_labels(votes: pd.DataFrame, min_agreement: float = 0.5) -> "pd.Series":
    """The class with the most votes per row, or ``None`` where no label is clear.

    ``votes`` has one column per class. A row keeps its winner when that class
    has strictly more votes than any other and at least ``min_agreement`` of all
    votes. Tie rule: a tie for first place gives no label, nor does a row with
    no votes; such rows are left out.
    """
    counts = votes.to_numpy(dtype=float)
    total = counts.sum(axis=1)
    best = counts.max(axis=1, initial=0.0)
    single_winner = (counts == best[:, None]).sum(axis=1) == 1
    share = np.divide(best, total, out=np.zeros_like(best), where=total > 0)
    keep = single_winner & (total > 0) & (share >= min_agreement)
    winners = votes.columns.to_numpy()[counts.argmax(axis=1)]
    return pd.Series(np.where(keep, winners, None), index=votes.index, dtype="object")


FLICKR_VOTE_COLUMNS = {"positive": "Num_of_Positive", "neutral": "Num_of_Neutral",
                       "negative": "Num_of_Negative"}


def from_votes(csv: str | os.PathLike, image_root: str | os.PathLike | None = None,
               id_column: str = "ImageID", vote_columns: Mapping[str, str] = FLICKR_VOTE_COLUMNS,
               extension: str = ".jpg", min_agreement: float = 0.5,
               classes: Sequence[str] = SENTIMENTS, missing: str = "error",
               allow_outside_root: bool = False) -> ImageSet:
    """A CSV of per-class vote counts (the Flickr format) turned into majority labels.

    Image files are ``image_root/<id><extension>`` (``image_root`` defaults to the
    CSV's folder). See :func:`majority_labels` for the agreement and tie rules;
    rows without a clear label are left out and counted in ``notes``.
    """
    csv = Path(csv)
    if not is_number(min_agreement) or not 0 <= min_agreement <= 1:
        raise ValueError(f"min_agreement must be a number within [0, 1], not {min_agreement!r}")
    frame = read_csv_lines(csv, [id_column])
    _require_columns(frame, [id_column, *vote_columns.values()], csv)
    unknown = sorted(set(vote_columns) - set(classes))
    if unknown:
        raise DataError(f"{csv}: vote classes {unknown} are not in the class list {list(classes)}")
    votes = _numbers(frame, list(vote_columns.values()), csv, "vote counts").set_axis(list(vote_columns), axis=1)
    if (votes < 0).any().any():
        bad = frame.index[(votes < 0).any(axis=1)][:5].tolist()
        raise DataError(f"{csv}: vote counts must not be negative (lines {bad})")
    frame = frame.assign(label=majority_labels(votes, min_agreement))
    names = frame[id_column].astype(str)
    names = names.where(names.str.lower().str.endswith(extension.lower()), names + extension)
    root = Path(image_root) if image_root else csv.parent
    unclear = frame["label"].isna()
    why = f"no clear majority (a tie, or agreement below {min_agreement:.2f})"
    notes = [f"{csv}: {int(unclear.sum())} rows without a clear majority (ties or agreement "
             f"below {min_agreement:.2f}) left out"]
    # a clear row of an image that another row leaves unclear: which one is right cannot be told
    mixed = names.isin(names[unclear]) & ~unclear
    if mixed.any():
        notes.append(f"{csv}: {int(mixed.sum())} rows with a clear majority left out: another row of the same "
                     "image has none")
    used = ~unclear & ~mixed
    paths, left_out = resolve_paths(names[used], root, str(csv), missing, allow_outside_root)
    unused = names[~used]
    entries = []  # one an image, naming each of its rows
    for name, rows in unused.groupby(unused, sort=False):
        said = [f"line {line}: {frame.at[line, 'label'] if mixed[line] else why}" for line in rows.index]
        entries.append((os.path.abspath(root / name), f"{csv}: " + (
            f"rows of one image that disagree ({'; '.join(said)})" if mixed[rows.index].any() else "; ".join(said))))
    left_out = entries + left_out
    return _finish(frame[used], paths, classes, notes, csv, left_out)


def twitter(root: str | os.PathLike, agreement: str = "five") -> ImageSet:
    """The Twitter image sentiment set (You et al. 2015); ``agreement`` is five, four or three."""
    if agreement not in TWITTER_AGREEMENTS:
        raise ValueError(f"agreement must be one of {TWITTER_AGREEMENTS}, not {agreement!r}")
    root = Path(root)
    truth = root / "ground_truth" / f"twitter_{agreement}_agrees.txt"
    if not truth.is_file():
        raise DataError(f"{truth}: not found; expected the Twitter set's ground_truth folder in {root}")
    frame = pd.read_csv(truth, sep=r"\s+", header=None, names=["file", "polarity"], dtype=str)
    frame = frame.set_axis(frame.index + 1)  # line numbers, for the messages
    if not frame["polarity"].isin(["0", "1"]).all():
        bad = frame.index[~frame["polarity"].isin(["0", "1"])][:5].tolist()
        raise DataError(f"{truth}: polarity must be 0 or 1 (lines {bad})")
    frame["label"] = frame["polarity"].map({"1": "positive", "0": "negative"})
    paths, _ = resolve_paths(frame["file"], root / "images", str(truth))  # a missing photo is an error
    return _finish(frame.drop(columns="polarity"), paths, SENTIMENTS, [], truth)


def oasis(root: str | os.PathLike, cuts: tuple[float, float] = (3.5, 4.5)) -> ImageSet:
    """OASIS photos labelled by mean valence: negative < cuts[0] <= neutral <= cuts[1] < positive, with their
    ratings (``valence`` and ``arousal``: ``Valence_mean`` and ``Arousal_mean``, 1 to 7).

    Rows whose photo is not present are left out and counted (part of OASIS is held back).
    """
    try:
        low, high = (float(cut) for cut in cuts)
    except (TypeError, ValueError):
        raise ValueError(f"cuts must be two valence values (negative < cuts[0] <= neutral <= cuts[1] < "
                         f"positive), not {cuts!r}") from None
    if not low <= high:
        raise ValueError(f"cuts must be increasing, not {cuts}")
    root = Path(root)
    csv = root / "OASIS.csv"
    frame = read_csv_lines(csv, ["Theme"])
    _require_columns(frame, ["Theme", "Valence_mean", "Arousal_mean"], csv)
    for rating, column in zip(RATINGS, ("Valence_mean", "Arousal_mean")):
        frame[rating] = _ratings(frame, column, csv)
    valence = frame["valence"]
    frame["label"] = np.where(valence < low, "negative", np.where(valence > high, "positive", "neutral"))
    paths, absent = resolve_paths(frame["Theme"].astype(str).str.strip() + ".jpg", root / "images",
                                  str(csv), missing="skip")
    notes = [f"{csv}: {len(absent)} rated photos not present here, left out"] if absent else []
    return _finish(frame, paths, SENTIMENTS, notes, csv)  # the absent photos are held back by design: not listed


def fer2013(root: str | os.PathLike, split: str = "train",
            mapping: Mapping[str, str | None] = FER_TO_SENTIMENT) -> ImageSet:
    """FER-2013 faces from ``root/<split>/<emotion>/``, emotions mapped to sentiments.

    Emotions mapped to ``None`` (surprise, by default) are left out.
    """
    folder = Path(root) / split
    raw = from_folder(folder, classes=tuple(mapping))
    frame = raw.frame.rename(columns={"label": "emotion"})
    frame["label"] = frame["emotion"].map(mapping)
    dropped = sorted(e for e, s in mapping.items() if s is None)
    notes = raw.notes + ([f"{folder}: emotions {dropped} left out"] if dropped else [])
    frame = frame[frame["label"].notna()][["path", "label", "emotion"]]
    return ImageSet(frame, SENTIMENTS, notes, raw.left_out)


def videos(root: str | os.PathLike, frames_dir: str | os.PathLike | None = None, every_seconds: float = 1.0,
           classes: Sequence[str] | None = None) -> ImageSet:
    """A folder per class of video files, one frame sampled per ``every_seconds`` of each clip
    and written under ``frames_dir`` (default ``root/.frames``); see :mod:`imagesentiment.data.frames`."""
    return from_video_folder(root, frames_dir or Path(root) / ".frames", every_seconds, classes)


SOURCES = {"folder": from_folder, "manifest": from_manifest, "votes": from_votes,
           "twitter": twitter, "oasis": oasis, "fer2013": fer2013, "videos": videos}


def detect_format(path: str | os.PathLike) -> str:
    """Guess a source format from what is at ``path``."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        header = path.open(encoding="utf-8", errors="replace").readline()
        return "votes" if "Num_of_" in header else "manifest"
    if (path / "ground_truth").is_dir() and (path / "images").is_dir():
        return "twitter"
    if (path / "OASIS.csv").is_file():
        return "oasis"
    if (path / "train").is_dir() and set(FER_TO_SENTIMENT) >= {p.name for p in (path / "train").iterdir() if p.is_dir()}:
        return "fer2013"
    if path.is_dir():
        kinds = {p.suffix.lower() for folder in path.iterdir() if folder.is_dir() and not folder.name.startswith(".")
                 for p in folder.rglob("*") if p.is_file()}  # not the hidden .frames folder the videos format writes
        return "videos" if kinds & set(VIDEO_EXTENSIONS) and not kinds & set(IMAGE_EXTENSIONS) else "folder"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    raise DataError(f"{path}: neither a folder nor a CSV file")


def load_source(path: str | os.PathLike, format: str | None = None, **options: object) -> ImageSet:
    """Load a data set with the source function for ``format`` (guessed when ``None``).

    ``options`` are that function's keyword arguments; an unknown one is refused by name.
    """
    format = format or detect_format(path)
    if format not in SOURCES:
        raise DataError(f"unknown data format {format!r}; choose one of {sorted(SOURCES)}")
    function = SOURCES[format]
    parameters = list(inspect.signature(function).parameters)
    unknown = sorted(set(options) - set(parameters[1:]))
    if unknown:
        raise DataError(f"unknown options {unknown} for the {format!r} format; valid: {parameters[1:]}")
    return function(path, **options)
