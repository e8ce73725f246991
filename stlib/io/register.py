"""Spots on the tissue: a tissue mask for H&E images on black or white backgrounds, the share of
spots on tissue, and a registration of the spot grid to the image that maximises it.

The HER2ST web app's whole-section views (``app/www/imgs/<section>_HE_image_dark.png``) are the
scans downsampled, with the background painted black and an annotation thumbnail pasted into the
top-right corner. :func:`tissue_mask` keeps what is neither background (black, or white glass
reaching the border) nor that thumbnail (the component touching both the top and the right edge),
fills holes (fat inside the tissue is tissue) and drops specks.

:func:`register_spots` is the registration method, for a section whose scaled spot centres fall
off its tissue (HER2ST A2): over translations (and optionally an isotropic scale about the spots'
centroid) it maximises the number of spots on tissue (a spot is a disc; on tissue when at least
half of it is), ties broken by the mean share of the discs on tissue and then by the smallest
change. It reports the objective before and after and the transform; nothing is typed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stlib.errors import DataError

__all__ = ["OFF_TISSUE_WARN", "Registration", "apply_transform", "check_spots_on_tissue", "disc_coverage",
           "register_spots", "spot_pitch_px", "spots_on_tissue", "tissue_mask"]

#: A pixel whose channels are all at most this is painted background (the app's black).
BLACK_MAX = 10
#: A pixel whose channels are all at least this is white glass (when connected to the border).
WHITE_MIN = 235
#: Components smaller than this share of the image are specks, not tissue.
MIN_COMPONENT = 0.001
#: A spot is on tissue when at least this share of its disc is.
ON_TISSUE = 0.5
#: A section with more than this share of its spots off its tissue is reported (a warning).
OFF_TISSUE_WARN = 0.10
#: A tissue mask covering more than this share of the image found no background: not informative.
MAX_TISSUE_FRACTION = 0.95
#: Side (px) of the thumbnail on which :func:`check_spots_on_tissue` finds the tissue.
CHECK_THUMB = 1024


def tissue_mask(image: np.ndarray, *, where: str = "image") -> tuple[np.ndarray, dict[str, Any]]:
    """Tissue (True) of an RGB ``(H, W, 3)`` uint8 image on a black or white background.

    Background is every black pixel (all channels <= :data:`BLACK_MAX`) and every white pixel
    (all >= :data:`WHITE_MIN`) connected to the image border; a component of the rest touching
    both the top and the right edge is the app's annotation thumbnail and is removed; components
    smaller than :data:`MIN_COMPONENT` of the image are removed; holes are filled. Returns the mask
    and what was removed (``inset_bbox`` as ``[x0, y0, x1, y1]`` or ``None``, ``n_specks``).

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB image, rows first.
    where
        The image named in errors.

    Returns
    -------
    mask
        ``(H, W)`` boolean, True on tissue.
    info
        ``inset_bbox`` (the removed thumbnail: a component touching the top and right edges and
        smaller than a quarter of the image), ``n_specks`` (components removed as specks) and
        ``tissue_fraction`` (the share of the image that is tissue).
    """
    from scipy import ndimage as ndi

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(where, f"image must have shape (H, W, 3), got {img.shape}")
    h, w = img.shape[:2]
    black = img.max(axis=2) <= BLACK_MAX
    white = img.min(axis=2) >= WHITE_MIN
    lab, _ = ndi.label(white)
    border = np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    glass = np.isin(lab, border[border > 0])
    fg = ~(black | glass)
    lab, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    info: dict[str, Any] = {"inset_bbox": None, "n_specks": 0}
    if n:
        objs = ndi.find_objects(lab)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        drop = np.zeros(n + 1, dtype=bool)
        for k, sl in enumerate(objs, start=1):
            ys, xs = sl
            if ys.start == 0 and xs.stop == w and sizes[k] < 0.25 * h * w:  # the corner thumbnail
                drop[k] = True
                info["inset_bbox"] = [int(xs.start), int(ys.start), int(xs.stop), int(ys.stop)]
            elif sizes[k] < MIN_COMPONENT * h * w:
                drop[k] = True
                info["n_specks"] += 1
        fg = ~drop[lab] & (lab > 0)
    mask = ndi.binary_fill_holes(fg)
    info["tissue_fraction"] = float(mask.mean())
    return mask, info


def spot_pitch_px(xy: np.ndarray) -> float:
    """Median distance from a spot centre to its nearest neighbour (the array's pitch in px)."""
    from sklearn.neighbors import NearestNeighbors

    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 2:
        raise DataError("spots", "fewer than two spots: no pitch")
    d, _ = NearestNeighbors(n_neighbors=2).fit(xy).kneighbors(xy)
    return float(np.median(d[:, 1]))


def disc_coverage(mask: np.ndarray, radius: float) -> np.ndarray:
    """Share of a disc of ``radius`` px centred on each pixel that lies on ``mask`` (outside the
    image counts as off tissue)."""
    from scipy.signal import fftconvolve

    r = max(1, int(np.ceil(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    cov = fftconvolve(mask.astype(np.float64), disc / disc.sum(), mode="same")
    return np.clip(cov, 0.0, 1.0)


def _lookup(cov: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = cov.shape
    xi, yi = np.broadcast_arrays(np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64))
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    out = np.zeros(xi.shape, dtype=np.float64)
    out[inside] = cov[yi[inside], xi[inside]]
    return out


def spots_on_tissue(cov: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Per spot its disc's share on tissue; the share of spots off tissue; the mean disc share."""
    xy = np.asarray(xy, dtype=np.float64)
    c = _lookup(cov, xy[:, 0], xy[:, 1])
    return c, float((c < ON_TISSUE).mean()), float(c.mean())


def apply_transform(xy: np.ndarray, scale: float, translation: tuple[float, float],
                    center: tuple[float, float]) -> np.ndarray:
    """``center + scale * (xy - center) + translation``."""
    xy = np.asarray(xy, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    return c + float(scale) * (xy - c) + np.asarray(translation, dtype=np.float64)


@dataclass
class Registration:
    """The fitted transform and the objective before and after (shares of spots off tissue)."""

    method: str
    translation: tuple[float, float]
    scale: float
    center: tuple[float, float]
    off_tissue_before: float
    off_tissue_after: float
    mean_coverage_before: float
    mean_coverage_after: float
    n_spots: int
    spot_radius_px: float
    search: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["translation"], d["center"] = list(self.translation), list(self.center)
        return d

    def apply(self, xy: np.ndarray) -> np.ndarray:
        return apply_transform(xy, self.scale, self.translation, self.center)


def _search(cov: np.ndarray, xy: np.ndarray, center: np.ndarray, scales: np.ndarray, dxs: np.ndarray,
            dys: np.ndarray) -> tuple[float, float, float, float]:
    """Best (score, scale, dx, dy) over the grid; score = spots on tissue + mean disc share
    (lexicographic: the mean share is < 1), minus a tiny penalty for the size of the change."""
    best = (-np.inf, 1.0, 0.0, 0.0)
    for s in scales:
        p = center + s * (xy - center)
        c = _lookup(cov, p[None, None, :, 0] + dxs[None, :, None], p[None, None, :, 1] + dys[:, None, None])
        change = np.hypot(dxs[None, :], dys[:, None]) / (1 + np.abs(dxs).max()) + abs(s - 1)
        # the mean share rounded to 1e-4 (FFT noise), the change penalised below that resolution
        score = (c >= ON_TISSUE).sum(axis=2) + 0.999 * np.round(c.mean(axis=2), 4) - 1e-6 * change
        k = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[k] > best[0]:
            best = (float(score[k]), float(s), float(dxs[k[1]]), float(dys[k[0]]))
    return best


def register_spots(
    mask: np.ndarray,
    xy: np.ndarray,
    *,
    spot_radius_px: float | None = None,
    max_shift_px: float | None = None,
    scale_range: float = 0.0,
    where: str = "section",
) -> Registration:
    """Fit a translation (and, with ``scale_range`` > 0, an isotropic scale within ``1 +- scale_range``
    about the spots' centroid) that puts the most spots on tissue.

    Parameters
    ----------
    mask
        Tissue mask of the image (:func:`tissue_mask`), rows first.
    xy
        ``(n, 2)`` spot centres (x, y) in the image's pixels.
    spot_radius_px
        Disc radius; default a quarter of the measured pitch (100 um spots on a 200 um pitch).
    max_shift_px
        Translations searched in each direction; default 4 pitches.
    scale_range
        0 (default): translation only. A scale is optional and leans towards shrinking the grid
        (a smaller grid sits deeper in the tissue and raises the tie-breaking mean share): on A2 a
        range of 5% either way goes to its 0.95 bound, so the reader fits a translation unless
        told otherwise.
    where
        The place named in errors.

    Returns
    -------
    Registration
        The transform, with the shares of spots off tissue before (identity) and after.

    Notes
    -----
    The search is a grid: every 4 px (scales every 0.01), then every pixel (scales every 0.002)
    around the best.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2 or not np.isfinite(xy).all():
        raise DataError(where, f"spot centres must be a finite (n >= 2, 2) array, got shape {xy.shape}")
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise DataError(where, "the tissue mask is empty: nothing to register the spots to")
    pitch = spot_pitch_px(xy)
    radius = float(spot_radius_px) if spot_radius_px is not None else pitch / 4
    reach = float(max_shift_px) if max_shift_px is not None else 4 * pitch
    cov = disc_coverage(m, radius)
    center = xy.mean(axis=0)
    _, off0, mean0 = spots_on_tissue(cov, xy)
    coarse = 4.0
    d = np.arange(-np.ceil(reach / coarse) * coarse, reach + 1e-9, coarse)
    scales = np.round(np.arange(1 - scale_range, 1 + scale_range + 1e-9, 0.01), 6) if scale_range > 0 else np.array([1.0])
    _, s, dx, dy = _search(cov, xy, center, scales, d, d)
    fine = np.arange(-coarse, coarse + 1e-9, 1.0)
    fscales = (np.round(np.arange(s - 0.01, s + 0.01 + 1e-9, 0.002), 6) if scale_range > 0 else np.array([1.0]))
    fscales = fscales[np.abs(fscales - 1) <= scale_range + 1e-9]
    _, s, fx, fy = _search(cov, xy, center, fscales, dx + fine, dy + fine)
    reg = Registration(
        method=("maximise the spots on tissue (disc of radius spot_radius_px, on tissue when >= 50% of it is) "
                "over translations" + (" and an isotropic scale about the spots' centroid" if scale_range > 0 else "")
                + "; ties: the larger mean disc share on tissue, then the smaller change"),
        translation=(fx, fy), scale=s, center=(float(center[0]), float(center[1])),
        off_tissue_before=off0, off_tissue_after=0.0, mean_coverage_before=mean0, mean_coverage_after=0.0,
        n_spots=int(len(xy)), spot_radius_px=radius,
        search={"max_shift_px": reach, "scale_range": float(scale_range), "coarse_step_px": coarse,
                "fine_step_px": 1.0, "pitch_px": pitch},
    )
    _, reg.off_tissue_after, reg.mean_coverage_after = spots_on_tissue(cov, reg.apply(xy))
    return reg


def check_spots_on_tissue(image_path: Any, xy: np.ndarray, spot_diameter_px: float, *, section: str,
                          max_size: int = CHECK_THUMB) -> dict[str, Any]:
    """The share of a section's spots that lie off its tissue, measured on a thumbnail of its image.

    The tissue is :func:`tissue_mask` of the image decoded at most ``max_size`` px wide (JPEG draft
    mode); a spot is off tissue when less than half of its disc is on it (:func:`spots_on_tissue`).
    More than :data:`OFF_TISSUE_WARN` off tissue is a :class:`~stlib.errors.DataWarning` naming the
    section, the image and the share: spots registered to another image, or a shifted or flipped
    spot table. An image whose background is neither black nor white glass (grey glass, e.g. HER2ST
    B4) gives a mask of nearly the whole image (more than :data:`MAX_TISSUE_FRACTION`): the check
    then says nothing, and ``tissue_check`` says it was not informative.

    Parameters
    ----------
    image_path
        The section's full-resolution image.
    xy
        ``(n, 2)`` spot centres (x, y) in full-resolution pixels.
    spot_diameter_px
        Spot diameter in full-resolution pixels.
    section
        The section's id, for the message.
    max_size
        Thumbnail side in px.

    Returns
    -------
    dict
        ``off_tissue_share``, ``n_off_tissue``, ``tissue_fraction`` (of the image), ``thumb_scale`` and
        ``tissue_check`` (``"done"``, or why the mask was not informative).
    """
    import warnings

    from stlib.errors import DataWarning
    from stlib.io.images import read_thumbnail

    thumb, s = read_thumbnail(image_path, max_size)
    mask, _ = tissue_mask(thumb, where=str(image_path))
    cov = disc_coverage(mask, max(1.0, spot_diameter_px * s / 2))
    c, off, _ = spots_on_tissue(cov, np.asarray(xy, dtype=np.float64) * s)
    informative = float(mask.mean()) <= MAX_TISSUE_FRACTION
    out = {"off_tissue_share": round(off, 4), "n_off_tissue": int((c < ON_TISSUE).sum()),
           "tissue_fraction": round(float(mask.mean()), 4), "thumb_scale": s, "tissue_check": (
               "done" if informative else "not informative: no black or white background found, the mask is the image")}
    if informative and off > OFF_TISSUE_WARN:
        warnings.warn(f"section {section}: {100 * off:.0f}% of its {len(c)} spots ({out['n_off_tissue']}) lie off "
                      f"the tissue of {image_path} (more than {100 * OFF_TISSUE_WARN:.0f}%): spots of another image, "
                      "or shifted? stlib.io.register_spots fits a translation", DataWarning, stacklevel=2)
    return out
