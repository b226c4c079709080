"""What a person sees while commands work: a live bar within each training epoch on a terminal only."""
from __future__ import annotations

import io

import keras
import numpy as np

from imagesentiment.training.callbacks import LiveProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_training_shows_a_live_bar_on_a_terminal_and_nothing_in_a_log():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    terminal, log = Terminal(), io.StringIO()
    shown, quiet = LiveProgress(50, 16, "fold1 phase1 ", terminal), LiveProgress(50, 16, "fold1 phase1 ", log)
    model.fit(np.zeros((50, 4), "float32"), np.zeros(50, "int32"), batch_size=16, epochs=2, verbose=0,
              callbacks=[shown, quiet])
    assert "fold1 phase1 epoch 1:" in terminal.getvalue() and "fold1 phase1 epoch 2:" in terminal.getvalue()
    assert "img/s" in terminal.getvalue() and "/50 [" in terminal.getvalue()
    assert shown.bar.n == 50  # every image of the last epoch counted, the short last batch too
    assert log.getvalue() == ""
