"""Fuzzing the decode-and-predict path (issue 9): random bytes, random bytes behind each format's
magic number, and valid images of every format with bytes flipped, cut, inserted or set to
extreme sizes. Every case must end in an image or in the documented refusal: no other
exception, no crash of the process, no hang (each example has a deadline). Derandomized, so
CI runs the same cases every time; 2,800 cases in all."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagesentiment.data import check_image, decode_and_resize
from imagesentiment.data.synthetic import synthetic_image
from imagesentiment.inference import KerasPredictor

from conftest import encode



def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=timedelta(seconds=3),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(5)
    first, second = (Image.fromarray(synthetic_image(label, 24, rng)[0]) for label in ("positive", "negative"))
    return [encode(first, "PNG"), encode(first, "JPEG"), encode(first, "JPEG", progressive=True),
            encode(first, "GIF"), encode(first, "GIF", save_all=True, append_images=[second]), encode(first, "BMP"),
            encode(first, "WEBP"), encode(first, "WEBP", lossless=True), encode(first.convert("RGBA"), "PNG"),
            encode(first.convert("P"), "PNG"), encode(first.convert("CMYK"), "JPEG"),
            tf.io.encode_png(tf.cast(np.asarray(first), tf.uint16) * 257).numpy()]


SEEDS = _seeds()
MAGIC = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"BM", b"RIFF\0\0\0\0WEBPVP8 ",
         b"RIFF\0\0\0\0WEBPVP8L", b"RIFF\0\0\0\0WEBPVP8X", b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n"]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["set", "cut", "insert", "extreme"]))
        at = draw(st.integers(0, len(data)))
        if kind == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # a size field, a length or a marker pushed to its extreme
            data[at:at + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff", b"\xff\xd9", b"\x21\xf9"]))
    return bytes(data)


ANY_BYTES = st.one_of(st.binary(max_size=600), st.builds(lambda m, b: m + b, st.sampled_from(MAGIC),
                                                          st.binary(max_size=600)), mutated(), mutated())


@pytest.fixture(scope="module")
def decode():
    compiled = tf.function(lambda data: decode_and_resize(data, (16, 16)),
                           input_signature=[tf.TensorSpec([], tf.string)])
    compiled(tf.constant(SEEDS[0]))  # traced once, before the deadlines count
    return compiled


def test_seeds_are_valid_images(decode):
    for data in SEEDS:
        assert decode(tf.constant(data)).shape == (16, 16, 3)


@fuzz(2000)
@given(data=ANY_BYTES)
def test_decode_and_resize_gives_an_image_or_invalid_argument(decode, data):
    try:
        image = decode(tf.constant(data)).numpy()
    except tf.errors.InvalidArgumentError:
        return
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8


@pytest.fixture(scope="module")
def predictor(trained_cnn):
    predictor = KerasPredictor(trained_cnn[0])
    predictor.predict(SEEDS[0])
    return predictor


@fuzz(600)
@given(data=ANY_BYTES)
def test_predict_gives_probabilities_or_names_the_unreadable_input(predictor, data):
    try:
        table = predictor.predict(data)
    except ValueError as exc:
        assert f"{len(data)} bytes given as an image: not a readable image: " in str(exc)
        return
    probabilities = table[predictor.class_names].to_numpy()
    assert probabilities.shape == (1, 3) and np.isfinite(probabilities).all()
    assert abs(probabilities.sum() - 1) < 1e-4 and table["label"][0] in predictor.class_names


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "file.jpg"


@fuzz(200)
@given(data=ANY_BYTES)
def test_file_check_never_raises_and_agrees_with_the_decoder(decode, scratch, data):
    scratch.write_bytes(data)
    result = check_image(scratch)
    if result.reason == "":  # what the checks accept, the pipeline decodes
        assert decode(tf.constant(data)).shape == (16, 16, 3)
        assert result.width > 0 and result.height > 0
