"""The run directory: what a training run writes and every later command reads, under one set of names.

A run directory holds ``config.yaml``, ``classes.json``, the split tables ``split_{train,validation,test}.csv``,
``skipped_files.csv``, ``model.keras``, the histories, TensorBoard logs, checkpoints, ``test/metrics.json``
and the plots; a cross-validation run holds one such folder per fold (``fold0``, ...) and an ensemble one
per extra member (``member1``, ...). :class:`Run` is the only place those names are spelled.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml

from ..contract import CLASSES_FILE, KERAS_MODEL
from ..evaluation.metrics import METRICS_FILE
from ..data.imageset import ImageSet
from ..data.splits import Split

SIDES = ("train", "validation", "test")
CONFIG = "config.yaml"



@dataclass(frozen=True)
class Run:
    """A run directory (it need not exist yet): its files by name, and reading and writing them."""

    folder: Path

    def __init__(self, folder: str | Path) -> None:
        object.__setattr__(self, "folder", Path(folder))

    def __str__(self) -> str:
        return str(self.folder)

    # the files
    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG

    @property
    def classes_file(self) -> Path:
        return self.folder / CLASSES_FILE

    @property
    def model_file(self) -> Path:
        return self.folder / KERAS_MODEL

    @property
    def skipped_file(self) -> Path:
        return self.folder / "skipped_files.csv"

    @property
    def calibration_file(self) -> Path:
        """The temperature fitted on the validation side (``train.calibrate``), as JSON."""
        return self.folder / "calibration.json"

    @property
    def history_file(self) -> Path:
        return self.folder / "history.csv"

    @property
    def curves_file(self) -> Path:
        return self.folder / "training_curves.png"

    @property
    def test_folder(self) -> Path:
        """Where the run's own evaluation on its test side goes (``metrics.json`` and the plots)."""
        return self.folder / "test"

    def evaluation_folder(self, data: str | None = None) -> Path:
        """Where ``evaluate`` writes by default: a folder per data set (none: the run's own test side)."""
        return self.folder / (f"evaluation_{Path(data).stem}" if data else "evaluation")

    @property
    def checkpoint_file(self) -> Path:
        """The best weights so far, across the phases."""
        return self.folder / "checkpoints" / "best.weights.h5"

    def phase_weights(self, phase: str) -> Path:
        """The weights a finished phase left (written whole: its presence means the phase is done)."""
        return self.folder / "checkpoints" / f"{phase}.weights.h5"

    def phase_history(self, phase: str) -> Path:
        return self.folder / f"history_{phase}.csv"

    def phase_histories(self) -> list[Path]:
        return sorted(self.folder.glob("history_phase*.csv"))

    def backup_folder(self, phase: str) -> Path:
        """``BackupAndRestore``'s state of a phase, kept until the phase's weights are."""
        return self.folder / "backup" / phase

    def logs_folder(self, phase: str) -> Path:
        return self.folder / "logs" / phase

    def split_file(self, side: str) -> Path:
        return self.folder / f"split_{side}.csv"

    def fold(self, number: int) -> Run:
        return Run(self.folder / f"fold{number}")

    def member(self, number: int) -> Run:
        return Run(self.folder / f"member{number}")

    def members(self) -> list[Run]:
        """The extra ensemble members' runs (``member1``, ...) that have begun."""
        return [Run(p) for p in sorted(self.folder.glob("member*")) if p.is_dir()]

    def nesting(self) -> list[str]:
        """The fold and member folders this run sits in (``fold1``, ``member2``), for progress lines."""
        return [part for part in self.folder.parts[-2:] if part.startswith(("fold", "member"))]

    def folds(self) -> list[Run]:
        """The folds of a cross-validation run that have written their test side."""
        return [Run(p.parent) for p in sorted(self.folder.glob("fold*/split_test.csv"))]

    @property
    def cv_results_file(self) -> Path:
        return self.folder / "cv_results.csv"

    @property
    def cv_summary_file(self) -> Path:
        return self.folder / "cv_summary.json"

    # what it holds
    def has_model(self) -> bool:
        return self.model_file.is_file()

    def has_sides(self, *sides: str) -> bool:
        return all(self.split_file(side).is_file() for side in sides)

    def trained(self) -> bool:
        """Whether training has begun here (a backup, a phase's history or the model)."""
        return any(p.exists() for p in (self.folder / "backup", self.phase_history("phase1"), self.model_file))

    def stored_config(self) -> dict[str, Any]:
        """``config.yaml`` as plain data; empty where the run has none."""
        return (yaml.safe_load(self.config_file.read_text()) or {}) if self.config_file.is_file() else {}

    def test_time_views(self) -> dict[str, bool]:
        """The test-time views the run's own test metrics were measured with (``evaluate`` in its config)."""
        stored = self.stored_config().get("evaluate") or {}
        return {key: bool(stored.get(key, False)) for key in ("flip_tta", "crop_tta")}

    def metrics(self) -> dict[str, Any]:
        """The run's test metrics (``test/metrics.json``)."""
        return json.loads((self.test_folder / METRICS_FILE).read_text())

    def sides(self, classes: Sequence[str], *sides: str) -> ImageSet:
        """The named sides of the run's split as one set; a side without its file is left out."""
        files = [self.split_file(side) for side in sides]
        return ImageSet(pd.concat([pd.read_csv(f) for f in files if f.is_file()], ignore_index=True), tuple(classes))

    def split_rows(self) -> dict[tuple[str, str], str] | None:
        """Each (path, label) of the written split and its side; None where a side's file is missing."""
        if not self.has_sides(*SIDES):
            return None
        return {row: side for side in SIDES
                for row in pd.read_csv(self.split_file(side), usecols=["path", "label"]).itertuples(index=False,
                                                                                                   name=None)}

    # writing
    def write_inputs(self, config: dict[str, Any], classes: Sequence[str], split: Split) -> None:
        """``config.yaml`` (``config`` as plain data), ``classes.json`` and the split."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.classes_file.write_text(json.dumps(list(classes)))
        self.write_split(split)

    def copy_state(self, to: Path) -> None:
        """The run's files but its TensorBoard logs copied into ``to`` (a worker resuming from the chief's state)."""
        shutil.copytree(self.folder, to, dirs_exist_ok=True, ignore=shutil.ignore_patterns("logs"))

    def write_split(self, split: Split) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for side in SIDES:
            getattr(split, side).frame.to_csv(self.split_file(side), index=False)
