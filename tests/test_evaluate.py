import itertools
import json

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from imagesentiment.data import DataError, ImageSet, from_folder
from imagesentiment.evaluation.evaluate import evaluate_model, predict_probabilities
from imagesentiment.models.views import CROP_KEEP
from imagesentiment.evaluation.metrics import calibration_metrics, classification_metrics, summary
from imagesentiment.inference import load_keras
from imagesentiment.table.formats import read_predictions

CLASSES = ("negative", "neutral", "positive")


def _from_confusion(matrix):
    """Label pairs that produce exactly the given confusion matrix."""
    pairs = [(t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) for _ in range(n)]
    return np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])


def test_metrics_of_a_known_confusion_matrix():
    matrix = [[8, 1, 1], [2, 6, 2], [0, 3, 7]]
    y_true, y_pred = _from_confusion(matrix)
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["confusion_matrix"] == matrix
    assert m["accuracy"] == pytest.approx(21 / 30)
    assert m["per_class"]["negative"]["precision"] == pytest.approx(8 / 10)
    assert m["per_class"]["neutral"]["recall"] == pytest.approx(6 / 10)
    assert m["per_class"]["positive"]["precision"] == pytest.approx(7 / 10)
    neutral_f1 = 2 * (6 / 10) * (6 / 10) / (6 / 10 + 6 / 10)
    assert m["per_class"]["neutral"]["f1"] == pytest.approx(neutral_f1)
    assert m["macro"]["f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert not m["single_class"]


def test_bootstrap_intervals_cover_the_truth_and_widen_for_grouped_images():
    """On a test set of 300, accuracy is known to about ±5 points; the 95 % interval says so. Frames of
    one clip are not independent: resampling clips gives a wider (honest) interval."""
    from imagesentiment.evaluation.metrics import bootstrap_intervals

    matrix = [[80, 10, 10], [20, 60, 20], [0, 30, 70]]
    y_true, y_pred = _from_confusion(matrix)
    m = classification_metrics(y_true, y_pred, CLASSES)
    (low, high), (f1_low, f1_high) = m["intervals_95"]["accuracy"], m["intervals_95"]["macro_f1"]
    half = 1.96 * np.sqrt(0.7 * 0.3 / 300)  # the normal approximation of a binomial share
    assert low < 0.7 < high and (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert f1_low < m["macro"]["f1"] < f1_high
    assert "accuracy 0.7000 (0." in summary(m) and "95 % interval" in summary(m)
    shuffled = np.random.default_rng(1).permutation(len(y_true))  # a report sorts its table, say
    assert classification_metrics(y_true[shuffled], y_pred[shuffled], CLASSES)["intervals_95"] == m["intervals_95"]
    perfect = classification_metrics(np.array([0, 1, 2, 0, 1, 2]), np.array([0, 1, 2, 0, 1, 2]), CLASSES)
    assert perfect["intervals_95"]["accuracy"][0] == pytest.approx(0.61, abs=0.01)  # not [1, 1] from 6 of 6
    # every answer right: macro-F1 is 1 in every resample; a resample that drew no image of one class once
    # charged that class 0 (a report of 6 right answers showed 0.500-1.000)
    assert perfect["intervals_95"]["macro_f1"] == [1.0, 1.0]
    clips = np.repeat(np.arange(30), 10)  # 30 clips of 10 frames, each clip all right or all wrong
    right = np.repeat(np.arange(30) < 21, 10)
    grouped = bootstrap_intervals(right.astype(int), np.ones(300, int), [0, 1], groups=clips)["accuracy"]
    alone = bootstrap_intervals(right.astype(int), np.ones(300, int), [0, 1])["accuracy"]
    assert grouped[1] - grouped[0] > 2.5 * (alone[1] - alone[0])  # sqrt(10) in theory


def test_averages_leave_out_a_class_that_is_predicted_but_never_labelled():
    """A 3-class model judged on photos labelled only positive or negative (the Twitter set)."""
    y_true, y_pred = np.array([0, 0, 0, 2, 2, 2]), np.array([0, 1, 0, 2, 2, 1])
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["per_class"]["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["averaged_over"] == ["negative", "positive"]
    assert m["macro"]["recall"] == pytest.approx(2 / 3)  # (2/3 + 2/3) / 2, not (2/3 + 0 + 2/3) / 3
    assert m["macro"]["f1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 2], average="macro"))
    assert m["intervals_95"]["macro_f1"][0] <= m["macro"]["f1"] <= m["intervals_95"]["macro_f1"][1]
    assert "neutral: predicted, no image labelled so" in summary(m)


def test_absent_classes_are_not_scored_and_collapse_is_flagged():
    y_true = np.array([0, 0, 2, 2, 2])
    m = classification_metrics(y_true, np.array([2, 2, 2, 2, 2]), CLASSES)
    assert m["classes"] == ["negative", "positive"]
    assert m["single_class"] and "single class (positive)" in summary(m)


def test_evaluate_model_writes_its_files(trained_cnn, tmp_path):
    model, images = trained_cnn
    metrics = evaluate_model(model, images, tmp_path, flip_tta=True)
    assert metrics["accuracy"] > 0.9
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    for name in ("confusion_matrix.png", "confusion_matrix.csv", "predictions.csv", "curves.png", "reliability.png"):
        assert (tmp_path / name).stat().st_size > 0
    probabilities = predict_probabilities(model, images, flip_tta=True)
    from sklearn.metrics import roc_auc_score  # the multi-class one-vs-rest path, computed independently
    ovr = roc_auc_score(images.label_ids, probabilities, multi_class="ovr", average="macro")
    assert metrics["ranking"]["macro"]["roc_auc"] == pytest.approx(ovr) and ovr > 0.95
    assert "ROC AUC" in summary(metrics) and "expected calibration error" in summary(metrics)
    assert metrics["calibration"] == calibration_metrics(images.label_ids.to_numpy(), probabilities)


def test_calibration_error_and_brier_score_of_known_answers():
    """An analyst reads 0.8 as right 8 times in 10: the error says how far a model is from that."""
    y = np.array([0] * 10 + [1] * 10)
    answers = np.array([0] * 8 + [1] * 2 + [1] * 8 + [0] * 2)  # 8 of each class's 10 right
    right_as_often_as_sure = np.where(np.eye(2)[answers] == 1, 0.8, 0.2)  # every answer says 0.8
    calibrated = calibration_metrics(y, np.c_[right_as_often_as_sure, np.zeros(20)])
    assert calibrated["ece"] == pytest.approx(0.0, abs=1e-9)
    assert calibrated["brier"] == pytest.approx(0.8 * (0.2 ** 2 * 2) + 0.2 * (0.8 ** 2 * 2))
    overconfident = calibration_metrics(y, np.c_[np.where(right_as_often_as_sure > 0.5, 0.99, 0.01), np.zeros(20)])
    assert overconfident["ece"] == pytest.approx(0.99 - 0.8)  # sure at 0.99, right 8 times in 10
    assert overconfident["bins"]["count"] == [20] and overconfident["bins"]["accuracy"] == [pytest.approx(0.8)]
    perfect = calibration_metrics(y, np.eye(3)[y])
    assert perfect["ece"] == 0 and perfect["brier"] == 0


def test_ranking_leaves_out_a_class_without_images_on_both_sides():
    from imagesentiment.evaluation.metrics import ranking_metrics

    y_true = np.array([0, 0, 2, 2])  # no neutral image: its AUC is undefined, not 0 or NaN
    probabilities = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    ranking = ranking_metrics(y_true, probabilities, CLASSES)
    assert set(ranking["per_class"]) == {"negative", "positive"}
    assert ranking["per_class"]["negative"]["roc_auc"] == 1.0 and ranking["macro"]["roc_auc"] == 1.0


def test_the_command_line_matches_a_data_set_to_the_models_classes_by_name(trained_cnn, synthetic_root,
                                                                           tmp_path, capsys):
    """A folder's classes come sorted (glad, meh, sad); the model's outputs are sad, meh, glad."""
    from imagesentiment.cli import main

    model, images = trained_cnn
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "classes.json").write_text(json.dumps(["sad", "meh", "glad"]))
    for name, source in (("sad", "negative"), ("meh", "neutral"), ("glad", "positive"), ("angry", "negative")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for path in (synthetic_root / source).glob("*.png"):
            (tmp_path / "data" / name / path.name).write_bytes(path.read_bytes())
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "e")]) == 2
    refusal = f"{tmp_path / 'data'}: labels ['angry'] are not among the classes ['sad', 'meh', 'glad']"
    assert refusal in capsys.readouterr().err
    (tmp_path / "data" / "angry").rename(tmp_path / "angry")
    (tmp_path / "data" / "sad" / "scan.tif").write_bytes(b"II*\x00")
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data")]) == 0
    assert "1 photos left out, in formats not read (1 .tif)" in capsys.readouterr().out  # said, none skipped
    assert not (run / "evaluation").exists(), "the run's own test evaluation is not overwritten by another set's"
    metrics = json.loads((run / "evaluation_data" / "metrics.json").read_text())
    assert metrics["classes"] == ["sad", "meh", "glad"] and metrics["accuracy"] > 0.9  # was 1/3: sad and glad swapped
    assert metrics["data"] == str(tmp_path / "data")
    table = read_predictions(run / "evaluation_data" / "predictions.csv")  # `report` shows an evaluation too
    assert (table["label"] == table["true_label"]).mean() == pytest.approx(metrics["accuracy"])
    (tmp_path / "another" / "data" / "sad").mkdir(parents=True)  # a data set of the same name, elsewhere
    (tmp_path / "another" / "data" / "sad" / "a.png").write_bytes((tmp_path / "data" / "sad" / "0000.png").read_bytes())
    assert main(["evaluate", str(run), "--data", str(tmp_path / "another" / "data")]) == 2
    assert f"evaluation_data holds the evaluation on {tmp_path / 'data'}; give --out" in capsys.readouterr().err
    assert json.loads((run / "evaluation_data" / "metrics.json").read_text()) == metrics
    # the same data seen with other views replaced the one-view evaluation without a word
    assert main(["evaluate", str(run), "--data", str(tmp_path / "data"), "--flip-tta"]) == 2
    assert "evaluation_data holds the evaluation with --no-flip-tta --no-crop-tta; give --out for the one with " \
        "--flip-tta --no-crop-tta" in capsys.readouterr().err
    assert json.loads((run / "evaluation_data" / "metrics.json").read_text()) == metrics
    # the Python API matches by name too: it scored a folder's sorted classes against the outputs by position
    carried, stored = load_keras(run)
    assert stored == ["sad", "meh", "glad"] and carried.class_names == ("sad", "meh", "glad")
    assert evaluate_model(carried, from_folder(tmp_path / "data"))["accuracy"] == pytest.approx(metrics["accuracy"])
    two = ImageSet(images.frame[images.frame.label != "neutral"], ("positive", "negative"))  # a class fewer, reordered
    assert evaluate_model(model, two)["accuracy"] > 0.9
    with pytest.raises(DataError, match=r"labels \['glad', 'meh', 'sad'\] are not among the classes "
                       r"\['negative', 'neutral', 'positive'\]; this Keras model carries no class names: pass classes="):
        evaluate_model(model, from_folder(tmp_path / "data"))
    assert evaluate_model(model, from_folder(tmp_path / "data"), classes=["sad", "meh", "glad"])["accuracy"] > 0.9


def test_evaluating_a_run_uses_its_own_test_time_views_unless_told_otherwise(trained_cnn, tmp_path, capsys):
    from imagesentiment.cli import main

    model, images = trained_cnn
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.yaml").write_text("evaluate: {flip_tta: true, crop_tta: false}\n")
    images.frame.to_csv(run / "split_test.csv", index=False)
    expected = {flip: predict_probabilities(model, images, flip_tta=flip) for flip in (True, False)}
    assert not np.allclose(expected[True], expected[False], atol=1e-4)
    for options, flip in (([], True), (["--no-flip-tta"], False)):
        out = tmp_path / f"evaluation_{flip}"
        assert main(["evaluate", str(run), "--out", str(out), *options]) == 0
        np.testing.assert_allclose(pd.read_csv(out / "predictions.csv")[list(CLASSES)], expected[flip], atol=1e-5)
        assert json.loads((out / "metrics.json").read_text())["test_time_views"] == {"flip_tta": flip,
                                                                                       "crop_tta": False}
    assert "averaged over 2 test-time views per image" in capsys.readouterr().out
    # a file exported from the run, judged on the run's test side, gets the run's views: it was one view
    # against the run's two, and the int8 file scored above the model it came from
    model.save(tmp_path / "copy.keras")
    assert main(["evaluate", str(tmp_path / "copy.keras"), "--data", str(run), "--out", str(tmp_path / "e")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "e" / "predictions.csv")[list(CLASSES)], expected[True], atol=1e-5)
    assert main(["evaluate", str(run), "-o", "split=test"]) == 2  # a source option, but no --data to take it
    assert "--option applies only with --data" in capsys.readouterr().err


def test_test_time_views_average_the_crops_and_mirrors(tmp_path):
    """A photo red on its left 30 %, and a model whose output is the mean colour of the left half of
    what it sees: each view's red share follows from its box (the whole photo or a crop from x1 of
    width CROP_KEEP, as is or mirrored), so the average over the views is known."""
    pixels = np.zeros((64, 160, 3), np.uint8)
    pixels[:, :48, 0] = 255
    Image.fromarray(pixels).save(tmp_path / "left_red.png")
    images = ImageSet(pd.DataFrame({"path": [str(tmp_path / "left_red.png")], "label": ["neutral"]}))
    inputs = keras.Input((64, 64, 3))
    left_colour = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs[:, :, :32]) / 255.0)

    def red_share(x1: float, width: float) -> float:  # of the stretch [x1, x1 + width) of the photo
        return min(max(0.3 - x1, 0.0), width) / width

    o = 1 - CROP_KEEP
    boxes = [(0.0, 1.0)] + [(x1, CROP_KEEP) for x1 in (o / 2, 0.0, o, 0.0, o)]  # whole, centre, corners
    as_is = [red_share(x1, width / 2) for x1, width in boxes]  # the left half of each view
    mirrored = [red_share(x1 + width / 2, width / 2) for x1, width in boxes]  # its right half
    expected = {(False, False): as_is[0], (True, False): (as_is[0] + mirrored[0]) / 2,
                (False, True): np.mean(as_is), (True, True): np.mean(as_is + mirrored)}
    tolerance = 0.01  # resampling at the red edge
    assert min(abs(a - b) for a, b in itertools.combinations(expected.values(), 2)) > 2 * tolerance
    for (flip, crop), share in expected.items():
        red = predict_probabilities(left_colour, images, flip_tta=flip, crop_tta=crop)[0, 0]
        assert red == pytest.approx(share, abs=tolerance), (flip, crop)


