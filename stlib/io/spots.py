"""Reader for your own spot-based sections: one manifest names every file (``reader: spots``).

A data set in this layout is a folder of files of any names, described by a YAML manifest
(the book's *Data* page shows a worked example)::

    name: my-sections
    reader: spots
    origin: local            # the files are beside the manifest (or a URL to download them from)
    geometry:                # defaults for every section; a section may override each key
      um_per_px: 0.72        # image resolution; estimated from the spot pitch when absent
      spot_diameter_um: 100
      spot_pitch_um: 200
    tumor_labels: [invasive cancer, cancer in situ]   # annotation labels counted as tumour
    unknown_labels: [undetermined]                     # labels counted as missing
    split: split.tsv         # section, patient, split (train / valid / test)
    sections:
      S1:
        patient: P1
        group: HER2+         # the patient's subtype (``subtype`` is accepted too)
        counts: S1/counts.tsv.gz        # spots x genes raw counts (gzip or plain; .csv: commas)
        spots: S1/spots.csv             # spot_id, pixel_x, pixel_y [, array_x, array_y, in_tissue]
        image: S1/he.jpg                # the full-resolution H&E
        annotations: S1/labels.csv      # optional: spot_id, label
    files:                   # optional: sha256 per file (verified when given)
      S1/counts.tsv.gz: 3f2a...

Every file problem is a :class:`~stlib.errors.DataError` naming the file: missing, corrupt or
truncated files, counts without coordinates (an empty join), spot centres that are not
numbers or lie outside the image, an empty section. Spots that are dropped are counted in
``uns["load_report"]``: listed without counts, counts without a listed spot, ``in_tissue``
empty (``dropped_selected_missing``) or 0 (``dropped_not_in_tissue``). Counts must be
non-negative numbers under unique gene names (a blank cell, a negative count or a gene named
twice is a :class:`~stlib.errors.DataError` saying where). A legacy-ST spot table
(``x, y, pixel_x, pixel_y, selected``) is read as is (:data:`LEGACY_CONVERSION`). A declared
``um_per_px`` is checked against the spot pitch (:func:`~stlib.io._common.section_geometry`), and
a section with more than 10% of its spots off its tissue is a :class:`~stlib.errors.DataWarning`
(:func:`~stlib.io.register.check_spots_on_tissue`; ``off_tissue_share`` in the load report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.io._common import (
    LEGACY_ST_GEOMETRY,
    TUMOR_DTYPE,
    build_section,
    check_spots_in_image,
    check_unique,
    concat_sections,
    join_counts_and_spots,
    numeric_column,
    read_counts,
    read_table,
    require_columns,
    require_finite,
    section_geometry,
)
from stlib.io.images import check_jpeg
from stlib.io.register import check_spots_on_tissue

#: The file keys of a section entry; ``annotations`` is optional.
SECTION_FILES = ("counts", "spots", "image", "annotations")
REQUIRED_FILES = ("counts", "spots", "image")
DEFAULT_TUMOR_LABELS = ("tumor", "tumour", "cancer", "invasive cancer", "cancer in situ")
DEFAULT_UNKNOWN_LABELS = ("", "unknown", "undetermined", "nan")
GEOMETRY_KEYS = ("um_per_px", "spot_diameter_um", "spot_pitch_um")


def _sep(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return "," if name.endswith(".csv") else "\t"


def section_files(manifest: Path, sections: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The files of each section entry (``counts``, ``spots``, ``image`` [, ``annotations``]),
    checked: a section without a required file is a :class:`DataError` naming the manifest."""
    out: dict[str, list[str]] = {}
    for sec, meta in sections.items():
        missing = [k for k in REQUIRED_FILES if not meta.get(k)]
        if missing:
            raise DataError(manifest, f"section {sec}: no {', '.join(missing)} file given "
                                      f"(each section names {', '.join(REQUIRED_FILES)} and may name annotations)")
        if not meta.get("patient"):
            raise DataError(manifest, f"section {sec}: no patient given")
        out[sec] = [str(meta[k]) for k in SECTION_FILES if meta.get(k)]
    return out


