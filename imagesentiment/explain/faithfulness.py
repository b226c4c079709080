"""Do the heat maps point at what the model uses? Deletion and insertion curves (Petsiuk et al. 2018).

Pixels are taken most relevant first. Deletion replaces a growing fraction of
them with mid-grey and follows the probability of the explained class: a
faithful map makes it fall fast (a low area under the curve). Insertion starts
from a mid-grey image and reveals the pixels in the same order: a faithful map
makes it rise fast (a high area). A random map is the baseline a method has to
beat. The fill is a constant grey rather than the image's mean colour, which
would carry the colour (and so often the class) of what it replaces.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..runtime import keras
from ..data import ImageSet, make_dataset
from .base import Target, class_names, resolve_targets
from .methods import METHODS, explain

RANDOM = "random"


@dataclass
class Curves:
    """Probability of the explained class ``(B, steps + 1)`` against the fraction of pixels removed or revealed."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> float:
        """Mean area under the deletion curves (lower is better)."""
        return float(np.trapezoid(self.deletion, self.fractions, axis=1).mean())

    @property
    def insertion_auc(self) -> float:
        """Mean area under the insertion curves (higher is better)."""
        return float(np.trapezoid(self.insertion, self.fractions, axis=1).mean())


def pixel_ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each pixel ``(B, H, W)``, 0 for the most relevant; ties are broken at random."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    ranks = np.empty(flat.shape, np.int64)
    for b, values in enumerate(flat):
        ranks[b, np.lexsort((rng.random(values.size), -values))] = np.arange(values.size)
    return ranks.reshape(np.shape(maps))


def perturbation_curves(model: keras.Model, images: np.ndarray, maps: np.ndarray, target: Target = None,
                        steps: int = 20, seed: int = 0, fill: float = 127.5) -> Curves:
    """Deletion and insertion curves of ``maps`` for a float32 batch in [0, 255] at the model's input size;
    removed (not yet revealed) pixels take the value ``fill``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (points on each curve: steps + 1), got {steps}")
    images = np.asarray(images, np.float32)
    if len(model.outputs) > 1:  # the classes first, then a model's ratings: the curves follow a class
        model = keras.Model(model.inputs[0], model.outputs[0])
    predicted = np.asarray(model(images, training=False)).argmax(-1)
    targets = resolve_targets(target, predicted, class_names(model))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    ranks = pixel_ranks(maps, np.random.default_rng(seed))
    counts = np.round(fractions * ranks[0].size)[:, None, None, None]
    deletion, insertion = (np.empty((len(images), steps + 1), np.float32) for _ in range(2))
    for b, image in enumerate(images):
        chosen = ranks[b][None, ..., None] < counts  # (steps + 1, H, W, 1): pixels removed / revealed
        batch = np.concatenate([np.where(chosen, fill, image), np.where(chosen, image, fill)])
        probability = np.asarray(model(batch, training=False))[:, targets[b]]
        deletion[b], insertion[b] = probability[:steps + 1], probability[steps + 1:]
    return Curves(fractions, deletion, insertion)


def evaluate(model: keras.Model, images: np.ndarray, methods: Sequence[str] = tuple(METHODS),
             target: Target = None, steps: int = 20, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """A table with one row per method and one for a random map: deletion and insertion AUC,
    their difference (higher is better) and the seconds per image the maps took (first call included).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown explanation methods {unknown}; choose from {list(METHODS)}")
    images = np.asarray(images, np.float32)
    rows = []
    for method in tqdm([*methods, RANDOM], desc="faithfulness", disable=not progress):
        start = time.perf_counter()
        if method == RANDOM:
            maps = np.random.default_rng(seed).random(images.shape[:3])
        else:
            maps = explain(model, images, method, target)
        seconds = (time.perf_counter() - start) / len(images)
        curves = perturbation_curves(model, images, maps, target, steps, seed)
        rows.append({"method": method, "deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc,
                     "insertion_minus_deletion": curves.insertion_auc - curves.deletion_auc,
                     "s_per_image": seconds})
    return pd.DataFrame(rows).set_index("method")


SLOW = ("scorecam",)  # left out of a data set's table unless named: a forward pass per feature map


def evaluate_on(model: keras.Model, images: ImageSet, methods: Sequence[str] | None = None, target: Target = None,
                steps: int = 20, seed: int = 0, limit: int = 64, batch_size: int = 32,
                progress: bool = False) -> pd.DataFrame:
    """:func:`evaluate` on at most ``limit`` photos of a labelled set, drawn with ``seed`` and decoded as the
    pipeline decodes them; ``methods`` none: every method but those in :data:`SLOW`. ``table.attrs["images"]``:
    how many were used."""
    rows = np.random.default_rng(seed).permutation(len(images))[:limit]
    batches = make_dataset(images.subset(sorted(rows)), model.input_shape[1:3], batch_size)
    x = np.concatenate([batch.numpy() for batch, _ in batches])
    table = evaluate(model, x, methods or [m for m in METHODS if m not in SLOW], target, steps, seed, progress)
    table.attrs["images"] = len(x)
    return table
