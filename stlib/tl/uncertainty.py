"""Bootstrap intervals for mean-over-genes scores, and for the fraction of the noise ceiling.

Every number of Table I is a mean over genes of a per-gene correlation computed over the
spots of a split. Its uncertainty comes from *which spots and sections* were measured, so
the bootstrap resamples them:

- a split with one section (the demo's test split): spots with replacement;
- a split with several sections: whole sections with replacement, then the spots of each
  drawn section with replacement (a two-level bootstrap; with two or three sections its
  section level is crude: half the replicates of a two-section split draw one section twice).

Percentile intervals of correlations over heavy-tailed counts are not centred on the point
estimate (the mean of per-gene Pearson correlations is skewed over resamples); the book
reports the point estimate and the percentile interval as they are.

A replicate is a vector of multiplicities ``w`` over the split's spots; a correlation over
the resampled spots is the ``w``-weighted correlation, so all replicates of all models are
computed with matrix products (``W @ X``), exactly as if the rows had been copied.

Statistics per model and replicate (percentile intervals at ``level``):

``pcc``
    Mean over genes of the Pearson correlation, genes without one (constant or missing
    prediction) skipped: the convention of Table I (:mod:`stlib.metrics`).
``ceiling``
    Mean over genes of the noise ceiling (:mod:`stlib.tl.ceiling`) over the same resampled
    spots: the thinned copies are resampled with the targets, so the ceiling's own
    sampling error is in the interval.
``fraction``
    ``sum_g pcc_g / sum_g ceiling_g`` over the genes with a ceiling, where a gene the model
    predicts as a constant (or failed to fit) counts as ``pcc_g = 0``: a model cannot raise
    its fraction by giving up on genes. This is the share of the reachable correlation a
    model reaches.
``srcc``, ``mse``, ``mae``, ``r2``
    The other means over genes of Table I, each with the conventions of :mod:`stlib.metrics`
    (Spearman over average ranks of the resampled spots, ties shared; ``r2`` NaN for a gene
    whose truth is constant over the resampled spots; a failed gene NaN for every metric).

Two models are called different only when the paired interval of their difference (the
same replicates for both, :meth:`Bootstrap.difference`) excludes zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from stlib.tl.ceiling import ThinnedTargets, extrapolate_reliability, spearman_brown
from stlib.errors import DataError
from stlib.tl._seeds import seed_mean, seed_multiplicities, seed_stack

STATS: tuple[str, ...] = ("pcc", "ceiling", "fraction", "srcc", "mse", "mae", "r2")
DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.95
#: Interval methods of :func:`interval_from_replicates`.
METHODS: tuple[str, ...] = ("percentile", "basic", "bca")

__all__ = ["Bootstrap", "DEFAULT_LEVEL", "DEFAULT_N_BOOT", "METHODS", "STATS", "bootstrap_scores", "bootstrap_weights",
           "constant_as_zero", "interval_from_replicates", "per_gene_intervals", "seed_mean", "seed_multiplicities", "seed_stack",
           "weighted_moments", "weighted_pearson", "weighted_ranks"]


def bootstrap_weights(groups: Sequence[str] | np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Multiplicities of the spots in ``n_boot`` bootstrap replicates, ``(n_boot, n_spots)``.

    ``groups`` gives each spot's section. With one section, spots are drawn with
    replacement; with several, sections first (with replacement), then the spots of each
    drawn section. The result is a function of ``(groups, n_boot, seed)`` only, so models
    scored with the same arguments share their replicates (paired comparisons).

    Parameters
    ----------
    groups
        ``(n_spots,)`` section label of each spot.
    n_boot
        Number of replicates, at least 1.
    seed
        Seed of the resampling.

    Returns
    -------
    numpy.ndarray
        ``(n_boot, n_spots)`` float64: how many times each spot is drawn in each replicate.

    Raises
    ------
    DataError
        ``groups`` empty or not one-dimensional.
    ValueError
        ``n_boot < 1``.
    """
    g = np.asarray(groups).astype(str)
    if g.ndim != 1 or len(g) == 0:
        raise DataError("groups", f"needs one section label per spot, got shape {g.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    labels = pd.unique(g)
    members = [np.flatnonzero(g == lab) for lab in labels]
    rng = np.random.default_rng(seed)
    W = np.zeros((n_boot, len(g)), dtype=np.float64)
    for b in range(n_boot):
        chosen = rng.integers(len(labels), size=len(labels)) if len(labels) > 1 else np.zeros(1, dtype=int)
        for i in chosen:
            m = members[i]
            W[b] += np.bincount(m[rng.integers(len(m), size=len(m))], minlength=len(g))
    return W


def weighted_moments(W: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total weight ``(n_rep, 1)``, weighted means and variances ``(n_rep, n_genes)`` of the
    columns of ``x`` under each row of ``W``: what :func:`weighted_pearson` and the error
    statistics need of the truth, computed once for every model scored against it.

    Parameters
    ----------
    W
        ``(n_rep, n_spots)`` weights, e.g. :func:`bootstrap_weights`; a row of ones gives the
        moments over the spots as measured.
    x
        ``(n_spots, n_genes)`` values.

    Returns
    -------
    (s, mean, var)
        ``s``: ``(n_rep, 1)`` total weight of each row; ``mean`` and ``var``: ``(n_rep, n_genes)``
        weighted means and variances (divisor ``s``).
    """
    s = W.sum(axis=1, keepdims=True)
    mx = (W @ x) / s
    return s, mx, (W @ (x * x)) / s - mx * mx


def weighted_pearson(W: np.ndarray, x: np.ndarray, y: np.ndarray,
                     x_moments: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                     y_moments: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Column-wise Pearson correlation of ``x`` and ``y`` under each row of weights ``W``.

    ``W`` is ``(n_rep, n)``, ``x`` and ``y`` are ``(n, n_genes)``; returns ``(n_rep, n_genes)``.
    A column that is constant over the weighted spots (variance within rounding of zero)
    or holds NaN gives NaN. ``x_moments``, ``y_moments``: :func:`weighted_moments` of ``(W, x)``
    and ``(W, y)``, when known.

    Parameters
    ----------
    W
        ``(n_rep, n_spots)`` weights, e.g. :func:`bootstrap_weights`.
    x, y
        ``(n_spots, n_genes)`` values; column ``j`` of ``x`` is correlated with column ``j`` of ``y``.
    x_moments, y_moments
        :func:`weighted_moments` of ``(W, x)`` and ``(W, y)``, when already computed.

    Returns
    -------
    numpy.ndarray
        ``(n_rep, n_genes)`` correlations in ``[-1, 1]``, NaN where undefined.
    """
    s, mx, vx = weighted_moments(W, x) if x_moments is None else x_moments
    _, my, vy = weighted_moments(W, y) if y_moments is None else y_moments
    cxy = (W @ (x * y)) / s - mx * my
    tol = 1e-12
    bad = (vx <= tol * np.maximum(1.0, mx * mx)) | (vy <= tol * np.maximum(1.0, my * my))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cxy / np.sqrt(vx * vy)
    r = np.clip(r, -1.0, 1.0)
    r[bad | np.isnan(r)] = np.nan
    return r


def weighted_ranks(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Average ranks of one column ``x`` (``(n,)``) in each resample given by the rows of ``W``.

    A spot of multiplicity ``w`` stands for ``w`` copies; tied values (equal in ``x``, or
    copies of one spot) share the mean of their ranks, as :func:`scipy.stats.rankdata`.
    Returns ``(n_rep, n)``: the rank of each spot's copies (any value where ``w = 0``).

    Parameters
    ----------
    W
        ``(n_rep, n)`` multiplicities of the spots, one resample per row.
    x
        ``(n,)`` values to rank.

    Returns
    -------
    numpy.ndarray
        ``(n_rep, n)`` float64 average ranks, starting at 1.
    """
    order = np.argsort(x, kind="stable")
    rank_group, group, _ = _group_ranks(W[:, order], x[order])
    out = np.empty_like(W, dtype=np.float64)
    out[:, order] = rank_group[:, group]
    return out


def _group_ranks(Ws: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average ranks of the tie groups of the sorted column ``xs`` under the weights ``Ws`` (columns
    in ``xs``'s order): ``(rank per group, group of each spot, pooled weight per group)``."""
    is_start = np.r_[True, xs[1:] != xs[:-1]]
    gw = np.add.reduceat(Ws, np.flatnonzero(is_start), axis=1)
    return np.cumsum(gw, axis=1) - gw + (gw + 1.0) / 2.0, np.cumsum(is_start) - 1, gw


def _tie_sum(gw: np.ndarray) -> np.ndarray:
    """Per row, ``sum_g (g^3 - g)`` over tie groups of (weighted) sizes ``g``: the tie correction
    of the variance of average ranks, ``s * var = (s^3 - s - tie_sum) / 12``."""
    return np.einsum("ij,ij,ij->i", gw, gw, gw) - gw.sum(axis=1)


class _TruthRanks:
    """Centred average ranks of one truth column under each row of ``W`` (original spot order),
    with the sums a Spearman correlation against it needs."""

    def __init__(self, W: np.ndarray, s: np.ndarray, y: np.ndarray) -> None:
        order = np.argsort(y, kind="stable")
        rank_group, group, gw = _group_ranks(W[:, order], y[order])
        rank_group -= ((s + 1.0) / 2.0)[:, None]
        self.r = np.empty_like(W)
        self.r[:, order] = rank_group[:, group]
        self.var = (s**3 - s - _tie_sum(gw)) / (12.0 * s)
        self.wr = np.einsum("ij,ij->i", W, self.r)  # 0 up to rounding: the ranks are centred
        self.wwr = np.einsum("ij,ij,ij->i", W, W, self.r)


def _rank_corr(W: np.ndarray, s: np.ndarray, no_tie_var: np.ndarray, y: _TruthRanks, x: np.ndarray,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Spearman correlation per row of ``W`` between the truth column ``y`` and the column ``x``
    (NaN where either is constant over the weighted spots); ``rows``: only those rows of ``W``
    (each row's value is computed on that row alone, so it is the same either way).

    The rank of a spot is ``C - (w - 1) / 2`` where ``C`` is the cumulative weight up to and
    including it in ``x``'s order; without ties in ``x`` (a continuous prediction) its variance
    depends on the weights only (``no_tie_var``) and the covariance needs one cumulative sum and
    one weighted product sum; tied values pool their weights first (:func:`weighted_ranks`).
    """
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ywr, ywwr, yvar = y.wr, y.wwr, y.var
    if rows is None:
        Ws, ry = W[:, order], y.r[:, order]
    else:  # one gather of the rows in x's order
        Ws, ry = W[np.ix_(rows, order)], y.r[np.ix_(rows, order)]
        s, no_tie_var, ywr, ywwr, yvar = s[rows], no_tie_var[rows], ywr[rows], ywwr[rows], yvar[rows]
    m = (s + 1.0) / 2.0
    if np.all(xs[1:] != xs[:-1]):
        vx = no_tie_var
        cov = (np.einsum("ij,ij,ij->i", Ws, np.cumsum(Ws, axis=1), ry) - 0.5 * ywwr + (0.5 - m) * ywr) / s
    else:
        rank_group, group, gw = _group_ranks(Ws, xs)
        rank_group -= m[:, None]
        vx = (s**3 - s - _tie_sum(gw)) / (12.0 * s)
        cov = np.einsum("ij,ij,ij->i", Ws, rank_group[:, group], ry) / s
    tol = 1e-12 * np.maximum(1.0, m * m)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(cov / np.sqrt(vx * yvar), -1.0, 1.0)
    r[(vx <= tol) | (yvar <= tol) | np.isnan(r)] = np.nan
    return r


def weighted_spearman(W: np.ndarray, y: np.ndarray, preds: Sequence[np.ndarray], n_jobs: int = 2,
                      rows: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """Column-wise Spearman correlation of ``y`` with each prediction under each row of ``W``:
    one ``(n_rep, n_genes)`` array per prediction (the ranks of ``y`` are computed once per gene).
    A prediction column holding NaN gives NaN. ``rows``: per prediction the rows of ``W`` to
    compute (``None``: all); the others are NaN (a seed that a replicate does not draw).

    Genes are spread over ``n_jobs`` threads (NumPy releases the GIL in the array work); the
    result does not depend on ``n_jobs``.
    """
    from concurrent.futures import ThreadPoolExecutor

    W = np.asarray(W, dtype=np.float64)
    s = W.sum(axis=1)
    out = [np.full((W.shape[0], y.shape[1]), np.nan) for _ in preds]
    rows = [None] * len(preds) if rows is None else list(rows)
    if len(rows) != len(preds):
        raise ValueError(f"rows for {len(rows)} predictions, got {len(preds)} predictions")

    no_tie_var = (s**3 - s - _tie_sum(W)) / (12.0 * s)

    def gene(j: int) -> None:
        yr = _TruthRanks(W, s, y[:, j])
        for k, p in enumerate(preds):
            if np.all(np.isfinite(p[:, j])):
                if rows[k] is None:
                    out[k][:, j] = _rank_corr(W, s, no_tie_var, yr, p[:, j])
                else:
                    out[k][rows[k], j] = _rank_corr(W, s, no_tie_var, yr, p[:, j], rows[k])

    if n_jobs <= 1:
        for j in range(y.shape[1]):
            gene(j)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(gene, range(y.shape[1])))
    return out


def interval_from_replicates(point: float, replicates: np.ndarray, *, level: float = DEFAULT_LEVEL,
                             method: str = "percentile", jackknife: np.ndarray | None = None) -> tuple[float, float]:
    """A bootstrap interval of one statistic.

    Parameters
    ----------
    point
        The estimate on the data as measured.
    replicates
        ``(n_boot,)`` the statistic on each replicate (NaN replicates dropped).
    level
        Coverage, in (0, 1).
    method
        ``"percentile"`` (quantiles of the replicates), ``"basic"`` (``2 * point`` minus them) or
        ``"bca"`` (bias-corrected and accelerated, Efron 1987; needs ``jackknife``).
    jackknife
        ``(n_units,)`` the statistic with each unit left out (:func:`jackknife_weights`).

    Returns
    -------
    (lo, hi)
    """
    if method not in METHODS:
        raise DataError("method", f"must be one of {METHODS}, got {method!r}")
    if not 0 < level < 1:
        raise DataError("level", f"must be in (0, 1), got {level!r}")
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if not len(r) or not np.isfinite(point):
        return np.nan, np.nan
    q = (1 - level) / 2
    if method == "percentile":
        return float(np.quantile(r, q)), float(np.quantile(r, 1 - q))
    if method == "basic":
        return float(2 * point - np.quantile(r, 1 - q)), float(2 * point - np.quantile(r, q))
    if jackknife is None:
        raise DataError("jackknife", "the BCa interval needs the jackknife values of the statistic")
    jk = np.asarray(jackknife, dtype=np.float64)
    jk = jk[np.isfinite(jk)]
    d = jk.mean() - jk
    den = 6.0 * (d @ d) ** 1.5
    a = float((d**3).sum() / den) if den > 0 else 0.0
    prop = (np.sum(r < point) + 0.5 * np.sum(r == point)) / len(r)
    z0 = norm.ppf(np.clip(prop, 0.5 / len(r), 1 - 0.5 / len(r)))
    z = norm.ppf([q, 1 - q])
    alphas = norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    return float(np.quantile(r, alphas[0])), float(np.quantile(r, alphas[1]))


def _error_stats(W: np.ndarray, y: np.ndarray, p: np.ndarray,
                 y_moments: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per replicate (rows): means over genes of MSE, MAE and R2 (:mod:`stlib.metrics` conventions)."""
    s, my, vy = weighted_moments(W, y) if y_moments is None else y_moments
    missing = ~np.all(np.isfinite(p), axis=0)
    err = np.where(missing[None, :], 0.0, p) - y
    mse = (W @ (err * err)) / s
    mae = (W @ np.abs(err)) / s
    const_true = vy <= 1e-12 * np.maximum(1.0, my * my)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - mse / vy
    mse[:, missing] = np.nan
    mae[:, missing] = np.nan
    r2[:, missing] = np.nan
    r2[const_true] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no gene with a value: NaN
        return {"mse": np.nanmean(mse, axis=1), "mae": np.nanmean(mae, axis=1), "r2": np.nanmean(r2, axis=1)}


def _ceiling_replicates(thinned: ThinnedTargets, W: np.ndarray) -> np.ndarray:
    """Per replicate and gene, the noise ceiling over the weighted spots (as ``estimate``)."""
    extrapolate = thinned.correction == "extrapolate"
    B, G = W.shape[0], len(thinned.genes)
    r_half = np.zeros((B, G))
    r_quarter = np.zeros((B, G))
    bad_half = np.zeros((B, G), dtype=bool)
    bad_quarter = np.zeros((B, G), dtype=bool)
    for draw in thinned.parts:
        r = weighted_pearson(W, draw[0], draw[1])
        bad_half |= np.isnan(r)
        r_half += np.nan_to_num(r)
        if extrapolate:
            mom = {i: weighted_moments(W, draw[i]) for i in range(2, 6)}  # each quarter is in three pairs
            for i in range(2, 6):
                for j in range(i + 1, 6):
                    rij = weighted_pearson(W, draw[i], draw[j], mom[i], mom[j])
                    bad_quarter |= np.isnan(rij)
                    r_quarter += np.nan_to_num(rij) / 6.0
    n = len(thinned.parts)
    r_half /= n
    r_quarter /= n
    r_half[bad_half] = np.nan
    r_quarter[bad_half | bad_quarter] = np.nan  # Spearman-Brown from the halves, as ThinnedTargets.estimate
    r_full = extrapolate_reliability(r_half, r_quarter) if extrapolate else spearman_brown(r_half)
    return np.sqrt(np.clip(r_full, 0.0, 1.0))


def constant_as_zero(r: np.ndarray, y_moments: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Correlations ``r`` (``(n_rep, n_genes)``, NaN where none) with NaN read as 0, except where the
    truth is constant over the weighted spots (:func:`weighted_moments` ``y_moments``): the
    ``constant="zero"`` rule of :mod:`stlib.metrics`.

    Parameters
    ----------
    r
        ``(n_rep, n_genes)`` correlations, NaN where there is none (e.g. :func:`weighted_pearson`).
    y_moments
        :func:`weighted_moments` of the truth under the same weights.

    Returns
    -------
    numpy.ndarray
        ``(n_rep, n_genes)``: ``r`` with NaN read as 0, and NaN where the truth is constant.
    """
    _, my, vy = y_moments
    return np.where(vy <= 1e-12 * np.maximum(1.0, my * my), np.nan, np.nan_to_num(r, nan=0.0))


def _stats(r: np.ndarray, ceil: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per replicate (rows): mean PCC, mean ceiling, fraction of the ceiling."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate where no gene has a correlation: NaN
        out = {"pcc": np.nanmean(r, axis=1)}
        if ceil is not None:
            ok = ~np.isnan(ceil)
            out["ceiling"] = np.nanmean(ceil, axis=1)
            out["fraction"] = (np.where(ok, np.nan_to_num(r), 0.0).sum(axis=1)
                               / np.where(ok, ceil, 0.0).sum(axis=1))
    return out


@dataclass
class Bootstrap:
    """Point estimates and bootstrap replicates of per-model scores on one split.

    ``point`` is indexed by model with the columns of :data:`STATS` that were computed;
    ``replicates[stat]`` is an ``(n_boot, n_models)`` DataFrame with the same columns as
    ``point``'s index. Intervals at ``level`` by ``method`` (:func:`interval_from_replicates`;
    ``"bca"`` needs ``jackknife``).

    Parameters
    ----------
    point
        Point estimates over the spots as measured: one row per model, one column per statistic.
    replicates
        Statistic -> ``(n_boot, n_models)`` replicate values, one column per model.
    level
        Level of the percentile intervals, in ``(0, 1)``.
    n_boot
        Number of replicates.
    seed
        Seed of the resampling.
    settings
        How the spots were resampled (``resampling``, ``n_sections``), for the record.
    method
        Interval method of :meth:`interval` and :meth:`difference` (:data:`METHODS`).
    jackknife
        Statistic -> ``(n_units, n_models)`` leave-one-unit-out values, for ``"bca"``.
    """

    point: pd.DataFrame
    replicates: dict[str, pd.DataFrame]
    level: float
    n_boot: int
    seed: int
    settings: dict[str, object] = field(default_factory=dict)
    method: str = "percentile"
    jackknife: dict[str, pd.DataFrame] = field(default_factory=dict)

    def _interval(self, point: float, reps: np.ndarray, jack: np.ndarray | None) -> tuple[float, float]:
        if self.method == "percentile":  # as pandas' quantile: NaN replicates skipped, linear interpolation
            r = np.asarray(reps, dtype=np.float64)
            r = r[~np.isnan(r)]
            q = (1 - self.level) / 2
            return (float(np.quantile(r, q)), float(np.quantile(r, 1 - q))) if len(r) else (np.nan, np.nan)
        return interval_from_replicates(point, reps, level=self.level, method=self.method, jackknife=jack)

    def interval(self, stat: str) -> pd.DataFrame:
        """Per model: the point estimate and the percentile interval of ``stat``.

        Parameters
        ----------
        stat
            A statistic of :data:`STATS` that was computed (a key of ``replicates``).

        Returns
        -------
        DataFrame
            Indexed by model: ``<stat>`` (point estimate), ``<stat>_lo`` and ``<stat>_hi`` (with
            ``method="percentile"`` the quantiles ``(1 - level) / 2`` and ``(1 + level) / 2`` of the
            replicates, NaN replicates skipped; otherwise :func:`interval_from_replicates`).
        """
        reps = self.replicates[stat]
        jack = self.jackknife.get(stat)
        lims = {m: self._interval(float(self.point.loc[m, stat]), reps[m].to_numpy(),
                                  None if jack is None else jack[m].to_numpy()) for m in reps.columns}
        return pd.DataFrame({stat: self.point[stat],
                             f"{stat}_lo": pd.Series({m: v[0] for m, v in lims.items()}, dtype=float),
                             f"{stat}_hi": pd.Series({m: v[1] for m, v in lims.items()}, dtype=float)})

    def table(self) -> pd.DataFrame:
        """Per model: every statistic with its interval (``pcc, pcc_lo, pcc_hi, ...``).

        Returns
        -------
        DataFrame
            Indexed by model: the three columns of :meth:`interval` for every statistic computed, in
            the order of :data:`STATS`.
        """
        return pd.concat([self.interval(s) for s in STATS if s in self.replicates], axis=1)

    def difference(self, a: str, b: str, stat: str = "pcc") -> dict[str, float | bool]:
        """Paired difference ``a - b`` of ``stat``: point, interval, and whether it excludes zero.

        Parameters
        ----------
        a, b
            Model names.
        stat
            The statistic compared (default ``"pcc"``).

        Returns
        -------
        dict
            ``difference`` (point estimate of ``a - b``), ``lo`` and ``hi`` (interval of ``method`` of the
            replicates' paired differences, NaN replicates dropped; NaN when none is left) and
            ``excludes_zero`` (``lo > 0`` or ``hi < 0``).
        """
        reps = self.replicates[stat]
        jack = self.jackknife.get(stat)
        point = float(self.point.loc[a, stat] - self.point.loc[b, stat])
        lo, hi = self._interval(point, (reps[a] - reps[b]).to_numpy(),
                                None if jack is None else (jack[a] - jack[b]).to_numpy())
        return {"difference": point, "lo": lo, "hi": hi, "excludes_zero": bool(lo > 0 or hi < 0)}


def bootstrap_scores(
    y_true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    *,
    groups: Sequence[str] | np.ndarray,
    thinned: ThinnedTargets | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    rank_stats: bool = True,
    constant: str = "skip",
    weights: np.ndarray | None = None,
    jackknife: np.ndarray | None = None,
    method: str = "percentile",
    resampling: str | None = None,
) -> Bootstrap:
    """Mean PCC (and, with ``thinned``, ceiling and fraction of it) with bootstrap replicates.

    Parameters
    ----------
    y_true
        ``(n_spots, n_genes)`` truth of one split, in the space the predictions are scored in.
    predictions
        Model name -> ``(n_spots, n_genes)`` prediction (NaN columns: failed fits), or
        ``(n_seeds, n_spots, n_genes)``: one fit per seed. A model with seeds is scored as the mean
        over its seeds of each statistic, and every replicate draws its seeds with replacement as
        well as the spots (:func:`seed_multiplicities`), so its intervals and paired differences
        carry the seed-to-seed variance of the fit.
    groups
        Section of each spot (the resampling units above the spots).
    thinned
        Thinned copies of the same spots and genes, in the same space
        (:func:`stlib.tl.ceiling.thinned_targets`); gives ``ceiling`` and ``fraction``.
    n_boot, seed, level
        Replicates, seed of the resampling, interval level.
    rank_stats
        Also ``srcc`` (ranks per replicate and gene: the slow part; ``False`` skips it).
    constant
        ``pcc`` of a gene predicted as constant: ``"skip"`` (default, Table I) or ``"zero"``
        (:data:`stlib.metrics.CONSTANT_RULES`; ``srcc`` keeps ``"skip"``).
    weights
        ``(n_boot, n_spots)`` multiplicities of the replicates, made by the caller (e.g. the
        spatially blocked ones of :func:`stlib.tl.blocked.block_weights`); default: sections then
        spots (:func:`bootstrap_weights`, ``n_boot`` and ``seed``).
    jackknife
        ``(n_units, n_spots)`` leave-one-unit-out weights (:func:`stlib.tl.blocked.jackknife_weights`):
        the statistics are computed on them too, for ``method="bca"``; ``srcc`` gets none.
    method
        Interval method (:data:`METHODS`): ``"percentile"`` (default), ``"basic"`` or ``"bca"``.
    resampling
        How ``weights`` were drawn, in words, for ``settings`` (default: described from ``groups``).

    Returns
    -------
    :class:`Bootstrap`. Point estimates are over the split's spots as measured (the pcc
    point equals :func:`stlib.metrics.evaluate`'s pooled mean PCC up to rounding).
    """
    y = np.asarray(y_true, dtype=np.float64)
    if y.ndim != 2:
        raise DataError("y_true", f"expected (n_spots, n_genes), got shape {y.shape}")
    if thinned is not None and (thinned.n_spots, len(thinned.genes)) != y.shape:
        raise DataError("thinned", f"thinned copies of shape {(thinned.n_spots, len(thinned.genes))} for truth "
                                   f"of shape {y.shape}")
    if constant not in ("skip", "zero"):
        raise DataError("constant", f"must be 'skip' or 'zero', got {constant!r}")
    if method not in METHODS:
        raise DataError("method", f"must be one of {METHODS}, got {method!r}")
    if method == "bca" and jackknife is None:
        raise DataError("jackknife", "method='bca' needs the jackknife weights (stlib.tl.blocked.jackknife_weights)")
    names = list(predictions)
    if weights is None:
        W = bootstrap_weights(groups, n_boot, seed)
        if len(W[0]) != y.shape[0]:
            raise DataError("groups", f"{W.shape[1]} labels for {y.shape[0]} spots")
    else:
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != y.shape[0]:
            raise DataError("weights", f"expected (n_boot, {y.shape[0]}) multiplicities, got shape {W.shape}")
        n_boot = W.shape[0]
    J = None if jackknife is None else np.asarray(jackknife, dtype=np.float64)
    if J is not None and (J.ndim != 2 or J.shape[1] != y.shape[0]):
        raise DataError("jackknife", f"expected (n_units, {y.shape[0]}) weights, got shape {J.shape}")
    one = np.ones((1, y.shape[0]))
    ceil_point = _ceiling_replicates(thinned, one) if thinned is not None else None
    ceil_reps = _ceiling_replicates(thinned, W) if thinned is not None else None
    ceil_jack = _ceiling_replicates(thinned, J) if thinned is not None and J is not None else None
    point: dict[str, dict[str, float]] = {}
    reps: dict[str, dict[str, np.ndarray]] = {}
    jack: dict[str, dict[str, np.ndarray]] = {}
    stacks = {name: seed_stack(name, predictions[name], y.shape) for name in names}
    seed_w = {name: seed_multiplicities(name, len(st), n_boot, seed) for name, st in stacks.items()}
    m_one, m_w = (weighted_moments(one, y), weighted_moments(W, y)) if names else (None, None)
    m_j = weighted_moments(J, y) if names and J is not None else None
    for name in names:
        per_seed_point, per_seed_reps, per_seed_jack = [], [], []
        for p in stacks[name]:
            r1, rw = weighted_pearson(one, y, p, m_one), weighted_pearson(W, y, p, m_w)
            if constant == "zero":
                r1, rw = constant_as_zero(r1, m_one), constant_as_zero(rw, m_w)
            per_seed_point.append({**_stats(r1, ceil_point), **_error_stats(one, y, p, m_one)})
            per_seed_reps.append({**_stats(rw, ceil_reps), **_error_stats(W, y, p, m_w)})
            if J is not None:
                rj = weighted_pearson(J, y, p, m_j)
                if constant == "zero":
                    rj = constant_as_zero(rj, m_j)
                per_seed_jack.append({**_stats(rj, ceil_jack), **_error_stats(J, y, p, m_j)})
        point[name] = {k: float(np.mean([d[k][0] for d in per_seed_point])) for k in per_seed_point[0]}
        reps[name] = {k: seed_mean([d[k] for d in per_seed_reps], seed_w[name]) for k in per_seed_reps[0]}
        if J is not None:
            jack[name] = {k: np.mean([d[k] for d in per_seed_jack], axis=0) for k in per_seed_jack[0]}
    if rank_stats and names:
        both = np.vstack([one, W] + ([J] if J is not None else []))  # the jackknife rows too: BCa needs them
        n_w = W.shape[0]
        flat = [(name, p) for name in names for p in stacks[name]]
        # a seed enters a replicate's seed mean only where the replicate drew it: its ranks are
        # computed on those rows (and the point and jackknife rows), the same values as on all rows
        rows = [None if seed_w[name] is None else
                np.flatnonzero(np.r_[True, seed_w[name][:, k] > 0, np.ones(len(both) - 1 - n_w, bool)])
                for name in names for k in range(len(stacks[name]))]
        by_name: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for (name, p), r in zip(flat, weighted_spearman(both, y, [p for _, p in flat], rows=rows)):
            if constant == "zero":  # a gene predicted as one constant counts as 0, as for PCC
                r = np.where(np.isnan(r) & (np.ptp(p, axis=0) == 0)[None, :], 0.0, r)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                by_name[name].append(np.nanmean(r, axis=1))
        for name, ms in by_name.items():
            point[name]["srcc"] = float(np.mean([m[0] for m in ms]))
            reps[name]["srcc"] = seed_mean([m[1:1 + n_w] for m in ms], seed_w[name])
            if J is not None:
                jack[name]["srcc"] = np.mean([m[1 + n_w:] for m in ms], axis=0)
    stats = [s for s in STATS if s in next(iter(reps.values()), {})]
    n_sec = int(len(pd.unique(np.asarray(groups))))
    return Bootstrap(
        point=pd.DataFrame(point).T[stats] if names else pd.DataFrame(columns=stats),
        replicates={s: pd.DataFrame({n: reps[n][s] for n in names}) for s in stats},
        level=level, n_boot=n_boot, seed=seed,
        settings={"resampling": resampling or ("sections, then spots within sections" if n_sec > 1 else "spots"),
                  "n_sections": n_sec, "method": method,
                  "n_seeds": {k: len(v) for k, v in stacks.items()}},
        method=method,
        jackknife={s: pd.DataFrame({n: jack[n][s] for n in names}) for s in stats if names and all(s in jack.get(n, {}) for n in names)},
    )


def per_gene_intervals(y_true: np.ndarray, y_pred: np.ndarray, *, groups: Sequence[str] | np.ndarray,
                       genes: Sequence[str] | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
                       level: float = DEFAULT_LEVEL, weights: np.ndarray | None = None,
                       name: str = "model") -> pd.DataFrame:
    """Per gene: the PCC over the split's spots, its percentile interval over the same replicates
    as :func:`bootstrap_scores` (same ``groups``, ``n_boot``, ``seed``, or the same ``weights``), and
    ``reliable``: the interval lies above zero. A gene without a correlation (constant or failed)
    is never reliable.

    With many genes some clear the bar by chance (about ``n_genes * (1 - level) / 2`` if no gene
    had any signal): read the count against that number.

    Parameters
    ----------
    y_true, y_pred
        ``(n_spots, n_genes)`` truth and prediction of one split; the prediction may be
        ``(n_seeds, n_spots, n_genes)``: its PCC is then the mean over the seeds, and each
        replicate draws the seeds with replacement (the stream of :func:`seed_multiplicities`
        for ``name``), as :func:`bootstrap_scores` does.
    groups
        Section of each spot (the resampling units above the spots).
    genes
        Gene names, the index of the result (default ``"0", "1", ...``).
    n_boot, seed, level
        Replicates, seed of the resampling, interval level.
    weights
        ``(n_boot, n_spots)`` multiplicities made by the caller (e.g. spatial blocks,
        :func:`stlib.tl.blocked.block_weights`); default: sections then spots.
    name
        The model's name (only for its stream of seed draws).

    Returns
    -------
    DataFrame
        Indexed by ``gene``: ``pcc`` (over the spots as measured), ``pcc_lo`` and ``pcc_hi``
        (percentile interval over the replicates with a correlation) and ``reliable`` (bool).

    Raises
    ------
    DataError
        Truth and prediction of different shapes, or ``groups`` or ``weights`` of the wrong length.
    """
    y = np.asarray(y_true, dtype=np.float64)
    if y.ndim != 2:
        raise DataError("y_true", f"expected (n_spots, n_genes), got shape {y.shape}")
    try:
        stack = seed_stack(name, y_pred, y.shape)
    except DataError:
        raise DataError("y_pred", f"prediction of shape {np.shape(y_pred)}, truth {y.shape}") from None
    if weights is None:
        W = bootstrap_weights(groups, n_boot, seed)
    else:
        W = np.asarray(weights, dtype=np.float64)
        n_boot = W.shape[0]
    if W.ndim != 2 or W.shape[1] != y.shape[0]:
        raise DataError("groups" if weights is None else "weights", f"{W.shape[-1]} labels for {y.shape[0]} spots")
    one = np.ones((1, y.shape[0]))
    m_one, m_w = weighted_moments(one, y), weighted_moments(W, y)
    point = np.mean([weighted_pearson(one, y, p, m_one)[0] for p in stack], axis=0)
    per_seed = np.stack([weighted_pearson(W, y, p, m_w) for p in stack])  # (S, n_boot, n_genes)
    V = seed_multiplicities(name, len(stack), n_boot, seed)
    if V is None:
        reps = per_seed[0]
    else:
        Vf = V.T.astype(np.float64)[:, :, None]  # (S, n_boot, 1)
        reps = (Vf * np.nan_to_num(per_seed)).sum(axis=0) / Vf.sum(axis=0)
        reps[((Vf > 0) & np.isnan(per_seed)).any(axis=0)] = np.nan
    q = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a gene without any correlation: NaN
        lo, hi = np.nanquantile(reps, q, axis=0), np.nanquantile(reps, 1 - q, axis=0)
    index = pd.Index([str(i) for i in range(y.shape[1])] if genes is None else list(genes), name="gene")
    return pd.DataFrame({"pcc": point, "pcc_lo": lo, "pcc_hi": hi,
                         "reliable": np.isfinite(point) & (np.nan_to_num(lo, nan=-1.0) > 0)}, index=index)
