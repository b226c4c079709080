import json
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from imagesentiment.training.config import load_config
from imagesentiment.data import DataError, ImageSet, from_folder, make_dataset
from imagesentiment.models.build import build_cnn
from imagesentiment.training.activations import ActivationStore
from imagesentiment.training.callbacks import PreciseBatchNorm
from imagesentiment.training.fit import TrainingError, sample_weights, train
from imagesentiment.training.cv import cross_validate

from conftest import SHARED_WEIGHTS


def write_config(folder: Path, images: Path, **sections: str) -> Path:
    """A small CNN configuration on ``images``; ``sections`` replace whole YAML sections."""
    text = {
        "data": f"data: {{source: {{path: {images}}}}}",
        "model": "model: {kind: cnn, input_size: 48, widths: [16, 32], dropout: 0.2}",
        "train": "train: {epochs: 8, batch_size: 16, learning_rate: 0.003, patience: 8}",
        "split": "split: {validation: 0.2, test: 0.2, folds: 3}",
    }
    text.update(sections)
    path = folder / "config.yaml"
    path.write_text("\n".join(text.values()) + "\n")
    return path


def test_short_training_learns_and_writes_a_complete_run(tmp_path, synthetic_root):
    run = tmp_path / "run"
    metrics = train(load_config(write_config(tmp_path, synthetic_root)), run)
    assert metrics["accuracy"] > 0.8 and metrics["macro"]["f1"] > 0.8  # chance is 1/3
    for name in ("config.yaml", "classes.json", "model.keras", "history.csv", "training_curves.png",
                 "skipped_files.csv", "split_test.csv", "test/metrics.json", "test/confusion_matrix.png",
                 "checkpoints/best.weights.h5"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("*tfevents*"))
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 8 and history["images_per_s"].gt(0).all()
    with pytest.raises(TrainingError, match="already holds a finished run"):
        train(load_config(write_config(tmp_path, synthetic_root)), run)


