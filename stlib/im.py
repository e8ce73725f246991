"""H&E image reading, spot windows and CNN features.

The image side of the pipeline, in squidpy's ``im`` role:

1. :func:`read_image` decodes one full-resolution H&E JPEG (~9,300 x 9,900 px,
   ~280 MB as RGB uint8) into a numpy array, with clear errors for missing,
   corrupt or truncated files.
2. :func:`extract_windows` cuts a fixed-size window (224 x 224 px by default)
   centred on every spot, padding windows that cross the image border with
   white and counting them.
3. :func:`get_backbone` builds an ImageNet CNN (MobileNetV2 or ResNet50) that
   maps a window to one pooled feature vector, and :func:`embed_windows`
   runs it in batches.
4. :func:`section_features` does 1-3 for one section (decoding the image once)
   and caches the result on disk; :func:`cnn_features` runs it over all
   sections of an AnnData in parallel with Dask and writes
   ``obsm["X_cnn"]``.

TensorFlow is imported lazily, so ``import stlib.im`` is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stlib._utils import sha256_file
from stlib.errors import DataError
from stlib.io.images import read_image

if TYPE_CHECKING:  # pragma: no cover - typing only
    from anndata import AnnData

__all__ = [
    "BACKBONES",
    "cnn_features",
    "embed_windows",
    "extract_windows",
    "feature_cache_key",
    "get_backbone",
    "section_features",
]

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
    ``None`` for random initialisation (``weights`` ``None`` or ``"none"``)."""
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        if backbone not in IMAGENET_WEIGHTS_FILES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
        return home / "models" / IMAGENET_WEIGHTS_FILES[backbone]
    return Path(weights).expanduser()

#: Version of the cache file layout; bump to invalidate old caches.
_CACHE_VERSION = 1

Preprocess = Callable[[np.ndarray], Any]

# --------------------------------------------------------------------------- #
# Windows
# --------------------------------------------------------------------------- #


