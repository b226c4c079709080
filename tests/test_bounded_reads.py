"""Every input read is bounded (reliability, third round): a FIFO, a device or a link to one, a socket and a file
over the size limit (``--max-bytes``, ``max_bytes=``, 256 MiB by default) each get an error row or an error naming
them, at once and unread, and the photos beside them are scored.

Read the old way, a FIFO waits for a writer for good and ``/dev/zero`` or a sparse 8 GiB file fill the memory. So
the cases that could run in a fresh Python with a time limit and a cap on its memory: a regression fails the test
(a timeout, a ``MemoryError``) rather than stalling the suite or the machine. The cases run in this process are
given an alarm."""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from imagesentiment.data.constants import MAX_BYTES
from imagesentiment.data.imageset import InputFileError, file_problem, read_input

from conftest import encode

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["negative", "neutral", "positive"]
LIMIT_S = 150  # a fresh Python starts TensorFlow and a model in some 10 s
MEMORY_CAP = 6 * 2**30  # address space: TensorFlow starts in it; reading /dev/zero whole does not fit
SPARSE_BYTES = 8 * 2**30
FIFO = "not a regular file (a FIFO)"
DEVICE = "not a regular file (a character device)"
TOO_LARGE = (f"file too large: {SPARSE_BYTES:,} bytes (8,192.0 MiB), over the limit of {MAX_BYTES:,} bytes "
             "(256.0 MiB); raise the limit to read it (--max-bytes, or max_bytes= in Python)")


@pytest.fixture
def alarm() -> Iterator[None]:
    """A test that blocks (a FIFO opened for reading in this thread) fails after 60 s instead of hanging."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("a read blocked: an input was not refused before it was opened")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Keras model (8 x 8 pixels in, three classes) in a ``.keras`` file."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(inputs))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(path)
    return path


def photos(folder: Path, count: int = 3) -> list[Path]:
    """``count`` small PNG photos (about 800 bytes each) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"photo{i}.png" for i in range(count)]
    for path in paths:
        path.write_bytes(encode(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)))
    return paths


def unreadable(folder: Path) -> dict[str, Path]:
    """In ``folder``, named like photos: a FIFO, a link to ``/dev/zero`` and a sparse file of 8 GiB (no disk used)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    with open(folder / "sparse.jpg", "wb") as handle:
        handle.truncate(SPARSE_BYTES)
    return {FIFO: folder / "pipe.jpg", DEVICE: folder / "zero.jpg", TOO_LARGE: folder / "sparse.jpg"}


def isolated(code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` run by a fresh Python with ``args`` (``sys.argv[1:]``), in at most ``LIMIT_S`` seconds and
    ``MEMORY_CAP`` bytes: a read that waits for good times out, one that never ends runs out of memory."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=LIMIT_S,
                          preexec_fn=cap, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_predict_scores_the_photos_beside_a_fifo_a_device_and_a_huge_file(tmp_path, model_file):
    """A FIFO named x.jpg in a folder hung the run for good, nothing written; a link to /dev/zero, a CSV row naming
    it and a sparse 8 GB .jpg grew the memory without bound. A FIFO named on the command line was 'no such file'."""
    good = photos(tmp_path / "photos")
    bad = unreadable(tmp_path / "photos")
    os.mkfifo(tmp_path / "given.jpg")
    (tmp_path / "list.csv").write_text("path\n/dev/zero\n")
    out = tmp_path / "scores.csv"
    done = isolated("import sys; from imagesentiment.cli.entry import main; sys.exit(main(sys.argv[1:]))",
                    "predict", str(tmp_path / "photos"), str(tmp_path / "given.jpg"), str(tmp_path / "list.csv"),
                    "--model", str(model_file), "--classes", ",".join(CLASSES), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "3 images scored" in done.stdout and "5 unreadable" in done.stdout
    errors = pd.read_csv(out, keep_default_na=False).set_index("path")["error"]
    expected = {**{str(p): "" for p in good}, **{str(p): reason for reason, p in bad.items()},
                str(tmp_path / "given.jpg"): FIFO, "/dev/zero": DEVICE}
    assert sorted(errors.index) == sorted(expected)
    for path, reason in expected.items():
        if reason:  # in the table and said on stderr
            assert errors[path].startswith(reason) and f"{path}: {reason}" in done.stderr, (path, errors[path])
        else:
            assert errors[path] == "", (path, errors[path])


API_CALLS = """
import json, sys
from imagesentiment.data import check_image
from imagesentiment.data.frames import open_video
from imagesentiment.explain import load_images
from imagesentiment.inference import TFLitePredictor, load
from imagesentiment.report.html import thumbnail
from imagesentiment.scoring.beam import ReadAndDecode

def refusal(call):
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""