def test_without_a_validation_side_every_photo_trains_and_the_callbacks_watch_the_training_loss(
        tmp_path, synthetic_root):
    run = tmp_path / "run"
    config = write_config(tmp_path, synthetic_root, split="split: {validation: 0, test: 0.2}")
    metrics = train(load_config(config), run)
    assert metrics["accuracy"] > 0.8
    sides = {name: pd.read_csv(run / f"split_{name}.csv") for name in ("train", "validation", "test")}
    assert sides["validation"].empty and len(sides["train"]) + len(sides["test"]) == len(from_folder(synthetic_root))
    history = pd.read_csv(run / "history.csv")
    assert history.filter(like="val_").isna().all().all() and history["loss"].notna().all()  # no val_ figures
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    best = keras.models.clone_model(model)
    best.load_weights(run / "checkpoints" / "best.weights.h5")  # kept: the lowest training loss
    for kept, saved in zip(model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(kept, saved)


def test_a_folder_of_other_classes_trains_in_the_order_data_classes_names(tmp_path, synthetic_root):
    """Folders come sorted (glad, meh, sad); data.classes gives the output order, matched by name."""
    folder = tmp_path / "moods"
    for mood, source in (("sad", "negative"), ("meh", "neutral"), ("glad", "positive")):
        (folder / mood).mkdir(parents=True)
        for path in (synthetic_root / source).glob("*.png"):
            (folder / mood / path.name).write_bytes(path.read_bytes())
    source = f"data: {{source: {{path: {folder}}}"
    with pytest.raises(DataError, match=r"labels \['glad', 'meh', 'sad'\] are not among the classes \['negative', "
                                        r"'neutral', 'positive'\] \(data.classes\).*--set data.classes=\[glad,meh,sad\]"):
        train(load_config(write_config(tmp_path, folder, data=source + "}")), tmp_path / "refused")
    (folder / "glad").rename(folder / "Positive")  # a class misspelt by case: renaming is the fix, not that class
    with pytest.raises(DataError, match=r"Positive: name the folder or label as data.classes names the class, in the same case"):
        train(load_config(write_config(tmp_path, folder, data=f"data: {{source: {{path: {folder}}}, classes: "
                                                                "[sad, meh, positive]}")), tmp_path / "refused")
    (folder / "Positive").rename(folder / "glad")
    run = tmp_path / "run"
    metrics = train(load_config(write_config(tmp_path, folder, data=source + ", classes: [sad, meh, glad]}")), run)
    assert json.loads((run / "classes.json").read_text()) == ["sad", "meh", "glad"]
    assert metrics["accuracy"] > 0.8 and metrics["classes"] == ["sad", "meh", "glad"]
    test_side = pd.read_csv(run / "split_test.csv")
    assert all(Path(p).parent.name == label for p, label in zip(test_side["path"], test_side["label"]))


def test_few_steps_per_epoch_leave_batch_norm_statistics_of_the_trained_weights(tmp_path, synthetic_root):
    """With 4 steps an epoch the moving averages (momentum 0.9) still held much of their initial
    variance 1 after training, and the model could answer one class for every image; they are now
    the statistics of the trained weights, so inference mode answers as training mode does."""
    run = tmp_path / "run"
    model_section = "model: {kind: cnn, input_size: 48, widths: [16, 32], dropout: 0.0}"
    train(load_config(write_config(tmp_path, synthetic_root, model=model_section,
                                   train="train: {epochs: 2, batch_size: 16, learning_rate: 0.003}")), run)
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    images = ImageSet(pd.read_csv(run / "split_train.csv"))
    pixels = np.concatenate([x for x, _ in make_dataset(images, (48, 48), 64)])
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    activations = keras.Model(model.inputs[0], first.input)(pixels).numpy().reshape(-1, first.input.shape[-1])
    ratio = first.moving_variance.numpy() / activations.var(axis=0)
    assert 0.5 < np.median(ratio) < 2, ratio
    same = model(pixels, training=False).numpy().argmax(1) == model(pixels, training=True).numpy().argmax(1)
    assert same.mean() > 0.9


def test_batch_norm_calibration_is_the_mean_of_the_batch_statistics():
    """Each epoch's calibration sets a layer's moving mean and variance to the mean over the training
    batches of its batch statistics, and leaves the layer's momentum as it was."""
    model = build_cnn(input_shape=(24, 24, 3), widths=(4, 8))
    pixels = np.random.default_rng(0).uniform(0, 255, (20, 24, 24, 3)).astype("float32")
    calibration = PreciseBatchNorm(tf.data.Dataset.from_tensor_slices((pixels, np.zeros(20))).batch(8))
    calibration.set_model(model)
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    below = keras.Model(model.inputs[0], first.input)
    batches = [below(pixels[i:i + 8]).numpy().reshape(-1, first.input.shape[-1]) for i in range(0, 20, 8)]
    for _ in range(2):  # the second epoch's calibration reuses the first one's graph
        calibration.calibrate()
        np.testing.assert_allclose(first.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0), rtol=1e-4)
        np.testing.assert_allclose(first.moving_variance.numpy(), np.mean([b.var(0) for b in batches], 0),
                                   rtol=1e-3)
    assert first.momentum == 0.9


