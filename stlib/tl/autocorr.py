"""Spatial autocorrelation of residuals, and the block size of the blocked bootstrap chosen from it.

:func:`moran_correlogram` gives, per lag of whole spot pitches, the gene-averaged Moran's I of
per-spot residuals (squidpy's ``spatial_autocorr`` on a graph of the pairs of spots of one
section whose distance is within half a pitch of the lag; residuals centred per section and
gene, so section offsets are not mistaken for spatial correlation).

:func:`pcc_influence` gives each spot's influence on the mean PCC (its first-order share of
the statistic): the per-spot values whose correlation the bootstrap must respect.

:func:`block_size_from_residuals` applies the rule of :mod:`stlib.tl.blocked`: the block side is
the smallest lag at which that Moran's I falls below ``threshold`` (default
:data:`DEFAULT_THRESHOLD` = 0.05), at least one pitch. Compute it on the residuals of the
training (or validation) split only: the test split must not shape its own interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib.errors import DataError
from stlib.tl.blocked import _coords, _groups, spot_pitch

DEFAULT_THRESHOLD = 0.05
DEFAULT_MAX_LAG = 10

__all__ = ["BlockSize", "DEFAULT_MAX_LAG", "DEFAULT_THRESHOLD", "block_size_from_residuals", "moran_correlogram",
           "pcc_influence"]


def pcc_influence(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per spot, its empirical influence on the mean-over-genes Pearson correlation.

    For one gene with standardised truth ``a`` and prediction ``b`` (over the split's spots) and
    correlation ``r``, spot ``i`` contributes ``a_i b_i - r (a_i^2 + b_i^2) / 2`` (the influence
    function of Pearson's r); the mean over the genes with a correlation is the spot's influence on
    the mean PCC. The statistic is, to first order, the mean of these values over the spots, so
    their spatial autocorrelation is the one a bootstrap of the mean PCC must respect: pass them
    to :func:`block_size_from_residuals` (gene-level residuals count each gene alone and miss what
    the genes share).

    Parameters
    ----------
    y_true, y_pred
        ``(n_spots, n_genes)`` truth and prediction of the TRAIN or VALID split.

    Returns
    -------
    ndarray
        ``(n_spots,)`` influence values (mean zero up to rounding).
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if y.ndim != 2 or p.shape != y.shape:
        raise DataError("y_pred", f"prediction of shape {p.shape} for truth of shape {y.shape}")
    ok = np.all(np.isfinite(p), axis=0) & np.all(np.isfinite(y), axis=0) & (y.std(axis=0) > 0) & (p.std(axis=0) > 0)
    if not ok.any():
        raise DataError("y_pred", "no gene with a correlation (constant or missing predictions or truth)")
    a = (y[:, ok] - y[:, ok].mean(axis=0)) / y[:, ok].std(axis=0)
    b = (p[:, ok] - p[:, ok].mean(axis=0)) / p[:, ok].std(axis=0)
    r = (a * b).mean(axis=0)
    return (a * b - r * (a * a + b * b) / 2).mean(axis=1)


def _band_graphs(c: np.ndarray, g: np.ndarray, pitch: float, lags: np.ndarray) -> list[sp.csr_matrix]:
    """Per lag, the symmetric 0/1 graph of pairs of one section at ``(lag - 1/2, lag + 1/2]`` pitches."""
    from sklearn.neighbors import radius_neighbors_graph

    order = np.argsort(g, kind="stable")
    parts = []
    for lab in pd.unique(g[order]):
        m = c[g == lab]
        parts.append(radius_neighbors_graph(m, (lags.max() + 0.5) * pitch, mode="distance") if len(m) > 1
                     else sp.csr_matrix((1, 1)))
    D = sp.block_diag(parts, format="csr")
    inv = np.argsort(order)
    D = D[inv][:, inv].tocsr()
    out = []
    for k in lags:
        A = D.copy()
        A.data = ((A.data > (k - 0.5) * pitch) & (A.data <= (k + 0.5) * pitch)).astype(np.float64)
        A.eliminate_zeros()
        out.append(A)
    return out


def moran_correlogram(residuals: np.ndarray, coords: np.ndarray, groups: Sequence[str] | np.ndarray | None = None, *,
                      max_lag: int = DEFAULT_MAX_LAG, pitch: float | None = None) -> pd.DataFrame:
    """Gene-averaged Moran's I of residuals at lags of 1 to ``max_lag`` spot pitches.

    Parameters
    ----------
    residuals
        ``(n_spots, n_genes)`` (or ``(n_spots,)``) truth minus prediction, of the training or
        validation split.
    coords
        ``(n_spots, 2)`` spot centres.
    groups
        Section of each spot (``None``: one section); pairs are taken within sections.
    max_lag
        Largest lag, in spot pitches.
    pitch
        Spot pitch in coordinate units (default :func:`stlib.tl.blocked.spot_pitch`).

    Returns
    -------
    DataFrame
        Indexed by ``lag`` (pitches) with ``distance`` (coordinate units), ``moran_i`` (mean over
        genes with varying residuals), ``moran_i_sd`` (its spread over genes) and ``n_pairs``.
    """
    import anndata as ad

    from stlib._compat import import_squidpy

    r = np.asarray(residuals, dtype=np.float64)
    r = r[:, None] if r.ndim == 1 else r
    if r.ndim != 2 or not np.all(np.isfinite(r)):
        raise DataError("residuals", f"expected finite (n_spots, n_genes) residuals, got shape {r.shape}")
    c = _coords(coords, len(r))
    g = _groups(groups, len(r))
    if not isinstance(max_lag, (int, np.integer)) or max_lag < 1:
        raise DataError("max_lag", f"must be a positive integer, got {max_lag!r}")
    pitch = spot_pitch(c, g) if pitch is None else float(pitch)
    if not pitch > 0:
        raise DataError("pitch", f"must be positive, got {pitch!r}")
    r = r - pd.DataFrame(r).groupby(g).transform("mean").to_numpy()
    keep = r.std(axis=0) > 1e-12 * np.maximum(1.0, np.abs(r).max(axis=0))
    if not keep.any():
        raise DataError("residuals", "every gene's residuals are constant within sections")
    sq = import_squidpy()
    adata = ad.AnnData(X=r[:, keep])
    lags = np.arange(1, max_lag + 1)
    rows = []
    for k, A in zip(lags, _band_graphs(c, g, pitch, lags), strict=True):
        n_pairs = int(A.nnz // 2)
        if n_pairs == 0:
            rows.append({"lag": int(k), "distance": k * pitch, "moran_i": np.nan, "moran_i_sd": np.nan, "n_pairs": 0})
            continue
        adata.obsp["band"] = A
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore")
            i = sq.gr.spatial_autocorr(adata, connectivity_key="band", mode="moran", n_perms=None, copy=True,
                                       n_jobs=1, show_progress_bar=False)["I"]
        rows.append({"lag": int(k), "distance": k * pitch, "moran_i": float(i.mean()), "moran_i_sd": float(i.std()),
                     "n_pairs": n_pairs})
    return pd.DataFrame(rows).set_index("lag")


@dataclass
class BlockSize:
    """The block side chosen by :func:`block_size_from_residuals`: ``pitches`` (whole spot
    pitches), ``size`` (coordinate units, for :func:`stlib.tl.blocked.grid_blocks`), ``pitch``,
    the ``correlogram`` it was read from, and the ``rule`` in words.

    Parameters
    ----------
    pitches
        Block side in whole spot pitches, at least 1.
    size
        Block side in coordinate units, ``pitches * pitch``.
    pitch
        Spot pitch in coordinate units.
    correlogram
        The :func:`moran_correlogram` table the side was read from.
    rule
        The rule and the chosen side, in words.
    """

    pitches: int
    size: float
    pitch: float
    correlogram: pd.DataFrame
    rule: str


def block_size_from_residuals(residuals: np.ndarray, coords: np.ndarray,
                              groups: Sequence[str] | np.ndarray | None = None, *,
                              threshold: float = DEFAULT_THRESHOLD, max_lag: int = DEFAULT_MAX_LAG,
                              pitch: float | None = None) -> BlockSize:
    """Block side of the blocked bootstrap from the spatial autocorrelation of residuals.

    Rule: the smallest lag (whole spot pitches, 1 to ``max_lag``) at which the gene-averaged
    Moran's I (:func:`moran_correlogram`) is below ``threshold``; at least 1. If it never falls
    below, ``max_lag`` with a warning (raise ``max_lag``).

    Parameters
    ----------
    residuals, coords, groups, max_lag, pitch
        As :func:`moran_correlogram`, of the TRAIN or VALID split, never test: for the mean PCC
        preferably the ``(n_spots,)`` :func:`pcc_influence` values, else ``(n_spots, n_genes)``
        residuals (then the gene-averaged Moran's I).
    threshold
        Moran's I counted as "about zero".

    Returns
    -------
    :class:`BlockSize`
    """
    if not (isinstance(threshold, (int, float, np.number)) and 0 <= threshold < 1):
        raise DataError("threshold", f"must be a number in [0, 1), got {threshold!r}")
    cg = moran_correlogram(residuals, coords, groups, max_lag=max_lag, pitch=pitch)
    below = cg.index[cg["moran_i"] < threshold]
    if len(below):
        lag = int(below[0])
    else:
        lag = int(max_lag)
        warnings.warn(f"Moran's I of the residuals stays above {threshold} up to {max_lag} pitches; "
                      f"block side set to max_lag={max_lag} (raise max_lag)", RuntimeWarning, stacklevel=2)
    p = float(cg["distance"].iloc[0])  # lag 1 = one pitch
    rule = (f"smallest lag at which the gene-mean Moran's I of the residuals is below {threshold}: "
            f"{lag} pitch(es) = {lag * p:.4g} coordinate units")
    return BlockSize(pitches=lag, size=lag * p, pitch=p, correlogram=cg, rule=rule)
