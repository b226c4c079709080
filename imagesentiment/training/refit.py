"""The refit: once a run or a cross-validation has chosen the recipe, its epoch counts and its temperature on
validation sides, one final model trained on every photo for those epochs (``train.refit``), with nothing held
back. ``imagesentiment train CONFIG --refit RUN`` reads the choices from ``RUN``.

Each phase trains for the median, over the earlier run's folds and ensemble members, of the epoch whose
validation loss was lowest; the temperature is the median of those they fitted. The refit model is judged by
the figures of the run it follows, on photos it then trained on: it has no test side of its own.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, to_dict
from .run import Run


class RefitError(ValueError):
    """The earlier run cannot set the refit's epochs: the message says why."""


@dataclass(frozen=True)
class Choices:
    """What the earlier run's validation sides chose: each phase's epochs, the temperature (None where none
    was fitted) and how many trained models (folds, members) they come from."""

    epochs: int
    fine_tune_epochs: int
    temperature: float | None
    models: int

    def __str__(self) -> str:
        phases = (f"{self.epochs} + {self.fine_tune_epochs} epochs" if self.epochs else
                  f"a linear head and {self.fine_tune_epochs} fine-tuning epochs")
        return (f"refit: every photo trains for {phases}"
                + (f", temperature {self.temperature:.3g}" if self.temperature else ", no temperature")
                + f" (what the validation side{'s' if self.models > 1 else ''} of {self.models} earlier "
                f"model{'s' if self.models > 1 else ''} chose, the median)")


def best_epoch(history: Path) -> int | None:
    """The epoch (from 1) of a phase's history with the lowest validation loss; None without one."""
    frame = pd.read_csv(history) if history.is_file() else pd.DataFrame()
    if "val_loss" not in frame or frame["val_loss"].isna().all():
        return None
    return int(frame.loc[frame["val_loss"].idxmin(), "epoch"]) + 1


def trained_models(run: Run) -> list[Run]:
    """The run, its ensemble members, and for a cross-validation each fold's and its members'."""
    return [model for top in [run, *run.folds()] for model in [top, *top.members()]]


def choices(run: Run) -> Choices:
    """What the validation sides of ``run`` (a finished train or cv run) chose. A linear head
    (``train.head: linear``) trains no epochs in phase 1: its count is then 0."""
    best = {m: [best_epoch(m.phase_history(phase)) for phase in ("phase1", "phase2")] for m in trained_models(run)}
    best = {m: epochs for m, epochs in best.items() if any(epochs)}
    if not best:
        raise RefitError(f"{run}: no trained model with a validation side to take the epochs from (a run or a "
                         "cross-validation with split.validation above 0)")
    temperatures = [json.loads(m.calibration_file.read_text())["temperature"]
                    for m in best if m.calibration_file.is_file()]
    median = (lambda values: int(round(float(np.median(values)))))
    return Choices(*(median([epochs[phase] or 0 for epochs in best.values()]) for phase in (0, 1)),
                   float(np.median(temperatures)) if temperatures else None, len(best))


def refit_config(config: Config, run_dir: str | Path) -> tuple[Config, Choices]:
    """``config`` as a refit (``train.refit``) with the epochs and temperature ``run_dir`` chose (its own
    ``train.temperature`` where that run fitted none); refused where that run trained another model or data, whose
    choices would not carry over."""
    run = Run(run_dir)
    written = next((r for r in [run, *run.folds()] if r.config_file.is_file()), None)  # a cv run: its folds'
    if written is None:
        raise RefitError(f"{run}: not a run directory (no {run.config_file.name}); give the folder a train or cv "
                         "command wrote")
    stored, now = written.stored_config(), to_dict(config)
    differ = [key for key in ("model", "data") if stored.get(key) != now[key]]
    if differ:
        raise RefitError(f"{run} trained with other {' and '.join(differ)} settings than {config.name}'s: its "
                         "epochs would not carry over; refit the configuration it ran")
    chosen = choices(run)
    t = config.train
    train = dataclasses.replace(t, refit=True, epochs=chosen.epochs or t.epochs,
                                temperature=t.temperature if chosen.temperature is None else chosen.temperature,
                                fine_tune=dataclasses.replace(t.fine_tune, epochs=chosen.fine_tune_epochs))
    return dataclasses.replace(config, train=train), chosen
