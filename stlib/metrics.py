"""Per-gene prediction metrics, and their summaries per split (pooled or per section).

Every metric is computed per gene (a column) over the spots (rows), in float64.
Conventions that matter when comparing numbers across papers:

- A constant prediction (or a constant truth) has **no** correlation: Pearson and
  Spearman are NaN there, never 0. Such genes are flagged (``constant_pred``,
  ``constant_true``) and counted by :func:`summarize`.
- Means over genes follow one of :data:`CONSTANT_RULES` (``constant=``): ``"skip"`` (the
  default, the report's Table I convention) leaves a gene the model predicts as constant, or
  failed to fit, out of its mean, so models are averaged over different genes; ``"zero"``
  counts it as correlation 0, so every model is averaged over the same genes (all genes with
  a varying truth). :func:`shared_gene_means` instead averages every model over the genes
  that all of them correlate.
- ``r2`` is scikit-learn's ``1 - SS_res / SS_tot``; it is NaN when the truth is constant
  (scikit-learn would return 1 or 0 there).
- A prediction column holding any NaN (a GLM whose fit failed) gives NaN for every
  metric of that gene and ``missing_pred = True``.
- Numbers pooled over all spots of a split differ a lot from numbers computed within
  each section and averaged over sections; :func:`evaluate` labels them with a
  ``aggregation`` column (``"pooled"`` / ``"per_section_mean"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from stlib.errors import DataError

METRICS: tuple[str, ...] = ("pearson", "spearman", "mse", "mae", "r2")
PROTOCOLS: tuple[str, ...] = ("pooled", "per_section_mean")
#: How a mean over genes treats a gene predicted as constant (or missing): left out, or PCC 0.
CONSTANT_RULES: tuple[str, ...] = ("skip", "zero")
_CORRELATIONS = ("pearson", "spearman")

__all__ = ["CONSTANT_RULES", "METRICS", "PROTOCOLS", "evaluate", "per_gene_metrics", "shared_gene_means", "summarize"]


def _check_constant(constant: str) -> None:
    if constant not in CONSTANT_RULES:
        raise DataError("constant", f"must be one of {CONSTANT_RULES}, got {constant!r}")


def _as_2d(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataError(what, f"expected a (n_spots, n_genes) array, got shape {a.shape}")
    return a


def _constant(a: np.ndarray) -> np.ndarray:
    """Columns whose values are all identical (exactly); a single spot counts as constant."""
    return np.all(a == a[:1], axis=0)


def _pearson_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns (no masking of constant columns)."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=0) / np.sqrt((xc * xc).sum(axis=0) * (yc * yc).sum(axis=0))
    return np.clip(r, -1.0, 1.0)


def per_gene_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, genes: Sequence[str] | None = None
) -> pd.DataFrame:
    """Metrics of one prediction, per gene over the spots.

    Parameters
    ----------
    y_true, y_pred
        ``(n_spots, n_genes)`` truth and prediction in the same (target) space.
        ``y_true`` must be finite; ``y_pred`` may hold NaN (a failed fit).
    genes
        Gene names (the index of the result); default ``"0", "1", ...``.

    Returns
    -------
    DataFrame indexed by gene with float columns ``pearson, spearman, mse, mae, r2`` and
    boolean columns ``constant_pred, constant_true, missing_pred``.
    Pearson/Spearman are NaN when prediction or truth is constant, ``r2`` is NaN when the
    truth is constant, and every metric is NaN when ``missing_pred``.
    """
    t = _as_2d(y_true, "y_true")
    p = _as_2d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise DataError("y_pred", f"shape {p.shape} differs from y_true shape {t.shape}")
    if t.shape[0] == 0:
        raise DataError("y_true", "no spots to evaluate")
    if not np.all(np.isfinite(t)):
        raise DataError("y_true", f"{int((~np.isfinite(t)).sum())} non-finite values in the truth")
    n_genes = t.shape[1]
    index = pd.Index([str(i) for i in range(n_genes)] if genes is None else list(genes), name="gene")
    if len(index) != n_genes:
        raise DataError("genes", f"{len(index)} gene names for {n_genes} columns")

    missing = ~np.all(np.isfinite(p), axis=0)
    p = np.where(missing[None, :], 0.0, p)  # placeholder, masked below
    const_true = _constant(t)
    const_pred = _constant(p) & ~missing
    no_corr = const_true | const_pred | missing

    pearson = _pearson_columns(t, p)
    spearman = _pearson_columns(rankdata(t, axis=0), rankdata(p, axis=0))
    err = p - t
    mse = (err**2).mean(axis=0)
    mae = np.abs(err).mean(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - (err**2).sum(axis=0) / ss_tot

    out = pd.DataFrame(
        {
            "pearson": np.where(no_corr, np.nan, pearson),
            "spearman": np.where(no_corr, np.nan, spearman),
            "mse": np.where(missing, np.nan, mse),
            "mae": np.where(missing, np.nan, mae),
            "r2": np.where(missing | const_true, np.nan, r2),
            "constant_pred": const_pred,
            "constant_true": const_true,
            "missing_pred": missing,
        },
        index=index,
    )
    return out


def summarize(per_gene: pd.DataFrame, constant: str = "skip") -> pd.Series:
    """Mean over genes of each metric (ignoring NaN) and the counts behind it.

    Parameters
    ----------
    per_gene
        Output of :func:`per_gene_metrics`.
    constant
        ``"skip"`` (default, Table I's convention): a gene predicted as constant or missing has
        no Pearson/Spearman and is left out of their means. ``"zero"``: it counts as 0 in them
        (genes with a constant truth stay out, for every model alike). Error metrics are the
        same under both.

    Returns
    -------
    Series
        With ``pearson, spearman, mse, mae, r2`` (NaN-ignoring means; NaN if no gene has
        a value) and the integer counts ``n_genes, n_constant_pred, n_constant_true,
        n_missing_pred, n_genes_correlated`` (genes with a defined Pearson).
    """
    _check_constant(constant)
    out: dict[str, float | int] = {m: float(per_gene[m].mean(skipna=True)) for m in METRICS}
    if constant == "zero":
        gave_up = (per_gene["constant_pred"] | per_gene["missing_pred"]) & ~per_gene["constant_true"]
        for m in _CORRELATIONS:
            out[m] = float(per_gene[m].mask(gave_up, 0.0).mean(skipna=True))
    out["n_genes"] = len(per_gene)
    out["n_constant_pred"] = int(per_gene["constant_pred"].sum())
    out["n_constant_true"] = int(per_gene["constant_true"].sum())
    out["n_missing_pred"] = int(per_gene["missing_pred"].sum())
    out["n_genes_correlated"] = int(per_gene["pearson"].notna().sum())
    return pd.Series(out, dtype=object)


def _splits(y_true: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray]) -> list[str]:
    missing = [s for s in predictions if s not in y_true]
    if missing:
        raise DataError("y_true", f"no truth for split(s) {missing}")
    return list(predictions)


def _section_ids(groups: Mapping[str, np.ndarray], split: str, n_spots: int) -> np.ndarray:
    if split not in groups:
        raise DataError("groups", f"no section ids for split {split!r}")
    g = np.asarray(groups[split])
    if g.shape != (n_spots,):
        raise DataError("groups", f"split {split!r}: {g.shape[0] if g.ndim else 0} section ids for {n_spots} spots")
    return g


def evaluate(
    y_true: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    genes: Sequence[str] | None = None,
    groups: Mapping[str, np.ndarray] | None = None,
    constant: str = "skip",
) -> pd.DataFrame:
    """Summary metrics per split, pooled over spots and (optionally) per section.

    Parameters
    ----------
    y_true, predictions
        Split -> ``(n_spots, n_genes)`` arrays in target space. Splits are taken in the
        order of ``predictions``; each needs a truth.
    genes
        Gene names.
    groups
        Optional split -> ``(n_spots,)`` section id per spot. When given, each split also
        gets a ``"per_section_mean"`` row: :func:`summarize` within each section, then the
        NaN-ignoring mean over sections of each metric. Its count columns are summed over
        sections (they count (section, gene) pairs) and ``n_sections`` says how many
        sections were averaged.
    constant
        The rule for genes predicted as constant, as :func:`summarize` (default ``"skip"``).

    Returns
    -------
    DataFrame indexed by ``split`` with an ``aggregation`` column (``"pooled"`` or
    ``"per_section_mean"``), the columns of :func:`summarize`, and ``n_spots`` and
    ``n_sections`` (1 for pooled rows).
    """
    _check_constant(constant)
    rows = []
    for split in _splits(y_true, predictions):
        t, p = _as_2d(y_true[split], split), _as_2d(predictions[split], split)
        s = summarize(per_gene_metrics(t, p, genes), constant)
        rows.append({"split": split, "aggregation": "pooled", **s.to_dict(), "n_spots": t.shape[0], "n_sections": 1})
        if groups is not None:
            g = _section_ids(groups, split, t.shape[0])
            per_sec = pd.DataFrame([summarize(per_gene_metrics(t[g == sec], p[g == sec], genes), constant)
                                    for sec in pd.unique(g)])
            row: dict[str, object] = {"split": split, "aggregation": "per_section_mean"}
            row.update({m: float(pd.to_numeric(per_sec[m]).mean(skipna=True)) for m in METRICS})
            row.update({c: int(per_sec[c].sum()) for c in per_sec.columns if c.startswith("n_")})
            row.update({"n_spots": t.shape[0], "n_sections": len(per_sec)})
            rows.append(row)
    out = pd.DataFrame(rows).set_index("split")
    counts = [c for c in out.columns if c.startswith("n_")]
    out[counts] = out[counts].astype(int)
    out[list(METRICS)] = out[list(METRICS)].astype(float)
    return out


def shared_gene_means(per_gene: Mapping[str, pd.DataFrame], metric: str = "pearson") -> pd.DataFrame:
    """Every model's mean ``metric`` over the same genes: those where every model has a value.

    Parameters
    ----------
    per_gene
        Model -> :func:`per_gene_metrics` of that model (same genes, same spots).
    metric
        One of :data:`METRICS`.

    Returns
    -------
    DataFrame
        Indexed by model: ``metric`` (mean over the shared genes), ``<metric>_own`` (the mean over
        the model's own genes, as :func:`summarize`), ``n_genes_shared`` and ``n_genes_own``.
    """
    if metric not in METRICS:
        raise DataError("metric", f"must be one of {METRICS}, got {metric!r}")
    if not per_gene:
        raise DataError("per_gene", "no model to average")
    values = pd.DataFrame({name: t[metric] for name, t in per_gene.items()})
    if values.isna().all(axis=None) or len({tuple(t.index) for t in per_gene.values()}) > 1:
        raise DataError("per_gene", "the models' tables must have the same genes, with some values")
    shared = values.notna().all(axis=1)
    return pd.DataFrame({metric: values[shared].mean(), f"{metric}_own": values.mean(),
                         "n_genes_shared": int(shared.sum()), "n_genes_own": values.notna().sum()})
