"""Soak test of the serving signature (issue 9): a fresh process loads an exported version as TF
Serving would and answers a few thousand requests in a bounded loop, valid and invalid bytes mixed.
Every valid request must get the right answer (the one the version's ``predict_images`` signature
gives for the pixels the training pipeline decodes), every invalid one an InvalidArgument error,
and the process's memory must stay flat: resident memory grows less than 5 % from the end of the
warm-up to the last request.

    python benchmarks/serving_soak.py [--model VERSION_DIR] [--requests 3000] [--warmup 300]

Without ``--model`` a small CNN is trained for a few epochs on a generated image set and exported
into a temporary folder first. The figures are printed and stored under ``serving_soak`` in
benchmarks/results.json (``--no-record``: only printed; ``--json PATH``: also written there, with
the first answer to each valid payload, for tests/test_soak.py).
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

GROWTH_LIMIT = 0.05


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def payloads(seed: int = 0) -> list[tuple[str, bytes, bool]]:
    """``(name, bytes, valid)``: images of each class in every format and size, and invalid bytes."""
    import io

    from PIL import Image

    from imagesentiment.data.synthetic import synthetic_image

    rng = np.random.default_rng(seed)
    items = []
    for n, (label, size, fmt) in enumerate([("negative", 48, "JPEG"), ("neutral", 64, "PNG"), ("positive", 40, "WEBP"),
                                            ("positive", 96, "JPEG"), ("negative", 48, "GIF"), ("neutral", 33, "BMP"),
                                            ("positive", 48, "PNG"), ("negative", 200, "JPEG")]):
        buffer = io.BytesIO()
        Image.fromarray(synthetic_image(label, size, rng)[0]).save(buffer, fmt)
        items.append((f"{label}-{size}.{fmt.lower()}", buffer.getvalue(), True))
    jpeg = items[0][1]
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    huge = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header
            + struct.pack(">I", zlib.crc32(b"IHDR" + header)))
    items += [("empty", b"", False), ("truncated.jpg", jpeg[: len(jpeg) // 3], False),
              ("text", b"this is not an image\n", False), ("random", rng.bytes(700), False),
              ("huge.png", huge, False), ("png-magic-only", b"\x89PNG\r\n\x1a\n" + rng.bytes(40), False)]
    return items


def soak(version: str | os.PathLike, requests: int = 3000, warmup: int = 300, seed: int = 0) -> dict:
    """Run the loop in this process and return the figures."""
    import tensorflow as tf

    from imagesentiment.data import decode_and_resize

    start_rss = rss_mb()
    loaded = tf.saved_model.load(str(version))
    serve, pixels_signature = loaded.signatures["serving_default"], loaded.signatures["predict_images"]
    size = pixels_signature.structured_input_signature[1]["images"].shape[1:3]
    items = payloads(seed)
    reference = {}
    for name, data, valid in items:
        if valid:  # the same model through the other door: pixels decoded by the pipeline, in Python
            pixels = tf.cast(decode_and_resize(tf.constant(data), size), tf.float32)[None]
            reference[name] = pixels_signature(images=pixels)["probabilities"].numpy()[0]
    answers, wrong, missed, errors_seen = {}, [], [], 0
    latency = {True: [], False: []}
    after_warmup, samples = None, []
    begin = time.perf_counter()
    for i in range(requests):
        name, data, valid = items[i % len(items)]
        tick = time.perf_counter()
        try:
            out = serve(image_bytes=tf.constant([data]))
            probabilities = out["probabilities"].numpy()[0]
            answers.setdefault(name, probabilities.tolist())
            label = out["label"].numpy()[0].decode()
            if not valid:
                missed.append(name)
            elif (np.abs(probabilities - reference[name]).max() > 1e-5 or
                  int(out["class_id"].numpy()[0]) != int(reference[name].argmax()) or not label):
                wrong.append(name)
        except tf.errors.InvalidArgumentError:
            errors_seen += 1
            if valid:
                wrong.append(name)
        latency[valid].append(time.perf_counter() - tick)
        if i + 1 == warmup:
            after_warmup = rss_mb()
        if i + 1 >= warmup and (i + 1) % 50 == 0:
            samples.append(rss_mb())
    elapsed = time.perf_counter() - begin
    end = rss_mb()
    after_warmup = after_warmup or end
    valid_count = sum(1 for i in range(requests) if items[i % len(items)][2])
    return {
        "requests": requests, "warmup_requests": warmup, "valid_requests": valid_count,
        "invalid_requests": requests - valid_count, "wrong_answers": len(wrong), "invalid_not_refused": len(missed),
        "errors": errors_seen, "rss_mb_before_load": round(start_rss, 1), "rss_mb_after_warmup": round(after_warmup, 1),
        "rss_mb_end": round(end, 1), "rss_mb_max_after_warmup": round(max(samples + [end]), 1),
        "rss_growth_after_warmup": round((end - after_warmup) / after_warmup, 4),
        "requests_per_s": round(requests / elapsed, 1),
        "valid_median_ms": round(1000 * float(np.median(latency[True])), 2),
        "invalid_median_ms": round(1000 * float(np.median(latency[False])), 2),
        "answers": answers,
    }


def default_version(folder: Path) -> Path:
    """A small CNN trained a few epochs on a generated set, exported under ``folder``."""
    import keras

    from imagesentiment.data import make_dataset, make_synthetic_set
    from imagesentiment.export import export_savedmodel
    from imagesentiment.models.build import build_cnn

    keras.utils.set_random_seed(0)
    images = make_synthetic_set(folder / "images", per_class=30, size=48)
    model = build_cnn(3, (48, 48, 3), widths=(16, 32), dropout=0.2)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(make_dataset(images, (48, 48), 16, training=True, augment_images=False, cache=True), epochs=8, verbose=0)
    return export_savedmodel(model, folder / "serving", "imagesentiment")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="an exported version folder (default: a small CNN trained and exported here)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures (and first answers) to this file")
    parser.add_argument("--no-record", action="store_true", help="do not store the figures in results.json")
    args = parser.parse_args()
    os.environ.update(TF_NUM_INTRAOP_THREADS=str(args.threads), TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryDirectory() as scratch:
        if args.model:
            version = Path(args.model)
        else:  # trained in a child process, so that this one holds nothing but the loaded version
            import subprocess
            code = (f"import sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import serving_soak; print(serving_soak.default_version(Path({scratch!r})))")
            version = Path(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                          text=True).stdout.strip().splitlines()[-1])
        figures = soak(version, args.requests, args.warmup)
    answers = figures.pop("answers")
    figures["rss_growth_limit"] = GROWTH_LIMIT
    figures["passed"] = (figures["wrong_answers"] == 0 and figures["invalid_not_refused"] == 0
                         and figures["rss_growth_after_warmup"] < GROWTH_LIMIT)
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "answers": answers}, indent=2))
    if args.no_record:
        print(json.dumps(figures, indent=2))
    else:
        from results import record
        record("serving_soak", {**figures, "model": str(args.model or "small CNN trained here"),
                                "threads": args.threads})
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
