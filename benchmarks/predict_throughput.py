"""Images per second of `imagesentiment predict` from JPEG files, with and without heat maps (issue 6).

Scores the Twitter photos in ../shared/data (JPEG, 100-600 px) with the shipped default model
(decoding in parallel threads, batches through the compiled model), in one run.

    python benchmarks/predict_throughput.py [--images 400]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from imagesentiment.inference import default_model, load
from imagesentiment.scoring.inputs import collect_images
from imagesentiment.scoring.batch import predict_files
from results import record

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter-you2015" / "images"


def rate(predictor, paths, **options) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        predict_files(predictor, paths, Path(folder) / "out.csv", progress=False, **options)
        return len(paths) / (time.perf_counter() - start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--explained", type=int, default=64, help="images for the run with heat-map figures")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the Twitter photos are not at {DATA}")
    paths = collect_images([DATA])[:args.images]
    load_before = os.getloadavg()[0]
    predictor = load()
    rate(predictor, paths[:64])  # compile once
    plain = rate(predictor, paths)
    with tempfile.TemporaryDirectory() as maps:
        rate(predictor, paths[:8], explain_dir=maps)
        explained = rate(predictor, paths[:args.explained], explain_dir=maps)
    record("predict_throughput", {
        "model": str(default_model().relative_to(Path(__file__).resolve().parents[1])),
        "images": f"{len(paths)} Twitter JPEGs (heat maps: {args.explained})",
        "images_per_s": round(plain, 1),
        "images_per_s_with_heatmap_figures": round(explained, 1),
        "heatmap_figures_cost": f"{plain / explained:.2f}x the time per image",
        "pictures_per_image": "a panel (image | heat map | overlay) and the overlay, both JPEG",
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    })
