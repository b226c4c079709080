"""The predictions table's files: the table ``predict`` writes (CSV, JSON Lines or Parquet) and, beside it,
the record of the model that began it. ``predict`` writes them and ``report`` reads them; no TensorFlow here."""
from __future__ import annotations

from pathlib import Path


def model_record(out: Path) -> Path:
    """``OUT.model.json``, beside a predictions table: the record of the model that began it."""
    return out.with_name(out.name + ".model.json")
