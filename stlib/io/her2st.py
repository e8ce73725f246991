"""Reader for the HER2ST layout (Andersson et al. 2021, GitHub ``almaan/her2st``).

Layout, relative to the data-set root::

    data/ST-cnts/<SEC>.tsv.gz                    spots x genes raw counts, index "<x>x<y>"
    data/ST-spotfiles/<SEC>_selection.tsv        x y new_x new_y pixel_x pixel_y selected
    data/ST-imgs/<P>/<SEC>/*.jpg                 full-resolution H&E (one per folder)
    data/ST-pat/lbl/<SEC>_labeled_coordinates.tsv  pathologist labels (some sections only)
    res/ST-cluster/lbl/<SEC>-cluster-annotation.tsv.gz  the authors' expression clusters
    res/ST-cluster/motivation.csv                what each cluster was annotated as
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib._utils import sha256_file
from stlib.io.images import check_jpeg
from stlib.io.her2st_app import app_section_inputs, mark_app_section
from stlib.io._common import (
    LEGACY_ST_GEOMETRY,
    TUMOR_DTYPE,
    PathLikeStr,
    build_section,
    check_spots_in_image,
    check_unique,
    concat_sections,
    join_counts_and_spots,
    numeric_column,
    read_counts,
    read_table,
    read_text,
    require_columns,
    require_finite,
    section_geometry,
)

#: Pathologist labels that count as tumour (``undetermined`` is missing, the rest non-tumour).
PATHOLOGIST_TUMOR = frozenset({"invasive cancer", "cancer in situ"})
PATHOLOGIST_UNKNOWN = frozenset({"undetermined", ""})
SOURCE_PATHOLOGIST = "pathologist drawing (data/ST-pat/lbl)"
SOURCE_CLUSTERS = "authors' expression clusters (res/ST-cluster, motivation.csv)"


def parse_motivation(path: PathLikeStr) -> pd.DataFrame:
    """Parse ``res/ST-cluster/motivation.csv``, which is not valid CSV.

    The ``annotated as`` field holds unquoted commas (``immune : APC, B-cell, T-cell``). It
    runs from the third field up to the next field that starts with ``Marker genes``, or up to
    the next empty field, or to the end of the line.

    Parameters
    ----------
    path
        The ``motivation.csv`` file (may be gzipped).

    Returns
    -------
    DataFrame
        Columns ``patient``, ``cluster`` (int), ``annotated_as``, ``tumor``
        (boolean with ``<NA>`` for ``unknown``).
    """
    text = read_text(path)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines or not lines[0].lower().startswith("patient,cluster,annotated as"):
        raise DataError(path, "missing header 'patient,cluster,annotated as,...'")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) < 3:
            raise DataError(path, f"line {lineno}: fewer than 3 fields: {line!r}")
        label_parts: list[str] = []
        for f in fields[2:]:
            if not f.strip() or f.strip().lower().startswith("marker genes"):
                break
            label_parts.append(f)
        label = ",".join(label_parts).strip()
        try:
            cluster = int(fields[1])
        except ValueError:
            raise DataError(path, f"line {lineno}: cluster {fields[1]!r} is not an integer") from None
        rows.append({"patient": fields[0].strip(), "cluster": cluster, "annotated_as": label})
    df = pd.DataFrame(rows)
    if df.duplicated(["patient", "cluster"]).any():
        raise DataError(path, "a (patient, cluster) pair is annotated twice")
    df["tumor"] = pd.array([cluster_label_is_tumor(s) for s in df["annotated_as"]], dtype=TUMOR_DTYPE)
    return df


def cluster_label_is_tumor(label: str) -> bool | None:
    """``cancer*`` -> True, ``unknown`` (or empty) -> None (missing), anything else -> False."""
    s = label.strip().lower()
    if s in ("", "unknown"):
        return None
    return s.startswith("cancer")


def pathologist_label_is_tumor(label: str) -> bool | None:
    """``invasive cancer`` / ``cancer in situ`` -> True, ``undetermined`` -> None, else False."""
    s = str(label).strip().lower()
    if s in PATHOLOGIST_UNKNOWN or s == "nan":
        return None
    return s in PATHOLOGIST_TUMOR


def _spot_key(x: pd.Series, y: pd.Series) -> pd.Index:
    return pd.Index([f"{int(a)}x{int(b)}" for a, b in zip(np.round(x.astype(float)), np.round(y.astype(float)))])


def find_image(root: Path, section: str) -> Path:
    """The single ``.jpg`` in ``data/ST-imgs/<patient>/<section>/``."""
    folder = root / "data" / "ST-imgs" / section[0] / section
    jpgs = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if len(jpgs) != 1:
        raise DataError(folder, f"expected exactly one .jpg H&E image, found {len(jpgs)}")
    return jpgs[0]


def _tumor_annotation(root: Path, section: str, spot_ids: pd.Index) -> tuple[pd.DataFrame, str, dict]:
    """Per-spot tumour annotation: pathologist drawings where they exist, else the authors' clusters."""
    pat = root / "data" / "ST-pat" / "lbl" / f"{section}_labeled_coordinates.tsv"
    if pat.is_file():
        df = read_table(pat, what="pathologist labels")
        require_columns(df, ["x", "y", "label"], pat, "pathologist labels")
        df = df.dropna(subset=["x", "y"])
        df.index = _spot_key(df["x"], df["y"])
        dup = df.index.duplicated(keep=False)
        conflicting = df[dup].groupby(level=0)["label"].nunique()
        conflicting = set(conflicting[conflicting > 1].index)
        df = df[~df.index.duplicated()]
        if conflicting:  # the same spot drawn with two different labels: neither is trusted
            df.loc[list(conflicting), "label"] = None
        info = {"n_duplicate_label_rows": int(dup.sum()), "conflicting_label_spots": sorted(conflicting)}
        label = df["label"].reindex(spot_ids)
        tumor = [pathologist_label_is_tumor(s) if isinstance(s, str) else None for s in label]
        return (
            pd.DataFrame(
                {"tumor": pd.array(tumor, dtype=TUMOR_DTYPE), "tumor_label": label.astype("object").to_numpy()},
                index=spot_ids,
            ),
            SOURCE_PATHOLOGIST,
            info,
        )
    lbl = root / "res" / "ST-cluster" / "lbl" / f"{section}-cluster-annotation.tsv.gz"
    mot = root / "res" / "ST-cluster" / "motivation.csv"
    if not lbl.is_file() or not mot.is_file():
        empty = pd.DataFrame(
            {"tumor": pd.array([None] * len(spot_ids), dtype=TUMOR_DTYPE), "tumor_label": [None] * len(spot_ids)},
            index=spot_ids,
        )
        return empty, "none", {}
    clusters = read_table(lbl, what="cluster annotation", index_col=0)
    require_columns(clusters, ["label", "x", "y"], lbl, "cluster annotation")
    clusters.index = _spot_key(clusters["x"], clusters["y"])
    check_unique(clusters.index, lbl, "cluster annotation")
    motivation = parse_motivation(mot)
    motivation = motivation[motivation["patient"] == section[0]].set_index("cluster")
    cl = clusters["label"].reindex(spot_ids)
    unknown_clusters = set(cl.dropna().astype(int)) - set(motivation.index)
    if unknown_clusters:
        raise DataError(mot, f"no annotation for cluster(s) {sorted(unknown_clusters)} of patient {section[0]}")
    names = [motivation.at[int(c), "annotated_as"] if pd.notna(c) else None for c in cl]
    tumor = [cluster_label_is_tumor(n) if n is not None else None for n in names]
    out = pd.DataFrame(
        {
            "tumor": pd.array(tumor, dtype=TUMOR_DTYPE),
            "tumor_label": names,
            "author_cluster": pd.array([int(c) if pd.notna(c) else None for c in cl], dtype="Int64"),
        },
        index=spot_ids,
    )
    return out, SOURCE_CLUSTERS, {}


