"""SavedModel versions for TensorFlow Serving: ``BASE/<name>/<version>/`` with four signatures.

``serving_default``  ``image_bytes`` (encoded JPEG, PNG, GIF, BMP, WebP; decoded and resized
                     in the graph exactly as in training) -> ``label``, ``class_id``,
                     ``probabilities``, ``confidence``
``predict_images``   ``images`` (float32 RGB in [0, 255] at the model's input size) -> the same;
                     other sizes, another channel count, NaN or infinite values, values outside [0, 255]
                     and images all within (0, 1] (the [0, 1] scale; unless exported with
                     ``refuse_unit_scale=False``) are refused (InvalidArgument naming the check and the
                     signature), not resized or clipped
``explain``          ``image_bytes`` -> the same plus ``heatmap`` (Grad-CAM of the predicted class);
                     ``explain_images`` alike on pixels
Every signature refuses a request of more than ``max_batch`` images (256 by default) before decoding it.

The class names travel as ``assets/classes.txt`` (one per line, in output order), from which
the ``label`` output is looked up; each version also carries a TF Serving warm-up file.
A request with an item that is not a usable image fails whole (HTTP 400), its message naming
the item's index in the batch and why.
Its weights are stored in float32, or in float16 (half the files and a server's memory; cast back to float32
as they are read, so the computation stays float32).
A version is written into a hidden temporary folder beside the others and renamed into
place, so a server watching ``BASE/<name>`` never sees half a model.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..runtime import keras, tf
from ..contract import record_savedmodel
from ..contract import (BYTES_INPUT, CLASSES_ASSET, EXPLAIN, EXPLAIN_PIXELS, KERAS_CONFIG, KERAS_WEIGHTS, LIMITS,
                        MAX_BATCH, PIXELS, PIXELS_INPUT, SERVING, WEIGHT_PRECISIONS, versions)
from ..data import decode_and_resize
from ..data.pipeline import PIXEL_RANGE, UNIT_SCALE, refusal
from ..data.checks import file_in_the_way
from ..models.build import class_names as carried_names, rating_names


BYTES_SPEC = tf.TensorSpec([None], tf.string, name=BYTES_INPUT)  # what the bytes endpoints take


class ExportError(ValueError):
    """A model that cannot be exported as asked; the message says why."""


def input_size(model: keras.Model) -> tuple[int, int]:
    """``(height, width)`` of a model with one fixed-size RGB image input, else :class:`ExportError`."""
    shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else None
    if shape is None or len(shape) != 4 or shape[-1] != 3 or None in shape[1:3]:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise ExportError(
            f"model {model.name!r} takes inputs {shapes}; export needs one RGB image input of a fixed "
            "size, (batch, height, width, 3): in-graph resizing and the TFLite converter need to know "
            "height and width. Rebuild the model with a fixed input_shape and load its weights.")
    return int(shape[1]), int(shape[2])


def check_classes(model: keras.Model, class_names: Sequence[str] | None = None) -> list[str]:
    """The class names as a list (default: those the model carries, :func:`imagesentiment.model.class_names`),
    checked against the model's number of outputs."""
    names = [str(n) for n in (class_names if class_names is not None else carried_names(model))]
    outputs = model.outputs[0].shape[-1]
    if len(names) != outputs or len(set(names)) != len(names) or not all(n and "\n" not in n for n in names):
        raise ExportError(f"model {model.name!r} has {outputs} outputs; class names {names} must be as many, "
                          "distinct, non-empty single-line strings")
    return names


def check_destination(folder: str | os.PathLike, name: str) -> None:
    """Refuse a model ``name`` that is not one plain file name, a ``folder`` named like a model file, and
    one that a file stands in the way of."""
    if not name or name in (".", "..") or Path(name).name != name:
        raise ExportError(f"model name {name!r} must be one plain name without '/' (it names "
                          "BASE/<name>/<version> and <name>-<quantization>.tflite)")
    folder = Path(folder)
    if folder.suffix.lower() in (".tflite", ".keras", ".pb") and not folder.is_dir():  # it would become a folder
        raise ExportError(f"{folder}: give the folder to write into; the export names its files itself "
                          f"(BASE/{name}/<version>, {name}-<quantization>.tflite; --name sets {name!r})")
    blocking = file_in_the_way(folder)
    if blocking is not None:
        raise ExportError(f"{folder}: cannot write there, {blocking} is a file, not a folder")


