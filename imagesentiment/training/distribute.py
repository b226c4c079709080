"""Training under a ``tf.distribute`` strategy chosen by configuration (``train.strategy``).

``default``       one process, TensorFlow's default placement (what runs without a strategy)
``mirrored``      MirroredStrategy: every GPU of this machine (the CPU where there is none)
``multi_worker``  MultiWorkerMirroredStrategy: one process per machine, the cluster and this
                  process's place in it from the ``TF_CONFIG`` environment variable

The model is built and compiled inside ``strategy.scope()``; the configured batch size is per
replica, so a step takes ``batch_size x replicas`` images. Every worker runs the same training;
only the chief (task ``chief``, else ``worker`` 0) writes into the run directory, the others
write the same files into a folder of their own (:func:`run_dir_of`), which also keeps their
``BackupAndRestore`` state for a restart, and is removed once the run is complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


from ..runtime import tf
from ..compat import patch_keras_for_multi_worker
from .config import STRATEGIES


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy ``name`` names. ``multi_worker`` must be made before any other TensorFlow
    operation runs in the process (TensorFlow configures its collectives at start-up)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":  # every GPU; without GPUs, every logical CPU device (one unless configured)
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"train.strategy: expected one of {STRATEGIES}, got {name!r}")


def task(strategy: tf.distribute.Strategy) -> tuple[str | None, int | None]:
    """``(task type, task index)`` of this process in a multi-worker cluster, else ``(None, None)``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, None
    return resolver.task_type, int(resolver.task_id)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs: the only process, the ``chief`` task, or
    ``worker`` 0 of a cluster without a chief."""
    kind, index = task(strategy)
    if kind is None:
        return True
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in jobs)


def run_dir_of(run_dir: str | os.PathLike, strategy: tf.distribute.Strategy) -> Path:
    """Where this process writes: ``run_dir`` for the chief; for another worker a folder of its own
    under the system's temporary folder, the same on a restart (so its backup is found)."""
    if is_chief(strategy):
        return Path(run_dir)
    return worker_dir(run_dir, *task(strategy))


def worker_dir(run_dir: str | os.PathLike, kind: str, index: int) -> Path:
    """The folder of task ``kind``/``index`` (not the chief) of a run into ``run_dir``."""
    key = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "imagesentiment-workers" / f"{key}-{kind}{index}"


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process is one of several workers."""
    if task(strategy)[0] is None:
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs) > 1


def for_strategy(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> tf.data.Dataset:
    """``dataset`` as the strategy should split it between workers: by element (every worker reads
    the same stream and keeps its share of each global batch), so that every worker takes the
    same number of steps whatever the number and size of shard files."""
    if not is_multi_worker(strategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def tf_config(workers: list[str], index: int, kind: str = "worker") -> str:
    """A ``TF_CONFIG`` value for task ``kind``/``index`` of a cluster of ``host:port`` workers."""
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": kind, "index": index}})
