"""The exported model's contract: what ``export`` writes and ``load`` reads, under one set of names.

A SavedModel version ``BASE/<name>/<version>/`` answers four signatures (:data:`SERVING` and :data:`EXPLAIN`
on encoded images, :data:`PIXELS` and :data:`EXPLAIN_PIXELS` on pixel arrays) and carries its class names in
``assets/classes.txt`` and its Keras graph in ``assets.extra``; a ``.tflite`` file carries its class names,
quantization and checksum in metadata entries; a run directory or export folder may hold ``classes.json``.
No TensorFlow here: the names and the readers of these files only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

SERVING = "serving_default"
PIXELS = "predict_images"
EXPLAIN = "explain"
EXPLAIN_PIXELS = "explain_images"
BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "images"
OUTPUT_ORDER = ("probabilities", "class_id", "confidence", "heatmap")  # for the classic interpreter API
CLASSES_FILE = "classes.json"  # the class names beside a model: in a run directory, in a TFLite export folder
CLASSES_ASSET = "classes.txt"  # in a SavedModel version's assets, one per line in output order
KERAS_CONFIG = "keras_model.json"  # in assets.extra: the Keras graph, so that the version rebuilds it (load_keras)
KERAS_WEIGHTS = "keras_weights"  # the model's weights in Keras's order: a collection of the variables stored once
METADATA_NAME = "imagesentiment"  # a TFLite file's metadata entry: classes, quantization, float layers
CHECKSUM_NAME = "imagesentiment.checksum"  # the metadata entry with the file's SHA-256 (:mod:`.checksum`)
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "exported_models"  # in this checkout; a wheel has none
SHIPPED_NAMES = ("imagesentiment", "faces")  # the models there: the photos' (the default) and the faces'
# what every exported TFLite file is checked to meet against its Keras model on held-out images
MIN_AGREEMENT = 0.995      # float: share of test images where TFLite predicts the Keras class
MAX_ACCURACY_LOSS = 0.01   # quantized models: accuracy points lost against the Keras model
# int8: a layer whose own output, fed the quantized input, is off by more than this many quantization
# steps (RMSE; rounding alone gives 1/sqrt(12) = 0.29) is kept in float (selective quantization)
MAX_LAYER_ERROR = 0.4
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")  # the TFLite files an export may write, one per choice
WEIGHT_PRECISIONS = ("float32", "float16")  # how a SavedModel version may store its weights (read back as float32)


class ModelFileError(ValueError):
    """A file given as a model is not one, or not one that may be loaded; the message names it."""


def class_names_file(path: Path) -> list[str] | None:
    """The JSON list in ``classes.json`` inside ``path`` (a folder) or beside it (a file), if any."""
    candidate = (path if path.is_dir() else path.parent) / CLASSES_FILE
    if not candidate.is_file():
        return None
    try:
        names = json.loads(candidate.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{candidate}: not a JSON list of class names ({exc})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{candidate}: not a JSON list of class names")
    return names


def saved_class_names(version_dir: str | os.PathLike) -> list[str]:
    """The class names stored in an exported version's assets."""
    return (Path(version_dir) / "assets" / CLASSES_ASSET).read_text(encoding="utf-8").splitlines()


def versions(model_dir: str | os.PathLike) -> list[int]:
    """The version numbers present under ``BASE/<name>``, ascending (hidden and other folders ignored)."""
    root = Path(model_dir)
    found = [int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()] if root.is_dir() else []
    return sorted(found)


def shipped_model(name: str) -> Path:
    """The newest version of the SavedModel shipped as ``exported_models/NAME/`` (one of :data:`SHIPPED_NAMES`)."""
    found = versions(SHIPPED_MODELS / name)
    if not found:
        raise FileNotFoundError(f"no {name} model: {SHIPPED_MODELS / name} holds no version (a wheel ships none); "
                                "give a model's path instead" + (", or set IMAGESENTIMENT_MODEL to one"
                                                                 if name == SHIPPED_NAMES[0] else ""))
    return SHIPPED_MODELS / name / str(found[-1])


def read_metadata(content: bytes, name: str = METADATA_NAME) -> dict | None:
    """The ``imagesentiment`` metadata of a TFLite model (or its entry ``name``), or None where it has none."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode("utf-8") == name:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None
