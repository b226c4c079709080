"""The callbacks of a training phase: throughput, a live bar, BatchNorm calibration, and the set one
``model.fit`` runs with (backup for resuming, early stopping, the best checkpoint, the logs)."""
from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..runtime import keras, tf
from .run import Run


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


class CosineSchedule(keras.callbacks.Callback):
    """The learning rate set before every step: a linear rise from 0 over the first epoch, then a half cosine
    from ``peak`` down to 0 at the end of epoch ``epochs``. It follows from the epoch and step alone, so a
    resumed run (``BackupAndRestore``) goes on where it stopped."""

    def __init__(self, peak: float, epochs: int, steps: int) -> None:
        super().__init__()
        self.peak, self.epochs, self.steps = peak, epochs, max(1, steps)
        self.epoch = 0

    def rate(self, epoch: int, step: int) -> float:
        """The rate at ``step`` of ``epoch`` (both from 0)."""
        done = (epoch * self.steps + step) / self.steps  # epochs done, a fraction
        warm = 1 if self.epochs > 1 else 0  # one epoch of warm-up, unless it is the only one
        if done < warm:
            return self.peak * (done + 1 / self.steps)
        return self.peak * 0.5 * (1 + math.cos(math.pi * min((done - warm) / (self.epochs - warm), 1.0)))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.model.optimizer.learning_rate.assign(self.rate(self.epoch, batch))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The BatchNormalization layers that training updates (a frozen backbone's stay in inference mode)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _best_so_far(run: Run, monitor: str) -> float | None:
    """The lowest ``monitor`` loss logged so far in any phase, so that a resumed run
    or a later phase only replaces the best checkpoint with a better one."""
    logs = [p for p in run.phase_histories() if p.stat().st_size > 0]
    losses = pd.concat([pd.read_csv(p) for p in logs])[monitor].dropna() if logs else pd.Series([])
    return float(losses.min()) if len(losses) else None


def phase_callbacks(model: keras.Model, run: Run, phase: str, train_ds: tf.data.Dataset, images: int, batch: int,
                    monitor: str, patience: int, cosine: tuple[float, int] | None = None,
                    keep_best: bool = True) -> list[keras.callbacks.Callback]:
    """Every callback of one phase's fit on ``images`` training images in batches of ``batch``
    (``train_ds``, before it is distributed), watching ``monitor``. ``cosine``: (peak rate, epochs) of a
    :class:`CosineSchedule` in place of the cuts when the loss stalls. Without ``keep_best`` (a refit) no early
    stop and no best checkpoint: every epoch runs and the last one's weights stay."""
    layers, steps = batch_norm_layers(model), math.ceil(images / batch)
    # one process only: a mirrored model's statistics are not written from outside its replicas here
    precise = ([PreciseBatchNorm(train_ds)] if tf.distribute.get_strategy().num_replicas_in_sync == 1 and layers
               and steps < max(1 / (1 - layer.momentum) for layer in layers) else [])
    run.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
    return [
        Throughput(images),
        LiveProgress(images, batch, " ".join([*run.nesting(), phase, ""])),
        *precise,
        keras.callbacks.TerminateOnNaN(),
        # double_checkpoint: a kill while the backup is written leaves the previous one to resume from
        # kept after the phase ends (delete_checkpoint=False) until fit_member has saved the phase's weights:
        # a stop in between resumes from it rather than from epoch 1
        keras.callbacks.BackupAndRestore(str(run.backup_folder(phase)), double_checkpoint=True,
                                         delete_checkpoint=False),
        *([keras.callbacks.EarlyStopping(monitor, patience=patience, restore_best_weights=True),
           keras.callbacks.ModelCheckpoint(str(run.checkpoint_file), monitor, save_best_only=True,
                                           save_weights_only=True,
                                           initial_value_threshold=_best_so_far(run, monitor))] if keep_best else []),
        CosineSchedule(*cosine, steps) if cosine else
        keras.callbacks.ReduceLROnPlateau(monitor, factor=0.3, patience=max(1, patience // 3), min_lr=1e-7),
        keras.callbacks.CSVLogger(str(run.phase_history(phase)), append=True),
        keras.callbacks.TensorBoard(str(run.logs_folder(phase))),
    ]


def stopping_note(callbacks: list[keras.callbacks.Callback], phase: str, epochs: int) -> str | None:
    """What to say of a phase that early stopping ended before its last epoch: when, and which epoch's weights
    are kept; None where it ran all ``epochs``."""
    stop = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
    if stop is None or not stop.stopped_epoch:
        return None
    return (f"{phase}: stopped early after epoch {stop.stopped_epoch + 1} of {epochs}: no better {stop.monitor} "
            f"for {stop.patience} epochs; the weights of epoch {stop.best_epoch + 1} ({stop.monitor} "
            f"{stop.best:.4f}) are kept")
