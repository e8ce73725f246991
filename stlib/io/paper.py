"""Facts from the report being reproduced, as shipped in ``data/``.

The report (Anand, Cooper, Avagyan, "Integrating Histology Imaging and Spatial Transcriptomics
through Low-Dimensional Embeddings to Predict Gene Expression Patterns", Stanford CS229) and
its public notebooks (``savagyan00/ST_GExp_Prediction_CS229``) give three facts this book
uses. Each is a TSV in ``data/`` whose ``#`` header lines give its provenance:

- ``paper_table1.tsv``: Table I exactly as printed (6 models x Train / Valid / Test x PCC,
  SRCC, MSE, MAE, R2), read by :func:`read_paper_table1`;
- ``paper_genes.tsv``: the report's 250 genes in the authors' order, with the penalty their
  grid search chose per gene in the four linear runs, read by :func:`read_paper_genes` and
  :func:`paper_gene_ids`;
- ``splits/he2020.tsv``: the authors' patient split, read through the data-set registry
  (:meth:`stlib.io.registry.Dataset.split`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib._utils import project_data_dir

#: Table I's metric columns, as the file names them -> as the book prints them.
TABLE1_METRICS: dict[str, str] = {"pcc": "PCC", "srcc": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}

#: The penalty columns of ``paper_genes.tsv`` (single-spot and KNN-pooled Ridge / Lasso).
PENALTY_COLUMNS: tuple[str, ...] = ("single_ridge_alpha", "single_lasso_alpha", "knn_ridge_alpha", "knn_lasso_alpha")


def _read_tsv(path: Path, what: str) -> pd.DataFrame:
    """Read a ``#``-commented TSV of ``data/``, turning failures into :class:`DataError`."""
    if not path.is_file():
        raise DataError(path, f"missing file ({what})")
    try:
        return pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"malformed {what} ({exc})") from None


def _to_float(df: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    """Columns parsed as finite floats, or a :class:`DataError` naming the first bad cell."""
    out = df.copy()
    for col in columns:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(path, f"column '{col}', data row {i + 1}: {out[col].iloc[i]!r} is not a finite number")
        out[col] = values.astype(np.float64)
    return out


def read_paper_table1() -> pd.DataFrame:
    """The report's Table I, as printed (``data/paper_table1.tsv``).

    Returns
    -------
    DataFrame
        Indexed by (``model``, ``split``) in the report's row order (``split`` is ``Train``,
        ``Valid`` or ``Test``), with float columns ``PCC, SRCC, MSE, MAE, R2``: the frame
        :func:`stlib.book.tables.paper_table` returns.

    Raises
    ------
    DataError
        Missing file or columns, a missing or non-numeric value, a (model, split) listed twice.
    """
    path = project_data_dir() / "paper_table1.tsv"
    df = _read_tsv(path, "Table I")
    missing = [c for c in ("model", "split", *TABLE1_METRICS) if c not in df.columns]
    if missing:
        raise DataError(path, f"Table I lacks column(s) {missing}")
    df = _to_float(df, list(TABLE1_METRICS), path)
    dup = df[df.duplicated(["model", "split"])][["model", "split"]].values.tolist()
    if dup:
        raise DataError(path, f"(model, split) listed twice: {dup}")
    return df[["model", "split", *TABLE1_METRICS]].rename(columns=TABLE1_METRICS).set_index(["model", "split"])


def read_paper_genes() -> pd.DataFrame:
    """The report's 250 genes and the penalties the authors' grid search chose (``data/paper_genes.tsv``).

    Returns
    -------
    DataFrame
        Indexed by ``rank`` (int, 1 = highest mean expression, the authors' order) with
        columns ``ensembl_id`` (str) and the float penalties ``single_ridge_alpha``,
        ``single_lasso_alpha``, ``knn_ridge_alpha``, ``knn_lasso_alpha`` (single-spot and
        KNN-pooled Ridge / Lasso).

    Raises
    ------
    DataError
        Missing file or columns, a non-numeric rank or penalty, a rank or gene listed twice.
    """
    path = project_data_dir() / "paper_genes.tsv"
    df = _read_tsv(path, "gene list")
    missing = [c for c in ("rank", "ensembl_id", *PENALTY_COLUMNS) if c not in df.columns]
    if missing:
        raise DataError(path, f"gene list lacks column(s) {missing}")
    df = _to_float(df, ["rank", *PENALTY_COLUMNS], path)
    df["rank"] = df["rank"].astype(np.int64)
    df["ensembl_id"] = df["ensembl_id"].str.strip()
    for col in ("rank", "ensembl_id"):
        dup = df[col][df[col].duplicated()].tolist()
        if dup:
            raise DataError(path, f"{col} listed twice: {dup[:5]}")
    return df[["rank", "ensembl_id", *PENALTY_COLUMNS]].set_index("rank").sort_index()


def paper_gene_ids() -> list[str]:
    """The report's 250 genes as Ensembl ids, in the authors' order (rank 1 first).

    Returns
    -------
    list of str
        Ensembl gene ids (``ENSG...``), as in the He et al. 2020 count matrices.
    """
    return read_paper_genes()["ensembl_id"].tolist()
