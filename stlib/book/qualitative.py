"""The report's qualitative comparisons, computed: cluster means and their errors, tumour vs
non-tumour differential expression of the truth and of each model, the offset share of a map's
error, and the tails of predicted against measured counts (chapter 7; figures in :mod:`stlib.pl`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

from stlib.get import expression_adata


def cluster_means(
    targets: ad.AnnData,
    predictions: Mapping[str, ad.AnnData],
    gene: str,
    *,
    groupby: str = "leiden",
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Mean of one gene per cluster: the truth and each model's prediction (columns)."""
    m = np.ones(targets.n_obs, bool) if mask is None else np.asarray(mask)
    j = targets.var_names.get_loc(gene)
    groups = targets.obs.loc[m, groupby].astype(str).to_numpy()
    data = {"truth": np.asarray(targets.X)[m, j]}
    for name, p in predictions.items():
        data[name] = np.asarray(p.X)[m, j]
    df = pd.DataFrame(data)
    df[groupby] = groups
    out = df.groupby(groupby, sort=True).mean()
    out.insert(0, "n_spots", df.groupby(groupby, sort=True).size())
    return out


def tumor_de(
    expr: ad.AnnData,
    *,
    n_top: int = 20,
    groupby: str = "tumor",
    method: str = "wilcoxon",
) -> pd.DataFrame:
    """Tumour vs non-tumour differential expression with :func:`scanpy.tl.rank_genes_groups`.

    Spots whose annotation is missing are left out (and counted in ``uns["tumor_de"]``).
    Writes ``obs["tumor_group"]`` and ``uns["rank_genes_groups"]`` on ``expr``; returns the
    ranked table of the tumour group (top ``n_top``).
    """
    known = expr.obs[groupby].notna().to_numpy()
    expr._inplace_subset_obs(known)
    expr.obs["tumor_group"] = pd.Categorical(
        np.where(expr.obs[groupby].astype(bool), "tumour", "non-tumour"), categories=["tumour", "non-tumour"]
    )
    if expr.obs["tumor_group"].value_counts().min() < 2:
        raise ValueError("need at least 2 tumour and 2 non-tumour spots for differential expression")
    with warnings.catch_warnings():
        # predictions can be negative: their log fold changes are undefined (NaN), the ranks are not
        warnings.simplefilter("ignore", RuntimeWarning)
        sc.tl.rank_genes_groups(expr, "tumor_group", groups=["tumour"], reference="non-tumour", method=method)
    expr.uns["tumor_de"] = {"n_left_out_unannotated": int((~known).sum()), "method": method}
    df = sc.get.rank_genes_groups_df(expr, group="tumour")
    return df.head(n_top).reset_index(drop=True)


#: Words of ``obs["tumor_source"]`` that mark a pathologist's annotation (stlib.io's readers write them).
PATHOLOGIST = "pathologist"


def de_spots(targets: ad.AnnData, split: str, *, split_key: str = "split",
             source_key: str = "tumor_source") -> tuple[np.ndarray, str]:
    """The spots of the tumour comparison (the report's Fig. 2): the split's sections whose tumour
    annotation is a pathologist's, when it has any, else every section of the split.

    The report ran its Fig. 2 on a valid section with the pathologist's tumour column; expression
    clusters (the other sections' annotation) would make the comparison partly circular.

    Parameters
    ----------
    targets
        Spots with ``obs[split_key]``, ``obs["section"]`` and ``obs[source_key]``.
    split
        The split to draw from (``"valid"`` as in the report, or ``"test"``).
    split_key, source_key
        ``obs`` columns of the split and of the annotation's source.

    Returns
    -------
    tuple
        A boolean mask over ``targets`` and a sentence naming the sections and their annotation.
    """
    from stlib.get import split_mask

    mask = split_mask(targets, split, split_key)
    if not mask.any():
        raise ValueError(f"no spots in split {split!r}")
    obs = targets.obs.loc[mask]
    src = obs[source_key].astype(str) if source_key in obs else pd.Series("", index=obs.index)
    by_path = src.str.contains(PATHOLOGIST, case=False).to_numpy()
    secs_all = sorted(pd.unique(obs["section"].astype(str)))
    if by_path.any():
        keep = mask.copy()
        keep[np.flatnonzero(mask)[~by_path]] = False
        secs = sorted(pd.unique(obs.loc[by_path, "section"].astype(str)))
        rest = [s for s in secs_all if s not in secs]
        note = (f"{split}: section(s) {', '.join(secs)}, annotated by a pathologist"
                + (f" ({', '.join(rest)} left out: annotated by expression clusters)" if rest else ""))
        return keep, note
    return mask, f"{split}: section(s) {', '.join(secs_all)}, annotation: {src.iloc[0] or 'none recorded'}"


