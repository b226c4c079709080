"""Training: the phases of ``model.fit``, ensemble members, one model on a configuration's split.

A run writes into its run directory (:class:`~imagesentiment.training.run.Run` names its files). Running the
same command again after an interruption resumes where it stopped (``BackupAndRestore``).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..runtime import keras, tf
from .activations import ActivationStore, cached_dataset
from .joint import compile_args, has_ratings_output, joint_model, rating_targets, targets
from ..atomic import replacing
from .calibration import calibrate
from .callbacks import phase_callbacks, stopping_note
from ..compat import forget_restored_epoch
from .config import Config, check_config, to_dict
from ..data import ImageSet, Split
from .prepare import load_sources, read_shards, split_sources
from .linear_head import LinearHead, fit_linear_head
from .ratings import with_fitted_ratings
from ..data.shards import image_batches
from .distribute import for_strategy, is_chief, make_strategy, run_dir_of
from ..evaluation.evaluate import evaluate_model
from ..evaluation.metrics import plot_history, summary
from ..models.build import (SmoothedCrossentropy, average_models, build_cnn, build_sepnet, build_transfer, frozen_cut,
                            rating_names, unfreeze_top, with_temperature)
from .run import SIDES, Run


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


def build_model(config: Config) -> keras.Model:
    """The model the configuration describes."""
    m, classes = config.model, len(config.data.classes)
    if m.kind in ("cnn", "sepnet"):
        build = build_cnn if m.kind == "cnn" else build_sepnet
        return build(classes, (m.input_size, m.input_size, 3), m.widths, m.convs_per_block, m.dropout)
    return build_transfer(classes, m.backbone, m.input_size, m.weights, m.dropout, end=m.backbone_end)


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


def split_frozen(model: keras.Model, config: Config) -> tuple[keras.Model, keras.Model]:
    """The frozen lower part of a transfer model and the part above it that the phases train
    (sharing the model's layers), cut below the lowest layer that fine_tune.layers unfreezes."""
    fine = config.train.fine_tune
    cut = frozen_cut(model, fine.layers if fine.epochs > 0 else 0)
    if cut is None:
        raise TrainingError("train.cached_views: no layer of the backbone to cut at below the trained ones")
    tensor = model.get_layer(cut).output
    return keras.Model(model.inputs, tensor, name="frozen_part"), keras.Model(tensor, model.outputs, name="trained_part")


def phase_datasets(model: keras.Model, split: Split, config: Config, batch: int,
                   store: ActivationStore | None = None) -> tuple[keras.Model, tf.data.Dataset, tf.data.Dataset | None]:
    """The model a phase fits, its training batches and its validation batches (None without a validation
    side). With ``train.cached_views`` the model is the part above the frozen one, fitted on the frozen
    part's activations from ``store`` (a new one if None)."""
    t, size = config.train, (config.model.input_size,) * 2
    validate, rated = len(split.validation) > 0, has_ratings_output(model)
    weights = sample_weights(split.train, len(config.data.classes), t.class_weights)  # the ratings' loss ignores them
    if t.cached_views:  # the cheaper fine-tune: fit the trained part on the frozen part's activations
        bottom, model = split_frozen(model, config)
        store = store or ActivationStore(t.activation_cache)
        train_ds = cached_dataset(store.activations(bottom, split.train, config, t.cached_views),
                                  targets(split.train, rated), batch, True, config.seed, weights)
        val_ds = cached_dataset(store.activations(bottom, split.validation, config, 1),
                                targets(split.validation, rated), batch) if validate else None
    else:  # from the image files, or from their TFRecord shards (data.shards)
        train_ds = image_batches(split.train, size, batch, training=True, augment_images=t.augment and t.augmentation,
                                 cache=t.cache, seed=config.seed, weights=weights,
                                 ratings=rating_targets(split.train) if rated else None)
        val_ds = image_batches(split.validation, size, batch, cache=t.cache,
                               ratings=rating_targets(split.validation) if rated else None) if validate else None
    return model, train_ds, val_ds


def fit_phase(model: keras.Model, split: Split, config: Config, run: Run, phase: str,
              epochs: int, learning_rate: float, store: ActivationStore | None = None) -> pd.DataFrame:
    """One ``model.fit`` with every callback; returns this phase's history. With ``train.cached_views``
    the frozen part's activations come from ``store`` (a new one if None). The callbacks watch the
    validation loss, or the training loss when the validation side is empty (``split.validation: 0``)."""
    monitor = "val_loss" if len(split.validation) else "loss"
    strategy = tf.distribute.get_strategy()  # the one train() entered: batch_size is per replica
    batch = config.train.batch_size * strategy.num_replicas_in_sync
    model, train_ds, val_ds = phase_datasets(model, split, config, batch, store)
    cosine = (learning_rate, epochs) if config.train.schedule == "cosine" else None
    callbacks = phase_callbacks(model, run, phase, train_ds, len(split.train), batch, monitor, config.train.patience,
                                cosine, keep_best=not config.train.refit)
    train_ds = for_strategy(train_ds, strategy)
    val_ds = for_strategy(val_ds, strategy) if val_ds is not None else None
    smoothing = config.train.label_smoothing
    loss = SmoothedCrossentropy(smoothing) if smoothing else "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(learning_rate), **compile_args(model, loss, config.train.ratings_loss,
                                                                       split.train))
    forget_restored_epoch(model)  # else phase 2 would start at the epoch phase 1 resumed at
    result = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                       callbacks=callbacks, shuffle=False, verbose=2)
    note = stopping_note(callbacks, phase, epochs)
    if note:
        print(note)
    losses = result.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses):
        raise TrainingError(f"the loss became NaN in phase {phase!r} at epoch {len(losses)}; training "
                            f"stopped. The last good weights are kept in {run.checkpoint_file}; try a lower "
                            "train.learning_rate")
    if run.checkpoint_file.is_file():
        # the best may be phase 1's, saved with the head's optimizer: Keras warned that it skips that
        # optimizer's variables, but only the model's weights are wanted here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer", UserWarning)
            model.load_weights(str(run.checkpoint_file))
    return pd.read_csv(run.phase_history(phase))


