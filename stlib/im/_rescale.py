"""Sections brought to a common resolution: finer images downsampled, painted backgrounds undone.

HER2ST patient A is read from the study's web-app views (about 3.4 um/px, the background painted
black); patients B and C from full-resolution scans (about 0.73 um/px, white glass). A network
shown the two sees two differences besides the tissue: the coarser pixels and the black
background. :func:`common_resolution` removes both: every section finer than ``um_per_px`` is
downsampled to it (the whole image, Lanczos, antialiased, as an even downsampling of a scan
would be), and black background connected to the image border is painted white, the colour of
glass. It writes the new images to ``out_dir`` (named by the source image's sha256, the target
resolution and the background rule, so a second call reuses them) and returns an AnnData whose
``obsm["spatial"]`` and ``uns["spatial"][section]["metadata"]`` (``image_path``,
``image_sha256``, ``um_per_px``) point at them. Sections at or coarser than ``um_per_px`` are
never upsampled: only their background is restored. What was done to each section is recorded in
``uns["common_resolution"]``.
"""

from __future__ import annotations

import copy as _copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stlib._utils import sha256_file
from stlib.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from anndata import AnnData

#: Pixels with every channel at most this value count as painted black background (when
#: connected to the image border); the HER2ST app views paint it exactly (0, 0, 0).
PAINTED_BLACK_MAX = 8

#: The dark fringe along the painted background (antialiased edge): up to this many pixels, darker
#: than :data:`EDGE_MAX` in every channel, are painted with it.
EDGE_PX = 3
EDGE_MAX = 90

BACKGROUNDS: tuple[str, ...] = ("white", "keep")

__all__ = ["BACKGROUNDS", "EDGE_MAX", "EDGE_PX", "PAINTED_BLACK_MAX", "common_resolution", "restore_background"]


