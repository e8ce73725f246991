"""Linear models of the targets: OLS, and Lasso / Ridge with a penalty chosen per gene.

Features are standardised with a :class:`~sklearn.preprocessing.StandardScaler` fitted on
the train features only (``scale=False``: raw features, as the authors' code). For Lasso and
Ridge every penalty of the grid is fitted on the train spots (all genes at once), each gene
keeps the penalty with the lowest validation MSE, and its predictions come from that train
fit: the valid targets serve for selection only.

``refit=True`` does what the authors' ``GridSearchCV`` with a predefined train/valid split
did: the chosen penalty is refitted on train + valid, so the valid predictions are
in-sample (a leak, recorded in ``settings["leaks"]``). Their grids are
:data:`PAPER_ALPHAS`. A penalty of 0 is ordinary least squares
(:class:`~sklearn.linear_model.LinearRegression`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib._leaks import RECORDS
from stlib.models._base import ModelResult, check_features, check_matrix, gene_index

KINDS: tuple[str, ...] = ("ols", "lasso", "ridge")
DEFAULT_ALPHAS: dict[str, tuple[float, ...]] = {
    # every third of a decade; at 1 every coefficient of a standardised problem is 0 (a constant)
    "lasso": tuple(float(a) for a in np.logspace(-5, 0, 16)),
    # 0 (OLS), then every half decade up to 10^6, where the fit is the train mean for ~600 spots
    "ridge": (0.0, *(float(a) for a in np.logspace(-2, 6, 17))),
}
"""The book's grids: log-spaced over several decades, so that a choice at an edge means the
data asked for no penalty or for a constant, not that the grid stopped early
(:func:`grid_edges` counts them)."""

PAPER_ALPHAS: dict[str, tuple[float, ...]] = {
    "lasso": (1e-7, 0.001, 0.01, 0.1, 1.0, 1.5, 10.0),
    "ridge": (0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 100.0),
}
"""The authors' grids (lognorm_linear_models / knn_lognorm_linear_models notebooks)."""

__all__ = ["DEFAULT_ALPHAS", "KINDS", "PAPER_ALPHAS", "fit_linear", "grid_edges"]


