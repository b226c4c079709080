"""What ``predict`` reads: the image files among the files, folders, glob patterns and CSV lists a user names,
each once, with notes on what is left out and the other columns of a CSV of inputs. No TensorFlow here, so
a command can check its inputs before the model starts."""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Sequence

from ..data.constants import IMAGE_EXTENSIONS
from ..data.imageset import DataError, unread_images
from ..table.columns import model_record, path_key


def collect_images(inputs: Sequence[str | os.PathLike], extensions: Sequence[str] = IMAGE_EXTENSIONS,
                   notes: list[str] | None = None, columns: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Image paths from files, folders (recursively, through links), glob patterns (what they match is
    taken as if named: a folder's images, a CSV's list) and CSV files with a ``path`` column (relative to
    the CSV), in order, each once. ``notes``, when given, gets a line for what is left out: photos in
    formats not read (HEIC, TIFF, ...), CSV rows without a path or naming an image already listed, patterns
    that match nothing, CSVs a pattern matched that list no images. ``columns``, when given, gets a CSV
    row's other columns by the image's absolute path (for an image listed twice: its first row's)."""
    notes = [] if notes is None else notes
    found: list[str] = []
    listed: set[str] = set()  # the images CSV rows have named so far, in any of the CSVs

    def add(item: str, matched: bool = False) -> None:
        if os.path.isdir(item):
            files = _folder_files(item, extensions, notes)
            found.extend(sorted(str(p) for p in files if p.suffix.lower() in extensions))
            if unread := unread_images(item, files):
                notes.append(unread)
        elif item.lower().endswith(".csv") and os.path.isfile(item):
            found.extend(_listed_images(Path(item), notes, columns, listed, matched))
        elif os.path.lexists(item):  # a file; a link to nothing, a FIFO or a device gets its error row
            found.append(item)
        elif glob.has_magic(item):
            matches = _matches(item)
            if not matches:
                notes.append(f"{item}: matches nothing")
            folders = {m for m in matches if m.is_dir()}
            for match in matches:  # what lies in a matched folder is read with it ('photos/**'), once
                if folders.isdisjoint(match.parents):
                    add(str(match), matched=True)
        else:
            raise DataError(f"{item}: no such file or folder")

    for item in map(str, inputs):
        add(item)
    unique = list(dict.fromkeys(os.path.abspath(p) for p in found))
    if not unique:
        said = f" ({'; '.join(notes)})" if notes else ""  # a folder that cannot be read, say
        raise DataError(f"no images found in {', '.join(map(path_key, inputs))}{said}")
    return unique


def _matches(pattern: str) -> list[Path]:
    """What ``pattern`` matches, in order; ``**`` does not go through links to folders (``glob.glob`` does,
    and a link back up made it run on for good): a matched folder's walk follows them, each folder once."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return sorted(Path(*parts[:fixed]).glob(str(Path(*parts[fixed:]))))


def _folder_files(folder: str, extensions: Sequence[str], notes: list[str]) -> list[Path]:
    """Every file below ``folder``, also through links to other folders (each once, so a loop of links ends;
    not up to a folder that holds ``folder``), and the links whose target is gone (they get an error row,
    as a missing file does). ``notes`` gets a line for each folder that cannot be read and each folder
    named like an image (``x.jpg``), ``folder`` too."""
    files: list[Path] = []
    seen: set[str] = set()
    top = Path(os.path.realpath(folder))

    def unreadable(error: OSError) -> None:
        notes.append(f"{path_key(error.filename)}: a folder that cannot be read ({error.strerror}); "
                     "the images in it are left out")

    for root, folders, names in os.walk(folder, onerror=unreadable, followlinks=True):
        real = Path(os.path.realpath(root))
        if real in seen or real in top.parents:  # a loop, or a link up to a folder holding this one (even /)
            folders.clear()
            continue
        seen.add(real)
        if Path(root).suffix.lower() in extensions:
            notes.append(f"{path_key(root)}: a folder named like an image, not an image; the images in it are used")
        files += [Path(root, name) for name in names]
    return files


def _listed_images(csv: Path, notes: list[str], columns: dict[str, dict[str, Any]] | None,
                   listed: set[str], matched: bool = False) -> list[str]:
    """The images a CSV of inputs lists in its ``path`` column, its rows' other columns put in ``columns``
    by absolute path; a note for the rows left out: those without a path, and those naming an image that a
    row of this or an earlier CSV named (``listed``) since each image is scored once. A CSV a pattern
    ``matched`` (not named) may be something else: a table ``predict`` wrote (an earlier output, maybe
    this run's own), a CSV without a ``path`` column; it is then left out, with a note."""
    if matched and model_record(csv).is_file():
        notes.append(f"{csv}: matched, and left out: a predictions table (its .model.json is beside it)")
        return []
    from ..data.sources import read_csv_lines  # pandas: only for a CSV of inputs

    table = read_csv_lines(csv, None)  # as written: a post id 00123 stays 00123
    if "path" not in table and matched:
        notes.append(f"{csv}: matched, and left out: it has no 'path' column to list images in")
        return []
    if "path" not in table:
        separator = next((s for s in ";\t|" if len(table.columns) == 1 and s in table.columns[0]), None)
        raise DataError(f"{csv}: a CSV of inputs needs a 'path' column; it has {list(table.columns)}"
                        + (f" (its fields look separated by {separator!r}: save it with commas)" if separator else ""))
    blank = table.index[table["path"].isna()]
    if len(blank):
        notes.append(f"{csv}: {_rows(list(blank))} without a path left out")
    table = table.drop(index=blank)
    paths = [os.path.join(csv.parent, p) for p in table["path"]]
    repeated = []
    for line, path, row in zip(table.index, paths, table.drop(columns="path").to_dict("records")):
        key = os.path.abspath(path)
        if key in listed:
            repeated.append(line)
        elif columns is not None:
            columns[key] = row
        listed.add(key)
    if repeated:
        notes.append(f"{csv}: {_rows(repeated)} name{'s' if len(repeated) == 1 else ''} an image already listed; "
                     "each image is scored once" + (", with its first row's columns: join the table to the CSV on "
                                                    "path to score every row" if columns is not None else ""))
    return paths


def _rows(lines: Sequence[int]) -> str:
    """``"3 rows (lines 4, 9, 12)"``: CSV rows by their line numbers, the first ten of them."""
    plural = "s" if len(lines) > 1 else ""
    return (f"{len(lines)} row{plural} (line{plural} {', '.join(map(str, lines[:10]))}"
            f"{' ...' if len(lines) > 10 else ''})")