def read_her2st_section(
    root: PathLikeStr,
    section: str,
    *,
    patient: str | None = None,
    subtype: str = "HER2+",
    image_sha256: str | None = None,
    geometry: Mapping[str, Any] | None = None,
    image: PathLikeStr | None = None,
    spot_transform: Callable[[np.ndarray, Path, tuple[int, int]], tuple[np.ndarray, dict]] | None = None,
) -> ad.AnnData:
    """Read one HER2ST section.

    Parameters
    ----------
    root
        Data-set root (the folder holding ``data/`` and ``res/``).
    section
        Section id, e.g. ``"C2"``; the patient is its first letter.
    patient
        Patient id for ``obs["patient"]``; default the section's first letter.
    subtype
        Subtype for ``obs["subtype"]``.
    image_sha256
        Known checksum of the image, recorded in ``uns["spatial"][section]["metadata"]``.
    geometry
        ``um_per_px`` (estimated from the spot pitch when absent), ``spot_diameter_um`` and
        ``spot_pitch_um`` (default: legacy ST, 100 and 200 um); see
        :func:`~stlib.io._common.section_geometry`.
    image
        The H&E image to use instead of the one in ``data/ST-imgs/<P>/<section>/`` (e.g. the web
        app's view, :mod:`stlib.io.her2st_app`).
    spot_transform
        ``(xy, image_path, (h, w)) -> (xy, info)``: maps the selection file's pixel coordinates
        onto ``image`` (scaling, registration); ``info`` goes to the load report as ``spot_transform``.

    Returns
    -------
    AnnData
        With raw counts in ``X``, ``obs`` columns ``section, spot_id, patient, subtype,
        array_x, array_y, tumor, tumor_label, tumor_source`` (+ ``author_cluster``),
        ``obsm["spatial"]``, ``uns["spatial"][section]`` and ``uns["load_report"][section]``.
        Spots without counts, or counts without a selected spot, are dropped and counted in the
        load report; rows of the selection file whose ``selected`` flag is empty or not 0/1 are
        dropped and listed as ``dropped_selected_missing`` (not as spots without coordinates). A
        missing or non-numeric coordinate is a :class:`DataError` naming the rows.
    """
    root = Path(root)
    cnt_path = root / "data" / "ST-cnts" / f"{section}.tsv.gz"
    sel_path = root / "data" / "ST-spotfiles" / f"{section}_selection.tsv"
    counts = read_counts(cnt_path)
    counts.index = counts.index.astype(str)
    bad_ids = [s for s in counts.index[:50] if not re.fullmatch(r"\d+x\d+", s)]
    if bad_ids:
        raise DataError(cnt_path, f"spot ids are not '<x>x<y>' array coordinates, e.g. {bad_ids[:3]}")
    sel = read_table(sel_path, what="spot selection")
    require_columns(sel, ["x", "y", "pixel_x", "pixel_y", "selected"], sel_path, "spot selection")
    n_listed = len(sel)
    require_finite(np.c_[numeric_column(sel, "x"), numeric_column(sel, "y")],
                   [f"line {i + 2}" for i in range(len(sel))], sel_path, "array coordinate x / y")
    sel.index = _spot_key(sel["x"], sel["y"])
    flag = numeric_column(sel, "selected")
    no_flag = ~np.isin(flag, (0.0, 1.0))
    missing_flag = [str(s) for s in sel.index[no_flag]]
    sel = sel[flag == 1].copy()
    for c in ("pixel_x", "pixel_y"):  # non-numeric -> NaN -> "outside the image" below
        sel[c] = numeric_column(sel, c)
    counts, sel, report = join_counts_and_spots(
        counts, sel, section=section, counts_path=cnt_path, spots_path=sel_path
    )
    report["n_rows_selection_file"] = int(n_listed)
    report["dropped_selected_missing"] = missing_flag
    report["dropped_no_coords"] = [s for s in report["dropped_no_coords"] if s not in set(missing_flag)]
    img = Path(image) if image is not None else find_image(root, section)
    hw = check_jpeg(img)
    xy = sel[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64)
    if spot_transform is not None:
        xy, report["spot_transform"] = spot_transform(xy, img, hw)
    check_spots_in_image(xy, hw, sel_path, sel.index)
    ann, source, ann_info = _tumor_annotation(root, section, sel.index)
    report.update(ann_info)
    obs = pd.DataFrame(
        {
            "patient": patient or section[0],
            "subtype": subtype,
            "array_x": sel["x"].astype(int).to_numpy(),
            "array_y": sel["y"].astype(int).to_numpy(),
        },
        index=sel.index,
    )
    obs = obs.join(ann)
    obs["tumor_source"] = source
    report["tumor_source"] = source
    return build_section(
        counts,
        obs,
        xy,
        section=section,
        counts_path=cnt_path,
        image_path=img,
        image_hw=hw,
        image_sha256=image_sha256,
        geometry=section_geometry(xy, **{**LEGACY_ST_GEOMETRY, **dict(geometry or {})}, where=sel_path),
        report=report,
    )


