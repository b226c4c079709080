"""Shared fixtures: small generated image sets, bad files, and the real data when present."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from imagesentiment.data import make_synthetic_set

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.00_160_no_top.weights.h5"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real data sets not found at {SHARED_DATA} (a user's clone has none)")


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def huge_png_header(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG signature and header declaring a huge image, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def bad_files(folder: Path) -> dict[str, Path]:
    """Write one file of each unusable kind into ``folder``; return them by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    contents = {
        "zero_byte.jpg": b"",
        "truncated.jpg": encode(pixels, "JPEG")[:200],
        "truncated.png": encode(pixels, "PNG")[:200],
        "text.jpg": b"this is not an image\n",
        "huge.png": huge_png_header(),
    }
    files = {}
    for name, data in contents.items():
        files[name] = folder / name
        files[name].write_bytes(data)
    files["directory.jpg"] = folder / "directory.jpg"
    files["directory.jpg"].mkdir(exist_ok=True)
    return files


def odd_but_valid_files(folder: Path) -> dict[str, Path]:
    """Images in every colour mode and container the pipeline must accept."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    grey16 = Image.fromarray((np.random.default_rng(2).random((40, 50)) * 65535).astype(np.uint16))
    contents = {
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG"),
        "sixteen_bit.png": encode(grey16, "PNG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "rgba.png": encode(rgb.convert("RGBA"), "PNG"),
        "grey.jpg": encode(rgb.convert("L"), "JPEG"),
        "animated.gif": encode(rgb, "GIF", save_all=True, append_images=[rgb.rotate(90)]),
        "one_pixel.png": encode(np.zeros((1, 1, 3), np.uint8), "PNG"),
        "spaces and ünïcode.webp": encode(rgb, "WEBP"),
    }
    files = {}
    for name, data in contents.items():
        files[name] = folder / name
        files[name].write_bytes(data)
    return files


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_set(root, per_class=30, size=48, seed=0)
    return root


@pytest.fixture(scope="session")
def trained_cnn(synthetic_root: Path):
    """A small CNN trained on the synthetic set until it tells the three colours apart.

    Returns ``(model, images)``; the training is short (seconds) and seeded.
    """
    import keras

    from imagesentiment.data import from_folder, make_dataset
    from imagesentiment.models.build import build_cnn

    keras.utils.set_random_seed(0)
    images = from_folder(synthetic_root)
    model = build_cnn(3, (48, 48, 3), widths=(16, 32), dropout=0.2)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(make_dataset(images, (48, 48), 16, training=True, augment_images=False, cache=True),
              epochs=12, verbose=0)
    _, accuracy = model.evaluate(make_dataset(images, (48, 48), 32), verbose=0)
    assert accuracy > 0.9, f"the test model did not learn the synthetic classes (accuracy {accuracy:.2f})"
    return model, images


@pytest.fixture(scope="session")
def tiny_predictor():
    """An untrained 8 x 8 pixel model with the three sentiments, for tests of what is read and written
    around a model rather than of its answers."""
    import keras

    from imagesentiment.inference import KerasPredictor

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(inputs))
    return KerasPredictor(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)),
                          ["negative", "neutral", "positive"])

