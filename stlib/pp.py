"""Preprocessing: quality summary, target genes, targets, Leiden clusters per section.

Functions read and write AnnData in scanpy conventions; nothing is fitted on anything but
the spots of the splits named in ``fit_on`` (train by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from stlib.errors import DataError

Transform = Literal["log1p", "normalize_log1p"]
TRANSFORMS: tuple[str, ...] = ("log1p", "normalize_log1p")
TARGET_SUM = 1e4

GENE_RULE = (
    "On the {fit_on} spots only, take the {n_mean} genes with the highest mean of the target "
    "({transform}), then among them the {n_top} with the highest variance of the target; ties are broken "
    "by gene id. Genes detected in fewer than {min_spots} {fit_on} spots are never candidates."
)


def section_summary(adata: ad.AnnData) -> pd.DataFrame:
    """One row per section: spots, dropped spots, genes detected, counts, annotation, image size.

    Reads ``X`` (raw counts), ``obs["section", "patient", "split", "tumor", "tumor_label"]``,
    ``uns["load_report"]`` and ``uns["spatial"][section]["metadata"]["image_shape"]``.
    """
    rows = []
    report = adata.uns.get("load_report", {})
    for sec in adata.obs["section"].cat.categories if hasattr(adata.obs["section"], "cat") else adata.obs["section"].unique():
        mask = (adata.obs["section"] == sec).to_numpy()
        X = adata.X[mask]
        totals = np.asarray(X.sum(axis=1)).ravel()
        detected = int((np.asarray((X > 0).sum(axis=0)).ravel() > 0).sum())
        obs = adata.obs.loc[mask]
        rep = report.get(sec, {})
        h, w = adata.uns["spatial"][sec]["metadata"]["image_shape"]
        tumor = obs["tumor"] if "tumor" in obs else pd.Series(pd.NA, index=obs.index, dtype="boolean")
        label = obs["tumor_label"] if "tumor_label" in obs else pd.Series(None, index=obs.index)
        rows.append(
            {
                "section": sec,
                "patient": str(obs["patient"].iloc[0]) if "patient" in obs else "",
                "split": str(obs["split"].iloc[0]) if "split" in obs else "",
                "spots listed": rep.get("n_spots_listed", int(mask.sum())),
                "spots kept": int(mask.sum()),
                "dropped: no counts": len(rep.get("dropped_no_counts", [])),
                "dropped: no coords": len(rep.get("dropped_no_coords", [])),
                "genes": rep.get("n_genes_file", adata.n_vars),
                "genes detected": detected,
                "median counts/spot": float(np.median(totals)),
                "tumour": int((tumor == True).sum()),  # noqa: E712  (nullable boolean)
                "non-tumour": int((tumor == False).sum()),  # noqa: E712
                "unknown": int((tumor.isna() & label.notna()).sum()),
                "not annotated": int((tumor.isna() & label.isna()).sum()),
                "image (w x h px)": f"{w:,} x {h:,}",
            }
        )
    return pd.DataFrame(rows).set_index("section")


def _transform(X: sp.spmatrix | np.ndarray, transform: str, totals: np.ndarray, target_sum: float) -> np.ndarray:
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    if transform == "log1p":
        return np.log1p(X)
    if transform == "normalize_log1p":
        if (totals <= 0).any():
            raise DataError("<adata>", f"{int((totals <= 0).sum())} spot(s) with zero total counts cannot be normalised")
        return np.log1p(X / totals[:, None] * target_sum)
    raise ValueError(f"unknown target transform {transform!r}; use one of {TRANSFORMS}")


def select_genes(
    adata: ad.AnnData,
    n_top: int = 250,
    *,
    n_mean: int = 1000,
    transform: str = "log1p",
    fit_on: str | Sequence[str] = "train",
    split_key: str = "split",
    min_spots: int = 10,
    target_sum: float = TARGET_SUM,
) -> list[str]:
    """Choose the target genes on the ``fit_on`` spots only.

    The rule (also written to ``uns["gene_selection"]["rule"]``): among genes detected in at
    least ``min_spots`` fit spots, the ``n_mean`` genes with the highest mean of the target,
    then among those the ``n_top`` with the highest variance of the target.

    Writes ``var["sel_mean"]``, ``var["sel_var"]``, ``var["target_gene"]`` and
    ``uns["gene_selection"]``. Returns the chosen genes, ordered by decreasing variance.
    """
    fit = [fit_on] if isinstance(fit_on, str) else list(fit_on)
    mask = adata.obs[split_key].isin(fit).to_numpy()
    if not mask.any():
        raise DataError("<adata>", f"no spot in split(s) {fit} to select genes on")
    Xf = adata.X[mask]
    totals = np.asarray(Xf.sum(axis=1)).ravel()
    n_detected = np.asarray((Xf > 0).sum(axis=0)).ravel()
    T = _transform(Xf, transform, totals, target_sum)
    mean, var = T.mean(axis=0), T.var(axis=0, ddof=1)
    genes = adata.var_names.to_numpy()
    cand = np.flatnonzero(n_detected >= min_spots)
    if len(cand) < n_top:
        raise DataError("<adata>", f"only {len(cand)} genes detected in >= {min_spots} {fit} spots; need {n_top}")
    order = np.lexsort((genes[cand], -mean[cand]))[:n_mean]
    top_mean = cand[order]
    order2 = np.lexsort((genes[top_mean], -var[top_mean]))[:n_top]
    chosen = top_mean[order2]
    adata.var["sel_mean"] = mean
    adata.var["sel_var"] = var
    adata.var["target_gene"] = False
    adata.var.iloc[chosen, adata.var.columns.get_loc("target_gene")] = True
    rule = GENE_RULE.format(fit_on="+".join(fit), n_mean=n_mean, transform=transform, n_top=n_top, min_spots=min_spots)
    adata.uns["gene_selection"] = {
        "rule": rule,
        "fit_on": fit,
        "n_top": n_top,
        "n_mean": n_mean,
        "min_spots": min_spots,
        "transform": transform,
        "n_fit_spots": int(mask.sum()),
        "genes": [str(g) for g in genes[chosen]],
    }
    return [str(g) for g in genes[chosen]]


def make_targets(
    adata: ad.AnnData,
    genes: Sequence[str],
    *,
    transform: str = "log1p",
    target_sum: float = TARGET_SUM,
) -> ad.AnnData:
    """The modelling AnnData: the chosen genes, targets in ``X``, raw counts in a layer.

    ``transform="log1p"`` is the paper's target, :func:`scanpy.pp.log1p` of raw counts.
    ``transform="normalize_log1p"`` first scales each spot to ``target_sum`` total counts
    (:func:`scanpy.pp.normalize_total`, over all genes), so that sequencing depth no longer
    drives every gene's value.

    Returns a new AnnData with ``X`` = target (float32), ``layers["counts"]`` (raw),
    ``obs["total_counts"]`` (over all genes), ``obs["log_size_factor"]`` =
    ``log(total_counts / target_sum)`` (the GLM offset for ``normalize_log1p``) and
    ``uns["target"]``.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown target transform {transform!r}; use one of {TRANSFORMS}")
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise DataError("<adata>", f"{len(missing)} target gene(s) not in the data, e.g. {missing[:3]}")
    full = adata.copy()
    full.obs["total_counts"] = np.asarray(full.X.sum(axis=1)).ravel().astype(np.float64)
    if (full.obs["total_counts"] <= 0).any():
        raise DataError("<adata>", "spots with zero total counts")
    full.layers["counts"] = full.X.copy()
    if transform == "normalize_log1p":
        sc.pp.normalize_total(full, target_sum=target_sum)
    full.X = full.X.astype(np.float32)
    sc.pp.log1p(full)
    out = full[:, list(genes)].copy()
    out.X = out.X.toarray() if sp.issparse(out.X) else np.asarray(out.X)
    out.obs["log_size_factor"] = np.log(out.obs["total_counts"] / target_sum)
    out.uns["target"] = {
        "transform": transform,
        "target_sum": float(target_sum) if transform == "normalize_log1p" else None,
        "description": (
            "log1p of raw counts (the paper)" if transform == "log1p"
            else f"normalize_total to {target_sum:g} counts per spot (all genes), then log1p"
        ),
    }
    out.uns.pop("log1p", None)
    return out