def read_her2st(
    root: PathLikeStr,
    sections: Sequence[str],
    *,
    verify_images: bool = False,
    image_sha256: dict[str, str] | None = None,
) -> ad.AnnData:
    """Read several HER2ST sections and concatenate them (gene union, zero-filled).

    ``verify_images`` computes each image's sha256 when none is given.

    Parameters
    ----------
    root
        Data-set root (the folder holding ``data/`` and ``res/``).
    sections
        Section ids, e.g. ``["A1", "B1"]``, each read by :func:`read_her2st_section` with its
        defaults (patient: the first letter; subtype ``"HER2+"``; legacy ST geometry).
    verify_images
        Compute the sha256 of every image without one in ``image_sha256`` (reads each image file).
    image_sha256
        Section -> known image sha256, recorded in ``uns["spatial"][section]["metadata"]``.

    Returns
    -------
    AnnData
        The sections concatenated: the contents of :func:`read_her2st_section`, with
        ``obs["section", "patient", "subtype"]`` categorical and ``varm["in_section"]`` (genes x
        sections, boolean: which genes each section's count file holds).
    """
    root = Path(root)
    out = []
    for sec in sections:
        sha = (image_sha256 or {}).get(sec)
        if sha is None and verify_images:
            sha = sha256_file(find_image(root, sec))
        out.append(read_her2st_section(root, sec, image_sha256=sha))
    return concat_sections(out)


