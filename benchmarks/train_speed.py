"""How fast does training run on this machine? (issue 3)

On the real data in ../shared/data, in one run, through the project's own ``fit_phase``
(every callback on; the figure is the ``images_per_s`` column of history.csv, training images
of the epoch over the epoch's wall-clock time, validation included), median of the epochs
after the first (which traces the graphs and fills the caches):

- the MobileNetV2 transfer model of a pipeline (default pipelines/twitter_five.yaml) on the
  Twitter set: the head phase and the fine-tune phase as that pipeline runs them. With
  ``train.cached_views`` set (the cheaper fine-tune), the frozen lower backbone runs once per
  image and view before the phases, and both phases train only the layers above it; that
  one-off cost is timed too (``frozen_part_images_per_s``) and folded into
  ``fine_tune_images_per_s_amortized`` (the phase's images over the phase's time plus the
  time its share of the one-off pass took). ``--uncached`` also times the old path (the whole
  model on freshly augmented images every step) for comparison;
- the from-scratch CNN of pipelines/fer2013.yaml on ``--fer-images`` FER-2013 training faces;
- with ``--faces-only``, that alone for the ``--fer`` pipeline (e.g. pipelines/faces_small.yaml) at each
  of the sizes ``--faces-widths`` names, with the seconds an epoch of its whole training side takes.

Target: the fine-tune phase >= 100 images/s. The machine is shared: the load average and the
process CPU time are recorded beside the wall-clock figures.

    python benchmarks/train_speed.py [--pipeline pipelines/twitter_five.yaml] [--epochs 4] [--uncached]
    python benchmarks/train_speed.py --faces-only --fer pipelines/faces_small.yaml --faces-widths 8,16,32,64,128 \
        --faces-widths 16,32,64,128,256 --faces-widths 32,64,128,256
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from imagesentiment.training import fit as T  # noqa: E402
from imagesentiment.training.activations import ActivationStore  # noqa: E402
from imagesentiment.training.config import load_config  # noqa: E402
from imagesentiment.data import Split, train_val_test_split  # noqa: E402
from imagesentiment.training.prepare import load_sources, prepare_split  # noqa: E402
from imagesentiment.models.build import unfreeze_top  # noqa: E402
from imagesentiment.training.run import Run  # noqa: E402
from results import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def steady(history, phase_rows: slice) -> float:
    rates = history["images_per_s"].to_numpy()[phase_rows]
    return float(np.median(rates[1:] if len(rates) > 1 else rates))


def timed_phases(config, split: Split, epochs: int, out: Path) -> dict:
    """Head phase then fine-tune phase, ``epochs`` each, as train_split runs them."""
    model = T.build_model(config)
    figures = {}
    one_off = 0.0
    store = ActivationStore(config.train.activation_cache)
    if config.train.cached_views:  # the one-off pass of the frozen part, timed on its own
        bottom, _ = T.split_frozen(model, config)
        sample = split.train.subset(range(min(args.frozen_images, len(split.train))))
        start = time.perf_counter()
        ActivationStore().activations(bottom, sample, config, 2)
        rate = 2 * len(sample) / (time.perf_counter() - start)
        figures["frozen_part_images_per_s"] = round(rate, 1)
        # the whole one-off pass of a run: every training image's views and the validation images
        one_off = (len(split.train) * config.train.cached_views + len(split.validation)) / rate
        figures["frozen_part_s_estimated"] = round(one_off, 1)
        store.activations(bottom, split.train, config, config.train.cached_views)  # from --activation-cache
        store.activations(bottom, split.validation, config, 1)
    head = T.fit_phase(model, split, config, Run(out), "phase1", epochs, config.train.learning_rate, store)
    figures["head_images_per_s"] = round(steady(head, slice(0, epochs)), 1)
    fine = config.train.fine_tune
    figures["fine_tune_layers_trained"] = unfreeze_top(model, fine.layers)
    start = time.perf_counter()
    history = T.fit_phase(model, split, config, Run(out), "phase2", epochs, fine.learning_rate, store)
    phase_s = time.perf_counter() - start
    figures["fine_tune_images_per_s"] = round(steady(history, slice(0, epochs)), 1)
    if config.train.cached_views:
        # the share of the one-off pass a whole run's fine-tune phase carries: its epochs over all epochs
        share = fine.epochs / (fine.epochs + config.train.epochs)
        per_epoch = phase_s / epochs
        figures["fine_tune_images_per_s_amortized"] = round(
            len(split.train) * fine.epochs / (per_epoch * fine.epochs + share * one_off), 1)
    return figures


def faces_speed(config, faces, images: int, folder: Path) -> dict:
    """Three epochs of ``config``'s model on ``images`` of the training ``faces`` (a tenth of them validating):
    images/s after the first, and the seconds an epoch of the configuration's whole training side takes so."""
    sample = faces.subset(np.random.default_rng(0).permutation(len(faces))[:images])
    side = train_val_test_split(sample, 0.1, 0.0, config.seed)
    model = T.build_model(config)
    rate = steady(T.fit_phase(model, side, config, Run(folder), "phase1", 3, config.train.learning_rate), slice(0, 3))
    m = config.model
    return {"model": f"{m.kind}, {m.input_size}px, widths {m.widths}, {m.convs_per_block} convolutions per block, "
                     f"batch {config.train.batch_size}",
            "weights": model.count_params(), "images_per_s": round(rate, 1),
            "s_per_epoch": round(len(faces) * (1 - config.split.validation) / rate, 1)}


