"""One results file for every benchmark: ``benchmarks/results.json``, keyed by benchmark name."""
from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")


def cap_threads() -> None:
    """One thread for each numerical library (NumPy's BLAS, TensorFlow) unless the environment sets another count:
    a job beside others on a shared 2-core machine. Call it before NumPy or TensorFlow loads."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def machine() -> str:
    """Architecture, core count, CPU model and its int8 dot-product instructions (which int8 speed depends on)."""
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}  # the first core's
    for line in (cpuinfo.read_text() if cpuinfo.exists() else "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    int8 = sorted(set(fields.get("flags", "").split()) & {"avx_vnni", "avx512_vnni", "amx_int8"}) or ["no VNNI"]
    return ", ".join([platform.machine(), f"{os.cpu_count()} cores", *filter(None, [fields.get("model name")]),
                      "/".join(int8)])


def record(name: str, figures: dict) -> None:
    """Print ``figures`` and store them under ``name`` with the date and machine."""
    entry = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), **figures}
    print(json.dumps({name: entry}, indent=2))
    with open(RESULTS.with_suffix(".lock"), "w") as lock:  # benchmarks run side by side: one writer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = entry
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
