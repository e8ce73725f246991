"""Reader for He et al. 2020, "Human breast cancer in situ capturing transcriptomics".

Mendeley Data doi:10.17632/29ntw7sh4r.5: one zip whose top folder
``Human breast cancer in situ capturing transcriptomics/`` holds ``metadata.csv`` and four
files per section (68 sections, 23 patients)::

    metadata.csv                      patient, replicate, type, count_matrix, histology_image,
                                      spot_coordinates, tumor_annotation
    HE_<BT|BC><id>_<rep>.jpg          full-resolution H&E
    spots_<BT|BC><id>_<rep>.csv.gz    header ",X,Y"; index "<x>x<y>"; spots under tissue only
    <BC><id>_<rep>_stdata.tsv.gz      spots x Ensembl ids, all ~1,000 array spots
    <BC><id>_<rep>_Coords.tsv.gz      pathologist tumour annotation (CR line endings,
                                      4 header names over 5 data columns)

File names are always taken from ``metadata.csv`` (the ``BT``/``BC`` prefixes are
inconsistent). Section id = ``f"{patient}_{replicate}"``, e.g. ``BC23287_C1``.

The committed split ``data/splits/he2020.tsv`` is the authors' own (recovered from their
notebooks; see its header). Also here, for users who want a fresh draw instead: a seeded,
subtype-stratified, patient-level split of the 23 patients (:func:`stratified_patient_split`,
:func:`write_he2020_split`); neither made the committed file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.io.images import check_jpeg
from stlib.io._common import (
    LEGACY_ST_GEOMETRY,
    TUMOR_DTYPE,
    PathLikeStr,
    build_section,
    check_spots_in_image,
    concat_sections,
    join_counts_and_spots,
    read_table,
    read_text,
    require_columns,
    section_geometry,
)
from stlib.io._common import read_counts as _read_wide_counts
from stlib.io.splits import stratified_patient_split

log = logging.getLogger(__name__)

#: Name of the zip's top folder (the folder that holds ``metadata.csv``).
TOP_FOLDER = "Human breast cancer in situ capturing transcriptomics"
METADATA = "metadata.csv"
METADATA_COLUMNS = [
    "patient",
    "replicate",
    "type",
    "count_matrix",
    "histology_image",
    "spot_coordinates",
    "tumor_annotation",
]
FILE_COLUMNS = ["count_matrix", "histology_image", "spot_coordinates"]

#: The 23 patients and their subtype (HEST-1k metadata; DATA-FORMATS.md).
HE2020_PATIENTS: dict[str, str] = {
    "BC23287": "HER2_luminal",
    "BC23450": "HER2_luminal",
    "BC23901": "HER2_luminal",
    "BC23944": "HER2_luminal",
    "BC24220": "HER2_luminal",
    "BC23567": "HER2_non_luminal",
    "BC23810": "HER2_non_luminal",
    "BC23903": "HER2_non_luminal",
    "BC24044": "HER2_non_luminal",
    "BC24105": "HER2_non_luminal",
    "BC23268": "Luminal_A",
    "BC23269": "Luminal_A",
    "BC23272": "Luminal_A",
    "BC24223": "Luminal_A",
    "BC23270": "Luminal_B",
    "BC23277": "Luminal_B",
    "BC23506": "Luminal_B",
    "BC23508": "Luminal_B",
    "BC23895": "Luminal_B",
    "BC23209": "TNBC",
    "BC23288": "TNBC",
    "BC23377": "TNBC",
    "BC23803": "TNBC",
}

#: He et al. patients that are also HER2ST patients (same person, other sections).
HER2ST_OVERLAP: dict[str, str] = {"BC23567": "E", "BC23810": "F", "BC23903": "G", "BC24044": "H"}

#: Paper's split sizes (train, valid, test) in patients (the authors' split, ``data/splits/he2020.tsv``).
PAPER_SPLIT_SIZES = (13, 5, 5)

_SPOT_ID = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*x\s*(-?\d+(?:\.\d+)?)\s*$")
_TUMOR_LABELS = {"tumor": True, "tumour": True, "non": False}


# ---- locations and metadata ----------------------------------------------------------------
def resolve_root(root: PathLikeStr) -> Path:
    """The folder holding ``metadata.csv``: ``root`` itself or its single child holding it.

    Accepts the zip's top folder (``Human breast cancer in situ capturing transcriptomics/``)
    or the folder the zip was extracted into.
    """
    root = Path(root)
    if (root / METADATA).is_file():
        return root
    if (root / TOP_FOLDER / METADATA).is_file():
        return root / TOP_FOLDER
    children = sorted(p.parent for p in root.glob(f"*/{METADATA}")) if root.is_dir() else []
    if len(children) == 1:
        return children[0]
    raise DataError(
        root / METADATA,
        f"missing file: no {METADATA} here nor in '{TOP_FOLDER}/' (found {len(children)} candidate folders)",
    )


def read_metadata(root: PathLikeStr) -> pd.DataFrame:
    """Read and validate ``metadata.csv``.

    Parameters
    ----------
    root
        The folder holding ``metadata.csv`` or its parent (see :func:`resolve_root`).

    Returns
    -------
    DataFrame indexed by section id ``f"{patient}_{replicate}"`` with the seven metadata
    columns (all ``str``; ``tumor_annotation`` may be ``None``) plus ``section``.

    Raises
    ------
    DataError
        Missing file or columns, empty ids or file names, duplicate section ids.
    """
    base = resolve_root(root)
    path = base / METADATA
    df = read_table(path, sep=",", what="metadata", dtype=str, keep_default_na=False)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    require_columns(df, METADATA_COLUMNS, path, "metadata")
    df = df[METADATA_COLUMNS].apply(lambda s: s.str.strip())
    for col in ["patient", "replicate", "type", *FILE_COLUMNS]:
        empty = (df[col] == "").to_numpy()
        if empty.any():
            rows = [int(i) + 2 for i in np.flatnonzero(empty)[:5]]
            raise DataError(path, f"empty '{col}' on line(s) {rows}")
    df["tumor_annotation"] = df["tumor_annotation"].where(df["tumor_annotation"] != "", None)
    df.insert(0, "section", df["patient"] + "_" + df["replicate"])
    dup = df["section"][df["section"].duplicated()].tolist()
    if dup:
        raise DataError(path, f"duplicate section id(s) (patient_replicate) {dup[:5]}")
    subtypes = df.groupby("patient")["type"].nunique()
    mixed = subtypes[subtypes > 1].index.tolist()
    if mixed:
        raise DataError(path, f"patient(s) {mixed} have more than one 'type' (subtype)")
    return df.set_index("section", drop=False).rename_axis(None)


# ---- low-level parsers ---------------------------------------------------------------------
def parse_spot_ids(ids: pd.Index, path: PathLikeStr, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Array coordinates (rounded to int) from ``"<x>x<y>"`` spot ids.

    Raises :class:`DataError` naming ``path`` for ids of another form.
    """
    xs = np.empty(len(ids), dtype=np.int64)
    ys = np.empty(len(ids), dtype=np.int64)
    bad: list[str] = []
    for i, s in enumerate(ids):
        m = _SPOT_ID.match(str(s))
        if m is None:
            bad.append(str(s))
            continue
        xs[i] = int(np.round(float(m.group(1))))
        ys[i] = int(np.round(float(m.group(2))))
    if bad:
        raise DataError(path, f"{len(bad)} {what} spot id(s) are not '<x>x<y>' array coordinates, e.g. {bad[:3]}")
    return xs, ys


