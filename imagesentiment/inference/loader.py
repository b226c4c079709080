"""One inference API over every form a model ships in.

``load(path)`` opens a run directory (holding ``model.keras``), a ``.keras`` file, a SavedModel
version folder or a ``.tflite`` file and returns a :class:`~imagesentiment.predictor.Predictor`;
``predictor.predict(images)`` takes image paths, encoded bytes or pixel arrays (one or a batch)
and returns a table with ``label``, ``confidence`` and one probability column per class.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..contract import (KERAS_CONFIG, KERAS_MODEL, KERAS_WEIGHTS, MAX_CONFIG_BYTES, SHIPPED_MODELS, SHIPPED_NAMES,
                       ModelFileError, class_names_file, missing_model, override_names, saved_class_names,
                       shipped_model, unverified, verify_savedmodel)
from ..models.build import class_names as carried
from .predictors import (Image, KerasPredictor, Predictor, SavedModelPredictor, TFLitePredictor,
                        _first_line, to_pixels)

if TYPE_CHECKING:
    import keras

__all__ = ["SHIPPED_MODELS", "Image", "KerasPredictor", "ModelFileError", "Predictor", "SavedModelPredictor",
           "TFLitePredictor", "default_model", "load", "load_keras", "resolve", "to_pixels"]


def _not_a_model(path: Path, message: str, keras_only: bool = False) -> FileNotFoundError:
    """The error for a path that is no model, naming the models a folder holds one or two levels down
    (a cross-validation run's folds, a SavedModel base folder's versions): what was probably meant;
    ``keras_only``: only the Keras models (what export and explain's layer options take)."""
    patterns = (f"*/{KERAS_MODEL}",) + (() if keras_only else ("*/saved_model.pb", "*/*/saved_model.pb"))
    inside = sorted({p.parent for pattern in patterns for p in path.glob(pattern)}
                    | (set() if keras_only else set(path.glob("*.tflite"))))
    if path.is_dir() and inside:
        message += f"; it holds {', '.join(map(str, inside[:5]))}{' ...' if len(inside) > 5 else ''}: give one of them"
    return FileNotFoundError(message)


def load_keras(path: str | os.PathLike, class_names: Sequence[str] | None = None,
               verify: bool = True) -> tuple[keras.Model, list[str]]:
    """A Keras model from a run directory, a ``.keras`` file (safe mode: no code runs; one whose ``config.json``
    inflates past :data:`MAX_CONFIG_BYTES` refused before it is parsed) or an exported SavedModel version
    (checked as :func:`load` checks it, ``verify``, and rebuilt from the graph and weights it stores), and its
    class names: ``class_names`` if given (see :func:`override_names`), else from ``classes.json`` in the run
    directory (where absent: the three sentiments for three outputs, else "0", "1", ...); the model
    carries them too (``model.class_names``), for evaluation, explanations and export."""
    from ..runtime import keras

    path = existing(path)
    if (path / "saved_model.pb").is_file():
        if verify:
            verify_savedmodel(path)
        else:
            unverified(path)
        return _rebuilt(path, class_names)
    if path.suffix.lower() == ".tflite" and path.is_file():
        raise ModelFileError(f"{path}: a TFLite file; this needs the Keras model it came from: a run "
                             "directory (with model.keras), a .keras file or an exported SavedModel version")
    file = path / KERAS_MODEL if path.is_dir() else path
    if not file.is_file():
        raise _not_a_model(path, f"{file} not found"
                           + (" (a run directory holds model.keras)" if path.is_dir() else ""), keras_only=True)
    if not zipfile.is_zipfile(file):
        raise ModelFileError(f"{file}: not a Keras model file (a .keras file is a zip archive)")
    _check_config_size(file)
    try:  # safe mode: a Python lambda or a function from outside Keras in the file is refused, never run
        model = keras.models.load_model(file, safe_mode=True)
    except Exception as exc:
        raise ModelFileError(f"{file}: cannot be loaded as a Keras model ({_first_line(exc)})") from exc
    names = override_names(class_names, class_names_file(path), path)
    fits = names is None or len(names) == model.output_shape[-1]  # else the error comes where they are used
    model.class_names = carried(model, names if fits else None)
    return model, names if names is not None else list(model.class_names)


def _check_config_size(file: Path) -> None:
    """Refuse a ``.keras`` file whose ``config.json`` inflates past :data:`MAX_CONFIG_BYTES`, read no further
    than that (its declared size may lie); Keras would read and parse it whole."""
    try:
        with zipfile.ZipFile(file) as archive, archive.open("config.json") as config:
            size = len(config.read(MAX_CONFIG_BYTES + 1))
            size = max(size, archive.getinfo("config.json").file_size)
    except (KeyError, zipfile.BadZipFile, OSError):
        return  # none, or unreadable: Keras says what is wrong
    if size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{file}: its config.json holds {size:,} bytes once inflated, more than the "
                             f"{MAX_CONFIG_BYTES // 2**20} MB a model's description takes; not a model file to load")


