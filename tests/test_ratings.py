"""Valence and arousal: ratings read with their photos, a ratings head fitted on a trained model, and the two
scores carried by every model form, the predictions table and the evaluation."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imagesentiment.data import DataError, ImageSet, oasis
from imagesentiment.evaluation.evaluate import evaluate_model
from imagesentiment.evaluation.metrics import rating_metrics, summary
from imagesentiment.explain import explain_files
from imagesentiment.inference import KerasPredictor, SavedModelPredictor, TFLitePredictor, load_keras, to_pixels
from imagesentiment.scoring.batch import predict_files
from imagesentiment.training.ratings import add_ratings, photo_folds

MEANS = {"negative": 2.0, "neutral": 4.0, "positive": 6.0}
CLASSES = list(MEANS)


def rated_set(images: ImageSet, seed: int = 0) -> ImageSet:
    """The synthetic images with a valence that follows their class and an arousal of noise, both on 1-7."""
    rng = np.random.default_rng(seed)
    valence = images.frame["label"].map(MEANS).to_numpy() + rng.normal(0, 0.3, len(images))
    return ImageSet(images.frame.assign(valence=valence, arousal=rng.uniform(1, 7, len(images))), images.classes)


@pytest.fixture(scope="module")
def rated_model(trained_cnn):
    model, images = trained_cnn
    rated, head = add_ratings(model, rated_set(images))
    return rated, head, rated_set(images)


def test_a_fitted_head_ranks_the_photos_by_their_valence(rated_model):
    model, head, images = rated_model
    assert head.photos == len(images) and head.kernel.shape == (model.get_layer("dropout").input.shape[-1], 2)
    table = KerasPredictor(model).predict(images.frame["path"].tolist())
    assert list(table.columns) == ["label", "confidence", "negative", "neutral", "positive", "valence", "arousal"]
    judged = rating_metrics(images.frame["valence"], table["valence"])
    assert judged["spearman_rho"] > 0.8 and judged["mae"] < 0.8
    assert judged["intervals_95"]["spearman_rho"][0] <= judged["spearman_rho"] <= judged["intervals_95"]["spearman_rho"][1]
    # the classes are the model's as before: the head only adds outputs
    assert np.allclose(table[["negative", "neutral", "positive"]], KerasPredictor(model).probabilities(
        images.frame["path"].tolist()), atol=1e-6)


def test_a_photo_and_its_mirror_stay_on_one_side_of_the_folds():
    for train, test in photo_folds(photos=10, views=2, folds=5):
        assert set(train % 10).isdisjoint(test % 10) and len(test) == 4


def test_every_model_form_and_the_table_carry_the_ratings(rated_model, tmp_path):
    from imagesentiment.export import convert, export_savedmodel

    model, _, images = rated_model
    paths = images.frame["path"].tolist()[:12]
    keras_scores = KerasPredictor(model).scores(paths)
    version = export_savedmodel(model, tmp_path / "served", "rated", CLASSES)
    saved = SavedModelPredictor(version)
    lite = TFLitePredictor(convert(model, "float32", class_names=CLASSES))
    assert saved.ratings == lite.ratings == ("valence", "arousal")
    for form in (saved, lite):
        scores = form.scores(paths)
        for name in ("valence", "arousal"):
            np.testing.assert_allclose(scores[name], keras_scores[name], atol=2e-3)
    # the int8 file (uint8 pixels in) gives them too, close to the float model's
    # (with the layer checks export makes: the explain signature's gradient of a rating once failed them)
    int8 = TFLitePredictor(convert(model, "int8", to_pixels(paths, (48, 48)), CLASSES))
    assert int8.ratings == ("valence", "arousal")
    assert np.corrcoef(int8.scores(paths)["valence"], keras_scores["valence"])[0, 1] > 0.95
    for form in (KerasPredictor(model), saved, lite):  # the heat maps' one pass gives the ratings too
        explained = form.explainer()(to_pixels(paths, (48, 48)))
        np.testing.assert_allclose(explained["valence"], keras_scores["valence"], atol=2e-3)
    table = predict_files(saved, paths, tmp_path / "scores.csv", progress=False)
    assert list(table.columns[6:8]) == ["valence", "arousal"]
    np.testing.assert_allclose(table["valence"], keras_scores["valence"], atol=1e-3)
    rebuilt, _ = load_keras(version)  # what explain works on: a batch in, no warning of a structure mismatch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explained = explain_files(rebuilt, paths[:3], tmp_path / "maps", CLASSES, progress=False)
    np.testing.assert_allclose(explained["valence"], keras_scores["valence"][:3], atol=2e-3)


def test_a_face_row_carries_no_rating_of_its_photo(rated_model, trained_cnn, tmp_path):
    from imagesentiment.faces.scorer import face_scorer

    model, _, _ = rated_model
    photo = KerasPredictor(model)
    astronaut = str(Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg")
    table = predict_files(photo, [astronaut], tmp_path / "scores.csv", progress=False,
                          faces=face_scorer(photo, KerasPredictor(trained_cnn[0])))
    face = table["face"].notna()
    assert face.sum() == 1 and table.loc[~face, "valence"].notna().all()  # the photo's own row has its valence
    assert table.loc[face, ["valence", "arousal"]].isna().all(axis=None)  # the faces model gives none
    assert (table.loc[face, "path"] == astronaut).all()


def test_a_model_without_ratings_writes_no_rating_columns(trained_cnn, tmp_path):
    model, images = trained_cnn
    table = predict_files(KerasPredictor(model), images.frame["path"].tolist()[:3], tmp_path / "s.csv", progress=False)
    assert "valence" not in table and KerasPredictor(model).ratings == ()


def test_the_evaluation_judges_the_ratings_on_the_rated_photos(rated_model, tmp_path):
    model, _, images = rated_model
    unrated = images.frame["path"].index[:5]  # a Twitter photo, say: no rating
    images = ImageSet(images.frame.assign(valence=images.frame["valence"].mask(images.frame.index.isin(unrated))),
                      images.classes)
    metrics = evaluate_model(model, images, tmp_path)
    assert metrics["ratings"]["valence"]["photos"] == len(images) - 5 and metrics["ratings"]["arousal"]["photos"] == len(images)
    assert metrics["ratings"]["valence"]["spearman_rho"] > 0.8
    assert "valence: Spearman rho" in summary(metrics)
    assert {"valence", "arousal"} <= set(pd.read_csv(tmp_path / "predictions.csv").columns)


def test_too_few_rated_photos_are_refused(trained_cnn):
    model, images = trained_cnn
    with pytest.raises(ValueError, match="carry no valence and arousal"):
        add_ratings(model, images)
    few = rated_set(images)
    few = ImageSet(few.frame.assign(valence=np.where(few.frame.index < 5, few.frame["valence"], np.nan)), few.classes)
    with pytest.raises(ValueError, match="5 rated photos: too few"):
        add_ratings(model, few)


def oasis_copy(tmp_path, synthetic_root, rows: dict[str, list]) -> str:
    """An OASIS-like folder: OASIS.csv with ``rows`` (a column per key) and a photo per Theme."""
    (tmp_path / "images").mkdir()
    for theme, photo in zip(rows["Theme"], sorted(synthetic_root.rglob("*.png"))):
        shutil.copy(photo, tmp_path / "images" / f"{theme}.jpg")
    pd.DataFrame(rows).to_csv(tmp_path / "OASIS.csv")
    return str(tmp_path)


def test_oasis_photos_carry_their_ratings(tmp_path, synthetic_root):
    root = oasis_copy(tmp_path, synthetic_root, {"Theme": ["a", "b", "c"], "Valence_mean": [1.5, 4.0, 6.5],
                                                 "Arousal_mean": [3.0, 2.0, 5.0]})
    frame = oasis(root).frame.set_index("Theme")
    assert frame.loc["a", "label"] == "negative" and frame.loc["c", "valence"] == 6.5
    assert frame.loc["b", "arousal"] == 2.0


@pytest.mark.parametrize("valence, arousal, where", [
    (["4", "x", "5"], ["3", "3", "3"], "line 3, column Valence_mean: 'x' is not a rating from 1 to 7"),
    (["4", "4", "5"], ["3", "", "3"], "line 3, column Arousal_mean: an empty cell is not a rating from 1 to 7"),
    (["4", "8.5", "5"], ["3", "3", "0"], "line 3, column Valence_mean: '8.5' is not a rating"),
])
def test_a_bad_rating_names_the_file_the_line_and_the_column(tmp_path, synthetic_root, valence, arousal, where):
    root = oasis_copy(tmp_path, synthetic_root, {"Theme": ["a", "b", "c"], "Valence_mean": valence,
                                                 "Arousal_mean": arousal})
    with pytest.raises(DataError, match="OASIS.csv, " + where.replace("(", r"\(")):
        oasis(root)


def test_a_missing_rating_column_lists_the_columns_there(tmp_path, synthetic_root):
    root = oasis_copy(tmp_path, synthetic_root, {"Theme": ["a"], "Valence_mean": [4.0]})
    with pytest.raises(DataError, match=r"columns \['Arousal_mean'\] not found; the file has"):
        oasis(root)


def test_the_report_shows_the_ratings_and_keeps_them_out_of_the_classes(rated_model, tmp_path):
    from imagesentiment.report import build_report

    model, _, images = rated_model
    paths = images.frame["path"].tolist()[:6]
    table = pd.DataFrame({"path": paths}).join(KerasPredictor(model).predict(paths))
    page = build_report(table, tmp_path / "report.html").read_text()
    assert '<option value="positive">' in page and '<option value="valence">' not in page
    assert page.count('<div class="ratings">valence ') == 6


def test_the_report_sorts_by_valence_and_maps_every_photo_to_its_card(rated_model, tmp_path):
    """An analyst ranks photos by how pleasant they are and sees them on the valence-arousal plane."""
    import re

    from imagesentiment.report import build_report

    model, _, images = rated_model
    paths = images.frame["path"].tolist()[:20]
    table = pd.DataFrame({"path": paths}).join(KerasPredictor(model).predict(paths))
    page = build_report(table, tmp_path / "report.html", gallery=8).read_text()
    assert '<option value="valence-desc">' in page and '<option value="arousal-asc">' in page
    cards = dict(re.findall(r'<div class="card" data-order="(\d+)".*? data-valence="([\d.]+)"', page))
    assert len(cards) == 8
    dots = re.findall(r'<circle cx="([\d.]+)" cy="[\d.]+" r="4.5" fill="#\w+" fill-opacity="0.75"( data-card="\d+")?',
                      page)
    assert len(dots) == 20 and sum(bool(card) for _, card in dots) == 8  # every photo a dot, 8 of them linked
    linked = {card.split('"')[1]: float(x) for x, card in dots if card}
    assert linked.keys() == cards.keys()
    order = sorted(cards, key=lambda c: float(cards[c]))  # further right is more pleasant
    assert [linked[c] for c in order] == sorted(linked.values())
    without = build_report(table.drop(columns=["valence", "arousal"]), tmp_path / "plain.html").read_text()
    assert '<svg id="ratings-map"' not in without and "valence-desc" not in without


def test_a_video_gets_a_valence_curve_raw_and_smoothed(rated_model, tmp_path):
    from test_video import make_video

    from imagesentiment.video import score_video

    model, _, _ = rated_model
    clip = make_video(tmp_path / "clip.mp4", ["negative"] * 10 + ["positive"] * 10)
    result = score_video(clip, KerasPredictor(model), tmp_path / "out", smoothing=3, progress=False)
    table = result.table
    assert {"valence", "arousal", "smoothed_valence", "smoothed_arousal"} <= set(table.columns)
    assert table["valence"].iloc[-3:].mean() > table["valence"].iloc[:3].mean() + 1  # the clip turns pleasant
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 0


def test_a_heat_map_explains_the_valence_as_it_explains_a_class(rated_model):
    """What in the photo raises its predicted valence: the same Grad-CAM from tf-keras-vis and from the one
    pass, and not the class's map."""
    from imagesentiment.explain import GradCamPredictor, explain, load_images

    model, _, images = rated_model
    batch, _ = load_images(images.frame["path"].tolist()[:4], model.input_shape[1:3])
    valence = explain(model, batch, "gradcam", target="valence")
    onepass = GradCamPredictor(model)(batch, np.full(4, 3))  # three classes, then valence
    np.testing.assert_allclose(onepass["heatmap"].numpy(), valence, atol=2e-3)
    assert not np.allclose(valence, explain(model, batch, "gradcam", target="arousal"), atol=1e-2)
    with pytest.raises(ValueError, match="ratings \\['valence', 'arousal'\\]"):
        explain(model, batch, "gradcam", target="pleasure")