def _fit_alpha(kind: str, alpha: float, Xs: np.ndarray, Y: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Fit all genes for one penalty; returns ``(coef (n_genes, p), intercept (n_genes,), n_warnings)``."""
    if alpha == 0.0:
        model: LinearRegression | Ridge | Lasso = LinearRegression()
    elif kind == "ridge":
        model = Ridge(alpha=alpha)
    else:
        model = Lasso(alpha=alpha, max_iter=max_iter, random_state=0, selection="cyclic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(Xs, Y)
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # re-emit anything that is not a convergence warning
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    coef = np.asarray(model.coef_, dtype=np.float64).reshape(Y.shape[1], Xs.shape[1])
    return coef, np.asarray(model.intercept_, dtype=np.float64).reshape(Y.shape[1]), n_warn


def fit_linear(
    X: Mapping[str, np.ndarray],
    Y_train: np.ndarray,
    Y_valid: np.ndarray | None = None,
    *,
    kind: str,
    alphas: Sequence[float] | None = None,
    genes: Sequence[str] | None = None,
    name: str | None = None,
    max_iter: int = 10000,
    scale: bool = True,
    refit: bool = False,
) -> ModelResult:
    """Fit a linear model per gene on train and predict every split.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features; needs ``"train"`` (and ``"valid"`` when
        the penalty is selected).
    Y_train, Y_valid
        ``(n_spots, n_genes)`` targets of the train and valid spots. ``Y_valid`` is used only
        to choose the penalty; it may be omitted for ``"ols"`` or a one-value grid.
    kind
        ``"ols"``, ``"lasso"`` or ``"ridge"``.
    alphas
        Penalty grid; default :data:`DEFAULT_ALPHAS` ``[kind]``. 0 means OLS.
    genes
        Gene names (index of ``per_gene``); default ``"0", "1", ...``.
    name
        Model name; default ``kind``.
    max_iter
        Lasso coordinate-descent iteration limit.
    scale
        Standardise features on train (default); ``False`` uses them as they are.
    refit
        Refit the chosen penalty on train + valid (the authors' ``GridSearchCV``; the valid
        predictions are then in-sample, a leak). Ties then go to the smaller penalty, as
        ``GridSearchCV`` ranks them; without refit ties go to the larger penalty.

    Returns
    -------
    :class:`ModelResult` with ``predictions`` for every split of ``X``; ``per_gene`` holds the
    chosen ``alpha`` and, when selecting, ``valid_mse_<alpha>`` for every penalty;
    ``settings`` holds the grid, the number of genes per chosen penalty and the number of
    Lasso convergence warnings per penalty.
    """
    if kind not in KINDS:
        raise DataError("kind", f"unknown kind {kind!r}; expected one of {KINDS}")
    X = check_features(X)
    Ytr = check_matrix(Y_train, "Y_train", n_rows=X["train"].shape[0])
    grid = (0.0,) if kind == "ols" else tuple(DEFAULT_ALPHAS[kind] if alphas is None else alphas)
    grid = tuple(sorted({float(a) for a in grid}))
    if not grid or grid[0] < 0:
        raise DataError("alphas", f"penalties must be a non-empty set of values >= 0, got {grid}")
    select = len(grid) > 1
    if select:
        if Y_valid is None or "valid" not in X:
            raise DataError("Y_valid", f"{len(grid)} penalties to choose from need valid features and targets")
        Yva = check_matrix(Y_valid, "Y_valid", n_rows=X["valid"].shape[0], n_cols=Ytr.shape[1])
    n_genes = Ytr.shape[1]
    index = gene_index(genes, n_genes)

    if scale:
        scaler = StandardScaler().fit(np.asarray(X["train"], dtype=np.float64))
        Xs = {s: scaler.transform(np.asarray(a, dtype=np.float64)) for s, a in X.items()}
    else:
        Xs = {s: np.asarray(a, dtype=np.float64) for s, a in X.items()}
    if refit and not select:
        raise DataError("refit", "refit on train + valid needs a penalty grid to choose from")

    fits = [_fit_alpha(kind, a, Xs["train"], Ytr, max_iter) for a in grid]
    coefs = np.stack([f[0] for f in fits])  # (n_alpha, n_genes, p)
    intercepts = np.stack([f[1] for f in fits])  # (n_alpha, n_genes)

    per_gene = pd.DataFrame(index=index)
    if select:
        valid_mse = np.stack([((Xs["valid"] @ c.T + b - Yva) ** 2).mean(axis=0) for c, b in zip(coefs, intercepts)])
        if refit:  # GridSearchCV: the best rank, ties -> the first candidate (smaller penalty)
            chosen = np.argmin(valid_mse, axis=0)
        else:  # argmin over the reversed grid -> on ties the larger penalty wins
            chosen = len(grid) - 1 - np.argmin(valid_mse[::-1], axis=0)
    else:
        chosen = np.zeros(n_genes, dtype=int)
    genes_idx = np.arange(n_genes)
    if refit:
        Xtv = np.vstack([Xs["train"], Xs["valid"]])
        Ytv = np.vstack([Ytr, Yva])
        coef = np.zeros((n_genes, Xtv.shape[1]))
        intercept = np.zeros(n_genes)
        for k, a in enumerate(grid):
            g = np.flatnonzero(chosen == k)
            if g.size:
                c, b, _ = _fit_alpha(kind, a, Xtv, Ytv[:, g], max_iter)
                coef[g], intercept[g] = c, b
    else:
        coef, intercept = coefs[chosen, genes_idx], intercepts[chosen, genes_idx]
    predictions = {s: x @ coef.T + intercept for s, x in Xs.items()}

    per_gene["alpha"] = np.asarray(grid)[chosen]
    per_gene["n_nonzero"] = (coef != 0).sum(axis=1)
    if select:
        for k, a in enumerate(grid):
            per_gene[f"valid_mse_{a:g}"] = valid_mse[k]

    settings: dict[str, Any] = {
        "kind": kind,
        "alphas": list(grid),
        "selection": (
            ("penalty chosen per gene by minimal valid MSE (ties -> smaller penalty), then refitted on "
             "train + valid (the authors' GridSearchCV)" if refit else
             "penalty chosen per gene by minimal valid MSE (ties -> larger penalty); "
             "predictions from the train fit, no refit on train + valid")
            if select
            else "single penalty, fitted on train"
        ),
        "refit": bool(refit),
        "leaks": [RECORDS["refit"]] if refit else [],
        "n_genes_per_alpha": {f"{a:g}": int((chosen == k).sum()) for k, a in enumerate(grid)},
        "scaler": "StandardScaler fitted on train features only; intercept fitted" if scale else
                  "none: raw features (the authors' code); intercept fitted",
        "n_features": int(Xs["train"].shape[1]),
        "n_genes": n_genes,
    }
    if kind == "lasso":
        settings["max_iter"] = int(max_iter)
        settings["n_convergence_warnings"] = {f"{a:g}": int(f[2]) for a, f in zip(grid, fits)}
    return ModelResult(name=name or kind, predictions=predictions, settings=settings, per_gene=per_gene)


def grid_edges(result: ModelResult) -> dict[str, int]:
    """How many genes chose the lowest or the highest penalty of the grid.

    ``result`` is a fit whose ``settings["alphas"]`` is the grid and ``per_gene["alpha"]`` the
    choice (linear models, the probe). ``constant`` counts genes whose fitted coefficients are
    all zero (Lasso: the prediction is the train mean), where ``per_gene`` says so.

    Parameters
    ----------
    result
        A fit with ``settings["alphas"]`` and ``per_gene["alpha"]`` (and optionally
        ``per_gene["n_nonzero"]``); without them a :class:`~stlib.errors.DataError`.

    Returns
    -------
    dict
        ``"genes"``, ``"grid size"``, ``"at lowest"``, ``"at highest"``, ``"interior"`` (0 for a
        one-value grid) and, with ``n_nonzero``, ``"constant"``: numbers of genes.
    """
    grid = np.asarray(result.settings["alphas"], dtype=float)
    if result.per_gene is None or "alpha" not in result.per_gene or grid.size == 0:
        raise DataError(result.name, "no per-gene penalty choice to count")
    a = result.per_gene["alpha"].to_numpy(dtype=float)
    out = {"genes": int(a.size), "grid size": int(grid.size),
           "at lowest": int(np.isclose(a, grid.min()).sum()), "at highest": int(np.isclose(a, grid.max()).sum())}
    out["interior"] = out["genes"] - out["at lowest"] - out["at highest"] if grid.size > 1 else 0
    if "n_nonzero" in result.per_gene:
        out["constant"] = int((result.per_gene["n_nonzero"].to_numpy() == 0).sum())
    return out