def read_spot_table(path: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Read a spots file: ``spot_id, pixel_x, pixel_y`` and optional ``array_x, array_y, in_tissue``.

    A legacy-ST spot table (``x, y, pixel_x, pixel_y[, selected]``, as HER2ST's ``*_selection.tsv``
    and STUtility's spot files) is read as is (:data:`LEGACY_CONVERSION`).

    Returns
    -------
    spots, not_in_tissue, flag_missing
        The spots to keep (index = spot id; ``pixel_x, pixel_y`` as float, NaN where a value
        is not a number), and the ids dropped because ``in_tissue`` is 0, or empty / not 0 or 1.
    """
    df = read_table(path, sep=_sep(path), what="spots", dtype={"spot_id": str})
    df.columns = [str(c).strip() for c in df.columns]
    if "spot_id" not in df.columns and set(LEGACY_COLUMNS[:4]) <= set(df.columns):
        df = _from_legacy_st(df, path)
    fmt = str(df.attrs.get("spots_format", "spot_id, pixel_x, pixel_y"))
    require_columns(df, ["spot_id", "pixel_x", "pixel_y"], path, "spots")
    if df["spot_id"].isna().any():
        raise DataError(path, f"{int(df['spot_id'].isna().sum())} row(s) without a spot_id")
    df.index = pd.Index(df["spot_id"].astype(str).str.strip())
    check_unique(df.index, path, "spots")
    for c in ("pixel_x", "pixel_y"):
        df[c] = numeric_column(df, c)
    not_in, no_flag = [], []
    if "in_tissue" in df.columns:
        flag = numeric_column(df, "in_tissue")
        bad = ~np.isin(flag, (0.0, 1.0))
        no_flag = [str(s) for s in df.index[bad]]
        not_in = [str(s) for s in df.index[flag == 0]]
        df = df[flag == 1]
    for c in ("array_x", "array_y"):
        if c in df.columns:
            require_finite(numeric_column(df, c), df.index, path, c)
    df.attrs["spots_format"] = fmt
    return df, not_in, no_flag


#: The legacy-ST spot table (HER2ST's ``*_selection.tsv``, STUtility, the ST spot detector).
LEGACY_COLUMNS = ("x", "y", "pixel_x", "pixel_y", "selected")
#: How :func:`read_spot_table` reads it (kept in ``uns["load_report"][section]["spots_format"]``).
LEGACY_CONVERSION = ("legacy ST spot table (x, y, pixel_x, pixel_y[, selected]): spot_id = '<x>x<y>', "
                     "array_x, array_y = x, y, in_tissue = selected")


def _from_legacy_st(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A legacy-ST spot table as the ``spots`` layout: ``spot_id`` is ``"<x>x<y>"`` (the counts' index in
    HER2ST and STUtility), ``array_x, array_y`` are ``x, y`` and ``in_tissue`` is ``selected``."""
    xy = np.c_[numeric_column(df, "x"), numeric_column(df, "y")]
    bad = ~np.isfinite(xy).all(axis=1) | (np.mod(np.nan_to_num(xy), 1) != 0).any(axis=1)
    if bad.any():
        raise DataError(path, f"legacy ST spot table: {int(bad.sum())} row(s) whose array x, y are not whole "
                              f"numbers (line(s) {[int(i) + 2 for i in np.flatnonzero(bad)[:3]]}); "
                              "the spot id is '<x>x<y>'")
    out = df.copy()
    out.insert(0, "spot_id", [f"{int(a)}x{int(b)}" for a, b in xy])
    out["array_x"], out["array_y"] = xy[:, 0].astype(int), xy[:, 1].astype(int)
    if "selected" in out.columns and "in_tissue" not in out.columns:
        out["in_tissue"] = out["selected"]
    out.attrs["spots_format"] = LEGACY_CONVERSION
    return out


def read_annotations(
    path: Path, spot_ids: pd.Index, tumor_labels: Sequence[str], unknown_labels: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-spot ``tumor`` (True / False / <NA>) and ``tumor_label`` from an annotations file
    (``spot_id, label``); spots it does not name are <NA>, annotated ids that are not spots are counted."""
    df = read_table(path, sep=_sep(path), what="annotations", dtype={"spot_id": str, "label": str})
    df.columns = [str(c).strip() for c in df.columns]
    require_columns(df, ["spot_id", "label"], path, "annotations")
    df.index = pd.Index(df["spot_id"].astype(str).str.strip())
    check_unique(df.index, path, "annotations")
    tumor_set = {s.strip().lower() for s in tumor_labels}
    unknown_set = {s.strip().lower() for s in unknown_labels}
    label = df["label"].reindex(spot_ids)

    def is_tumor(v: Any) -> bool | None:
        if not isinstance(v, str) or v.strip().lower() in unknown_set:
            return None
        return v.strip().lower() in tumor_set

    out = pd.DataFrame({"tumor": pd.array([is_tumor(v) for v in label], dtype=TUMOR_DTYPE),
                        "tumor_label": label.astype(object).where(label.notna(), None).to_numpy()},
                       index=spot_ids)
    return out, {"annotation_rows": int(len(df)), "annotation_unmatched": int((~df.index.isin(spot_ids)).sum())}


def read_spots_section(
    root: Path,
    section: str,
    meta: Mapping[str, Any],
    *,
    geometry: Mapping[str, Any] | None = None,
    tumor_labels: Sequence[str] = DEFAULT_TUMOR_LABELS,
    unknown_labels: Sequence[str] = DEFAULT_UNKNOWN_LABELS,
    image_sha256: str | None = None,
) -> ad.AnnData:
    """Read one section of the ``spots`` layout (``meta``: its manifest entry, paths relative to ``root``).

    Returns
    -------
    AnnData as the other readers: raw counts in ``X``, ``obs`` columns ``section, spot_id,
    patient, subtype, tumor, tumor_label, tumor_source`` (+ ``array_x, array_y`` when given),
    ``obsm["spatial"]``, ``uns["spatial"][section]`` (with the section's resolution and spot
    geometry) and ``uns["load_report"][section]``.
    """
    cnt_path, spots_path, img_path = (root / str(meta[k]) for k in REQUIRED_FILES)
    counts = read_counts(cnt_path, sep=_sep(cnt_path))
    spots, not_in, no_flag = read_spot_table(spots_path)
    fmt = spots.attrs.get("spots_format", "spot_id, pixel_x, pixel_y")
    n_rows = len(spots) + len(not_in) + len(no_flag)
    if spots.empty:
        raise DataError(spots_path, f"empty section {section}: none of its {n_rows} spots has in_tissue = 1 "
                                    f"({len(not_in)} are 0, {len(no_flag)} empty or not 0/1)")
    counts, spots, report = join_counts_and_spots(counts, spots, section=section, counts_path=cnt_path,
                                                  spots_path=spots_path)
    dropped_other = set(not_in) | set(no_flag)
    report["spots_format"] = fmt
    report.update(n_rows_spots_file=int(n_rows), dropped_not_in_tissue=not_in, dropped_selected_missing=no_flag,
                  dropped_no_coords=[s for s in report["dropped_no_coords"] if s not in dropped_other])
    hw = check_jpeg(img_path)
    xy = spots[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    check_spots_in_image(xy, hw, spots_path, spots.index)
    obs = pd.DataFrame({"patient": str(meta["patient"]), "subtype": str(meta.get("group", meta.get("subtype", "NA")))},
                       index=spots.index)
    for c in ("array_x", "array_y"):
        if c in spots.columns:
            obs[c] = numeric_column(spots, c).astype(int)
    if meta.get("annotations"):
        ann_path = root / str(meta["annotations"])
        ann, info = read_annotations(ann_path, spots.index, tumor_labels, unknown_labels)
        report.update(info)
        source = f"annotations ({ann_path.name})"
    else:
        ann = pd.DataFrame({"tumor": pd.array([None] * len(spots), dtype=TUMOR_DTYPE),
                            "tumor_label": [None] * len(spots)}, index=spots.index)
        source = "none"
    obs = obs.join(ann)
    obs["tumor_source"] = source
    report["tumor_source"] = source
    geo = section_geometry(xy, **{**LEGACY_ST_GEOMETRY, **dict(geometry or {})}, where=spots_path, section=section)
    report.update(check_spots_on_tissue(img_path, xy, geo["spot_diameter_fullres"], section=section))
    return build_section(counts, obs, xy, section=section, counts_path=cnt_path, image_path=img_path, image_hw=hw,
                         image_sha256=image_sha256, geometry=geo, report=report)


def manifest_resolutions(ds: Any) -> dict[str, float]:
    """Each section's um/px from the manifest alone, cheaply: declared (``um_per_px`` of the section or
    of ``geometry``), else measured from the pitch of its spots file when that file is already on disk
    (the local origin, the mirror or the download cache; nothing is downloaded, counts and images are
    not read). A section whose spots file is absent or unreadable is left out: reading it says why.

    Parameters
    ----------
    ds
        A ``reader: spots`` data set (:class:`~stlib.io.registry.Dataset`); any other reader gives ``{}``.

    Returns
    -------
    dict
        Section -> micrometres per pixel.
    """
    from stlib.io import fetch

    if getattr(ds, "reader", None) != "spots":
        return {}
    base = {k: v for k, v in dict(ds.extra.get("geometry") or {}).items() if k in GEOMETRY_KEYS}
    roots = []
    for get in (fetch.local_root, fetch.mirror_root, fetch.cache_root):
        try:
            r = get(ds)
        except Exception:  # noqa: BLE001 - a root that cannot be named is one to skip
            r = None
        if r is not None:
            roots.append(Path(r))
    out: dict[str, float] = {}
    for sec, meta in ds.sections.items():
        geo = {**LEGACY_ST_GEOMETRY, **base, **{k: v for k, v in meta.items() if k in GEOMETRY_KEYS}}
        if geo.get("um_per_px") is not None:
            out[str(sec)] = float(geo["um_per_px"])
            continue
        path = next((r / str(meta["spots"]) for r in roots if meta.get("spots") and (r / str(meta["spots"])).is_file()),
                    None)
        if path is None:
            continue
        try:
            spots, _, _ = read_spot_table(path)
            xy = spots[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy) >= 2:
                out[str(sec)] = float(section_geometry(xy, **{**geo, "um_per_px": None}, where=path,
                                                       section=str(sec))["um_per_px"])
        except DataError:
            continue
    return out


def read_from_manifest(ds: Any, root: Path, sections: Sequence[str]) -> ad.AnnData:
    """The sections of a ``reader: spots`` data set (``ds``: :class:`~stlib.io.registry.Dataset`)."""
    base = {k: v for k, v in dict(ds.extra.get("geometry") or {}).items() if k in GEOMETRY_KEYS}
    out = []
    for sec in sections:
        meta = ds.sections[sec]
        geo = {**base, **{k: v for k, v in meta.items() if k in GEOMETRY_KEYS}}
        out.append(read_spots_section(
            root, sec, meta, geometry=geo,
            tumor_labels=ds.extra.get("tumor_labels") or DEFAULT_TUMOR_LABELS,
            unknown_labels=ds.extra.get("unknown_labels") or DEFAULT_UNKNOWN_LABELS,
            image_sha256=ds.files.get(str(meta["image"])),
        ))
    return concat_sections(out)
