"""Windows centred on the spots, padded with white where they cross the border.

A window has a physical size (``window_um``): at a section's resolution (``um_per_px``) it is
:func:`window_px` pixels wide, cut from the full-resolution image and resampled to the
backbone's input (:func:`resample_windows`), so that sections scanned at different
resolutions show the network the same tissue at the same scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stlib.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from anndata import AnnData


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


#: Resolution of the He et al. 2020 images (~0.69 um/px: a 200 um spot pitch is ~291 px), on which
#: the report cut its 224 px windows.
REPORT_UM_PER_PX = 0.69

#: The report's window as a physical size: 224 px at :data:`REPORT_UM_PER_PX`, about 155 um (the
#: 100 um spot and a rim of tissue). The default of the book's chapter 2.
REPORT_WINDOW_UM = round(224 * REPORT_UM_PER_PX, 1)


def window_px(window_um: float, um_per_px: float, *, where: str = "section") -> int:
    """Side in full-resolution pixels of a ``window_um`` window at ``um_per_px`` (rounded, >= 8).

    Parameters
    ----------
    window_um
        Window side in micrometres.
    um_per_px
        The image's resolution, micrometres per full-resolution pixel.
    where
        The section or file named in errors.

    Returns
    -------
    int
        ``window_um / um_per_px`` rounded (halves up). A non-positive input, or fewer than 8 px,
        is a :class:`~stlib.errors.DataError`.
    """
    for name, v in (("window_um", window_um), ("um_per_px", um_per_px)):
        if v is None or not np.isfinite(v) or v <= 0:
            raise DataError(where, f"{name} must be a positive number, got {v!r}")
    px = int(np.floor(window_um / um_per_px + 0.5))
    if px < 8:
        raise DataError(where, f"a {window_um:g} um window is only {px} px at {um_per_px:g} um/px: "
                               "is um_per_px right (micrometres per pixel of the full-resolution image)?")
    return px


def resample_windows(windows: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(n, s, s, 3)`` uint8 windows to ``(n, size, size, 3)`` (PIL bicubic, antialiased
    when shrinking); returned unchanged when ``s == size``.

    Parameters
    ----------
    windows
        ``(n, s, s, 3)`` uint8 square windows.
    size
        Output side in pixels.

    Returns
    -------
    ndarray
        ``(n, size, size, 3)`` uint8 (``windows`` itself, not a copy, when ``s == size``).
    """
    from PIL import Image

    if windows.shape[1] == size:
        return windows
    out = np.empty((windows.shape[0], size, size, 3), dtype=np.uint8)
    for i, w in enumerate(windows):
        out[i] = np.asarray(Image.fromarray(w).resize((size, size), Image.Resampling.BICUBIC))
    return out


def cut_section_windows(adata: AnnData, section: str, rows: np.ndarray, image_path: Path | str, *,
                        window_um: float | None, size: int, spatial_key: str = "spatial") -> np.ndarray:
    """The windows the network sees at some spots of one section: the one windowing loop of :mod:`stlib.im`.

    Reads the section's image, cuts a window of ``window_um`` micrometres (converted to pixels at
    the section's own resolution, :func:`section_um_per_px`) or of ``size`` pixels centred on
    each spot, and resamples it to ``size`` pixels.

    Parameters
    ----------
    adata
        Spots with ``obsm[spatial_key]`` in full-resolution pixels.
    section
        The section (its resolution, when ``window_um`` is given).
    rows
        Integer indices (or a mask) of the spots in ``adata``.
    image_path
        The section's H&E image.
    window_um
        The window's side in micrometres, or ``None`` for ``size`` pixels of the image.
    size
        The side of the returned windows in pixels.
    spatial_key
        The ``obsm`` key of the coordinates.

    Returns
    -------
    numpy.ndarray
        ``(n, size, size, 3)`` uint8 windows, white where a window leaves the image.
    """
    from stlib.io.images import read_image

    where = str(image_path)
    win = size if window_um is None else window_px(window_um, section_um_per_px(adata, section), where=where)
    centers = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[rows]
    image = read_image(image_path)
    windows, _ = extract_windows(image, centers, win, where=where)
    del image
    return resample_windows(windows, size)


def section_um_per_px(adata: AnnData, section: str) -> float:
    """A section's resolution, ``uns["spatial"][section]["metadata"]["um_per_px"]`` (the readers
    record it: from the manifest, or estimated from the spot pitch).

    Parameters
    ----------
    adata
        Data read by :mod:`stlib.io`.
    section
        Section id, a key of ``uns["spatial"]``.

    Returns
    -------
    float
        Micrometres per full-resolution pixel; none recorded is a :class:`~stlib.errors.DataError`.
    """
    meta = adata.uns.get("spatial", {}).get(section, {}).get("metadata", {})
    v = meta.get("um_per_px")
    if v is None:
        raise DataError(section, "uns['spatial'][section]['metadata'] has no 'um_per_px': read the data with "
                                 "stlib.io (it records the resolution) or pass window_um=None for pixel windows")
    return float(v)


def _section_inputs_geo(
    adata: AnnData, library_key: str, spatial_key: str
) -> list[tuple[str, np.ndarray, str, str | None, float | None]]:
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
        um = meta.get("um_per_px")
        out.append((sec, np.flatnonzero(labels == sec), str(meta["image_path"]), sha, None if um is None else float(um)))
    return out
