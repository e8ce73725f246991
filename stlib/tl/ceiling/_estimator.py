"""The noise ceiling: split-half reliability, its corrections, and the kept thinned targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib._utils import dense
from stlib.errors import DataError
from stlib.pp import TARGET_SUM, TRANSFORMS

from stlib.tl.ceiling._counts import Counts, _check_mask, _check_sections, check_counts, split_counts, transform_counts

Correction = Literal["spearman-brown", "extrapolate"]
CORRECTIONS: tuple[str, ...] = ("spearman-brown", "extrapolate")
#: Spaces in which a ceiling can be computed: the target transforms, and raw counts.
SCORE_SPACES: tuple[str, ...] = (*TRANSFORMS, "counts")
DEFAULT_CORRECTION = "extrapolate"
COLUMNS: tuple[str, ...] = (
    "section", "gene", "r_half", "r_full", "ceiling", "n_spots", "mean_count", "r_quarter", "n_constant_draws",
)
_SLOPE_RANGE = (0.0, 2.0)


# --------------------------------------------------------------------------- corrections
def spearman_brown(r_half: np.ndarray | float, factor: float = 2.0) -> np.ndarray:
    """Spearman-Brown prophecy: reliability at ``factor`` times the depth, ``k r / (1 + (k-1) r)``.

    Parameters
    ----------
    r_half
        Reliability at the measured depth (e.g. the correlation of two halves); scalar or array.
    factor
        The depth multiple ``k`` to project to; the default 2 gives the full depth from two halves.

    Returns
    -------
    numpy.ndarray
        The projected reliability, elementwise, of the shape of ``r_half`` (0-d for a scalar); NaN
        stays NaN.
    """
    r = np.asarray(r_half, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def extrapolate_reliability(r_half: np.ndarray, r_quarter: np.ndarray) -> np.ndarray:
    """Reliability at full depth from those at half and quarter depth.

    The log-odds ``L = log(R / (1 - R))`` is taken as linear in ``log(depth)``:
    ``L(1) = L(1/2) + s log 2`` with slope ``s = (L(1/2) - L(1/4)) / log 2`` clipped to
    ``[0, 2]`` (Spearman-Brown is ``s = 1``). Falls back to Spearman-Brown where
    ``r_half <= 0`` or ``r_quarter <= 0`` (no log-odds), and keeps NaN where ``r_half`` is NaN.

    Parameters
    ----------
    r_half
        Per gene, the reliability at half depth (correlation of the two halves).
    r_quarter
        Per gene, the reliability at quarter depth (mean correlation of the pairs of quarters); NaN
        where there is none (then Spearman-Brown is used).

    Returns
    -------
    numpy.ndarray
        Per gene, the reliability at full depth: the extrapolation where both reliabilities are in
        ``(0, 1)``, elsewhere :func:`spearman_brown` of ``r_half``.
    """
    rh = np.asarray(r_half, dtype=np.float64)
    rq = np.asarray(r_quarter, dtype=np.float64)
    out = spearman_brown(rh)
    ok = (rh > 0) & (rh < 1) & (rq > 0) & (rq < 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lh = np.log(rh / (1 - rh))
        lq = np.log(rq / (1 - rq))
        slope = np.clip((lh - lq) / np.log(2.0), *_SLOPE_RANGE)
        lf = lh + slope * np.log(2.0)
        ext = 1.0 / (1.0 + np.exp(-lf))
    return np.where(ok, ext, out)


# --------------------------------------------------------------------------- estimator
def _pearson_columns(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise Pearson correlation, and which columns are constant in ``x`` or ``y``."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    sxx = (xc * xc).sum(axis=0)
    syy = (yc * yc).sum(axis=0)
    const = (np.ptp(x, axis=0) == 0) | (np.ptp(y, axis=0) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=0) / np.sqrt(sxx * syy)
    r = np.clip(r, -1.0, 1.0)
    r[const] = np.nan
    return r, const


@dataclass(frozen=True)
class ThinnedTargets:
    """Transformed thinned copies of one set of spots, from which reliabilities are computed.

    Built by :func:`thinned_targets`. ``parts[d]`` holds, for draw ``d``, the transformed
    halves ``[a, b]`` and, with the ``"extrapolate"`` correction, the four transformed
    quarters after them (``[a, b, q1, q2, q3, q4]``, ``a`` being the counts of ``q1 + q2``),
    each a dense ``(n_spots, n_genes)`` float array. Keeping them lets the reliability be
    computed on any subset of the spots (:meth:`estimate`): one section, a pooled split, or
    a bootstrap resample (:mod:`stlib.tl.uncertainty`), without thinning again.

    Parameters
    ----------
    parts
        One tuple per thinning draw of the transformed copies, each ``(n_spots, n_genes)``:
        ``(a, b)`` for ``"spearman-brown"``, ``(a, b, q1, q2, q3, q4)`` for ``"extrapolate"``.
    genes
        ``(n_genes,)`` names of the columns.
    transform
        The space of the copies: a target transform (:data:`stlib.pp.TRANSFORMS`) or ``"counts"``.
    correction
        ``"extrapolate"`` or ``"spearman-brown"``: how :meth:`estimate` reaches full depth.
    seed
        Seed of the thinning.
    """

    parts: tuple[tuple[np.ndarray, ...], ...]
    genes: np.ndarray
    transform: str
    correction: str
    seed: int

    @property
    def n_spots(self) -> int:
        return int(self.parts[0][0].shape[0])

    def estimate(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per gene over ``rows`` (default all spots): ``r_half``, ``r_quarter``, ``r_full``,
        ``ceiling`` and ``n_constant_draws`` (see :func:`noise_ceiling`).

        Parameters
        ----------
        rows
            Positions of the spots to compute over (integer indices or a boolean mask over the
            spots of the copies); ``None``: all spots.

        Returns
        -------
        dict
            ``(n_genes,)`` arrays: ``r_half`` (correlation of the halves, mean over draws; NaN where a
            half was constant in any draw), ``r_quarter`` (mean correlation of the six pairs of quarters;
            NaN with ``"spearman-brown"`` or where a quarter or half was constant), ``r_full`` (after the
            correction), ``ceiling`` (``sqrt`` of ``r_full`` clipped to ``[0, 1]``, NaN where ``r_full``
            is) and ``n_constant_draws`` (draws in which the gene was constant in a half).
        """
        ng = len(self.genes)
        r_half = np.zeros(ng)
        r_quarter = np.zeros(ng)
        n_const = np.zeros(ng, dtype=np.int64)
        quarter_const = np.zeros(ng, dtype=bool)
        extrapolate = self.correction == "extrapolate"
        for draw in self.parts:
            ys = draw if rows is None else tuple(y[rows] for y in draw)
            r, bad = _pearson_columns(ys[0], ys[1])
            r_half += r
            n_const += bad
            if extrapolate:
                rq = np.zeros(ng)
                for i in range(2, 6):
                    for j in range(i + 1, 6):
                        rij, cij = _pearson_columns(ys[i], ys[j])
                        rq += rij
                        quarter_const |= cij
                r_quarter += rq / 6.0
        n = len(self.parts)
        r_half /= n
        r_quarter /= n
        r_half[n_const > 0] = np.nan  # a half without variation: no reliability
        if extrapolate:
            r_quarter[quarter_const | (n_const > 0)] = np.nan  # then Spearman-Brown from the halves
            r_full = extrapolate_reliability(r_half, r_quarter)
        else:
            r_quarter[:] = np.nan
            r_full = spearman_brown(r_half)
        return {"r_half": r_half, "r_quarter": r_quarter, "r_full": r_full,
                "ceiling": np.sqrt(np.clip(r_full, 0.0, 1.0)), "n_constant_draws": n_const}

    def subset(self, rows: np.ndarray) -> ThinnedTargets:
        """The thinned copies of some spots only (e.g. one split's), in the order of ``rows``.

        Parameters
        ----------
        rows
            Positions of the spots to keep (integer indices or a boolean mask).

        Returns
        -------
        ThinnedTargets
            A new object holding those rows of every copy; genes and settings unchanged.
        """
        rows = np.asarray(rows)
        return ThinnedTargets(parts=tuple(tuple(y[rows] for y in d) for d in self.parts), genes=self.genes,
                              transform=self.transform, correction=self.correction, seed=self.seed)

    def ceiling(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Per gene, the ceiling over ``rows`` (NaN where undefined).

        Parameters
        ----------
        rows
            As in :meth:`estimate`; ``None``: all spots.

        Returns
        -------
        numpy.ndarray
            ``(n_genes,)`` ceilings, ``estimate(rows)["ceiling"]``.
        """
        return self.estimate(rows)["ceiling"]


def _from_adata(
    adata: ad.AnnData, sections: str | Sequence[str] | np.ndarray | None, genes_mask, layer: str | None
) -> tuple[Counts, np.ndarray, np.ndarray | None, np.ndarray]:
    X = adata.layers[layer] if layer is not None else adata.X
    if sections is None:
        sections = "section"
    if isinstance(sections, str):
        if sections not in adata.obs:
            raise DataError("<adata>", f"no obs[{sections!r}] with the section of each spot")
        secs = adata.obs[sections].astype(str).to_numpy()
    else:
        secs = np.asarray(sections)
    names = adata.var_names.to_numpy().astype(str)
    if genes_mask is not None:
        gm = np.asarray(genes_mask)
        if gm.dtype.kind in "USO":
            missing = [g for g in gm if g not in set(names)]
            if missing:
                raise DataError("<adata>", f"{len(missing)} gene(s) not in var_names, e.g. {missing[:3]}")
            genes_mask = np.isin(names, gm.astype(str))
    return X, secs, genes_mask, names


def _with_rest(X: Counts, totals: np.ndarray | None, mask: np.ndarray) -> tuple[Counts, np.ndarray]:
    """The target columns plus one "rest of the spot" column, so that thinning it thins the totals.

    Thinning every gene and summing equals (in distribution) thinning the targets and the
    rest of the spot's counts separately: the halves' totals are half-depth totals either way.
    """
    if totals is None:
        return X, mask
    t = np.asarray(totals, dtype=np.float64).ravel()
    if t.shape != (X.shape[0],):
        raise DataError("all_gene_totals", f"needs one total per spot: got {t.shape} for {X.shape[0]} spots")
    if not np.isfinite(t).all() or (t != np.round(t)).any():
        raise DataError("all_gene_totals", "totals must be finite integers (raw counts over all genes)")
    sub = X[:, mask]
    rest = t - np.asarray(sub.sum(axis=1), dtype=np.float64).ravel()
    if (rest < 0).any():
        raise DataError("all_gene_totals", f"{int((rest < 0).sum())} spot(s) have a total below the sum of the "
                                           "target genes' counts: the totals must be over all genes")
    rest_col = rest.astype(np.int64)[:, None]
    full = sp.hstack([sp.csr_matrix(sub), sp.csr_matrix(rest_col)], format="csr") if sp.issparse(sub) \
        else np.hstack([sub, rest_col])
    return full, np.r_[np.ones(sub.shape[1], dtype=bool), False]


def _transform(parts: Counts, transform: str, secs: np.ndarray, mask: np.ndarray, target_sum: float) -> np.ndarray:
    if transform == "counts":
        return dense(parts[:, mask]).astype(np.float64)
    return dense(transform_counts(parts, transform, sections=secs, genes_mask=mask, target_sum=target_sum))


def thinned_targets(
    counts: Counts,
    transform: str,
    *,
    sections: Sequence[str] | np.ndarray | None,
    genes_mask: Sequence[bool] | np.ndarray | None = None,
    all_gene_totals: np.ndarray | None = None,
    n_draws: int = 5,
    seed: int = 0,
    correction: str = DEFAULT_CORRECTION,
    target_sum: float = TARGET_SUM,
    gene_names: Sequence[str] | None = None,
) -> ThinnedTargets:
    """Thin the counts (halves, and quarters for ``"extrapolate"``) and transform each copy.

    Parameters are those of :func:`noise_ceiling`, plus ``all_gene_totals``: per spot, the
    total count over all genes, for when ``counts`` holds only the target genes (the rest
    of each spot's counts is then thinned as one extra column). ``transform`` may also be
    ``"counts"`` (raw counts, for models scored in count space). The normalisation of
    ``"paper"`` is per section, as for the full data.

    Parameters
    ----------
    counts
        Spots x genes raw integer counts, dense or sparse: all genes, or only the target genes
        together with ``all_gene_totals``.
    transform
        A target transform (:data:`stlib.pp.TRANSFORMS`) or ``"counts"``.
    sections
        One section label per spot (``None``: one section).
    genes_mask
        The target genes: boolean mask or integer indices over the columns. Default: all genes.
    all_gene_totals
        Per spot, the total count over all genes (whole numbers, at least the sum of the target
        genes' counts), when ``counts`` holds fewer genes.
    n_draws
        Number of independent thinnings kept, at least 1.
    seed
        Seed of the thinning.
    correction
        ``"extrapolate"`` (default: halves and quarters are kept) or ``"spearman-brown"`` (halves
        only).
    target_sum
        The total of ``"normalize_log1p"``.
    gene_names
        Names of the columns of ``counts`` (default ``"0", "1", ...``).

    Returns
    -------
    ThinnedTargets
        The transformed copies of the target genes, for :meth:`ThinnedTargets.estimate`.

    Raises
    ------
    ValueError
        Unknown ``transform`` or ``correction``, or ``n_draws < 1``.
    DataError
        Bad counts, section labels, mask, gene names or totals.
    """
    if transform not in SCORE_SPACES:
        raise ValueError(f"unknown target transform {transform!r}; use one of {SCORE_SPACES}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {CORRECTIONS}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    X = check_counts(counts)
    n, g = X.shape
    secs = _check_sections(sections, n)
    mask = _check_mask(genes_mask, g)
    names = np.asarray(gene_names if gene_names is not None else [str(i) for i in range(g)]).astype(str)
    if names.shape != (g,):
        raise DataError("gene_names", f"{names.shape[0]} names for {g} genes")
    Xf, maskf = _with_rest(X, all_gene_totals, mask)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_draws):
        if correction == "extrapolate":
            q = split_counts(Xf, 4, rng)
            copies = [q[0] + q[1], q[2] + q[3], *q]
        else:
            copies = list(split_counts(Xf, 2, rng))
        draws.append(tuple(_transform(c, transform, secs, maskf, target_sum) for c in copies))
    return ThinnedTargets(parts=tuple(draws), genes=names[mask], transform=transform,
                          correction=correction, seed=int(seed))


def noise_ceiling(
    counts: Counts | ad.AnnData,
    transform: str,
    *,
    sections: str | Sequence[str] | np.ndarray | None,
    genes_mask: Sequence[bool] | Sequence[str] | np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    all_gene_totals: np.ndarray | None = None,
    n_draws: int = 5,
    seed: int = 0,
    correction: str = DEFAULT_CORRECTION,
    target_sum: float = TARGET_SUM,
    gene_names: Sequence[str] | None = None,
    layer: str | None = None,
) -> pd.DataFrame:
    """Per section (or group) and gene, the best Pearson correlation any prediction can reach.

    Parameters
    ----------
    counts
        Spots x genes raw integer counts over **all** genes (dense or sparse), or an
        AnnData holding them in ``X`` (or ``layers[layer]``). With ``all_gene_totals``,
        the target genes only.
    transform
        The target transform (:data:`stlib.pp.TRANSFORMS`), applied to each thinned copy as to
        the full data, or ``"counts"`` (raw counts: the space of count-scored GLMs).
    sections
        One section label per spot; with an AnnData, an ``obs`` key (``None``: ``"section"``).
        Required for arrays (pass ``None`` explicitly for one section). ``"paper"``
        normalises within each section.
    genes_mask
        The target genes: boolean mask or integer indices over the columns (or gene names
        with an AnnData). Default: all genes.
    groups
        One label per spot: the sets of spots over which correlations are computed (e.g.
        the split, for ceilings of metrics pooled over a split's sections). Default: the
        sections. The output's first column is then ``group`` instead of ``section``.
    all_gene_totals
        Per spot, the total count over all genes, when ``counts`` holds fewer genes.
    n_draws
        Independent thinnings averaged (the correlations are averaged over draws).
    seed
        Seed of the thinning; the result is a function of ``(counts, seed)``.
    correction
        ``"extrapolate"`` (default: half- and quarter-depth reliabilities, log-odds
        extrapolated to full depth) or ``"spearman-brown"``; see the module docstring.
    target_sum
        The total of ``"normalize_log1p"``.
    gene_names
        Names of the columns of ``counts`` (default: ``var_names`` for an AnnData, else
        ``"0", "1", ...``).
    layer
        With an AnnData, the layer holding the counts (default ``X``).

    Returns
    -------
    pandas.DataFrame
        One row per (section, gene): ``section``, ``gene``, ``r_half`` (split-half
        correlation of the transformed halves, mean over draws), ``r_full`` (reliability at
        full depth after the correction), ``ceiling`` (``sqrt(max(r_full, 0))``), ``n_spots``,
        ``mean_count`` (mean raw count of the gene over the section's spots), ``r_quarter``
        (quarter-depth reliability; NaN for Spearman-Brown, or when a quarter was constant:
        then Spearman-Brown is used) and ``n_constant_draws`` (draws in which the gene was
        constant in a half: then its row is NaN).
        ``attrs`` records the settings and the number of NaN rows.

    Raises
    ------
    DataError
        Negative or non-integer counts, a ``sections`` of the wrong length, a bad mask.
    """
    if isinstance(counts, ad.AnnData):
        X, secs, genes_mask, names = _from_adata(counts, sections, genes_mask, layer)
        gene_names = names if gene_names is None else gene_names
    else:
        X, secs = counts, sections
    X = check_counts(X)
    secs = _check_sections(secs, X.shape[0])
    grp = secs if groups is None else _check_sections(groups, X.shape[0], "groups")
    tt = thinned_targets(X, transform, sections=secs, genes_mask=genes_mask, all_gene_totals=all_gene_totals,
                         n_draws=n_draws, seed=seed, correction=correction, target_sum=target_sum,
                         gene_names=gene_names)
    mask = _check_mask(genes_mask, X.shape[1])
    key = "section" if groups is None else "group"
    frames = []
    for label in pd.unique(grp):
        rows = np.flatnonzero(grp == label)
        est = tt.estimate(rows)
        frames.append(pd.DataFrame({
            key: label,
            "gene": tt.genes,
            "r_half": est["r_half"],
            "r_full": est["r_full"],
            "ceiling": est["ceiling"],
            "n_spots": len(rows),
            "mean_count": np.asarray(X[rows][:, mask].mean(axis=0), dtype=np.float64).ravel(),
            "r_quarter": est["r_quarter"],
            "n_constant_draws": est["n_constant_draws"],
        }))
    out = pd.concat(frames, ignore_index=True)[[key, *COLUMNS[1:]]]
    out.attrs.update({
        "transform": transform,
        "correction": correction,
        "n_draws": int(n_draws),
        "seed": int(seed),
        "target_sum": float(target_sum) if transform == "normalize_log1p" else None,
        "n_nan": int(out["ceiling"].isna().sum()),
        "noise": "Poisson (molecule) sampling only; extra-Poisson variation counts as signal",
    })
    return out
