"""Every use of a private Keras or TensorFlow API, in one place to check on an upgrade.

Each function says what it reaches into, why no public API does it, and the versions it was checked on
(Keras 3.15.1, TensorFlow 2.21.0). Imports are inside the functions: importing this module starts nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import keras


def layer_inputs(model: keras.Model) -> dict[str, list[str]]:
    """The names of the layers that feed each layer of ``model`` in the model's own graph.

    Keras 3.15.1: ``layer._inbound_nodes`` and ``tensor._keras_history``; Keras 3 has no public way to walk
    a functional model's graph by layer (``model.get_config()`` has it only as serialized data).
    """
    return {layer.name: [t._keras_history.operation.name for node in layer._inbound_nodes[:1]  # the model's call
                         for t in node.input_tensors] for layer in model.layers}


def forget_restored_epoch(model: keras.Model) -> None:
    """Clear the epoch ``BackupAndRestore`` restored on ``model`` for an earlier ``fit``.

    Keras 3.15.1: the callback sets ``model._initial_epoch``, which ``fit`` reads and never clears, so after a
    resumed phase 1 the next phase started at phase 1's epoch (or not at all); its own backup sets it again.
    """
    model._initial_epoch = None


def quantize_calibrated(calibrated: bytes, input_type: object, output_type: object, denylisted_ops: Sequence[str],
                        denylisted_nodes: Sequence[str]) -> bytes:
    """A calibrated TFLite model quantized to integers, keeping the denylisted ops and tensors in float.

    TensorFlow 2.21.0: ``tensorflow.lite.python.convert.mlir_quantize``, the quantizer the converter itself
    calls; the public converter takes no list of tensors to keep in float, which the per-layer error check
    needs (its QuantizationDebugger finds them by name).
    """
    from tensorflow.lite.python.convert import mlir_quantize

    return mlir_quantize(calibrated, input_data_type=input_type, output_data_type=output_type,
                         denylisted_ops=list(denylisted_ops), denylisted_nodes=list(denylisted_nodes))


_PATCHED = False


def patch_keras_for_multi_worker() -> None:
    """Two fixes to Keras 3.15.1's TensorFlow trainer (``keras.src.backend.tensorflow.trainer``), without
    which ``fit`` fails at its first step under MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow/tensorflow#72388):

    - to build the metrics and optimizer it takes a batch's mean over the replicas,
      ``strategy.reduce("MEAN", batch)``, which the collective strategy refuses for a nested
      batch; only the batch's shapes and types are needed, so the first local replica's is used;
    - it averages the logged loss and metrics over workers with ``reduce(..., axis=0)``, which
      fails on scalars; they are averaged with ``axis=None`` (every worker gets the same logs,
      so callbacks such as EarlyStopping decide the same on every worker).

    Nothing changes for the other strategies.
    """
    global _PATCHED
    if _PATCHED:
        return
    from .runtime import tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    reduce_per_replica = trainer.reduce_per_replica

    def reduce_scalars_too(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_scalars_too
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _PATCHED = True
