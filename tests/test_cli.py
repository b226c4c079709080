import argparse
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from imagesentiment.cli import entry as cli
from imagesentiment.cli import build_parser, main
from imagesentiment.runtime import start_up_messages

from conftest import bad_files


def test_every_sub_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
        shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "usage: imagesentiment " + name in shown
        for action in commands[name]._actions:  # an option's default is in its help: where output goes, how much
            if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
                assert f"{action.default}" in shown, f"{name} {action.option_strings[0]}: default not shown"


@pytest.mark.parametrize("argv, message", [
    (["predict", "x.jpg", "--batch-size", "-3"], "--batch-size: expected a whole number >= 1, got '-3'"),
    (["explain", "data", "--model", "m", "--evaluate", "--limit", "-1"], "--limit: expected a whole number >= 1"),
    (["explain", "x.jpg", "--model", "m", "--alpha", "1.5"], "--alpha: expected a number >= 0 and <= 1"),
    (["video", "x.mp4", "--per-second", "0"], "--per-second: expected a number > 0, got '0'"),
    (["video", "x.mp4", "--smooth", "two"], "--smooth: expected a whole number >= 0, got 'two'"),
    (["train", "c.yaml", "--epochs", "0"], "--epochs: expected a whole number >= 1"),
    (["export", "run", "--version", "0"], "--version: expected a whole number >= 1"),
])
def test_numbers_out_of_range_are_refused_before_any_work(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_check_lists_bad_files_and_goes_on(tmp_path, synthetic_root, capsys):
    for name in ("negative", "neutral", "positive"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for src in list((synthetic_root / name).glob("*.png"))[:3]:
            (tmp_path / "data" / name / src.name).write_bytes(src.read_bytes())
    bad_files(tmp_path / "data" / "neutral")
    (tmp_path / "data" / "neutral" / "directory.jpg").rmdir()
    assert main(["check", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "9 usable images; 5 left out" in out and "zero_byte.jpg: empty file" in out
    skipped = pd.read_csv(tmp_path / "run" / "skipped_files.csv")
    assert len(skipped) == 5
    assert main(["check", str(tmp_path / "data"), "--out", str(tmp_path / "bad.csv")]) == 0  # a file, not a folder
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "bad.csv"), skipped)
    assert main(["check", str(tmp_path / "data"), "--out", str(tmp_path / "bad.csv" / "more")]) == 2
    assert "bad.csv: a file, not a folder" in capsys.readouterr().err


def test_check_reports_a_missing_manifest_file_by_name(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("path,label\nnowhere.jpg,positive\n")
    assert main(["check", str(csv)]) == 2
    assert "nowhere.jpg" in capsys.readouterr().err


def test_an_output_named_as_an_input_is_refused_and_the_input_kept(tmp_path, capsys):
    images = tmp_path / "list.csv"
    images.write_text("path\nphoto.jpg\n")
    table = tmp_path / "scores.csv"
    table.write_text("path,label,confidence\nphoto.jpg,positive,0.9\n")
    kept = {path: path.read_bytes() for path in (images, table)}
    for argv in (["predict", str(images), "--out", str(images), "--resume"],
                 ["predict", str(images), "--out", str(images), "--overwrite"],
                 ["report", str(table), "--out", str(tmp_path / "." / "scores.csv")]):
        assert main(argv) == 2
        assert "is an input of this command" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in kept} == kept


@pytest.mark.parametrize("name, content, message", [
    ("scores.csv", b"\xff\xfe\x00 not text", "scores.csv: not a readable .csv table"),
    ("scores.jsonl", b'{"path":', "scores.jsonl: not a readable .jsonl table"),
    ("scores.parquet", b"junk", "scores.parquet: not a readable .parquet table"),
])
def test_report_names_a_predictions_file_it_cannot_read(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert main(["report", str(tmp_path / name), "--out", str(tmp_path / "r.html")]) == 2
    assert message in capsys.readouterr().err


def test_an_output_path_that_cannot_be_written_is_an_error_line_not_a_traceback(tmp_path, capsys):
    table = tmp_path / "scores.csv"
    table.write_text("path,label,confidence\nphoto.jpg,positive,0.9\n")
    (tmp_path / "folder.html").mkdir()
    assert main(["report", str(table), "--out", str(tmp_path / "folder.html")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'folder.html'}: Is a directory"


def test_help_and_usage_errors_do_not_start_tensorflow():
    """Importing TensorFlow takes ~4 s and prints its log lines: '--help' or a mistyped option needs neither."""
    probe = ("import sys\nfrom imagesentiment.cli import main\n"
             "for argv in (['--help'], ['predict', '--help'], ['predict']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr[-500:]
    assert "usage: imagesentiment predict" in result.stdout + result.stderr


def test_console_script_runs_the_demo(tmp_path):
    users_shell = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "imagesentiment.cli", "demo", "--out", str(tmp_path),
                             "--per-class", "10"], capture_output=True, text=True, timeout=300, env=users_shell)
    assert result.returncode == 0, result.stderr
    assert "30 usable images" in result.stdout and "pipeline:" in result.stdout
    assert f"images written to {tmp_path / 'images'}" in result.stdout  # where, and what to run next
    assert f"imagesentiment train pipelines/folder.yaml --set data.source.path={tmp_path / 'images'}" in result.stdout
    assert "absl" not in result.stderr and not re.search(r"^[IWE]\d{4} ", result.stderr, re.M), result.stderr[:500]


CAUGHT_AT_START = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795617181.484087   22538 port.cc:153] oneDNN custom operations are on. You may see slightly different.
I0000 00:00:1795617181.484418   22538 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
W0000 00:00:1795617181.500000   22538 cpu_feature_guard.cc:227] This TensorFlow binary is optimized
E0000 00:00:1795617184.117577   22538 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)
E0000 00:00:1795617184.200000   22538 some_op.cc:12] Could not open libfoo.so: a real problem
/usr/lib/python3/site-packages/x.py:3: DeprecationWarning: something a user may want to see
"""


def test_tensorflow_start_up_lines_are_left_out_and_other_messages_kept():
    kept = start_up_messages(CAUGHT_AT_START).splitlines()
    assert kept == CAUGHT_AT_START.splitlines()[-2:]
    with_driver = CAUGHT_AT_START.replace("Could not find cuda drivers", "Found a driver")
    assert "failed call to cuInit" in start_up_messages(with_driver)  # a GPU machine whose driver fails says so


@pytest.mark.parametrize("level, quiet", [(None, True), ("0", False)])
def test_start_up_lines_are_caught_unless_the_user_sets_a_log_level(tmp_path, monkeypatch, level, quiet):
    calls = []
    monkeypatch.setattr(cli, "start_tensorflow_quietly", lambda: calls.append(1))
    if level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    assert main(["shard", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "shards")]) == 2
    assert calls == ([1] if quiet else [])
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert main(["predict", str(tmp_path / "missing")]) == 2
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert calls == ([1] if quiet else []), ("report never starts TensorFlow, predict not before its inputs are "
                                             "there, train not before its configuration is checked")


def test_a_data_path_that_names_nothing_says_the_rule_and_the_path_it_meant(tmp_path, monkeypatch, capsys):
    """A line copied from the YAML to --set is read from the working folder, where it names nothing: the error
    said 'no such folder' with a path the user never wrote."""
    (tmp_path / "conf" / "photos").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    config = tmp_path / "conf" / "pipeline.yaml"
    config.write_text("data: {source: {path: missing}}\nmodel: {kind: cnn, input_size: 32}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"data.source.path: no such file or folder {tmp_path / 'conf' / 'missing'}" in err
    assert f"written in {config}: read from its folder {tmp_path / 'conf'}" in err
    assert main(["train", str(config), "--set", "data.source.path=photos"]) == 2
    err = capsys.readouterr().err
    assert f"no such file or folder {tmp_path / 'elsewhere' / 'photos'}" in err
    assert f"given with --set: read from the working folder {tmp_path / 'elsewhere'}" in err
    assert f"{tmp_path / 'conf' / 'photos'} exists: give that path" in err
    assert not (tmp_path / "elsewhere" / "runs").exists(), "nothing written"


def test_a_message_names_the_option_alone_on_the_command_line():
    from imagesentiment.cli.entry import options_only

    assert options_only("x: exists; pass overwrite=True (--overwrite) to replace it, or resume=True (--resume)") \
        == "x: exists; pass --overwrite to replace it, or --resume"
    assert options_only("give a folder for the run (--out)") == "give a folder for the run (--out)"


def test_a_missing_model_is_named_with_the_nearest_before_tensorflow_starts(tmp_path):
    """--model facse said 'not a run directory ... or a .tflite file' after TensorFlow had started: not that
    nothing is there, nor what was meant."""
    (tmp_path / "runs" / "defualt").mkdir(parents=True)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read")
    script = ("import sys; from imagesentiment.cli import main; "
              f"codes = [main(['predict', {str(photo)!r}, '--model', 'facse']), "
              f"main(['video', 'clip.mp4', '--model', {str(tmp_path / 'runs' / 'default')!r}]), "
              f"main(['evaluate', 'nowhere/model', '--data', 'x'])]; "
              "print(*codes, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "2", "2", "False"], done.stderr
    errors = done.stderr.splitlines()
    assert errors[0].startswith("error: facse: no such file or folder; did you mean faces?")
    assert errors[1].startswith(f"error: {tmp_path / 'runs' / 'default'}: no such file or folder; did you mean "
                                f"{tmp_path / 'runs' / 'defualt'}?")
    assert errors[2].startswith("error: nowhere/model: no such file or folder (a model is")


def test_a_missing_input_is_answered_before_tensorflow_starts(tmp_path):
    """Every command spent 5-10 s importing TensorFlow before it said that the input folder does not exist."""
    script = ("import sys; from imagesentiment.cli import main; "
              f"code = main(['predict', {str(tmp_path / 'missing')!r}]); "
              f"code2 = main(['report', {str(tmp_path / 'missing.csv')!r}]); "
              "print(code, code2, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "2", "False"], done.stderr
    assert "missing: no such file or folder" in done.stderr
