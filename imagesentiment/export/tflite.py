"""TFLite export: float32, float16 (half-precision weights), dynamic-range or full-integer int8,
each checked with the LiteRT interpreter.

A TFLite model holds two signatures named as in the SavedModel, ``serving_default``
(-> ``class_id``, ``probabilities``, ``confidence``) and ``explain`` (the same plus
``heatmap``), both taking decoded pixels ``images`` of shape ``(B, H, W, 3)``: image decoding
cannot go into TFLite. The float32, float16 and dynamic-range models take float32 in [0, 255], the
int8 model uint8 pixels (its input scale is 1 and zero point 0, so the raw pixels go in). int8 keeps
in float the layers that quantize badly (:data:`MAX_LAYER_ERROR`), unless told to quantize them all,
and the divisions of ``explain`` (:data:`FLOAT_OPS`).

A TFLite model checks nothing of its input: given NaN it answers class 0 with NaN probabilities. A client
outside this package must check what the Python API checks before any model form runs: RGB pixels at the
model's input size, every value finite and within [0, 255] (not the [0, 1] scale).

The class names go beside the model (``classes.json``) and inside it, as a model metadata
entry named ``imagesentiment`` (JSON: classes, image size, quantization; the file's SHA-256 in an entry
``imagesentiment.checksum``), written with
LiteRT's own flatbuffer tools. The TFLite Support metadata format (``tflite-support``'s
``metadata_writers``) is not used: that package is unmaintained (last release 0.4.4, July
2023) and requires protobuf < 4, which cannot be installed beside TensorFlow 2.21.
"""
from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..runtime import keras, tf
from ..data import ImageSet, make_dataset
from ..runtime import LITERT_NOISE, filtered, without
from ..atomic import write_atomically
from ..contract import CHECKED, DIGEST, PLACEHOLDER, stamp_tflite
from ..compat import quantize_calibrated
from ..contract import (CHECKSUM_NAME, CLASSES_FILE, EXPLAIN, MAX_ACCURACY_LOSS, MAX_LAYER_ERROR, METADATA_NAME,
                        MIN_AGREEMENT, OUTPUT_ORDER, PIXELS_INPUT, QUANTIZATIONS, SERVING, read_metadata)
from ..inference.predictors import KerasPredictor, TFLitePredictor
from .savedmodel import ExportError, PixelFunctions, check_classes, check_destination

if TYPE_CHECKING:
    from ai_edge_litert.schema_py_generated import ModelT

FLOAT = ("float32", "float16")  # float computation (float16: the weights stored in half precision)
DEBUG_IMAGES = 16          # calibration images on which each layer's quantization error is measured
# int8: ops kept in float in every int8 model. TensorFlow's own int8 DIV kernel (the quantization
# debugger's) refuses a divisor whose raw int8 value is 0, a real value like any other where the zero
# point is not 0 (a heat map's min-max spread of 0.28 was); LiteRT's refuses a real 0 (a constant
# map's spread once epsilon rounds away). Only ``explain`` divides, so ``serving_default`` stays integer.
FLOAT_OPS = ["DIV"]


@dataclass(frozen=True)
class Check:
    """A converted model measured against the Keras model on labelled test images."""

    quantization: str
    images: int
    agreement: float
    keras_accuracy: float
    tflite_accuracy: float
    max_probability_difference: float

    @property
    def passed(self) -> bool:
        if self.quantization in FLOAT:
            return self.agreement >= MIN_AGREEMENT - 1e-9
        return self.keras_accuracy - self.tflite_accuracy <= MAX_ACCURACY_LOSS + 1e-9

    def __str__(self) -> str:
        target = (f"target agreement >= {MIN_AGREEMENT:.1%}" if self.quantization in FLOAT
                  else f"target accuracy loss <= {MAX_ACCURACY_LOSS * 100:.0f} point")
        share = 1 - MIN_AGREEMENT if self.quantization in FLOAT else MAX_ACCURACY_LOSS
        if not self.passed and self.images * share < 1:
            target += (f"; on {self.images} images one image is {100 / self.images:.1f} points, too coarse to "
                       "tell: check on more images (--check-images, default all held-out ones)")
        return (f"{self.quantization}: same class as Keras on {self.agreement:.2%} of {self.images} held-out images; "
                f"accuracy {self.tflite_accuracy:.2%} vs Keras {self.keras_accuracy:.2%} "
                f"({(self.tflite_accuracy - self.keras_accuracy) * 100:+.2f} points); largest probability "
                f"difference {self.max_probability_difference:.4f} ({target}: {'ok' if self.passed else 'FAILED'})")