def summarize(probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
    """``class_id``, ``probabilities`` and ``confidence`` (the top probability) of a batch."""
    return {"class_id": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
            "probabilities": probabilities,
            "confidence": tf.reduce_max(probabilities, axis=-1)}


class PixelFunctions:
    """Prediction and explanation of float pixel batches: what every exported signature computes."""

    def __init__(self, model: keras.Model) -> None:
        from ..explain.onepass import GradCamPredictor

        self.model = model
        self.ratings = rating_names(model)
        self.image_size = input_size(model)
        self.explainer = GradCamPredictor(model)
        self.spec = tf.TensorSpec([None, *self.image_size, 3], tf.float32, name=PIXELS_INPUT)

    def predict(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """The class answers and, where the model gives them, one output per rating (``valence``, ``arousal``)."""
        probabilities, *rated = tf.nest.flatten(self.model(images, training=False))
        return {**summarize(probabilities), **{name: rated[0][:, k] for k, name in enumerate(self.ratings)}}

    def explain(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        out = self.explainer.explain(images, tf.fill(tf.shape(images)[:1], -1))  # traced into each signature
        return {**summarize(out["probabilities"]), "heatmap": out["heatmap"], **{n: out[n] for n in self.ratings}}


def stored_weights(model: keras.Model, precision: str = "float32"
                   ) -> tuple[list[tf.Variable], Callable[[Callable], Callable]]:
    """The variables that store ``model``'s weights in a SavedModel, in Keras's order, and a wrapper that makes
    a function of the model read them. float32: the weights themselves, the function unchanged; float16:
    half-precision copies of the float32 weights (those within float16's range), cast back as every call
    reads them."""
    if precision not in WEIGHT_PRECISIONS:
        raise ExportError(f"weight precision {precision!r}: choose one of {', '.join(WEIGHT_PRECISIONS)}")
    if precision == "float32":
        return [weight.value for weight in model.weights], lambda function: function
    largest = float(np.finfo(np.float16).max)  # a weight beyond it stays float32
    halved = [weight.dtype == "float32" and float(np.abs(weight.numpy()).max(initial=0)) <= largest
              for weight in model.weights]
    stored = [tf.Variable(tf.cast(weight.value, tf.float16) if half else weight.value, trainable=False)
              for weight, half in zip(model.weights, halved)]

    def reading(function: Callable) -> Callable:
        def call(*args: tf.Tensor) -> dict[str, tf.Tensor]:
            values = [tf.cast(value, tf.float32) if half else value for value, half in zip(stored, halved)]
            with keras.StatelessScope(state_mapping=list(zip(model.weights, values))):
                return function(*args)
        return call

    return stored, reading


def decode_batch(image_bytes: tf.Tensor, image_size: Sequence[int]) -> tf.Tensor:
    """Encoded images ``(B,)`` to float32 ``(B, H, W, 3)`` in [0, 255], as the training pipeline decodes them;
    InvalidArgument naming the first item that is not a usable image, by its index in the batch, and why."""
    size = [int(s) for s in image_size]
    count = tf.shape(image_bytes, out_type=tf.int64)[0]
    decoded = (tf.data.Dataset.from_tensor_slices((tf.range(count), image_bytes))
               .map(lambda index, data: (index, decode_and_resize(data, size))).ignore_errors())
    end = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), tf.zeros([*size, 3], tf.uint8)))
    kept, pixels = decoded.concatenate(end).batch(count + 1).get_single_element()
    kept, pixels = kept[:-1], pixels[:-1]  # without the end marker: the items decoded, in order
    position = tf.range(tf.size(kept, out_type=tf.int64))
    first_bad = tf.reduce_min(tf.concat([position[kept != position], tf.size(kept, out_type=tf.int64)[None]], 0))
    reason = refusal(tf.concat([image_bytes, [""]], 0)[first_bad])
    named = tf.debugging.Assert(tf.size(kept, out_type=tf.int64) == count, [tf.strings.join([
        "item ", tf.strings.as_string(first_bad), " of the batch is not a usable image: ", reason])])
    with tf.control_dependencies([named]):
        return tf.cast(pixels, tf.float32)


