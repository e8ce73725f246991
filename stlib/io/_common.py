"""Shared pieces of the readers: safe table reading, joining counts with spots, AnnData assembly.

Every function here turns low-level failures (a missing file, a truncated gzip, a malformed
table) into a :class:`~stlib.errors.DataError` that names the file and the problem, and every
spot or gene that is dropped is counted in a load report instead of vanishing.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib.errors import DataError

PathLikeStr = str | PathLike[str]

#: Tumour annotation dtype: True / False / <NA> (missing or "unknown").
TUMOR_DTYPE = "boolean"


def read_text(path: PathLikeStr) -> str:
    """Read a (possibly gzipped) text file completely, with clear errors.

    Line endings are normalised (``\\r\\n`` and lone ``\\r`` become ``\\n``), which the
    He et al. 2020 annotation files need.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "missing file")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(p, f"truncated or corrupt gzip stream ({exc})") from None
    elif p.suffix == ".gz":
        raise DataError(p, "not a gzip file (no gzip magic bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_table(path: PathLikeStr, *, sep: str = "\t", what: str = "table", **kwargs: Any) -> pd.DataFrame:
    """Read a delimited (possibly gzipped) table; failures become :class:`DataError`.

    Parameters
    ----------
    path
        File to read.
    sep
        Field separator.
    what
        What the table is, used in error messages (``"counts"``, ``"spot selection"``, ...).
    **kwargs
        Passed to :func:`pandas.read_csv`.
    """
    text = read_text(path)
    if not text.strip():
        raise DataError(path, f"empty {what} file")
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(path, f"malformed {what}: {exc}") from None
    if df.shape[0] == 0:
        raise DataError(path, f"{what} has no rows")
    return df


def read_counts(path: PathLikeStr, *, sep: str = "\t", what: str = "counts") -> pd.DataFrame:
    """Read a wide spots x genes count table (first column: spot id; header: gene ids).

    Much faster than :func:`pandas.read_csv` for ~15,000 columns: the values go straight into
    one 2-D array. Ragged rows and non-numeric values raise :class:`DataError` with the line.
    """
    text = read_text(path)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2:
        raise DataError(path, f"{what} has no rows")
    header = lines[0].split(sep)
    genes = header[1:] if header[0].strip() in ("", '""') or len(header) > 1 else header
    n = len(genes)
    names = pd.Index([g.strip().strip('"') for g in genes])
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        raise DataError(path, f"{len(dup)} gene name(s) appear more than once in the header: {dup[:5]}"
                              f"{' ...' if len(dup) > 5 else ''} (sum or rename the duplicated columns)")
    ids, rows = [], []
    for lineno, ln in enumerate(lines[1:], start=2):
        fields = ln.split(sep)
        if len(fields) != n + 1:
            raise DataError(path, f"line {lineno}: {len(fields) - 1} values for {n} genes (truncated or ragged {what})")
        ids.append(fields[0].strip('"'))
        rows.append(fields[1:])
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        raise DataError(path, _first_bad_cell(rows, ids, names, what)) from None
    return pd.DataFrame(values, index=pd.Index(ids), columns=names)


def _first_bad_cell(rows: list[list[str]], ids: list[str], genes: pd.Index, what: str) -> str:
    """The problem of a count table that is not all numbers: how many cells are blank or not numbers,
    and the first one by line (the header is line 1), spot and gene."""
    n_blank = n_text = 0
    first = ""
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            t = v.strip().strip('"')
            try:
                float(t)
                continue
            except ValueError:
                pass
            if t == "":
                n_blank += 1
            else:
                n_text += 1
            if not first:
                first = (f"line {i + 2} (spot {ids[i]}), column {j + 2} (gene {genes[j]}): "
                         + ("blank" if t == "" else f"{t[:20]!r} is not a number"))
    kinds = [f"{n_blank} blank cell(s)"] * bool(n_blank) + [f"{n_text} non-numeric cell(s)"] * bool(n_text)
    return f"{what} have {' and '.join(kinds)}; first at {first}"



def require_columns(df: pd.DataFrame, columns: list[str], path: PathLikeStr, what: str) -> None:
    """Raise a :class:`DataError` if ``df`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, f"{what} lacks column(s) {missing}; found {list(df.columns)[:10]}")


def check_unique(index: pd.Index, path: PathLikeStr, what: str) -> None:
    """Raise a :class:`DataError` naming duplicated spot ids."""
    dup = index[index.duplicated()]
    if len(dup):
        raise DataError(path, f"{len(dup)} duplicate spot id(s) in {what}, e.g. {list(dup[:5])}")


def join_counts_and_spots(
    counts: pd.DataFrame,
    spots: pd.DataFrame,
    *,
    section: str,
    counts_path: PathLikeStr,
    spots_path: PathLikeStr,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Keep the spots that have both counts and coordinates; count the rest.

    Parameters
    ----------
    counts
        Spots x genes counts, index = spot id ``"<x>x<y>"``.
    spots
        Spot table, index = spot id, with at least ``pixel_x``, ``pixel_y``.

    Returns
    -------
    counts, spots, report
        Both tables restricted to the common spots in the order of ``spots``, and a report
        with ``n_spots_listed``, ``n_count_rows``, ``n_kept``, ``dropped_no_counts``,
        ``dropped_no_coords`` (lists of spot ids).
    """
    check_unique(counts.index, counts_path, "counts")
    check_unique(spots.index, spots_path, "spot coordinates")
    common = spots.index[spots.index.isin(counts.index)]
    no_counts = spots.index[~spots.index.isin(counts.index)]
    no_coords = counts.index[~counts.index.isin(spots.index)]
    if len(common) == 0:
        raise DataError(
            counts_path,
            f"empty section {section}: none of the {len(spots)} spots of {Path(spots_path).name} has a counts row",
        )
    report = {
        "n_spots_listed": int(len(spots)),
        "n_count_rows": int(len(counts)),
        "n_kept": int(len(common)),
        "dropped_no_counts": [str(s) for s in no_counts],
        "dropped_no_coords": [str(s) for s in no_coords],
    }
    return counts.loc[common], spots.loc[common], report


class SparseCounts:
    """A spots x genes sparse count matrix with its spot ids (``index``) and gene names (``columns``):
    what :func:`build_section` takes instead of a DataFrame when a reader gets sparse counts (Visium)."""

    def __init__(self, X: Any, index: pd.Index, columns: pd.Index) -> None:
        self.X = sp.csr_matrix(X)
        self.index, self.columns = pd.Index(index), pd.Index(columns)
        self.shape = self.X.shape


def counts_to_sparse(counts: pd.DataFrame | SparseCounts, path: PathLikeStr) -> sp.csr_matrix:
    """Validate raw counts (finite, non-negative integers) and return them as CSR int32."""
    if isinstance(counts, SparseCounts):
        X = counts.X.copy()
        X.sum_duplicates()
        v = X.data
        if not np.all(np.isfinite(v)):
            raise DataError(path, "counts contain missing or non-finite values")
        if (v < 0).any():
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            k = int(np.flatnonzero(v < 0)[0])
            raise DataError(path, f"{int((v < 0).sum())} negative count(s) (raw counts are >= 0), e.g. spot "
                                  f"{counts.index[rows[k]]}, gene {counts.columns[X.indices[k]]}: {v[k]:g}")
        if not np.all(np.equal(np.mod(v, 1), 0)):
            raise DataError(path, "counts are not integers (raw counts expected)")
        return sp.csr_matrix(X.astype(np.int32))
    values = counts.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        try:
            values = values.astype(np.float64)
        except ValueError:
            raise DataError(path, "counts contain non-numeric values") from None
    if not np.all(np.isfinite(values)):
        raise DataError(path, "counts contain missing or non-finite values")
    if (values < 0).any():
        i, j = (int(k[0]) for k in np.nonzero(values < 0))
        raise DataError(path, f"{int((values < 0).sum())} negative count(s) (raw counts are >= 0), e.g. spot "
                              f"{counts.index[i]}, gene {counts.columns[j]}: {values[i, j]:g}")
    if not np.all(np.equal(np.mod(values, 1), 0)):
        raise DataError(path, "counts are not integers (raw counts expected)")
    return sp.csr_matrix(values.astype(np.int32))


def numeric_column(df: pd.DataFrame, column: str) -> np.ndarray:
    """``df[column]`` as float64; a value that is not a number becomes NaN (non-numeric text
    included), so that :func:`check_spots_in_image` reports it instead of pandas failing."""
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)