def _round_centers(centers_xy: np.ndarray | Sequence[Sequence[float]], where: str) -> np.ndarray:
    """Round ``(n, 2)`` x/y centres to the nearest pixel (halves round up)."""
    c = np.asarray(centers_xy, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise DataError(where, f"spot centres must have shape (n, 2), got {c.shape}")
    bad = ~np.isfinite(c).all(axis=1)
    if bad.any():
        raise DataError(
            where, f"{int(bad.sum())} spot centre(s) are NaN or infinite (first at row {int(np.flatnonzero(bad)[0])})"
        )
    return np.floor(c + 0.5).astype(np.int64)


def extract_windows(
    image: np.ndarray,
    centers_xy: np.ndarray | Sequence[Sequence[float]],
    size: int = 224,
    *,
    where: str = "image",
) -> tuple[np.ndarray, int]:
    """Cut a square window centred on each spot.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 image (rows first), e.g. from :func:`read_image`.
    centers_xy
        ``(n, 2)`` spot centres in full-resolution pixels as ``(x, y)`` =
        (column, row), like ``obsm["spatial"]``. Rounded to the nearest pixel
        (``.5`` rounds up).
    size
        Window side in pixels. For a rounded centre ``(cx, cy)`` the window
        covers columns ``[cx - size // 2, cx - size // 2 + size)`` (for even
        ``size`` that is ``[cx - size // 2, cx + size // 2)``), rows likewise.
    where
        Name used in error messages (e.g. the image path or section).

    Returns
    -------
    windows
        ``(n, size, size, 3)`` uint8 array; ``windows[i]`` belongs to spot ``i``.
    n_padded
        Number of windows that crossed the image border; their outside part is
        filled with white (255), the colour of the glass around the tissue.

    Raises
    ------
    DataError
        ``image`` is not ``(H, W, 3)``, ``size`` < 1, a centre is not finite, or
        a rounded centre lies outside the image (reported with the count and
        the first offending rows).
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(where, f"image must have shape (H, W, 3), got {img.shape}")
    if int(size) != size or size < 1:
        raise DataError(where, f"window size must be a positive integer, got {size!r}")
    size = int(size)
    h, w = img.shape[:2]
    c = _round_centers(centers_xy, where)
    outside = (c[:, 0] < 0) | (c[:, 0] >= w) | (c[:, 1] < 0) | (c[:, 1] >= h)
    if outside.any():
        rows = np.flatnonzero(outside)
        first = ", ".join(f"row {i}: (x={c[i, 0]}, y={c[i, 1]})" for i in rows[:3])
        raise DataError(
            where,
            f"{rows.size} spot centre(s) lie outside the {w} x {h} (w x h) image: {first}",
        )
    n = c.shape[0]
    out = np.full((n, size, size, 3), 255, dtype=np.uint8)
    half = size // 2
    n_padded = 0
    for i in range(n):
        x0, y0 = c[i, 0] - half, c[i, 1] - half
        x1, y1 = x0 + size, y0 + size
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            n_padded += 1
        out[i, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = img[cy0:cy1, cx0:cx1]
    return out, n_padded


# --------------------------------------------------------------------------- #
# Backbones and embedding
# --------------------------------------------------------------------------- #


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
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y, dtype=np.float32)
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
        Called on each float32 batch (a fresh copy: in-place preprocessing is
        safe) before the model.
    batch_size
        Windows per forward pass. Results depend on the batching only through
        float rounding (~1e-6); the same call always gives the same result.

    Returns
    -------
    ``(n, d)`` float32 features.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    w = np.asarray(windows)
    if w.ndim != 4 or w.shape[-1] != 3:
        raise ValueError(f"windows must have shape (n, s, s, 3), got {w.shape}")
    outs = [
        _forward(model, preprocess(w[start : start + batch_size].astype(np.float32)))
        for start in range(0, w.shape[0], batch_size)
    ]
    if not outs:
        d = int(getattr(model, "output_shape", (None, 0))[-1] or 0)
        return np.zeros((0, d), dtype=np.float32)
    return np.concatenate(outs, axis=0)


# --------------------------------------------------------------------------- #
# One section, cached
# --------------------------------------------------------------------------- #


def _weights_digest(model: Any) -> str:
    """sha256 over a Keras model's weight values (identifies a custom model)."""
    h = hashlib.sha256()
    for v in model.get_weights():
        a = np.ascontiguousarray(v)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _backbone_identity(backbone: str | tuple[Any, Preprocess], weights: str | None) -> tuple[str, str]:
    """(name, weights label) that identify a backbone in cache keys and ``uns``."""
    if isinstance(backbone, str):
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        if weights is None:
            return backbone, "none"
        if Path(weights).is_file():  # a weights file: identified by its content
            return backbone, f"file:{sha256_file(weights)[:16]}"
        return backbone, str(weights)
    model, preprocess = backbone
    prep = f"{getattr(preprocess, '__module__', '?')}.{getattr(preprocess, '__qualname__', repr(preprocess))}"
    label = hashlib.sha256(f"{_weights_digest(model)}|{prep}".encode()).hexdigest()[:16]
    return f"custom:{getattr(model, 'name', 'model')}", f"sha:{label}"


def feature_cache_key(
    image_sha256: str,
    backbone: str,
    weights: str,
    size: int,
    centers_xy: np.ndarray | Sequence[Sequence[float]],
) -> str:
    """Hex key of one cached feature matrix.

    Hashes the image sha256, the backbone name and weights label, the window
    size and the rounded spot centres (their order matters: row ``i`` of the
    cached matrix belongs to centre ``i``).
    """
    c = _round_centers(centers_xy, "centres")
    h = hashlib.sha256()
    for part in (f"v{_CACHE_VERSION}", image_sha256.lower(), backbone, weights, str(int(size)), str(c.shape)):
        h.update(part.encode() + b"\0")
    h.update(c.astype("<i8").tobytes())
    return h.hexdigest()


def _check_size(backbone: str | tuple[Any, Preprocess], size: int) -> None:
    if isinstance(backbone, str) and size != 224:
        raise ValueError(f"the built-in backbone {backbone!r} takes 224 px windows, got size={size}")


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in s)[:40]


