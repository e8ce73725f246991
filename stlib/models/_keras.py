"""Shared Keras helpers: lazy import, seeding/determinism, early stopping, tidy histories.

TensorFlow is imported lazily inside the functions, so ``import stlib`` never imports it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from stlib.errors import DataError


def import_keras() -> tuple[Any, Any]:
    """Import and return ``(tensorflow, keras)``, silencing TF's C++ info logs first.

    Sets ``os.environ["TF_CPP_MIN_LOG_LEVEL"]`` to ``"2"`` unless it is already set.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return tf, keras


def set_seed(seed: int) -> None:
    """Seed python, numpy and TensorFlow and make TF ops deterministic.

    Calls ``keras.utils.set_random_seed(seed)`` and
    ``tf.config.experimental.enable_op_determinism()`` (idempotent). After this call,
    building and fitting the same model on the same data gives identical weights, in the
    same process and in a new one. Changes global RNG state (python ``random``,
    ``np.random`` and TF's global generator), as every Keras fit does.
    """
    tf, keras = import_keras()
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def early_stopping(patience: int, min_delta: float) -> Any:
    """``EarlyStopping`` on ``val_loss`` that restores the best weights at the end of training.

    In Keras 3 the best weights are restored at the end of ``fit`` whether or not training
    stopped early, so the returned model is always the one with the lowest ``val_loss``.
    """
    _, keras = import_keras()
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", mode="min", patience=int(patience), min_delta=float(min_delta),
        restore_best_weights=True, verbose=0,
    )


def stopping_summary(history: Any, stopper: Any) -> dict[str, Any]:
    """Best epoch (1-based), best ``val_loss`` and number of epochs run of one fit."""
    val = np.asarray(history.history["val_loss"], dtype=float)
    return {
        "best_epoch": int(stopper.best_epoch) + 1,
        "best_val_loss": float(stopper.best),
        "epochs_run": int(val.size),
        "stopped_early": bool(stopper.stopped_epoch > 0),
    }


def history_frame(history: Any, **labels: Any) -> pd.DataFrame:
    """Tidy learning curve of one fit: ``labels..., epoch (1-based), loss, val_loss, mae, val_mae``."""
    h = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in history.history.items()})
    h.insert(0, "epoch", np.arange(1, len(h) + 1))
    for i, (k, v) in enumerate(labels.items()):
        h.insert(i, k, v)
    return h


def check_matrix(a: Any, where: str, *, n_rows: int | None = None, n_cols: int | None = None) -> np.ndarray:
    """Return ``a`` as a finite 2-D float array, or raise :class:`DataError` naming ``where``."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise DataError(where, f"expected a 2-D array, got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(where, f"expected {n_rows} rows, got {arr.shape[0]}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise DataError(where, f"expected {n_cols} columns, got {arr.shape[1]}")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise DataError(where, f"{bad} non-finite values (NaN/inf)")
    return arr
