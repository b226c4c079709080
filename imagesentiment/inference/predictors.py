"""Predictors: class probabilities, and heat maps in one pass, from a model in any form it ships in.

:class:`Predictor` takes images as paths, encoded bytes, pixel arrays or PIL images (one or a batch,
:func:`to_pixels`) and answers with probabilities or a table; :class:`KerasPredictor`,
:class:`SavedModelPredictor` and :class:`TFLitePredictor` say how each form runs one batch.
``imagesentiment.load`` (:mod:`imagesentiment.inference`) picks the one for a path.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import PIL.Image

from ..runtime import tf
from ..contract import unverified, verify_savedmodel, verify_tflite
from ..contract import (CHECKSUM_NAME, EXPLAIN, EXPLAIN_PIXELS, LIMITS, PIXELS, RATINGS, SERVING, ModelFileError,
                       class_names_file, override_names, read_metadata, saved_class_names)
from ..data import SENTIMENTS, decode_or_reason, rgb_array
from ..data.constants import MAX_BYTES
from ..data.imageset import file_problem, read_input
from ..data.magic import unreadable
from ..data.pipeline import checked_batch, chunks
from ..models.build import class_names as carried, rating_names
from ..runtime import DECODER_NOISE, LITERT_NOISE, filtered, without
from ..table.columns import answers
from ..models.views import test_time_views

if TYPE_CHECKING:
    import keras

Image = Union[str, os.PathLike, bytes, np.ndarray, PIL.Image.Image]


def _first_line(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, tf.errors.OpError) else str(exc)
    return f"{type(exc).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}"


def as_list(images: Image | Sequence[Image]) -> Sequence[Image]:
    """A single image (a path, bytes, a PIL image or one ``(H, W, C)`` or greyscale ``(H, W)`` array)
    as a batch of one; a batch array as is; any other iterable (a list, a pandas column) as a list."""
    if isinstance(images, (str, os.PathLike, bytes, PIL.Image.Image)):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 0:  # len() of it fails
            raise TypeError(f"images: a 0-d array ({images.item()!r}) is not an image; give an (H, W, 3) array, "
                            "a batch (B, H, W, 3), a path or encoded bytes")
        return [images] if images.ndim in (2, 3) else images
    if isinstance(images, Mapping) or not isinstance(images, Iterable):
        raise TypeError("images must be one image (a path, encoded bytes, a pixel array or a PIL image) or a "
                        f"sequence of them, not {type(images).__name__}")
    return images if isinstance(images, Sequence) else list(images)


def to_pixels(images: Image | Sequence[Image], image_size: Sequence[int], first: int = 0,
              max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Float32 ``(B, H, W, 3)`` in [0, 255] at ``image_size`` from paths, encoded bytes, arrays or PIL images.

    Files and bytes are decoded and resized as in training; an array (see :func:`rgb_array`)
    ``(H, W, 3)`` or ``(B, H, W, 3)`` of another size is resized the same way. A path that is not a regular file
    (a FIFO, a device) or names a file larger than ``max_bytes`` is refused unread, a ``ValueError`` naming it.
    """
    images = as_list(images)
    size = [int(s) for s in image_size]
    with filtered(without(DECODER_NOISE)):  # libjpeg's lines on a damaged file that gets its error anyway
        batch = [_pixels(image, size, index, max_bytes) for index, image in enumerate(images, first)]
    return np.stack(batch) if batch else np.zeros([0, *size, 3], np.float32)


