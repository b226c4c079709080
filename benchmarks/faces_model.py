"""The shipped faces model against its limits: its files (the SavedModel, its TFLite files and its card) at most
3 MB, and at most 5 ms a face from the SavedModel; and what its test-time views cost: one face a call through the
SavedModel's ``predict_images`` (the views in its graph), and the Keras graph with its views against the same
weights with one view, measured in one run.

    python benchmarks/faces_model.py [--calls 200]

``--exported DIR --name NAME`` measures a candidate exported there instead (``DIR/NAME/VERSION`` and
``DIR/NAME-*.tflite``, its latest version; no card), recorded under ``faces_model_speed_NAME``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from default_model import megabytes, shipped_files, single_image_ms
from imagesentiment.contract import SHIPPED_MODELS, shipped_model
from imagesentiment.inference import rebuild_keras
from imagesentiment.models.build import ensemble_members
from imagesentiment.models.views import model_views
from results import record

LIMIT_MB = 3
LIMIT_MS = 5


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="single-face calls per form")
    parser.add_argument("--exported", type=Path, help="a folder laid out as exported_models/ holding a candidate")
    parser.add_argument("--name", default="faces", help="the candidate's name in --exported")
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB, help="the limit on all its files")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    folder = args.exported or SHIPPED_MODELS
    version = (shipped_model("faces") if args.exported is None
               else max((p for p in (folder / args.name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)))
    served = tf.saved_model.load(str(version))
    model = rebuild_keras(version)
    member = ensemble_members(model)[0]  # the CNN the views feed: the same weights in one view
    viewed = tf.function(lambda x: model(x, training=False))
    one_view = tf.function(lambda x: member(x, training=False))
    face = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 48, 48, 3)), tf.float32)
    served_ms = single_image_ms(served.signatures["predict_images"], args.calls, images=face)
    viewed_ms = single_image_ms(viewed, args.calls, x=face)
    single_ms = single_image_ms(one_view, args.calls, x=face)
    size = megabytes(shipped_files(args.name, *([] if args.exported else ["FACES_MODEL_CARD.md"]), folder=folder))
    record("faces_model_speed" if args.exported is None else f"faces_model_speed_{args.name}", {
        "model": str(version if args.exported else version.relative_to(SHIPPED_MODELS.parent)),
        "test_time_views": len(model_views(model)),
        "savedmodel_one_face_ms": round(served_ms, 2),
        "keras_views_one_face_ms": round(viewed_ms, 2),
        "keras_one_view_one_face_ms": round(single_ms, 2),
        "views_cost_ratio": round(viewed_ms / single_ms, 2),
        "faces_model_mb": size,
        "limit_mb": args.limit_mb,
        "limit_met": size <= args.limit_mb,
        "limit_ms": LIMIT_MS,
        "speed_limit_met": served_ms <= LIMIT_MS,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    })