def linear_phase(model: keras.Model, split: Split, config: Config, store: ActivationStore | None) -> LinearHead:
    """Phase 1 of ``train.head: linear``: the class head fitted by logistic regression on the frozen model's
    pooled features (:mod:`~imagesentiment.training.linear_head`), the photos weighted as the loss weighs them."""
    t = config.train
    frozen = split_frozen(model, config) if t.cached_views else None
    weights = sample_weights(split.train, len(config.data.classes), t.class_weights)
    return fit_linear_head(model, split.train, weights, config, store or ActivationStore(t.activation_cache), frozen)


# keys that say where or under which name a run computes, not what: a run may resume with others
RESUMABLE_CHANGES = frozenset({"name", "train.activation_cache", "train.strategy"})


def _flat(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return flat


def check_resumable(config: Config, run: Run) -> None:
    """Refuse a folder where a run of another configuration has trained (its stored configuration, or a
    cross-validation fold's): resuming it, or reusing its finished folds and ensemble members, would
    mix two runs (a fold trained on one split and scored on another's test side), and a finished run,
    before any data is read. A folder where nothing has trained yet (the run stopped at a data error,
    say) may be reused. A file is refused too."""
    if run.folder.exists() and not run.folder.is_dir():
        raise TrainingError(f"{run}: a file, not a folder; give a folder for the run (--out)")
    new = _flat(to_dict(config))
    for earlier in [run, *run.folds()]:
        if not (earlier.config_file.is_file() and earlier.trained()):
            continue
        old = _flat(earlier.stored_config())
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
        if changed:
            differences = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in changed)
            raise TrainingError(f"{run} holds a run of another configuration ({differences}): run its own "
                                f"configuration ({earlier.config_file}) to resume it, or choose another output folder")
    if run.has_model():
        raise TrainingError(f"{run} already holds a finished run; choose another output folder")


def check_same_data(split: Split, run: Run) -> None:
    """Refuse to go on with a run (resume it, reuse a finished fold or member) whose data changed since it
    began: its saved epochs trained on the sides of its stored split, and a split of other
    images could put those training images on the test side."""
    then = run.split_rows() if run.trained() else None
    if then is None:
        return
    now = {row: side for side in SIDES
           for row in getattr(split, side).frame[["path", "label"]].itertuples(index=False, name=None)}
    if then == now:
        return
    moved = sum(1 for key in then.keys() & now.keys() if then[key] != now[key])
    raise TrainingError(
        f"{run}: the data changed since this run began ({len(now.keys() - then.keys())} images added, "
        f"{len(then.keys() - now.keys())} removed or relabelled, {moved} on another side): going on would mix "
        "models trained on other images, and put some of its training images on the test side. Restore the data "
        "as it was (the sides are in its split_*.csv), or train into another folder")


def train_split(config: Config, split: Split, run: Run, store: ActivationStore | None = None,
                resplit: Callable[[int], Split] | None = None) -> dict:
    """Train on ``split`` into ``run`` (resuming if it holds an interrupted run); evaluate on its
    test side. ``store``: the frozen part's activations (``train.cached_views``), shared by the members.
    ``resplit(m)``: ensemble member m's own split (same test side), for ``train.ensemble_resplit``."""
    if config.train.ensemble_resplit and config.train.ensemble > 1 and resplit is None:
        raise TrainingError("train.ensemble_resplit draws each member's validation side from the image "
                            "files: it cannot be used with data.shards")
    check_same_data(split, run)
    if config.train.refit:
        print(f"refit: all {len(split.train)} photos train, none held back for validation"
              + (f"; {len(split.test)} photos of data.test judge it" if len(split.test) else " or a test side"))
    run.write_inputs(to_dict(config), config.data.classes, split)
    store = store or ActivationStore(config.train.activation_cache)
    model = fit_member(config, split, run, store)
    histories = [pd.read_csv(p) for p in run.phase_histories()]  # none: a linear head and no fine-tune
    if histories:
        history = pd.concat(histories, ignore_index=True).dropna(axis="columns", how="all")  # no validation side:
        history.columns = [c.replace("predictions_accuracy", "accuracy") for c in history.columns]  # CSVLogger's
        history.to_csv(run.history_file, index=False)  # empty val_ columns left out; with ratings, renamed
        plot_history(history, run.curves_file)
    if config.train.ensemble > 1:
        model = average_models([model, *(fit_ensemble_member(config, split, run.member(m), m, store, resplit)
                                         for m in range(1, config.train.ensemble))])
    if config.train.ratings and not rating_names(model):  # trained with the classes (ratings_loss) or fitted now
        model = with_fitted_ratings(model, split.train, config.train.batch_size)
    model.class_names = tuple(config.data.classes)  # the output order, for evaluation
    views = config.evaluate
    metrics = (evaluate_model(model, split.test, run.test_folder,
                              flip_tta=views.flip_tta, crop_tta=views.crop_tta)
               if len(split.test) else {})
    if metrics:
        print(summary(metrics))
    model.save(run.model_file)
    return metrics


