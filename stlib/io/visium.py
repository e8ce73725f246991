"""Reader for 10x Visium sections from Space Ranger's outputs (``reader: visium``), through squidpy.

A Space Ranger ``outs/`` folder holds the counts (``filtered_feature_bc_matrix.h5``), the spot
positions (``spatial/tissue_positions.csv``, or ``tissue_positions_list.csv`` of Space Ranger 1),
the scale factors (``spatial/scalefactors_json.json``) and downscaled images
(``spatial/tissue_hires_image.png``, ``tissue_lowres_image.png``); the full-resolution H&E is the
user's own file. :func:`squidpy.read.visium` reads the folder (the field's reader, not a hand-written
one); this module adds what the book needs: the manifest's patient and group, the full-resolution
image, spots kept only when ``in_tissue = 1`` (the others counted), checks (spots inside the image,
raw counts, unique gene names) and the physical scale::

    name: my-visium
    reader: visium
    origin: local
    geometry:                     # Visium: 55 um spots on a 100 um pitch (the defaults)
      spot_diameter_um: 55
      spot_pitch_um: 100
    split: split.tsv
    sections:
      V1:
        patient: P1
        group: HER2+
        folder: V1/outs           # Space Ranger's outs/ folder
        image: V1/V1_full.tif     # the full-resolution H&E given to Space Ranger
        # counts_file: filtered_feature_bc_matrix.h5   (the default)

The resolution is read from ``scalefactors_json.json``: ``spot_diameter_fullres`` px are
``spot_diameter_um`` micrometres, and it is checked against the spots' pitch like any declared
``um_per_px`` (:func:`~stlib.io._common.section_geometry`). Gene symbols are the ``var_names``;
a symbol that names several genes (Space Ranger lists a few) is made unique by anndata's rule
(``-1``, ``-2`` appended), counted in the load report (``genes_renamed``), with the Ensembl ids in
``var["gene_ids"]``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.io._common import (
    TUMOR_DTYPE,
    SparseCounts,
    build_section,
    check_spots_in_image,
    concat_sections,
    section_geometry,
)
from stlib.io.images import check_jpeg
from stlib.io.register import check_spots_on_tissue

__all__ = ["VISIUM_GEOMETRY", "read_from_manifest", "read_visium_section", "section_files"]

#: Visium: 55 um spots on a 100 um centre-to-centre pitch.
VISIUM_GEOMETRY = {"spot_diameter_um": 55.0, "spot_pitch_um": 100.0}
GEOMETRY_KEYS = ("um_per_px", "spot_diameter_um", "spot_pitch_um")
COUNTS_FILE = "filtered_feature_bc_matrix.h5"
POSITIONS = ("spatial/tissue_positions.csv", "spatial/tissue_positions_list.csv")


def section_files(manifest: Path, sections: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The files of each section that a manifest may verify (counts, scale factors, image); a section
    without ``folder``, ``image`` or ``patient`` is a :class:`DataError` naming the manifest."""
    out: dict[str, list[str]] = {}
    for sec, meta in sections.items():
        missing = [k for k in ("folder", "image", "patient") if not meta.get(k)]
        if missing:
            raise DataError(manifest, f"section {sec}: no {', '.join(missing)} given (a Visium section names its "
                                      "Space Ranger folder, the full-resolution image and its patient)")
        folder = str(meta["folder"]).rstrip("/")
        out[sec] = [f"{folder}/{meta.get('counts_file', COUNTS_FILE)}", f"{folder}/spatial/scalefactors_json.json",
                    str(meta["image"])]
    return out


def _positions(folder: Path) -> Path:
    for name in POSITIONS:
        if (folder / name).is_file():
            return folder / name
    raise DataError(folder / POSITIONS[0], f"missing file (nor {POSITIONS[1]}): the spots' positions")


