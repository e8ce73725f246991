"""Reader for HEST-1k samples (``reader: hest``; Jaume et al. 2024, Hugging Face ``MahmoodLab/hest``).

HEST-1k redistributes public spatial-transcriptomics data sets in one layout, per sample id
(``SPA141``, ``TENX95``, ...), relative to the data-set root::

    st/<id>.h5ad          AnnData: raw counts in X, obsm["spatial"] = spot centres (x, y) in
                          full-resolution WSI pixels; obs in_tissue, array_row, array_col,
                          pxl_col_in_fullres, pxl_row_in_fullres (+ scanpy QC columns)
    wsis/<id>.tif         the H&E as a pyramidal generic TIFF (level 0 = the full resolution)
    metadata/<id>.json    pixel_size_um_estimated, pixel_size_um_embedded, spot_diameter,
                          inter_spot_dist, st_technology, subseries, patient, dataset_title, ...

(HEST's ``hest.HESTData._read_st`` and ``read_HESTData``; its ``STReader`` names a legacy-ST spot
``"<x>x<y>"`` zero-padded to 3 digits, ``"025x013"``, and stores that x as ``array_row``.)

A manifest names each section by the authors' id and gives its HEST id::

    reader: hest
    sections:
      C2: {hest_id: SPA141, patient: C, subtype: HER2+}

What the reader keeps and checks, before anything long:

- the three files exist (a missing one names the file and how to get HEST's gated files);
- the JSON holds ``pixel_size_um_estimated``, ``spot_diameter`` and ``inter_spot_dist`` (positive
  numbers); when it also holds ``subseries`` or ``patient``, they must agree with the manifest's
  section (``hest_subseries``, ``hest_patient``): a wrong id mapping is refused;
- the TIFF is read from its header only (:mod:`tifffile`): its level 0 must be the first page,
  the one PIL decodes for the windows (:func:`stlib.io.images.read_image`); no pixel is decoded;
- spots with ``in_tissue`` false are dropped and listed (``dropped_not_in_tissue``); the spot
  centres must lie inside level 0; the counts must be raw (non-negative integers) and the gene
  names unique;
- the resolution is HEST's ``pixel_size_um_estimated`` (HEST's own choice for its patches),
  checked against the spots' ``inter_spot_dist`` pitch like any declared ``um_per_px``
  (:func:`~stlib.io._common.section_geometry`); a manifest ``um_per_px`` overrides it.

Spot ids are un-padded (``"025x013"`` -> ``"25x13"``, as the HER2ST and He et al. files name
them); for legacy-ST ids ``array_x, array_y`` are the id's ``<x>`` and ``<y>``, otherwise
HEST's ``array_col, array_row``.
"""

from __future__ import annotations

import json
import re
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
    require_finite,
    section_geometry,
)
from stlib.io.images import image_size, image_um_per_px

__all__ = ["ACCESS", "read_from_manifest", "read_hest_sample", "section_files", "tiff_levels"]

GEOMETRY_KEYS = ("um_per_px", "spot_diameter_um", "spot_pitch_um")
#: The metadata fields the reader needs, and what each becomes.
REQUIRED_FIELDS = {"pixel_size_um_estimated": "um_per_px", "spot_diameter": "spot_diameter_um",
                   "inter_spot_dist": "spot_pitch_um"}
#: How to get HEST-1k's files (the Hugging Face data set is gated).
ACCESS = ("HEST-1k is a gated Hugging Face data set: accept its terms at "
          "https://huggingface.co/datasets/MahmoodLab/hest, then set HF_TOKEN (or run `huggingface-cli login`), "
          "or download the files with `huggingface-cli download MahmoodLab/hest --repo-type dataset --include ...` "
          "into $STLIB_DATA_MIRROR/hest")
_ST_ID = re.compile(r"0*(\d+)x0*(\d+)")


def sample_paths(hest_id: str) -> list[str]:
    """The three files of a HEST sample, relative to the data-set root (h5ad, TIFF, JSON)."""
    return [f"st/{hest_id}.h5ad", f"wsis/{hest_id}.tif", f"metadata/{hest_id}.json"]


