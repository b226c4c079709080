"""How soon does each command answer when there is nothing to do? Goals: `--help` under 1 s, a missing
input to `predict` or `report` under 2 s (the time a new user waits to learn of a typo).

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
    "help": (["--help"], 1.0, 0),
    "predict_missing_folder": (["predict", "/no/such/folder"], 2.0, 2),
    "report_missing_table": (["report", "missing.csv"], 2.0, 2),
}


def seconds(arguments: list[str], runs: int, status: int) -> float:
    """Median wall-clock seconds of ``imagesentiment ARGUMENTS`` in a fresh process; a run that does not end with
    ``status`` (the package not importable from the folder, say) stops the benchmark rather than being timed."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
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
