"""Other views of a spot for frozen features: test-time augmentation, context windows, stain.

Three options of the embedding step (:func:`stlib.im.section_features`,
:func:`stlib.im.cnn_features`), each part of the feature-cache key:

- ``tta=True``: the window's 8 dihedral transforms (4 rotations by 90 degrees, each with and
  without a mirror flip) are embedded and their features averaged: an H&E window has no
  orientation, so the average is a feature that does not depend on how the slide was placed.
- ``scales=(1, 2, 4)``: besides the spot window, windows 2x and 4x as wide around the same
  centre, each resized to the network's input; their features are concatenated (the context
  of the spot's neighbourhood, at a coarser resolution).
- ``stain=``:class:`StainTarget`: Reinhard colour normalisation between sections. A section's
  windows are converted to CIE-Lab, each channel is standardised with the section's own mean and
  standard deviation over its tissue pixels and mapped to the target's, which is fitted on the
  train sections only (:func:`fit_stain_target`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from anndata import AnnData

from stlib import get
from stlib.errors import DataError

__all__ = ["StainTarget", "dihedral", "fit_stain_target", "lab_stats", "reinhard", "tta_features", "views_label"]

#: Lab lightness below which a pixel counts as tissue (glass and background are near 100).
TISSUE_MAX_L = 88.0
#: Every ``_STRIDE``-th pixel (per axis) enters the colour statistics: plenty for a mean and sd.
_STRIDE = 4


def dihedral(windows: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0-7) of the dihedral group of the square on ``(n, s, s, c)`` windows:
    ``k % 4`` quarter turns, mirrored first when ``k >= 4``; ``k = 0`` is the identity.

    Parameters
    ----------
    windows
        ``(n, s, s, c)`` square windows.
    k
        The transform, 0-7 (else a ``ValueError``); the mirror flips the columns (left-right).

    Returns
    -------
    ndarray
        The transformed windows: same shape and dtype, C-contiguous.
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"k must be in 0..7, got {k}")
    w = windows[:, :, ::-1] if k >= 4 else windows
    return np.ascontiguousarray(np.rot90(w, k % 4, axes=(1, 2)))


def tta_features(windows: np.ndarray, model: Any, preprocess: Any, batch_size: int = 32,
                 identity: np.ndarray | None = None) -> np.ndarray:
    """Mean features of the 8 dihedral transforms of each window (:func:`embed_windows` on each,
    summed in float64 in the order ``k = 0..7``): the same for a window and any of its transforms
    up to float rounding. ``identity``: the features of the windows as they are (``k = 0``), when
    already computed (the plain features of the same windows, from the cache).

    Parameters
    ----------
    windows
        ``(n, s, s, 3)`` uint8 windows.
    model, preprocess
        The backbone and its preprocessing (:func:`get_backbone`).
    batch_size
        Windows per forward pass.
    identity
        ``(n, d)`` features of the untransformed windows, or ``None`` to compute them.

    Returns
    -------
    ndarray
        ``(n, d)`` float32, the mean features of the 8 transforms.
    """
    from stlib.im._backbones import embed_windows

    if identity is not None and identity.shape[0] != windows.shape[0]:
        raise ValueError(f"identity features for {identity.shape[0]} windows, got {windows.shape[0]} windows")
    f = (embed_windows(windows, model, preprocess, batch_size=batch_size) if identity is None
         else np.asarray(identity, dtype=np.float32)).astype(np.float64)
    for k in range(1, 8):
        f += embed_windows(dihedral(windows, k), model, preprocess, batch_size=batch_size)
    return (f / 8).astype(np.float32)


@dataclass(frozen=True)
class StainTarget:
    """The colour every section is mapped to (Reinhard): Lab means and standard deviations.

    ``sections`` are the sections it was fitted on (the train sections), ``n_pixels`` the tissue
    pixels that entered it.

    Parameters
    ----------
    mean
        Lab mean ``(L, a, b)`` of the tissue pixels.
    std
        Lab standard deviation ``(L, a, b)`` of the tissue pixels.
    sections
        The sections it was fitted on.
    n_pixels
        The number of tissue pixels it was fitted on.
    method
        The normalisation, ``"reinhard"``; part of :meth:`label`.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sections: tuple[str, ...] = ()
    n_pixels: int = 0
    method: str = "reinhard"

    def label(self) -> str:
        """Short stable id for cache keys (the rounded statistics and the method).

        Returns
        -------
        str
            ``"<method>:<12 hex digits>"``, a sha256 prefix of the means and standard deviations
            rounded to 4 decimals (``sections`` and ``n_pixels`` do not enter it).
        """
        vals = [round(float(v), 4) for v in (*self.mean, *self.std)]
        return f"{self.method}:" + hashlib.sha256(json.dumps(vals).encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples as lists), e.g. ``uns["cnn_features"]["stain"]``.

        Returns
        -------
        dict
            ``mean``, ``std``, ``sections``, ``n_pixels`` and ``method``.
        """
        d = asdict(self)
        d["mean"], d["std"], d["sections"] = list(self.mean), list(self.std), list(self.sections)
        return d


def _lab(windows: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(windows, dtype=np.uint8))


def lab_stats(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Lab mean, standard deviation and pixel count over the tissue pixels of ``windows``.

    A pixel is tissue when its lightness is below :data:`TISSUE_MAX_L`; every 4th pixel per axis
    is used. Raises :class:`DataError` when there is no tissue at all.

    Parameters
    ----------
    windows
        ``(n, s, s, 3)`` uint8 RGB windows.

    Returns
    -------
    mean
        ``(3,)`` Lab mean of the tissue pixels.
    std
        ``(3,)`` Lab standard deviation of the tissue pixels (``ddof=0``).
    n_pixels
        The number of tissue pixels used; fewer than 100 is a :class:`DataError`.
    """
    w = np.asarray(windows)[:, ::_STRIDE, ::_STRIDE]
    lab = _lab(w).reshape(-1, 3)
    tissue = lab[lab[:, 0] < TISSUE_MAX_L]
    if tissue.shape[0] < 100:
        raise DataError("windows", f"only {tissue.shape[0]} tissue pixels (Lab L < {TISSUE_MAX_L:g}) for the stain "
                                   "statistics: are the windows blank?")
    return tissue.mean(axis=0), tissue.std(axis=0), int(tissue.shape[0])


