import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from imagesentiment.data import ImageSet, decode_and_resize, from_folder, make_dataset
from imagesentiment.data.pipeline import declared_pixels

import struct

import pytest

from conftest import encode, huge_png_header, odd_but_valid_files


def _first_batch(ds):
    return [t.numpy() for t in next(iter(ds))]


def test_batches_have_shape_dtype_range_and_labels(synthetic_root):
    images = from_folder(synthetic_root)
    x, y = _first_batch(make_dataset(images, (32, 40), batch_size=16))
    assert x.shape == (16, 32, 40, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 100
    assert y.dtype == np.int32 and set(y) <= {0, 1, 2}
    assert sum(int(b[0].shape[0]) for b in make_dataset(images, (32, 32), 16)) == len(images)


def test_evaluation_is_the_plain_decoded_image(synthetic_root):
    images = from_folder(synthetic_root)
    x, _ = _first_batch(make_dataset(images, (48, 48), batch_size=4))
    expected = np.asarray(Image.open(images.frame["path"][0]).convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(x[0], expected)


def test_training_augments_and_shuffles_reproducibly(synthetic_root):
    images = from_folder(synthetic_root)
    first = _first_batch(make_dataset(images, (48, 48), 8, training=True, seed=1))
    again = _first_batch(make_dataset(images, (48, 48), 8, training=True, seed=1))
    plain = _first_batch(make_dataset(images, (48, 48), 8))
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1], plain[1]) or not np.allclose(first[0], plain[0])
    ds = make_dataset(images, (48, 48), 90, training=True, seed=1)
    epoch1, epoch2 = (next(iter(ds))[0].numpy() for _ in range(2))
    assert not np.allclose(epoch1, epoch2), "each epoch must see new shuffles and augmentations"


def test_cache_gives_the_same_batches(synthetic_root, tmp_path):
    images = from_folder(synthetic_root)
    plain = _first_batch(make_dataset(images, (24, 24), 8))
    for cache in (True, str(tmp_path / "cache")):
        cached = make_dataset(images, (24, 24), 8, cache=cache)
        for _ in range(2):
            np.testing.assert_array_equal(_first_batch(cached)[0], plain[0])


def test_every_colour_mode_and_size_becomes_rgb(tmp_path):
    files = odd_but_valid_files(tmp_path)
    big = tmp_path / "big.jpg"
    Image.fromarray(np.full((600, 450, 3), 200, np.uint8)).save(big)
    frame = pd.DataFrame({"path": [str(p) for p in [*files.values(), big]], "label": "neutral"})
    x, _ = _first_batch(make_dataset(ImageSet(frame), (48, 48), batch_size=len(frame)))
    assert x.shape == (len(frame), 48, 48, 3)
    assert abs(x[-1].mean() - 200) < 1


def test_decode_and_resize_of_bytes():
    data = tf.io.encode_png(tf.zeros((10, 20, 1), tf.uint8))
    image = decode_and_resize(data, (8, 8))
    assert image.shape == (8, 8, 3) and image.dtype == tf.uint8


def _huge(fmt: str) -> bytes:
    """A small image whose header is patched to declare 30,000 x 30,000 pixels."""
    data = bytearray(encode(np.zeros((40, 50, 3), np.uint8), fmt.split("-")[0]))
    if fmt == "JPEG":
        at = data.find(b"\xff\xc0") + 5
        data[at:at + 4] = struct.pack(">HH", 30000, 30000)
    elif fmt == "GIF":
        data[6:10] = struct.pack("<HH", 30000, 30000)
    elif fmt == "BMP":
        data[18:26] = struct.pack("<ii", 30000, 30000)
    elif fmt.startswith("WEBP"):  # WebP sizes stop at 16,383: 16,000 x 16,000
        data = bytearray(encode(np.zeros((40, 50, 3), np.uint8), "WEBP", lossless=fmt == "WEBP-lossless"))
        if fmt == "WEBP-extended":
            data = bytearray(encode(np.zeros((40, 50, 4), np.uint8), "WEBP", exif=b"Exif\0\0"))
        chunk = bytes(data[12:16])
        if chunk == b"VP8 ":
            data[26:30] = struct.pack("<HH", 16000, 16000)
        elif chunk == b"VP8L":
            bits = struct.unpack("<I", data[21:25])[0] & ~(2 ** 28 - 1)
            data[21:25] = struct.pack("<I", bits | 15999 | 15999 << 14)
        else:
            assert chunk == b"VP8X", chunk
            data[24:30] = (15999).to_bytes(3, "little") * 2
        assert chunk == {"WEBP": b"VP8 ", "WEBP-lossless": b"VP8L", "WEBP-extended": b"VP8X"}[fmt]
    return bytes(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "WEBP-lossless", "WEBP-extended"])
def test_huge_declared_size_is_refused_before_decoding(fmt):
    data = huge_png_header() if fmt == "PNG" else _huge(fmt)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image too large"):
        decode_and_resize(tf.constant(data), (8, 8))
    compiled = tf.function(lambda d: decode_and_resize(d, (8, 8)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image too large"):
        compiled(tf.constant(data))


def test_gif_frames_count_together():
    """The GIF decoder reads every frame of an animation (even when only the first is kept): 8 frames of
    3,000 x 3,000 (a 60 KB file) would take 1 GB; their total is refused before decoding. One frame is fine."""
    frames = [Image.new("P", (3000, 3000), i % 2) for i in range(2)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames * 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image too large"):
        decode_and_resize(tf.constant(animated), (8, 8))
    assert declared_pixels(tf.constant(animated)) > 64_000_000
    assert declared_pixels(tf.constant(encode(frames[0], "GIF"))) == 9_000_000
    small = encode(np.zeros((40, 50, 3), np.uint8), "GIF", save_all=True,
                   append_images=[Image.new("RGB", (50, 40), c) for c in ("red", "green", "blue")])
    assert declared_pixels(tf.constant(small)) == 4 * 40 * 50


def test_webp_declared_sizes_are_read():
    for options in ({}, {"lossless": True}):
        data = encode(np.zeros((40, 50, 3), np.uint8), "WEBP", **options)
        assert declared_pixels(tf.constant(data)) == 40 * 50


def test_jpeg_xl_is_refused_before_decoding():
    """TensorFlow decodes JPEG XL, but its declared size is not read here: it is refused as unsupported."""
    for magic in (b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="unsupported image format: JPEG XL"):
            decode_and_resize(tf.constant(magic + bytes(64)), (8, 8))


@pytest.mark.parametrize("cache", [False, True])
def test_sample_weights_stay_with_their_images_through_shuffling(synthetic_root, cache):
    images = from_folder(synthetic_root)
    plain = _first_batch(make_dataset(images, (24, 24), len(images)))[0]
    index = {x.tobytes(): i for i, x in enumerate(plain)}
    weights = np.arange(len(images)) + 1.0
    ds = make_dataset(images, (24, 24), 16, training=True, augment_images=False, cache=cache, seed=3,
                      weights=weights)
    seen = [(index[x.tobytes()], y, w) for xs, ys, ws in ds.as_numpy_iterator() for x, y, w in zip(xs, ys, ws)]
    rows = [i for i, _, _ in seen]
    assert sorted(rows) == list(range(len(images))) and rows != sorted(rows), "all of them, shuffled"
    labels = images.label_ids.to_numpy()
    assert all(y == labels[i] and w == weights[i] for i, y, w in seen)
