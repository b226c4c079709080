"""TensorFlow and Keras, started quietly, and the lines their native code writes.

Every module of the package takes TensorFlow and Keras from here (``from ..runtime import keras, tf``), so that
whichever imports them first, TensorFlow starts as the command line starts it: its start-up lines left out
(:func:`quiet_start`). Importing this module starts nothing: ``tf`` and ``keras`` load when first asked for.

Lines that TensorFlow's and LiteRT's C++ code writes straight to the process's stderr (file descriptor 2),
where neither Python's logging nor ``TF_CPP_MIN_LOG_LEVEL`` reaches them, are caught (:func:`filtered`) and
passed on without the lines that only say the libraries are working."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Any, Callable, Iterator, TextIO

# What the TFLite converter and the LiteRT interpreter print on every export and every first call: the
# quantizer's settings and the notice that XNNPACK runs the model on the CPU.
LITERT_NOISE = re.compile(r"fully_quantize: \d|INFO: Created TensorFlow Lite XNNPACK delegate")
# What the JPEG decoder says of a file that gets its error row or its answer anyway: libjpeg's own lines and
# TensorFlow's error-level log of them (a level no TF_CPP_MIN_LOG_LEVEL hides).
# What FFmpeg (inside OpenCV) says of a video that gets its VideoError anyway: its demuxer's and decoders' lines,
# "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0...] moov atom not found".
VIDEO_NOISE = re.compile(r"^\[[\w,]+ @ 0x[0-9a-f]+\] ")
DECODER_NOISE = re.compile(r"Premature end of JPEG data|Corrupt JPEG data|Improper call to JPEG library|"
                           r"jpeg_mem\.cc:\d+\] Image too large")
# What TensorFlow's C++ side writes while it starts, before its logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot
# hide it): absl's notice, info and warning lines (oneDNN is on, no CUDA driver found) and, on a machine without a
# GPU driver, the failed cuInit that follows from it.
START_UP_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called|[IW]\d{4} [\d:. ]+\S+:\d+\] ")
NO_GPU_DRIVER, NO_GPU_DRIVER_ERROR = "Could not find cuda drivers", "failed call to cuInit"
# oneDNN's error-level notice, once a process, on the first half-precision op (a model with float16 weights) on a
# CPU without AVX-512 FP16: the op runs anyway, in Eigen. Start-up runs one such op, so that it comes then.
HALF_NOTICE = "oneDNN supports DT_HALF only on platforms with AVX-512"


def without(noise: re.Pattern) -> Callable[[str], str]:
    """A filter that keeps the lines of a text in which ``noise`` is not found."""
    return lambda text: "".join(line for line in text.splitlines(keepends=True) if not noise.search(line))


# descriptor 2 is the process's: one block swaps it at a time (threads loading models at once restored each
# other's catch file, and stderr was lost for good); re-entrant, for a block inside another
SWAP = threading.RLock()


@contextlib.contextmanager
def filtered(keep: Callable[[str], str]) -> Iterator[TextIO]:
    """Catch what is written to file descriptor 2 inside the block and write ``keep(text)`` of it to
    stderr at the end (also when the block raises); where there is no descriptor 2, nothing is caught.
    Yields a stream to the real stderr, for what must be seen at once (a progress bar)."""
    with SWAP:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            saved = None
        if saved is None:
            yield sys.stderr
            return
        with tempfile.TemporaryFile() as caught, os.fdopen(os.dup(saved), "w", buffering=1) as real:
            os.dup2(caught.fileno(), 2)
            try:
                yield real
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                sys.stderr.write(keep(caught.read().decode(errors="replace")))


def start_up_messages(text: str) -> str:
    """The part of TensorFlow's start-up output on stderr worth showing: all but ``START_UP_NOISE``."""
    lines = text.splitlines(keepends=True)
    no_driver = any(NO_GPU_DRIVER in line for line in lines)
    return "".join(line for line in lines if not START_UP_NOISE.match(line) and HALF_NOTICE not in line
                   and not (no_driver and NO_GPU_DRIVER_ERROR in line))


def start_tensorflow_quietly() -> None:
    """Import TensorFlow, look for devices and run one half-precision op with stderr caught, then pass on what
    ``start_up_messages`` keeps. A worker of a cluster (``TF_CONFIG`` set) runs no op: its multi-worker strategy
    must be made before any."""
    with filtered(start_up_messages):
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
        if "TF_CONFIG" not in os.environ:
            tf.cast(tf.constant([1.0], tf.float16), tf.float32)


def quiet_start() -> None:
    """Start TensorFlow as the command line does, its start-up lines left out and its log level set to
    errors, for the Python API; unless the user set ``TF_CPP_MIN_LOG_LEVEL`` (then they want TensorFlow's
    lines) or TensorFlow has started already."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    start_tensorflow_quietly()


def __getattr__(name: str) -> Any:
    """``tf`` and ``keras``, TensorFlow started quietly first (:func:`quiet_start`)."""
    if name == "tf":
        quiet_start()
        import tensorflow
        return tensorflow
    if name == "keras":
        quiet_start()
        import keras
        return keras
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
