"""How fast are the heat maps? (issue 4)

On a CNN trained on the generated set (96 px, the default ``build_cnn``), for one batch of 32 images, in one run:
- the one-pass prediction + Grad-CAM (``GradCamPredictor``) against the floor: a compiled
  forward pass to the logits and backward pass to the target layer of the same model,
  which any Grad-CAM needs. Target: one-pass / floor <= 1.3;
- each tf-keras-vis method through ``explain``: seconds per image and the ratio to the one-pass.
Times are medians of interleaved repeats after a warm-up call.

    python benchmarks/explain_speed.py [--repeats 15] [--epochs 8]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from imagesentiment.data import make_dataset, make_synthetic_set
from imagesentiment.explain import METHODS, GradCamPredictor, explain
from imagesentiment.models.build import LOGITS, build_cnn, find_target_layer
from results import record

SIZE, BATCH = 96, 32


def trained_cnn(epochs: int) -> tuple[keras.Model, np.ndarray, float]:
    """The default CNN trained on a generated set; a batch of its images and its training accuracy."""
    keras.utils.set_random_seed(0)
    images = make_synthetic_set(tempfile.mkdtemp(), per_class=40, size=SIZE, seed=0)
    model = build_cnn(3, (SIZE, SIZE, 3))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    data = make_dataset(images, (SIZE, SIZE), BATCH, training=True, augment_images=False, cache=True)
    model.fit(data, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(make_dataset(images, (SIZE, SIZE), BATCH), verbose=0)
    x, _ = next(iter(make_dataset(images, (SIZE, SIZE), len(images), training=True, augment_images=False)))
    return model, x.numpy()[:BATCH], accuracy


def floor_function(model: keras.Model) -> tf.types.experimental.GenericFunction:
    """Forward to the logits and backward to the target layer, compiled: the least Grad-CAM needs."""
    layers = [model.get_layer(find_target_layer(model)), model.get_layer(LOGITS)]
    graph = keras.Model(model.inputs, [layer.output for layer in layers])

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
    def forward_backward(images: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            features, logits = graph(images, training=False)
            score = tf.reduce_max(logits, axis=-1)
        return tape.gradient(score, features)
    return forward_backward


def seconds(function, *args) -> float:
    start = time.perf_counter()
    result = function(*args)
    np.asarray(result["heatmap"] if isinstance(result, dict) else result)  # wait for the values
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    model, x, accuracy = trained_cnn(args.epochs)
    images = tf.constant(x)
    one_pass, floor = GradCamPredictor(model), floor_function(model)
    seconds(one_pass, images), seconds(floor, images)  # trace both
    pairs = np.array([(seconds(one_pass, images), seconds(floor, images)) for _ in range(args.repeats)])
    one_pass_s, floor_s = np.median(pairs, axis=0)
    per_image = {}
    for method in METHODS:
        explain(model, x[:2], method)  # build the explainer and trace what tf-keras-vis traces
        per_image[method] = seconds(explain, model, x, method) / BATCH
    one_pass_per_image = one_pass_s / BATCH
    record("explain_speed", {
        "data": f"generated set, default build_cnn at {SIZE}px (training accuracy {accuracy:.2f}), batch {BATCH}, "
                f"TF_NUM_INTRAOP_THREADS={os.environ.get('TF_NUM_INTRAOP_THREADS', 'unset')}",
        "one_pass_s_per_batch": round(float(one_pass_s), 4),
        "floor_forward_backward_s_per_batch": round(float(floor_s), 4),
        "ratio_one_pass_to_floor": round(float(one_pass_s / floor_s), 3),
        "target": "ratio <= 1.3",
        "s_per_image": {m: round(s, 4) for m, s in {"one_pass": one_pass_per_image, **per_image}.items()},
        "ratio_to_one_pass": {m: round(s / one_pass_per_image, 1) for m, s in per_image.items()},
    })
