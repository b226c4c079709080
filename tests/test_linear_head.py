"""The linear class head (``train.head: linear``): logistic regression on the frozen model's pooled features,
fitted to convergence and written into the ``logits`` layer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imagesentiment.data import ImageSet, from_folder
from imagesentiment.evaluation.metrics import softmax
from imagesentiment.models.build import build_cnn
from imagesentiment.training.config import load_config
from imagesentiment.training.fit import train
from imagesentiment.training.linear_head import fit_linear_head
from imagesentiment.training.ratings import features
from imagesentiment.training.refit import choices
from imagesentiment.training.run import Run

from conftest import SHARED_WEIGHTS
from test_train import random_backbone, write_config


@pytest.mark.parametrize("classes", [("negative", "neutral", "positive"), ("negative", "positive")])
def test_the_head_is_the_weighted_logistic_regression_written_into_the_logits_layer(tmp_path, synthetic_root,
                                                                                   classes):
    from sklearn.linear_model import LogisticRegression

    frame = from_folder(synthetic_root).frame
    images = ImageSet(frame[frame["label"].isin(classes)].reset_index(drop=True), classes)
    model = build_cnn(len(classes), (32, 32, 3), [8, 16])  # untrained: its random features will do
    weights = np.where(images.label_ids.to_numpy() == 0, 2.0, 1.0)  # the first class counts twice
    config = load_config(write_config(tmp_path, synthetic_root))
    head = fit_linear_head(model, images, weights, config)
    assert (head.photos, head.views) == (len(images), 2) and "C = " in str(head)
    x = features(model, images)  # each photo, then each mirror
    mean, scale = x.mean(axis=0), np.where(x.std(axis=0) == 0, 1.0, x.std(axis=0))
    reference = LogisticRegression(C=head.c, max_iter=3000).fit(
        (x - mean) / scale, np.tile(images.label_ids.to_numpy(), 2), sample_weight=np.tile(weights, 2))
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(softmax(x @ kernel + bias), reference.predict_proba((x - mean) / scale),
                               atol=1e-2)  # both fitted to lbfgs's tolerance


def test_a_run_with_a_linear_head_fine_tunes_from_it(tmp_path, synthetic_root, capsys):
    weights = SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else random_backbone(tmp_path)
    config = write_config(
        tmp_path, synthetic_root, model=f"model: {{kind: transfer, input_size: 64, weights: {weights}, dropout: 0.2}}",
        train="train: {head: linear, epochs: 5, cached_views: 2, batch_size: 16, "
              "fine_tune: {epochs: 2, layers: 10, learning_rate: 0.0001}}")
    run = tmp_path / "run"
    metrics = train(load_config(config), run)
    assert "linear head: logistic regression on 54 training photos in 2 views each" in capsys.readouterr().out
    assert not (run / "history_phase1.csv").exists()  # no model.fit for the head: its 5 epochs are not run
    assert len(pd.read_csv(run / "history.csv")) == 2
    if weights == SHARED_WEIGHTS:  # ImageNet features separate the generated classes; random ones need not
        assert metrics["accuracy"] > 0.8
    assert "a linear head and" in str(choices(Run(run)))


def test_a_linear_head_is_refused_for_a_model_that_learns_its_features_in_its_first_phase(tmp_path, synthetic_root):
    from imagesentiment.training.config import ConfigError

    with pytest.raises(ConfigError, match="train.head: .*linear for a transfer model only"):
        load_config(write_config(tmp_path, synthetic_root), {"train.head": "linear"})  # a cnn
