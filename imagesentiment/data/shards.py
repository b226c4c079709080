"""Sharded TFRecord files: any image set written as encoded image bytes with label and path,
read back with interleaved, parallel reads.

Paths go through TensorFlow's file system layer, so a prefix may be local or any URL
TensorFlow reads (``gs://``, ``s3://`` when the user has those plug-ins). Each shard is
written under a temporary name and renamed, so readers never see half a shard.

A split written with :func:`write_split` (``imagesentiment shard``) is ``PREFIX/train``,
``PREFIX/validation`` and ``PREFIX/test`` shard sets, each with its table (``NAME.csv``: the
images in the order written); :func:`read_split` gives it back as a :class:`Split` of
:class:`ShardedImages`, which :func:`image_batches` (training, evaluation) reads from the shards.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..runtime import tf
from .constants import Augmentation
from .pipeline import AUTOTUNE, batches, make_dataset, training_order, unpack_weights
from .imageset import ImageSet
from .splits import Split

SPLITS = ("train", "validation", "test")

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "path": tf.io.FixedLenFeature([], tf.string),
}


def _example(data: bytes, label: int, path: str) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@dataclass
class Shards:
    """A written shard set: its files, class names and image count (from ``PREFIX.json``)."""

    files: list[str]
    classes: tuple[str, ...]
    count: int
    counts: dict[str, int]


def write_shards(images: ImageSet, prefix: str, shard_size: int = 1000) -> Shards:
    """Write ``images`` as ``PREFIX-00000-of-0000N.tfrecord`` files of ``shard_size`` images and
    ``PREFIX.json`` (classes, counts, file names); returns what was written. Shard files of an earlier
    set at ``prefix`` are removed once the new set is complete."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, not {shard_size}")
    if len(images) == 0:
        raise ValueError("cannot shard an empty image set")
    parent = prefix.rsplit("/", 1)[0] if "/" in prefix else "."
    tf.io.gfile.makedirs(parent)
    total = math.ceil(len(images) / shard_size)
    labels, paths = images.label_ids.tolist(), images.frame["path"].tolist()
    files = []
    for shard in range(total):
        name = f"{prefix}-{shard:05d}-of-{total:05d}.tfrecord"
        with tf.io.TFRecordWriter(name + ".partial") as writer:
            for i in range(shard * shard_size, min(len(images), (shard + 1) * shard_size)):
                writer.write(_example(tf.io.gfile.GFile(paths[i], "rb").read(), labels[i], paths[i]))
        tf.io.gfile.rename(name + ".partial", name, overwrite=True)
        files.append(name)
    shards = Shards(files, tuple(images.classes), len(images), images.counts())
    with tf.io.gfile.GFile(prefix + ".csv", "w") as handle:  # the table, in the order written
        handle.write(images.frame.to_csv(index=False))
    with tf.io.gfile.GFile(prefix + ".json", "w") as handle:
        handle.write(json.dumps({"files": [f.rsplit("/", 1)[-1] for f in files], "classes": list(shards.classes),
                                 "count": shards.count, "counts": shards.counts}, indent=2))
    for stale in set(tf.io.gfile.glob(f"{prefix}-[0-9]*-of-[0-9]*.tfrecord")) - set(files):
        tf.io.gfile.remove(stale)  # an earlier set at this prefix, in other shard counts: a glob would read both
    return shards


def read_shards(prefix: str) -> Shards:
    """The shard set written at ``prefix`` (its ``PREFIX.json`` and files)."""
    if not tf.io.gfile.exists(prefix + ".json"):
        raise FileNotFoundError(f"{prefix}.json not found: no shard set was written at {prefix}")
    with tf.io.gfile.GFile(prefix + ".json") as handle:
        meta = json.loads(handle.read())
    parent = prefix.rsplit("/", 1)[0] if "/" in prefix else "."
    files = [f"{parent}/{name}" for name in meta["files"]]
    missing = [f for f in files if not tf.io.gfile.exists(f)]
    if missing:
        raise FileNotFoundError(f"shards listed in {prefix}.json are missing: {missing[:3]}")
    return Shards(files, tuple(meta["classes"]), meta["count"], meta["counts"])


def _parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    example = tf.io.parse_single_example(record, FEATURES)
    return example["image"], tf.cast(example["label"], tf.int32)


