"""A file that is no image is refused from its first bytes, before TensorFlow or any model loads, in the words
the decoder uses for it."""
from __future__ import annotations

import json
import subprocess
import sys

from imagesentiment.data import decode_or_reason
from imagesentiment.data.magic import file_header_problem, header_problem

from test_bad_input import UNUSABLE, USABLE, write_corpus


def test_the_header_check_refuses_what_the_decoder_refuses_from_the_header_in_its_words(tmp_path):
    files = write_corpus(tmp_path)
    for name in USABLE:
        assert file_header_problem(files[name]) is None, name
    refused = {name: file_header_problem(files[name]) for name in UNUSABLE}
    assert {name for name, why in refused.items() if why} == {"zero_byte.jpg", "text.jpg"}  # the rest: past it
    for name, why in refused.items():
        if why:
            assert decode_or_reason(files[name].read_bytes(), (8, 8))[1] == why
    assert header_problem(b"\xff\x0a\x00") == decode_or_reason(b"\xff\x0a\x00" + bytes(40), (8, 8))[1]  # JPEG XL
    assert header_problem(b"RIFF\0\0\0\0WEBPVP8 ") is None and header_problem(b"RIFX\0\0\0\0WEBP") is not None
    assert file_header_problem(tmp_path / "missing.jpg") is None  # the full read names it


def test_predict_refuses_inputs_that_are_no_image_without_loading_tensorflow(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting at ten\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    out = tmp_path / "scores.csv"
    code = ("import json, sys; from imagesentiment.cli import main; "
            f"status = main(['predict', {str(notes)!r}, {str(empty)!r}, '--out', {str(out)!r}]); "
            "print(json.dumps([status, 'tensorflow' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1, False]
    assert (f"{notes}: not a readable image: unknown image format: its first bytes are none of JPEG, PNG, GIF, BMP "
            "or WebP") in done.stderr
    assert f"{empty}: not a readable image: empty (0 bytes)" in done.stderr
    assert "no input is an image" in done.stderr and not out.exists()


def test_where_one_input_is_an_image_the_model_loads_and_every_input_gets_its_row(tmp_path, trained_cnn):
    import pandas as pd

    from imagesentiment.cli import main

    files = write_corpus(tmp_path)
    model = tmp_path / "model.keras"
    trained_cnn[0].save(model)
    out = tmp_path / "scores.csv"
    assert main(["predict", str(files["text.jpg"]), str(files["plain.png"]), "--model", str(model),
                 "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["error"].isna().tolist() == [False, True]
    assert table.loc[0, "error"] == "not a readable image: " + header_problem(b"this is not")