def restore_background(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Paint the black background connected to the image border white (255).

    Returns the new image and the number of pixels painted. Black inside the tissue (not
    connected to the border) is left alone.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB image, rows first.

    Returns
    -------
    image
        The painted copy (``image`` itself when nothing is painted).
    n_painted
        Pixels painted white: the black background (every channel at most
        :data:`PAINTED_BLACK_MAX`) connected to the border, and the dark fringe (every channel at
        most :data:`EDGE_MAX`) within :data:`EDGE_PX` pixels of it.
    """
    from scipy import ndimage as ndi

    img = np.asarray(image)
    black = img.max(axis=2) <= PAINTED_BLACK_MAX
    if not black.any():
        return img, 0
    lab, _ = ndi.label(black)
    border = np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    bg = np.isin(lab, border[border > 0])
    # the painted edge was smoothed by the downsampling: a dark fringe of up to EDGE_PX pixels
    # next to the background goes too (only pixels darker than EDGE_MAX, never stained tissue)
    dark = img.max(axis=2) <= EDGE_MAX
    bg |= ndi.binary_dilation(bg, iterations=EDGE_PX) & dark
    n = int(bg.sum())
    if n == 0:
        return img, 0
    out = img.copy()
    out[bg] = 255
    return out, n


def _target_um(adata: AnnData, um_per_px: float | str, sections: list[str]) -> float:
    from stlib.im._windows import section_um_per_px

    ums = {s: section_um_per_px(adata, s) for s in sections}
    if um_per_px == "coarsest":
        return max(ums.values())
    if isinstance(um_per_px, str) or not np.isfinite(um_per_px) or um_per_px <= 0:
        raise DataError("um_per_px", f"must be a positive number or 'coarsest', got {um_per_px!r}")
    return float(um_per_px)


def common_resolution(
    adata: AnnData,
    um_per_px: float | str = "coarsest",
    out_dir: str | os.PathLike[str] = "cache/common_resolution",
    *,
    background: str = "white",
    library_key: str = "section",
    spatial_key: str = "spatial",
    progress: bool = False,
) -> AnnData:
    """A copy of ``adata`` whose sections' images are at ``um_per_px`` (or coarser).

    Parameters
    ----------
    adata
        Spots of one or many sections, read by :mod:`stlib.io` (``obs[library_key]``,
        ``obsm[spatial_key]`` in full-resolution pixels, ``uns["spatial"][section]["metadata"]``
        with ``image_path`` and ``um_per_px``).
    um_per_px
        The common resolution in micrometres per pixel, or ``"coarsest"``: the coarsest section's.
    out_dir
        Where the new images are written (PNG; reused when present).
    background
        ``"white"``: paint black background connected to the image border white
        (:func:`restore_background`); ``"keep"``: leave the pixels as they are.
    library_key, spatial_key
        ``obs`` column of sections, ``obsm`` key of the coordinates.
    progress
        Show a tqdm bar over the sections.

    Returns
    -------
    AnnData
        The copy: coordinates scaled by each section's factor, metadata pointing at the new
        images, and ``uns["common_resolution"] = {"um_per_px", "background", "sections":
        {section: {"from_um_per_px", "to_um_per_px", "factor", "source", "image", "painted_px",
        "size_wh"}}}``.
    """
    from PIL import Image

    from stlib.im._runner import _tqdm
    from stlib.im._windows import _section_inputs_geo, section_um_per_px
    from stlib.io.images import image_size, read_image

    if background not in BACKGROUNDS:
        raise DataError("background", f"unknown background rule {background!r}; use one of {BACKGROUNDS}")
    sections = _section_inputs_geo(adata, library_key, spatial_key)
    target_um = _target_um(adata, um_per_px, [s for s, *_ in sections])
    out = adata.copy()
    out.uns["spatial"] = _copy.deepcopy(dict(adata.uns["spatial"]))
    coords = np.asarray(out.obsm[spatial_key], dtype=np.float64).copy()
    dest = Path(out_dir)
    dest.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {}
    bar = _tqdm(len(sections), "common resolution") if progress else None
    for sec, idx, path, sha, _ in sections:
        um = section_um_per_px(adata, sec)
        factor = min(1.0, um / target_um)  # new pixels per old pixel; never upsample
        sha = sha or sha256_file(path)
        rule = f"{background}-{PAINTED_BLACK_MAX}-{EDGE_PX}-{EDGE_MAX}" if background == "white" else background
        name = f"{sec}_{sha[:16]}_{target_um:.4f}um_{rule}.png"  # every setting that shapes the pixels
        file = dest / name
        meta_file = file.with_suffix(".json")
        if meta_file.is_file() and (json.loads(meta_file.read_text()).get("unchanged") or file.is_file()):
            info = json.loads(meta_file.read_text())
        else:
            img = read_image(path)
            h, w = img.shape[:2]
            size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
            if factor < 1.0:
                img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
            painted = 0
            if background == "white":
                img, painted = restore_background(img)
            info = {"size_wh": list(size), "painted_px": int(painted), "source": str(path),
                    "unchanged": bool(factor >= 1.0 and painted == 0)}
            if not info["unchanged"]:  # the source itself serves when nothing changed
                tmp = file.with_suffix(".tmp.png")
                Image.fromarray(img).save(tmp, format="PNG")
                os.replace(tmp, file)
            meta_file.write_text(json.dumps(info))
            del img
        size, painted = tuple(info["size_wh"]), int(info["painted_px"])
        image_file = str(path) if info["unchanged"] else str(file)
        # the exact factor per axis from the integer sizes (the image may round differently in x and y)
        if factor < 1.0:
            src_h, src_w = image_size(path)
            fx, fy = size[0] / src_w, size[1] / src_h
        else:
            fx = fy = 1.0
        # pixel centres: a coordinate x (pixel x covers [x - 0.5, x + 0.5)) maps to (x + 0.5) f - 0.5
        coords[idx, 0] = (coords[idx, 0] + 0.5) * fx - 0.5
        coords[idx, 1] = (coords[idx, 1] + 0.5) * fy - 0.5
        new_um = um / ((fx + fy) / 2)
        if not info["unchanged"]:  # low-resolution copies and their scale factors described the old pixels
            out.uns["spatial"][sec].pop("images", None)
            old = dict(out.uns["spatial"][sec].pop("scalefactors", None) or {})
            if "spot_diameter_fullres" in old:  # a length in full-resolution pixels: rescaled with them
                out.uns["spatial"][sec]["scalefactors"] = {
                    "spot_diameter_fullres": float(old["spot_diameter_fullres"]) * (fx + fy) / 2}
        meta = out.uns["spatial"][sec].setdefault("metadata", {})
        meta.update({"image_path": image_file, "image_sha256": sha if info["unchanged"] else sha256_file(image_file),
                     "image_shape": [int(size[1]), int(size[0])],
                     "um_per_px": float(new_um), "common_resolution_source": str(path)})
        record[sec] = {"from_um_per_px": float(um), "to_um_per_px": float(new_um), "factor": float((fx + fy) / 2),
                       "source": str(path), "image": image_file, "painted_px": int(painted),
                       "size_wh": [int(size[0]), int(size[1])]}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    out.obsm[spatial_key] = coords
    out.uns["common_resolution"] = {"um_per_px": float(target_um), "background": background,
                                    "method": "PIL Lanczos downsampling of the whole image (never upsampled)",
                                    "sections": record}
    return out