def manifest_geometry(ds: Any, section: str) -> dict[str, Any]:
    """A section's ``um_per_px``, ``spot_diameter_um`` and ``spot_pitch_um`` from a manifest: the
    data set's ``geometry:`` block, overridden by the same keys under the section."""
    keys = ("um_per_px", "spot_diameter_um", "spot_pitch_um")
    out = {k: v for k, v in dict(ds.extra.get("geometry") or {}).items() if k in keys}
    out.update({k: v for k, v in ds.sections.get(section, {}).items() if k in keys})
    return out


def read_from_manifest(ds: Any, root: Path, sections: Sequence[str]) -> ad.AnnData:
    """The sections of a registered HER2ST-layout data set (``ds``: :class:`~stlib.io.registry.Dataset`).

    The layout: ``data/ST-cnts/<section>.tsv.gz``, ``data/ST-spotfiles/<section>_selection.tsv``,
    ``data/ST-imgs/<patient letter>/<section>/*.jpg``; the patient and subtype of each section
    come from the manifest. A section without its image is refused with the manifest's
    ``images_note`` as the reason.
    """
    out = []
    for sec in sections:
        meta = ds.sections[sec]
        if meta.get("app_image"):  # the web app's view of the section (stlib.io.her2st_app)
            kw = app_section_inputs(ds, root, sec, manifest_geometry(ds, sec))
            app = kw.pop("app")
            out.append(mark_app_section(read_her2st_section(root, sec, **kw), sec, app))
            continue
        img = next((f for f in ds.files if f.startswith(f"data/ST-imgs/{sec[0]}/{sec}/")), None)
        folder = root / "data" / "ST-imgs" / sec[0] / sec
        note = ds.extra.get("images_note")
        if img is None and note and not any(folder.glob("*.jpg")):
            raise DataError(folder, f"no H&E image for section {sec}: {' '.join(str(note).split())}")
        out.append(
            read_her2st_section(
                root, sec, patient=str(meta.get("patient", sec[0])), subtype=str(meta.get("subtype", "HER2+")),
                image_sha256=ds.files.get(img) if img else None, geometry=manifest_geometry(ds, sec),
            )
        )
    return concat_sections(out)