def make_shard_dataset(shards: Shards, image_size: Sequence[int] = (128, 128), batch_size: int = 32,
                       training: bool = False, augment_images: bool | Augmentation | None = None,
                       cache: bool | str = False, shuffle_buffer: int = 2048, seed: int = 0, ordered: bool = False,
                       class_weights: Sequence[float] | None = None) -> tf.data.Dataset:
    """The same batches as :func:`make_dataset`, read from shards: files interleaved in parallel
    (in a new order each epoch when training), then the shared decode/augment/batch tail.

    ``ordered`` reads the files one after the other instead, so that the images come in the
    order they were written (the shard set's table). ``class_weights`` (one per class) give each
    image its class's weight as a third element, Keras's sample weights. A training side written by
    :func:`write_split` in one shard, read with ``cache``, gives exactly :func:`make_dataset`'s
    batches of the split's training side (the same seed).
    """
    files = tf.data.Dataset.from_tensor_slices(shards.files)
    if training and not ordered:
        # seed + 1: ops with one seed share their per-epoch seed generator in tf.data, so the same
        # seed here would change the order the image shuffle below draws from epoch 2 on
        files = files.shuffle(len(shards.files), seed=seed + 1, reshuffle_each_iteration=True)
    if ordered:
        records = files.flat_map(tf.data.TFRecordDataset)
    else:
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(shards.files)),
                                   num_parallel_calls=AUTOTUNE, deterministic=True)
    encoded = records.map(_parse, num_parallel_calls=AUTOTUNE)
    if class_weights is not None:
        table = tf.constant(class_weights, tf.float32)
        encoded = encoded.map(lambda data, label: (data, (label, tf.gather(table, label))))
    ds = batches(encoded, image_size, batch_size, training, augment_images, cache,
                 min(shuffle_buffer, shards.count), seed)
    ds = ds if class_weights is None else unpack_weights(ds)
    # TFRecord files do not tell how many records they hold; the shard set does. Keras then knows
    # an epoch's length from the start, as it does for make_dataset
    return ds.apply(tf.data.experimental.assert_cardinality(math.ceil(shards.count / batch_size)))


@dataclass
class ShardedImages(ImageSet):
    """An image set whose pixels are read from its shard set (``frame``: the table written with it)."""

    shards: Shards | None = None


def read_images(prefix: str) -> ShardedImages:
    """The shard set at ``prefix`` with its table."""
    shards = read_shards(prefix)
    with tf.io.gfile.GFile(prefix + ".csv") as handle:
        frame = pd.read_csv(io.StringIO(handle.read()), keep_default_na=False, na_values=[""])
    return ShardedImages(frame, shards.classes, shards=shards)


def write_split(split: Split, prefix: str, shard_size: int = 1000, seed: int = 0) -> dict[str, Shards]:
    """``PREFIX/train``, ``PREFIX/validation`` and ``PREFIX/test`` shard sets (an empty side is left
    out). The training side is written in :func:`training_order` of ``seed``, so that readers see
    the classes mixed (and, from one shard, in the order training from the files uses)."""
    sides = {name: getattr(split, name) for name in SPLITS if len(getattr(split, name))}
    sides["train"] = sides["train"].subset(training_order(len(sides["train"]), seed))
    return {name: write_shards(images, f"{prefix.rstrip('/')}/{name}", shard_size) for name, images in sides.items()}


def read_split(prefix: str) -> Split:
    """The split :func:`write_split` wrote at ``prefix``: train and validation needed, test optional."""
    sides = {}
    for name in SPLITS:
        where = f"{prefix.rstrip('/')}/{name}"
        if name == "test" and not tf.io.gfile.exists(where + ".json"):
            sides[name] = ImageSet(pd.DataFrame(columns=["path", "label"]), sides["train"].classes)
        else:
            sides[name] = read_images(where)
    return Split(**sides)


def image_batches(images: ImageSet, image_size: Sequence[int] = (128, 128), batch_size: int = 32,
                  training: bool = False, augment_images: bool | Augmentation | None = None,
                  cache: bool | str = False, seed: int = 0, weights: np.ndarray | None = None,
                  ratings: np.ndarray | None = None) -> tf.data.Dataset:
    """:func:`make_dataset` of an image set, read from its shards when it has them (in the table's
    order unless training, so that predictions line up with the table). From shards, ``weights``
    (one per image) may differ only between classes: shard records carry no weight, nor ``ratings``."""
    if isinstance(images, ShardedImages) and images.shards is not None:
        if ratings is not None:
            raise ValueError("images read from shards carry no ratings to train on (train.ratings_loss)")
        table = None
        if weights is not None:
            labels = images.label_ids.to_numpy()
            table = np.ones(len(images.classes))
            table[labels] = weights
            if not np.allclose(table[labels], weights):
                raise ValueError("images read from shards can only be weighted by class")
        return make_shard_dataset(images.shards, image_size, batch_size, training, augment_images, cache,
                                  seed=seed, ordered=not training, class_weights=table)
    return make_dataset(images, image_size, batch_size, training, augment_images, cache, seed=seed,
                        weights=weights, ratings=ratings)
