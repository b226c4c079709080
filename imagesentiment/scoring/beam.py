"""Batch scoring on Apache Beam: an exported SavedModel over a large collection of images.

    images (file patterns or folders, or TFRecord shards) -> read and decode each image, as
    ``imagesentiment predict`` does -> RunInference (Beam's TensorFlow model handler, batched)
    -> one row per image (path, label, confidence, a probability per class, error) -> Parquet or CSV

The same pipeline runs on Beam's local runner (``--direct_num_workers N
--direct_running_mode multi_processing`` for N processes) and unchanged on Dataflow, Flink or
Spark: pipeline options are passed through (``--runner DataflowRunner --project ...``). Paths
go through Beam's file systems (local, ``gs://``, ``s3://`` with Beam's AWS extra).

Needs the ``scale`` extra: ``pip install imagesentiment[scale]``.

Why a subclass of Beam's handler: ``TFModelHandlerNumpy.load_model`` calls
``tf.keras.models.load_model``, and with TensorFlow 2.21 ``tf.keras`` is Keras 3, which loads no
SavedModel at all ("the legacy SavedModel format is not supported"); the alternative,
``TF_USE_LEGACY_KERAS=1``, would switch every ``tf.keras`` of the worker process to tf_keras. So
the handler is Beam's, with ``load_model`` done by ``tf.saved_model.load`` and an ``inference_fn``
that calls the export's ``predict_images`` signature: the batching, model sharing and metrics
stay Beam's.
"""
from __future__ import annotations

import io
import os
from typing import Any, Iterable, Sequence

import numpy as np

try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
    from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerNumpy
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("batch scoring on Beam needs the scale extra: pip install 'imagesentiment[scale]' "
                      f"({exc})") from exc

from ..data.constants import IMAGE_EXTENSIONS
from ..data.imageset import InputFileError, read_input
from ..table.columns import answer_rows
from ..table.formats import FORMATS, SHARDED, csv_line

ERRORS = "errors"


def model_info(model_dir: str) -> tuple[list[str], tuple[int, int]]:
    """Class names and input size ``(H, W)`` of an exported SavedModel version (any file system
    TensorFlow reads)."""
    from ..runtime import tf

    from ..contract import CLASSES_ASSET, PIXELS

    model_dir = model_dir.rstrip("/")
    if not tf.io.gfile.exists(f"{model_dir}/saved_model.pb"):
        raise FileNotFoundError(f"{model_dir}: not an exported SavedModel version (no saved_model.pb); export "
                                "a run with imagesentiment export RUN --format savedmodel and give BASE/NAME/VERSION")
    if not tf.io.gfile.exists(f"{model_dir}/assets/{CLASSES_ASSET}"):
        raise FileNotFoundError(f"{model_dir}: no assets/{CLASSES_ASSET}, so not a model imagesentiment export "
                                "wrote; export it with imagesentiment export")
    with tf.io.gfile.GFile(f"{model_dir}/assets/{CLASSES_ASSET}") as handle:
        classes = handle.read().splitlines()
    signature = tf.saved_model.load(model_dir).signatures[PIXELS]
    spec = next(iter(signature.structured_input_signature[1].values()))
    return classes, (int(spec.shape[1]), int(spec.shape[2]))


def predict_images(model: Any, batch: Sequence[np.ndarray], inference_args: dict[str, Any],
                   model_id: str | None = None) -> Iterable[PredictionResult]:
    """The handler's ``inference_fn``: a batch of float pixels through ``predict_images``."""
    from ..runtime import tf

    from ..contract import PIXELS

    probabilities = model.signatures[PIXELS](images=tf.constant(np.stack(batch)))["probabilities"].numpy()
    return [PredictionResult(x, p, model_id) for x, p in zip(batch, probabilities)]