def test_a_run_stopped_after_its_epochs_does_not_train_them_again(tmp_path, synthetic_root, monkeypatch, capsys):
    """Keras deletes a phase's backup when its fit ends; a stop after that (saving the phase's weights,
    or the test evaluation, which takes minutes with 12 views) once restarted the phase from epoch 1
    and logged its epochs twice."""
    import imagesentiment.training.fit as training

    config = load_config(write_config(
        tmp_path, synthetic_root, train="train: {epochs: 4, batch_size: 16, learning_rate: 0.003, patience: 8, "
                                       "fine_tune: {epochs: 2, layers: 3, learning_rate: 0.001}}"))
    run = tmp_path / "run"
    original = os.replace

    def stop_once(source, target):  # Ctrl-C just after phase 1's fit, before its weights are kept
        if Path(target).name == "phase1.weights.h5":
            monkeypatch.setattr(os, "replace", original)
            raise KeyboardInterrupt
        return original(source, target)
    monkeypatch.setattr(os, "replace", stop_once)
    with pytest.raises(KeyboardInterrupt):
        train(config, run)
    with monkeypatch.context() as patch:  # then Ctrl-C during the test evaluation, after both phases
        patch.setattr(training, "evaluate_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            train(config, run)
    capsys.readouterr()
    metrics = train(config, run)
    out = capsys.readouterr().out
    assert "phase1 already done" in out and "phase2 already done" in out and "Epoch" not in out
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1, 2, 3, 0, 1]  # each epoch once
    assert metrics["accuracy"] > 0.8 and not any((run / "backup").iterdir())


def test_a_run_whose_data_changed_is_not_resumed(tmp_path, synthetic_root, monkeypatch):
    """Photos added to the folder between a stop and the same command again once re-split the data and
    resumed: a quarter of the new test side had trained in the first epochs."""
    import shutil

    from PIL import Image

    import imagesentiment.training.fit as training

    images = tmp_path / "images"
    shutil.copytree(synthetic_root, images)
    config = load_config(write_config(tmp_path, images, train="train: {epochs: 2, batch_size: 16}"))
    run = tmp_path / "run"
    with monkeypatch.context() as patch:  # stopped during the test evaluation: trained, not finished
        patch.setattr(training, "evaluate_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            train(config, run)
    sides = {p.name: p.read_text() for p in run.glob("split_*.csv")}
    noise = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for k, pixels in enumerate(noise):
        Image.fromarray(pixels).save(images / "negative" / f"new{k}.png")
    with pytest.raises(TrainingError, match=r"the data changed since this run began \(3 images added, 0 removed"):
        train(config, run)
    assert {p.name: p.read_text() for p in run.glob("split_*.csv")} == sides  # its record kept
    for k in range(3):
        (images / "negative" / f"new{k}.png").unlink()
    assert train(config, run)["accuracy"] > 0  # the data as it was: the run goes on


def random_backbone(folder: Path) -> Path:
    """A MobileNetV2 weights file (no top) with random weights, written into ``folder``."""
    weights = folder / "backbone.weights.h5"
    keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None).save_weights(weights)
    return weights


def transfer_config(folder: Path, images: Path, weights: Path, train_options: str) -> Path:
    """A 64 px MobileNetV2 configuration with a one-epoch fine-tune of the top 10 layers."""
    return write_config(
        folder, images, model=f"model: {{kind: transfer, input_size: 64, weights: {weights}, dropout: 0.2}}",
        train=f"train: {{{train_options}, batch_size: 16, learning_rate: 0.003, "
              "fine_tune: {epochs: 1, layers: 10, learning_rate: 0.0001}}")


def test_transfer_model_trains_from_a_weights_file(tmp_path, synthetic_root):
    weights = SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else random_backbone(tmp_path)
    config = transfer_config(tmp_path, synthetic_root, weights, "epochs: 2")
    run = tmp_path / "run"
    train(load_config(config), run)
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    reference = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=str(weights))
    np.testing.assert_allclose(model.get_layer("Conv1").get_weights()[0],
                               reference.get_layer("Conv1").get_weights()[0])  # frozen layer: as loaded
    assert (run / "history_phase2.csv").is_file() and len(pd.read_csv(run / "history.csv")) == 3


