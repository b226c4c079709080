"""File names of any bytes: each file keeps one row whose ``path`` names it alone, in every table format, through
``--resume`` and ``--explain``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from imagesentiment.scoring.batch import predict_files
from imagesentiment.scoring.inputs import collect_images
from imagesentiment.table.columns import key_path, path_key
from imagesentiment.table.formats import table_format

from conftest import encode

CLASSES = ["negative", "neutral", "positive"]
FORMATS = (".csv", ".jsonl", ".parquet")


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
    return tiny_predictor


def _write(folder: Path, names: list[bytes]) -> list[bytes]:
    """Write a small PNG under each byte name into ``folder``; the files' full names, as bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [os.path.join(os.fsencode(folder), name) for name in names]
    for k, file in enumerate(files):
        with open(file, "wb") as handle:
            handle.write(encode(np.full((6, 6, 3), 40 * k % 256, np.uint8)))
    return files


def test_a_latin1_name_and_its_escaped_spelling_keep_two_rows_and_two_heat_maps(tmp_path, predictor):
    files = _write(tmp_path / "photos", [b"x_\xe9.png", b"x_\\xe9.png"])  # a byte 0xE9, and the four characters
    paths = collect_images([tmp_path / "photos"])
    out = tmp_path / "out.csv"
    table = predict_files(predictor, paths, out, batch_size=1, explain_dir=tmp_path / "maps", progress=False)
    assert len(table) == 2 and table["path"].is_unique
    assert sorted(os.fsencode(key_path(p)) for p in table["path"]) == sorted(files)
    assert table["heatmap"].is_unique and all(os.path.isfile(key_path(h)) for h in table["heatmap"])
    again = predict_files(predictor, paths, out, resume=True, progress=False)
    assert again.attrs["read_now"] == 0 and len(again) == 2


@pytest.mark.parametrize("name", [b"plain.jpg", b"caf\xc3\xa9.jpg", b"x_\xe9.jpg", b"a\\b.jpg", b"\\xe9",
                                  b"\\\\\xff\\x", b"line\r\nfeed,\".jpg"])
def test_the_path_key_is_text_and_names_its_file_alone(name):
    key = path_key(os.fsdecode(name))
    key.encode("utf-8")  # no surrogate: any table format takes it
    assert os.fsencode(key_path(key)) == name


NAME_BYTES = st.lists(st.one_of(st.sampled_from([b"\\", b"x", b"e9", b"\xe9", b"\xc3\xa9", b"\r", b"\n", b",", b'"']),
                                st.binary(min_size=1, max_size=3)), min_size=1, max_size=5).map(b"".join)
NAMES = st.lists(NAME_BYTES.map(lambda name: name.replace(b"/", b"_").replace(b"\0", b"_") + b".png"),
                 min_size=1, max_size=4, unique=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=NAMES)
def test_any_byte_names_keep_one_row_each_through_resume_in_every_format(predictor, names):
    with tempfile.TemporaryDirectory() as folder:
        files = _write(Path(folder, "photos"), names)
        paths = collect_images([Path(folder, "photos")])
        for suffix in FORMATS:
            out = Path(folder, f"out{suffix}")
            predict_files(predictor, paths[:-1], out, batch_size=2, progress=False)  # a stopped run
            resumed = predict_files(predictor, paths, out, batch_size=2, progress=False, resume=True)
            assert resumed.attrs["read_now"] == 1
            table = table_format(out).read(out)
            assert sorted(os.fsencode(key_path(p)) for p in table["path"]) == sorted(files), suffix
            assert table["label"].notna().all()
