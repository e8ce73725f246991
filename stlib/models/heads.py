"""Heads on frozen image features, and spatial smoothing of predictions (chapter 15).

Every head here reads one design matrix, built by :func:`image_design` the way the report built
its inputs (the image features' PCA and the PCA of the same features averaged over each spot's
nearest spots, every fit on the train spots), so that feature variants (test-time augmentation,
context windows, stain normalisation, a fine-tuned network) are compared on equal terms.

- :func:`fit_ridge_head`: one ridge for all genes, the penalty with the lowest valid MSE (the
  frozen-feature probe of chapter 14).
- :func:`fit_lowrank_head`: the report's future work, a low-rank expression embedding. Ridge
  predicts the genes, and the prediction is projected onto ``r`` directions of expression space:
  the top principal components of the train targets (``method="pca"``: the same as regressing the
  ``r`` component scores and mapping back), or of the ridge's fitted train values
  (``method="rrr"``: reduced-rank ridge). Rank and penalty are chosen together on valid MSE.
- :func:`spatial_smooth` / :func:`fit_smoothing`: each spot's prediction moved towards the mean
  prediction of its nearest spots in the same section; the number of neighbours and the weight
  are chosen on the valid spots (mean Pearson over genes).

Test spots never enter a choice: the PCA, the scaler, the target components and the ridge see
the train spots; penalties, ranks and smoothing the valid spots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_matrix

__all__ = [
    "HEAD_ALPHAS",
    "LOWRANK_RANKS",
    "SMOOTH_NEIGHBORS",
    "SMOOTH_WEIGHTS",
    "fit_lowrank_head",
    "fit_ridge_head",
    "fit_smoothing",
    "image_design",
    "spatial_smooth",
]

#: Ridge penalties of the heads: 10^-1 ... 10^7, every half decade (chapter 14's grid ran to its top at 10^5).
HEAD_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 7, 17))
#: Ranks of the low-rank head.
LOWRANK_RANKS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Neighbours of the smoothing: the 4 and 8 nearest spots of a square lattice, then wider rings.
SMOOTH_NEIGHBORS: tuple[int, ...] = (4, 8, 12, 24)
#: Weight of the neighbours' mean (0: no smoothing, 1: the neighbours' mean alone).
SMOOTH_WEIGHTS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


def image_design(
    targets: AnnData,
    rep: str = "X_cnn",
    *,
    n_comps: int = 32,
    n_neighbors: int = 15,
    seed: int = 0,
    split_key: str = "split",
    library_key: str = "section",
) -> np.ndarray:
    """``[PCA(rep), PCA(KNN-pooled rep)]``, standardised; PCA and scaler fitted on the train spots.

    ``obsm[rep]`` holds raw per-spot features (e.g. ``X_cnn`` or a variant such as
    ``X_cnn_tta``); the KNN pool averages them over each spot's ``n_neighbors`` nearest spots of
    its section (``obsm["spatial"]``), as :func:`stlib.tl.features.knn_pool` does for chapter 2.
    Returns ``(n_obs, 2 * n_comps)`` float64.

    Parameters
    ----------
    targets
        Spots with ``obsm[rep]``, ``obsm["spatial"]``, ``obs[split_key]`` (train spots needed) and
        ``obs[library_key]``; not modified.
    rep
        The ``obsm`` key of the raw per-spot image features.
    n_comps
        Components of each of the two PCAs.
    n_neighbors
        Spots pooled per spot, the spot itself included (:func:`stlib.tl.features.knn_pool`).
    seed
        Seed of the PCAs.
    split_key
        The ``obs`` column that holds the split.
    library_key
        The ``obs`` column that holds the section (spots are pooled within their section).

    Returns
    -------
    numpy.ndarray
        ``(n_obs, 2 * n_comps)`` float64 design in the order of ``targets``: the PCA of ``rep``,
        then the PCA of its KNN pool, each column standardised with the train spots' mean and
        standard deviation (a constant column is only centred).
    """
    from stlib import get
    from stlib.tl import features

    if rep not in targets.obsm:
        raise DataError("targets", f"no obsm[{rep!r}]")
    masks = get.split_masks(targets, split_key)
    if "train" not in masks:
        raise DataError("targets", "no train spots to fit the PCA and the scaler on")
    a = AnnData(obs=targets.obs[[library_key, split_key]].copy())
    a.obsm[rep] = np.asarray(targets.obsm[rep])
    a.obsm["spatial"] = np.asarray(targets.obsm["spatial"])
    features.pca_fit_transform(a, rep, n_comps=n_comps, fit_on="train", split_key=split_key, key_added="pca", seed=seed)
    features.knn_pool(a, rep, n_neighbors=n_neighbors, key_added="pooled", library_key=library_key)
    features.pca_fit_transform(a, "pooled", n_comps=n_comps, fit_on="train", split_key=split_key, key_added="pooled_pca",
                               seed=seed)
    Z = np.hstack([a.obsm["pca"], a.obsm["pooled_pca"]]).astype(np.float64)
    mu, sd = Z[masks["train"]].mean(0), Z[masks["train"]].std(0)
    sd[sd == 0] = 1.0
    return (Z - mu) / sd


def _check(Z: np.ndarray, Y: np.ndarray, masks: Mapping[str, np.ndarray]) -> None:
    check_matrix(Y, "Y", n_rows=check_matrix(Z, "Z").shape[0])
    for s in ("train", "valid"):
        if s not in masks or not np.asarray(masks[s]).any():
            raise DataError("masks", f"no {s} spots: the head is fitted on train and chosen on valid")


def _ridge_fit(Z: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``B`` (features x genes) and intercept ``b`` of sklearn's ``Ridge(alpha)``."""
    from sklearn.linear_model import Ridge

    r = Ridge(alpha=alpha).fit(Z, Y)
    return np.asarray(r.coef_, np.float64).reshape(Y.shape[1], -1).T, np.asarray(r.intercept_, np.float64)