def _spot_keys(x: np.ndarray, y: np.ndarray) -> pd.Index:
    return pd.Index([f"{a}x{b}" for a, b in zip(x, y)])


def read_spots(path: PathLikeStr) -> pd.DataFrame:
    """Read a ``spots_*.csv.gz`` file (header ``,X,Y``; index ``"<x>x<y>"``).

    Returns
    -------
    DataFrame indexed by spot id ``"<x>x<y>"`` (rounded array coordinates) with columns
    ``array_x``, ``array_y`` (int) and ``pixel_x``, ``pixel_y`` (full-resolution column, row).
    """
    df = read_table(path, sep=",", what="spot coordinates", index_col=0)
    df.columns = [str(c).strip() for c in df.columns]
    require_columns(df, ["X", "Y"], path, "spot coordinates")
    x, y = parse_spot_ids(df.index, path, "spot-coordinate")
    try:
        px = pd.to_numeric(df["X"]).to_numpy(dtype=np.float64)
        py = pd.to_numeric(df["Y"]).to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(path, "pixel coordinates X, Y are not numeric") from None
    if not (np.isfinite(px).all() and np.isfinite(py).all()):
        raise DataError(path, "missing or non-finite pixel coordinates X, Y")
    return pd.DataFrame({"array_x": x, "array_y": y, "pixel_x": px, "pixel_y": py}, index=_spot_keys(x, y))


