"""The exported model's contract: what ``export`` writes and ``load`` reads, under one set of names.

A SavedModel version ``BASE/<name>/<version>/`` answers four signatures (:data:`SERVING` and :data:`EXPLAIN`
on encoded images, :data:`PIXELS` and :data:`EXPLAIN_PIXELS` on pixel arrays) and carries its class names in
``assets/classes.txt`` and its Keras graph in ``assets.extra``; a ``.tflite`` file carries its class names,
quantization and checksum in metadata entries; a run directory or export folder may hold ``classes.json``.
Export records a SHA-256 of what it writes and load verifies it (:func:`verify_savedmodel`,
:func:`verify_tflite`), so that a damaged or altered model file is refused rather than answering.
No TensorFlow here: the names, the readers and the checks of these files only.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Sequence

SERVING = "serving_default"
PIXELS = "predict_images"
EXPLAIN = "explain"
EXPLAIN_PIXELS = "explain_images"
BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "images"
RATINGS = ("valence", "arousal")  # a model's ratings on OASIS's 1-7 scale, where it has them: its second output,
# named ``ratings`` in the Keras graph, one output each in the signatures and TFLite files, listed in the metadata
RATINGS_OUTPUT = "ratings"
RATING_SCALE = (1.0, 7.0)
OUTPUT_ORDER = ("probabilities", "class_id", "confidence", *RATINGS, "heatmap")  # for the classic interpreter API
KERAS_MODEL = "model.keras"  # the Keras model of a run directory, which load() finds in it
CLASSES_FILE = "classes.json"  # the class names beside a model: in a run directory, in a TFLite export folder
CLASSES_ASSET = "classes.txt"  # in a SavedModel version's assets, one per line in output order
KERAS_CONFIG = "keras_model.json"  # in assets.extra: the Keras graph, so that the version rebuilds it (load_keras)
KERAS_WEIGHTS = "keras_weights"  # the model's weights in Keras's order: a collection of the variables stored once
METADATA_NAME = "imagesentiment"  # a TFLite file's metadata entry: classes, quantization, float layers
CHECKSUM_NAME = "imagesentiment.checksum"  # the metadata entry with the file's SHA-256 (:func:`stamp_tflite`)
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
MAX_BATCH = 256  # the most images a served request may hold by default (export --max-batch)
LIMITS = "imagesentiment_limits"  # a version's variable collection holding its max batch; also the mark, in its
# saved_model.pb, of a version this release exported (one that must carry its checksum record)


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


def override_names(given: Sequence[str] | None, stored: Sequence[str] | None, model: object) -> Sequence[str] | None:
    """The class names for a model: ``given`` (they override the names stored with ``model``, to rename its
    outputs), else ``stored``. A stored name given for another output (in any case) is refused: the outputs
    keep their order, so a class would get another's scores, a campaign's positive photos reported as
    negative."""
    if given is None:
        return None if stored is None else list(stored)
    if isinstance(given, str):  # "abc" would be read as three classes a, b, c
        raise ValueError(f"class names given as one string {given!r}: give a list of names")
    names = [str(c) for c in given]
    own = [str(c).lower() for c in stored or ()]
    moved = [n for i, n in enumerate(names) if n.lower() in own and own.index(n.lower()) != i]
    if moved:
        raise ValueError(f"class names {names} put {', '.join(moved)} where {model} has another class: its outputs "
                         f"are {list(stored)}, in that order, so these names would give a class another's scores; "
                         "leave the names out (--classes) to use the model's")
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


MODEL_SUFFIXES = (".keras", ".tflite")  # a model in one file; any folder may be a run directory or a version


def missing_model(path: str | os.PathLike) -> str | None:
    """Why nothing can be loaded from ``path``, where nothing is there and it is no shipped model's name (whose
    missing versions :func:`shipped_model` names): that it is missing, and the nearest shipped name or model
    beside it; else None."""
    import difflib

    given = Path(path)
    if "://" in str(path) or given.exists() or str(path) in SHIPPED_NAMES:  # a shipped name: shipped_model says
        return None
    folder = given.parent if given.parent.is_dir() else None
    beside = [p.name for p in folder.iterdir() if p.is_dir() or p.suffix.lower() in MODEL_SUFFIXES] if folder else []
    near = difflib.get_close_matches(given.name, [*beside, *SHIPPED_NAMES], n=1, cutoff=0.6)
    meant = f"; did you mean {given.parent / near[0] if near[0] in beside else near[0]}?" if near else ""
    return (f"{path}: no such file or folder{meant} (a model is a run directory, a .keras file, a SavedModel "
            f"version folder, a .tflite file or a shipped model's name: {', '.join(SHIPPED_NAMES)})")


def read_metadata(content: bytes, name: str = METADATA_NAME) -> dict | None:
    """The ``imagesentiment`` metadata of a TFLite model (or its entry ``name``), or None where it has none."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode("utf-8") == name:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None


