"""Test-time views for the OASIS target of issue 3: does averaging more views than the mirror help?

For each fold of one or more ``imagesentiment cv`` runs (e.g. of pipelines/oasis.yaml), the fold's
saved model scores its held-out photos as the pipeline sees them, in 12 views: the whole photo,
a centre crop and the four corner crops (each keeping ``--keep`` of the side, resized back, as the
training augmentation's crops do), each also mirrored. It reports accuracy and macro-F1 of
averages over subsets of those views; "whole + mirror" is the pipeline's ``evaluate.flip_tta``,
"all 12 views" its ``flip_tta`` with ``crop_tta``.

    python experiments/oasis_test_views.py RUN [RUN ...] [--keep 0.85]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # results.record: benchmarks/results.json

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from imagesentiment.data import ImageSet  # noqa: E402
from imagesentiment.data.shards import image_batches  # noqa: E402
from imagesentiment.models.views import CROP_KEEP, test_time_views  # noqa: E402
from results import record  # noqa: E402

# view indices, in the order of test_time_views: 0 the whole photo, 1 the centre crop, 2-5 the
# corners, 6-11 the same mirrored
SUBSETS = {"whole + mirror (the pipeline's flip_tta)": [0, 6], "centre crop + mirror": [1, 7],
           "whole and centre, + mirrors": [0, 1, 6, 7], "5 crops + mirrors": [1, 2, 3, 4, 5, 7, 8, 9, 10, 11],
           "all 12 views": list(range(12))}


def view_probabilities(model: keras.Model, images: ImageSet, keep: float) -> np.ndarray:
    """Class probabilities of every photo in every view: (N, 12, C)."""
    size = tuple(model.input_shape[1:3])

    @tf.function(input_signature=[tf.TensorSpec([None, *size, 3], tf.float32)])
    def forward(batch: tf.Tensor) -> tf.Tensor:
        views = test_time_views(batch, flip_tta=True, crop_tta=True, keep=keep)
        return tf.stack([model(view, training=False) for view in views], axis=1)

    return np.concatenate([forward(batch).numpy() for batch, _ in image_batches(images, size, 32)])


def run_views(run: Path, keep: float) -> dict:
    """Mean accuracy and macro-F1 over the run's folds of each subset of views, and the per-fold accuracy."""
    scores: dict[str, list] = {name: [] for name in SUBSETS}
    for fold in sorted(run.glob("fold*")):
        images = ImageSet(pd.read_csv(fold / "split_test.csv"))  # the default classes: the pipelines' order
        probs = view_probabilities(keras.models.load_model(fold / "model.keras", safe_mode=True), images, keep)
        truth = images.label_ids.to_numpy()
        for name, views in SUBSETS.items():
            pred = probs[:, views].mean(axis=1).argmax(axis=1)
            scores[name].append((accuracy_score(truth, pred), f1_score(truth, pred, average="macro")))
        print(f"{run.name}/{fold.name}: {len(images)} photos", flush=True)
    return {name: {"accuracy": round(float(np.mean(s, 0)[0]), 4), "macro_f1": round(float(np.mean(s, 0)[1]), 4),
                   "folds": [round(float(a), 3) for a, _ in s]} for name, s in scores.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="imagesentiment cv run folders")
    parser.add_argument("--keep", type=float, default=CROP_KEEP, help="share of each side a crop keeps")
    args = parser.parse_args()
    record("oasis_test_views", {"keep": args.keep, **{str(run): run_views(run, args.keep) for run in args.runs}})
