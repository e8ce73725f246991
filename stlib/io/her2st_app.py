"""HER2ST sections read with the study's web-app view as their image (patient A: A1, A2).

The app's images (``app/www/imgs/<section>_HE_image_dark.png``, ~2000 px wide) are the full-size
scans downsampled evenly, background painted black, an annotation thumbnail in the top-right
corner. A section's manifest entry names them::

    A2:
      patient: A
      app_image: app/www/imgs/A2_HE_image_dark.png
      fullres_wh: [6966, 7441]          # width, height of the full-size scan
      fullres_source: app/data/dims.list # read with stlib.io.rdata and checked when present
      register: {method: spots_on_tissue}  # optional: stlib.io.register.register_spots

The selection file's full-size pixels are scaled by ``W_png / W_full`` (x) and ``H_png / H_full``
(y); with ``register`` the scaled centres are then registered to the tissue
(:func:`stlib.io.register.register_spots`, recomputed at every read and reported in
``uns["load_report"][section]["spot_transform"]``). Every section's share of spots off tissue is
measured with :func:`stlib.io.register.tissue_mask` and reported. The resolution is measured from
the spot pitch (no ``um_per_px`` in the manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np

from stlib.errors import DataError
from stlib.io.images import image_size, read_image
from stlib.io.rdata import app_image_dims
from stlib.io.register import disc_coverage, register_spots, spot_pitch_px, spots_on_tissue, tissue_mask

__all__ = ["app_section_inputs", "app_spot_transform", "mark_app_section"]

REGISTER_METHODS = ("spots_on_tissue",)


def _fullres_wh(ds: Any, root: Path, section: str, meta: dict[str, Any]) -> tuple[tuple[int, int], str]:
    where = ds.manifest_path
    wh = meta.get("fullres_wh")
    if not (isinstance(wh, (list, tuple)) and len(wh) == 2 and all(isinstance(v, int) and v > 0 for v in wh)):
        raise DataError(where, f"section {section}: fullres_wh must be [width, height] in px, got {wh!r}")
    src = meta.get("fullres_source")
    if src and (root / src).is_file():  # checked against the R data whenever the file is at hand
        got = app_image_dims(root / src).get(section)
        if got is None or tuple(got) != tuple(wh):
            raise DataError(root / src, f"section {section}: full-size dimensions {got} (width, height) differ "
                                        f"from the manifest's fullres_wh {list(wh)} ({where.name})")
        return (int(wh[0]), int(wh[1])), f"{src} (checked)"
    return (int(wh[0]), int(wh[1])), f"{src or 'manifest'} (as recorded in the manifest)"


def app_spot_transform(fullres_wh: tuple[int, int], *, register: dict[str, Any] | None = None,
                       spot_diameter_um: float = 100.0, spot_pitch_um: float = 200.0, where: str = "section"):
    """The ``spot_transform`` of :func:`~stlib.io.her2st.read_her2st_section` for an app view: scale
    full-size pixels to the image, measure the spots on tissue, register when asked."""
    W, H = fullres_wh

    def transform(xy: np.ndarray, img_path: Path, hw: tuple[int, int]) -> tuple[np.ndarray, dict[str, Any]]:
        h, w = hw
        sx, sy = w / W, h / H
        out = np.asarray(xy, dtype=np.float64) * np.array([sx, sy])
        mask, minfo = tissue_mask(read_image(img_path), where=str(img_path))
        pitch = spot_pitch_px(out)
        radius = pitch * spot_diameter_um / spot_pitch_um / 2
        cov = disc_coverage(mask, radius)
        _, off, mean = spots_on_tissue(cov, out)
        info: dict[str, Any] = {
            "fullres_wh": [int(W), int(H)], "image_wh": [int(w), int(h)], "scale_xy": [sx, sy],
            "tissue_mask": minfo, "spot_radius_px": radius,
            "off_tissue_scaled": off, "mean_coverage_scaled": mean,
        }
        if register:
            method = str(register.get("method", "spots_on_tissue"))
            if method not in REGISTER_METHODS:
                raise DataError(where, f"unknown registration method {method!r}; known: {list(REGISTER_METHODS)}")
            reg = register_spots(mask, out, spot_radius_px=radius, max_shift_px=register.get("max_shift_px"),
                                 scale_range=float(register.get("scale_range", 0.0)), where=where)
            out = reg.apply(out)
            info["registration"] = reg.as_dict()
        _, info["off_tissue"], info["mean_coverage"] = spots_on_tissue(cov, out)
        return out, info

    return transform


def app_section_inputs(ds: Any, root: Path, section: str, geometry: dict[str, Any]) -> dict[str, Any]:
    """The reader's inputs for one section whose manifest names an ``app_image``.

    Parameters
    ----------
    ds
        The registered data set (:class:`~stlib.io.registry.Dataset`).
    root
        Its root folder.
    section
        The section id.
    geometry
        The section's manifest geometry (without ``um_per_px``: it is measured from the pitch).

    Returns
    -------
    dict
        Keyword arguments of :func:`~stlib.io.her2st.read_her2st_section` (``image``,
        ``image_sha256``, ``spot_transform``, ``geometry``, ``patient``, ``subtype``) and, under
        ``"app"``, what :func:`mark_app_section` records (``fullres_wh`` and its source).
    """
    meta = ds.sections[section]
    img = root / str(meta["app_image"])
    image_size(img)  # a clear error for a missing or unreadable image, before the counts are read
    wh, source = _fullres_wh(ds, root, section, meta)
    if "um_per_px" in geometry:
        raise DataError(ds.manifest_path, f"section {section}: um_per_px is measured from the spot pitch for an "
                                          "app image; remove it from the manifest")
    reg = meta.get("register")
    if reg is not None and not isinstance(reg, dict):
        raise DataError(ds.manifest_path, f"section {section}: register must be a mapping {{method: ...}}")
    transform = app_spot_transform(wh, register=reg, spot_diameter_um=float(geometry.get("spot_diameter_um", 100.0)),
                                   spot_pitch_um=float(geometry.get("spot_pitch_um", 200.0)), where=str(img))
    return {
        "patient": str(meta.get("patient", section[0])), "subtype": str(meta.get("subtype", "HER2+")),
        "image_sha256": ds.files.get(str(meta["app_image"])), "geometry": geometry, "image": img,
        "spot_transform": transform, "app": {"fullres_wh": wh, "fullres_source": source},
    }


def mark_app_section(a: ad.AnnData, section: str, app: dict[str, Any]) -> ad.AnnData:
    """Record in ``a`` (one section, read from an app image) the image's kind and full-size scale.

    Parameters
    ----------
    a
        The section as :func:`~stlib.io.her2st.read_her2st_section` returned it.
    section
        Its id.
    app
        The ``"app"`` entry of :func:`app_section_inputs`.

    Returns
    -------
    AnnData
        ``a``, with ``uns["load_report"][section]["spot_transform"]["fullres_source"]`` and
        ``uns["spatial"][section]["metadata"]`` keys ``image_kind`` and ``fullres_wh``.
    """
    a.uns["load_report"][section]["spot_transform"]["fullres_source"] = app["fullres_source"]
    md = a.uns["spatial"][section]["metadata"]
    md["image_kind"] = "HER2ST web-app view (downsampled, black background, thumbnail top-right)"
    md["fullres_wh"] = list(app["fullres_wh"])
    return a
