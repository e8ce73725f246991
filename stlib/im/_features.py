"""CNN features of one section: decode the image once, cut the windows, embed, cache on disk."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stlib._utils import sha256_file
from stlib.im._backbones import BACKBONES, Preprocess, _cached_backbone, embed_windows
from stlib.im._views import StainTarget, lab_stats, reinhard, scale_px, tta_features, views_label
from stlib.im._windows import _round_centers, extract_windows, resample_windows, window_px
from stlib.io.images import read_image

#: Version of the cache file layout; bump to invalidate old caches.
_CACHE_VERSION = 1
#: Spots cut (and resized) at a time: bounds the memory of large context windows.
_CHUNK = 128

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
    window: int | None = None,
    views: str = "",
) -> str:
    """Hex key of one cached feature matrix.

    Hashes the image sha256, the backbone name and weights label, the input
    size, the window cut from the image (pixels, when it differs from the
    input size and is resampled) and the rounded spot centres (their order
    matters: row ``i`` of the cached matrix belongs to centre ``i``).

    Parameters
    ----------
    image_sha256
        Hex sha256 of the image file (case-insensitive).
    backbone
        Backbone name (a built-in one, or ``custom:<model name>``).
    weights
        Weights label: ``"imagenet"``, ``"none"``, ``"file:<sha256 prefix>"`` of a weights file, or
        ``"sha:<hash>"`` of a custom model's weights and preprocessing.
    size
        The network's input side in pixels.
    centers_xy
        ``(n, 2)`` spot centres ``(x, y)`` in full-resolution pixels, rounded to the nearest pixel
        (``.5`` up) before hashing.
    window
        Side in pixels of the window cut from the image; part of the key only when it differs
        from ``size``.
    views
        :func:`views_label` of the options (test-time augmentation, scales, stain); ``""`` for the
        plain features.

    Returns
    -------
    str
        64 hex digits (sha256); the cache layout version is hashed too.
    """
    c = _round_centers(centers_xy, "centres")
    h = hashlib.sha256()
    parts = [f"v{_CACHE_VERSION}", image_sha256.lower(), backbone, weights, str(int(size)), str(c.shape)]
    if window is not None and int(window) != int(size):
        parts.append(f"window{int(window)}")
    if views:
        parts.append(f"views:{views}")
    for part in parts:
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


def _cache_read(npy_file: Path, key: str, n_spots: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    """A cached feature matrix and its record, or None when absent, unreadable or not ``key``'s."""
    json_file = npy_file.with_suffix(".json")
    if not (npy_file.is_file() and json_file.is_file()):
        return None
    try:
        info = json.loads(json_file.read_text())
        feats = np.load(npy_file, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if info.get("key") != key or feats.shape != (n_spots, info.get("n_features")):
        return None
    return feats.astype(np.float32, copy=False), info


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
    window_um: float | None = None,
    um_per_px: float | None = None,
    tta: bool = False,
    scales: Sequence[float] = (1.0,),
    stain: StainTarget | None = None,
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
        The network's input side in pixels; the built-in backbones require 224
        (ValueError otherwise), a custom pair may take any size. Without
        ``window_um`` the window cut from the image is ``size`` pixels.
    window_um, um_per_px
        A physical window: ``window_um`` micrometres, i.e.
        :func:`window_px` ``(window_um, um_per_px)`` pixels of this image, cut
        and resampled to ``size`` (e.g. 155 um is 211 px at 0.733 um/px and
        113 px at 1.37 um/px, both shown to the network as 224 px).
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
    tta
        Average the features of the window's 8 dihedral transforms
        (:func:`stlib.im.dihedral`; eight forward passes).
    scales
        Window widths as multiples of the spot window, each cut around the spot
        centre and resized to ``size``; their features are concatenated in this
        order (``(1, 2, 4)``: ``3 * d`` features). Default ``(1,)``.
    stain
        A Reinhard target (:func:`stlib.im.fit_stain_target`, fitted on the
        train sections): the section's windows are mapped to it, with the
        section's own Lab statistics over the tissue pixels of its spot
        windows (scale 1), before the network.

    Returns
    -------
    features
        ``(n, d)`` float32, row ``i`` for centre ``i``.
    info
        ``n_spots``, ``n_features``, ``n_padded`` (windows padded with white at
        the image border), ``backbone``, ``weights``, ``size``, ``window_px``,
        ``window_um`` and ``um_per_px`` (``None`` without a physical window), ``sha256``,
        ``image_shape`` (``[h, w]``), ``tta``, ``scales``, ``n_padded_scales``
        (padded windows per scale), ``stain`` (the target's label or ``None``)
        and ``stain_source`` (the section's Lab mean and sd), ``seconds`` (time the features took to
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
    win = size if window_um is None else window_px(window_um, um_per_px, where=str(path))
    label = views_label(tta, scales, stain)
    scales = tuple(float(v) for v in scales)
    bname, wlabel = _backbone_identity(backbone, weights)
    sha = (image_sha256 or sha256_file(path)).lower()
    centers = np.asarray(centers_xy, dtype=np.float64)
    _round_centers(centers, str(path))  # validate shape / finiteness early
    npy_file: Path | None = None
    plain: np.ndarray | None = None  # the plain features of the same windows, when cached
    if cache_dir is not None:
        cdir = Path(cache_dir)
        cdir.mkdir(parents=True, exist_ok=True)
        key = feature_cache_key(sha, bname, wlabel, size, centers, window=win, views=label)
        npy_file = cdir / f"cnn_{_safe(bname)}_{key[:32]}.npy"
        hit = _cache_read(npy_file, key, centers.shape[0])
        if hit is not None:
            feats, info = hit
            info.update(from_cache=True, cache_file=str(npy_file))
            return feats, info
        if label and stain is None and 1.0 in scales:
            # the identity view (test-time augmentation) and the 1x window (context) are the
            # plain features: same windows, same batches, so the same numbers
            pkey = feature_cache_key(sha, bname, wlabel, size, centers, window=win)
            phit = _cache_read(cdir / f"cnn_{_safe(bname)}_{pkey[:32]}.npy", pkey, centers.shape[0])
            plain = None if phit is None else phit[0]

    t0 = time.perf_counter()
    image = read_image(path)
    image_shape = [int(image.shape[0]), int(image.shape[1])]
    views, pads = [], []
    for sc in scales:  # cut and resize every view in chunks: a 4x window is ~16x the pixels
        px = scale_px(win, sc)
        parts, n_pad = [], 0
        for start in range(0, centers.shape[0], _CHUNK):
            w, n = extract_windows(image, centers[start : start + _CHUNK], px, where=str(path))
            parts.append(resample_windows(w, size))
            n_pad += n
        views.append(np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8))
        pads.append(n_pad)
    n_padded = pads[scales.index(1.0)] if 1.0 in scales else pads[0]
    del image  # ~280 MB: do not keep it while the network runs
    source = None
    if stain is not None and centers.shape[0]:
        mu, sd, _ = lab_stats(views[scales.index(1.0)] if 1.0 in scales else views[0])
        source = (mu, sd)
        views = [reinhard(v, stain, source) for v in views]
    if isinstance(backbone, str):
        model, preprocess = _cached_backbone(backbone, weights)
    else:
        model, preprocess = backbone
    blocks = []
    for sc, v in zip(scales, views, strict=True):
        known = plain if sc == 1.0 else None
        if tta:
            blocks.append(tta_features(v, model, preprocess, batch_size=batch_size, identity=known))
        else:
            blocks.append(known if known is not None else embed_windows(v, model, preprocess, batch_size=batch_size))
    feats = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    del views
    info: dict[str, Any] = {
        "n_spots": int(centers.shape[0]),
        "n_features": int(feats.shape[1]),
        "n_padded": int(n_padded),
        "backbone": bname,
        "weights": wlabel,
        "size": int(size),
        "window_px": int(win),
        "window_um": None if window_um is None else float(window_um),
        "um_per_px": None if um_per_px is None else float(um_per_px),
        "sha256": sha,
        "image_shape": image_shape,
        "tta": bool(tta),
        "scales": list(scales),
        "n_padded_scales": {f"{sc:g}": int(n) for sc, n in zip(scales, pads, strict=True)},
        "stain": None if stain is None else stain.label(),
        "stain_source": None if source is None else {"mean": [float(v) for v in source[0]],
                                                     "std": [float(v) for v in source[1]]},
        "seconds": round(time.perf_counter() - t0, 3),
        "plain_reused": plain is not None,
    }
    if npy_file is not None:
        info["key"] = key
        _atomic_write(npy_file, lambda fh: np.save(fh, feats, allow_pickle=False), binary=True)
        _atomic_write(npy_file.with_suffix(".json"), lambda fh: json.dump(info, fh, indent=1), binary=False)
    info.update(from_cache=False, cache_file=None if npy_file is None else str(npy_file))
    return feats, info