def test_imagenet_weights_that_cannot_be_downloaded_get_an_error_saying_what_to_do(monkeypatch):
    """Offline, weights: imagenet ended in Keras's bare Exception traceback. The download itself is
    replaced here by the failure Keras reports (tests never download)."""
    from keras.src.utils import file_utils

    from imagesentiment.models.build import build_transfer

    def offline(fname, origin, **_):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ConnectionError, match=r"ImageNet weights of mobilenet_v2 could not be downloaded \(URL fetch "
                                              r"failure on https://.*without internet, give a local weights file"):
        build_transfer(3, "mobilenet_v2", input_size=96, weights="imagenet")


def test_sample_weights_balance_the_classes_over_the_source_weights(synthetic_root):
    everything = from_folder(synthetic_root)
    by_class = [np.flatnonzero(everything.label_ids.to_numpy() == c) for c in range(3)]
    images = everything.subset([*by_class[0][:3], by_class[1][0], *by_class[2][:2]])  # 3, 1 and 2 images
    labels = images.label_ids.to_numpy()
    plain = sample_weights(images, 3)
    np.testing.assert_allclose(plain, (6 / (3 * np.bincount(labels)))[labels])  # scikit-learn's "balanced"
    assert sample_weights(images.subset([0, 3, 4]), 3) is None  # one of each class: no weights
    weighted = ImageSet(images.frame.assign(weight=[1, 1, 0.5, 1, 0.5, 0.5]), images.classes)
    np.testing.assert_allclose(sample_weights(weighted, 3, balance=False), [1, 1, 0.5, 1, 0.5, 0.5])
    balanced = sample_weights(weighted, 3)
    np.testing.assert_allclose(np.bincount(labels, weights=balanced), [4.5 / 3] * 3)  # same total, shared equally
    assert balanced[0] == 2 * balanced[2], "within a class the source weights keep their ratio"


def test_extra_training_weight_decides_how_much_extra_images_count(tmp_path, synthetic_root):
    """Extra training images with wrong labels (every class shifted by one), given twice: at weight 1
    they outweigh the true labels two to one; at 0.05 the main source leads. Extras also on the
    validation or test side are dropped."""
    images = from_folder(synthetic_root)
    shifted = {"negative": "neutral", "neutral": "positive", "positive": "negative"}
    images.frame.assign(label=images.frame["label"].map(shifted))[["path", "label"]].to_csv(
        tmp_path / "wrong.csv", index=False)
    accuracy = {}
    for weight in (1.0, 0.05):
        extra = (f"{{path: {tmp_path / 'wrong.csv'}, format: manifest, weight: {weight}, "
                 "options: {allow_outside_root: true}}")
        config = write_config(tmp_path, synthetic_root, data=(
            f"data: {{source: {{path: {synthetic_root}}}, extra_training: [{extra}, {extra}]}}"))
        run = tmp_path / f"run{weight}"
        accuracy[weight] = train(load_config(config), run)["accuracy"]
        sides = {name: pd.read_csv(run / f"split_{name}.csv") for name in ("train", "validation", "test")}
        extras = sides["train"][sides["train"]["weight"].notna()]
        assert len(extras) == 2 * len(sides["train"]) // 3 and (extras["weight"] == weight).all()
        assert not set(extras["path"]) & (set(sides["validation"]["path"]) | set(sides["test"]["path"]))
    assert accuracy[0.05] > 0.8 and accuracy[1.0] < 0.5, accuracy


def test_refusals(tmp_path, synthetic_root):
    one_class = tmp_path / "one"
    (one_class / "positive").mkdir(parents=True)
    for src in list((synthetic_root / "positive").glob("*.png"))[:10]:
        (one_class / "positive" / src.name).write_bytes(src.read_bytes())
    with pytest.raises(DataError, match="at least two classes"):
        train(load_config(write_config(tmp_path, one_class)), tmp_path / "r1")
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(TrainingError, match="a file, not a folder"):  # was 'File exists' after loading the data
        train(load_config(write_config(tmp_path, synthetic_root)), tmp_path / "a file")
    with pytest.raises(DataError, match="at least 40 distinct images per class"):
        cross_validate(load_config(write_config(tmp_path, synthetic_root, split="split: {folds: 40}")),
                       tmp_path / "r2")