def check_sets(model: str | os.PathLike, classes: Sequence[str], data: str | os.PathLike | None = None,
               data_format: str | None = None, options: dict | None = None, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(training side, for int8 calibration; held-out images, for the LiteRT checks) of ``data`` (split here:
    its training and test sides) or of ``model``'s run directory (its training side, and its validation and test
    sides: no weight was fitted on either)."""
    from ..data import check_set, load_source, train_val_test_split
    from ..training.run import Run

    if data:
        images = check_set(load_source(data, data_format, **(options or {})).with_classes(classes, data)).images
        split = train_val_test_split(images, seed=seed)
        return split.train, split.test
    run = Run(model)
    if run.has_sides("train", "test"):
        return run.sides(classes, "train"), run.sides(classes, "validation", "test")
    raise ExportError("a TFLite export is checked on labelled held-out images: give --data, "
                      "or a run directory that holds split_train.csv and split_test.csv")


def image_arrays(images: ImageSet, image_size: Sequence[int], class_names: Sequence[str],
                 limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 pixels ``(N, H, W, 3)`` as the pipeline decodes them, and class ids in ``class_names`` order:
    the model's (``model.class_names``, :func:`imagesentiment.model.class_names`), which need not be the images'.

    ``limit`` takes a random sample of that many images (reproducible from ``seed``).
    """
    unknown = sorted(set(images.classes) - set(class_names))
    if unknown:
        raise ExportError(f"the data's classes {unknown} are not among the model's classes {list(class_names)}")
    if limit is not None and limit < len(images):
        images = images.subset(sorted(np.random.default_rng(seed).choice(len(images), limit, replace=False)))
    batches = list(make_dataset(images, image_size, 64).as_numpy_iterator())
    order = np.array([list(class_names).index(c) for c in images.classes])
    return np.concatenate([x for x, _ in batches]), order[np.concatenate([y for _, y in batches])]


def _representative(images: np.ndarray) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Calibration samples for both signatures; the first image gets one black and one white pixel,
    pinning the calibrated input range to [0, 255] (uint8 input scale 1, zero point 0)."""
    pinned = images.astype(np.float32)
    pinned[0, 0, 0], pinned[0, 0, 1] = 0.0, 255.0
    return [(key, {PIXELS_INPUT: pinned[i:i + 1]}) for i in range(len(pinned)) for key in (SERVING, EXPLAIN)]


def convert(model: keras.Model, quantization: str = "float32", representative: np.ndarray | None = None,
            class_names: Sequence[str] | None = None, max_layer_error: float | None = MAX_LAYER_ERROR) -> bytes:
    """The TFLite flatbuffer of ``model`` with both signatures and the class names as metadata.

    ``representative`` (float32 training images) is needed for ``int8``. ``max_layer_error``:
    int8 layers quantized worse than this (see :data:`MAX_LAYER_ERROR`) stay in float and are listed
    in the metadata (``float_layers``); None quantizes every layer.
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; choose one of {QUANTIZATIONS}")
    if quantization == "int8" and (representative is None or len(representative) == 0):
        raise ExportError("int8 quantization needs representative training images")
    names = check_classes(model, class_names)
    functions = PixelFunctions(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING, functions.predict, [functions.spec])
    archive.add_endpoint(EXPLAIN, functions.explain, [functions.spec])
    print(f"{quantization}: converting with the TFLite converter", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[SERVING, EXPLAIN])
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        metadata = {"classes": names, "image_size": list(functions.image_size), "quantization": quantization,
                    **({"ratings": list(functions.ratings)} if functions.ratings else {})}
        if quantization == "int8":
            samples = _representative(representative)
            converter.representative_dataset = lambda: iter(samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
        try:
            with filtered(without(LITERT_NOISE)):  # the quantizer's settings, XNNPACK's notice in calibration
                if quantization == "int8":
                    content, float_layers = _int8(converter, representative[:DEBUG_IMAGES],
                                                  {layer.name for layer in model.layers}, max_layer_error)
                    if max_layer_error is not None:
                        metadata["float_layers"] = float_layers
                else:
                    content = converter.convert()
        except Exception as exc:  # the converter raises several types, all with long logs
            raise ExportError(f"the TFLite converter could not take model {model.name!r} (input "
                              f"{tuple(model.inputs[0].shape)}, {quantization}): {str(exc).splitlines()[0]}") from exc
    return with_metadata(content, metadata)


def _layer_of(tensor_name: str, layers: set[str]) -> str:
    """The Keras layer that makes a TFLite tensor (the first of its fused ops), found by name in any
    signature's graph (``f_1/block_1_expand_1/Relu6;...`` -> ``block_1_expand``); the tensor name
    itself for ops outside the model's layers."""
    for component in tensor_name.split(";")[0].split("/"):
        for name in (re.sub(r"_\d+$", "", component), component):
            if name in layers:
                return name
    return tensor_name


def _int8(converter: tf.lite.TFLiteConverter, images: np.ndarray, layers: set[str],
          max_layer_error: float | None) -> tuple[bytes, list[str]]:
    """Full-integer int8 (uint8 pixels in, float32 out) except :data:`FLOAT_OPS` and the ``layers``
    whose quantization error exceeds ``max_layer_error`` steps (None: no layer), measured on ``images``
    with TensorFlow's quantization debugger; returns the model and the layers (or ops) kept in float."""
    from ai_edge_litert.tools import flatbuffer_utils

    print(f"int8: calibrating on the representative images, then measuring each layer's error on {len(images)}",
          flush=True)
    with warnings.catch_warnings():  # the debugger runs tf.lite.Interpreter, which warns of LiteRT each time
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(  # calibrates on the converter's representative set
            converter=converter, debug_dataset=lambda: ([image[None].astype(np.float32)] for image in images),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OPS))
        calibrated = flatbuffer_utils.read_model_from_bytearray(bytearray(debugger.calibrated_model))
        owners = _tensor_layers(calibrated, layers)
        bad = set() if max_layer_error is None else _badly_quantized(debugger, calibrated, owners, max_layer_error)
    content = quantize_calibrated(debugger.calibrated_model, tf.uint8, tf.float32, FLOAT_OPS,
                                  sorted(t for t, layer in owners.items() if layer in bad))
    return content, sorted(bad)


