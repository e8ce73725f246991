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


def score(targets: ad.AnnData, results: Sequence[ModelResult], label: str, n_boot: int = 0,
          seed: int = 0) -> pd.DataFrame:
    """Mean PCC over genes per model and split (pooled), tagged with ``label``.

    With ``n_boot > 0`` also the noise ceiling of the targets, the fraction of it each model
    reaches and bootstrap intervals (:func:`stlib.tables.interval_table`).
    """
    from stlib.tables import interval_extras, scored_from_results

    Y = store.split_arrays(targets, ["X"])
    extras = interval_extras(targets, scored_from_results(list(results)), n_boot=n_boot, seed=seed)
    rows = []
    for r in results:
        t = metrics.evaluate(Y, r.predictions, list(targets.var_names))
        for split, row in t.iterrows():
            rows.append({"control": label, "model": r.name, "split": split, "pearson": float(row["pearson"]),
                         "n_genes_correlated": int(row["n_genes_correlated"]), **extras.get((r.name, split), {})})
    return pd.DataFrame(rows)


def per_gene_pcc(targets: ad.AnnData, result: ModelResult, split: str = "test") -> pd.Series:
    """Per-gene Pearson of one model on one split."""
    Y = store.split_arrays(targets, ["X"])
    return metrics.per_gene_metrics(Y[split], result.predictions[split], list(targets.var_names))["pearson"]


def fraction_table(table: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Models x controls: ``"fraction of ceiling [95% CI]"`` on one split (from :func:`score` with ``n_boot``)."""
    from stlib.tables import with_interval

    sub = table[table["split"] == split].reset_index(drop=True)
    sub["cell"] = with_interval(sub["fraction"], sub["fraction_lo"], sub["fraction_hi"], 2)
    w = sub.pivot(index="model", columns="control", values="cell")
    ceil = sub.groupby("control", sort=False)["ceiling"].first()
    w.loc["(noise ceiling, mean PCC)"] = [f"{ceil[c]:.2f}" for c in w.columns]
    return w


def paired_difference(targets: ad.AnnData, a: Sequence[ModelResult], b: Sequence[ModelResult],
                      labels: tuple[str, str], split: str = "test", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model name present in both ``a`` and ``b``: PCC of each and the paired bootstrap
    interval of the difference (``a - b``) on ``split``; "different" only if it excludes 0."""
    from stlib.tables import interval_table, scored_from_results

    names = sorted({r.name for r in a} & {r.name for r in b} - {"depth_only"})
    scored = {**{f"{n} | {labels[0]}": v for n, v in scored_from_results(list(a)).items() if n in names},
              **{f"{n} | {labels[1]}": v for n, v in scored_from_results(list(b)).items() if n in names}}
    _, boots = interval_table(targets, scored, splits=(split,), n_boot=n_boot, seed=seed)
    bs = boots[(split, "target")]
    rows = []
    for n in names:
        d = bs.difference(f"{n} | {labels[0]}", f"{n} | {labels[1]}")
        rows.append({"model": n, f"PCC, {labels[0]}": bs.point.loc[f"{n} | {labels[0]}", "pcc"],
                     f"PCC, {labels[1]}": bs.point.loc[f"{n} | {labels[1]}", "pcc"],
                     "difference": d["difference"], "95% interval": f"[{d['lo']:+.3f}, {d['hi']:+.3f}]",
                     "verdict": "different" if d["excludes_zero"] else "not distinguishable"})
    return pipeline.show(pd.DataFrame(rows).set_index("model"))
