"""The predictions table's file formats: how each is read, and how rows are written to it.

A format rows can be appended to (CSV, JSON Lines) takes them a batch at a time as a run goes on; one written
whole (Parquet) has its rows gathered in a JSON Lines journal beside it until the run ends
(:mod:`.journal`). ``predict``, ``evaluate``, ``report`` and the Beam pipeline read and write through
:data:`FORMATS`; adding a format is one entry there.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pandas loads when a table is read or written, not when the command line lists the formats
    import pandas as pd

Source = Any  # a path or an open binary file


@dataclass(frozen=True)
class Format:
    """One file format: ``read`` a table (text cells as text: a post id ``00123`` stays ``00123``); for a format
    rows are appended to, ``read_text`` (every cell as written, to write back unchanged) and ``lines`` (rows as
    the text to append, with the header for the first rows); for one written whole, ``write``."""

    suffix: str
    read: Callable[[Source], pd.DataFrame]
    read_text: Callable[[Source], pd.DataFrame] | None = None
    lines: Callable[[pd.DataFrame, bool], str] | None = None
    write: Callable[[pd.DataFrame, Path], None] | None = None


def _unix_ends(text: str) -> str:
    """CSV ``text`` written with ``\\r\\n`` line ends, with ``\\n`` ends instead: only the ends of rows change, not the
    ``\\r\\n`` inside a quoted field (outside quotes is every other piece between quote characters, an escaped ``""``
    making an empty piece)."""
    pieces = text.split('"')
    pieces[::2] = [piece.replace("\r\n", "\n") for piece in pieces[::2]]
    return '"'.join(pieces)


def _csv_lines(rows: pd.DataFrame, header: bool) -> str:
    """Rows as CSV lines ending in ``\\n``, a field holding a comma, a quote, ``\\n`` or ``\\r`` quoted. Python's csv
    writer quotes a field for ``\\r`` only when the line end holds one; a lone ``\\r`` left bare in a file name is
    read as a row's end, one file's row torn in two. So the rows are written with ``\\r\\n`` ends, then given
    ``\\n`` ones."""
    return _unix_ends(rows.to_csv(index=False, header=header, float_format="%.6f", lineterminator="\r\n"))


def _jsonl_lines(rows: pd.DataFrame, header: bool) -> str:
    return "".join(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
                   + "\n" for row in rows.to_dict("records"))


def _jsonl_text(source: Source) -> pd.DataFrame:
    import pandas as pd

    with open(source, encoding="utf-8") as handle:
        return pd.DataFrame([json.loads(line) for line in handle])


def _read_csv(source: Source, text: bool = False) -> pd.DataFrame:
    """A CSV table; ``text``: every cell as written (nothing parsed as a number or as missing)."""
    import pandas as pd

    if text:
        return pd.read_csv(source, dtype=str, keep_default_na=False, na_filter=False)
    return pd.read_csv(source, keep_default_na=False, na_values=[""])


def _read_jsonl(source: Source) -> pd.DataFrame:
    import pandas as pd

    return pd.read_json(source, lines=True, dtype=False)


def _read_parquet(source: Source) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(source)


FORMATS: dict[str, Format] = {
    ".csv": Format(".csv", _read_csv, lambda source: _read_csv(source, text=True), _csv_lines),
    ".jsonl": Format(".jsonl", _read_jsonl, _jsonl_text, _jsonl_lines),
    ".parquet": Format(".parquet", _read_parquet, write=lambda table, path: table.to_parquet(path, index=False)),
}
NAMES = ", ".join(FORMATS)  # for help texts and errors: ".csv, .jsonl, .parquet"
SHARDED = ("parquet", "csv")  # the formats the Beam pipeline writes, a file per shard (no journal there)


def table_format(path: str | os.PathLike) -> Format:
    """The format of a table at ``path``, by its suffix; an unknown one is refused, naming the known ones."""
    suffix = Path(path).suffix
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown predictions format; use {NAMES}")
    return FORMATS[suffix]


def predictions_file(path: str | os.PathLike) -> Path:
    """``path`` if it names a predictions table that is there, in a known format; else the error saying which."""
    path = Path(path)
    table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    return path


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """A predictions table (:data:`FORMATS`, by the file's suffix), with at least ``path``, ``label`` and
    ``confidence``."""
    path = predictions_file(path)
    read = table_format(path).read
    import pandas as pd

    try:
        frame = read(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # pyarrow's errors are ValueErrors
        raise ValueError(f"{path}: not a readable {path.suffix} table ({exc})") from None
    missing = {"path", "label", "confidence"} - set(frame.columns)
    if missing == {"path"} and {"frame", "time_s"} <= set(frame.columns):
        raise ValueError(f"{path}: is a video's per-frame table (imagesentiment video), which has no photos to "
                         "show; its report is the timeline.png and summary.json beside it")
    if missing:
        raise ValueError(f"{path}: a predictions table needs the columns {sorted(missing)}")
    confidence = pd.to_numeric(frame["confidence"], errors="coerce")
    text = frame["confidence"][confidence.isna() & frame["confidence"].notna()].unique()
    if len(text):
        raise ValueError(f"{path}: the column confidence holds text, not numbers ({', '.join(map(repr, text[:3]))}"
                         f"{' ...' if len(text) > 3 else ''}): give the table predict wrote, or correct those cells")
    return frame.assign(confidence=confidence)


def csv_line(row: dict[str, Any], columns: Sequence[str]) -> str:
    """One row as a CSV line without its end, floats as the CSV format writes them (6 decimals), a field holding
    a comma, a quote, ``\\n`` or ``\\r`` quoted (see :func:`_csv_lines`): for writers that stream rows one at a
    time (the Beam pipeline)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if row[c] is None else f"{row[c]:.6f}" if isinstance(row[c], float) else row[c] for c in columns])
    return buffer.getvalue().removesuffix("\r\n")
