"""CNN features of every section of an AnnData, in parallel with Dask (local or distributed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from stlib.im._backbones import BACKBONES, Preprocess
from stlib.im._features import _backbone_identity, _check_size, section_features
from stlib.im._views import StainTarget, views_label
from stlib.im._windows import _section_inputs_geo, section_um_per_px

if TYPE_CHECKING:  # pragma: no cover - typing only
    from anndata import AnnData


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
    window_um: float | None = None,
    tta: bool = False,
    scales: Sequence[float] = (1.0,),
    stain: StainTarget | None = None,
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
    "key_added", "tta", "scales", "stain", "n_padded": {section: int},
    "cached": {section: bool}, "seconds": {section: float}}``; with another
    ``key_added`` (e.g. ``"X_cnn_tta"``) the metadata goes to
    ``uns["cnn_features_<key_added>"]`` instead, so a variant does not
    overwrite the description of the main features.

    Parameters
    ----------
    adata
        Spots of one or many sections.
    backbone, weights, size, cache_dir, batch_size, tta, scales, stain
        As in :func:`section_features` (test-time augmentation, context windows,
        Reinhard stain target; all part of the cache key).
    window_um
        A physical window (um), cut at each section's own resolution
        (:func:`section_um_per_px`) and resampled to ``size``; ``None``: ``size``
        pixels of every image, whatever its resolution.
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
    sections = _section_inputs_geo(target, library_key, spatial_key)
    if window_um is not None:
        sections = [(sec, idx, path, sha, section_um_per_px(target, sec)) for sec, idx, path, sha, _ in sections]
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
        window_um=window_um,
        tta=tta,
        scales=tuple(scales),
        stain=stain,
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
            um_per_px=um,
            dask_key_name=f"cnn-features-{sec}-"
            + tokenize(bname, wlabel, size, batch_size, path, sha, coords[idx], str(cache_dir), window_um, um,
                       views_label(tta, scales, stain)),
        )
        for sec, idx, path, sha, um in sections
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
        "window_um": None if window_um is None else float(window_um),
        "window_px": {},
        "tta": bool(tta),
        "scales": [float(v) for v in scales],
        "stain": None if stain is None else stain.as_dict(),
        "n_features": int(d),
        "key_added": key_added,
        "n_padded": {},
        "cached": {},
        "seconds": {},
    }
    for (sec, idx, *_), (feats, info) in zip(sections, results, strict=True):
        X[idx] = feats
        meta["window_px"][sec] = int(info.get("window_px", size))
        meta["n_padded"][sec] = int(info["n_padded"])
        meta["cached"][sec] = bool(info["from_cache"])
        meta["seconds"][sec] = float(info["seconds"])
    target.obsm[key_added] = X
    target.uns["cnn_features" if key_added == "X_cnn" else f"cnn_features_{key_added}"] = meta
    return target if copy else None


def spot_windows(
    adata: AnnData,
    *,
    window_um: float | None = None,
    size: int = 224,
    library_key: str = "section",
    spatial_key: str = "spatial",
    progress: bool = False,
) -> np.ndarray:
    """The ``(n_obs, size, size, 3)`` uint8 window of every spot, as the network sees it.

    The same windows as :func:`cnn_features` (``window_um`` cut at each section's resolution and
    resampled to ``size``; ``None``: ``size`` pixels), decoding one image at a time. For a
    network trained on the pixels themselves (:func:`stlib.models.finetune.finetune_cnn`); at
    150 kB per spot they are kept in memory.

    Parameters
    ----------
    adata
        Spots of one or many sections, read by :mod:`stlib.io` (``obs[library_key]``,
        ``obsm[spatial_key]`` in full-resolution pixels, ``uns["spatial"][section]["metadata"]``
        with ``image_path``, and ``um_per_px`` when ``window_um`` is given).
    window_um
        A physical window (um), cut at each section's own resolution (:func:`section_um_per_px`)
        and resampled to ``size``; ``None``: ``size`` pixels of every image.
    size
        Side of the returned windows in pixels.
    library_key, spatial_key
        ``obs`` column of sections, ``obsm`` key of the coordinates.
    progress
        Show a tqdm bar over the sections.

    Returns
    -------
    ndarray
        ``(n_obs, size, size, 3)`` uint8, row ``i`` for spot ``i``; the part of a window outside
        the image is white.
    """
    from stlib.im._windows import cut_section_windows

    out = np.zeros((adata.n_obs, size, size, 3), dtype=np.uint8)
    sections = _section_inputs_geo(adata, library_key, spatial_key)
    bar = _tqdm(len(sections), "spot windows") if progress else None
    for sec, idx, path, _sha, _ in sections:
        out[idx] = cut_section_windows(adata, sec, idx, path, window_um=window_um, size=size, spatial_key=spatial_key)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out