def _tensor_layers(model: ModelT, layers: set[str]) -> dict[str, str]:
    """The Keras layer of each tensor of ``model`` by name: the one its name says (:func:`_layer_of`), else the
    one of the op that makes it, read back through that op's first input (a signature's output is named after
    the function, ``StatefulPartitionedCall:3``, not the layer: a softmax's is its Dense layer's); the tensor
    name itself where neither says."""
    owners: dict[str, str] = {}
    for graph in model.subgraphs:
        maker = {output: op for op in graph.operators for output in op.outputs}

        def owner(index: int, steps: int = 0) -> str:
            own = _layer_of(graph.tensors[index].name.decode("utf-8"), layers)
            inputs = [i for i in maker[index].inputs if i >= 0] if index in maker else []
            return owner(inputs[0], steps + 1) if own not in layers and inputs and steps < 8 else own

        for index, tensor in enumerate(graph.tensors):
            owners.setdefault(tensor.name.decode("utf-8"), owner(index))
    return owners


def _badly_quantized(debugger: tf.lite.experimental.QuantizationDebugger, calibrated: ModelT,
                     owners: dict[str, str], max_layer_error: float) -> set[str]:
    """The layers (or ops; ``owners``: a tensor's, :func:`_tensor_layers`) of the ``calibrated`` model whose
    int8 output is off by more than ``max_layer_error`` steps, except the ones that read the pixels (so that
    uint8 pixels go in)."""
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    measured = pd.read_csv(dump)
    error = np.sqrt(measured["mean_squared_error"]) / measured["scale"]
    reading_pixels = {owners[graph.tensors[op.outputs[0]].name.decode("utf-8")]
                      for graph in calibrated.subgraphs for op in graph.operators if set(op.inputs) & set(graph.inputs)}
    bad = {owners.get(name, name) for name in measured.loc[error > max_layer_error, "tensor_name"]} - reading_pixels
    if len(bad) == len({owners.get(name, name) for name in measured["tensor_name"]}):
        raise ExportError(f"every layer quantizes worse than {max_layer_error} steps: export float16 instead")
    return bad


def _serving_first(model: ModelT) -> None:
    """Make ``serving_default`` subgraph 0, with its outputs in the order ``OUTPUT_ORDER``: what the classic
    interpreter API (``Interpreter.run`` on Android, ``get_output_details``) runs and returns, which would
    otherwise be ``explain`` (the converter sorts the signatures by name) with its outputs in any order. The
    models hold no op that calls a subgraph by index, so only the signatures' indices change."""
    order = sorted(range(len(model.subgraphs)), key=lambda i: next(
        sd.signatureKey.decode("utf-8") != SERVING for sd in model.signatureDefs if sd.subgraphIndex == i))
    model.subgraphs = [model.subgraphs[i] for i in order]
    for signature in model.signatureDefs:
        signature.subgraphIndex = order.index(signature.subgraphIndex)
        tensor_of = {output.name.decode("utf-8"): output.tensorIndex for output in signature.outputs}
        model.subgraphs[signature.subgraphIndex].outputs = [tensor_of[name] for name in OUTPUT_ORDER if name in tensor_of]