def test_an_exported_model_is_evaluated_like_the_keras_model_it_came_from(trained_cnn, synthetic_root, tmp_path,
                                                                          capsys):
    """App developers check the file they ship: a SavedModel version or a .tflite file, with the same
    test-time views; float exports agree with Keras, and the SavedModel's own folder is left untouched."""
    from imagesentiment.cli import main
    from imagesentiment.export import export_savedmodel, export_tflite, image_arrays

    model, images = trained_cnn
    version = export_savedmodel(model, tmp_path / "serving", "m", list(CLASSES))
    x, y = image_arrays(images, (48, 48), images.classes)
    lite = export_tflite(model, tmp_path / "lite", ["float32"], (x, y), None, list(CLASSES))["float32"][0]
    expected = evaluate_model(model, images, flip_tta=True)
    before = sorted(p.name for p in version.rglob("*"))
    for form in (version, lite):
        assert main(["evaluate", str(form), "--data", str(synthetic_root), "--flip-tta",
                     "--out", str(tmp_path / form.name)]) == 0
        metrics = json.loads((tmp_path / form.name / "metrics.json").read_text())
        assert metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=1 / 90)
        assert metrics["ranking"]["macro"]["roc_auc"] == pytest.approx(expected["ranking"]["macro"]["roc_auc"],
                                                                       abs=0.01)
    assert sorted(p.name for p in version.rglob("*")) == before
    assert "averaged over 2 test-time views per image" in capsys.readouterr().out
    run = tmp_path / "run"  # the test side of the run the file came from: --data RUN
    run.mkdir()
    images.frame.iloc[::3].to_csv(run / "split_test.csv", index=False)
    assert main(["evaluate", str(lite), "--data", str(run), "--out", str(tmp_path / "on_run")]) == 0
    metrics = json.loads((tmp_path / "on_run" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(evaluate_model(model, images.subset(range(0, 90, 3)))["accuracy"])
    assert sum(metrics["per_class"][name]["support"] for name in CLASSES) == 30
    run.rename(tmp_path / "fold0")  # a cross-validation run holds its sides one level down
    (tmp_path / "cv").mkdir()
    (tmp_path / "fold0").rename(tmp_path / "cv" / "fold0")
    assert main(["evaluate", str(lite), "--data", str(tmp_path / "cv"), "--out", str(tmp_path / "on_cv")]) == 2
    assert "a cross-validation run; give one of its folds (fold0)" in capsys.readouterr().err


def test_an_unchecked_set_with_a_damaged_file_names_it(trained_cnn, tmp_path):
    """The API's evaluate_model on a set not passed through check_set raised TensorFlow's bare decoder
    error, naming no file."""
    from conftest import bad_files

    model, images = trained_cnn
    damaged = bad_files(tmp_path)["truncated.jpg"]
    frame = pd.concat([images.frame, pd.DataFrame({"path": [str(damaged)], "label": ["positive"]})], ignore_index=True)
    with pytest.raises(DataError, match=f"1 image cannot be used \\({damaged}: .*check_set\\(images\\).images"):
        evaluate_model(model, ImageSet(frame, images.classes))
