"""The served signatures hold the API's contract: pixels on the [0, 1] scale refused naming the scale, the channel
count checked by name, at most ``max_batch`` images a request, refused before decoding; the TFLite wrapper checks
the same where the API calls it."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import imagesentiment
from imagesentiment.export import convert, export_savedmodel
from imagesentiment.inference import TFLitePredictor

from conftest import encode

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
CLASSES = ["negative", "neutral", "positive"]
PIXEL_SIGNATURES = ("predict_images", "explain_images")


@pytest.fixture(scope="module")
def tiny() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def versions(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("served")
    strict = export_savedmodel(tiny, base, "strict", CLASSES, max_batch=4)
    lenient = export_savedmodel(tiny, base, "lenient", CLASSES, refuse_unit_scale=False)
    return strict, lenient


def _signatures(version):
    return tf.saved_model.load(str(version)).signatures


def test_pixels_on_the_unit_scale_are_refused_naming_the_scale(versions):
    strict, lenient = versions
    unit = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)  # a photo divided by 255
    served = _signatures(strict)
    for key in PIXEL_SIGNATURES:
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{key}: image 0 of the batch: .*look like the "
                                                                 r"\[0, 1\] scale.*multiply by 255"):
            served[key](images=tf.constant(unit))
        assert served[key](images=tf.zeros([1, 8, 8, 3]))["label"].shape == (1,)  # a black image is no scale
    for key in PIXEL_SIGNATURES:  # exported with refuse_unit_scale=False: answered
        assert _signatures(lenient)[key](images=tf.constant(unit))["label"].shape == (2,)


def test_a_four_channel_image_fails_at_the_channel_check(versions):
    served = _signatures(versions[0])
    for key in PIXEL_SIGNATURES:
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{key}: images must have 3 channels \(RGB\)") as e:
            served[key](images=tf.zeros([1, 8, 8, 4]))
        assert "filter depth" not in str(e.value)


def test_a_request_over_the_batch_limit_is_refused_before_decoding(versions):
    served = _signatures(versions[0])
    for key in ("serving_default", "explain"):  # items that would not decode: the limit comes first
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{key}: a request holds 5 images, more than the "
                                                                 r"4 this model takes"):
            served[key](image_bytes=tf.constant([b"not an image"] * 5))
    good = encode(np.zeros((10, 10, 3), np.uint8))
    assert served["serving_default"](image_bytes=tf.constant([good] * 4))["label"].shape == (4,)
    for key in PIXEL_SIGNATURES:
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{key}: a request holds 5 images"):
            served[key](images=tf.zeros([5, 8, 8, 3]))


def test_the_api_sends_a_version_batches_it_takes(versions):
    model = imagesentiment.load(versions[0])
    table = model.predict([np.zeros((8, 8, 3), np.uint8)] * 10, batch_size=32)
    assert len(table) == 10 and table["label"].notna().all()
    assert len(model.explainer()(np.zeros((9, 8, 8, 3), np.float32))["heatmap"]) == 9


def test_the_tflite_wrapper_checks_what_the_api_checks(tiny):
    model = TFLitePredictor(convert(tiny, "float32", class_names=CLASSES))
    explain = model.explainer()
    unit = np.random.default_rng(0).random((1, 8, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"image 0 of the batch: .*look like the \[0, 1\] scale"):
        explain(unit)
    with pytest.raises(ValueError, match=r"images must have 3 channels \(RGB\)"):
        explain(np.zeros((1, 8, 8, 4), np.float32))
    with pytest.raises(ValueError, match=r"must lie in \[0, 255\]"):
        explain(np.full((1, 8, 8, 3), np.nan, np.float32))
    assert explain(np.zeros((1, 8, 8, 3), np.float32))["heatmap"].shape[0] == 1


def test_explain_images_errors_name_explain_images(versions):
    served = _signatures(versions[0])
    for images in (np.full((1, 8, 8, 3), np.nan, np.float32), np.zeros((1, 9, 9, 3), np.float32)):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            served["explain_images"](images=tf.constant(images))
        assert "explain_images: " in raised.value.message and "predict_images" not in raised.value.message
