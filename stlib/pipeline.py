"""Glue between the stored artifacts and the model functions, so that notebooks stay thin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, metrics, store
from stlib._utils import SPLITS
from stlib.models._base import ModelResult

#: Feature sets of the paper: single-spot or KNN-pooled image PCA, each with the graph SVD.
FEATURE_SETS: dict[str, list[str]] = {
    "single": ["X_img_pca", "X_graph_svd"],
    "knn": ["X_img_knn_pca", "X_graph_svd"],
}


def model_name(base: str, features: str) -> str:
    """``"ridge"`` for single-spot features, ``"knn_ridge"`` for KNN-pooled ones."""
    return base if features == "single" else f"{features}_{base}"


def inputs(targets: ad.AnnData, features: str = "single") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Features of every split, and the targets of train and valid only (never test)."""
    X = get.split_arrays(targets, FEATURE_SETS[features])
    Y = get.split_arrays(targets, ["X"])
    return X, Y["train"], Y["valid"]


#: The full backbone features that the HEST probe reads (single-spot, KNN-pooled).
PROBE_FEATURES: dict[str, str] = {"single": "X_cnn", "knn": "X_cnn_knn"}


def probe_inputs(targets: ad.AnnData, features: str = "single",
                 split_key: str = "split") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Backbone features of every split, the train targets and each train spot's section
    (the probe's cross-validation folds); never the valid or test targets."""
    X = get.split_arrays(targets, [PROBE_FEATURES[features]])
    Y = get.split_arrays(targets, ["X"])
    train = (targets.obs[split_key] == "train").to_numpy()
    return X, Y["train"], targets.obs.loc[train, "section"].astype(str).to_numpy()


def glm_offsets(targets: ad.AnnData) -> dict[str, np.ndarray] | None:
    """Log size factors per split for normalised targets (``paper``, ``normalize_log1p``), else ``None``.

    With this offset a GLM's rate at offset 0 is the count at the reference size (the
    section median for ``paper``, 10,000 for ``normalize_log1p``), so ``log1p`` of it is in
    the target's space.
    """
    if targets.uns["target"]["transform"] == "log1p":
        return None
    return {s: a[:, 0] for s, a in get.split_arrays_obs(targets, "log_size_factor").items()}


def scores(targets: ad.AnnData, result: ModelResult | ad.AnnData, *, protocol: str = "pooled") -> pd.DataFrame:
    """Mean-over-genes metrics per split for one model (rounded for display)."""
    if isinstance(result, ModelResult):
        space = result.settings.get("score_space", "target")
        pred = result.counts if space == "counts" else result.predictions
    else:
        space = store.model_settings(result).get("score_space", "target")
        pred = get.split_arrays(result, ["counts" if space == "counts" else "X"])
    Y = get.counts_by_split(targets) if space == "counts" else get.split_arrays(targets, ["X"])
    groups = get.section_groups(targets, pred)
    table = metrics.evaluate(Y, pred, list(targets.var_names), groups=groups)
    table = table[table["protocol"] == protocol].drop(columns="protocol")
    return table.loc[[s for s in SPLITS if s in table.index]]


def show(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Round a metric table for printing (exact-output regression checks compare text)."""
    out = table.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype(float).round(digits)
    return out


def fit_summary(results: Sequence[ModelResult], targets: ad.AnnData) -> pd.DataFrame:
    """Valid and test mean Pearson / MSE of several models, one row each."""
    rows = []
    for r in results:
        s = scores(targets, r)
        row = {"model": r.name}
        for split in ("train", "valid", "test"):
            if split in s.index:
                row[f"{split} PCC"] = float(s.loc[split, "pearson"])
                row[f"{split} MSE"] = float(s.loc[split, "mse"])
        rows.append(row)
    return show(pd.DataFrame(rows).set_index("model"))


def section_graphs(targets: ad.AnnData, rep: str = "X_img_knn_pca", k: int = 15, split_key: str = "split"):
    """Per split, one :class:`~stlib.models.gnn.SectionGraph` per section (in ``adata`` order).

    Node features ``obsm[rep]``, a directed ``k``-nearest-spot graph from ``obsm["spatial"]``,
    and targets for train and valid only (test sections get ``y=None``).
    """
    from stlib.models.gnn import SectionGraph, knn_adjacency

    graphs: dict[str, list] = {}
    for s in SPLITS:
        sub = targets[(targets.obs[split_key] == s).to_numpy()]
        if sub.n_obs == 0:
            continue
        secs = list(pd.unique(sub.obs["section"].astype(str)))
        order = np.concatenate([np.flatnonzero((sub.obs["section"] == sec).to_numpy()) for sec in secs])
        if not np.array_equal(order, np.arange(sub.n_obs)):
            raise ValueError(f"{s}: spots of a section are not contiguous; sort the AnnData by section first")
        graphs[s] = []
        for sec in secs:
            m = (sub.obs["section"] == sec).to_numpy()
            graphs[s].append(SectionGraph(
                x=np.asarray(sub.obsm[rep][m], dtype=np.float64),
                adjacency=knn_adjacency(np.asarray(sub.obsm["spatial"][m]), k=k),
                y=np.asarray(sub.X[m], dtype=np.float64) if s in ("train", "valid") else None,
                section=sec,
            ))
    return graphs


def cached(func, cache_dir: str | None):
    """``func`` memoised on disk with :class:`joblib.Memory` (keyed by its code and arguments).

    A rerun with the same inputs reads the fitted result back instead of refitting; any change
    of data, parameters or code refits. ``cache_dir=None`` disables the cache.
    """
    if not cache_dir:
        return func
    from joblib import Memory

    return Memory(location=str(store.resolve(cache_dir)), verbose=0).cache(func)


def seed_spread(results: Mapping[int, ModelResult], targets: ad.AnnData,
                metric: str = "pearson") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One model refitted with several seeds: its mean-over-genes ``metric`` per seed and split,
    and their mean, standard deviation and range over the seeds (rounded for display).

    ``results`` maps each seed to its fit (same data, same settings, only the seed differs).
    """
    if len(results) < 2:
        raise ValueError(f"a seed spread needs at least 2 seeds, got {len(results)}")
    per_seed = pd.DataFrame({seed: scores(targets, r)[metric] for seed, r in sorted(results.items())}).T
    per_seed.index.name = "seed"
    per_seed = per_seed[[s for s in SPLITS if s in per_seed.columns]]
    summary = pd.DataFrame({"mean": per_seed.mean(), "sd": per_seed.std(ddof=1),
                            "min": per_seed.min(), "max": per_seed.max(), "seeds": len(per_seed)})
    summary.index.name = "split"
    return show(per_seed), show(summary)