def section_files(manifest: Path, sections: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The files of each section of a ``reader: hest`` manifest.

    Parameters
    ----------
    manifest
        The manifest file, named in errors.
    sections
        Section -> its manifest entry, with ``hest_id`` and ``patient``.

    Returns
    -------
    dict
        Section -> ``[st/<id>.h5ad, wsis/<id>.tif, metadata/<id>.json]``. A section without
        ``hest_id`` or ``patient``, or two sections with one HEST id, is a :class:`DataError`
        naming the manifest.
    """
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for sec, meta in sections.items():
        missing = [k for k in ("hest_id", "patient") if not meta.get(k)]
        if missing:
            raise DataError(manifest, f"section {sec}: no {', '.join(missing)} given (a HEST section names its "
                                      "HEST sample id, e.g. hest_id: SPA141, and its patient)")
        hid = str(meta["hest_id"])
        if hid in seen:
            raise DataError(manifest, f"sections {seen[hid]} and {sec} both name HEST sample {hid}")
        seen[hid] = sec
        out[sec] = sample_paths(hid)
    return out


def tiff_levels(path: str | Path) -> list[tuple[int, int]]:
    """``(height, width)`` of each level of a (pyramidal) TIFF, from its header (no pixel decoded).

    Parameters
    ----------
    path
        The TIFF file.

    Returns
    -------
    list of (int, int)
        The levels of every series of the file, in file order: a pyramid (of pages or of SubIFDs)
        gives level 0 first; a plain TIFF has one level. An unreadable file is a
        :class:`DataError` naming it.
    """
    import tifffile

    p = Path(path)
    if not p.is_file():
        raise DataError(p, "missing image file")
    try:
        with tifffile.TiffFile(p) as tf:
            shapes = [(lv.shape, lv.axes) for s in tf.series for lv in s.levels]
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise DataError(p, f"not a readable TIFF ({type(exc).__name__}: {exc})") from None
    out = []
    for shape, axes in shapes:
        iy, ix = axes.find("Y"), axes.find("X")
        if iy < 0 or ix < 0:
            raise DataError(p, f"a TIFF series has axes {axes!r}, no Y and X")
        out.append((int(shape[iy]), int(shape[ix])))
    if not out:
        raise DataError(p, "a TIFF without an image")
    return out


def _metadata(path: Path, section: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The sample's JSON, with its required fields checked and its identity compared to the manifest."""
    if not path.is_file():
        raise DataError(path, f"missing file (HEST metadata). {ACCESS}")
    try:
        js = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(js, dict):
        raise DataError(path, "HEST metadata is a JSON object (pixel_size_um_estimated, spot_diameter, ...)")
    for key in REQUIRED_FIELDS:
        if key not in js or js[key] is None:
            raise DataError(path, f"no field {key!r} (needed for the section's scale); fields: {sorted(js)[:12]}")
        v = js[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            raise DataError(path, f"field {key!r} must be a positive number, got {v!r}")
    for field, mkey in (("subseries", "hest_subseries"), ("patient", "hest_patient")):
        want, got = meta.get(mkey), js.get(field)
        if want is not None and got is not None and str(want) != str(got):
            raise DataError(path, f"{field} is {got!r} but the manifest maps section {section} to "
                                  f"{meta.get('hest_id')} with {field} {want!r}: wrong sample, or a wrong id mapping")
    return js


def _spot_ids(obs_names: pd.Index) -> tuple[pd.Index, np.ndarray | None]:
    """Un-padded spot ids and, for legacy-ST ids ``<x>x<y>``, their array (x, y); else ``None``."""
    m = [_ST_ID.fullmatch(str(s)) for s in obs_names]
    if all(m):
        xy = np.array([[int(k.group(1)), int(k.group(2))] for k in m], dtype=np.int64).reshape(-1, 2)
        return pd.Index([f"{x}x{y}" for x, y in xy]), xy
    return pd.Index(obs_names.astype(str)), None


def read_hest_sample(
    root: Path,
    section: str,
    meta: Mapping[str, Any],
    *,
    geometry: Mapping[str, Any] | None = None,
    image_sha256: str | None = None,
) -> ad.AnnData:
    """Read one HEST-1k sample into the book's conventions (see the module's description).

    Parameters
    ----------
    root
        The data-set root (holding ``st/``, ``wsis/``, ``metadata/``).
    section
        The section's id (the authors' id, e.g. ``"C2"``).
    meta
        Its manifest entry: ``hest_id``, ``patient``, optional ``subtype``, ``hest_subseries`` and
        ``hest_patient`` (checked against the JSON).
    geometry
        ``um_per_px``, ``spot_diameter_um``, ``spot_pitch_um`` overriding the JSON's values.
    image_sha256
        Recorded in ``uns["spatial"][section]["metadata"]``.

    Returns
    -------
    AnnData
        Raw counts (CSR int32) in ``X``; ``obs`` ``section, spot_id, patient, subtype, array_x,
        array_y, tumor, tumor_label, tumor_source`` (no tumour annotation: ``"none"``);
        ``obsm["spatial"]`` (full-resolution px); ``uns["spatial"][section]`` whose ``metadata`` also
        holds ``hest_id``, ``pixel_size_um_embedded``, the TIFF's levels and declared resolution;
        ``uns["load_report"][section]``. Every problem is a :class:`DataError` naming the file.
    """
    hid = str(meta["hest_id"])
    h5, tif, jsp = (root / f for f in sample_paths(hid))
    for f in (h5, tif):
        if not f.is_file():
            raise DataError(f, f"missing file (HEST sample {hid}, section {section}). {ACCESS}")
    js = _metadata(jsp, section, meta)
    levels = tiff_levels(tif)
    hw = image_size(tif)  # what PIL (read_image, the windows) decodes: the first page
    big = max(levels, key=lambda s: s[0] * s[1])
    if hw != big:
        raise DataError(tif, f"the first page is {hw[1]} x {hw[0]} px but the largest level is {big[1]} x {big[0]} "
                              "px: the windows are cut from the first page, which must be the full resolution")
    try:
        with warnings.catch_warnings():  # duplicate gene names: refused below, in one line
            warnings.filterwarnings("ignore", message="Variable names are not unique")
            a = ad.read_h5ad(h5)
    except Exception as exc:  # h5py / anndata raise many types for a damaged file
        raise DataError(h5, f"not a readable .h5ad ({type(exc).__name__}: {exc})") from None
    if "spatial" not in a.obsm:
        raise DataError(h5, "no obsm['spatial'] (spot centres in full-resolution pixels)")
    xy = np.asarray(a.obsm["spatial"], dtype=np.float64)
    if xy.ndim != 2 or xy.shape != (a.n_obs, 2):
        raise DataError(h5, f"obsm['spatial'] has shape {xy.shape}, expected ({a.n_obs}, 2)")
    dup = sorted(set(a.var_names[a.var_names.duplicated()].astype(str)))
    if dup:
        raise DataError(h5, f"{len(dup)} gene name(s) appear more than once in var_names: {dup[:5]}"
                            f"{' ...' if len(dup) > 5 else ''} (sum or rename the duplicated genes)")
    ids, st_xy = _spot_ids(a.obs_names)
    if ids.duplicated().any():
        raise DataError(h5, f"duplicate spot ids, e.g. {list(ids[ids.duplicated()][:3])}")
    if "in_tissue" in a.obs:
        flag = a.obs["in_tissue"].astype(str).str.strip().str.lower().map(
            {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False})
        if flag.isna().any():
            raise DataError(h5, f"obs['in_tissue'] has {int(flag.isna().sum())} value(s) that are not true/false "
                                f"or 1/0, e.g. {list(a.obs['in_tissue'][flag.isna()].astype(str)[:3])}")
        keep = flag.to_numpy(dtype=bool)
    else:
        keep = np.ones(a.n_obs, dtype=bool)
    report: dict[str, Any] = {
        "n_spots_listed": int(a.n_obs), "n_count_rows": int(a.n_obs),
        "dropped_not_in_tissue": [str(s) for s in ids[~keep]], "dropped_no_counts": [], "dropped_no_coords": [],
        "spots_format": f"HEST-1k {hid} (st/{hid}.h5ad, obsm['spatial'])",
        "in_tissue_column": "in_tissue" in a.obs,
    }
    if not keep.any():
        raise DataError(h5, f"empty section {section}: none of its {a.n_obs} spots is in_tissue")
    a, ids, xy = a[keep], ids[keep], xy[keep]
    report["n_kept"] = int(a.n_obs)
    require_finite(xy, list(ids), h5, "obsm['spatial'] spot centre")
    check_spots_in_image(xy, hw, h5, ids)
    if st_xy is not None:
        arr = st_xy[keep]
        report["array_coordinates"] = "the spot ids <x>x<y>"
    else:
        for c in ("array_col", "array_row"):
            if c not in a.obs:
                raise DataError(h5, f"no obs[{c!r}] and spot ids that are not '<x>x<y>'")
        arr = np.c_[pd.to_numeric(a.obs["array_col"]), pd.to_numeric(a.obs["array_row"])].astype(int)
        report["array_coordinates"] = "obs array_col, array_row"
    geo_in = {v: float(js[k]) for k, v in REQUIRED_FIELDS.items()}
    given = {k: v for k, v in dict(geometry or {}).items() if k in GEOMETRY_KEYS and v is not None}
    geo_in.update(given)
    geo = section_geometry(xy, **geo_in, where=jsp if "um_per_px" not in given else h5, section=section)
    if "um_per_px" not in given:
        geo["um_per_px_source"] = f"HEST metadata/{hid}.json (pixel_size_um_estimated)"
    declared = image_um_per_px(tif)
    geo.update({"hest_id": hid, "pixel_size_um_embedded": js.get("pixel_size_um_embedded"),
                "st_technology": js.get("st_technology"), "image_levels": [list(s) for s in levels],
                "image_um_per_px_declared": None if declared is None else round(declared[0], 6)})
    obs = pd.DataFrame({"patient": str(meta["patient"]), "subtype": str(meta.get("subtype", "NA")),
                        "array_x": arr[:, 0], "array_y": arr[:, 1],
                        "tumor": pd.array([None] * a.n_obs, dtype=TUMOR_DTYPE), "tumor_label": [None] * a.n_obs,
                        "tumor_source": "none"}, index=ids)
    report["tumor_source"] = "none"
    var = pd.DataFrame(index=pd.Index(a.var_names.astype(str)))
    if "gene_ids" in a.var:
        var["gene_ids"] = a.var["gene_ids"].astype(str).to_numpy()
    counts = SparseCounts(a.X, index=ids, columns=var.index)
    return build_section(counts, obs, xy, section=section, counts_path=h5, image_path=tif, image_hw=hw,
                         image_sha256=image_sha256, geometry=geo, report=report, var=var)


def read_from_manifest(ds: Any, root: Path, sections: Sequence[str]) -> ad.AnnData:
    """The sections of a ``reader: hest`` data set (``ds``: :class:`~stlib.io.registry.Dataset`).

    Sections of different ``subset`` values (e.g. HER2ST and He et al. 2020 in the ``hest``
    manifest) are not read together: their genes are named differently and four patients are in
    both; name one subset (``hest:her2st``).
    """
    subsets = sorted({str(ds.sections[s].get("subset")) for s in sections if ds.sections[s].get("subset")})
    if len(subsets) > 1:
        raise DataError(ds.manifest_path, f"the sections span the subsets {subsets}, which are not read together "
                                          f"(different gene ids; shared patients): load {ds.name}:{subsets[0]} or "
                                          f"{ds.name}:{subsets[1]}")
    base = {k: v for k, v in dict(ds.extra.get("geometry") or {}).items() if k in GEOMETRY_KEYS}
    out = []
    for sec in sections:
        meta = ds.sections[sec]
        geo = {**base, **{k: v for k, v in meta.items() if k in GEOMETRY_KEYS}}
        tif = sample_paths(str(meta.get("hest_id")))[1]
        out.append(read_hest_sample(root, sec, meta, geometry=geo, image_sha256=ds.files.get(tif)))
    return concat_sections(out)