@dataclass(frozen=True)
class Requests:
    """What the signatures take of a request, checked in the graph (InvalidArgument naming the signature and
    the check): at most ``max_batch`` images, counted before any is decoded; pixels at ``image_size`` with 3
    channels, finite, in [0, 255] and, with ``refuse_unit_scale``, no image all within (0, 1]."""

    image_size: tuple[int, int]
    max_batch: int = MAX_BATCH
    refuse_unit_scale: bool = True

    def counted(self, batch: tf.Tensor, name: str) -> tf.Tensor:
        """``batch`` once it is known to hold at most :attr:`max_batch` items."""
        count = tf.shape(batch)[0]
        limit = tf.debugging.Assert(count <= self.max_batch, [tf.strings.format(
            f"{name}: a request holds {{}} images, more than the {self.max_batch} this model takes (its export's "
            "max_batch, --max-batch): send them in smaller requests", count)])
        with tf.control_dependencies([limit]):
            return tf.identity(batch)

    def encoded(self, image_bytes: tf.Tensor, name: str) -> tf.Tensor:
        """Encoded images ``(B,)`` decoded (:meth:`decode`) once they are counted."""
        return self.decode(self.counted(image_bytes, name))

    @functools.cached_property
    def decode(self) -> Callable[[tf.Tensor], tf.Tensor]:
        """:func:`decode_batch` at :attr:`image_size`, one traced function that every endpoint calls."""
        return tf.function(lambda image_bytes: decode_batch(image_bytes, self.image_size),
                           input_signature=[BYTES_SPEC])

    def pixels(self, images: tf.Tensor, name: str) -> tf.Tensor:
        """``images`` once every check holds: they are not resized or clipped."""
        height, width = self.image_size
        values = f"{name}: pixel values must be finite numbers in [0, 255]"
        images = self.counted(images, name)
        checks = [
            tf.debugging.assert_equal(tf.shape(images)[3], 3, message=(
                f"{name}: images must have 3 channels (RGB), (batch, {height}, {width}, 3): drop an alpha channel, "
                "repeat a grey one")),
            tf.debugging.assert_equal(tf.shape(images)[1:3], tf.constant([height, width]), message=(
                f"{name}: images must be {height}x{width} pixels, (batch, {height}, {width}, 3): resize them, or "
                f"send the encoded images to {SERVING}, which resizes them")),
            tf.debugging.assert_greater_equal(images, PIXEL_RANGE[0], message=values),
            tf.debugging.assert_less_equal(images, PIXEL_RANGE[1], message=values)]
        if self.refuse_unit_scale:  # as the API: an image all within (0, 1] is a photo divided by 255
            highest = tf.reduce_max(images, axis=[1, 2, 3])
            unit = (highest > 0) & (highest <= 1)
            first_unit = tf.argmax(tf.concat([tf.cast(unit, tf.int32), [1]], 0))  # an empty batch has none
            checks.append(tf.debugging.Assert(~tf.reduce_any(unit), [tf.strings.format(
                f"{name}: image {{}} of the batch: pixel values all within (0, 1] {UNIT_SCALE} (or export with "
                "refuse_unit_scale=False, --allow-unit-scale, to take them)", first_unit)]))
        with tf.control_dependencies([c for c in checks if c is not None]):
            return tf.debugging.check_numerics(images, values)