def _mse(Y: np.ndarray, P: np.ndarray) -> float:
    return float(np.mean((Y - P) ** 2))


def _pearson(Y: np.ndarray, P: np.ndarray) -> float:
    from stlib.metrics import per_gene_metrics

    return float(np.nanmean(per_gene_metrics(Y, P)["pearson"]))


def fit_ridge_head(
    Z: np.ndarray,
    Y: np.ndarray,
    masks: Mapping[str, np.ndarray],
    *,
    alphas: Sequence[float] = HEAD_ALPHAS,
    name: str = "ridge_head",
) -> ModelResult:
    """One ridge for all genes on ``Z``, fitted on train, the penalty with the lowest valid MSE.

    ``settings["grid"]`` gives the valid MSE and mean Pearson of every penalty; ``at_edge`` says
    whether the choice is the grid's first or last penalty.

    Parameters
    ----------
    Z
        ``(n_obs, n_features)`` design, e.g. :func:`image_design`.
    Y
        ``(n_obs, n_genes)`` targets in the rows of ``Z``; only the train and valid rows are read.
    masks
        Split -> ``(n_obs,)`` booleans (:func:`stlib.get.split_masks`); ``"train"`` and ``"valid"``
        must have spots.
    alphas
        Ridge penalties tried, in this order (ties go to the earlier one).
    name
        Name of the returned result.

    Returns
    -------
    ModelResult
        ``predictions`` for every split of ``masks`` (rows in the order of ``Z``) and
        ``settings`` with ``alpha``, ``at_edge``, ``chosen_on`` and ``grid`` (one record per penalty:
        ``alpha``, ``valid mse``, ``valid pearson``).
    """
    Z, Y = np.asarray(Z, np.float64), np.asarray(Y, np.float64)
    _check(Z, Y, masks)
    tr, va = np.asarray(masks["train"]), np.asarray(masks["valid"])
    rows, fits = [], {}
    for a in alphas:
        B, b = _ridge_fit(Z[tr], Y[tr], float(a))
        fits[float(a)] = (B, b)
        P = Z[va] @ B + b
        rows.append({"alpha": float(a), "valid mse": _mse(Y[va], P), "valid pearson": _pearson(Y[va], P)})
    grid = pd.DataFrame(rows)
    k = int(grid["valid mse"].idxmin())
    B, b = fits[float(grid.loc[k, "alpha"])]
    preds = {s: Z[np.asarray(m)] @ B + b for s, m in masks.items()}
    return ModelResult(name=name, predictions=preds, settings={
        "head": "ridge on [image PCA, KNN-pooled image PCA], one penalty for all genes",
        "alpha": float(grid.loc[k, "alpha"]), "at_edge": k in (0, len(grid) - 1),
        "chosen_on": "valid mean squared error", "grid": grid.to_dict("records")})


