"""What every explanation method shares: the model's logits, its classes, the target, clean maps.

A method is a subclass of :class:`Explainer` that names its tf-keras-vis class
and the options of its call. tf-keras-vis gets the logits model
(:func:`imagesentiment.models.build.score_model`: the logits, then any ratings) with ``clone=False`` and, for the
CAM methods, the target layer by name with ``seek_penultimate_conv_layer=False``
(on Keras 3 a layer object or a model modifier fails). Maps come back at the
model's input size, min-max normalised per image to [0, 1]; NaN become zeros,
and an image without any spatial variation (blank or constant) gets a map of zeros.
"""
from __future__ import annotations

import difflib
import os
from functools import cached_property
from typing import Any, ClassVar, Sequence, Union

import numpy as np
from ..runtime import keras, tf
from tf_keras_vis import ModelVisualization
from tf_keras_vis.utils.scores import CategoricalScore

from ..data import check_pixel_range, decode_or_reason
from ..data.constants import MAX_BYTES
from ..data.imageset import read_input
from ..data.magic import unreadable
from ..models.build import class_names, find_target_layer, rating_names, score_model
from .onepass import normalize_maps

Target = Union[int, str, None, Sequence[Union[int, str, None]]]


def target_index(target: int | str, classes: Sequence[str], ratings: Sequence[str] = ()) -> int:
    """The output index of a class given by name or index, or of a rating given by name (``valence``: its
    classes first, then the ratings, as :func:`~imagesentiment.models.build.score_model` orders them)."""
    if isinstance(target, str):
        if target in ratings:
            return len(classes) + list(ratings).index(target)
        if target not in classes:
            also = f", and its ratings {list(ratings)}" if ratings else ""
            raise ValueError(f"unknown class {target!r}; the model's classes are {list(classes)}{also}")
        return list(classes).index(target)
    if not 0 <= int(target) < len(classes):
        raise ValueError(f"class index {target} is out of range; the model's classes are "
                         f"{dict(enumerate(classes))}")
    return int(target)


def resolve_targets(target: Target, predicted: np.ndarray, classes: Sequence[str],
                    ratings: Sequence[str] = ()) -> np.ndarray:
    """What to explain per image: the predicted class where ``target`` is None, else the named class (a name or
    an index) or rating (a name among ``ratings``), one for the whole batch or one per image.
    """
    if target is None or isinstance(target, (str, int, np.integer)):
        target = [target] * len(predicted)
    if len(target) != len(predicted):
        raise ValueError(f"{len(target)} targets given for {len(predicted)} images")
    return np.array([p if t is None else target_index(t, classes, ratings) for t, p in zip(target, predicted)],
                    np.int32)


def clean_maps(maps: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Maps ``(B, H, W)`` without NaN or infinities, each normalised to [0, 1]; the map of an
    image without spatial variation is all zeros (there is nothing in it to point at).
    """
    maps = np.nan_to_num(np.asarray(maps, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    maps = normalize_maps(tf.constant(maps)).numpy()
    flat = np.ptp(images.reshape(len(images), -1, images.shape[-1]), axis=1).max(axis=1) == 0
    maps[flat] = 0.0
    return maps


def feature_layers(model: keras.Model) -> list[str]:
    """Names of the layers with a spatial feature map (a 4-D output), input to output."""
    return [l.name for l in model.layers if not isinstance(l, keras.layers.InputLayer) and len(l.output.shape) == 4]


def choices(given: str, options: Sequence[str], examples: Sequence[str]) -> str:
    """What to give instead of ``given``: all ``options`` when few, else the closest and some ``examples``
    (a MobileNetV2 has 150 layers with a feature map, matplotlib some 180 colour maps)."""
    if len(options) <= 12:
        return f"choose one of {list(options)}"
    close = difflib.get_close_matches(given, options, 3)
    return ((f"closest: {', '.join(map(repr, close))}; " if close else "")
            + f"{len(options)} in all, e.g. {', '.join(map(repr, examples))}")


def layer_choices(given: str, model: keras.Model) -> str:
    """:func:`choices` among ``model``'s feature layers, the last five (where class evidence is) as examples."""
    return choices(given, feature_layers(model), feature_layers(model)[-5:])


def load_images(paths: Sequence[str | os.PathLike], image_size: Sequence[int],
                max_bytes: int = MAX_BYTES) -> tuple[np.ndarray, list[np.ndarray]]:
    """Image files as a float32 batch ``(B, H, W, 3)`` in [0, 255] at ``image_size`` (as the
    pipeline resizes them) and the original uint8 images, for overlays at full resolution. A file that is not
    a regular one (a FIFO, a device) or is larger than ``max_bytes`` is refused unread, a ``ValueError`` naming it.
    """
    batch, originals = [], []
    for path in paths:
        data = read_input(path, max_bytes)
        pixels, reason = decode_or_reason(data, image_size)
        if pixels is None:  # checked before decoding: no full-size decode of a bomb
            raise ValueError(f"{path}: {unreadable(reason)}")
        batch.append(pixels)
        originals.append(tf.io.decode_image(data, channels=3, expand_animations=False).numpy())
    return np.stack(batch), originals


class Explainer:
    """One method bound to one model: ``explainer(images, target=None)`` -> maps ``(B, H, W)``.

    ``images`` are float32 ``(B, H, W, 3)`` in [0, 255] at the model's input size.
    Holds the logits model, not the model itself, so a cached explainer does not
    keep a model alive; the tf-keras-vis object is built on first use and reused.
    """

    name: ClassVar[str]
    visualization_class: ClassVar[type[ModelVisualization]]

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None) -> None:
        self.classes = class_names(model, classes)
        self.ratings = rating_names(model)
        self.image_size = tuple(int(s) for s in model.input_shape[1:3])
        self.scores = score_model(model)  # and the ratings after the logits, where the model gives them

    @cached_property
    def visualization(self) -> ModelVisualization:
        """The tf-keras-vis object on the logits model, built once."""
        return self.visualization_class(self.scores, clone=False)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of the tf-keras-vis call besides the score and the images."""
        return {}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, classes)`` (softmax of the logits)."""
        return tf.nn.softmax(self.scores([images], training=False)[:, :len(self.classes)]).numpy()

    def compute(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Raw maps ``(B, H, W)`` for output ``targets[i]`` of image ``i`` (a class, or a rating after them)."""
        return self.visualization(CategoricalScore(targets.tolist()), images, **self.options())

    def __call__(self, images: np.ndarray, target: Target = None) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (*self.image_size, 3):
            raise ValueError(f"images must be a batch of shape (B, {self.image_size[0]}, {self.image_size[1]}, 3) "
                             f"at the model's input size, not {images.shape}; read files with load_images()")
        for index, image in enumerate(images):
            check_pixel_range(image, f"image {index} of the batch")
        targets = resolve_targets(target, self.probabilities(images).argmax(-1), self.classes, self.ratings)
        return clean_maps(self.compute(images, targets), images)


class CamExplainer(Explainer):
    """A class activation map over the feature map of one layer (the model's own target layer by default)."""

    def __init__(self, model: keras.Model, classes: Sequence[str] | None = None, layer: str | None = None) -> None:
        if layer is not None and layer not in feature_layers(model):
            raise ValueError(f"{layer!r} is not a layer with a feature map; {layer_choices(layer, model)}")
        self.layer = layer or find_target_layer(model)
        super().__init__(model, classes)

    def options(self) -> dict[str, Any]:
        return {"penultimate_layer": self.layer, "seek_penultimate_conv_layer": False, "normalize_cam": False}
