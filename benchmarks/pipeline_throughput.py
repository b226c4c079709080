"""Is the input pipeline ever the bottleneck? (issue 2)

On the Twitter set from ../shared/data, in one run:
- the pipeline alone: images/s from JPEG files to batches (decode, resize, augment);
- one steady-state training epoch of a small CNN fed by the file-decoding pipeline,
  against the same epoch fed from tensors already in memory.
Target: file-fed epoch / in-memory epoch <= 1.10.

    python benchmarks/pipeline_throughput.py [--size 128] [--epochs 3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from imagesentiment.data import check_set, make_dataset, twitter
from imagesentiment.models.build import build_cnn
from results import record

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter-you2015"


def images_per_second(ds: tf.data.Dataset) -> float:
    start, count = time.perf_counter(), 0
    for x, _ in ds:
        count += int(x.shape[0])
    return count / (time.perf_counter() - start)


def steady_epoch_seconds(data, epochs: int, **fit_args) -> float:
    """Median epoch time after a first (warm-up) epoch."""
    keras_model = build_cnn(3, (args.size, args.size, 3), widths=(16, 32, 64))
    keras_model.compile("adam", "sparse_categorical_crossentropy")
    times = []

    class Timer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    keras_model.fit(data, epochs=epochs + 1, verbose=0, callbacks=[Timer()], **fit_args)
    return float(np.median(times[1:]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the Twitter set is not at {DATA}")
    images = check_set(twitter(DATA, "three")).images
    size = (args.size, args.size)

    stream = make_dataset(images, size, args.batch, training=True, seed=0)
    images_per_second(stream)  # warm the file cache of the OS
    stream_rate = images_per_second(stream)
    cached = make_dataset(images, size, args.batch, training=True, cache=True, seed=0)
    images_per_second(cached)
    cached_rate = images_per_second(cached)

    plain = make_dataset(images, size, len(images))
    x, y = (t.numpy() for t in next(iter(plain)))
    memory = steady_epoch_seconds(x, args.epochs, y=y, batch_size=args.batch)
    file_fed = steady_epoch_seconds(cached, args.epochs)
    file_fed_no_cache = steady_epoch_seconds(stream, args.epochs)
    record("pipeline_throughput", {
        "data": f"twitter three-agree, {len(images)} images, {args.size}px, batch {args.batch}",
        "pipeline_images_per_s_streaming": round(stream_rate, 1),
        "pipeline_images_per_s_cached": round(cached_rate, 1),
        "epoch_s_in_memory_tensors": round(memory, 3),
        "epoch_s_file_pipeline_cached": round(file_fed, 3),
        "epoch_s_file_pipeline_streaming": round(file_fed_no_cache, 3),
        "ratio_cached": round(file_fed / memory, 3),
        "ratio_streaming": round(file_fed_no_cache / memory, 3),
        "target": "ratio <= 1.10",
    })