class SavedModelHandler(TFModelHandlerNumpy):
    """Beam's TensorFlow (NumPy) model handler, loading the SavedModel with ``tf.saved_model.load``."""

    def load_model(self) -> Any:
        from ..runtime import tf

        return tf.saved_model.load(self._model_uri)


def model_handler(model_dir: str, batch_size: int = 32) -> KeyedModelHandler:
    """The keyed handler RunInference uses: ``(path, pixels)`` in, ``(path, PredictionResult)`` out."""
    return KeyedModelHandler(SavedModelHandler(model_dir, inference_fn=predict_images, min_batch_size=batch_size,
                                               max_batch_size=batch_size))  # full batches (the last of a bundle may not be)


class ReadAndDecode(beam.DoFn):
    """A path to ``(path, pixels)``; an unreadable file or image to the ``errors`` output with the
    reason, worded as ``imagesentiment predict`` words it."""

    def __init__(self, image_size: Sequence[int]) -> None:
        self.image_size = tuple(image_size)

    def process(self, element: str | tuple[str, bytes]) -> Iterable[Any]:
        from .batch import decode_pixels

        if isinstance(element, tuple):
            path, data = element
        else:
            path = element
            try:
                data = read_image_file(path)
            except InputFileError as exc:
                yield beam.pvalue.TaggedOutput(ERRORS, (path, exc.reason))
                return
            except (OSError, IOError) as exc:
                yield beam.pvalue.TaggedOutput(ERRORS, (path, f"unreadable: {getattr(exc, 'strerror', None) or exc}"))
                return
        pixels, reason = decode_pixels(data, self.image_size)
        if pixels is None:
            yield beam.pvalue.TaggedOutput(ERRORS, (path, reason))
        else:
            yield path, pixels


def read_image_file(path: str) -> bytes:
    """The bytes of the file at ``path``: a local one only if it is a regular file of at most 256 MiB, as ``predict``
    reads it (:func:`~imagesentiment.data.imageset.read_input`: a FIFO would block the worker for good); one of
    another file system (``gs://``) through Beam's."""
    if FileSystems.get_scheme(path) is None:
        return read_input(path)
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()


def parse_record(record: bytes) -> tuple[str, bytes]:
    """A shard record (``write_shards``) to ``(path, encoded image)``."""
    from tensorflow.core.example import example_pb2

    feature = example_pb2.Example.FromString(record).features.feature
    return feature["path"].bytes_list.value[0].decode(), feature["image"].bytes_list.value[0]


def as_pattern(item: str) -> str:
    """A local folder as the pattern of everything under it; anything else as is."""
    return os.path.join(item, "**") if os.path.isdir(item) else item


