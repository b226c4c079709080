"""The shipped default model against its limits: `imagesentiment predict` on the example photos at least
15 images/s, the SavedModel's single-image latency at most 60 ms, ``exported_models/`` at most 45 MB in all (with
the faces model beside it; the default model's own files are given too).

`predict` is timed as the command runs it (files decoded in threads, batches through the loaded SavedModel),
on the example photos repeated to ``--rounds`` passes after one pass to compile; the SavedModel's
``predict_images`` and ``serving_default`` (JPEG bytes) are timed one image a call, median of ``--calls``,
loaded in this process as TF Serving loads it.

    python benchmarks/default_model.py [--rounds 10] [--calls 100]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from imagesentiment.contract import CLASSES_FILE, SHIPPED_MODELS, SHIPPED_NAMES
from imagesentiment.inference import default_model, load
from imagesentiment.scoring.inputs import collect_images
from imagesentiment.scoring.batch import predict_files
from results import record

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"predict_images_per_s": 15, "savedmodel_single_image_ms": 60, "exported_models_mb": 45}


def predict_rate(paths: list[str], rounds: int) -> float:
    """Images per second of predict_files with the shipped model, over ``rounds`` passes of ``paths``."""
    predictor = load()
    with tempfile.TemporaryDirectory() as folder:
        predict_files(predictor, paths, Path(folder) / "warm.csv", progress=False)
        start = time.perf_counter()
        for i in range(rounds):
            predict_files(predictor, paths, Path(folder) / f"out{i}.csv", progress=False)
        return rounds * len(paths) / (time.perf_counter() - start)


def shipped_files(name: str, *others: str, folder: Path = SHIPPED_MODELS) -> list[Path]:
    """The files shipped for model ``name``: its SavedModel folder, its ``.tflite`` files, and ``others`` (its
    card, say) from ``exported_models/`` (or ``folder``, laid out the same way)."""
    saved_model = [p for p in (folder / name).rglob("*") if p.is_file()]
    return saved_model + sorted(folder.glob(f"{name}-*.tflite")) + [folder / o for o in others]


def default_model_files() -> list[Path]:
    """The files shipped for the default model: its SavedModel folder, its ``.tflite`` files, card and classes."""
    return shipped_files(SHIPPED_NAMES[0], "MODEL_CARD.md", CLASSES_FILE)


def megabytes(files: Iterable[Path]) -> float:
    """The size of ``files`` together, in MB to one decimal."""
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def single_image_ms(signature, calls: int, **inputs: tf.Tensor) -> float:
    """Median wall-clock milliseconds of one call of ``signature`` on one image."""
    signature(**inputs)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        signature(**inputs)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="passes over the example photos")
    parser.add_argument("--calls", type=int, default=100, help="single-image calls per signature")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    paths = collect_images([ROOT / "examples"])
    images_per_s = predict_rate(paths, args.rounds)
    served = tf.saved_model.load(str(default_model()))
    size = served.signatures["predict_images"].structured_input_signature[1]["images"].shape[1:3]
    pixels = tf.cast(tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(paths[0])), 3), size), tf.float32)[None]
    jpeg = tf.constant([Path(paths[0]).read_bytes()])
    pixels_ms = single_image_ms(served.signatures["predict_images"], args.calls, images=pixels)
    bytes_ms = single_image_ms(served.signatures["serving_default"], args.calls, image_bytes=jpeg)
    figures = {"predict_images_per_s": round(images_per_s, 1),
               "savedmodel_single_image_ms": round(max(pixels_ms, bytes_ms), 1),
               "exported_models_mb": megabytes(p for p in SHIPPED_MODELS.rglob("*") if p.is_file())}
    record("default_model", {
        "model": str(default_model().relative_to(ROOT)),
        "images": f"the {len(paths)} example photos, {args.rounds} passes",
        **figures,
        "default_model_mb": megabytes(default_model_files()),  # the faces model's own limit is 15 MB
        "savedmodel_predict_images_ms": round(pixels_ms, 1),
        "savedmodel_serving_default_jpeg_ms": round(bytes_ms, 1),
        "limits": LIMITS,
        "limits_met": {key: (figures[key] >= limit if key.endswith("_per_s") else figures[key] <= limit)
                       for key, limit in LIMITS.items()},
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    })
