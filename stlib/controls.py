"""Controls for chapter 9: what do the correlations of Table I measure?

Two questions, each answered by refitting a compact set of models with one thing changed:

- **Sequencing depth**: the same genes-and-models recipe under each target transform
  (``paper``, the authors' code; ``log1p``, the report's sentence; ``normalize_log1p``),
  with the depth-only reference.
- **What the CNN knows**: the same recipe on features from a network with random weights
  instead of ImageNet weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from stlib import features, metrics, pipeline, pp, store
from stlib.models import linear
from stlib.models._base import ModelResult

FEATURE_KEYS = ("X_cnn", "X_img_pca", "X_cnn_knn", "X_img_knn_pca", "X_graph_svd")


def targets_with_features(data: ad.AnnData, feats: ad.AnnData, transform: str, n_genes: int = 250) -> ad.AnnData:
    """Targets for ``transform`` (genes chosen on train), with the embeddings of ``feats`` attached."""
    if not data.obs_names.equals(feats.obs_names):
        raise ValueError("data and features hold different spots")
    d = data.copy()
    genes = pp.select_genes(d, n_genes, transform=transform, fit_on="train")
    t = pp.make_targets(d, genes, transform=transform)
    for k in FEATURE_KEYS:
        if k in feats.obsm:
            t.obsm[k] = np.asarray(feats.obsm[k])
    return t


def embed(targets: ad.AnnData, *, n_comps: int = 32, n_neighbors: int = 15, seed: int = 0) -> None:
    """Image PCA, KNN-pooled PCA and graph SVD from ``obsm["X_cnn"]`` (all fitted on train)."""
    features.pca_fit_transform(targets, "X_cnn", n_comps=n_comps, fit_on="train", key_added="X_img_pca", seed=seed)
    features.knn_pool(targets, "X_cnn", n_neighbors=n_neighbors, key_added="X_cnn_knn")
    features.pca_fit_transform(targets, "X_cnn_knn", n_comps=n_comps, fit_on="train", key_added="X_img_knn_pca",
                               seed=seed)
    if "X_graph_svd" not in targets.obsm:
        features.spatial_graph(targets, n_neighs=n_neighbors)
        features.graph_svd(targets, n_components=n_comps, seed=seed)


def compact_models(targets: ad.AnnData, model_cache: str | None = None) -> list[ModelResult]:
    """Ridge and Lasso on single-spot and KNN-pooled features, plus the depth-only reference."""
    from stlib.tables import reference_models

    out = []
    fit = pipeline.cached(linear.fit_linear, model_cache)
    for feats in ("single", "knn"):
        X, Ytr, Yva = pipeline.inputs(targets, feats)
        for kind in ("ridge", "lasso"):
            out.append(fit(X, Ytr, Yva, kind=kind, genes=list(targets.var_names), name=pipeline.model_name(kind, feats)))
    out.append(reference_models(targets)[1])
    return out


def score(targets: ad.AnnData, results: Sequence[ModelResult], label: str) -> pd.DataFrame:
    """Mean PCC over genes per model and split (pooled), tagged with ``label``."""
    Y = store.split_arrays(targets, ["X"])
    rows = []
    for r in results:
        t = metrics.evaluate(Y, r.predictions, list(targets.var_names))
        for split, row in t.iterrows():
            rows.append({"control": label, "model": r.name, "split": split, "pearson": float(row["pearson"]),
                         "n_genes_correlated": int(row["n_genes_correlated"])})
    return pd.DataFrame(rows)


def per_gene_pcc(targets: ad.AnnData, result: ModelResult, split: str = "test") -> pd.Series:
    """Per-gene Pearson of one model on one split."""
    Y = store.split_arrays(targets, ["X"])
    return metrics.per_gene_metrics(Y[split], result.predictions[split], list(targets.var_names))["pearson"]