def fit_ensemble_member(config: Config, split: Split, member: Run, m: int, store: ActivationStore,
                        resplit: Callable[[int], Split] | None) -> keras.Model:
    """Ensemble member ``m`` (seed + m) trained into ``member``, or read back if it was."""
    if member.has_model():
        return keras.models.load_model(member.model_file, safe_mode=True)
    print(f"ensemble member {m}: seed {config.seed + m}")
    if config.train.ensemble_resplit:
        split = resplit(m)
        check_same_data(split, member)
        member.write_split(split)
    model = fit_member(dataclasses.replace(config, seed=config.seed + m), split, member, store)
    model.save(member.model_file)
    return model


def fit_member(config: Config, split: Split, run: Run, store: ActivationStore | None = None) -> keras.Model:
    """Build the configured model and run its phases into ``run`` (resuming after phase 1)."""
    keras.utils.set_random_seed(config.seed)
    run.folder.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    if config.train.ratings_loss > 0:  # a ratings output trained with the classes, where the photos are rated
        model = joint_model(model, split.train)
    fine = config.train.fine_tune
    phases = [("phase1", config.train.epochs, config.train.learning_rate)]
    phases += [("phase2", fine.epochs, fine.learning_rate)] if fine.epochs > 0 else []
    for phase, epochs, learning_rate in phases:
        if phase == "phase2":
            print(f"phase 2: {unfreeze_top(model, fine.layers)} layers unfrozen, learning rate {learning_rate}")
        done = run.phase_weights(phase)
        if done.is_file():
            model.load_weights(str(done))
            print(f"{phase} already done; weights from {done}")
            continue
        if phase == "phase1" and config.train.head == "linear":
            print(linear_phase(model, split, config, store))
            done.parent.mkdir(parents=True, exist_ok=True)
        else:
            fit_phase(model, split, config, run, phase, epochs, learning_rate, store)
        with replacing(done) as partial:  # renamed whole: never a torn file
            model.save_weights(str(partial))
        shutil.rmtree(run.backup_folder(phase), ignore_errors=True)  # only now: the phase's weights are kept
    t = config.train
    if t.temperature is not None:
        with_temperature(model, t.temperature)
        print(f"calibration: the temperature {t.temperature:.3g} given (train.temperature)")
    elif t.calibrate and (fitted := calibrate(model, split.validation)):
        print(fitted)
        run.calibration_file.write_text(json.dumps(dataclasses.asdict(fitted)))
    return model


def train(config: Config, run_dir: str | Path) -> dict:
    """Prepare the configured data (or read its shards, ``data.shards``) and train one model under
    ``train.strategy``; returns the test metrics. Under ``multi_worker`` only the chief writes into
    ``run_dir`` (the other workers into a temporary folder of their own, removed at the end)."""
    config = check_config(config)  # also a Config built in Python, not read by load_config: types converted
    strategy = make_strategy(config.train.strategy)  # first: a multi-worker strategy must precede any op
    out = Run(run_dir_of(run_dir, strategy))
    if out.folder != Path(run_dir) and Path(run_dir).is_dir():  # a shared run directory: resume from the chief's
        Run(run_dir).copy_state(out.folder)
    if config.data.shards and config.train.cached_views:
        raise TrainingError("train.cached_views reads the image files: it cannot be used with data.shards")
    check_resumable(config, out)
    with strategy.scope():
        if config.data.shards:
            split, resplit = read_shards(config), None
        else:
            sources = load_sources(config, out.skipped_file)
            split = split_sources(config, sources)
            resplit = functools.partial(split_sources, config, sources)
        if strategy.num_replicas_in_sync > 1:
            print(f"{config.train.strategy}: {strategy.num_replicas_in_sync} replicas, global batch "
                  f"{config.train.batch_size * strategy.num_replicas_in_sync}; chief: {is_chief(strategy)}")
        metrics = train_split(config, split, out, resplit=resplit)
    if not is_chief(strategy):
        shutil.rmtree(out.folder, ignore_errors=True)
    return metrics