def test_cross_validation_holds_each_image_out_once_and_resumes_only_its_own_run(tmp_path, synthetic_root,
                                                                                capsys):
    config = write_config(tmp_path, synthetic_root)
    run = tmp_path / "cv"
    table = cross_validate(load_config(config), run)
    assert table["fold"].tolist() == [0, 1, 2] and table["accuracy"].mean() > 0.8  # chance is 1/3
    assert not table["single_class"].any()
    summary = json.loads((run / "cv_summary.json").read_text())
    assert summary["accuracy_mean"] == pytest.approx(table["accuracy"].mean())
    assert summary["macro_f1_std"] == pytest.approx(table["macro_f1"].std())
    assert summary["macro_roc_auc_mean"] == pytest.approx(table["macro_roc_auc"].mean())
    assert summary["macro_roc_auc_mean"] > 0.9
    assert summary["ece_mean"] == pytest.approx(table["ece"].mean()) and 0 <= summary["ece_mean"] < 0.5
    assert summary["brier_mean"] == pytest.approx(table["brier"].mean())
    held = [set(pd.read_csv(run / f"fold{k}" / "split_test.csv")["path"]) for k in range(3)]
    assert sum(map(len, held)) == len(set().union(*held)) == 90  # every image held out exactly once
    # the same configuration again: every fold is already done and nothing is retrained
    again = cross_validate(load_config(config, {"train.activation_cache": str(tmp_path / "cache")}), run)
    assert capsys.readouterr().out.count("already done") == 3
    pd.testing.assert_frame_equal(again, table)
    assert json.loads((run / "cv_summary.json").read_text())["single_class_folds"] == []
    # a fold whose model collapsed (as its test metrics record it) is named, not hidden in the mean
    recorded = run / "fold1" / "test" / "metrics.json"
    recorded.write_text(json.dumps({**json.loads(recorded.read_text()), "single_class": True}))
    cross_validate(load_config(config), run)
    assert "WARNING: the models of folds [1] predict a single class" in capsys.readouterr().err
    assert json.loads((run / "cv_summary.json").read_text())["single_class_folds"] == [1]
    # another configuration into the same folder would once have reported these folds as its own
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    for overrides, named in (({"seed": 1}, "seed: 0 there, 1 now"),
                             ({"train.learning_rate": 0.01}, "train.learning_rate: 0.003 there, 0.01 now")):
        with pytest.raises(TrainingError, match=f"holds a run of another configuration \\({named}\\)"):
            cross_validate(load_config(config, overrides), run)
        with pytest.raises(TrainingError, match=named):
            train(load_config(config, overrides), run / "fold0")
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_nan_loss_stops_with_a_clear_message(tmp_path, synthetic_root):
    config = write_config(tmp_path, synthetic_root,
                          train="train: {epochs: 5, batch_size: 16, learning_rate: 1.0e+30}")
    with pytest.raises(TrainingError, match="NaN"):
        train(load_config(config), tmp_path / "run")