def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb" if binary else "w") as fh:
        write(fh)
    os.replace(tmp, path)


def section_features(
    image_path: str | os.PathLike[str],
    centers_xy: np.ndarray | Sequence[Sequence[float]],
    *,
    backbone: str | tuple[Any, Preprocess] = "mobilenet_v2",
    weights: str | None = "imagenet",
    size: int = 224,
    cache_dir: str | os.PathLike[str] | None = None,
    image_sha256: str | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, dict[str, Any]]:
    """CNN features of every spot of one section (image decoded once, cached).

    Parameters
    ----------
    image_path
        The section's full-resolution H&E image.
    centers_xy
        ``(n, 2)`` spot centres, ``(x=column, y=row)`` full-resolution pixels.
    backbone
        A built-in backbone name (see :func:`get_backbone`; built once per
        process and shared between threads) or a ready ``(model,
        preprocess)`` pair, e.g. a tiny model in tests. A custom pair is
        identified in the cache by its model name and a hash of its weights.
    weights
        Weights for a named backbone (ignored for a custom pair).
    size
        Window side in pixels; the built-in backbones require 224 (ValueError
        otherwise), a custom pair may take any size.
    cache_dir
        If given, the features are stored there as ``cnn_<backbone>_<key>.npy``
        plus a ``.json`` with ``info``, keyed by :func:`feature_cache_key`
        (image sha256, backbone, weights, size, rounded centres). A later call
        with the same key loads them instead of decoding the image or
        running the network.
    image_sha256
        Hex sha256 of the image file, e.g. from the data manifest
        (``uns["spatial"][section]["metadata"]["image_sha256"]``); computed
        from the file when ``None``. It is trusted as given.
    batch_size
        Windows per forward pass.

    Returns
    -------
    features
        ``(n, d)`` float32, row ``i`` for centre ``i``.
    info
        ``n_spots``, ``n_features``, ``n_padded`` (windows padded with white at
        the image border), ``backbone``, ``weights``, ``size``, ``sha256``,
        ``image_shape`` (``[h, w]``), ``seconds`` (time the features took to
        compute, for a cached result the original time), ``from_cache``
        (bool) and ``cache_file`` (str or ``None``).

    Raises
    ------
    DataError
        Unreadable image, or a centre outside it (see :func:`read_image`,
        :func:`extract_windows`).
    """
    _check_size(backbone, size)
    path = Path(image_path)
    bname, wlabel = _backbone_identity(backbone, weights)
    sha = (image_sha256 or sha256_file(path)).lower()
    centers = np.asarray(centers_xy, dtype=np.float64)
    _round_centers(centers, str(path))  # validate shape / finiteness early
    npy_file: Path | None = None
    if cache_dir is not None:
        cdir = Path(cache_dir)
        cdir.mkdir(parents=True, exist_ok=True)
        key = feature_cache_key(sha, bname, wlabel, size, centers)
        npy_file = cdir / f"cnn_{_safe(bname)}_{key[:32]}.npy"
        json_file = npy_file.with_suffix(".json")
        if npy_file.is_file() and json_file.is_file():
            try:
                info = json.loads(json_file.read_text())
                feats = np.load(npy_file, allow_pickle=False)
                ok = info.get("key") == key and feats.shape == (centers.shape[0], info.get("n_features"))
            except (OSError, ValueError):
                ok = False
            if ok:
                info.update(from_cache=True, cache_file=str(npy_file))
                return feats.astype(np.float32, copy=False), info

    t0 = time.perf_counter()
    image = read_image(path)
    image_shape = [int(image.shape[0]), int(image.shape[1])]
    windows, n_padded = extract_windows(image, centers, size, where=str(path))
    del image  # ~280 MB: do not keep it while the network runs
    if isinstance(backbone, str):
        model, preprocess = _cached_backbone(backbone, weights)
    else:
        model, preprocess = backbone
    feats = embed_windows(windows, model, preprocess, batch_size=batch_size)
    del windows
    info: dict[str, Any] = {
        "n_spots": int(centers.shape[0]),
        "n_features": int(feats.shape[1]),
        "n_padded": int(n_padded),
        "backbone": bname,
        "weights": wlabel,
        "size": int(size),
        "sha256": sha,
        "image_shape": image_shape,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if npy_file is not None:
        info["key"] = key
        _atomic_write(npy_file, lambda fh: np.save(fh, feats, allow_pickle=False), binary=True)
        _atomic_write(npy_file.with_suffix(".json"), lambda fh: json.dump(info, fh, indent=1), binary=False)
    info.update(from_cache=False, cache_file=None if npy_file is None else str(npy_file))
    return feats, info


# --------------------------------------------------------------------------- #
# All sections, with Dask
# --------------------------------------------------------------------------- #


def _section_inputs(adata: AnnData, library_key: str, spatial_key: str) -> list[tuple[str, np.ndarray, str, str | None]]:
    """(section, obs positions, image path, sha256) per section present in ``adata``."""
    if library_key not in adata.obs:
        raise DataError("adata.obs", f"no column {library_key!r} naming each spot's section")
    if spatial_key not in adata.obsm:
        raise DataError("adata.obsm", f"no {spatial_key!r} spot coordinates")
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise DataError(f"adata.obsm[{spatial_key!r}]", f"expected shape (n, 2), got {coords.shape}")
    spatial = adata.uns.get("spatial", {})
    col = adata.obs[library_key]
    labels = col.astype(str).to_numpy()
    present = set(labels)
    order = [str(c) for c in col.cat.categories] if hasattr(col, "cat") else []
    order = [s for s in order if s in present] + sorted(present - set(order))
    out = []
    for sec in order:
        meta = spatial.get(sec, {}).get("metadata", {}) if isinstance(spatial, dict) else {}
        if "image_path" not in meta:
            raise DataError(sec, f"uns['spatial'][{sec!r}]['metadata'] has no 'image_path'")
        sha = meta.get("image_sha256") or None
        out.append((sec, np.flatnonzero(labels == sec), str(meta["image_path"]), sha))
    return out


def _run_local(tasks: list[Any], scheduler: str, progress: bool, desc: str) -> list[Any]:
    import dask
    from dask.callbacks import Callback

    workers = min(2, max(1, len(tasks)))
    bar = _tqdm(len(tasks), desc) if progress else None
    keys = {t.key for t in tasks}

    class _Done(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:  # noqa: A002
            if bar is not None and key in keys:
                bar.update(1)

    kwargs: dict[str, Any] = {"scheduler": scheduler}
    if scheduler in ("threads", "processes"):
        kwargs["num_workers"] = workers
    try:
        with _Done():
            return list(dask.compute(*tasks, **kwargs))
    finally:
        if bar is not None:
            bar.close()


def _run_distributed(tasks: list[Any], client: Any, progress: bool, desc: str) -> list[Any]:
    from distributed import as_completed

    futures = client.compute(tasks)
    bar = _tqdm(len(tasks), desc) if progress else None
    try:
        for _ in as_completed(futures):
            if bar is not None:
                bar.update(1)
        return client.gather(futures)
    finally:
        if bar is not None:
            bar.close()


def _tqdm(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="section")


def cnn_features(
    adata: AnnData,
    *,
    backbone: str | tuple[Any, Preprocess] = "mobilenet_v2",
    weights: str | None = "imagenet",
    size: int = 224,
    cache_dir: str | os.PathLike[str] | None = None,
    scheduler: Any = None,
    key_added: str = "X_cnn",
    progress: bool = True,
    library_key: str = "section",
    spatial_key: str = "spatial",
    batch_size: int = 32,
    copy: bool = False,
) -> AnnData | None:
    """CNN features of every spot, one Dask task per section.

    Reads ``obs[library_key]`` (the section of each spot),
    ``obsm[spatial_key]`` (spot centres, ``(x=column, y=row)``
    full-resolution pixels) and, per section,
    ``uns["spatial"][section]["metadata"]["image_path"]`` and
    ``["image_sha256"]`` (may be ``None``: then computed).

    Writes ``obsm[key_added]`` (``(n_obs, d)`` float32) and
    ``uns["cnn_features"] = {"backbone", "weights", "size", "n_features",
    "key_added", "n_padded": {section: int}, "cached": {section: bool},
    "seconds": {section: float}}``.

    Parameters
    ----------
    adata
        Spots of one or many sections.
    backbone, weights, size, cache_dir, batch_size
        As in :func:`section_features`.
    scheduler
        ``None`` or ``"threads"``: Dask's local thread pool (2 workers); the
        model is built once and shared by the threads, which run one forward
        pass at a time (TensorFlow already uses every core for one batch) while
        the JPEG decoding of one section overlaps inference of another. ``"processes"``: local processes, each building its own
        model (a custom ``(model, preprocess)`` pair must then be picklable).
        ``"synchronous"``: one at a time, for debugging. A
        ``distributed.Client`` or a scheduler address such as
        ``"tcp://127.0.0.1:8786"``: run on that dask.distributed cluster (the
        workers must see the image files and ``cache_dir``). The features do
        not depend on the scheduler: each section is embedded with the same
        windows, batches and weights.
    key_added
        ``obsm`` key for the features.
    progress
        Show a tqdm bar over completed sections.
    library_key, spatial_key
        ``obs`` column of sections, ``obsm`` key of coordinates.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    The modified copy if ``copy`` else ``None``.
    """
    from dask import delayed
    from dask.base import tokenize

    _check_size(backbone, size)
    target = adata.copy() if copy else adata
    sections = _section_inputs(target, library_key, spatial_key)
    coords = np.asarray(target.obsm[spatial_key], dtype=np.float64)
    bname, wlabel = _backbone_identity(backbone, weights)

    # The backbone (maybe a Keras model) goes into a partial, not into the task
    # arguments, so Dask neither traverses nor tokenizes it.
    run_section = partial(
        section_features,
        backbone=backbone,
        weights=weights,
        size=size,
        cache_dir=None if cache_dir is None else str(cache_dir),
        batch_size=batch_size,
    )
    task_fn = delayed(run_section, pure=False, name="cnn-features")
    # Keys are a token of everything the result depends on: a distributed
    # cluster reuses a result held under the same key, so equal keys must mean
    # equal results (and different settings must never share a key).
    tasks = [
        task_fn(
            path,
            coords[idx],
            image_sha256=sha,
            dask_key_name=f"cnn-features-{sec}-"
            + tokenize(bname, wlabel, size, batch_size, path, sha, coords[idx], str(cache_dir)),
        )
        for sec, idx, path, sha in sections
    ]
    desc = f"CNN features ({bname})"
    client_to_close = None
    if scheduler is None or scheduler in ("threads", "processes", "synchronous", "sync", "single-threaded"):
        results = _run_local(tasks, scheduler or "threads", progress, desc)
    else:
        if isinstance(scheduler, str):
            from distributed import Client

            client_to_close = client = Client(scheduler)
        else:
            client = scheduler
        try:
            results = _run_distributed(tasks, client, progress, desc)
        finally:
            if client_to_close is not None:
                client_to_close.close()

    dims = {int(f.shape[1]) for f, _ in results}
    if len(dims) > 1:  # pragma: no cover - same backbone for all sections
        raise RuntimeError(f"sections gave different feature sizes: {sorted(dims)}")
    d = dims.pop() if dims else BACKBONES.get(bname, 0)
    X = np.zeros((target.n_obs, d), dtype=np.float32)
    meta: dict[str, Any] = {
        "backbone": bname,
        "weights": wlabel,
        "size": int(size),
        "n_features": int(d),
        "key_added": key_added,
        "n_padded": {},
        "cached": {},
        "seconds": {},
    }
    for (sec, idx, _, _), (feats, info) in zip(sections, results, strict=True):
        X[idx] = feats
        meta["n_padded"][sec] = int(info["n_padded"])
        meta["cached"][sec] = bool(info["from_cache"])
        meta["seconds"][sec] = float(info["seconds"])
    target.obsm[key_added] = X
    target.uns["cnn_features"] = meta
    return target if copy else None