def reinhard(windows: np.ndarray, target: StainTarget, source: tuple[np.ndarray, np.ndarray] | None = None,
             chunk: int = 64) -> np.ndarray:
    """Map ``(n, s, s, 3)`` uint8 windows of one section to ``target`` (Reinhard, in Lab).

    ``source`` is the section's own ``(mean, std)`` (:func:`lab_stats` of its windows when
    ``None``). Every tissue pixel goes through the same map, so the section's colours keep their
    order; background pixels (Lab L >= :data:`TISSUE_MAX_L`) are left as they are, as
    HistomicsTK's ``reinhard(mask_out=...)`` does.

    Parameters
    ----------
    windows
        ``(n, s, s, 3)`` uint8 RGB windows of one section.
    target
        The colour to map to (:func:`fit_stain_target`).
    source
        The section's Lab ``(mean, std)``; ``None``: :func:`lab_stats` of ``windows``.
    chunk
        Windows converted at a time (bounds the memory).

    Returns
    -------
    ndarray
        uint8 RGB windows of the same shape: tissue pixels mapped (out-of-gamut colours clipped),
        background pixels unchanged.
    """
    from skimage.color import lab2rgb

    w = np.asarray(windows)
    if source is None:
        mu, sd, _ = lab_stats(w)
    else:
        mu, sd = (np.asarray(v, dtype=np.float64) for v in source)
    scale = np.asarray(target.std) / np.maximum(sd, 1e-6)
    shift = np.asarray(target.mean) - mu * scale
    out = np.empty_like(w, dtype=np.uint8)
    for start in range(0, w.shape[0], chunk):
        part = w[start : start + chunk]
        lab = _lab(part)
        glass = lab[..., 0] >= TISSUE_MAX_L  # background keeps its colour (HistomicsTK's mask_out)
        lab = lab * scale + shift
        lab[..., 0] = np.clip(lab[..., 0], 0, 100)
        with warnings.catch_warnings():  # out-of-gamut colours are clipped to RGB by lab2rgb
            warnings.simplefilter("ignore")
            rgb = np.clip(np.rint(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)
        rgb[glass] = part[glass]
        out[start : start + chunk] = rgb
    return out


def fit_stain_target(
    adata: AnnData,
    *,
    fit_on: str | Sequence[str] = "train",
    window_um: float | None = None,
    size: int = 224,
    split_key: str = "split",
    library_key: str = "section",
    spatial_key: str = "spatial",
) -> StainTarget:
    """Fit the Reinhard target on the tissue pixels of the spot windows of some sections.

    ``fit_on`` is a split name (default ``"train"``: the valid and test sections never enter the
    target) or a list of sections. Each section's image is decoded once, in turn. The target is
    the mean and standard deviation of the pooled tissue pixels.

    Parameters
    ----------
    adata
        Spots read by :mod:`stlib.io` (``obs[library_key]``, ``obsm[spatial_key]``,
        ``uns["spatial"][section]["metadata"]["image_path"]``, and ``um_per_px`` with
        ``window_um``).
    fit_on
        A split name (a value of ``obs[split_key]``) or a list of section ids.
    window_um
        A physical window (um), cut at each section's resolution and resampled to ``size``, as in
        :func:`cnn_features`; ``None``: ``size`` pixels.
    size
        The network's input side in pixels: the statistics are of the resampled windows.
    split_key
        ``obs`` column of splits (when ``fit_on`` is a split name).
    library_key, spatial_key
        ``obs`` column of sections, ``obsm`` key of the coordinates.

    Returns
    -------
    StainTarget
        The Lab mean and standard deviation of the pooled tissue pixels (Lab L below
        :data:`TISSUE_MAX_L`, every 4th pixel per axis), the sections used and the pixel count.
    """
    from stlib.im._windows import _section_inputs_geo, cut_section_windows

    if isinstance(fit_on, str):
        if split_key not in adata.obs:
            raise DataError("adata", f"no obs[{split_key!r}] to find the {fit_on!r} sections")
        chosen = set(adata.obs.loc[get.split_mask(adata, fit_on, split_key), library_key].astype(str))
    else:
        chosen = {str(s) for s in fit_on}
    if not chosen:
        raise DataError("adata", f"no sections to fit the stain target on (fit_on={fit_on!r})")
    sums = np.zeros(3)
    sq = np.zeros(3)
    n = 0
    used = []
    for sec, idx, path, _sha, _ in _section_inputs_geo(adata, library_key, spatial_key):
        if sec not in chosen:
            continue
        # the pixels the network sees, as in section_features
        windows = cut_section_windows(adata, sec, idx, path, window_um=window_um, size=size, spatial_key=spatial_key)
        lab = _lab(windows[:, ::_STRIDE, ::_STRIDE]).reshape(-1, 3)
        lab = lab[lab[:, 0] < TISSUE_MAX_L]
        sums += lab.sum(axis=0)
        sq += (lab**2).sum(axis=0)
        n += lab.shape[0]
        used.append(sec)
    missing = chosen - set(used)
    if missing:
        raise DataError("adata", f"sections {sorted(missing)} to fit the stain target on have no spots")
    if n < 100:
        raise DataError("adata", f"only {n} tissue pixels in the windows of {sorted(used)}")
    mean = sums / n
    std = np.sqrt(np.maximum(sq / n - mean**2, 0))
    return StainTarget(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                       sections=tuple(sorted(used)), n_pixels=int(n))


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    s = tuple(float(v) for v in scales)
    if not s or any(not np.isfinite(v) or v <= 0 for v in s) or len(set(s)) != len(s):
        raise ValueError(f"scales must be distinct positive numbers, got {scales!r}")
    return s


def views_label(tta: bool, scales: Sequence[float], stain: StainTarget | None) -> str:
    """The part of the feature-cache key the options add (empty for the plain features).

    Parameters
    ----------
    tta
        Test-time augmentation (adds ``"tta8"``).
    scales
        Window widths (distinct positive numbers, else a ``ValueError``); any but ``(1,)`` add
        ``"scales"`` and the widths in their order.
    stain
        A stain target (adds its :meth:`StainTarget.label`), or ``None``.

    Returns
    -------
    str
        The parts joined by ``"|"``, e.g. ``"tta8|scales1,2,4"``; ``""`` for the plain features.
    """
    parts = []
    if tta:
        parts.append("tta8")
    s = check_scales(scales)
    if s != (1.0,):
        parts.append("scales" + ",".join(f"{v:g}" for v in s))
    if stain is not None:
        parts.append(stain.label())
    return "|".join(parts)


def scale_px(win: int, scale: float) -> int:
    """Side in pixels of the window ``scale`` times as wide as ``win``."""
    return max(1, int(np.floor(win * scale + 0.5)))