def fit_lowrank_head(
    Z: np.ndarray,
    Y: np.ndarray,
    masks: Mapping[str, np.ndarray],
    *,
    ranks: Sequence[int] = LOWRANK_RANKS,
    alphas: Sequence[float] = HEAD_ALPHAS,
    method: str = "pca",
    name: str | None = None,
) -> ModelResult:
    """Ridge projected onto ``r`` directions of expression space; ``(r, alpha)`` chosen on valid MSE.

    ``method="pca"``: the top ``r`` principal components of the centred train targets (the
    prediction of their scores, mapped back to the genes). ``"rrr"``: reduced-rank ridge, the
    top ``r`` right singular vectors of the ridge's centred fitted train values. A rank at least
    the number of genes (or of features, for ``"rrr"``) is the full ridge.

    Parameters
    ----------
    Z
        ``(n_obs, n_features)`` design, e.g. :func:`image_design`.
    Y
        ``(n_obs, n_genes)`` targets in the rows of ``Z``; only the train and valid rows are read.
    masks
        Split -> ``(n_obs,)`` booleans; ``"train"`` and ``"valid"`` must have spots.
    ranks
        Ranks tried (positive integers; duplicates dropped, tried in increasing order).
    alphas
        Ridge penalties tried, in this order.
    method
        ``"pca"`` or ``"rrr"`` (else a ``ValueError``).
    name
        Name of the returned result; default ``f"lowrank_{method}"``.

    Returns
    -------
    ModelResult
        ``predictions`` for every split of ``masks`` and ``settings`` with ``method``, ``rank`` (the
        number of directions kept), ``alpha``, ``alpha_at_edge``, ``chosen_on`` and ``grid`` (one
        record per (penalty, rank): ``valid mse``, ``valid pearson``). Ties keep the first pair
        tried.
    """
    if method not in ("pca", "rrr"):
        raise ValueError(f"method must be 'pca' or 'rrr', got {method!r}")
    Z, Y = np.asarray(Z, np.float64), np.asarray(Y, np.float64)
    _check(Z, Y, masks)
    ranks = sorted({int(r) for r in ranks})
    if not ranks or ranks[0] < 1:
        raise ValueError(f"ranks must be positive integers, got {ranks}")
    tr, va = np.asarray(masks["train"]), np.asarray(masks["valid"])
    ym = Y[tr].mean(0)
    V_pca = np.linalg.svd(Y[tr] - ym, full_matrices=False)[2].T  # genes x components
    rows, best = [], None
    for a in alphas:
        B, b = _ridge_fit(Z[tr], Y[tr], float(a))
        if method == "pca":
            V = V_pca
        else:
            F = Z[tr] @ B + b
            V = np.linalg.svd(F - F.mean(0), full_matrices=False)[2].T
        for r in ranks:
            Vr = V[:, :r]
            P = ((Z[va] @ B + b) - ym) @ Vr @ Vr.T + ym
            row = {"alpha": float(a), "rank": int(min(r, Vr.shape[1])), "valid mse": _mse(Y[va], P),
                   "valid pearson": _pearson(Y[va], P)}
            rows.append(row)
            if best is None or row["valid mse"] < best[0]:
                best = (row["valid mse"], float(a), r, B, b, Vr)
    assert best is not None
    _, alpha, r, B, b, Vr = best
    preds = {s: ((Z[np.asarray(m)] @ B + b) - ym) @ Vr @ Vr.T + ym for s, m in masks.items()}
    grid = pd.DataFrame(rows)
    return ModelResult(name=name or f"lowrank_{method}", predictions=preds, settings={
        "head": ("ridge, projected onto the top principal components of the train targets" if method == "pca" else
                 "reduced-rank ridge: projected onto the top singular vectors of the fitted train values"),
        "method": method, "rank": int(Vr.shape[1]), "alpha": alpha,
        "alpha_at_edge": alpha in (float(min(alphas)), float(max(alphas))),
        "chosen_on": "valid mean squared error (rank and penalty together)", "grid": grid.to_dict("records")})


