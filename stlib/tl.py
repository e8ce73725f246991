"""Tools for the qualitative chapter: cluster means, differential expression, map data."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc


def expression_adata(targets: ad.AnnData, X: np.ndarray, mask: np.ndarray | None = None) -> ad.AnnData:
    """An AnnData with the obs/obsm/uns of ``targets`` (optionally a subset) and ``X`` as data."""
    m = np.ones(targets.n_obs, bool) if mask is None else np.asarray(mask)
    out = ad.AnnData(X=np.asarray(X)[m].astype(np.float32), obs=targets.obs.loc[m].copy(),
                     var=pd.DataFrame(index=targets.var_names.copy()))
    out.obsm["spatial"] = np.asarray(targets.obsm["spatial"])[m]
    out.uns["spatial"] = targets.uns.get("spatial", {})
    return out


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


def top_overlap(a: Sequence[str], b: Sequence[str]) -> int:
    """How many genes two top lists share."""
    return len(set(a) & set(b))
