"""ImageNet backbones (Keras, imported lazily) and batched embedding of windows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stlib._compat import FLOAT


Preprocess = Callable[[np.ndarray], Any]

#: Feature size of each built-in backbone.
BACKBONES: dict[str, int] = {"mobilenet_v2": 1280, "resnet50": 2048}

#: The file Keras loads for ``weights="imagenet"`` (from ``$KERAS_HOME/models/``): MobileNetV2 is
#: built with its classifier (see :func:`get_backbone`), ResNet50 without.
IMAGENET_WEIGHTS_FILES: dict[str, str] = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


def weights_file(backbone: str, weights: str | None) -> Path | None:
    """The weights file a backbone loads: the Keras ImageNet cache file, a given path, or
    ``None`` for random initialisation (``weights`` ``None`` or ``"none"``).

    Parameters
    ----------
    backbone
        Backbone name (:data:`BACKBONES`); used only with ``weights="imagenet"`` (an unknown one
        is then a ``ValueError``).
    weights
        ``"imagenet"``, a path to a weights file (``~`` expanded), or ``None`` / ``"none"``.

    Returns
    -------
    Path or None
        For ImageNet weights ``$KERAS_HOME/models/<file>`` (default ``~/.keras/models/``; the file
        names are :data:`IMAGENET_WEIGHTS_FILES`), else the given path, or ``None``. The file need
        not exist.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        if backbone not in IMAGENET_WEIGHTS_FILES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
        return home / "models" / IMAGENET_WEIGHTS_FILES[backbone]
    return Path(weights).expanduser()

def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


RANDOM_INIT_SEED = 0
"""Seed of the random initialisation of a backbone built with ``weights=None``."""


def get_backbone(name: str = "mobilenet_v2", weights: str | None = "imagenet") -> tuple[Any, Preprocess]:
    """Build a CNN that maps 224 x 224 RGB windows to one pooled feature vector.

    Parameters
    ----------
    name
        ``"mobilenet_v2"`` (1280 features) or ``"resnet50"`` (2048 features).
    weights
        ``"imagenet"`` (standard Keras loading: the file is taken from
        ``$KERAS_HOME/models/`` -- default ``~/.keras/models/`` -- and
        downloaded there if absent), a path to a Keras weights file, or
        ``None`` for random initialisation (for tests, benchmarks and the
        random-features control). The random initialisation is seeded with
        :data:`RANDOM_INIT_SEED`, so ``None`` always means the same network
        (and cached features stay valid across processes).

        For MobileNetV2 with weights, the network is built *with* its
        ImageNet classifier (``include_top=True``: the weights file commonly
        cached offline is the one with the classifier,
        ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5``) and
        the returned model stops at its global-average-pooling layer, so the
        features are the same pooled 1280-vector as ``include_top=False,
        pooling="avg"`` with the same weights. With ``weights=None`` it is
        built headless with ``pooling="avg"`` directly. ResNet50 is always
        built with ``include_top=False, pooling="avg"``.

    Returns
    -------
    model
        Keras model: ``(n, 224, 224, 3)`` float inputs (after ``preprocess``)
        -> ``(n, d)`` features.
    preprocess
        The matching ``keras.applications.<net>.preprocess_input``; takes the
        raw 0-255 RGB values as float.

    Raises
    ------
    ValueError
        Unknown backbone name.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    _quiet_tf()
    from stlib._compat import import_tf

    _, keras = import_tf()
    if weights is None:
        keras.utils.set_random_seed(RANDOM_INIT_SEED)

    shape = (224, 224, 3)
    if name == "resnet50":
        model = keras.applications.ResNet50(include_top=False, pooling="avg", weights=weights, input_shape=shape)
        return model, keras.applications.resnet50.preprocess_input
    # mobilenet_v2
    if weights is None:
        model = keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=None, input_shape=shape)
    else:
        full = keras.applications.MobileNetV2(include_top=True, weights=weights, input_shape=shape)
        pool = next(
            layer for layer in full.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
        )
        model = keras.Model(full.input, pool.output, name="mobilenet_v2_pooled")
    return model, keras.applications.mobilenet_v2.preprocess_input


_backbone_cache: dict[tuple[str, str | None], tuple[Any, Preprocess]] = {}
_backbone_lock = threading.Lock()


def _cached_backbone(name: str, weights: str | None) -> tuple[Any, Preprocess]:
    """:func:`get_backbone`, built once per process (shared by Dask threads)."""
    key = (name, weights)
    with _backbone_lock:
        if key not in _backbone_cache:
            _backbone_cache[key] = get_backbone(name, weights)
        return _backbone_cache[key]


#: One forward pass at a time per process: TensorFlow already spreads a batch
#: over all cores, and concurrent passes from several threads only contend
#: (measured: 2x slower and 3x the memory with two Dask threads). Threads still
#: overlap JPEG decoding of one section with inference of another.
_inference_lock = threading.Lock()


def _forward(model: Any, batch: np.ndarray) -> np.ndarray:
    with _inference_lock:
        if hasattr(model, "predict_on_batch"):
            y = model.predict_on_batch(batch)  # compiled graph; no progress bar
        else:
            y = model(batch, training=False)
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y, dtype=FLOAT)
    return y.reshape(y.shape[0], -1)


def embed_windows(
    windows: np.ndarray, model: Any, preprocess: Preprocess, batch_size: int = 32
) -> np.ndarray:
    """Run a backbone over windows in batches.

    Parameters
    ----------
    windows
        ``(n, s, s, 3)`` uint8 (or float, 0-255) windows.
    model
        Keras model from :func:`get_backbone` (run with ``predict_on_batch``,
        i.e. Keras' compiled predict step, without progress bars), or any
        callable ``model(batch, training=False) -> (batch, d)``.
    preprocess
        Called on each batch, as :data:`stlib._compat.FLOATX` (a fresh copy: in-place
        preprocessing is safe), before the model.
    batch_size
        Windows per forward pass. Results depend on the batching only through
        float rounding; the same call always gives the same result.

    Returns
    -------
    ``(n, d)`` float32 features, computed in :data:`~stlib._compat.FLOATX` (float64) and rounded
    once at the end, so that kernels which sum in another order (another CPU's) give the same values.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    w = np.asarray(windows)
    if w.ndim != 4 or w.shape[-1] != 3:
        raise ValueError(f"windows must have shape (n, s, s, 3), got {w.shape}")
    outs = [
        _forward(model, preprocess(w[start : start + batch_size].astype(FLOAT)))
        for start in range(0, w.shape[0], batch_size)
    ]
    if not outs:
        d = int(getattr(model, "output_shape", (None, 0))[-1] or 0)
        return np.zeros((0, d), dtype=np.float32)
    return np.concatenate(outs, axis=0).astype(np.float32)