def read_counts(path: PathLikeStr) -> pd.DataFrame:
    """Read a ``*_stdata.tsv.gz`` count matrix (spots x Ensembl ids, index ``"<x>x<y>"``).

    The index is re-keyed to rounded integer array coordinates; values are not yet validated
    (:func:`stlib.io._common.counts_to_sparse` does that for the kept spots).
    """
    df = _read_wide_counts(path, sep="\t", what="counts")
    if df.shape[1] == 0:
        raise DataError(path, "counts table has no gene columns")
    x, y = parse_spot_ids(df.index, path, "counts")
    df.index = _spot_keys(x, y)
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_tumor_annotation(path: PathLikeStr) -> tuple[pd.Series, dict[str, Any]]:
    """Read a ``*_Coords.tsv.gz`` pathologist annotation.

    The file has CR line endings and a header that names 4 columns over 5 data columns:
    ``<rep>_<x>_<y>``, ``xcoord``, ``ycoord``, ``lab`` (``L<n>``) and ``tumor`` / ``non``.
    Fields are therefore read by position; the header line is skipped. ``x, y`` may be
    non-integer: they are rounded (``numpy.round``) and keyed as ``f"{x}x{y}"``.

    Returns
    -------
    labels, info
        ``labels``: the original label string (``None`` if empty) per spot key.
        ``info``: ``n_rows``, ``n_duplicates`` (same key, same label: one kept) and
        ``conflicting`` (same key, different labels: set to ``None``, list of keys).
    """
    text = read_text(path)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2:
        raise DataError(path, "tumour annotation has no data rows")
    keys: list[str] = []
    labels: list[str | None] = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
        if len(fields) < 5:
            raise DataError(path, f"line {lineno}: expected 5 fields (id, x, y, lab, tumor/non), got {len(fields)}: {line!r}")
        try:
            x, y = float(fields[1]), float(fields[2])
        except ValueError:
            raise DataError(path, f"line {lineno}: coordinates {fields[1]!r}, {fields[2]!r} are not numbers") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise DataError(path, f"line {lineno}: non-finite coordinates")
        keys.append(f"{int(np.round(x))}x{int(np.round(y))}")
        labels.append(fields[4] or None)
    s = pd.Series(labels, index=pd.Index(keys), dtype=object)
    info: dict[str, Any] = {"n_rows": len(s), "n_duplicates": 0, "conflicting": []}
    dup = s.index.duplicated(keep=False)
    if dup.any():
        groups = s[dup].groupby(level=0).agg(lambda v: len(set(v)))
        conflicting = sorted(groups[groups > 1].index)
        info["n_duplicates"] = int(s.index.duplicated().sum())
        info["conflicting"] = [str(k) for k in conflicting]
        s = s[~s.index.duplicated()]
        s.loc[conflicting] = None
    return s, info


