"""Small generated image sets that a model can learn, for demos and tests.

Each image is grey noise with one coloured square whose colour gives its class
(negative: blue, neutral: green, positive: red). Only the square carries the
signal, so a faithful heat map should point at it; its box is recorded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .constants import SENTIMENTS
from .imageset import ImageSet

CLASS_COLOURS = {"negative": (40, 60, 220), "neutral": (40, 200, 60), "positive": (230, 50, 40)}


def synthetic_image(label: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One ``(size, size, 3)`` uint8 image of class ``label`` and the square's box (top, left, bottom, right)."""
    image = rng.normal(128, 30, (size, size, 1)).clip(0, 255).repeat(3, axis=2)
    side = max(2, size // 3)
    top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
    colour = np.array(CLASS_COLOURS[label], dtype=float)
    image[top:top + side, left:left + side] = colour + rng.normal(0, 12, (side, side, 3))
    return image.clip(0, 255).astype(np.uint8), (top, left, top + side, left + side)


def make_synthetic_set(root: str | os.PathLike, per_class: int = 40, size: int = 64,
                       classes: Sequence[str] = SENTIMENTS, seed: int = 0,
                       image_format: str = "png") -> ImageSet:
    """Write ``root/<class>/<n>.<format>`` images and ``root/boxes.csv``; return them as an ImageSet."""
    unknown = sorted(set(classes) - set(CLASS_COLOURS))
    if unknown:
        raise ValueError(f"synthetic classes must be among {list(CLASS_COLOURS)}, not {unknown}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = []
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            pixels, box = synthetic_image(label, size, rng)
            path = root / label / f"{n:04d}.{image_format}"
            Image.fromarray(pixels).save(path)
            rows.append((str(path.resolve()), label, *box))
    frame = pd.DataFrame(rows, columns=["path", "label", "top", "left", "bottom", "right"])
    frame.to_csv(root / "boxes.csv", index=False)
    return ImageSet(frame, tuple(SENTIMENTS))