def _rebuilt(version: Path, class_names: Sequence[str] | None) -> tuple[keras.Model, list[str]]:
    """The Keras model of an exported SavedModel version (see :func:`load_keras`), with its class names."""
    try:
        model = rebuild_keras(version)
    except Exception as exc:  # a graph or weights that do not fit: name the version
        raise ModelFileError(f"{version}: its Keras model cannot be rebuilt ({_first_line(exc)})") from exc
    if model is None:
        raise ModelFileError(f"{version}: an exported model without its Keras graph (exported by an earlier "
                             "release); give the run directory (with model.keras) or a .keras file it came from")
    names = override_names(class_names, saved_class_names(version), version)
    model.class_names = carried(model, names)
    return model, list(model.class_names)


def rebuild_keras(version_dir: str | os.PathLike) -> keras.Model | None:
    """The Keras model an exported version came from, its graph from ``assets.extra`` (safe mode: no code
    runs) and its weights from the version's variables; None for a version exported without its graph."""
    from ..runtime import keras, tf

    config = Path(version_dir) / "assets.extra" / KERAS_CONFIG
    if not config.is_file():
        return None
    model = keras.models.model_from_json(config.read_text(encoding="utf-8"))
    weights = getattr(tf.saved_model.load(str(version_dir)), KERAS_WEIGHTS)
    for weight, value in zip(model.weights, weights, strict=True):
        weight.assign(tf.cast(value, weight.dtype))  # a version may store them in half precision
    if isinstance(model.input, list) and len(model.input) == 1:  # a graph saved with its one input in a list:
        model = keras.Model(model.input[0], model.output, name=model.name)  # called with a batch, as any other
    return model


def default_model() -> Path:
    """The model used when none is named: ``$IMAGESENTIMENT_MODEL``, else the newest version of the
    SavedModel shipped in this checkout's ``exported_models/imagesentiment/``."""
    if os.environ.get("IMAGESENTIMENT_MODEL"):
        return Path(os.environ["IMAGESENTIMENT_MODEL"])
    return shipped_model("imagesentiment")


def resolve(path: str | os.PathLike | None) -> Path:
    """The model ``path`` names: the default (:func:`default_model`) for None; a shipped model's name
    (``"faces"``: ``exported_models/faces/``), where no file or folder of that name is here, its newest
    version; else the path itself."""
    if path is None:
        return default_model()
    if str(path) in SHIPPED_NAMES and not Path(path).exists():
        return shipped_model(str(path))
    return Path(path)


def existing(path: str | os.PathLike | None) -> Path:
    """:func:`resolve`'s path, where something is there; else a FileNotFoundError saying it is missing and the
    nearest name (:func:`~imagesentiment.contract.missing_model`)."""
    problem = missing_model(path) if path is not None else None
    if problem:
        raise FileNotFoundError(problem)
    return resolve(path)


def load(path: str | os.PathLike | None = None, class_names: Sequence[str] | None = None,
         verify: bool = True) -> Predictor:
    """A predictor for a run directory, a ``.keras`` file, a SavedModel version folder or a ``.tflite`` file
    (the shipped default model when ``path`` is None; ``"faces"``: the shipped faces model, :func:`resolve`).

    ``class_names`` overrides the names stored with the model. An exported model (SavedModel or ``.tflite``)
    whose content differs from the checksum recorded at export, or that this release exported and has lost its
    record, is refused unless ``verify`` is False (then loaded with a warning); one of an earlier release or
    another tool, without the record, loads with a warning.
    """
    path = existing(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return SavedModelPredictor(path, class_names, verify)
    if path.suffix.lower() == ".tflite" and path.is_file():
        return TFLitePredictor(path, class_names, verify=verify)
    if (path.is_dir() and (path / KERAS_MODEL).is_file()) or (path.suffix.lower() == ".keras" and path.is_file()):
        model, names = load_keras(path, class_names)
        return KerasPredictor(model, names, str(path))
    raise _not_a_model(path, f"{path}: not a run directory (with model.keras), a .keras file, a SavedModel "
                             "version folder (with saved_model.pb) or a .tflite file")
