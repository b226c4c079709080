import subprocess
import sys

import pandas as pd
import pytest

from imagesentiment.cli import build_parser, main

from conftest import bad_files


def test_every_sub_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: imagesentiment " + name in capsys.readouterr().out


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


def test_check_reports_a_missing_manifest_file_by_name(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("path,label\nnowhere.jpg,positive\n")
    assert main(["check", str(csv)]) == 2
    assert "nowhere.jpg" in capsys.readouterr().err


def test_console_script_runs_the_demo(tmp_path):
    result = subprocess.run([sys.executable, "-m", "imagesentiment.cli", "demo", "--out", str(tmp_path),
                             "--per-class", "10"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "30 usable images" in result.stdout and "pipeline:" in result.stdout