def build_archive(model: keras.Model, class_names: Sequence[str] | None, classes_file: Path,
                  weight_precision: str = "float32", max_batch: int = MAX_BATCH,
                  refuse_unit_scale: bool = True) -> keras.export.ExportArchive:
    """The serving signatures of ``model``, its weights stored in ``weight_precision`` (:func:`stored_weights`),
    taking requests as :class:`Requests` says; ``classes_file`` (written here) becomes the label asset."""
    if int(max_batch) < 1:
        raise ExportError(f"max_batch must be at least 1, not {max_batch}")
    names = check_classes(model, class_names)
    weights, reading = stored_weights(model, weight_precision)
    functions = PixelFunctions(model)
    # One traced function each, which the bytes and the pixel endpoints both call: traced inline into every
    # endpoint, the model's graph was stored four times (the most of a small model's files).
    predict, explain = (tf.function(reading(compute), input_signature=[functions.spec])
                        for compute in (functions.predict, functions.explain))
    classes_file.write_text("\n".join(names) + "\n", encoding="utf-8")
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(tf.saved_model.Asset(str(classes_file)), tf.int64,
                                      tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                                      tf.lookup.TextFileIndex.WHOLE_LINE),
        default_value="")

    def answer(compute: Callable[[tf.Tensor], dict[str, tf.Tensor]], images: tf.Tensor) -> dict[str, tf.Tensor]:
        """``compute(images)`` with the labels; an empty request gets empty answers: the model's fused
        batch norm refuses a batch of 0 images, so one blank image is computed then and dropped."""
        count = tf.shape(images)[0]
        blank = tf.zeros(tf.concat([[tf.maximum(1 - count, 0)], tf.shape(images)[1:]], 0), images.dtype)
        outputs = {key: value[:count] for key, value in compute(tf.concat([images, blank], 0)).items()}
        return {**outputs, "label": table.lookup(tf.cast(outputs["class_id"], tf.int64))}

    requests = Requests(functions.image_size, int(max_batch), refuse_unit_scale)
    archive = keras.export.ExportArchive()
    # The endpoints capture the model's variables themselves; archive.track(model) would store every
    # weight a second time (keras-team/keras#23553: twice the size on disk and in TF Serving's memory).
    archive.track(table)
    archive.add_variable_collection(KERAS_WEIGHTS, weights)
    archive.add_variable_collection(LIMITS, [tf.Variable(int(max_batch), trainable=False)])
    archive.add_endpoint(SERVING, lambda image_bytes: answer(predict, requests.encoded(image_bytes, SERVING)),
                         [BYTES_SPEC])
    archive.add_endpoint(PIXELS, lambda images: answer(predict, requests.pixels(images, PIXELS)), [functions.spec])
    archive.add_endpoint(EXPLAIN, lambda image_bytes: answer(explain, requests.encoded(image_bytes, EXPLAIN)),
                         [BYTES_SPEC])
    archive.add_endpoint(EXPLAIN_PIXELS, lambda images: answer(explain, requests.pixels(images, EXPLAIN_PIXELS)),
                         [functions.spec])
    return archive


def write_version(model_dir: str | os.PathLike, write: Callable[[Path], None], version: int | None = None,
                  overwrite: bool = False) -> Path:
    """Run ``write(folder)`` on a hidden temporary folder, then rename it to ``model_dir/<version>``.

    ``version`` defaults to the next integer. An existing version is refused unless
    ``overwrite``; then it is moved aside and removed only once the new one is in place.
    On any failure the temporary folder is removed and no version appears.
    """
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else (versions(root) or [0])[-1] + 1
    if version < 1:
        raise ExportError(f"version must be a positive integer, not {version}")
    final = root / str(version)
    if final.exists() and not overwrite:
        raise ExportError(f"version {final} exists; pass overwrite=True (--overwrite) to replace it")
    partial = root / f".{version}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()  # with the umask's permissions (mkdtemp's 0700 would lock out a server running as another user)
    try:
        write(partial)
        if final.exists():
            replaced = Path(tempfile.mkdtemp(prefix=f".{version}.replaced-", dir=root))
            final.rename(replaced / "old")
            partial.rename(final)
            shutil.rmtree(replaced)
        else:
            partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def export_savedmodel(model: keras.Model, base: str | os.PathLike, name: str = "imagesentiment",
                      class_names: Sequence[str] | None = None, version: int | None = None,
                      overwrite: bool = False, warmup_images: Sequence[bytes] | None = None,
                      weight_precision: str = "float32", max_batch: int = MAX_BATCH,
                      refuse_unit_scale: bool = True) -> Path:
    """Write ``model`` as ``BASE/<name>/<version>/`` for TF Serving; return the version folder.
    ``class_names``: in output order (default: those the model carries, see :func:`check_classes`).
    ``weight_precision``: ``"float16"`` stores the weights in half the space (:func:`stored_weights`).
    ``max_batch``: the most images a request may hold; ``refuse_unit_scale``: the pixel signatures refuse an
    image all within (0, 1] (:class:`Requests`).

    ``warmup_images`` (encoded) go into the warm-up requests; by default two small
    generated images, one JPEG and one PNG.
    """
    from .serving import write_warmup

    check_destination(base, name)

    def write(folder: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            archive = build_archive(model, class_names, Path(scratch) / CLASSES_ASSET, weight_precision, max_batch,
                                    refuse_unit_scale)
            archive.write_out(str(folder), verbose=False)
        write_warmup(folder, name, warmup_images)
        (folder / "assets.extra" / KERAS_CONFIG).write_text(model.to_json(), encoding="utf-8")
        record_savedmodel(folder)  # last: the digest of every file written

    return write_version(Path(base) / name, write, version, overwrite)
