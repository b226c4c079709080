"""How soon does each command answer when there is nothing to do? Goals: `--help` (the command's and a
sub-command's) within 0.3 s; a configuration error, a missing input, a missing model and a file that is no image within 1 s (the time a
new user waits to learn of a typo).

Each command runs as a user runs it, a fresh process, ``--runs`` times; the figure is the median
wall-clock time.

    python benchmarks/startup.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from results import record

COMMANDS = {  # the arguments, the goal in seconds and the exit status the command must end with
    "help": (["--help"], 0.3, 0),
    "predict_help": (["predict", "--help"], 0.3, 0),
    "config_error": (["train", "bad.yaml"], 1.0, 2),
    "predict_missing_folder": (["predict", "/no/such/folder"], 1.0, 2),
    "predict_missing_model": (["predict", ".", "--model", "facse"], 1.0, 2),
    "report_missing_table": (["report", "missing.csv"], 1.0, 2),
    "predict_not_an_image": (["predict", "notes.txt"], 1.0, 1),
}
BAD_CONFIG = "data: {source: {path: photos}}\ntrain: {epochs: ten}\n"  # bad.yaml in the folder the commands run in


def seconds(arguments: list[str], runs: int, status: int) -> float:
    """Median wall-clock seconds of ``imagesentiment ARGUMENTS`` in a fresh process; a run that does not end with
    ``status`` (the package not importable from the folder, say) stops the benchmark rather than being timed."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "bad.yaml"), "w") as config:
            config.write(BAD_CONFIG)
        with open(os.path.join(folder, "notes.txt"), "w") as notes:  # a file that is no image
            notes.write("meeting at ten\n")
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "imagesentiment.cli", *arguments], cwd=folder,
                                  capture_output=True, text=True,
                                  env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
            times.append(time.perf_counter() - start)
            if done.returncode != status:
                sys.exit(f"imagesentiment {' '.join(arguments)} ended with {done.returncode}, not {status}: "
                         f"{done.stderr.strip()[-300:]}")
    return statistics.median(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    figures = {name: round(seconds(arguments, args.runs, status), 2) for name, (arguments, _, status) in COMMANDS.items()}
    record("startup", {"seconds": figures, "goals_seconds": {n: goal for n, (_, goal, _) in COMMANDS.items()},
                       "goals_met": {n: figures[n] <= goal for n, (_, goal, _) in COMMANDS.items()},
                       "runs": args.runs, "load_average_before": round(load_before, 2),
                       "load_average_after": round(os.getloadavg()[0], 2)})