def spatial_smooth(
    P: np.ndarray,
    coords: np.ndarray,
    sections: Sequence[str] | np.ndarray,
    *,
    n_neighbors: int = 8,
    weight: float = 0.5,
) -> np.ndarray:
    """``(1 - weight) * P + weight * (mean of P over each spot's n nearest spots of its section)``.

    The spot itself is not among its neighbours; a section with fewer spots uses all its others.
    ``weight = 0`` returns ``P`` unchanged.

    Parameters
    ----------
    P
        ``(n_spots, n_genes)`` predictions.
    coords
        ``(n_spots, 2)`` spot coordinates, in the rows of ``P``.
    sections
        ``(n_spots,)`` section of each spot; neighbours are taken within a section only.
    n_neighbors
        Neighbours averaged per spot (at least 1).
    weight
        Weight of the neighbours' mean, in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``(n_spots, n_genes)`` float64 smoothed predictions (a copy; a one-spot section is unchanged).
    """
    from stlib.tl.features import knn_indices

    P = np.asarray(P, np.float64)
    coords = np.asarray(coords, np.float64)
    sec = np.asarray(sections).astype(str)
    if P.shape[0] != coords.shape[0] or sec.shape[0] != P.shape[0]:
        raise DataError("P", f"{P.shape[0]} predictions, {coords.shape[0]} coordinates, {sec.shape[0]} sections")
    if not 0 <= weight <= 1 or n_neighbors < 1:
        raise ValueError(f"weight must be in [0, 1] and n_neighbors >= 1, got {weight}, {n_neighbors}")
    if weight == 0:
        return P.copy()
    out = P.copy()
    for s in np.unique(sec):
        idx = np.flatnonzero(sec == s)
        k = min(int(n_neighbors), idx.size - 1)
        if k < 1:
            continue  # a one-spot section has no neighbours
        nb = knn_indices(coords[idx], k, include_self=False)
        out[idx] = (1 - weight) * P[idx] + weight * P[idx][nb].mean(axis=1)
    return out


def fit_smoothing(
    P_valid: np.ndarray,
    Y_valid: np.ndarray,
    coords_valid: np.ndarray,
    sections_valid: Sequence[str] | np.ndarray,
    *,
    neighbors: Sequence[int] = SMOOTH_NEIGHBORS,
    weights: Sequence[float] = SMOOTH_WEIGHTS,
) -> dict[str, Any]:
    """Choose the smoothing (neighbours, weight) with the highest valid mean Pearson over genes.

    Returns ``{"n_neighbors", "weight", "grid"}`` (``grid``: one row per pair). Ties keep the
    lighter smoothing (fewer neighbours, smaller weight): no smoothing wins unless it loses.

    Parameters
    ----------
    P_valid
        ``(n_valid, n_genes)`` predictions of the valid spots.
    Y_valid
        ``(n_valid, n_genes)`` targets of the valid spots.
    coords_valid
        ``(n_valid, 2)`` coordinates of the valid spots.
    sections_valid
        ``(n_valid,)`` section of each valid spot.
    neighbors
        Numbers of neighbours tried (:func:`spatial_smooth`).
    weights
        Weights of the neighbours' mean tried, each in ``[0, 1]``.

    Returns
    -------
    dict
        ``"n_neighbors"`` and ``"weight"`` chosen, and ``"grid"``: a DataFrame with
        ``n_neighbors``, ``weight``, ``valid pearson`` and ``valid mse`` per pair.
    """
    rows = []
    for k in neighbors:
        for w in weights:
            S = spatial_smooth(P_valid, coords_valid, sections_valid, n_neighbors=int(k), weight=float(w))
            rows.append({"n_neighbors": int(k), "weight": float(w), "valid pearson": _pearson(Y_valid, S),
                         "valid mse": _mse(np.asarray(Y_valid, np.float64), S)})
    grid = pd.DataFrame(rows)
    best = grid.sort_values(["valid pearson", "weight", "n_neighbors"], ascending=[False, True, True],
                            kind="stable").iloc[0]
    return {"n_neighbors": int(best["n_neighbors"]), "weight": float(best["weight"]), "grid": grid}
