"""Lines that TensorFlow's and LiteRT's C++ code writes straight to the process's stderr (file descriptor 2),
where neither Python's logging nor ``TF_CPP_MIN_LOG_LEVEL`` reaches them: caught, and passed on without the
lines that only say the libraries are working."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Callable, Iterator

# What the TFLite converter and the LiteRT interpreter print on every export and every first call: the
# quantizer's settings and the notice that XNNPACK runs the model on the CPU.
LITERT_NOISE = re.compile(r"fully_quantize: \d|INFO: Created TensorFlow Lite XNNPACK delegate")


def without(noise: re.Pattern) -> Callable[[str], str]:
    """A filter that keeps the lines of a text in which ``noise`` is not found."""
    return lambda text: "".join(line for line in text.splitlines(keepends=True) if not noise.search(line))


# descriptor 2 is the process's: one block swaps it at a time (threads loading models at once restored each
# other's catch file, and stderr was lost for good); re-entrant, for a block inside another
SWAP = threading.RLock()


@contextlib.contextmanager
def filtered(keep: Callable[[str], str]) -> Iterator[None]:
    """Catch what is written to file descriptor 2 inside the block and write ``keep(text)`` of it to
    stderr at the end (also when the block raises); where there is no descriptor 2, nothing is caught."""
    with SWAP:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            saved = None
        if saved is None:
            yield
            return
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                sys.stderr.write(keep(caught.read().decode(errors="replace")))
