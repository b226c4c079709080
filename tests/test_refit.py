"""The refit: the final model trained on every photo for the epochs, and with the temperature, that an earlier
run's validation sides chose."""
from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from imagesentiment.cli import main
from imagesentiment.data import from_folder
from imagesentiment.training.config import load_config
from imagesentiment.training.cv import cross_validate
from imagesentiment.training.fit import TrainingError
from imagesentiment.training.refit import RefitError, choices, refit_config
from imagesentiment.training.run import Run

from test_train import write_config


def history(folder, val_losses):
    folder.mkdir(parents=True, exist_ok=True)
    return pd.DataFrame({"epoch": range(len(val_losses)), "loss": 1.0, "val_loss": val_losses})


def test_the_chosen_epochs_are_the_median_best_over_folds_and_members(tmp_path):
    best = {"fold0": (3, 2), "fold0/member1": (5, 1), "fold1": (4, 4)}  # (phase 1, phase 2) best epochs
    for name, (first, second) in best.items():
        folder = tmp_path / name
        history(folder, [1.0 - 0.1 * e if e < first else 2.0 for e in range(6)]).to_csv(
            folder / "history_phase1.csv", index=False)
        history(folder, [1.0 - 0.1 * e if e < second else 2.0 for e in range(4)]).to_csv(
            folder / "history_phase2.csv", index=False)
        pd.DataFrame({"path": ["a"]}).to_csv(folder / "split_test.csv", index=False)  # what marks a fold
    (tmp_path / "fold1" / "calibration.json").write_text(json.dumps({"temperature": 1.5}))
    chosen = choices(Run(tmp_path))
    assert (chosen.epochs, chosen.fine_tune_epochs, chosen.temperature, chosen.models) == (4, 2, 1.5, 3)
    assert "every photo trains for 4 + 2 epochs, temperature 1.5" in str(chosen)
    with pytest.raises(RefitError, match="no trained model with a validation side"):
        choices(Run(tmp_path / "fold0" / "test"))


def test_a_refit_trains_every_photo_for_the_chosen_epochs_with_the_chosen_temperature(
        tmp_path, synthetic_root, capsys):
    config = write_config(tmp_path, synthetic_root, split="split: {validation: 0.4, test: 0.2}",
                          train="train: {epochs: 6, batch_size: 16, learning_rate: 0.003, patience: 2}")
    first = tmp_path / "first"
    assert main(["train", str(config), "--out", str(first)]) == 0
    chosen = choices(Run(first))
    assert chosen.temperature == json.loads((first / "calibration.json").read_text())["temperature"]  # 36 judged it
    refit = tmp_path / "refit"
    assert main(["train", str(config), "--out", str(refit), "--refit", str(first)]) == 0
    said = capsys.readouterr().out
    assert str(chosen) in said and "refit: all 90 photos train, none held back" in said
    sides = {side: pd.read_csv(refit / f"split_{side}.csv") for side in ("train", "validation", "test")}
    assert len(sides["train"]) == len(from_folder(synthetic_root)) == 90
    assert sides["validation"].empty and sides["test"].empty
    assert len(pd.read_csv(refit / "history.csv")) == chosen.epochs  # no early stop: every chosen epoch ran
    assert not (refit / "checkpoints" / "best.weights.h5").exists()  # the last epoch's weights, not a "best"
    stored = load_config(refit / "config.yaml").train
    assert (stored.refit, stored.epochs, stored.temperature) == (True, chosen.epochs, chosen.temperature)
    model = keras.models.load_model(refit / "model.keras", safe_mode=True)
    trained = keras.models.clone_model(model)
    trained.load_weights(refit / "checkpoints" / "phase1.weights.h5")  # the last epoch's, before the temperature
    for kept, last in zip(model.get_layer("logits").get_weights(), trained.get_layer("logits").get_weights()):
        np.testing.assert_allclose(kept, last / chosen.temperature, rtol=1e-6)

def test_a_refit_is_refused_where_the_earlier_run_cannot_choose_for_it(tmp_path, synthetic_root, capsys):
    config = write_config(tmp_path, synthetic_root)
    (tmp_path / "other").mkdir()
    other = write_config(tmp_path / "other", synthetic_root, model="model: {kind: cnn, input_size: 32, widths: [8]}")
    nowhere = tmp_path / "nothing-trained"
    nowhere.mkdir()
    assert main(["train", str(config), "--out", str(tmp_path / "r"), "--refit", str(nowhere)]) == 2
    assert "nothing-trained: not a run directory (no config.yaml)" in capsys.readouterr().err
    first = tmp_path / "first"
    assert main(["train", str(other), "--out", str(first), "--epochs", "1"]) == 0
    assert main(["train", str(config), "--out", str(tmp_path / "r"), "--refit", str(first)]) == 2
    assert "trained with other model settings" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written
    with pytest.raises(TrainingError, match="cross-validation judges the recipe first"):
        cross_validate(load_config(config, {"train.refit": True}), tmp_path / "cv")
    with pytest.raises(RefitError, match="not a run directory"):
        refit_config(load_config(config), tmp_path / "cv")
