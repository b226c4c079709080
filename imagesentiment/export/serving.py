"""The TF Serving contract: REST bodies, gRPC ``PredictRequest``s, the warm-up file, and
functions that answer a request with a loaded signature the way the server maps it.

REST ``:predict`` bodies use the row format, ``{"signature_name": ..., "instances": [{"b64": ...}]}``;
binary values travel base64-encoded as ``{"b64": ...}``. The server answers
``{"predictions": [{output: value, ...}, ...]}``, or ``{"error": message}`` with HTTP 400 when
the graph refuses the input (e.g. bytes that are not an image: InvalidArgument).
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ..runtime import tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from ..contract import BYTES_INPUT, EXPLAIN, SERVING

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def rest_body(images: Sequence[bytes], signature_name: str = SERVING) -> dict:
    """A REST ``:predict`` body (row format) sending encoded images to a bytes signature."""
    return {"signature_name": signature_name,
            "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images]}


def predict_request(images: Sequence[bytes], model_name: str, signature_name: str = SERVING,
                    version: int | None = None) -> predict_pb2.PredictRequest:
    """A gRPC ``PredictRequest`` sending encoded images to a bytes signature."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[BYTES_INPUT].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)]))
    return request


def default_warmup_images() -> list[bytes]:
    """Two small generated images, one JPEG and one PNG, so both decoders are warmed."""
    ramp = tf.cast(tf.linspace(0.0, 255.0, 64), tf.uint8)
    image = tf.stack([tf.tile(ramp[None, :], [48, 1]), tf.tile(ramp[:48, None], [1, 64]),
                      tf.fill([48, 64], tf.constant(128, tf.uint8))], axis=-1)
    return [tf.io.encode_jpeg(image).numpy(), tf.io.encode_png(image).numpy()]


def write_warmup(version_dir: str | os.PathLike, model_name: str, images: Sequence[bytes] | None = None) -> Path:
    """Write ``assets.extra/tf_serving_warmup_requests``: one ``PredictionLog`` per bytes signature."""
    images = list(images) if images is not None else default_warmup_images()
    path = Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in (SERVING, EXPLAIN):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(images, model_name, signature)))
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: str | os.PathLike) -> list[prediction_log_pb2.PredictionLog]:
    """The warm-up records of an exported version."""
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(Path(version_dir) / WARMUP_FILE))]


def _unpack(value: Any) -> Any:
    """JSON values to Python: ``{"b64": s}`` becomes bytes, lists are walked."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


def _to_json(name: str, value: np.ndarray) -> Any:
    """A tensor value as the server writes it: strings as text, ``*_bytes`` outputs as ``{"b64": ...}``."""
    if value.dtype == object:
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, otypes=[object])(value).tolist()
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
    return value.tolist()


def _columns(body: dict, names: Sequence[str]) -> dict[str, list]:
    """The inputs of a row-format (``instances``) or columnar (``inputs``) body, by input name."""
    if "instances" in body:
        rows = body["instances"]
        if len(names) == 1 and not (rows and isinstance(rows[0], dict) and names[0] in rows[0]):
            return {names[0]: _unpack(rows)}
        return {name: _unpack([row[name] for row in rows]) for name in names}
    columns = body["inputs"]
    if len(names) == 1 and not (isinstance(columns, dict) and names[0] in columns):
        return {names[0]: _unpack(columns)}
    return {name: _unpack(columns[name]) for name in names}


def rest_predict(loaded: Any, body: dict | str) -> dict:
    """Answer a REST ``:predict`` body with a loaded SavedModel (``tf.saved_model.load``), as the server does.

    Returns ``{"predictions": [...]}`` (row format in) or ``{"outputs": {...}}`` (columnar in);
    ``{"error": message}`` where the server answers HTTP 400.
    """
    try:
        body = json.loads(body) if isinstance(body, str) else body
        signature = loaded.signatures[body.get("signature_name", SERVING)]
        specs = signature.structured_input_signature[1]
        columns = _columns(body, sorted(specs))
        tensors = {name: tf.constant(columns[name], dtype=spec.dtype) for name, spec in specs.items()}
        outputs = {name: _to_json(name, tensor.numpy()) for name, tensor in signature(**tensors).items()}
    except (tf.errors.InvalidArgumentError, KeyError, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, tf.errors.OpError) else f"{type(exc).__name__}: {exc}"
        return {"error": message}
    if len(outputs) == 1:  # a single output is given without its name
        return {"outputs" if "inputs" in body else "predictions": next(iter(outputs.values()))}
    if "inputs" in body:
        return {"outputs": outputs}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{name: column[i] for name, column in outputs.items()} for i in range(rows)]}


def grpc_predict(loaded: Any, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """Answer a gRPC ``PredictRequest`` with a loaded SavedModel, as the server does (errors raise)."""
    signature = loaded.signatures[request.model_spec.signature_name or SERVING]
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, tensor in signature(**inputs).items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
    return response