@pytest.mark.parametrize("ratings", [True, False])
def test_a_run_on_rated_photos_gives_valence_and_arousal(tmp_path, synthetic_root, ratings):
    """Training on OASIS-like photos threw their ratings away: the run's model now answers them, judged on
    its test side."""
    from imagesentiment.training import load_config, train
    from imagesentiment.inference import load_keras

    photos = sorted(synthetic_root.rglob("*.png"))
    means = [MEANS[p.parent.name] for p in photos]
    root = oasis_copy(tmp_path, synthetic_root, {"Theme": [f"p{i}" for i in range(len(photos))],
                                                 "Valence_mean": means,
                                                 "Arousal_mean": np.random.default_rng(0).uniform(1, 7, len(photos))})
    config = tmp_path / "rated.yaml"
    config.write_text(f"data: {{source: {{path: {root}, format: oasis}}}}\nsplit: {{validation: 0.2, test: 0.2}}\n"
                      f"model: {{kind: cnn, input_size: 32, widths: [8, 16]}}\n"
                      f"train: {{epochs: 2, batch_size: 16, ratings: {str(ratings).lower()}}}\n")
    metrics = train(load_config(config), tmp_path / "run")
    model, _ = load_keras(tmp_path / "run")
    assert (len(model.outputs) == 2) == ratings and bool(metrics.get("ratings")) == ratings
    if ratings:  # judged on every test photo, and in each fold of a cross-validation
        assert metrics["ratings"]["valence"]["photos"] == len(pd.read_csv(tmp_path / "run" / "split_test.csv"))
        from imagesentiment.training import cross_validate

        folds = cross_validate(load_config(config, {"split.folds": 2, "train.epochs": 1}), tmp_path / "cv")
        assert folds[["valence_rho", "arousal_rho", "valence_mae", "arousal_mae"]].notna().all(axis=None)
        summary = json.loads((tmp_path / "cv" / "cv_summary.json").read_text())
        assert summary["valence_mae_mean"] == pytest.approx(folds["valence_mae"].mean())

