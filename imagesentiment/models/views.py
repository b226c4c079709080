"""Test-time views: the crops and mirrors of an image that a prediction is averaged over, in evaluation
(:func:`test_time_views`) and inside a model's own graph (:func:`with_views`), so an exported model answers
with the views in one call.

A view is a :class:`TestTimeView` layer: a crop resized back to the image's size by bilinear sampling (as
``tf.image.crop_and_resize`` samples), then the mirror where asked. It is built of matrix products and a
reverse, operations TFLite has built in (at any batch size).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..runtime import keras
from .build import PREDICTIONS, class_names, ensemble_members

CROP_KEEP = 0.85  # share of each side a test-time crop keeps (the training crops keep 0.8-1.0)
Box = tuple[float, float, float, float]  # normalised [y1, x1, y2, x2]
CROPS = ("centre", "top_left", "top_right", "bottom_left", "bottom_right")  # the order of :func:`crop_boxes`


def crop_boxes(keep: float = CROP_KEEP) -> list[Box]:
    """The centre crop and the four corner crops (:data:`CROPS`), each keeping ``keep`` of each side."""
    o = 1.0 - keep
    return [(o / 2, o / 2, o / 2 + keep, o / 2 + keep), (0.0, 0.0, keep, keep), (0.0, o, keep, 1.0),
            (o, 0.0, 1.0, keep), (o, o, 1.0, 1.0)]


def sampling_matrix(start: float, end: float, size: int) -> np.ndarray:
    """``(size, size)`` weights that resample a side's span [start, end] (normalised) to ``size`` points, each
    the linear blend of its two nearest pixels at the positions ``tf.image.crop_and_resize`` samples."""
    positions = (start * (size - 1) + np.arange(size) * (end - start) if size > 1
                 else np.array([(start + end) / 2 * (size - 1)]))
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, size - 1)
    share = positions - low
    matrix = np.zeros((size, size), np.float32)
    np.add.at(matrix, (np.arange(size), low), 1 - share)
    np.add.at(matrix, (np.arange(size), high), share)
    return matrix


@keras.saving.register_keras_serializable(package="imagesentiment")
class TestTimeView(keras.layers.Layer):
    """One view of an image batch ``(B, H, W, C)``: the crop ``box`` resized back to ``H x W`` (None: the
    whole image), then mirrored left to right if ``flip``."""

    def __init__(self, box: Sequence[float] | None = None, flip: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.box = None if box is None else tuple(float(v) for v in box)
        self.flip = bool(flip)

    def build(self, input_shape: tuple) -> None:
        if self.box is not None:
            y1, x1, y2, x2 = self.box
            self.rows = keras.ops.convert_to_tensor(sampling_matrix(y1, y2, int(input_shape[1])))
            self.columns = keras.ops.convert_to_tensor(sampling_matrix(x1, x2, int(input_shape[2])))

    @staticmethod
    def _resample(matrix: keras.KerasTensor, images: keras.KerasTensor) -> keras.KerasTensor:
        """``images`` (B, H, W, C) with their rows resampled: ``matrix`` (H, H) times each image as (H, W * C)."""
        _, height, width, channels = images.shape
        flat = keras.ops.reshape(images, (-1, height, width * channels))
        return keras.ops.reshape(keras.ops.matmul(matrix, flat), (-1, height, width, channels))

    def call(self, images: keras.KerasTensor) -> keras.KerasTensor:
        if self.box is not None:
            images = self._resample(self.rows, images)
            images = keras.ops.transpose(self._resample(self.columns, keras.ops.transpose(images, (0, 2, 1, 3))),
                                         (0, 2, 1, 3))
        return keras.ops.flip(images, axis=2) if self.flip else images

    def get_config(self) -> dict:
        return {**super().get_config(), "box": None if self.box is None else list(self.box), "flip": self.flip}


def view_layers(flip_tta: bool = False, crop_tta: bool = False, keep: float = CROP_KEEP) -> list[TestTimeView]:
    """The views :func:`test_time_views` makes, in its order (the whole image first), each named for what it
    shows (``view_whole``, ``view_top_left_mirrored``, ...)."""
    places = {"whole": None, **(dict(zip(CROPS, crop_boxes(keep))) if crop_tta else {})}
    return [TestTimeView(box, flip, name=f"view_{place}{'_mirrored' if flip else ''}")
            for flip in ([False, True] if flip_tta else [False]) for place, box in places.items()]


def test_time_views(batch, flip_tta: bool = False, crop_tta: bool = False, keep: float = CROP_KEEP) -> list:
    """The views of ``batch`` (B, H, W, 3) a prediction is averaged over: the batch itself; with
    ``crop_tta`` its centre and four corner crops (keeping ``keep`` of each side, resized back);
    with ``flip_tta`` each of those and then each mirrored, in that order."""
    return [view(batch) for view in view_layers(flip_tta, crop_tta, keep)]


def with_views(model: keras.Model, flip_tta: bool = False, crop_tta: bool = False) -> keras.Model:
    """``model`` (or an ensemble's members) on each of the views in one graph, its ``predictions`` the mean
    over views (and members): an exported model then answers with the views in one call. Explanations
    use the whole image (:func:`model_views`). ``model`` itself when no view is asked for; a model that has
    views already is refused."""
    if not (flip_tta or crop_tta):
        return model
    if len(model_views(model)) > 1:  # its members would be taken without the views it has
        raise ValueError(f"model {model.name!r} already averages test-time views in its graph; give the model "
                         "it was made from")
    members = ensemble_members(model)
    inputs = keras.Input(tuple(model.input_shape[1:]), name="image")
    views = [inputs, *(view(inputs) for view in view_layers(flip_tta, crop_tta)[1:])]
    outputs = keras.layers.Average(name=PREDICTIONS)([member(view) for view in views for member in members])
    viewed = keras.Model(inputs, outputs, name=f"{model.name}_views")
    viewed.class_names = class_names(model)
    return viewed


def model_views(model: keras.Model) -> list[Callable]:
    """The views a model averages over inside its graph (:func:`with_views`): the whole image first, then each
    :class:`TestTimeView` layer; ``[identity]`` for a model without views."""
    return [lambda images: images, *(l for l in model.layers if isinstance(l, TestTimeView))]
