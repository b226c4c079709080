"""imagesentiment.load (issue 5): one predictor over run directories, .keras files, SavedModel
versions and .tflite files, taking paths, bytes or arrays; and the ``predict`` sub-command."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import PIL.Image
import pytest
import tensorflow as tf

import imagesentiment
from imagesentiment.data import make_dataset
from imagesentiment.export import export_savedmodel, export_tflite, image_arrays
from imagesentiment.inference import SHIPPED_MODELS, KerasPredictor, SavedModelPredictor, TFLitePredictor, load_keras

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["sad", "meh", "glad"]


@pytest.fixture(scope="module")
def forms(trained_cnn, tmp_path_factory) -> dict[str, Path]:
    """The trained model in every form ``load`` opens, with the class names ``sad, meh, glad``."""
    model, images = trained_cnn
    root = tmp_path_factory.mktemp("forms")
    (root / "run").mkdir()
    model.save(root / "run" / "model.keras")
    (root / "run" / "classes.json").write_text(json.dumps(CLASSES))
    version = export_savedmodel(model, root / "serving", "m", CLASSES)
    x, y = image_arrays(images, (48, 48), images.classes)
    lite = export_tflite(model, root / "lite", ["float32", "int8"], (x, y), x, CLASSES)
    return {"run": root / "run", "keras": root / "run" / "model.keras", "savedmodel": version,
            "float32": lite["float32"][0], "int8": lite["int8"][0]}


@pytest.fixture(scope="module")
def files(trained_cnn) -> tuple[list[str], np.ndarray]:
    model, images = trained_cnn
    subset = images.subset(range(1, 90, 7))
    pixels, _ = next(iter(make_dataset(subset, (48, 48), 32)))
    return subset.frame["path"].tolist(), model(pixels, training=False).numpy()


@pytest.mark.parametrize("form, kind, tolerance", [
    ("run", KerasPredictor, 1e-6), ("keras", KerasPredictor, 1e-6), ("savedmodel", SavedModelPredictor, 1e-5),
    ("float32", TFLitePredictor, 1e-4), ("int8", TFLitePredictor, 0.03)])
def test_every_form_predicts_like_the_keras_model(forms, files, form, kind, tolerance):
    paths, expected = files
    predictor = imagesentiment.load(forms[form])
    assert isinstance(predictor, kind)
    table = predictor.predict(paths)
    assert list(table.columns) == ["label", "confidence", *CLASSES]
    np.testing.assert_allclose(table[CLASSES].to_numpy(), expected, atol=tolerance)
    assert table["label"].tolist() == [CLASSES[i] for i in expected.argmax(1)]
    np.testing.assert_allclose(table["confidence"], table[CLASSES].max(axis=1))


@pytest.mark.parametrize("form, tolerance, correlation", [("savedmodel", 1e-5, 0.999), ("float32", 1e-4, 0.999),
                                                         ("int8", 0.03, 0.9)])
def test_exported_forms_make_the_heat_maps_of_the_keras_model(forms, files, form, tolerance, correlation):
    """A SavedModel and a .tflite file carry an ``explain`` signature: probabilities and Grad-CAM in one pass."""
    paths, expected = files
    pixels = imagesentiment.inference.to_pixels(paths, (48, 48))
    reference = imagesentiment.load(forms["keras"]).explainer()(pixels)
    result = imagesentiment.load(forms[form]).explainer()(pixels)
    assert {k: type(v) for k, v in result.items()} == {k: type(v) for k, v in reference.items()} == \
        {"probabilities": np.ndarray, "heatmap": np.ndarray}  # alike for every form (TFLite gave numpy, the rest tensors)
    np.testing.assert_allclose(result["probabilities"], expected, atol=tolerance)
    maps, want = result["heatmap"], reference["heatmap"]
    assert maps.shape == want.shape == (len(paths), 48, 48)
    assert min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(maps, want)) > correlation


def test_paths_bytes_and_arrays_give_the_same_answer(forms, files):
    paths, expected = files
    predictor = imagesentiment.load(forms["float32"])
    data = [Path(p).read_bytes() for p in paths]
    decoded = [tf.io.decode_image(d, channels=3).numpy() for d in data]  # full size: resized as in training
    at_size = np.stack([tf.image.resize(d, (48, 48), antialias=True).numpy().round().clip(0, 255) for d in decoded])
    tables = [predictor.predict(paths), predictor.predict(data, batch_size=4), predictor.predict(decoded),
              predictor.predict(at_size.astype(np.float32)), predictor.predict([PIL.Image.fromarray(d) for d in decoded]),
              predictor.predict(pd.Series(paths)), predictor.predict(p for p in paths)]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    one = predictor.predict(paths[0])
    assert len(one) == 1 and one.iloc[0].equals(tables[0].iloc[0])
    assert len(predictor.predict([])) == 0


def test_a_column_joins_back_and_unreadable_images_can_keep_their_rows(forms, files, tmp_path):
    """The table once had a fresh 0..N-1 index, so joining it to a filtered frame paired photos with other
    photos' answers; and one unreadable file failed the whole call, with every answer lost."""
    paths, _ = files
    predictor = imagesentiment.load(forms["keras"])
    (tmp_path / "notes.jpg").write_text("not an image")
    frame = pd.DataFrame({"file": paths[:6] + [str(tmp_path / "notes.jpg"), None, str(tmp_path / "gone.jpg")]})
    kept = frame[frame.index % 2 == 0]  # index 0, 2, 4, 6, 8
    joined = kept.join(predictor.predict(kept["file"], errors="keep"))
    alone = predictor.predict(paths[:6])
    assert joined.loc[[0, 2, 4], "label"].tolist() == alone.loc[[0, 2, 4], "label"].tolist()
    np.testing.assert_allclose(joined.loc[[0, 2, 4], CLASSES], alone.loc[[0, 2, 4], CLASSES], atol=1e-6)
    assert joined.loc[[6, 8], "label"].isna().all() and joined.loc[[6, 8], CLASSES].isna().all().all()
    assert "notes.jpg: not a readable image" in joined.loc[6, "error"] and "gone.jpg: cannot be read" in joined.loc[8, "error"]
    assert (joined.loc[[0, 2, 4], "error"] == "").all()
    many = [paths[0]] * 40
    many[35] = None  # named by its place in the whole input, not in its batch of 32
    with pytest.raises(ValueError, match="image 35 of the batch: a missing value"):
        predictor.predict(many)
    with_missing = predictor.predict(frame["file"], errors="keep", batch_size=2)
    assert with_missing["label"].notna().sum() == 6 and with_missing.loc[7, "error"].startswith("image 7 of the batch: a missing value")
    with pytest.raises(ValueError, match="errors must be 'raise' or 'keep'"):
        predictor.predict(paths, errors="skip")


