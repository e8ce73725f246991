"""What every model of the book shares: its result type and the checks of its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stlib.errors import DataError


@dataclass
class ModelResult:
    """Predictions and fitted settings of one model.

    Parameters
    ----------
    name
        Short model id, e.g. ``"ridge"``, ``"nb_apriori"``, ``"mlp"``.
    predictions
        Split -> ``(n_spots, n_genes)`` predictions in target space.
    settings
        Fitted / chosen settings, JSON-serialisable.
    per_gene
        Optional per-gene information (chosen penalty, convergence status, ...), index = gene.
    history
        Optional learning curves, tidy (``config, epoch, loss, val_loss, ...``).
    counts
        Optional predictions in count space (GLMs: the fitted mean).
    """

    name: str
    predictions: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    per_gene: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    counts: dict[str, np.ndarray] | None = None


def check_matrix(a: Any, where: str, *, n_rows: int | None = None, n_cols: int | None = None) -> np.ndarray:
    """``a`` as a finite 2-D float64 array, or a :class:`~stlib.errors.DataError` naming ``where``.

    Parameters
    ----------
    a
        Anything :func:`numpy.asarray` turns into a 2-D array.
    where
        What the array is (``"Y_train"``, ``"X['valid']"``): the error names it.
    n_rows, n_cols
        The shape required, when given.

    Returns
    -------
    numpy.ndarray
        The array, float64.
    """
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise DataError(where, f"expected a 2-D array, got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(where, f"expected {n_rows} rows, got {arr.shape[0]}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise DataError(where, f"expected {n_cols} columns, got {arr.shape[1]}")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise DataError(where, f"{bad} non-finite values (NaN/inf)")
    return arr


def check_features(X: Mapping[str, Any], need: Sequence[str] = ("train",)) -> dict[str, np.ndarray]:
    """Per-split feature matrices, checked: the splits ``need`` present, each finite and 2-D, all
    with the train matrix's number of columns.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features.
    need
        The splits a model cannot do without (``("train", "valid")`` when it chooses on valid).

    Returns
    -------
    dict
        Split -> float64 array, in the order of ``X``.
    """
    missing = [s for s in need if s not in X]
    if missing:
        raise DataError("X", f"no {' or '.join(repr(s) for s in missing)} features (got {sorted(X)})")
    first = "train" if "train" in X else next(iter(X))
    n_cols = check_matrix(X[first], f"X[{first!r}]").shape[1]
    return {s: check_matrix(v, f"X[{s!r}]", n_cols=n_cols) for s, v in X.items()}


def gene_index(genes: Sequence[str] | None, n_genes: int) -> pd.Index:
    """The gene names of ``n_genes`` target columns (``"0", "1", ...`` when none are given).

    Parameters
    ----------
    genes
        The names, or None.
    n_genes
        The number of target columns.

    Returns
    -------
    pandas.Index
        Named ``"gene"``; a :class:`~stlib.errors.DataError` when the counts differ.
    """
    index = pd.Index([str(i) for i in range(n_genes)] if genes is None else list(genes), name="gene")
    if len(index) != n_genes:
        raise DataError("genes", f"{len(index)} gene names for {n_genes} target columns")
    return index