def original_pixels(image: Image, index: int = 0, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Float32 ``(H, W, 3)`` pixels of one image given in any form :func:`to_pixels` takes, at its own size
    (as the face detector takes it), the ``index``-th of its batch (named in errors)."""
    with filtered(without(DECODER_NOISE)):
        return _pixels(image, None, index, max_bytes)


def _pixels(image: Image, size: list[int] | None, index: int, max_bytes: int) -> np.ndarray:
    """Float32 ``(H, W, 3)`` pixels of one image given in any form :func:`to_pixels` takes, at ``size``
    (None: its own), the ``index``-th of its batch (named in errors); a file read if it is a regular one of at
    most ``max_bytes``."""
    if isinstance(image, PIL.Image.Image):  # 16-bit greyscale kept for rgb_array to reduce as the decoder does;
        # 32-bit integer and float images kept for its range checks (converting them to RGB clips them)
        image = np.asarray(image if image.mode in ("L", "RGB", "RGBA", "I;16", "I", "F") else image.convert("RGB"))
    if isinstance(image, np.ndarray):
        image = rgb_array(image, f"image {index} of the batch")
        pixels = np.clip(image.astype(np.float32), 0, 255) if size in (None, list(image.shape[:2])) else tf.cast(
            tf.saturate_cast(tf.round(tf.image.resize(image, size, antialias=True)), tf.uint8), tf.float32).numpy()
    elif image is None or (isinstance(image, float) and math.isnan(image)):
        raise ValueError(f"image {index} of the batch: a missing value ({image}), not an image")
    elif not isinstance(image, (str, os.PathLike, bytes)):
        raise TypeError(f"image {index} of the batch: expected a path, encoded bytes, a pixel array or a PIL "
                        f"image, not {type(image).__name__}")
    else:
        if isinstance(image, (str, os.PathLike)) and os.path.isdir(image):
            raise ValueError(f"{image}: a folder, not an image; give its files (imagesentiment.inputs."
                             "collect_images finds them) or run `imagesentiment predict FOLDER`")
        try:
            data = read_input(image, max_bytes) if isinstance(image, (str, os.PathLike)) else image
        except OSError as exc:
            raise ValueError(f"{image}: cannot be read ({exc.strerror or exc})") from None
        pixels, reason = decode_or_reason(data, size)
        if pixels is None:
            name = image if isinstance(image, (str, os.PathLike)) else f"{len(data)} bytes given as an image"
            raise ValueError(f"{name}: {unreadable(reason)}")
    return pixels


# float pixels (B, H, W, 3) -> "probabilities" (B, classes) and "heatmap" (B, H, W), as tensors or arrays
HeatmapFunction = Callable[[np.ndarray], Mapping[str, Any]]


class Predictor:
    """Class probabilities (and ratings) of image batches; subclasses say how one float batch is run
    (:meth:`_outputs`, or :meth:`_run` alone), and their ``form``."""

    form = "model"

    def __init__(self, class_names: Sequence[str], image_size: Sequence[int], outputs: int,
                 source: str = "(in memory)", ratings: Sequence[str] = ()) -> None:
        names = [str(c) for c in class_names] if not isinstance(class_names, str) else [class_names]
        if len(names) != outputs or len(set(names)) != len(names) or not all(names):
            raise ValueError(f"class names {names} for a model with {outputs} outputs: give as many, "
                             "distinct and non-empty (a list of names, not one string)")
        self.class_names = names
        self.image_size = tuple(int(s) for s in image_size)
        self.source = source
        self.ratings = tuple(ratings)  # valence and arousal, where the model gives them

    def __repr__(self) -> str:
        height, width = self.image_size
        rated = f"; ratings {', '.join(self.ratings)}" if self.ratings else ""
        return (f"<{self.form} {self.source}: classes {', '.join(self.class_names)}{rated}; input {height}x{width} "
                "RGB pixels>")

    def _outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """``probabilities`` ``(B, classes)`` and each of :attr:`ratings` ``(B,)`` of one float32 batch at the
        input size. A subclass overrides this, or only :meth:`_run` for a model without ratings."""
        return {"probabilities": self._run(pixels)}

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities ``(B, classes)`` of one float32 batch at the input size."""
        return self._outputs(pixels)["probabilities"]

    def scores(self, images: Image | Sequence[Image], batch_size: int = 32,
               max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
        """``probabilities`` ``(N, classes)`` and each of :attr:`ratings` ``(N,)`` of images in any form
        :func:`to_pixels` takes, ``batch_size`` at a time (files larger than ``max_bytes`` refused unread)."""
        parts = [self._outputs(to_pixels(chunk, self.image_size, number * batch_size, max_bytes))
                 for number, chunk in enumerate(chunks(as_list(images), batch_size))]
        if not parts:
            return {"probabilities": np.zeros([0, len(self.class_names)], np.float32),
                    **{name: np.zeros([0], np.float32) for name in self.ratings}}
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def probabilities(self, images: Image | Sequence[Image], batch_size: int = 32,
                      max_bytes: int = MAX_BYTES) -> np.ndarray:
        """Probabilities ``(N, classes)`` of images in any form :func:`to_pixels` takes (:meth:`scores`)."""
        return self.scores(images, batch_size, max_bytes)["probabilities"]

    def view_scores(self, pixels: np.ndarray | tf.Tensor, flip_tta: bool = False,
                    crop_tta: bool = False) -> dict[str, np.ndarray]:
        """``probabilities`` ``(B, classes)`` of a float batch at the input size, averaged over its
        :func:`test_time_views`, and each of :attr:`ratings` ``(B,)`` of the whole image (the first view: ratings
        take no test-time views), from one pass."""
        views = test_time_views(tf.convert_to_tensor(pixels, tf.float32), flip_tta, crop_tta)
        outputs = [self._outputs(view.numpy()) for view in views]
        return {**outputs[0], "probabilities": np.mean([output["probabilities"] for output in outputs], axis=0)}

    def _named(self, probabilities: np.ndarray, rated: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The scores of one batch by name, from the probabilities and, where the model has them, its ratings
        ``(B, len(ratings))``."""
        return {"probabilities": probabilities, **{name: rated[0][:, k] for k, name in enumerate(self.ratings)}}

    def _heatmaps(self) -> HeatmapFunction | None:
        """This form's one-pass prediction-and-Grad-CAM function, or None where it has none."""
        return None

    def explainer(self) -> HeatmapFunction:
        """A function of float pixels ``(B, H, W, 3)`` to numpy ``probabilities`` ``(B, classes)`` and
        ``heatmap`` ``(B, H, W)`` in [0, 1], from one pass; alike for every model form."""
        function = self._heatmaps()
        if function is None:
            raise ValueError(f"a {type(self).__name__} cannot make heat maps: load a run directory, a .keras file, "
                             "or a SavedModel or .tflite file exported with its explain signature")

        def explain(pixels: np.ndarray) -> dict[str, np.ndarray]:
            result = function(pixels)
            return {key: np.asarray(result[key]) for key in ("probabilities", "heatmap", *self.ratings)}
        return explain

    def predict(self, images: Image | Sequence[Image], batch_size: int = 32, errors: str = "raise",
                max_bytes: int = MAX_BYTES) -> pd.DataFrame:
        """A table with ``label``, ``confidence``, one probability column per class and, where the model gives
        them, ``valence`` and ``arousal``: a row per image; for a pandas Series, with its index (so that it joins
        back to the table the column came from).

        ``errors="raise"``: an image that cannot be read or used is an error naming it, and nothing is
        returned; ``"keep"``: it gets a row without answers and an ``error`` column says why, as
        ``imagesentiment predict`` writes it, and the other images are scored. Each face's rows too:
        :func:`imagesentiment.faces.predict_with_faces`. A path that is not a regular file (a FIFO, a device) or
        names a file larger than ``max_bytes`` (256 MiB) is such an image, refused before it is read.
        """
        if errors not in ("raise", "keep"):
            raise ValueError(f"errors must be 'raise' or 'keep', not {errors!r}")
        items = as_list(images)
        reasons = [""] * len(items)
        if errors == "raise":
            scores = self.scores(items, batch_size, max_bytes)
        else:
            scores = {"probabilities": np.full([len(items), len(self.class_names)], np.nan, np.float32),
                      **{name: np.full(len(items), np.nan, np.float32) for name in self.ratings}}
            for rows in chunks(range(len(items)), batch_size):
                usable = {}
                for i in rows:  # one at a time: a failure names its image alone
                    try:
                        usable[i] = to_pixels([items[i]], self.image_size, i, max_bytes)[0]
                    except (TypeError, ValueError) as exc:
                        reasons[i] = str(exc)
                if usable:
                    for key, values in self._outputs(np.stack(list(usable.values()))).items():
                        scores[key][list(usable)] = values
        table = answers(scores["probabilities"], self.class_names,
                        images.index if isinstance(images, pd.Series) else None,
                        {name: scores[name] for name in self.ratings})
        if errors == "keep":
            table["error"] = reasons
        return table


class KerasPredictor(Predictor):
    """A Keras model, run as one compiled function (``model.predict`` costs ~40 ms a call); ``source``: where
    it was loaded from."""

    form = "Keras model"

    def __init__(self, model: keras.Model, class_names: Sequence[str] | None = None, source: str | None = None) -> None:
        super().__init__(carried(model, class_names), model.inputs[0].shape[1:3], model.outputs[0].shape[-1],
                         source or f"{model.name!r} (in memory)", rating_names(model))
        self.model = model
        self.function = tf.function(lambda x: tf.nest.flatten(model(x, training=False)), reduce_retracing=True)
        self.averaged: dict[tuple[bool, bool], Callable] = {}  # view_scores' graphs, by views

    def _outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        probabilities, *rated = [output.numpy() for output in self.function(tf.constant(pixels))]
        return self._named(probabilities, rated)

    def view_scores(self, pixels: np.ndarray | tf.Tensor, flip_tta: bool = False,
                    crop_tta: bool = False) -> dict[str, np.ndarray]:
        """As :meth:`Predictor.view_scores`, the views made and averaged in one compiled graph."""
        if (flip_tta, crop_tta) not in self.averaged:
            size = tuple(self.image_size)

            @tf.function(input_signature=[tf.TensorSpec([None, *size, 3], tf.float32)], autograph=False)
            def forward(batch: tf.Tensor) -> list[tf.Tensor]:
                views = test_time_views(batch, flip_tta, crop_tta)
                outputs = [tf.nest.flatten(self.model(view, training=False)) for view in views]
                return [tf.add_n([output[0] for output in outputs]) / len(views), *outputs[0][1:]]
            self.averaged[flip_tta, crop_tta] = forward
        probabilities, *rated = [t.numpy() for t in self.averaged[flip_tta, crop_tta](
            tf.convert_to_tensor(pixels, tf.float32))]
        return self._named(probabilities, rated)

    def _heatmaps(self) -> HeatmapFunction:
        from ..explain.onepass import GradCamPredictor

        return GradCamPredictor(self.model)


class SavedModelPredictor(Predictor):
    """An exported version folder, through its ``predict_images`` signature; ``verify``: refuse one whose files
    differ from the checksums recorded at export (:mod:`imagesentiment.checksum`)."""

    form = "SavedModel"

    def __init__(self, path: str | os.PathLike, class_names: Sequence[str] | None = None, verify: bool = True) -> None:
        if verify:
            verify_savedmodel(path)
        else:
            unverified(path)
        try:
            loaded = tf.saved_model.load(str(path))
            self.signatures = loaded.signatures
        except Exception as exc:  # a damaged file raises OSError, ValueError, DecodeError, ...
            raise ModelFileError(f"{path}: not a readable SavedModel ({_first_line(exc)})") from exc
        if PIXELS not in self.signatures:
            raise ModelFileError(f"{path}: a SavedModel without the {PIXELS!r} signature (it has "
                                 f"{sorted(self.signatures)}): not one exported by imagesentiment")
        self.signature = self.signatures[PIXELS]
        limits = getattr(loaded, LIMITS, None)  # none in a version exported by an earlier release
        self.max_batch = int(limits[0].numpy()) if limits else None
        spec = next(iter(self.signature.structured_input_signature[1].values()))
        outputs = self.signature.structured_outputs["probabilities"].shape[-1]
        # the label asset is part of the graph: a version loads only with it
        super().__init__(override_names(class_names, saved_class_names(path), path), spec.shape[1:3], outputs,
                         str(path), tuple(rating for rating in RATINGS if rating in self.signature.structured_outputs))

    def _requests(self, signature: Callable, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """``signature``'s answers on ``pixels``, sent in requests of at most the version's ``max_batch`` images."""
        step = self.max_batch or max(len(pixels), 1)
        parts = [signature(images=tf.constant(pixels[first:first + step], tf.float32))
                 for first in range(0, max(len(pixels), 1), step)]
        return {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}

    def _outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        result = self._requests(self.signature, pixels)
        return {key: result[key] for key in ("probabilities", *self.ratings)}

    def _heatmaps(self) -> HeatmapFunction | None:
        if EXPLAIN_PIXELS not in self.signatures:
            return None
        return lambda pixels: self._requests(self.signatures[EXPLAIN_PIXELS], pixels)


class TFLitePredictor(Predictor):
    """A ``.tflite`` file or flatbuffer, through its ``serving_default`` signature with the LiteRT interpreter.

    Float pixels are quantized to the input's type (for the int8 model: uint8, scale 1, so unchanged).
    ``verify``: refuse a model whose bytes differ from the checksum recorded at export.
    """

    form = "TFLite model"

    def __init__(self, model: str | os.PathLike | bytes, class_names: Sequence[str] | None = None,
                 num_threads: int | None = None, verify: bool = True) -> None:
        from ai_edge_litert.interpreter import Interpreter


        if not isinstance(model, bytes) and (problem := file_problem(model, None)):  # a FIFO: read_bytes would wait
            raise ModelFileError(f"{model}: {problem}")
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        name = f"{len(content)} bytes given as a model" if isinstance(model, bytes) else str(model)
        if content[4:8] != b"TFL3":  # the flatbuffer file identifier of every TFLite model
            raise ModelFileError(f"{name}: not a TFLite model (no TFL3 identifier; "
                                 f"{'empty' if not content else 'starts with ' + repr(content[:8])})")
        try:
            metadata, record, unreadable = read_metadata(content) or {}, read_metadata(content, CHECKSUM_NAME), None
        except Exception as exc:  # a damaged flatbuffer or JSON raises many types: said once the interpreter has
            metadata, record, unreadable = {}, None, exc  # said what it finds (a truncated file: where it ends)
        if verify and unreadable is None:  # before the interpreter reads the flatbuffer
            verify_tflite(content, record, name, metadata)
        elif not verify:
            unverified(name)
        try:
            with filtered(without(LITERT_NOISE)):  # XNNPACK's notice comes when the tensors are allocated
                self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
                self.interpreter.allocate_tensors()
            self.runner = self.interpreter.get_signature_runner(SERVING)
        except ValueError as exc:
            raise ModelFileError(f"{name}: not a usable TFLite model ({_first_line(exc)})") from exc
        if unreadable is not None and verify:
            raise ModelFileError(f"{name}: not a usable TFLite model (its metadata cannot be read: "
                                 f"{_first_line(unreadable)})") from unreadable
        (_, detail), = self.runner.get_input_details().items()
        outputs = self.runner.get_output_details()["probabilities"]["shape"][-1]
        beside = None if isinstance(model, bytes) else class_names_file(Path(model))
        quantization = f" ({metadata['quantization']})" if "quantization" in metadata else ""
        super().__init__(override_names(class_names, metadata.get("classes") or beside, name) or SENTIMENTS,
                         detail["shape"][1:3], outputs, name + quantization,
                         tuple(rating for rating in RATINGS if rating in self.runner.get_output_details()))

    @staticmethod
    def _call(runner: Any, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """``runner`` (a signature) on float pixels (:func:`checked_batch`: a TFLite model checks nothing),
        quantized to its input's type where it has one."""
        pixels = checked_batch(pixels)
        (name, detail), = runner.get_input_details().items()
        scale, zero_point = detail["quantization"]
        if scale:
            limits = np.iinfo(detail["dtype"])
            pixels = np.clip(np.round(pixels / scale + zero_point), limits.min, limits.max)
        return runner(**{name: pixels.astype(detail["dtype"])})

    def _outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        result = self._call(self.runner, pixels)
        return {key: result[key] for key in ("probabilities", *self.ratings)}

    def _heatmaps(self) -> HeatmapFunction | None:
        if EXPLAIN not in self.interpreter.get_signature_list():
            return None
        runner = self.interpreter.get_signature_runner(EXPLAIN)
        return lambda pixels: self._call(runner, pixels)


