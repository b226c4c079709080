"""Training from TFRecord shards, and under MultiWorkerMirroredStrategy with two local workers."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imagesentiment.cli import main
from imagesentiment.training.config import ConfigError, load_config
from imagesentiment.data.pipeline import training_order
from imagesentiment.data.shards import read_split
from imagesentiment.training.distribute import tf_config, worker_dir
from imagesentiment.training.prepare import prepare_split
from imagesentiment.training.fit import TrainingError, train
from imagesentiment.training.cv import cross_validate


def small_config(folder: Path, images: Path, epochs: int = 3) -> Path:
    path = folder / "config.yaml"
    path.write_text(f"data: {{source: {{path: {images}}}}}\n"
                    "model: {kind: cnn, input_size: 32, widths: [8, 16], dropout: 0.2}\n"
                    f"train: {{epochs: {epochs}, batch_size: 8, learning_rate: 0.003, patience: 8}}\n"
                    "split: {validation: 0.2, test: 0.2}\n")
    return path


def test_shard_command_writes_the_training_split(tmp_path, synthetic_root):
    config = small_config(tmp_path, synthetic_root)
    assert main(["shard", str(config), "--out", str(tmp_path / "shards"), "--shard-size", "10"]) == 0
    split = read_split(str(tmp_path / "shards"))
    assert [len(split.train), len(split.validation), len(split.test)] == [54, 18, 18]
    assert len(split.train.shards.files) == 6 and (tmp_path / "shards" / "skipped_files.csv").is_file()
    # the same images on each side as the split training makes from the files; the training side
    # mixed, in the order the cached file pipeline uses, not in the source's class-sorted order
    from_files = prepare_split(load_config(config), tmp_path / "skipped_files.csv")
    for name in ("validation", "test"):
        assert getattr(from_files, name).frame["path"].tolist() == getattr(split, name).frame["path"].tolist()
    mixed = from_files.train.subset(training_order(len(from_files.train), load_config(config).seed))
    assert split.train.frame["path"].tolist() == mixed.frame["path"].tolist()
    assert split.train.frame["path"].tolist() != sorted(split.train.frame["path"].tolist())


def test_shard_command_refuses_weighted_extra_training(tmp_path, synthetic_root, capsys):
    config = small_config(tmp_path, synthetic_root)
    config.write_text(config.read_text().replace(
        "data: {source: {path: %s}}" % synthetic_root,
        "data: {source: {path: %s}, extra_training: [{path: %s, weight: 0.5}]}" % (synthetic_root, synthetic_root)))
    assert main(["shard", str(config), "--out", str(tmp_path / "shards")]) == 2
    assert "shards keep no per-source weight" in capsys.readouterr().err
    assert not (tmp_path / "shards").exists(), "refused before anything is written"


def test_training_from_shards_gives_the_same_results_as_from_files(tmp_path, synthetic_root):
    config = small_config(tmp_path, synthetic_root)
    # one shard per side: read in the order written, the shard pipeline yields the same batches
    assert main(["shard", str(config), "--out", str(tmp_path / "shards"), "--shard-size", "1000"]) == 0
    from_files = train(load_config(config), tmp_path / "files")
    from_shards = train(load_config(config, {"data.shards": str(tmp_path / "shards")}), tmp_path / "shards_run")
    a, b = (pd.read_csv(tmp_path / run / "history.csv") for run in ("files", "shards_run"))
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
    np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-4)
    assert from_files["accuracy"] == from_shards["accuracy"]
    predictions = [pd.read_csv(tmp_path / run / "test" / "predictions.csv").sort_values("path", ignore_index=True)
                   for run in ("files", "shards_run")]
    assert predictions[0]["label"].tolist() == predictions[1]["label"].tolist()
    np.testing.assert_allclose(predictions[0]["positive"], predictions[1]["positive"], atol=1e-4)


def test_strategy_and_shards_are_checked(tmp_path, synthetic_root):
    config = small_config(tmp_path, synthetic_root)
    with pytest.raises(ConfigError, match="train.strategy"):
        load_config(config, {"train.strategy": "parameter_server"})
    with pytest.raises(FileNotFoundError, match="no shard set"):
        train(load_config(config, {"data.shards": str(tmp_path / "none")}), tmp_path / "run")
    with pytest.raises(TrainingError, match="cross-validation"):
        cross_validate(load_config(config, {"train.strategy": "mirrored"}), tmp_path / "cv")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(config: Path, shards: Path, run: Path, logs: Path) -> list[subprocess.Popen]:
    """Two local worker processes training ``config`` from ``shards`` into ``run`` under
    MultiWorkerMirroredStrategy (TF_CONFIG, loopback ports); their output in ``logs``/workerN.log."""
    workers = [f"localhost:{port}" for port in free_ports(2)]
    command = [sys.executable, "-m", "imagesentiment.cli", "train", str(config), "--out", str(run),
               "--set", f"data.shards={shards}", "--set", "train.strategy=multi_worker"]
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": tf_config(workers, index), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": "-1"}
        with open(logs / f"worker{index}.log", "w") as log:
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def finish(processes: list[subprocess.Popen], logs: Path) -> list[str]:
    """Wait for the workers; their logs, after checking that both ended well."""
    try:
        codes = [process.wait(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    texts = [(logs / f"worker{i}.log").read_text() for i in range(len(processes))]
    assert codes == [0] * len(processes), texts[codes.index(next(c for c in codes if c))][-3000:]
    return texts


def test_two_workers_train_from_shards_and_only_the_chief_writes(tmp_path, synthetic_root):
    config = small_config(tmp_path, synthetic_root, epochs=1)
    shards = tmp_path / "shards"
    assert main(["shard", str(config), "--out", str(shards), "--shard-size", "7"]) == 0  # uneven files
    run = tmp_path / "run"
    logs = finish(start_workers(config, shards, run, tmp_path), tmp_path)
    for log in logs:
        assert "multi_worker: 2 replicas, global batch 16" in log
    # one synchronised model: both workers logged the same losses
    losses = [re.findall(r" loss: ([0-9.]+) - val_accuracy: [0-9.]+ - val_loss: ([0-9.]+)", log) for log in logs]
    assert len(losses[0]) == 1 and losses[0] == losses[1]
    assert (run / "model.keras").is_file() and len(pd.read_csv(run / "history.csv")) == 1
    assert (run / "test" / "metrics.json").is_file() and (run / "checkpoints" / "best.weights.h5").is_file()
    assert not worker_dir(run, "worker", 1).exists(), "the other worker's folder is removed at the end"
    import keras

    model = keras.models.load_model(run / "model.keras")
    assert model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0).shape == (1, 3)


def test_two_workers_killed_after_an_epoch_resume_from_the_backup(tmp_path, synthetic_root):
    config = small_config(tmp_path, synthetic_root, epochs=3)
    shards = tmp_path / "shards"
    assert main(["shard", str(config), "--out", str(shards), "--shard-size", "10"]) == 0
    run = tmp_path / "run"
    history = run / "history_phase1.csv"
    processes = start_workers(config, shards, run, tmp_path / "first")
    deadline = time.time() + 240
    while not (history.is_file() and len(history.read_text().splitlines()) >= 2):  # epoch 1 logged
        assert all(p.poll() is None for p in processes), "a worker ended before it could be killed"
        assert time.time() < deadline, "no epoch finished in time"
        time.sleep(0.01)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = len(pd.read_csv(history))
    assert 1 <= done < 3 and not (run / "model.keras").exists()
    logs = finish(start_workers(config, shards, run, tmp_path / "second"), tmp_path / "second")
    for log in logs:  # both workers go on from the chief's backup, not from epoch 1
        assert re.findall(r"Epoch (\d+)/3", log)[0] == str(done + 1), log[-2000:]
    table = pd.read_csv(run / "history.csv")
    assert table["epoch"].tolist() == [0, 1, 2] and (run / "model.keras").is_file()


MIRRORED_ON_TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from imagesentiment.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_mirrored_strategy_trains_on_two_replicas(tmp_path, synthetic_root):
    """MirroredStrategy as on a machine with two GPUs: here two logical CPU devices in one process."""
    config = small_config(tmp_path, synthetic_root, epochs=2)
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", MIRRORED_ON_TWO_CPUS, "train", str(config), "--out", str(run),
                           "--set", "train.strategy=mirrored"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mirrored: 2 replicas, global batch 16" in done.stdout
    assert len(pd.read_csv(run / "history.csv")) == 2 and (run / "model.keras").is_file()
    assert (run / "test" / "metrics.json").is_file()