# Checksums: a SavedModel version holds assets.extra/imagesentiment.json with the digest of each of its files; a
# .tflite file holds the digest of its own bytes in its metadata entry CHECKSUM_NAME, computed with the digest's
# place there filled with zeros (a TFLite file with 60 random bytes changed loaded and answered in 19 of 60 trials).
DIGEST = "sha256"
PLACEHOLDER = "0" * 64  # the digest's place while the digest of a TFLite file is computed
RECORD = Path("assets.extra") / "imagesentiment.json"
CHECKED = "checksum"  # in a TFLite file's metadata (this release on): the name of its checksum entry, which it must have
TRUST = ("the file is damaged or was altered: export it again, or load it with verify=False (--trust-unverified) "
         "if you trust it")
MAX_CONFIG_BYTES = 16 * 2**20  # a .keras file's config.json, inflated: a model's description, not its weights


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digests(version_dir: str | os.PathLike) -> dict[str, str]:
    """The SHA-256 of every file of a SavedModel version but the record, by path inside it."""
    root = Path(version_dir)
    return {path.relative_to(root).as_posix(): _digest(path.read_bytes())
            for path in sorted(root.rglob("*")) if path.is_file() and path.relative_to(root) != RECORD}


def record_savedmodel(version_dir: str | os.PathLike) -> None:
    """Write the digests of a version's files (:func:`file_digests`) into its ``assets.extra``."""
    (Path(version_dir) / RECORD).write_text(json.dumps({DIGEST: file_digests(version_dir)}, indent=1) + "\n")


def verify_savedmodel(version_dir: str | os.PathLike) -> None:
    """Refuse (:class:`ModelFileError`) a version whose files differ from the digests recorded at export, naming
    them, and one this release exported (its graph holds :data:`LIMITS`) without the record; a version of an
    earlier release or from elsewhere without the record gets a warning on stderr."""
    record, graph = Path(version_dir) / RECORD, Path(version_dir) / "saved_model.pb"
    if not record.is_file() and graph.is_file() and LIMITS.encode() in graph.read_bytes():
        raise ModelFileError(f"{version_dir}: its checksum record {RECORD} is missing, though the version was "
                             f"exported with one; {TRUST}")
    if not record.is_file():
        _note(version_dir)
        return
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))[DIGEST]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{version_dir}: its checksum record {RECORD} cannot be read ({exc}); {TRUST}") from None
    found = file_digests(version_dir)
    changed = sorted(path for path in recorded if found.get(path) != recorded[path])
    if changed:
        raise ModelFileError(f"{version_dir}: {', '.join(changed)} {'differs' if len(changed) == 1 else 'differ'} "
                             f"from the checksum recorded at export (missing or changed); {TRUST}")


def stamp_tflite(content: bytes) -> bytes:
    """``content``, whose metadata holds :data:`PLACEHOLDER` as its digest, with the digest of ``content`` there."""
    digest = _digest(content)
    return content.replace(_entry(PLACEHOLDER), _entry(digest), 1)


def verify_tflite(content: bytes, record: dict | None, name: str, metadata: dict | None = None) -> None:
    """Refuse a TFLite model whose bytes differ from the digest in its checksum ``record`` (its metadata entry),
    whose record is there without a readable digest, or missing where its ``metadata`` names it (:data:`CHECKED`);
    a warning on stderr where it has neither (an earlier release's file, another tool's)."""
    if record is None and isinstance(metadata, dict) and metadata.get(CHECKED) == CHECKSUM_NAME:
        raise ModelFileError(f"{name}: its checksum record (the metadata entry {CHECKSUM_NAME}) is missing, though "
                             f"its metadata names it; {TRUST}")
    if record is None:
        _note(name)
        return
    recorded = record.get(DIGEST) if isinstance(record, dict) else None
    if not isinstance(recorded, str):
        raise ModelFileError(f"{name}: its checksum record cannot be read (the file differs from the checksum "
                             f"recorded at export); {TRUST}")
    entry = _entry(recorded)
    if content.count(entry) != 1 or _digest(content.replace(entry, _entry(PLACEHOLDER))) != recorded:
        raise ModelFileError(f"{name}: its content differs from the checksum recorded at export; {TRUST}")


def _entry(digest: str) -> bytes:
    """The digest as it stands in the metadata's JSON."""
    return json.dumps({DIGEST: digest})[1:-1].encode("utf-8")


def _note(name: str | os.PathLike) -> None:
    print(f"warning: {name}: no checksum recorded (not exported by imagesentiment, or by an earlier release): "
          "loaded without checking that it is intact", file=sys.stderr)


def unverified(name: str | os.PathLike) -> None:
    """The warning for a model loaded with ``verify=False`` (``--trust-unverified``)."""
    print(f"warning: {name}: loaded without verifying its checksum (verify=False, --trust-unverified): trusted "
          "as it is, damaged or altered or not", file=sys.stderr)
