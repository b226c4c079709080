"""A file name holding a carriage return, a line feed, a quote or a comma keeps one row in a CSV table, through a
resumed run and the Beam pipeline's lines (reliability, third round). Python's csv writer quoted a field for ``\\r``
only when the line end held one, so a bare ``\\r`` in a path was read as a row's end: 5 rows for 4 files, and each
``--resume`` added a duplicate."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from imagesentiment.inference import KerasPredictor
from imagesentiment.scoring.batch import predict_files
from imagesentiment.table.formats import FORMATS, csv_line, read_predictions

from conftest import encode

NAMES = ["carriage\rreturn.png", "line\nfeed.png", 'a "quoted" name.png', "comma, name.png", "both\r\nends.png",
         "plain.png"]


@pytest.fixture(scope="module")
def predictor() -> KerasPredictor:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(inputs))
    return KerasPredictor(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)),
                          ["negative", "neutral", "positive"])


def test_odd_file_names_keep_one_row_each_through_resume(tmp_path, predictor):
    rng = np.random.default_rng(0)
    paths = [str(tmp_path / name) for name in NAMES]
    for path in paths:
        Path(path).write_bytes(encode(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)))
    Path(paths[0]).write_bytes(b"not yet a photo")  # an error row, superseded when resumed: the table rewritten
    out = tmp_path / "scores.csv"
    predict_files(predictor, paths[:3], out, progress=False)
    for _ in range(2):
        Path(paths[0]).write_bytes(encode(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)))
        table = predict_files(predictor, paths, out, resume=True, progress=False)
        for read in (read_predictions, FORMATS[".csv"].read_text, lambda p: pd.read_csv(p)):
            assert sorted(read(out)["path"]) == sorted(paths)  # one row each (the retried one's last), exact names
        assert sorted(table["path"]) == sorted(paths) and table["error"].fillna("").eq("").all()
    assert table.attrs["read_now"] == 0  # the second resume found each file done
    text = out.read_bytes()
    assert text.count(b"\r") == 2 and text.count(b'"') == 5 * 2 + 2 * 2  # in the names; five quoted, two quotes doubled
    assert text.splitlines()[-1].startswith(f"{tmp_path / 'plain.png'},".encode())  # the plain name as it was


def test_csv_line_quotes_what_a_csv_reader_needs(tmp_path):
    columns = ["path", "label", "confidence", "error"]
    rows = [{"path": name, "label": "positive", "confidence": 0.5, "error": None} for name in NAMES]
    lines = [csv_line(row, columns) for row in rows]
    for name, line in zip(NAMES, lines):
        assert next(csv.reader(io.StringIO(line, newline=""))) == [name, "positive", "0.500000", ""]
    assert lines[-1] == "plain.png,positive,0.500000,"
    shard = tmp_path / "scores-00000-of-00001.csv"  # as Beam's WriteToText writes them: a header, a line each
    shard.write_text(",".join(columns) + "\n" + "".join(line + "\n" for line in lines), newline="")
    assert FORMATS[".csv"].read(shard)["path"].tolist() == NAMES
