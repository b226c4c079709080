"""Export: SavedModel versions for TF Serving, TFLite files checked with LiteRT, and the serving contract."""
from ..contract import EXPLAIN, PIXELS, QUANTIZATIONS, SERVING, read_metadata, saved_class_names, versions
from .savedmodel import ExportError, check_destination, export_savedmodel, input_size, write_version
from .serving import grpc_predict, predict_request, read_warmup, rest_body, rest_predict, write_warmup
from .tflite import Check, convert, export_tflite, image_arrays

__all__ = [
    "EXPLAIN", "PIXELS", "QUANTIZATIONS", "SERVING", "Check", "ExportError", "check_destination", "convert",
    "export_savedmodel", "export_tflite", "grpc_predict", "image_arrays", "input_size", "predict_request",
    "read_metadata", "read_warmup", "rest_body", "rest_predict", "saved_class_names", "versions", "write_version",
    "write_warmup",
]