def leiden_per_section(
    adata: ad.AnnData,
    *,
    resolution: float = 1.0,
    n_pcs: int = 15,
    n_neighbors: int = 15,
    library_key: str = "section",
    key_added: str = "leiden",
    seed: int = 0,
) -> None:
    """Leiden clusters computed separately in each section, on all genes.

    Per section: ``normalize_total`` -> ``log1p`` -> PCA (``n_pcs``) -> kNN graph (Gaussian kernel; avoids umap/numba start-up) -> Leiden
    (igraph flavour, seeded). Writes ``obs[key_added]`` as ``"<section>-<cluster>"``
    (categorical) and ``obs[key_added + "_local"]`` (the cluster number within the section).
    """
    labels = pd.Series(index=adata.obs_names, dtype=object)
    for sec in pd.unique(adata.obs[library_key]):
        sub = adata[adata.obs[library_key] == sec].copy()
        sub = sub[:, np.asarray((sub.X > 0).sum(axis=0)).ravel() > 0].copy()
        sub.X = sub.X.astype(np.float32)
        sc.pp.normalize_total(sub)
        sc.pp.log1p(sub)
        sc.pp.pca(sub, n_comps=min(n_pcs, sub.n_obs - 1, sub.n_vars - 1), random_state=seed)
        sc.pp.neighbors(sub, n_neighbors=n_neighbors, method="gauss", random_state=seed)
        sc.tl.leiden(sub, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
        labels.loc[sub.obs_names] = sub.obs["leiden"].astype(str).to_numpy()
    adata.obs[key_added + "_local"] = pd.Categorical(labels.to_numpy())
    adata.obs[key_added] = pd.Categorical([f"{s}-{c}" for s, c in zip(adata.obs[library_key], labels)])