def cluster_errors(
    targets: ad.AnnData,
    predictions: Mapping[str, ad.AnnData],
    *,
    groupby: str = "leiden",
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per cluster and model: the mean over genes of |cluster mean of prediction - cluster mean of truth|.

    The report's Fig. 1 error, computed gene by gene over all target genes (the report compared
    one gene's truth with the mean of all 250 predicted genes). Genes a model did not predict
    (failed fits, NaN) are skipped for that model. Columns: ``n_spots`` then one per model.
    """
    m = np.ones(targets.n_obs, bool) if mask is None else np.asarray(mask)
    groups = targets.obs.loc[m, groupby].astype(str).to_numpy()
    labels = sorted(set(groups), key=lambda g: (len(g), g))
    truth = np.asarray(targets.X)[m]
    t_means = np.vstack([truth[groups == g].mean(0) for g in labels])
    out = pd.DataFrame(index=pd.Index(labels, name=groupby))
    out["n_spots"] = [int((groups == g).sum()) for g in labels]
    for name, p in predictions.items():
        P = np.asarray(p.X)[m]
        p_means = np.vstack([P[groups == g].mean(0) for g in labels])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = np.nanmean(np.abs(p_means - t_means), axis=1)
    return out


def de_scores(
    targets: ad.AnnData,
    expressions: Mapping[str, np.ndarray],
    mask: np.ndarray,
    *,
    method: str = "wilcoxon",
) -> pd.DataFrame:
    """Tumour vs non-tumour z-scores of every gene, one column per expression (truth and each model).

    Each column is :func:`tumor_de` on that expression over the spots of ``mask`` (unannotated
    spots left out); the scores are scanpy's Wilcoxon z-scores (positive: higher in tumour).
    A gene a model did not predict has NaN.
    """
    cols = {}
    for name, X in expressions.items():
        e = expression_adata(targets, X, mask)
        tumor_de(e, n_top=e.n_vars, method=method)
        df = sc.get.rank_genes_groups_df(e, group="tumour").set_index("names")
        cols[name] = df["scores"].reindex(targets.var_names).astype(float)
    return pd.DataFrame(cols, index=targets.var_names)


def top_genes(scores: pd.DataFrame, n_top: int) -> dict[str, list[str]]:
    """Per column of :func:`de_scores`: its ``n_top`` genes most up in tumour (highest z-score)."""
    return {c: list(scores[c].dropna().sort_values(ascending=False, kind="stable").index[:n_top]) for c in scores}


def offset_share(truth: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Per gene (columns of ``truth``/``pred``): mean error (the offset), MSE, and the share of
    the MSE that is the squared offset (``bias^2 / MSE``): near 1 when a map of the error is one colour."""
    err = np.asarray(pred, float) - np.asarray(truth, float)
    bias = np.nanmean(err, axis=0)
    mse = np.nanmean(err ** 2, axis=0)
    return pd.DataFrame({"mean error": bias, "mse": mse, "offset share": bias ** 2 / mse})


def count_tail(true_counts: np.ndarray, pred_counts: np.ndarray,
               thresholds: Sequence[float] = (0.5, 1, 2, 5, 10, 20, 50)) -> pd.DataFrame:
    """Share of spot x gene pairs at or above each threshold: measured counts and predicted means."""
    t = np.asarray(true_counts, float).ravel()
    p = np.asarray(pred_counts, float).ravel()
    p = p[np.isfinite(p)]
    return pd.DataFrame({"measured counts": [(t >= k).mean() for k in thresholds],
                         "predicted means": [(p >= k).mean() for k in thresholds]},
                        index=pd.Index(list(thresholds), name="at least"))