model, paths = load(sys.argv[1], ["negative", "neutral", "positive"]), sys.argv[2:]
print(json.dumps({
    "keep": model.predict(paths, errors="keep")["error"].tolist(),
    "raise": [refusal(lambda p=p: model.predict(p)) for p in paths],
    "check": [check_image(p).reason for p in paths],
    "explain": [refusal(lambda p=p: load_images([p], (8, 8))) for p in paths],
    "video": [refusal(lambda p=p: open_video(p)) for p in paths],
    "tflite": [refusal(lambda p=p: TFLitePredictor(p)) for p in paths],
    "thumbnail": [thumbnail(p) is None for p in paths],
    "beam": [[o.value[1] for o in ReadAndDecode((8, 8)).process(p) if hasattr(o, "tag")] for p in paths],
}))
"""


def test_every_reader_of_a_path_refuses_them_unread(tmp_path, model_file):
    """The API (errors='keep' rows, errors='raise' a ValueError naming the file), the data checks, explain's
    load_images, a video, a TFLite model, a report's thumbnails and the Beam pipeline's reader."""
    pytest.importorskip("apache_beam")
    good = photos(tmp_path)[:1]
    bad = unreadable(tmp_path)
    paths = [*map(str, good), *map(str, bad.values())]
    done = isolated(API_CALLS, str(model_file), *paths)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["keep"][0] == said["raise"][0] == said["check"][0] == said["explain"][0] == ""
    assert said["beam"][0] == [] and said["thumbnail"][0] is False
    for i, (reason, path) in enumerate(bad.items(), 1):
        assert said["keep"][i].startswith(f"{path}: {reason}")
        assert said["raise"][i].startswith(f"InputFileError: {path}: {reason}")  # a ValueError
        assert said["explain"][i].startswith(f"InputFileError: {path}: {reason}")
        assert said["check"][i].startswith(reason) and said["beam"][i][0].startswith(reason)
        assert said["thumbnail"][i] is True
        if reason != TOO_LARGE:  # a video or a model of any size is read as a stream, no limit
            assert said["video"][i].startswith(f"VideoError: {path}: {reason}")
            assert said["tflite"][i].startswith(f"ModelFileError: {path}: {reason}")


def test_each_kind_of_file_is_told_from_its_status_alone(tmp_path, alarm):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "socket.jpg"))
        assert file_problem(tmp_path / "socket.jpg").startswith("not a regular file (a socket)")
    assert file_problem(tmp_path / "pipe.jpg").startswith(FIFO)
    assert file_problem("/dev/null", None).startswith(DEVICE)  # no limit: still not a regular file
    assert file_problem(tmp_path / "zero.jpg").startswith(DEVICE)
    (tmp_path / "photo.png").write_bytes(b"x" * 100)
    assert file_problem(tmp_path / "photo.png", 100) == "" and read_input(tmp_path / "photo.png", 100) == b"x" * 100
    assert file_problem(tmp_path / "photo.png", 99).startswith("file too large: 100 bytes, over the limit of 99 bytes")
    with open(tmp_path / "sparse.jpg", "wb") as handle:
        handle.truncate(SPARSE_BYTES)
    assert file_problem(tmp_path / "sparse.jpg") == TOO_LARGE and file_problem(tmp_path / "sparse.jpg", None) == ""
    with pytest.raises(InputFileError, match=re.escape(f"pipe.jpg: {FIFO}")) as info:
        read_input(tmp_path / "pipe.jpg")
    assert isinstance(info.value, ValueError) and info.value.reason.startswith(FIFO)
    with pytest.raises(IsADirectoryError):  # worded by each reader as before: 'unreadable: Is a directory'
        file_problem(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_input(tmp_path / "gone.jpg")


def test_a_file_that_grows_after_it_was_looked_at_is_not_read_past_the_limit(tmp_path, monkeypatch, alarm):
    from imagesentiment.data import imageset

    (tmp_path / "growing.png").write_bytes(b"x" * 1000)
    monkeypatch.setattr(imageset, "_problem", lambda status, max_bytes: "")  # as if it had been 10 bytes then
    with pytest.raises(InputFileError, match="growing.png: file too large: 1,000 bytes, over the limit of 10 bytes"):
        read_input(tmp_path / "growing.png", 10)


def test_max_bytes_is_the_limit_in_predict_the_api_and_check(tmp_path, model_file, capsys, alarm):
    """``predict --max-bytes``, ``predict_files(max_bytes=)``, ``predict(max_bytes=)``, ``check_image``: a
    larger file gets its row or error naming its size, the limit and how to raise it."""
    from imagesentiment.cli import main
    from imagesentiment.data import check_image
    from imagesentiment.inference import load
    from imagesentiment.scoring.batch import predict_files

    paths = photos(tmp_path / "photos", 2)
    size = paths[0].stat().st_size
    reason = f"file too large: {size} bytes, over the limit of 100 bytes; raise the limit to read it (--max-bytes"
    predictor = load(model_file, CLASSES)
    table = predict_files(predictor, list(map(str, paths)), tmp_path / "a.csv", max_bytes=100, progress=False)
    assert table["error"].iloc[0].startswith(reason) and table["label"].isna().all()
    at_the_limit = predict_files(predictor, [str(paths[0])], tmp_path / "b.csv", max_bytes=size, progress=False)
    assert at_the_limit["label"].notna().all()
    with pytest.raises(ValueError, match=re.escape(f"photo0.png: {reason}")):
        predictor.predict(paths[0], max_bytes=100)
    assert predictor.predict(paths[:1], errors="keep", max_bytes=100)["error"][0] == f"{paths[0]}: " + \
        check_image(paths[0], max_bytes=100).reason
    assert main(["predict", str(tmp_path / "photos"), "--model", str(model_file), "--classes", ",".join(CLASSES),
                 "--out", str(tmp_path / "c.csv"), "--max-bytes", "100"]) == 1  # none scored: a failure
    assert f"{paths[1]}: {reason}" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "photos"), "--model", str(model_file), "--classes", ",".join(CLASSES),
                 "--out", str(tmp_path / "d.csv"), "--max-bytes", str(max(p.stat().st_size for p in paths))]) == 0
    assert "2 images scored" in capsys.readouterr().out
