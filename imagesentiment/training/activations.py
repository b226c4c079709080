"""The activation cache of ``train.cached_views``: the frozen lower backbone's outputs for each image and
view, computed once and kept in memory and on disk, and the batches the trained part fits on."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np

from ..runtime import keras, tf
from .config import Config
from ..data import ImageSet, augment, decode_and_resize
from ..data.pipeline import unpack_weights, with_weights


class ActivationStore:
    """Outputs of the frozen lower backbone (``train.cached_views``) per image and view, computed
    once: kept in memory while the store lives (a cross-validation passes one store to every fold
    and ensemble member) and, with ``folder`` (``train.activation_cache``), on disk for later runs."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else None
        self.memory: dict[tuple, np.ndarray] = {}

    def activations(self, bottom: keras.Model, images: ImageSet, config: Config, views: int) -> np.ndarray:
        """``(len(images), views, *activation shape)`` float16 outputs of ``bottom``: view 0 of each
        image as is, view v > 0 augmented as in training, seeded by (v, the image's hash) only, so
        that the members of an ensemble (other seeds) share them."""
        size = [config.model.input_size] * 2
        frame = images.frame
        keys = frame["sha1"].tolist() if "sha1" in frame else frame["path"].tolist()
        m = config.model  # a fused model's lists as tuples: a tag is a dictionary key
        tag = (*(tuple(v) if isinstance(v, list) else v for v in (m.backbone, m.weights)), bottom.layers[-1].name,
               tuple(size), config.train.augment, *dataclasses.astuple(config.train.augmentation))
        forward = tf.function(lambda x: bottom(x, training=False))
        folder = self.folder / hashlib.sha1(repr(tag).encode()).hexdigest()[:16] if self.folder else None
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
            for k in keys:
                for view in range(views):
                    file = folder / f"{k}_{view}.npy"
                    if (*tag, k, view) not in self.memory and file.is_file():
                        self.memory[(*tag, k, view)] = np.load(file)
        for view in range(views):
            todo = [i for i, k in enumerate(keys) if (*tag, k, view) not in self.memory]
            if not todo:
                continue
            start = time.perf_counter()
            seeds = np.array([[view, int(str(keys[i])[-12:].encode().hex()[-15:], 16)]
                              for i in todo], np.int64)
            ds = tf.data.Dataset.from_tensor_slices((frame["path"].to_numpy(dtype=str)[todo], seeds))

            def load(path, seed, view=view):
                image = decode_and_resize(tf.io.read_file(path), size)
                if view and config.train.augment:
                    return augment(image, seed, config.train.augmentation)
                return tf.cast(image, tf.float32)

            ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(64).prefetch(tf.data.AUTOTUNE)
            out = np.concatenate([forward(x).numpy().astype(np.float16) for x in ds])
            for i, a in zip(todo, out):
                self.memory[(*tag, keys[i], view)] = a
                if folder:
                    np.save(folder / f"{keys[i]}_{view}.npy", a)
            print(f"frozen part, view {view}: {len(todo)} images, "
                  f"{len(todo) / (time.perf_counter() - start):.1f} images/s")
        return np.stack([np.stack([self.memory[(*tag, k, v)] for v in range(views)]) for k in keys])


def cached_dataset(activations: np.ndarray, labels: np.ndarray | tuple, batch_size: int, training: bool = False,
                   seed: int = 0, weights: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of stored activations: for training a random view per image each epoch, shuffled;
    else view 0. ``labels``: class ids, or a tuple of targets, one per output (class ids, ratings).
    ``weights`` (one per image): Keras's sample weights, as a third element."""
    labels = labels if isinstance(labels, tuple) else labels.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((activations, with_weights(labels, weights)))
    if training:
        views = activations.shape[1]
        picks = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, picks)).map(
            lambda pair, r: (tf.cast(tf.gather(pair[0], tf.math.floormod(r, views)), tf.float32), pair[1]))
        ds = ds.shuffle(len(activations), seed=seed, reshuffle_each_iteration=True)
    else:
        ds = ds.map(lambda a, y: (tf.cast(a[0], tf.float32), y))
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return ds if weights is None else unpack_weights(ds)
