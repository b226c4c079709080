"""Valence and arousal trained with the classes (``train.ratings_loss``): the masked loss, and the ``ratings`` output
a CNN (from the image files) and a transfer model (on cached views) carry out of training, served as a fitted
head is."""
from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from imagesentiment.training.config import ConfigError, load_config
from imagesentiment.training.fit import train
from imagesentiment.training.joint import MaskedRatingsError, rating_targets

MEANS = {"negative": 2.0, "neutral": 4.0, "positive": 6.0}


def test_the_ratings_loss_is_the_mean_over_the_rated_photos_alone():
    loss = MaskedRatingsError((1.0, 2.0))
    truth = np.array([[4.0, 3.0], [np.nan, np.nan], [6.0, 5.0]], np.float32)
    predicted = np.array([[5.0, 3.0], [0.0, 0.0], [6.0, 7.0]], np.float32)
    # photo 0: (1 + 0) / 2; photo 2: (0 + (2 / 2)^2) / 2; the unrated photo adds nothing and is not counted
    assert float(loss(truth, predicted)) == pytest.approx(0.5)
    # the sample weights (the classes' balance, the Twitter photos' share) weigh the class loss only
    assert float(loss(truth, predicted, sample_weight=np.array([10.0, 1.0, 0.0]))) == pytest.approx(0.5)
    assert float(MaskedRatingsError()(truth[1:2], predicted[1:2])) == 0.0  # a batch without a rated photo
    again = MaskedRatingsError.from_config(loss.get_config())
    assert again.scale == (1.0, 2.0)


def rated_oasis(folder: Path, synthetic_root: Path) -> Path:
    """An OASIS-like folder of the synthetic images: a valence that follows each image's colour class (the OASIS
    cuts give the class back), an arousal that is noise."""
    rng = np.random.default_rng(0)
    rows = []
    (folder / "images").mkdir(parents=True)
    for i, photo in enumerate(sorted(synthetic_root.rglob("*.png"))):
        shutil.copy(photo, folder / "images" / f"p{i}.jpg")
        valence = np.clip(MEANS[photo.parent.name] + rng.normal(0, 0.3), 1, 7)
        rows.append({"Theme": f"p{i}", "Valence_mean": valence, "Arousal_mean": rng.uniform(1, 7)})
    pd.DataFrame(rows).to_csv(folder / "OASIS.csv")
    return folder


def joint_config(folder: Path, oasis: Path, extra: Path, model: str, train_options: str) -> Path:
    path = folder / "joint.yaml"
    path.write_text(f"data: {{source: {{path: {oasis}, format: oasis}}, extra_training: [{{path: {extra}, "
                    f"weight: 0.5}}]}}\nsplit: {{validation: 0.2, test: 0.2}}\nmodel: {model}\n"
                    f"train: {{{train_options}, batch_size: 16, ratings_loss: 1.0}}\n")
    return path


def test_a_cnn_trained_with_the_ratings_loss_carries_its_ratings_output(tmp_path, synthetic_root, capsys):
    from imagesentiment.export import export_savedmodel
    from imagesentiment.inference import KerasPredictor, SavedModelPredictor

    oasis = rated_oasis(tmp_path / "oasis", synthetic_root)
    config = joint_config(tmp_path, oasis, synthetic_root, "{kind: cnn, input_size: 48, widths: [16, 32], dropout: 0.2}",
                          "epochs: 12, learning_rate: 0.003, patience: 12")
    metrics = train(load_config(config), tmp_path / "run")
    assert "fitted on" not in capsys.readouterr().out  # its own output, no ridge head fitted afterwards
    assert metrics["ratings"]["valence"]["spearman_rho"] > 0.6  # valence learned with the colours
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert {"ratings_loss", "val_ratings_loss", "accuracy", "val_accuracy"} <= set(history.columns)
    assert history["ratings_loss"].iloc[-1] < history["ratings_loss"].iloc[0]
    model = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    paths = pd.read_csv(tmp_path / "run" / "split_test.csv")["path"].tolist()[:8]
    scores = KerasPredictor(model).scores(paths)
    served = SavedModelPredictor(export_savedmodel(model, tmp_path / "served", "joint", list(MEANS)))
    assert served.ratings == ("valence", "arousal")  # exported as a fitted head is
    np.testing.assert_allclose(served.scores(paths)["valence"], scores["valence"], atol=2e-3)


def test_a_transfer_model_trains_its_ratings_on_cached_views(tmp_path, synthetic_root):
    from test_backbones import randomized, to_npz

    from imagesentiment.models import efficientnet_lite

    weights = to_npz(randomized(efficientnet_lite.build("lite0", input_shape=(32, 32, 3))), "lite0",
                     tmp_path / "lite0.npz")
    oasis = rated_oasis(tmp_path / "oasis", synthetic_root)
    config = joint_config(tmp_path, oasis, synthetic_root, f"{{kind: transfer, backbone: efficientnet_lite0, "
                          f"weights: {weights}, input_size: 64, dropout: 0.2}}",
                          "epochs: 2, learning_rate: 0.003, cached_views: 2, "
                          "fine_tune: {epochs: 1, layers: 20, learning_rate: 0.001}")
    train(load_config(config), tmp_path / "run")
    model = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    kernel, bias = model.get_layer("ratings").get_weights()
    assert np.abs(kernel).sum() > 0, "the ratings output trained (it starts at a zero kernel)"
    assert {"ratings_loss", "val_ratings_loss"} <= set(pd.read_csv(tmp_path / "run" / "history.csv").columns)


def test_unrated_photos_have_no_targets_and_the_weight_is_checked(tmp_path, synthetic_root):
    from imagesentiment.data import from_folder

    assert np.isnan(rating_targets(from_folder(synthetic_root))).all()
    oasis = rated_oasis(tmp_path / "oasis", synthetic_root)
    path = joint_config(tmp_path, oasis, synthetic_root, "{kind: cnn}", "epochs: 1")
    path.write_text(path.read_text().replace("ratings_loss: 1.0", "ratings_loss: -1"))
    with pytest.raises(ConfigError, match="train.ratings_loss: expected a weight >= 0"):
        load_config(path)
    path.write_text(path.read_text().replace("ratings_loss: -1", "ratings_loss: 1, ensemble: 2"))
    with pytest.raises(ConfigError, match="train.ratings_loss: 0 with train.ensemble above 1"):
        load_config(path)
