"""Quiet imports and calls of third-party packages whose import-time chatter would land in
notebook outputs (and break exact-output regression checks).

TensorFlow's C++ start-up messages (e.g. "oneDNN custom operations are on", written before
absl logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them) go straight
to file descriptor 2. In a notebook they become stderr outputs that change between runs, so
:func:`import_tf` imports with fd 2 pointed at /dev/null. squidpy's docrep emits
``SyntaxWarning``s at import, and spatialdata logs INFO lines through a rich handler.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


def import_squidpy() -> Any:
    """``import squidpy``, without docrep's import-time ``SyntaxWarning``s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        import squidpy

    return squidpy


@contextmanager
def quiet_spatialdata() -> Iterator[None]:
    """Silence squidpy/spatialdata INFO log lines (e.g. "Creating graph using ...")."""
    # spatialdata logs through its own "spatialdata._logging" logger (a rich handler, no propagation)
    loggers = [logging.getLogger(n) for n in ("spatialdata", "spatialdata._logging")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old):
            lg.setLevel(level)


#: The floating-point type of every network here (the CNN's features, the MLP, the GNNs, the
#: fine-tuned CNN): float64. In float32 the training of a small network amplifies round-off until
#: the early-stopping epoch depends on the last bits of its inputs and of the kernels that ran it:
#: chapter 5's MLP stopped at epoch 14 on its inputs and at epoch 40 on the same inputs changed by one
#: part in 10^7, so two CPUs whose convolution kernels round differently stored two different books.
#: In float64 the same change moves the best valid loss by 3e-6 and no epoch
#: (``benchmarks/machines.py``). Arrays that only hold values (windows, stored features) may stay float32.
FLOATX = "float64"
FLOAT = np.float64


def import_tf() -> tuple[Any, Any]:
    """Return ``(tensorflow, keras)``, imported with TensorFlow's start-up chatter discarded, and
    Keras's float type set to :data:`FLOATX`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
            os.close(saved)
    import keras
    import tensorflow as tf

    # both: Keras fixes its global dtype policy from floatx when the first layer is built
    keras.config.set_floatx(FLOATX)
    keras.config.set_dtype_policy(FLOATX)
    return tf, keras