def require_finite(values: np.ndarray, ids: pd.Index | list[str], path: PathLikeStr, what: str) -> None:
    """Raise a :class:`DataError` naming the rows whose ``values`` are missing, non-numeric or infinite."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return
    bad = ~np.isfinite(v).reshape(len(v), -1).all(axis=1)
    if bad.any():
        ex = [str(i) for i in np.asarray(ids, dtype=object)[bad][:3]]
        raise DataError(path, f"{int(bad.sum())} row(s) with a missing, non-numeric or infinite {what}, e.g. {ex}")


def check_spots_in_image(xy: np.ndarray, image_shape: tuple[int, int], path: PathLikeStr, ids: pd.Index) -> None:
    """Raise a :class:`DataError` if any spot centre lies outside the image.

    ``xy`` holds (column, row) full-resolution pixels; ``image_shape`` is (height, width). A
    missing, non-numeric or infinite coordinate is treated as outside the image.

    Parameters
    ----------
    xy
        ``(n, 2)`` spot centres ``(x, y)``; rounded to the nearest pixel (``.5`` up) before the
        check, as :func:`stlib.im.extract_windows` rounds them.
    image_shape
        ``(height, width)`` of the image in pixels.
    path
        The file named in the error (e.g. the spot table).
    ids
        Spot ids aligned with ``xy``; the error names the first three outside the image.
    """
    h, w = image_shape
    xy = np.asarray(xy, dtype=np.float64)
    finite = np.isfinite(xy).all(axis=1)
    with np.errstate(invalid="ignore"):
        r = np.floor(xy + 0.5)  # the windows are centred on the nearest pixel (stlib.im)
        bad = ~finite | (r[:, 0] < 0) | (r[:, 0] >= w) | (r[:, 1] < 0) | (r[:, 1] >= h)
    if bad.any():
        ex = [f"{i} at ({x:.0f}, {y:.0f})" for i, (x, y) in zip(ids[bad][:3], xy[bad][:3])]
        n_nan = int((~finite).sum())
        why = f" ({n_nan} not a finite number)" if n_nan else ""
        raise DataError(path, f"{int(bad.sum())} spot centre(s) outside the {w} x {h} px image{why}, e.g. {ex}")


#: Legacy Spatial Transcriptomics 1k arrays (HER2ST, He et al. 2020): 100 um spots on a 200 um
#: centre-to-centre pitch, the readers' default. The 2k arrays stagger their rows: about 141 um to
#: the nearest spot (give ``spot_pitch_um``); Visium: 55 um spots, 100 um.
LEGACY_ST_GEOMETRY = {"spot_diameter_um": 100.0, "spot_pitch_um": 200.0}
#: A declared ``um_per_px`` may differ from the one measured from the spot pitch by at most this share.
UM_PER_PX_TOLERANCE = 0.15
#: An image's resolution may differ from the training images' by at most this factor: the CNN's
#: window is resampled to the network's input, and beyond 4x the tissue looks unlike anything it
#: saw (:func:`stlib.predictor.resolve_resolution`, chapter 14; checked by :func:`stlib.io.check_design`).
MAX_RESOLUTION_RATIO = 4.0


def section_geometry(
    xy: np.ndarray,
    *,
    um_per_px: float | None = None,
    spot_diameter_um: float = 100.0,
    spot_pitch_um: float = 200.0,
    where: PathLikeStr = "section",
    section: str | None = None,
) -> dict[str, Any]:
    """Physical scale of one section: micrometres per image pixel and the spot size in pixels.

    ``um_per_px`` is taken as given (a manifest's ``um_per_px``) or, when ``None``, estimated
    from the spot centres: the median distance to the nearest spot is one ``spot_pitch_um``.
    A given ``um_per_px`` is checked against that measure (with at least 2 spots): a difference
    beyond :data:`UM_PER_PX_TOLERANCE` (15%) is a :class:`DataError` naming the section and both
    values (a wrong ``um_per_px``, or a ``spot_pitch_um`` of another array).

    Parameters
    ----------
    xy
        ``(n, 2)`` spot centres in full-resolution pixels.
    um_per_px
        Declared resolution in micrometres per pixel, or ``None`` to estimate it from the pitch
        (then at least 2 spots are needed).
    spot_diameter_um
        Spot diameter in um (default: legacy ST, 100).
    spot_pitch_um
        Centre-to-centre distance of neighbouring spots in um (default: legacy ST, 200).
    where
        The file or section named in errors.
    section
        Section id named in the error of a declared ``um_per_px`` that disagrees with the pitch.

    Returns
    -------
    dict
        ``{"um_per_px", "um_per_px_source" ("manifest" or "spot pitch"), "spot_diameter_um",
        "spot_pitch_um", "spot_diameter_fullres"}`` (the last in full-resolution pixels), and
        ``um_per_px_measured`` when ``um_per_px`` was given.
    """
    from sklearn.neighbors import NearestNeighbors

    for name, v in (("spot_diameter_um", spot_diameter_um), ("spot_pitch_um", spot_pitch_um)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise DataError(where, f"{name} must be a positive number, got {v!r}")
    source = "manifest"
    if um_per_px is None:
        if len(xy) < 2:
            raise DataError(where, "one spot: the resolution cannot be estimated from the spot pitch; "
                                   "give um_per_px in the manifest")
        d, _ = NearestNeighbors(n_neighbors=2).fit(xy).kneighbors(xy)
        pitch_px = float(np.median(d[:, 1]))
        if pitch_px <= 0:
            raise DataError(where, "spot centres coincide: the resolution cannot be estimated; give um_per_px")
        um_per_px, source = spot_pitch_um / pitch_px, "spot pitch"
    elif not (isinstance(um_per_px, (int, float)) and np.isfinite(um_per_px) and um_per_px > 0):
        raise DataError(where, f"um_per_px must be a positive number, got {um_per_px!r}")
    measured: dict[str, float] = {}
    if source == "manifest" and len(xy) >= 2:
        d, _ = NearestNeighbors(n_neighbors=2).fit(xy).kneighbors(xy)
        pitch_px = float(np.median(d[:, 1]))
        if pitch_px > 0:
            m = spot_pitch_um / pitch_px
            measured["um_per_px_measured"] = round(m, 4)
            if abs(float(um_per_px) / m - 1) > UM_PER_PX_TOLERANCE:
                raise DataError(where, f"{'section ' + section + ': ' if section else ''}um_per_px {float(um_per_px):g} "
                                       f"is declared, but the spots' {spot_pitch_um:g} um pitch ({pitch_px:.1f} px) "
                                       f"measures {m:.3g} um/px, {abs(float(um_per_px) / m - 1):.0%} apart (tolerance "
                                       f"{UM_PER_PX_TOLERANCE:.0%}): fix um_per_px, or spot_pitch_um if the array is "
                                       "not legacy ST (2k arrays ~141 um, Visium 100 um)")
    return {
        "um_per_px": float(um_per_px),
        "um_per_px_source": source,
        "spot_diameter_um": float(spot_diameter_um),
        "spot_pitch_um": float(spot_pitch_um),
        "spot_diameter_fullres": float(spot_diameter_um / um_per_px),
        **measured,
    }


def build_section(
    counts: pd.DataFrame | SparseCounts,
    obs: pd.DataFrame,
    xy: np.ndarray,
    *,
    section: str,
    counts_path: PathLikeStr,
    image_path: PathLikeStr,
    image_hw: tuple[int, int],
    image_sha256: str | None,
    geometry: Mapping[str, Any],
    report: Mapping[str, Any],
    var: pd.DataFrame | None = None,
) -> ad.AnnData:
    """Assemble one section as AnnData in scanpy/squidpy conventions.

    Writes ``X`` (raw counts, CSR int32), ``obs`` (given columns plus ``section``),
    ``obsm["spatial"]`` (full-resolution pixel x, y), ``uns["spatial"][section]`` (image
    location and scale factors, no pixels; ``metadata`` also holds the section's
    :func:`section_geometry`: ``um_per_px``, its source, spot diameter and pitch in um) and
    ``uns["load_report"][section]``.
    """
    X = counts_to_sparse(counts, counts_path)
    obs = obs.copy()
    obs.index = [f"{section}_{s}" for s in counts.index]
    obs.insert(0, "spot_id", list(counts.index.astype(str)))
    obs.insert(0, "section", section)
    if var is None:
        var = pd.DataFrame(index=pd.Index(counts.columns.astype(str), name=None))
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm["spatial"] = np.asarray(xy, dtype=np.float64)
    h, w = image_hw
    adata.uns["spatial"] = {
        section: {
            "images": {},
            "scalefactors": {
                "spot_diameter_fullres": float(geometry["spot_diameter_fullres"]),
                "tissue_hires_scalef": 1.0,
            },
            "metadata": {
                "image_path": str(image_path),
                "image_sha256": image_sha256,
                "image_shape": [int(h), int(w)],
                **{k: v for k, v in geometry.items() if k != "spot_diameter_fullres"},
            },
        }
    }
    adata.uns["load_report"] = {section: {**dict(report), "n_genes_file": int(counts.shape[1])}}
    return adata


def concat_sections(sections: list[ad.AnnData]) -> ad.AnnData:
    """Concatenate sections: the gene union, zero-filled where a section lacks a gene.

    ``varm["in_section"]`` (genes x sections, boolean) says which genes each section's file held.

    ``uns["spatial"]`` and ``uns["load_report"]`` are merged per section; ``var`` columns
    (e.g. gene symbols) are kept where they agree.
    """
    if not sections:
        raise DataError("<sections>", "no section to load")
    names = [str(a.obs["section"].iloc[0]) for a in sections]
    if len(set(names)) != len(names):
        raise DataError("<sections>", f"duplicate section ids {names}")
    out = ad.concat(sections, join="outer", fill_value=0, merge="same", uns_merge=None)
    out.X = sp.csr_matrix(out.X).astype(np.int32)
    # which genes each section's count file holds (zero-filled genes are not "present"):
    # the authors' gene rule uses the genes common to all sections
    out.varm["in_section"] = pd.DataFrame({n: out.var_names.isin(a.var_names) for n, a in zip(names, sections)},
                                          index=out.var_names)
    out.uns["spatial"] = {k: v for a in sections for k, v in a.uns["spatial"].items()}
    out.uns["load_report"] = {k: v for a in sections for k, v in a.uns["load_report"].items()}
    for col in ("section", "patient", "subtype"):
        if col in out.obs:
            out.obs[col] = pd.Categorical(out.obs[col].astype(str), categories=list(dict.fromkeys(out.obs[col].astype(str))))
    if "tumor" in out.obs:
        out.obs["tumor"] = out.obs["tumor"].astype(TUMOR_DTYPE)
    for col in out.obs.columns:  # a text column with no value at all (no section annotated) cannot be
        # written to .h5ad as objects: store it as an empty categorical (every value missing)
        if out.obs[col].dtype == object and out.obs[col].isna().all():
            out.obs[col] = pd.Categorical(out.obs[col])
    return out
