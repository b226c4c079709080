"""Training: data preparation, ``model.fit`` with callbacks, and k-fold cross-validation.

A run directory holds everything a run makes: ``config.yaml``, ``classes.json``,
the split tables, ``skipped_files.csv``, ``model.keras``, ``history.csv``, TensorBoard
logs, the best-weights checkpoint, ``test/metrics.json`` and the plots. Running the
same command again after an interruption resumes where it stopped (``BackupAndRestore``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
import yaml
from tqdm import tqdm

from .config import Config, SourceConfig, check_config, to_dict
from .data import (DataError, ImageSet, Split, augment, check_set, decode_and_resize, k_fold, load_source,
                   train_val_test_split)
from .data.pipeline import unpack_weights, with_weights
from .data.imageset import miscased
from .data.shards import image_batches, read_split
from .distribute import for_strategy, is_chief, make_strategy, run_dir_of
from .evaluate import evaluate_model
from .metrics import plot_history, summary
from .model import average_models, build_cnn, build_transfer, frozen_cut, unfreeze_top


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


@dataclass
class Sources:
    """The configured data, checked: the main set, the fixed test set, the extra training sets."""

    images: ImageSet
    test: ImageSet | None
    extras: list[ImageSet]


def load_sources(config: Config, run_dir: Path) -> Sources:
    """Load and check every configured source; the files left out go to ``skipped_files.csv``."""
    skipped = []

    def load(source: SourceConfig, name: str) -> ImageSet:
        images = load_source(source.path, source.format, **source.options)
        try:
            images = images.with_classes(config.data.classes, source.path)
        except DataError as exc:
            cased = miscased(images.classes, config.data.classes)
            raise DataError(f"{exc} (data.classes); " + (
                f"{', '.join(cased)}: name the folder or label as data.classes names the class, in the same case"
                if cased else
                f"name every class there, in the output order wanted, e.g. --set data.classes=[{','.join(images.classes)}]")
            ) from None
        checked = check_set(images, config.data.max_pixels)
        print(f"[{name}] {checked.report()}")
        skipped.append(checked.skipped[["path", "reason"]].assign(source=name))
        return checked.images

    data = config.data
    extras = [load(s, f"extra{i}") for i, s in enumerate(data.extra_training)]
    extras = [ImageSet(e.frame.assign(weight=s.weight), e.classes, e.notes)  # a column the main set lacks
              for e, s in zip(extras, data.extra_training)]
    sources = Sources(load(data.source, "source"), load(data.test, "test") if data.test else None, extras)
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.concat(skipped, ignore_index=True).to_csv(run_dir / "skipped_files.csv", index=False)
    return sources


def _without(images: ImageSet, *others: ImageSet) -> ImageSet:
    """``images`` less any image whose content also appears in ``others`` (no leak through extras)."""
    seen = set().union(*(set(o.frame["sha1"]) for o in others))
    keep = ~images.frame["sha1"].isin(seen)
    return ImageSet(images.frame[keep.to_numpy()], images.classes, images.notes)


def _concat(*parts: ImageSet) -> ImageSet:
    return ImageSet(pd.concat([p.frame for p in parts], ignore_index=True), parts[0].classes)


def prepare_split(config: Config, run_dir: Path) -> Split:
    """Load and check the configured data, then split it (:func:`split_sources`)."""
    return split_sources(config, load_sources(config, run_dir))


def split_sources(config: Config, sources: Sources, member: int = 0) -> Split:
    """Split the checked data (or use the fixed test set), then add the extra training data.

    ``member`` > 0 keeps the test side and draws another validation side (seed + member).
    """
    if sources.test is not None:
        return inner_split(config, _without(sources.images, sources.test), sources.test, sources.extras, member)
    split = train_val_test_split(sources.images, config.split.validation, config.split.test, config.seed,
                                 config.seed + member)
    return with_extras(split, sources.extras)


def inner_split(config: Config, rest: ImageSet, test: ImageSet, extras: list[ImageSet], member: int = 0) -> Split:
    """A validation side carved from ``rest`` (seed + member), the rest for training with the extras,
    and ``test`` as the test side (a fixed test set, or a cross-validation fold's held-out part)."""
    inner = train_val_test_split(rest, config.split.validation, 0.0, config.seed, config.seed + member)
    return with_extras(Split(inner.train, inner.validation, test), extras)


def with_extras(split: Split, extras: list[ImageSet]) -> Split:
    """``split`` with the extra training sets added to its training side, less any image that is
    also on its validation or test side (no leak through extras)."""
    return Split(_concat(split.train, *(_without(e, split.validation, split.test) for e in extras)),
                 split.validation, split.test)


def build_model(config: Config) -> keras.Model:
    """The model the configuration describes."""
    m, classes = config.model, len(config.data.classes)
    if m.kind == "cnn":
        return build_cnn(classes, (m.input_size, m.input_size, 3), m.widths, m.convs_per_block, m.dropout)
    return build_transfer(classes, m.backbone, m.input_size, m.weights, m.dropout)


def sample_weights(images: ImageSet, num_classes: int, balance: bool = True) -> np.ndarray | None:
    """Each training image's weight in the loss: its source's ``weight`` (``extra_training``; 1 for
    the rest) times, with ``balance``, its class's balanced weight over those weights, so that every
    class present weighs the same in total. None when every weight is 1."""
    frame = images.frame
    weights = frame["weight"].fillna(1.0).to_numpy(float) if "weight" in frame else np.ones(len(frame))
    labels = images.label_ids.to_numpy()
    if balance:
        mass = np.bincount(labels, weights=weights, minlength=num_classes)
        present = mass > 0
        weights = weights * (weights.sum() / (present.sum() * np.where(present, mass, 1.0)))[labels]
    return None if np.allclose(weights, 1.0) else weights


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_s`` (training images per second of the epoch) to the epoch's logs."""

    def __init__(self, images: int) -> None:
        super().__init__()
        self.images = images

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["images_per_s"] = self.images / (time.perf_counter() - self.start)


class LiveProgress(keras.callbacks.Callback):
    """A live bar within each epoch on a terminal: images done, images/s and time left. Written to
    ``file`` only when it is a terminal, so logs and CI keep Keras's one line an epoch."""

    def __init__(self, images: int, batch_size: int, label: str, file: TextIO | None = None) -> None:
        super().__init__()
        self.images, self.batch_size, self.label, self.file = images, batch_size, label, file or sys.stderr
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.bar = tqdm(total=self.images, desc=f"{self.label}epoch {epoch + 1}", unit="img", leave=False,
                        file=self.file, disable=not self.file.isatty(), dynamic_ncols=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(min(self.batch_size, self.images - self.bar.n))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()


class PreciseBatchNorm(keras.callbacks.Callback):
    """Sets the moving statistics of every trainable BatchNormalization layer to the mean of its batch
    statistics over ``dataset`` (the training batches) under the current weights: before each
    validation or, without one, at the end of the epoch, before the checkpoint is written.

    For epochs of fewer steps than the moving averages' window (``1 / (1 - momentum)`` steps): then
    they mix in the activations of much older weights (at first the initial mean 0 and variance 1),
    and a model that fits its training images can predict one class for every image in inference mode.
    """

    def __init__(self, dataset: tf.data.Dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.calibrated = False

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.calibrate()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.calibrated:
            self.calibrate()

    def calibrate(self) -> None:
        layers = batch_norm_layers(self.model)
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.momentum = 0.0  # each call leaves its batch's statistics in the moving ones
        if getattr(self, "_forward", None) is None:  # one graph for every epoch's calibration
            self._forward = tf.function(lambda images: self.model(images, training=True), reduce_retracing=True)
        sums = [np.zeros((2,) + tuple(layer.moving_mean.shape)) for layer in layers]
        steps = 0
        for images, *_ in self.dataset:
            self._forward(images)
            steps += 1
            for total, layer in zip(sums, layers):
                total += np.stack([layer.moving_mean.numpy(), layer.moving_variance.numpy()])
        for total, layer, momentum in zip(sums, layers, momenta):
            layer.momentum = momentum
            if steps:
                layer.moving_mean.assign(total[0] / steps)
                layer.moving_variance.assign(total[1] / steps)
        self.calibrated = True


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The BatchNormalization layers that training updates (a frozen backbone's stay in inference mode)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _best_so_far(run_dir: Path, monitor: str) -> float | None:
    """The lowest ``monitor`` loss logged so far in any phase, so that a resumed run
    or a later phase only replaces the best checkpoint with a better one."""
    logs = [p for p in run_dir.glob("history_*.csv") if p.stat().st_size > 0]
    losses = pd.concat([pd.read_csv(p) for p in logs])[monitor].dropna() if logs else pd.Series([])
    return float(losses.min()) if len(losses) else None


def split_frozen(model: keras.Model, config: Config) -> tuple[keras.Model, keras.Model]:
    """The frozen lower part of a transfer model and the part above it that the phases train
    (sharing the model's layers), cut below the lowest layer that fine_tune.layers unfreezes."""
    fine = config.train.fine_tune
    cut = frozen_cut(model, fine.layers if fine.epochs > 0 else 0)
    if cut is None:
        raise TrainingError("train.cached_views: no layer of the backbone to cut at below the trained ones")
    tensor = model.get_layer(cut).output
    return keras.Model(model.inputs, tensor, name="frozen_part"), keras.Model(tensor, model.output, name="trained_part")


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
               tuple(size), config.train.augment)
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
                return augment(image, seed) if view and config.train.augment else tf.cast(image, tf.float32)

            ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(64).prefetch(tf.data.AUTOTUNE)
            out = np.concatenate([forward(x).numpy().astype(np.float16) for x in ds])
            for i, a in zip(todo, out):
                self.memory[(*tag, keys[i], view)] = a
                if folder:
                    np.save(folder / f"{keys[i]}_{view}.npy", a)
            print(f"frozen part, view {view}: {len(todo)} images, "
                  f"{len(todo) / (time.perf_counter() - start):.1f} images/s")
        return np.stack([np.stack([self.memory[(*tag, k, v)] for v in range(views)]) for k in keys])


def cached_dataset(activations: np.ndarray, labels: np.ndarray, batch_size: int, training: bool = False,
                   seed: int = 0, weights: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of stored activations: for training a random view per image each epoch, shuffled;
    else view 0. ``weights`` (one per image): Keras's sample weights, as a third element."""
    ds = tf.data.Dataset.from_tensor_slices((activations, with_weights(labels.astype(np.int32), weights)))
    if training:
        views = activations.shape[1]
        picks = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, picks)).map(
            lambda pair, r: (tf.cast(tf.gather(pair[0], tf.math.floormod(r, views)), tf.float32), pair[1]))
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    else:
        ds = ds.map(lambda a, y: (tf.cast(a[0], tf.float32), y))
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return ds if weights is None else unpack_weights(ds)


def fit_phase(model: keras.Model, split: Split, config: Config, run_dir: Path, phase: str,
              epochs: int, learning_rate: float, store: ActivationStore | None = None) -> pd.DataFrame:
    """One ``model.fit`` with every callback; returns this phase's history. With ``train.cached_views``
    the frozen part's activations come from ``store`` (a new one if None). The callbacks watch the
    validation loss, or the training loss when the validation side is empty (``split.validation: 0``)."""
    t, size = config.train, (config.model.input_size,) * 2
    validate = len(split.validation) > 0
    monitor = "val_loss" if validate else "loss"
    weights = sample_weights(split.train, len(config.data.classes), t.class_weights)
    strategy = tf.distribute.get_strategy()  # the one train() entered: batch_size is per replica
    batch = t.batch_size * strategy.num_replicas_in_sync
    if t.cached_views:  # the cheaper fine-tune: fit the trained part on the frozen part's activations
        bottom, model = split_frozen(model, config)
        store = store or ActivationStore(t.activation_cache)
        train_ds = cached_dataset(store.activations(bottom, split.train, config, t.cached_views),
                                  split.train.label_ids.to_numpy(), batch, True, config.seed, weights)
        val_ds = cached_dataset(store.activations(bottom, split.validation, config, 1),
                                split.validation.label_ids.to_numpy(), batch) if validate else None
    else:  # from the image files, or from their TFRecord shards (data.shards)
        train_ds = image_batches(split.train, size, batch, training=True, augment_images=t.augment,
                                 cache=t.cache, seed=config.seed, weights=weights)
        val_ds = image_batches(split.validation, size, batch, cache=t.cache) if validate else None
    layers, steps = batch_norm_layers(model), math.ceil(len(split.train) / batch)
    # one process only: a mirrored model's statistics are not written from outside its replicas here
    precise = ([PreciseBatchNorm(train_ds)] if strategy.num_replicas_in_sync == 1 and layers
               and steps < max(1 / (1 - layer.momentum) for layer in layers) else [])
    train_ds = for_strategy(train_ds, strategy)
    val_ds = for_strategy(val_ds, strategy) if validate else None
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = run_dir / f"history_{phase}.csv"
    checkpoint = run_dir / "checkpoints" / "best.weights.h5"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    where = [part for part in run_dir.parts[-2:] if part.startswith(("fold", "member"))]  # cv and ensembles
    callbacks = [
        Throughput(len(split.train)),
        LiveProgress(len(split.train), batch, " ".join([*where, phase, ""])),
        *precise,
        keras.callbacks.TerminateOnNaN(),
        # double_checkpoint: a kill while the backup is written leaves the previous one to resume from
        # kept after the phase ends (delete_checkpoint=False) until fit_member has saved the phase's weights:
        # a stop in between resumes from it rather than from epoch 1
        keras.callbacks.BackupAndRestore(str(run_dir / "backup" / phase), double_checkpoint=True,
                                         delete_checkpoint=False),
        keras.callbacks.EarlyStopping(monitor, patience=t.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor, save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=_best_so_far(run_dir, monitor)),
        keras.callbacks.ReduceLROnPlateau(monitor, factor=0.3, patience=max(1, t.patience // 3), min_lr=1e-7),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs" / phase)),
    ]
    # Keras keeps on the model the epoch BackupAndRestore restored for an earlier fit: after phase 1 resumed
    # at epoch k, phase 2 would start at epoch k too (or not at all). This phase's own backup sets it again.
    model._initial_epoch = None
    result = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                       callbacks=callbacks, shuffle=False, verbose=2)
    losses = result.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses):
        raise TrainingError(f"the loss became NaN in phase {phase!r} at epoch {len(losses)}; training "
                            f"stopped. The last good weights are kept in {checkpoint}; try a lower "
                            "train.learning_rate")
    if checkpoint.is_file():
        # the best may be phase 1's, saved with the head's optimizer: Keras warned that it skips that
        # optimizer's variables, but only the model's weights are wanted here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer", UserWarning)
            model.load_weights(str(checkpoint))
    return pd.read_csv(history)


# keys that say where or under which name a run computes, not what: a run may resume with others
RESUMABLE_CHANGES = frozenset({"name", "train.activation_cache", "train.strategy"})
TRAINED = ("backup", "history_phase1.csv", "model.keras")  # a run folder where training has begun
SIDES = ("train", "validation", "test")


def _flat(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return flat


def check_resumable(config: Config, run_dir: Path) -> None:
    """Refuse a folder where a run of another configuration has trained (its ``config.yaml``, or a
    cross-validation fold's): resuming it, or reusing its finished folds and ensemble members, would
    mix two runs (a fold trained on one split and scored on another's test side), and a finished run,
    before any data is read. A folder where nothing has trained yet (the run stopped at a data error,
    say) may be reused. A file is refused too."""
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: a file, not a folder; give a folder for the run (--out)")
    new = _flat(to_dict(config))
    for path in [run_dir / "config.yaml", *sorted(run_dir.glob("fold*/config.yaml"))]:
        if not (path.is_file() and any((path.parent / name).exists() for name in TRAINED)):
            continue
        old = _flat(yaml.safe_load(path.read_text()) or {})
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
        if changed:
            differences = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in changed)
            raise TrainingError(f"{run_dir} holds a run of another configuration ({differences}): run its own "
                                f"configuration ({path}) to resume it, or choose another output folder")
    if (run_dir / "model.keras").is_file():
        raise TrainingError(f"{run_dir} already holds a finished run; choose another output folder")


def check_same_data(split: Split, folder: Path) -> None:
    """Refuse to go on with a run (resume it, reuse a finished fold or member) whose data changed since it
    began: its saved epochs trained on the sides in ``folder``'s ``split_*.csv``, and a split of other
    images could put those training images on the test side."""
    files = {side: folder / f"split_{side}.csv" for side in SIDES}
    if not any((folder / name).exists() for name in TRAINED) or not all(f.is_file() for f in files.values()):
        return
    then = {row: side for side, f in files.items()
            for row in pd.read_csv(f, usecols=["path", "label"]).itertuples(index=False, name=None)}
    now = {row: side for side in SIDES
           for row in getattr(split, side).frame[["path", "label"]].itertuples(index=False, name=None)}
    if then == now:
        return
    moved = sum(1 for key in then.keys() & now.keys() if then[key] != now[key])
    raise TrainingError(
        f"{folder}: the data changed since this run began ({len(now.keys() - then.keys())} images added, "
        f"{len(then.keys() - now.keys())} removed or relabelled, {moved} on another side): going on would mix "
        "models trained on other images, and put some of its training images on the test side. Restore the data "
        "as it was (the sides are in its split_*.csv), or train into another folder")


def _write_inputs(config: Config, split: Split, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    (run_dir / "classes.json").write_text(json.dumps(list(config.data.classes)))
    _write_split(split, run_dir)


def _write_split(split: Split, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in SIDES:
        getattr(split, name).frame.to_csv(folder / f"split_{name}.csv", index=False)


def train_split(config: Config, split: Split, run_dir: Path, store: ActivationStore | None = None,
                resplit: Callable[[int], Split] | None = None) -> dict:
    """Train on ``split`` into ``run_dir`` (resuming if it holds an interrupted run); evaluate on its
    test side. ``store``: the frozen part's activations (``train.cached_views``), shared by the members.
    ``resplit(m)``: ensemble member m's own split (same test side), for ``train.ensemble_resplit``."""
    if config.train.ensemble_resplit and config.train.ensemble > 1 and resplit is None:
        raise TrainingError("train.ensemble_resplit draws each member's validation side from the image "
                            "files: it cannot be used with data.shards")
    run_dir = Path(run_dir)
    check_same_data(split, run_dir)
    _write_inputs(config, split, run_dir)
    store = store or ActivationStore(config.train.activation_cache)
    model = fit_member(config, split, run_dir, store)
    history = pd.concat([pd.read_csv(p) for p in sorted(run_dir.glob("history_phase*.csv"))], ignore_index=True)
    history = history.dropna(axis="columns", how="all")  # no validation side: CSVLogger's empty val_ columns
    history.to_csv(run_dir / "history.csv", index=False)
    plot_history(history, run_dir / "training_curves.png")
    if config.train.ensemble > 1:
        members = [model]
        for m in range(1, config.train.ensemble):
            member_dir = run_dir / f"member{m}"
            if (member_dir / "model.keras").is_file():
                members.append(keras.models.load_model(member_dir / "model.keras", safe_mode=True))
                continue
            print(f"ensemble member {m}: seed {config.seed + m}")
            member_split = split
            if config.train.ensemble_resplit:
                member_split = resplit(m)
                check_same_data(member_split, member_dir)
                _write_split(member_split, member_dir)
            members.append(fit_member(dataclasses.replace(config, seed=config.seed + m), member_split,
                                      member_dir, store))
            members[-1].save(member_dir / "model.keras")
        model = average_models(members)
    model.class_names = tuple(config.data.classes)  # the output order, for evaluation
    views = config.evaluate
    metrics = (evaluate_model(model, split.test, run_dir / "test",
                              flip_tta=views.flip_tta, crop_tta=views.crop_tta)
               if len(split.test) else {})
    if metrics:
        print(summary(metrics))
    model.save(run_dir / "model.keras")
    return metrics


def fit_member(config: Config, split: Split, run_dir: Path, store: ActivationStore | None = None) -> keras.Model:
    """Build the configured model and run its phases into ``run_dir`` (resuming after phase 1)."""
    keras.utils.set_random_seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    fine = config.train.fine_tune
    phases = [("phase1", config.train.epochs, config.train.learning_rate)]
    phases += [("phase2", fine.epochs, fine.learning_rate)] if fine.epochs > 0 else []
    for phase, epochs, learning_rate in phases:
        if phase == "phase2":
            print(f"phase 2: {unfreeze_top(model, fine.layers)} layers unfrozen, learning rate {learning_rate}")
        done = run_dir / "checkpoints" / f"{phase}.weights.h5"
        if done.is_file():
            model.load_weights(str(done))
            print(f"{phase} already done; weights from {done}")
            continue
        fit_phase(model, split, config, run_dir, phase, epochs, learning_rate, store)
        partial = done.with_name(f"{phase}.partial.weights.h5")  # renamed whole: never a torn file
        model.save_weights(str(partial))
        partial.replace(done)
        shutil.rmtree(run_dir / "backup" / phase, ignore_errors=True)  # only now: the phase's weights are kept
    return model


def train(config: Config, run_dir: str | Path) -> dict:
    """Prepare the configured data (or read its shards, ``data.shards``) and train one model under
    ``train.strategy``; returns the test metrics. Under ``multi_worker`` only the chief writes into
    ``run_dir`` (the other workers into a temporary folder of their own, removed at the end)."""
    config = check_config(config)  # also a Config built in Python, not read by load_config: types converted
    strategy = make_strategy(config.train.strategy)  # first: a multi-worker strategy must precede any op
    out = run_dir_of(run_dir, strategy)
    if out != Path(run_dir) and Path(run_dir).is_dir():  # a shared run directory: resume from the chief's
        shutil.copytree(run_dir, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("logs"))  # state
    if config.data.shards and config.train.cached_views:
        raise TrainingError("train.cached_views reads the image files: it cannot be used with data.shards")
    check_resumable(config, out)
    with strategy.scope():
        if config.data.shards:
            split, resplit = read_split(config.data.shards), None
            if list(split.train.classes) != list(config.data.classes):
                raise DataError(f"{config.data.shards}: its classes {list(split.train.classes)} differ from "
                                f"data.classes {list(config.data.classes)}")
            print(f"shards at {config.data.shards}: " + ", ".join(
                f"{len(getattr(split, name))} {name}" for name in ("train", "validation", "test")))
        else:
            sources = load_sources(config, out)
            split = split_sources(config, sources)
            resplit = functools.partial(split_sources, config, sources)
        if strategy.num_replicas_in_sync > 1:
            print(f"{config.train.strategy}: {strategy.num_replicas_in_sync} replicas, global batch "
                  f"{config.train.batch_size * strategy.num_replicas_in_sync}; chief: {is_chief(strategy)}")
        metrics = train_split(config, split, out, resplit=resplit)
    if not is_chief(strategy):
        shutil.rmtree(out, ignore_errors=True)
    return metrics


def cross_validate(config: Config, run_dir: str | Path) -> pd.DataFrame:
    """k-fold cross-validation: one model per fold (validation carved from the fold's training side).

    Writes ``cv_results.csv`` and ``cv_summary.json`` (mean and standard deviation).
    """
    run_dir = Path(run_dir)
    config = check_config(config)
    if config.data.shards or config.train.strategy != "default":
        raise TrainingError("cross-validation splits the image files in one process: it does not take "
                            "data.shards or a train.strategy other than default")
    check_resumable(config, run_dir)
    sources = load_sources(config, run_dir)
    store = ActivationStore(config.train.activation_cache)  # each image's views computed once for all folds
    rows = []
    for fold, (rest, held) in enumerate(k_fold(sources.images, config.split.folds, config.seed)):
        fold_split = functools.partial(inner_split, config, rest, held, sources.extras)
        split = fold_split()
        fold_dir = run_dir / f"fold{fold}"
        if (fold_dir / "model.keras").is_file():
            check_same_data(split, fold_dir)
            metrics = json.loads((fold_dir / "test" / "metrics.json").read_text())
            print(f"fold {fold}: already done")
        else:
            print(f"fold {fold}: {len(split.train)} training, {len(split.validation)} validation, {len(held)} held out")
            metrics = train_split(config, split, fold_dir, store, fold_split)
        rows.append({"fold": fold, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro"]["f1"],
                     "weighted_f1": metrics["weighted"]["f1"], "single_class": metrics["single_class"],
                     "macro_roc_auc": (metrics.get("ranking") or {}).get("macro", {}).get("roc_auc", np.nan)})
    table = pd.DataFrame(rows)
    table.to_csv(run_dir / "cv_results.csv", index=False)
    result: dict = {"folds": len(table)}
    for key in ("accuracy", "macro_f1", "macro_roc_auc"):  # folds written before ROC AUC was measured: left out
        for name, value in (("mean", table[key].mean()), ("std", table[key].std())):
            result[f"{key}_{name}"] = None if np.isnan(value) else float(value)
    result["single_class_folds"] = table.loc[table["single_class"], "fold"].tolist()
    (run_dir / "cv_summary.json").write_text(json.dumps(result, indent=2))
    print(f"{config.split.folds}-fold: accuracy {result['accuracy_mean']:.4f} ± {result['accuracy_std']:.4f}, "
          f"macro-F1 {result['macro_f1_mean']:.4f} ± {result['macro_f1_std']:.4f}"
          + (f", ROC AUC {result['macro_roc_auc_mean']:.4f} ± {result['macro_roc_auc_std']:.4f}"
             if result["macro_roc_auc_std"] is not None else ""))
    if result["single_class_folds"]:  # the mean would hide them
        print(f"WARNING: the models of folds {result['single_class_folds']} predict a single class for every "
              "held-out image: they have collapsed, and the mean above includes them", file=sys.stderr)
    return table