def with_metadata(content: bytes, metadata: dict) -> bytes:
    """``content`` with ``serving_default`` first (:func:`_serving_first`) and a model metadata entry
    ``imagesentiment`` holding ``metadata`` as JSON (with ``checksum``, the name of the next entry: a file
    holding it must have that entry), and one ``imagesentiment.checksum`` with the SHA-256 of the file."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    _serving_first(model)
    for name, value in ((METADATA_NAME, {**metadata, CHECKED: CHECKSUM_NAME}), (CHECKSUM_NAME, {DIGEST: PLACEHOLDER})):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(json.dumps(value).encode("utf-8"), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    return stamp_tflite(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


def check(content: bytes, quantization: str, keras_probabilities: np.ndarray, images: np.ndarray,
          labels: np.ndarray) -> Check:
    """Run ``content`` with the LiteRT interpreter on ``images`` and compare with the Keras model's answers."""
    probabilities = TFLitePredictor(content).probabilities(images)
    expected, got = keras_probabilities.argmax(-1), probabilities.argmax(-1)
    return Check(quantization, len(images), float(np.mean(got == expected)), float(np.mean(expected == labels)),
                 float(np.mean(got == labels)), float(np.abs(probabilities - keras_probabilities).max()))


def check_files(out_dir: str | os.PathLike, name: str, quantizations: Sequence[str], class_names: Sequence[str],
                overwrite: bool = False) -> None:
    """Refuse an export that would replace files in ``out_dir`` (another model's ``.tflite``, the one an
    app ships, a ``classes.json`` with other classes) unless ``overwrite``."""
    check_destination(out_dir, name)
    out = Path(out_dir)
    taken = [str(path) for path in (out / f"{name}-{q}.tflite" for q in quantizations) if path.exists()]
    classes_file = out / CLASSES_FILE
    if classes_file.is_file() and json.loads(classes_file.read_text(encoding="utf-8")) != list(class_names):
        taken.append(f"{classes_file} (other classes)")
    if taken and not overwrite:
        raise ExportError(f"{', '.join(taken)} already {'exists' if len(taken) == 1 else 'exist'}; pass "
                          "overwrite=True (--overwrite) to replace, or export to another folder or name")


def export_tflite(model: keras.Model, out_dir: str | os.PathLike, quantizations: Sequence[str] = ("float32",),
                  test: tuple[np.ndarray, np.ndarray] | None = None, representative: np.ndarray | None = None,
                  class_names: Sequence[str] | None = None, name: str = "imagesentiment",
                  max_layer_error: float | None = MAX_LAYER_ERROR, overwrite: bool = False
                  ) -> dict[str, tuple[Path, Check]]:
    """Convert ``model`` once per quantization, check each on ``test`` (images, labels), write the ones
    that pass as ``OUT/<name>-<quantization>.tflite`` with ``OUT/classes.json``. ``max_layer_error``:
    see :func:`convert`. Files already there (another model's, or the one an app ships) are refused
    before any work unless ``overwrite``.

    Raises :class:`ExportError`, writing nothing more, on the first conversion that misses its target.
    """
    if test is None or len(test[0]) == 0:
        raise ExportError("a TFLite export is checked against the Keras model: it needs labelled test images")
    names = check_classes(model, class_names)
    check_files(out_dir, name, quantizations, names, overwrite)
    out, classes_file = Path(out_dir), Path(out_dir) / CLASSES_FILE
    images, labels = test
    reference = KerasPredictor(model, names).probabilities(images)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    layers = {layer.name for layer in model.layers}
    for quantization in quantizations:
        content = convert(model, quantization, representative, names, max_layer_error)
        float_layers = (read_metadata(content) or {}).get("float_layers")
        if float_layers:
            named = [layer for layer in float_layers if layer in layers]
            ops = len(float_layers) - len(named)  # named by TensorFlow, not by a layer: counted
            others = [f"{ops} op{'s' if ops > 1 else ''} outside the model's layers"] if ops else []
            print(f"{quantization}: kept in float, quantized worse than {max_layer_error} steps: "
                  + ", ".join(named + others))
        print(f"{quantization}: checking with LiteRT on {len(images)} test images", flush=True)
        result = check(content, quantization, reference, images, labels)
        print(result)
        if not result.passed:
            raise ExportError(f"the {quantization} model missed its target, so it was not written: {result}")
        path = out / f"{name}-{quantization}.tflite"
        write_atomically(path, content)
        written[quantization] = (path, result)
    write_atomically(classes_file, (json.dumps(names) + "\n").encode("utf-8"))
    new = {path.name for path, _ in written.values()}
    earlier = sorted(str(p) for p in out.glob(f"{name}-*.tflite") if p.name not in new)
    if earlier:  # an app folder holding two models would give two answers, not one model in two forms
        print(f"note: {', '.join(earlier)} from an earlier export {'stays' if len(earlier) == 1 else 'stay'} beside "
              "these, perhaps another model's; remove or re-export it to keep one model in the folder",
              file=sys.stderr)
    return written
