"""Model inputs: the feature sets of the paper, the arrays each model family reads, the GLM
offsets, the per-section graphs of the GNNs, and the on-disk memo of fits.

Every function reads the targets and embeddings of an AnnData (``targets.h5ad`` joined with its
embeddings) and returns per-split arrays; the targets of the test split are never returned.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from stlib import get
from stlib._utils import SPLITS, resolve


#: Feature sets of the paper: single-spot or KNN-pooled image PCA, each with the graph SVD.
FEATURE_SETS: dict[str, list[str]] = {
    "single": ["X_img_pca", "X_graph_svd"],
    "knn": ["X_img_knn_pca", "X_graph_svd"],
}


def model_name(base: str, features: str) -> str:
    """``"ridge"`` for single-spot features, ``"knn_ridge"`` for KNN-pooled ones.

    Parameters
    ----------
    base
        The model's name on single-spot features, e.g. ``"ridge"``.
    features
        A key of :data:`FEATURE_SETS`: ``"single"`` keeps ``base``; any other value is prefixed.

    Returns
    -------
    str
        ``base``, or ``f"{features}_{base}"``.
    """
    return base if features == "single" else f"{features}_{base}"


def arrays(targets: ad.AnnData, features: str = "single") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Features of every split, and the targets of train and valid only (never test).

    Parameters
    ----------
    targets
        Targets in ``X``, the embeddings of :data:`FEATURE_SETS` in ``obsm`` and ``obs["split"]``.
    features
        ``"single"`` (image PCA + graph SVD) or ``"knn"`` (KNN-pooled image PCA + graph SVD).

    Returns
    -------
    tuple
        ``(X, Y_train, Y_valid)``: split -> float64 ``(n_spots, n_features)`` features (the
        ``obsm`` blocks side by side), and the ``(n_spots, n_genes)`` targets of train and valid.
    """
    X = get.split_arrays(targets, FEATURE_SETS[features])
    Y = get.split_arrays(targets, ["X"])
    return X, Y["train"], Y["valid"]


#: The full backbone features that the HEST probe reads (single-spot, KNN-pooled).
PROBE_FEATURES: dict[str, str] = {"single": "X_cnn", "knn": "X_cnn_knn"}


def probe_inputs(targets: ad.AnnData, features: str = "single",
                 split_key: str = "split") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Backbone features of every split, the train targets and each train spot's section
    (the probe's cross-validation folds); never the valid or test targets.

    Parameters
    ----------
    targets
        Targets in ``X``, the backbone features of :data:`PROBE_FEATURES` in ``obsm``,
        ``obs["split"]`` and ``obs["section"]``.
    features
        ``"single"`` (``obsm["X_cnn"]``) or ``"knn"`` (``obsm["X_cnn_knn"]``).
    split_key
        The ``obs`` column that holds the split, for the train spots' sections only (the
        features and targets are read by ``obs["split"]``).

    Returns
    -------
    tuple
        ``(X, Y_train, groups_train)``: split -> float64 features, the ``(n_train, n_genes)``
        train targets and the ``(n_train,)`` section id of each train spot.
    """
    X = get.split_arrays(targets, [PROBE_FEATURES[features]])
    Y = get.split_arrays(targets, ["X"])
    train = get.split_mask(targets, "train", split_key)
    return X, Y["train"], targets.obs.loc[train, "section"].astype(str).to_numpy()


def glm_offsets(targets: ad.AnnData) -> dict[str, np.ndarray] | None:
    """Log size factors per split for normalised targets (``paper``, ``normalize_log1p``), else ``None``.

    With this offset a GLM's rate at offset 0 is the count at the reference size (the
    section median for ``paper``, 10,000 for ``normalize_log1p``), so ``log1p`` of it is in
    the target's space.

    Parameters
    ----------
    targets
        Targets of :func:`stlib.pp.make_targets`, with ``uns["target"]["transform"]`` and
        ``obs["log_size_factor"]``.

    Returns
    -------
    dict or None
        Split -> ``(n_spots,)`` float64 log size factors; ``None`` for the ``"log1p"`` transform.
    """
    if targets.uns["target"]["transform"] == "log1p":
        return None
    return {s: a[:, 0] for s, a in get.split_arrays_obs(targets, "log_size_factor").items()}


def section_graphs(targets: ad.AnnData, rep: str = "X_img_knn_pca", k: int = 15, split_key: str = "split"):
    """Per split, one :class:`~stlib.models.gnn.SectionGraph` per section (in ``adata`` order).

    Node features ``obsm[rep]``, a directed ``k``-nearest-spot graph from ``obsm["spatial"]``,
    and targets for train and valid only (test sections get ``y=None``).

    Parameters
    ----------
    targets
        Targets in ``X``, ``obsm[rep]``, ``obsm["spatial"]``, ``obs[split_key]`` and
        ``obs["section"]``; the spots of a section must be contiguous within each split (else a
        ``ValueError``).
    rep
        The ``obsm`` key of the node features.
    k
        Neighbours per spot (:func:`~stlib.models.gnn.knn_adjacency`); every section needs more
        than ``k`` spots.
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    dict
        Split -> list of :class:`~stlib.models.gnn.SectionGraph`, one per section in order of first
        appearance; a split without spots is left out.
    """
    from stlib.models.gnn import SectionGraph, knn_adjacency

    graphs: dict[str, list] = {}
    for s in SPLITS:
        sub = targets[get.split_mask(targets, s, split_key)]
        if sub.n_obs == 0:
            continue
        secs = get.sections(sub)
        order = np.concatenate([np.flatnonzero(get.section_mask(sub, sec)) for sec in secs])
        if not np.array_equal(order, np.arange(sub.n_obs)):
            raise ValueError(f"{s}: spots of a section are not contiguous; sort the AnnData by section first")
        graphs[s] = []
        for sec in secs:
            m = get.section_mask(sub, sec)
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
    of data, parameters or code refits. Where the work runs (``n_jobs``, ``scheduler``) is not
    part of the key: it does not change the result. ``cache_dir=None`` disables the cache.

    Parameters
    ----------
    func
        The function to memoise (e.g. :func:`~stlib.models.linear.fit_linear`).
    cache_dir
        Folder of the cache (relative paths are taken from the project root); ``None`` or ``""``
        returns ``func`` itself.

    Returns
    -------
    callable
        ``func``, or its :meth:`joblib.Memory.cache` wrapper (called as ``func`` is).
    """
    if not cache_dir:
        return func
    import inspect

    from joblib import Memory

    params = inspect.signature(func).parameters
    ignore = [k for k in ("n_jobs", "scheduler") if k in params]
    return Memory(location=str(resolve(cache_dir)), verbose=0).cache(func, ignore=ignore)