def read_visium_section(
    root: Path,
    section: str,
    meta: Mapping[str, Any],
    *,
    geometry: Mapping[str, Any] | None = None,
    image_sha256: str | None = None,
) -> ad.AnnData:
    """Read one Visium section (``meta``: its manifest entry, paths relative to ``root``).

    Parameters
    ----------
    root
        The data set's folder.
    section
        The section's id (squidpy's ``library_id``).
    meta
        ``folder`` (Space Ranger's ``outs/``), ``image`` (full resolution), ``patient``, optional
        ``group``, ``counts_file``.
    geometry
        ``spot_diameter_um``, ``spot_pitch_um`` (default Visium's 55 and 100) and optionally
        ``um_per_px`` (default: from the scale factors).
    image_sha256
        Recorded in ``uns["spatial"][section]["metadata"]``.

    Returns
    -------
    AnnData as the other readers: raw counts in ``X``, ``obs`` (``section, spot_id, patient, subtype,
    array_x, array_y, tumor, tumor_label, tumor_source``), ``var["gene_ids"]``, ``obsm["spatial"]``,
    ``uns["spatial"][section]`` and ``uns["load_report"][section]``.
    """
    from stlib._compat import import_squidpy

    folder = root / str(meta["folder"])
    counts_path = folder / str(meta.get("counts_file", COUNTS_FILE))
    scale_path = folder / "spatial" / "scalefactors_json.json"
    img_path = root / str(meta["image"])
    for f in (counts_path, scale_path):
        if not f.is_file():
            raise DataError(f, "missing file (Space Ranger output)")
    pos_path = _positions(folder)
    for res in ("hires", "lowres"):
        if not (folder / "spatial" / f"tissue_{res}_image.png").is_file():
            raise DataError(folder / "spatial" / f"tissue_{res}_image.png", "missing file (squidpy reads it)")
    try:
        scalef = json.loads(scale_path.read_text())
        diameter_px = float(scalef["spot_diameter_fullres"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(scale_path, f"no usable spot_diameter_fullres ({type(exc).__name__}: {exc})") from None
    sq = import_squidpy()
    try:
        with warnings.catch_warnings():  # a symbol naming two genes: made unique below, and counted
            warnings.filterwarnings("ignore", message="Variable names are not unique")
            a = sq.read.visium(folder, counts_file=counts_path.name, library_id=section)
            dup = int(a.var_names.duplicated().sum())
            if dup:
                a.var_names_make_unique()
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(counts_path, f"not a readable Space Ranger output ({type(exc).__name__}: {exc})") from None
    positions = pd.read_csv(pos_path, header=None, dtype=str)
    if str(positions.iloc[0, 0]).strip().lower() == "barcode":
        positions = positions.iloc[1:]
    flag = pd.to_numeric(positions.iloc[:, 1], errors="coerce")
    listed_in = set(positions.iloc[:, 0][flag == 1].astype(str))
    in_tissue = pd.to_numeric(a.obs["in_tissue"], errors="coerce")
    barcodes = a.obs_names.astype(str)
    keep = (in_tissue == 1).to_numpy()
    report: dict[str, Any] = {
        "n_spots_listed": int(len(positions)),
        "n_count_rows": int(a.n_obs),
        "dropped_no_coords": [str(b) for b in barcodes[in_tissue.isna().to_numpy()]],
        "dropped_not_in_tissue": [str(b) for b in barcodes[(in_tissue == 0).to_numpy()]],
        "dropped_selected_missing": [],
        "dropped_no_counts": sorted(listed_in - set(barcodes)),
        "spots_format": f"10x Visium (squidpy.read.visium; {pos_path.name})",
    }
    a = a[keep].copy()
    if a.n_obs == 0:
        raise DataError(pos_path, f"empty section {section}: none of the {report['n_count_rows']} barcodes of "
                                  f"{counts_path.name} has in_tissue = 1")
    report["n_kept"] = int(a.n_obs)
    report["genes_renamed"] = dup
    xy = np.asarray(a.obsm["spatial"], dtype=np.float64)
    hw = check_jpeg(img_path)
    check_spots_in_image(xy, hw, pos_path, a.obs_names)
    geo_in = {**VISIUM_GEOMETRY, **{k: v for k, v in dict(geometry or {}).items() if k in GEOMETRY_KEYS}}
    from_scalefactors = geo_in.get("um_per_px") is None
    if from_scalefactors:
        geo_in["um_per_px"] = float(geo_in["spot_diameter_um"]) / diameter_px
    geo = section_geometry(xy, **geo_in, where=scale_path if from_scalefactors else pos_path, section=section)
    if from_scalefactors:
        geo["um_per_px_source"] = "scalefactors_json.json (spot_diameter_fullres)"
    report.update(check_spots_on_tissue(img_path, xy, geo["spot_diameter_fullres"], section=section))
    obs = pd.DataFrame({"patient": str(meta["patient"]), "subtype": str(meta.get("group", meta.get("subtype", "NA"))),
                        "array_x": pd.to_numeric(a.obs["array_col"]).astype(int).to_numpy(),
                        "array_y": pd.to_numeric(a.obs["array_row"]).astype(int).to_numpy(),
                        "tumor": pd.array([None] * a.n_obs, dtype=TUMOR_DTYPE), "tumor_label": [None] * a.n_obs,
                        "tumor_source": "none"}, index=a.obs_names)
    var = pd.DataFrame({"gene_ids": a.var["gene_ids"].astype(str).to_numpy()} if "gene_ids" in a.var else {},
                       index=pd.Index(a.var_names.astype(str)))
    counts = SparseCounts(a.X, index=pd.Index(a.obs_names.astype(str)), columns=pd.Index(a.var_names.astype(str)))
    return build_section(counts, obs, xy, section=section, counts_path=counts_path, image_path=img_path, image_hw=hw,
                         image_sha256=image_sha256, geometry=geo, report=report, var=var)


def read_from_manifest(ds: Any, root: Path, sections: Sequence[str]) -> ad.AnnData:
    """The sections of a ``reader: visium`` data set (``ds``: :class:`~stlib.io.registry.Dataset`)."""
    base = {k: v for k, v in dict(ds.extra.get("geometry") or {}).items() if k in GEOMETRY_KEYS}
    out = []
    for sec in sections:
        meta = ds.sections[sec]
        geo = {**base, **{k: v for k, v in meta.items() if k in GEOMETRY_KEYS}}
        out.append(read_visium_section(root, sec, meta, geometry=geo, image_sha256=ds.files.get(str(meta["image"]))))
    return concat_sections(out)