def test_models_loaded_in_threads_at_once_leave_stderr_as_it_was(forms):
    """Loading a .tflite file catches the process's stderr for a moment (LiteRT's notices); 16 threads loading
    at once restored each other's catch file, and every later error line was lost."""
    import threading

    before = os.fstat(2)
    threads = [threading.Thread(target=TFLitePredictor, args=(forms["int8"],)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_class_names_come_with_the_model_or_the_caller(forms, tmp_path):
    for form in ("run", "keras", "savedmodel", "float32", "int8"):
        assert imagesentiment.load(forms[form]).class_names == CLASSES
    assert imagesentiment.load(forms["int8"], ["a", "b", "c"]).class_names == ["a", "b", "c"]
    for wrong in (["a", "b"], ["a", "a", "b"], ["a", "", "b"]):
        with pytest.raises(ValueError, match="for a model with 3 outputs: give as many, distinct and non-empty"):
            imagesentiment.load(forms["savedmodel"], wrong)
    for form in ("keras", "savedmodel", "int8"):  # "abc" is not three classes a, b, c (a .keras file took it so)
        with pytest.raises(ValueError, match="class names given as one string 'abc': give a list of names"):
            imagesentiment.load(forms[form], "abc")
    (tmp_path / "MODEL.TFLITE").write_bytes(forms["int8"].read_bytes())  # as a phone's file system may name it
    assert imagesentiment.load(tmp_path / "MODEL.TFLITE").class_names == CLASSES


def test_the_names_a_model_carries_in_another_order_are_refused(forms, files, trained_cnn, tmp_path, capsys):
    """``--classes positive,neutral,negative`` on a model whose outputs are negative, neutral, positive
    scored a whole campaign with positive and negative swapped, without a word."""
    from imagesentiment.cli import main

    swapped = CLASSES[::-1]
    for form in ("run", "keras", "savedmodel", "float32", "int8"):
        for given, moved in ((swapped, "glad, sad"), (["GLAD", "Meh", "Sad"], "GLAD, Sad"), (["glad", "x", "y"], "glad")):
            with pytest.raises(ValueError, match=f"put {moved} where .* has another class: its outputs are "
                                                 r"\['sad', 'meh', 'glad'\]"):
                imagesentiment.load(forms[form], given)
        assert imagesentiment.load(forms[form], ["SAD", "Meh", "happy"]).class_names == ["SAD", "Meh", "happy"]
    given = ["--classes", ",".join(swapped)]
    for command in (["predict", files[0][0], "--model", str(forms["run"]), "--out", str(tmp_path / "p.csv")],
                    ["export", str(forms["run"]), "--format", "savedmodel", "--out", str(tmp_path / "serving")]):
        assert main(command + given) == 2
        assert "put glad, sad where" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "serving").exists()
    trained_cnn[0].save(tmp_path / "bare.keras")  # no classes.json: the caller's names say the output order
    assert imagesentiment.load(tmp_path / "bare.keras", swapped).class_names == swapped


def test_bad_inputs_are_named(forms, tmp_path):
    predictor = imagesentiment.load(forms["keras"])
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes.jpg: not a readable image: unknown image format"):
        predictor.predict([str(tmp_path / "notes.jpg")])
    with pytest.raises(ValueError, match="5 bytes given as an image: not a readable image"):
        predictor.predict(b"GIF89")
    with pytest.raises(ValueError, match=r"array must be \(H, W, 3\) RGB"):
        predictor.predict(np.zeros((48, 48, 2)))
    with pytest.raises(TypeError, match="or a sequence of them, not int"):
        predictor.predict(7)
    with pytest.raises(TypeError, match="image 1 of the batch: expected a path, .* not dict"):
        predictor.predict([np.zeros((8, 8, 3), np.uint8), {}])
    for missing in (None, float("nan")):  # an empty cell of a pandas column
        with pytest.raises(ValueError, match=f"image 1 of the batch: a missing value \\({missing}\\), not an image"):
            predictor.predict([np.zeros((8, 8, 3), np.uint8), missing])
    wide = PIL.Image.fromarray(np.full((8, 8), 4000, np.int32), "I")  # 32-bit: converting to RGB clipped it white
    with pytest.raises(ValueError, match=r"pixel values must lie in \[0, 255\].*from 4000.0 to 4000.0"):
        predictor.predict(wide)
    with pytest.raises(ValueError, match="look like the \\[0, 1\\] scale"):
        predictor.predict(PIL.Image.fromarray(np.full((8, 8), 0.5, np.float32), "F"))
    with pytest.raises(ValueError, match=r"gone.jpg: cannot be read \(No such file or directory\)"):
        predictor.predict([str(tmp_path / "gone.jpg")])
    with pytest.raises(ValueError, match="a folder, not an image; give its files"):
        predictor.predict(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        imagesentiment.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="gone: no such file or folder"):  # not 'not a run directory'
        imagesentiment.load(tmp_path / "gone")
    # a folder that holds models (a SavedModel base, a cross-validation run) names them
    with pytest.raises(FileNotFoundError, match=f"it holds {forms['savedmodel']}: give one of them"):
        imagesentiment.load(forms["savedmodel"].parent)
    with pytest.raises(FileNotFoundError, match=f"model.keras not found .*it holds {forms['run']}"):
        load_keras(forms["run"].parent)
    with pytest.raises(FileNotFoundError) as named:  # export and the layer options take only Keras models
        load_keras(forms["savedmodel"].parent)
    assert "saved_model" not in str(named.value) and ".tflite" not in str(named.value)
    with pytest.raises(ValueError, match="a TFLite file; this needs the Keras model it came from"):
        load_keras(forms["int8"])


# pandas warned on every run whose error column was empty (a str fill value for a float column)
@pytest.mark.filterwarnings("error:'str' is not supported as a fill value:DeprecationWarning")
def test_cli_predict_writes_a_csv(forms, files, tmp_path, capsys):
    from imagesentiment.cli import main

    paths, expected = files
    out = tmp_path / "predictions.csv"
    assert main(["predict", *paths[:3], "--model", str(forms["savedmodel"]), "--out", str(out)]) == 0
    assert main(["predict", *paths[:5], "--model", str(forms["savedmodel"]), "--out", str(out), "--resume"]) == 0
    table = pd.read_csv(out)
    shown = capsys.readouterr().out.splitlines()[4:]  # a few photos: each answer in the terminal too
    assert shown[-1].startswith("5 images scored") and "(3 of these rows from before, 2 now)" in shown[-1]
    assert shown[:5] == [f"{os.path.abspath(p)}: {label} ({confidence:.2f})"
                         for p, label, confidence in zip(paths, table["label"], table["confidence"])]
    assert list(table.columns) == ["path", "label", "confidence", *CLASSES, "error"]  # heatmap with --explain only
    assert table["path"].tolist() == [os.path.abspath(p) for p in paths[:5]]
    np.testing.assert_allclose(table[CLASSES].to_numpy(), expected[:5], atol=1e-5)
    assert main(["predict", paths[0], "--model", str(forms["int8"]), "--out", str(tmp_path / "one.jsonl")]) == 0
    assert list(pd.read_json(tmp_path / "one.jsonl", lines=True).columns)[:6] == ["path", "label", "confidence",
                                                                                   "sad", "meh", "glad"]
    # a folder's photos in formats not read (iPhone HEIC, TIFF) were left out without a word
    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "a.png").write_bytes(Path(paths[0]).read_bytes())
    for name in ("IMG_1.HEIC", "IMG_2.heic", "scan.tif"):
        (tmp_path / "phone" / name).write_bytes(b"not read")
    assert main(["predict", str(tmp_path / "phone"), "--model", str(forms["int8"]),
                 "--out", str(tmp_path / "phone.csv")]) == 0
    assert (f"{tmp_path / 'phone'}: 3 photos left out, in formats not read (2 .heic, 1 .tif)"
            in capsys.readouterr().err) and len(pd.read_csv(tmp_path / "phone.csv")) == 1
    # heat maps kept beside the photos (photos/ --explain photos/maps) were scored as photos the next time
    maps = ["predict", str(tmp_path / "phone"), "--model", str(forms["keras"]),
            "--explain", str(tmp_path / "phone" / "maps")]
    assert main([*maps, "--out", str(tmp_path / "first.csv")]) == 0 and any((tmp_path / "phone" / "maps").iterdir())
    capsys.readouterr()
    assert main([*maps, "--out", str(tmp_path / "again.csv")]) == 0
    assert f"{tmp_path / 'phone' / 'maps'}: 2 images left out, in the folder heat maps" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "again.csv")["path"].tolist() == [str(tmp_path / "phone" / "a.png")]


