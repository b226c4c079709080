"""Past one machine: batch scoring on Beam against single-process predict, and the cost of shards (issue 8).

In one run, on the Twitter set from ../shared/data (1,269 photos) and a MobileNetV2 transfer model
at 160 px (backbone weights from ../shared/weights) exported as a SavedModel:
- images per second of ``imagesentiment predict`` (one process, ``predict_files`` on the SavedModel);
- images per second of the Beam pipeline (``imagesentiment.scoring.beam.score``) on the local runner with
  1 worker (in process) and 2 worker processes (``--direct_running_mode=multi_processing``), end to
  end and without the pipeline's fixed start-up cost (measured on 32 images with the same workers);
- writing the set as TFRecord shards (images/s, MB/s) and reading it back: raw records, and decoded
  batches at 160 px from shards against the same batches from the files.

Threads: one process uses TensorFlow's default (every core); with 2 workers each gets 1 thread,
so that both runs use the machine's 2 cores. The machine is shared: the load average is recorded.

    python benchmarks/scale_throughput.py [--limit 1269] [--size 160]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import record  # noqa: E402

from imagesentiment.data import check_set, make_dataset, twitter  # noqa: E402
from imagesentiment.data.shards import make_shard_dataset, read_shards, write_shards  # noqa: E402
from imagesentiment.export import export_savedmodel  # noqa: E402
from imagesentiment.inference import load  # noqa: E402
from imagesentiment.models.build import build_transfer  # noqa: E402
from imagesentiment.scoring.batch import predict_files  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "twitter-you2015"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.00_160_no_top.weights.h5"


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def beam_seconds(paths_file: list[str], version: Path, out: Path, workers: int) -> float:
    """Wall-clock seconds of one Beam scoring run of the files in ``paths_file`` patterns."""
    from imagesentiment.scoring.beam import score

    options = [f"--direct_num_workers={workers}"]
    if workers > 1:
        options.append("--direct_running_mode=multi_processing")
    return timed(score, paths_file, str(version), str(out), "parquet", pipeline_args=options, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="score only the first N images (0: all)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--shard-size", type=int, default=256)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the Twitter set is not at {DATA}")
    images = check_set(twitter(DATA, "three")).images
    if args.limit:
        images = images.subset(range(min(args.limit, len(images))))
    n = len(images)
    paths = images.frame["path"].tolist()
    megabytes = sum(os.path.getsize(p) for p in paths) / 1e6
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    model = build_transfer(3, "mobilenet_v2", args.size, WEIGHTS if WEIGHTS.is_file() else None)
    version = export_savedmodel(model, work / "models", version=1)
    figures: dict = {"images": n, "megabytes": round(megabytes, 1), "model": f"MobileNetV2 {args.size} px SavedModel",
                     "load_average": os.getloadavg()[0]}

    # the same images, as a folder of links, so that Beam's patterns find exactly them
    folder = work / "images"
    for i, path in enumerate(paths):
        (folder / f"{i // 500:03d}").mkdir(parents=True, exist_ok=True)
        os.symlink(path, folder / f"{i // 500:03d}" / f"{i:05d}{Path(path).suffix.lower()}")
    small = work / "small"
    small.mkdir()
    for i, path in enumerate(paths[:32]):
        os.symlink(path, small / f"{i:05d}{Path(path).suffix.lower()}")

    predictor = load(version)
    predict_files(predictor, paths[:32], work / "warm.parquet", progress=False)
    seconds = timed(predict_files, predictor, paths, work / "predict.parquet", progress=False)
    figures["predict_images_per_s"] = round(n / seconds, 1)

    for workers in (1, 2):
        if workers > 1:  # the worker processes start with these: 2 x 1 thread on 2 cores
            os.environ.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1")
        fixed = beam_seconds([str(small)], version, work / f"small{workers}" / "s", workers)
        total = beam_seconds([str(folder)], version, work / f"beam{workers}" / "s", workers)
        steady = n / max(total - fixed * (1 - 32 / n), 1e-9)
        figures[f"beam_{workers}_worker_images_per_s"] = round(n / total, 1)
        figures[f"beam_{workers}_worker_start_s"] = round(fixed, 1)
        figures[f"beam_{workers}_worker_images_per_s_after_start"] = round(steady, 1)

    prefix = str(work / "shards" / "twitter")
    seconds = timed(write_shards, images, prefix, args.shard_size)
    shards = read_shards(prefix)
    figures["shards_written"] = len(shards.files)
    figures["shard_write_images_per_s"] = round(n / seconds, 1)
    figures["shard_write_mb_per_s"] = round(megabytes / seconds, 1)
    records = tf.data.TFRecordDataset(shards.files, num_parallel_reads=tf.data.AUTOTUNE)
    seconds = timed(lambda: sum(1 for _ in records))
    figures["shard_read_records_per_s"] = round(n / seconds, 1)
    size = (args.size, args.size)
    for name, dataset in (("shards", make_shard_dataset(shards, size, 32)), ("files", make_dataset(images, size, 32))):
        seconds = timed(lambda: sum(int(x.shape[0]) for x, _ in dataset))
        figures[f"decoded_batches_from_{name}_images_per_s"] = round(n / seconds, 1)
    record("scale_throughput", figures)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