# the best weights, kept from phase 1 when phase 2 does not beat them, were loaded with Keras's warning that
# it skipped the head's optimizer state: alarming in a training log, and nothing is wrong
@pytest.mark.filterwarnings("error:Skipping variable loading for optimizer:UserWarning")
def test_cached_views_and_an_ensemble_train_and_predict_as_one_model(tmp_path, synthetic_root):
    config = transfer_config(tmp_path, synthetic_root, random_backbone(tmp_path),
                             "epochs: 3, cached_views: 2, ensemble: 2, ensemble_resplit: true")
    run = tmp_path / "run"
    metrics = train(load_config(config), run)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert [p.parent.name for p in run.glob("member*/model.keras")] == ["member1"], "member 1 (seed + 1) is kept"
    sides = [{name: set(pd.read_csv(folder / f"split_{name}.csv")["path"]) for name in ("train", "validation", "test")}
             for folder in (run, run / "member1")]
    assert sides[0]["test"] == sides[1]["test"], "every member is judged on the same test side"
    assert sides[0]["validation"] != sides[1]["validation"] and not sides[1]["validation"] & sides[1]["train"]
    assert sides[0]["train"] | sides[0]["validation"] == sides[1]["train"] | sides[1]["validation"]
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    p = model(x, training=False).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)  # the averaged ensemble is one model
    # and it is explained and exported as one (both once failed: no 4-D layer at the top level)
    from imagesentiment.cli import main
    from imagesentiment.explain import GradCamPredictor

    image = next((synthetic_root / "positive").glob("*.png"))
    assert main(["explain", str(image), "--model", str(run), "--out", str(tmp_path / "maps"), "--filters"]) == 0
    assert len(list((tmp_path / "maps").glob(f"{image.stem}-????????_finecam_overlay.jpg"))) == 1
    assert (tmp_path / "maps" / "filters.png").is_file()  # the first member's
    assert main(["export", str(run), "--out", str(tmp_path / "serving")]) == 0
    served = tf.saved_model.load(str(tmp_path / "serving" / "imagesentiment" / "1"))
    out = served.signatures["explain_images"](images=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), p, atol=1e-5)
    np.testing.assert_allclose(out["heatmap"].numpy(), GradCamPredictor(model)(x)["heatmap"].numpy(), atol=1e-5)


def test_activation_store_computes_each_view_once_and_reuses_its_folder(tmp_path, synthetic_root, capsys):
    config = load_config(write_config(tmp_path, synthetic_root))  # 48 px, augmentation on
    images = from_folder(synthetic_root).subset(range(0, 90, 15))
    bottom = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.AveragePooling2D(8, name="pool")])
    store = ActivationStore(tmp_path / "cache")
    first = store.activations(bottom, images, config, 2)
    assert first.shape == (6, 2, 6, 6, 3) and first.dtype == np.float16
    assert capsys.readouterr().out.count("frozen part") == 2  # one pass per view
    view0 = keras.ops.convert_to_numpy(bottom(np.stack([np.asarray(keras.utils.load_img(p), np.float32)
                                                        for p in images.frame["path"]])))
    np.testing.assert_allclose(first[:, 0], view0, rtol=1e-2, atol=0.5)  # view 0: the image as is
    assert np.abs(first[:, 1].astype(np.float32) - first[:, 0]).mean() > 1.0  # view 1: augmented
    again = store.activations(bottom, images.subset(range(3)), config, 2)
    assert capsys.readouterr().out == "" and np.array_equal(again, first[:3])  # from memory
    from_disk = ActivationStore(tmp_path / "cache").activations(bottom, images, config, 2)
    assert capsys.readouterr().out == "" and np.array_equal(from_disk, first)  # a later run: from the folder
    ActivationStore().activations(bottom, images, config, 1)
    assert "frozen part, view 0: 6 images" in capsys.readouterr().out  # a store of its own computes anew


def test_a_phase_that_stops_early_says_so_and_which_epoch_is_kept():
    import keras
    import numpy as np

    from imagesentiment.training.callbacks import stopping_note

    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")  # nothing improves
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=2, restore_best_weights=True)]
    model.fit(x, y, validation_split=0.25, epochs=10, callbacks=callbacks, verbose=0)
    assert stopping_note(callbacks, "phase1", 10).startswith(
        "phase1: stopped early after epoch 3 of 10: no better val_loss for 2 epochs; the weights of epoch 1 (val_loss ")
    ran = [keras.callbacks.EarlyStopping("loss", patience=5)]
    model.fit(x, y, epochs=2, callbacks=ran, verbose=0)
    assert stopping_note(ran, "phase1", 2) is None