SHIPPED = SHIPPED_MODELS / "imagesentiment"
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.skipif(not any(SHIPPED.glob("[0-9]*/saved_model.pb")), reason="this checkout ships no default model")
def test_the_shipped_model_labels_the_examples_alike_in_both_forms(tmp_path):
    """`imagesentiment predict examples` (the default: the shipped SavedModel) and the shipped
    float16 and int8 TFLite files give the same labels and close probabilities on the example photos."""
    from imagesentiment.cli import main

    assert main(["predict", str(EXAMPLES), "--out", str(tmp_path / "p.csv")]) == 0
    table = pd.read_csv(tmp_path / "p.csv").sort_values("path", ignore_index=True)
    assert len(table) == 6 and table["error"].isna().all()
    probabilities = table[["negative", "neutral", "positive"]].to_numpy()
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    for name, tolerance in (("float16", 0.02), ("int8", 0.1)):  # measured: 0.003, 0.083
        lite = imagesentiment.load(SHIPPED_MODELS / f"imagesentiment-{name}.tflite").predict(table["path"].tolist())
        np.testing.assert_allclose(lite[["negative", "neutral", "positive"]], probabilities, atol=tolerance,
                                   err_msg=name)
        # the same label wherever the SavedModel's two best classes lie further apart than the tolerance: within
        # it, a near tie (hubble_deep_field: positive 0.43, negative 0.40) may go either way in int8
        clear = top_two[:, 1] - top_two[:, 0] > tolerance
        assert clear.sum() >= 5 and (lite["label"] == table["label"])[clear].all(), name