def is_image(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def scored_row(element: tuple[str, PredictionResult], classes: Sequence[str]) -> dict[str, Any]:
    path, result = element
    return {"path": path, **answer_rows(np.asarray(result.inference)[None], classes)[0], "error": ""}


def error_row(element: tuple[str, str], classes: Sequence[str]) -> dict[str, Any]:
    path, reason = element
    return {"path": path, **answer_rows(np.full((1, len(classes)), np.nan), classes)[0], "error": reason}


def output_files(prefix: str, output_format: str) -> list[str]:
    """The files a run wrote at ``prefix`` (``PREFIX-00000-of-0000N.parquet`` ...), sorted."""
    pattern = f"{prefix}-*-of-*.{output_format}"
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def read_scores(prefix: str, output_format: str = "parquet"):
    """Every row a run wrote at ``prefix``, as one table sorted by path."""
    import pandas as pd

    files = output_files(prefix, output_format)
    if not files:
        raise FileNotFoundError(f"no {output_format} files at {prefix}")
    read = FORMATS[f".{output_format}"].read
    parts = []
    for name in files:
        with FileSystems.open(name) as handle:
            parts.append(read(io.BytesIO(handle.read())))
    return pd.concat(parts, ignore_index=True).sort_values("path", ignore_index=True)


def build(pipeline: beam.Pipeline, inputs: Sequence[str], model_dir: str, out: str, classes: Sequence[str],
          image_size: Sequence[int], output_format: str = "parquet", tfrecords: bool = False,
          batch_size: int = 32) -> None:
    """Add the scoring transforms to ``pipeline``."""
    if tfrecords:
        encoded = (pipeline | "Patterns" >> beam.Create(list(inputs))
                   | "ReadShards" >> beam.io.ReadAllFromTFRecord()
                   | "Parse" >> beam.Map(parse_record))
    else:
        encoded = (pipeline | "Patterns" >> beam.Create([as_pattern(i) for i in inputs])
                   | "Match" >> fileio.MatchAll()
                   | "Paths" >> beam.Map(lambda metadata: metadata.path)
                   | "Images" >> beam.Filter(is_image))
    decoded = (encoded | "Spread" >> beam.Reshuffle()  # one element per image, spread over the workers
               | "Decode" >> beam.ParDo(ReadAndDecode(image_size)).with_outputs(ERRORS, main="images"))
    scored = (decoded.images | "RunInference" >> RunInference(model_handler(model_dir, batch_size))
              | "Rows" >> beam.Map(scored_row, classes))
    failed = decoded[ERRORS] | "ErrorRows" >> beam.Map(error_row, classes)
    rows = (scored, failed) | "All" >> beam.Flatten()
    columns = ["path", "label", "confidence", *classes, "error"]
    if output_format == "parquet":
        import pyarrow as pa

        schema = pa.schema([("path", pa.string()), ("label", pa.string()), ("confidence", pa.float64()),
                            *[(c, pa.float64()) for c in classes], ("error", pa.string())])
        _ = rows | "Write" >> beam.io.WriteToParquet(out, schema, file_name_suffix=".parquet")
    else:
        _ = (rows | "Format" >> beam.Map(csv_line, columns)
             | "Write" >> beam.io.WriteToText(out, file_name_suffix=".csv", header=",".join(columns)))


def pipeline_options(pipeline_args: Sequence[str]) -> PipelineOptions:
    """Beam's options from ``pipeline_args``; an option Beam does not know is refused by name (Beam
    itself only logs it and goes on: ``--runer DataflowRunner`` would score on this machine)."""
    import difflib

    known = PipelineOptions([]).get_all_options()
    options = PipelineOptions(list(pipeline_args))
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        hints = [f" (did you mean --{close[0]}?)" if (close := difflib.get_close_matches(name, known, 1)) else ""
                 for name in unknown]
        raise ValueError("Beam does not know the option " + ", ".join(f"--{n}{h}" for n, h in zip(unknown, hints)))
    return options


def score(inputs: Sequence[str], model_dir: str, out: str, output_format: str = "parquet",
          tfrecords: bool = False, batch_size: int = 32, pipeline_args: Sequence[str] = (),
          overwrite: bool = False) -> list[str]:
    """Score every image of ``inputs`` (file patterns and folders, or with ``tfrecords`` patterns of
    shard files) with the SavedModel version ``model_dir`` into ``OUT-0000i-of-0000N.{parquet,csv}``;
    ``pipeline_args`` are Beam's options (runner and its settings). Returns the files written."""
    if output_format not in SHARDED:
        raise ValueError(f"output format must be one of {SHARDED}, not {output_format!r}")
    if not inputs:
        raise ValueError("nothing to score: give file patterns, folders or TFRecord shards")
    options = pipeline_options(pipeline_args)
    previous = output_files(out, output_format)
    if previous and not overwrite:
        raise FileExistsError(f"{out}: scores are already written there; choose another output, or pass "
                              "overwrite=True (--overwrite) to replace them")
    if previous:
        FileSystems.delete(previous)
    classes, image_size = model_info(model_dir)
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline, inputs, model_dir, out, classes, image_size, output_format, tfrecords, batch_size)
    return output_files(out, output_format)
