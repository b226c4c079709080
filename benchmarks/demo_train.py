"""Where does the time go when the demo CNN trains? `imagesentiment train pipelines/folder.yaml` on the
image set `imagesentiment demo` writes (120 generated photos, 84 of them training), at 96 px.

In one run: the epochs of the real command (every callback on; ``images_per_s`` of history.csv, median of
the epochs after the first), the bare training step on the same batches in memory (``model.fit`` with no
callback and no validation), and the forward pass alone, with the model's multiply-adds per image, so that
the step's cost reads against the arithmetic it has to do. The rest of an epoch of the command is timed
piece by piece on the same model: the batch-norm calibration before validation (a forward pass over the
training images in training mode), the validation pass and the checkpoint's save.

    python benchmarks/demo_train.py [--epochs 6]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from imagesentiment.training.config import load_config  # noqa: E402
from imagesentiment.data import make_synthetic_set  # noqa: E402
from imagesentiment.training.callbacks import PreciseBatchNorm  # noqa: E402
from imagesentiment.training.fit import build_model, train  # noqa: E402
from results import record  # noqa: E402

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "folder.yaml"


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass of one image, over the convolution and dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel = layer.kernel.shape
            outputs = np.prod(layer.output.shape[1:-1]) if isinstance(layer, keras.layers.Conv2D) else 1
            total += int(outputs * np.prod(kernel))
    return total


def images_per_s(run: callable, images: int, repeats: int = 3) -> float:
    """Images per second of ``run()`` (which handles ``images``), best of ``repeats`` after one to warm up."""
    return images / seconds(run, repeats)


def seconds(run: callable, repeats: int = 3) -> float:
    """Seconds of one call of ``run()``, best of ``repeats`` after one to warm up."""
    run()
    return min(_timed(run) for _ in range(repeats))


def _timed(run: callable) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        make_synthetic_set(Path(folder) / "images", per_class=40, size=96)
        config = load_config(PIPELINE, {"data.source.path": str(Path(folder) / "images"), "train.epochs": args.epochs,
                                        "train.patience": args.epochs})
        start = time.perf_counter()
        train(config, Path(folder) / "run")
        command_s = time.perf_counter() - start
        history = pd.read_csv(Path(folder) / "run" / "history.csv")
    model = build_model(config)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (84, 96, 96, 3)).astype("float32")
    y = np.arange(84) % 3
    step = images_per_s(lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False), len(x))
    forward = tf.function(lambda batch: model(batch, training=False))
    inference = images_per_s(lambda: [forward(x[i:i + 32]) for i in range(0, len(x), 32)], len(x))
    macs = multiply_adds(model)
    calibration = PreciseBatchNorm(tf.data.Dataset.from_tensor_slices((x, y)).batch(32))
    calibration.set_model(model)
    calibrate_s = seconds(calibration.calibrate)
    validation_s = seconds(lambda: model.evaluate(x[:18], y[:18], batch_size=32, verbose=0))
    with tempfile.TemporaryDirectory() as folder:
        save_s = seconds(lambda: model.save(Path(folder) / "model.keras"))
    command_epoch_s = len(x) / float(history["images_per_s"].iloc[1:].median())
    record("demo_train", {
        "pipeline": "pipelines/folder.yaml on imagesentiment demo's 120 generated photos (84 training), 96 px",
        "command_images_per_s": round(float(history["images_per_s"].iloc[1:].median()), 1),
        "command_seconds": round(command_s, 1), "epochs": args.epochs,
        "bare_training_images_per_s": round(step, 1),
        "forward_images_per_s": round(inference, 1),
        "forward_gmacs_per_image": round(macs / 1e9, 3),
        "training_gflop_per_s": round(step * macs * 2 * 3 / 1e9, 1),
        "epoch_seconds": {"command": round(command_epoch_s, 2), "bare_step": round(len(x) / step, 2),
                          "batch_norm_calibration": round(calibrate_s, 2), "validation": round(validation_s, 2),
                          "checkpoint_save": round(save_s, 2),
                          "unaccounted": round(command_epoch_s - len(x) / step - calibrate_s - validation_s
                                               - save_s, 2)},
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
    })
