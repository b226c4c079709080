"""Frames per second scored from a video, with and without the heat-map overlay (issue 7).

The benchmark makes its own 640x360 video and scores every frame with the shipped
model's architecture (MobileNetV2 transfer model at 160 px; weights do not change speed).

    python benchmarks/video_throughput.py [--frames 200]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from imagesentiment.inference import KerasPredictor
from imagesentiment.models.build import build_transfer
from imagesentiment.video.score import score_video
from results import record


def make_video(path: Path, frames: int, size=(640, 360), fps: int = 25) -> Path:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    predictor = KerasPredictor(build_transfer(input_size=160))
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "bench.mp4", args.frames)
        score_video(video, predictor, Path(folder) / "warm", every=1, overlay_path=Path(folder) / "w.mp4",
                    progress=False)  # compile both paths once
        figures = {}
        for name, overlay in (("scores_only", None), ("with_overlay", Path(folder) / "overlay.mp4")):
            start = time.perf_counter()
            score_video(video, predictor, Path(folder) / name, every=1, overlay_path=overlay, progress=False)
            figures[f"frames_per_s_{name}"] = round(args.frames / (time.perf_counter() - start), 1)
    figures["overlay_cost_ratio"] = round(figures["frames_per_s_scores_only"] / figures["frames_per_s_with_overlay"], 2)
    record("video_throughput", {"video": f"{args.frames} frames, 640x360, every frame scored",
                                "model": "MobileNetV2 transfer, 160 px", **figures})