def faces_only(args: argparse.Namespace) -> None:
    """``--faces-only``: the --fer pipeline's model at each of ``--faces-widths``, under ``train_speed_faces``."""
    cpu0, wall0, load = time.process_time(), time.perf_counter(), round(os.getloadavg()[0], 2)
    config = load_config(args.fer)
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        faces = load_sources(config, Run(Path(tmp) / "load").skipped_file).images
        for widths in args.faces_widths or [None]:
            sized = load_config(args.fer, {"model.widths": [int(w) for w in widths.split(",")]} if widths else None)
            sizes.append(faces_speed(sized, faces, args.fer_images, Path(tmp) / f"size{len(sizes)}"))
    record("train_speed_faces", {
        "pipeline": Path(args.fer).name, "faces_timed": args.fer_images,
        "training_faces": round(len(faces) * (1 - config.split.validation)), "sizes": sizes,
        "load_average_start": load, "load_average_end": round(os.getloadavg()[0], 2),
        "process_cpu_s": round(time.process_time() - cpu0, 1), "wall_s": round(time.perf_counter() - wall0, 1)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "twitter_five.yaml"))
    parser.add_argument("--fer", default=str(ROOT / "pipelines" / "fer2013.yaml"))
    parser.add_argument("--epochs", type=int, default=4, help="epochs timed per phase")
    parser.add_argument("--fer-images", type=int, default=4000)
    parser.add_argument("--uncached", action="store_true", help="also time the whole-model path")
    parser.add_argument("--frozen-images", type=int, default=96, help="images whose frozen pass is timed")
    parser.add_argument("--activation-cache", help="a train.activation_cache folder of earlier runs: the "
                        "phases start from its stored activations (the frozen pass is still timed)")
    parser.add_argument("--faces-only", action="store_true", help="time only the --fer pipeline's model, at each "
                        "of --faces-widths, on --fer-images faces (recorded under train_speed_faces)")
    parser.add_argument("--faces-widths", action="append", metavar="W,W,...", help="with --faces-only: model.widths "
                        "to time (repeat for several sizes; default: the pipeline's)")
    args = parser.parse_args()
    if args.faces_only:
        faces_only(args)
        raise SystemExit(0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    config = load_config(args.pipeline, {"train.activation_cache": args.activation_cache})
    if not Path(config.data.source.path).exists():
        raise SystemExit(f"the data set is not at {config.data.source.path}")
    figures: dict = {"pipeline": Path(args.pipeline).name, "input_size": config.model.input_size,
                     "batch_size": config.train.batch_size, "cached_views": config.train.cached_views,
                     "load_average_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        split = prepare_split(config, Run(Path(tmp) / "transfer").skipped_file)
        figures["training_images"] = len(split.train)
        figures.update(timed_phases(config, split, args.epochs, Path(tmp) / "transfer"))
        if args.uncached and config.train.cached_views:
            plain = load_config(args.pipeline, {"train.cached_views": 0})
            old = timed_phases(plain, split, 2, Path(tmp) / "uncached")
            figures["uncached_head_images_per_s"] = old["head_images_per_s"]
            figures["uncached_fine_tune_images_per_s"] = old["fine_tune_images_per_s"]

        fer = load_config(args.fer, {"train.fine_tune.epochs": 0})
        if Path(fer.data.source.path).exists():
            faces = load_sources(fer, Run(Path(tmp) / "fer").skipped_file).images
            speed = faces_speed(fer, faces, args.fer_images, Path(tmp) / "fer")
            figures["fer_cnn_images_per_s"], figures["fer_cnn"] = speed["images_per_s"], speed["model"]
    figures["load_average_end"] = round(os.getloadavg()[0], 2)
    figures["process_cpu_s"] = round(time.process_time() - cpu0, 1)
    figures["wall_s"] = round(time.perf_counter() - wall0, 1)
    figures["target"] = "fine-tune phase >= 100 images/s"
    record("train_speed", figures)