def label_is_tumor(label: str | None) -> bool | None:
    """``tumor`` -> True, ``non`` -> False, anything else (missing, unexpected) -> None."""
    if label is None:
        return None
    return _TUMOR_LABELS.get(str(label).strip().lower())


# ---- sections ------------------------------------------------------------------------------
def read_he2020_section(
    root: PathLikeStr, row: pd.Series | Mapping[str, Any], *, geometry: Mapping[str, Any] | None = None
) -> ad.AnnData:
    """Read one section described by a row of :func:`read_metadata`.

    Parameters
    ----------
    root
        The folder holding ``metadata.csv`` or its parent.
    row
        One metadata row (``patient``, ``replicate``, ``type`` and the four file names).
    geometry
        ``um_per_px`` (estimated from the spot pitch when absent), ``spot_diameter_um``,
        ``spot_pitch_um`` (default: legacy ST); see :func:`~stlib.io._common.section_geometry`.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR int32; ``var_names`` = Ensembl ids), ``obs``
    columns ``section, spot_id, patient, replicate, subtype, array_x, array_y, tumor,
    tumor_label, tumor_source``, ``obsm["spatial"]`` (full-resolution pixel x, y),
    ``uns["spatial"][section]`` and ``uns["load_report"][section]``.

    Spots of the spots file without a count row are dropped and listed in the load report
    (``dropped_no_counts``); count rows of array spots that are not under tissue (no entry in
    the spots file, ~700 per section, expected) are listed as ``dropped_no_coords``.
    """
    base = resolve_root(root)
    row = dict(row)
    patient, replicate = str(row["patient"]), str(row["replicate"])
    section = f"{patient}_{replicate}"
    cnt_path = base / str(row["count_matrix"])
    spots_path = base / str(row["spot_coordinates"])
    img_path = base / str(row["histology_image"])
    ann_name = row.get("tumor_annotation")

    counts = read_counts(cnt_path)
    spots = read_spots(spots_path)
    n_spot_rows = len(spots)
    counts, spots, report = join_counts_and_spots(
        counts, spots, section=section, counts_path=cnt_path, spots_path=spots_path
    )
    report["n_rows_spots_file"] = int(n_spot_rows)
    hw = check_jpeg(img_path)
    xy = spots[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    check_spots_in_image(xy, hw, spots_path, spots.index)

    if ann_name:
        ann_path = base / str(ann_name)
        labels, info = read_tumor_annotation(ann_path)
        label = labels.reindex(spots.index).astype(object)
        label = label.where(label.notna(), None)
        source = f"pathologist annotation ({ann_path.name})"
        report["annotation_rows"] = info["n_rows"]
        report["annotation_duplicates"] = info["n_duplicates"]
        report["annotation_conflicting"] = info["conflicting"]
        report["annotation_unmatched"] = int((~labels.index.isin(spots.index)).sum())
    else:
        label = pd.Series([None] * len(spots), index=spots.index, dtype=object)
        source = "none"
    tumor = [label_is_tumor(v) if isinstance(v, str) else None for v in label]
    report["n_tumor"] = int(sum(t is True for t in tumor))
    report["n_non_tumor"] = int(sum(t is False for t in tumor))
    report["n_tumor_missing"] = int(sum(t is None for t in tumor))
    report["tumor_source"] = source
    if report["dropped_no_counts"]:
        log.info("%s: %d spot(s) under tissue have no count row: dropped (%s)",
                 section, len(report["dropped_no_counts"]), ", ".join(report["dropped_no_counts"][:5]))

    obs = pd.DataFrame(
        {
            "patient": patient,
            "replicate": replicate,
            "subtype": str(row["type"]),
            "array_x": spots["array_x"].astype(int).to_numpy(),
            "array_y": spots["array_y"].astype(int).to_numpy(),
            "tumor": pd.array(tumor, dtype=TUMOR_DTYPE),
            "tumor_label": label.astype(object).to_numpy(),
            "tumor_source": source,
        },
        index=spots.index,
    )
    return build_section(
        counts,
        obs,
        xy,
        section=section,
        counts_path=cnt_path,
        image_path=img_path,
        image_hw=hw,
        image_sha256=None,
        geometry=section_geometry(xy, **{**LEGACY_ST_GEOMETRY, **dict(geometry or {})}, where=spots_path),
        report=report,
    )


def read_he2020(
    root: PathLikeStr,
    sections: Sequence[str] | None = None,
    *,
    gene_symbols: Mapping[str, str] | None = None,
    geometry: Mapping[str, Any] | None = None,
) -> ad.AnnData:
    """Read several He et al. 2020 sections and concatenate them (gene union, zero-filled).

    Parameters
    ----------
    root
        The folder holding ``metadata.csv`` or its parent.
    sections
        Section ids ``"<patient>_<replicate>"``; default: every section of ``metadata.csv``.
    gene_symbols
        Optional Ensembl id -> symbol mapping. When given, ``var["gene_symbol"]`` holds the
        symbol (``None`` where unmapped). No mapping ships offline, so by default there is no
        such column and ``var_names`` stay Ensembl ids.
    geometry
        As in :func:`read_he2020_section`, for every section.

    Returns
    -------
    AnnData as :func:`read_he2020_section`, concatenated; ``obs["section"]``, ``patient``
    and ``subtype`` are categorical in reading order.
    """
    meta = read_metadata(root)
    secs = list(meta.index) if sections is None else [str(s) for s in sections]
    unknown = [s for s in secs if s not in meta.index]
    if unknown:
        raise DataError(resolve_root(root) / METADATA, f"unknown section(s) {unknown}; known e.g. {list(meta.index[:3])}")
    adata = concat_sections([read_he2020_section(root, meta.loc[s], geometry=geometry) for s in secs])
    adata.obs["replicate"] = adata.obs["replicate"].astype(str)
    if gene_symbols is not None:
        adata.var["gene_symbol"] = pd.Series(
            [gene_symbols.get(g) for g in adata.var_names], index=adata.var_names, dtype=object
        )
    return adata


def write_he2020_split(path: PathLikeStr, seed: int = 0) -> pd.DataFrame:
    """Write to ``path`` a fresh seeded patient-level split of the 23 real patients (``patient,
    subtype, split``; :func:`stlib.io.splits.stratified_patient_split` with the paper's sizes) and
    return it. It is *not* the committed ``data/splits/he2020.tsv`` (the authors' split): point a
    manifest's ``split:`` at it to use it.

    Parameters
    ----------
    path
        The TSV file to write (overwritten); its parent folders are created.
    seed
        Seed of the draw (:func:`~stlib.io.stratified_patient_split`).

    Returns
    -------
    DataFrame
        The split as written: one row per patient, columns ``patient, subtype, split``.
    """
    meta = pd.DataFrame({"patient": list(HE2020_PATIENTS), "subtype": list(HE2020_PATIENTS.values())})
    split = stratified_patient_split(meta, seed=seed, n=PAPER_SPLIT_SIZES)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(path, sep="\t", index=False, lineterminator="\n")
    return split


def discover_sections(root: PathLikeStr) -> dict[str, dict[str, Any]]:
    """Sections of the data set from ``metadata.csv``: ``{section: {patient, subtype, replicate}}``."""
    meta = read_metadata(root)
    return {
        s: {"patient": r["patient"], "subtype": r["type"], "replicate": r["replicate"]}
        for s, r in meta.iterrows()
    }


def read_from_manifest(ds: Any, root: Path, sections: Sequence[str]) -> ad.AnnData:
    """The sections of a registered He et al. 2020 data set (the layout is :func:`read_he2020`'s)."""
    return read_he2020(root, sections, geometry=dict(ds.extra.get("geometry") or {}))