def test_an_exported_savedmodel_rebuilds_its_keras_model_for_every_explanation(forms, trained_cnn, tmp_path, capsys):
    """explain refused the shipped SavedModel ("needs the Keras model it came from"): the version now keeps its
    Keras graph (a few KB) and rebuilds it from its own weights, stored once."""
    import shutil

    from imagesentiment.cli import main

    model, images = trained_cnn
    rebuilt, classes = load_keras(forms["savedmodel"])
    x = np.random.default_rng(0).uniform(0, 255, (4, *model.input_shape[1:3], 3)).astype("float32")
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)
    assert classes == CLASSES and rebuilt.class_names == tuple(CLASSES)
    assert load_keras(forms["savedmodel"], ["low", "mid", "high"])[1] == ["low", "mid", "high"]
    with pytest.raises(ValueError, match="glad"):  # a stored name given for another output
        load_keras(forms["savedmodel"], ["glad", "meh", "sad"])
    image = images.frame["path"].iloc[0]
    assert main(["explain", image, "--model", str(forms["savedmodel"]), "--method", "gradcam++", "--method",
                 "saliency", "--out", str(tmp_path / "maps")]) == 0
    assert {p.name.split("_", 1)[1] for p in (tmp_path / "maps").glob(f"{Path(image).stem}-*_overlay.jpg")} == {
        "gradcam++_overlay.jpg", "saliency_overlay.jpg"}
    earlier = tmp_path / "earlier"
    shutil.copytree(forms["savedmodel"], earlier)
    (earlier / "assets.extra" / "keras_model.json").unlink()
    with pytest.raises(ValueError, match="keras_model.json differs from the checksum"):
        load_keras(earlier)  # a file gone from a version with its record: refused as altered
    with pytest.raises(ValueError, match="exported by an earlier release"):
        load_keras(earlier, verify=False)
