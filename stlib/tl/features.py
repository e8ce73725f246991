"""Low-dimensional spot features: image PCA, KNN pooling and spatial-graph SVD.

The feature side of the pipeline, following the paper:

- :func:`pca_fit_transform` -- plain PCA of the CNN features, fitted on the
  training spots only and applied to every spot (``obsm["X_img_pca"]``).
- :func:`knn_pool` -- each spot's CNN features averaged over its nearest
  spots of the same section (``obsm["X_cnn_knn"]``), then PCA again
  (``pca_fit_transform(use_rep="X_cnn_knn", key_added="X_img_knn_pca")``).
- :func:`spatial_graph` -- the 15-nearest-neighbour spatial graph of each
  section (squidpy), in ``obsp``.
- :func:`graph_svd` -- truncated SVD of each section's connectivity matrix
  (``obsm["X_graph_svd"]``), the paper's "neighbourhood" embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from stlib import get
from stlib._leaks import RECORDS
from stlib._utils import dense
from stlib.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from anndata import AnnData
    from sklearn.decomposition import PCA

__all__ = ["expression_neighbors", "graph_svd", "knn_pool", "pca_fit_transform", "spatial_graph"]


def _get_rep(adata: AnnData, use_rep: str) -> np.ndarray:
    """Dense float64 copy of ``adata.X`` (``use_rep="X"``) or ``obsm[use_rep]``."""
    if use_rep == "X":
        X = adata.X
    elif use_rep in adata.obsm:
        X = adata.obsm[use_rep]
    else:
        raise DataError("adata.obsm", f"no representation {use_rep!r} (have: {sorted(adata.obsm.keys())})")
    X = dense(X, np.float64)
    if X.ndim != 2:
        raise DataError(f"obsm[{use_rep!r}]", f"expected a 2-d array, got shape {X.shape}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise DataError(f"obsm[{use_rep!r}]", f"{int(bad.sum())} spot(s) have NaN or infinite features")
    return X


def _sections(adata: AnnData, library_key: str) -> list[tuple[str, np.ndarray]]:
    """(section name, obs positions) for each section present, in category order."""
    if library_key not in adata.obs:
        raise DataError("adata.obs", f"no column {library_key!r} naming each spot's section")
    col = adata.obs[library_key]
    labels = col.astype(str).to_numpy()
    present = set(labels)
    order = [str(c) for c in col.cat.categories] if hasattr(col, "cat") else []
    order = [s for s in order if s in present] + sorted(present - set(order))
    return [(s, np.flatnonzero(labels == s)) for s in order]


# --------------------------------------------------------------------------- #
# PCA
# --------------------------------------------------------------------------- #


def pca_fit_transform(
    adata: AnnData,
    use_rep: str = "X_cnn",
    n_comps: int = 32,
    fit_on: str | Sequence[str] = "train",
    split_key: str = "split",
    key_added: str = "X_img_pca",
    seed: int = 0,
) -> PCA:
    """PCA of a spot representation, fitted on some splits, applied to all spots.

    Plain sklearn PCA (centred, not scaled) with the exact
    ``svd_solver="full"``, as in the paper; component signs are fixed by
    sklearn's ``svd_flip``, so the result is deterministic. Only spots whose
    ``obs[split_key]`` is in ``fit_on`` influence the mean and the
    components, so test-spot features never shape the embedding.

    Reads ``obsm[use_rep]`` (or ``X`` for ``use_rep="X"``) and
    ``obs[split_key]``. Writes ``obsm[key_added]`` (``(n_obs, n_comps)``
    float32) and ``uns[key_added] = {"explained_variance_ratio",
    "explained_variance", "components" (n_comps x d), "mean" (d),
    "use_rep", "fit_on", "n_fit", "n_comps", "seed"}``.

    Parameters
    ----------
    adata
        Spots with the representation and split labels.
    use_rep
        ``obsm`` key of the features (e.g. ``"X_cnn"`` or ``"X_cnn_knn"``).
    n_comps
        Number of components.
    fit_on
        Split name(s) whose spots the PCA is fitted on.
    split_key
        ``obs`` column with ``"train"``/``"valid"``/``"test"``.
    key_added
        ``obsm``/``uns`` key for the result.
    seed
        ``random_state`` of the PCA (unused by the exact solver; recorded).

    Returns
    -------
    The fitted :class:`sklearn.decomposition.PCA` (e.g. for
    ``explained_variance_ratio_`` plots).

    Raises
    ------
    DataError
        Missing representation or split column, non-finite features, or
        fewer fitting spots / features than ``n_comps``.
    """
    from sklearn.decomposition import PCA

    X = _get_rep(adata, use_rep)
    if split_key not in adata.obs:
        raise DataError("adata.obs", f"no column {split_key!r} with the train/valid/test split")
    splits = [fit_on] if isinstance(fit_on, str) else list(fit_on)
    mask = get.split_mask(adata, list(splits), split_key)
    n_fit = int(mask.sum())
    if n_comps < 1:
        raise DataError(f"obsm[{use_rep!r}]", f"n_comps must be >= 1, got {n_comps}")
    if n_fit < n_comps or X.shape[1] < n_comps:
        raise DataError(
            f"obsm[{use_rep!r}]",
            f"cannot fit {n_comps} components on {n_fit} spot(s) of split {splits} with {X.shape[1]} feature(s)",
        )
    pca = PCA(n_components=n_comps, svd_solver="full", random_state=seed)
    pca.fit(X[mask])
    adata.obsm[key_added] = pca.transform(X).astype(np.float32)
    adata.uns[key_added] = {
        "explained_variance_ratio": pca.explained_variance_ratio_.astype(np.float64),
        "explained_variance": pca.explained_variance_.astype(np.float64),
        "components": pca.components_.astype(np.float32),
        "mean": pca.mean_.astype(np.float32),
        "use_rep": use_rep,
        "fit_on": splits,
        "n_fit": n_fit,
        "n_comps": int(n_comps),
        "seed": int(seed),
    }
    return pca


# --------------------------------------------------------------------------- #
# KNN pooling
# --------------------------------------------------------------------------- #


def knn_indices(coords: np.ndarray, k: int, include_self: bool, chunk: int = 1024) -> np.ndarray:
    """``(n, k)`` positions of each point's nearest points, deterministic.

    Sorted by distance, ties broken by position. With ``include_self`` the
    point itself comes first (even if another point shares its coordinates)
    followed by its ``k - 1`` nearest others; otherwise its ``k`` nearest others.
    """
    n = coords.shape[0]
    n_other = k - 1 if include_self else k
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        diff = coords[start:stop, None, :] - coords[None, :, :]
        d2 = np.einsum("ijk,ijk->ij", diff, diff)
        rows = np.arange(stop - start)
        d2[rows, rows + start] = np.inf  # exclude self from "others"
        order = np.argsort(d2, axis=1, kind="stable")[:, :n_other]
        if include_self:
            out[start:stop, 0] = rows + start
            out[start:stop, 1:] = order
        else:
            out[start:stop] = order
    return out


def knn_pool(
    adata: AnnData,
    use_rep: str = "X_cnn",
    n_neighbors: int = 15,
    library_key: str = "section",
    spatial_key: str = "spatial",
    key_added: str = "X_cnn_knn",
    include_self: bool = True,
    neighbors_key: str | None = None,
) -> None:
    """Average each spot's features over its nearest spots of the same section.

    With ``neighbors_key`` the neighbours are instead the non-zero entries of each spot's row of
    ``obsp[neighbors_key]`` (the spot itself excluded), e.g. the authors' expression kNN graph
    from :func:`expression_neighbors` (``"expression_distances"``: 14 neighbours for
    ``n_neighbors=15``, as their ``distances[i].nonzero()`` loop).

    With ``include_self=True`` (default) the pool of ``n_neighbors=15`` spots
    is the spot itself plus its 14 nearest other spots -- what sklearn's
    ``NearestNeighbors.kneighbors`` returns when queried with the fitted
    points themselves, and what "the 15 nearest spots" means in the paper.
    With ``include_self=False`` it is the 15 nearest *other* spots.
    Distances are Euclidean on ``obsm[spatial_key]``; ties are broken by spot
    order, so the result is deterministic. Spots of different sections are
    never pooled together.

    Reads ``obsm[use_rep]``, ``obsm[spatial_key]``, ``obs[library_key]``.
    Writes ``obsm[key_added]`` (float32, same shape as ``obsm[use_rep]``) and
    ``uns[key_added] = {"use_rep", "n_neighbors", "include_self",
    "library_key"}``.

    Parameters
    ----------
    adata
        Spots with ``obsm[use_rep]``, ``obs[library_key]`` and ``obsm[spatial_key]`` (or
        ``obsp[neighbors_key]``); modified in place.
    use_rep
        ``obsm`` key of the features to pool (``"X"``: ``adata.X``).
    n_neighbors
        Spots per pool, at least 1 (see ``include_self``); with ``neighbors_key`` only checked.
    library_key
        ``obs`` column naming each spot's section.
    spatial_key
        ``obsm`` key of the spot coordinates; unused with ``neighbors_key``.
    key_added
        ``obsm``/``uns`` key of the result.
    include_self
        Whether the spot itself is one of its ``n_neighbors`` (default) or left out; unused with
        ``neighbors_key`` (the spot is always left out).
    neighbors_key
        ``obsp`` key of a graph whose non-zero entries are each spot's neighbours (edges must stay
        within sections; every spot needs one); ``None`` (default): the spatial kNN.

    Raises
    ------
    DataError
        Missing keys, non-finite features or coordinates, or a section with
        too few spots (fewer than ``n_neighbors``, or not more than
        ``n_neighbors`` when ``include_self=False``), naming the section.
    """
    if n_neighbors < 1:
        raise DataError("knn_pool", f"n_neighbors must be >= 1, got {n_neighbors}")
    X = _get_rep(adata, use_rep)
    if neighbors_key is not None:
        _pool_graph(adata, X, neighbors_key, library_key, key_added, use_rep)
        return
    if spatial_key not in adata.obsm:
        raise DataError("adata.obsm", f"no {spatial_key!r} spot coordinates")
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    if coords.ndim != 2 or not np.isfinite(coords).all():
        raise DataError(f"obsm[{spatial_key!r}]", "coordinates must be a finite (n, 2) array")
    needed = n_neighbors if include_self else n_neighbors + 1
    out = np.empty_like(X)
    for sec, idx in _sections(adata, library_key):
        if idx.size < needed:
            raise DataError(
                sec,
                f"section has {idx.size} spot(s), fewer than the {needed} needed to pool "
                f"{n_neighbors} neighbour(s) (include_self={include_self})",
            )
        nb = knn_indices(coords[idx], n_neighbors, include_self)
        out[idx] = X[idx][nb].mean(axis=1)
    adata.obsm[key_added] = out.astype(np.float32)
    adata.uns[key_added] = {
        "use_rep": use_rep,
        "n_neighbors": int(n_neighbors),
        "include_self": bool(include_self),
        "library_key": library_key,
    }


def _pool_graph(adata: AnnData, X: np.ndarray, neighbors_key: str, library_key: str, key_added: str,
                use_rep: str) -> None:
    """Mean of ``X`` over each spot's graph neighbours (self excluded); see :func:`knn_pool`."""
    if neighbors_key not in adata.obsp:
        raise DataError("adata.obsp", f"no {neighbors_key!r} graph (have: {sorted(adata.obsp.keys())})")
    G = sp.csr_matrix(adata.obsp[neighbors_key], dtype=np.float64)
    G.setdiag(0)
    G.eliminate_zeros()
    G.data[:] = 1.0
    sections = adata.obs[library_key].astype(str).to_numpy()
    C = G.tocoo()
    crossing = int((sections[C.row] != sections[C.col]).sum())
    if crossing:
        raise DataError(f"obsp[{neighbors_key!r}]", f"{crossing} edge(s) join spots of different sections")
    deg = np.asarray(G.sum(axis=1)).ravel()
    if (deg == 0).any():
        bad = sorted(set(sections[deg == 0]))
        raise DataError(f"obsp[{neighbors_key!r}]", f"{int((deg == 0).sum())} spot(s) without neighbours (sections {bad})")
    adata.obsm[key_added] = (sp.diags(1.0 / deg) @ G @ X).astype(np.float32)
    adata.uns[key_added] = {"use_rep": use_rep, "neighbors_key": neighbors_key, "include_self": False,
                            "library_key": library_key, "n_neighbors_mean": float(deg.mean())}


def expression_neighbors(
    adata: AnnData,
    data: AnnData | None = None,
    *,
    n_neighbors: int = 15,
    library_key: str = "section",
    key_added: str = "expression",
    seed: int = 0,
) -> None:
    """The authors' per-section **expression** kNN graph (initial_data_exploration notebook).

    Per section, on all genes of ``data`` (raw counts; default ``adata`` itself; the genes
    detected in the section, whatever ``data.var`` holds):
    :func:`scanpy.pp.normalize_total`, :func:`scanpy.pp.log1p`, :func:`scanpy.pp.pca` (scanpy's
    default 50 components), :func:`scanpy.pp.neighbors` (``n_neighbors``, UMAP connectivities,
    ``random_state=seed``). The authors used this graph for "KNN pooling", for the adjacency
    SVD and for the GNN's edges. It is built from every spot's own expression, test spots
    included: **a leak** of the target into the features (``uns[key_added]["leak"]``).

    Writes block-diagonal ``obsp[key_added + "_distances"]`` and
    ``obsp[key_added + "_connectivities"]`` in ``adata``'s spot order, and ``uns[key_added]``.

    Parameters
    ----------
    adata
        Spots with ``obs[library_key]``; receives the graph.
    data
        The raw counts (all genes) of the same spots in the same order, in ``X``; default ``adata``.
    n_neighbors
        ``n_neighbors`` of :func:`scanpy.pp.neighbors` (the spot itself included); each section
        needs more spots than this.
    library_key
        ``obs`` column naming each spot's section.
    key_added
        Prefix of the two ``obsp`` keys, and the ``uns`` key.
    seed
        ``random_state`` of the PCA and of the neighbours.

    Raises
    ------
    DataError
        ``data`` and ``adata`` with different spots (or order), or a section with ``n_neighbors``
        spots or fewer (naming it).
    """
    import scanpy as sc
    from anndata import AnnData

    from stlib._compat import import_tf

    import_tf()  # umap (scanpy's neighbours) imports TensorFlow when present: import it quietly first
    data = adata if data is None else data
    if not data.obs_names.equals(adata.obs_names):
        raise DataError("data", "data and adata hold different spots (or a different order)")
    n = adata.n_obs
    dist_blocks, conn_blocks = [], []
    for sec, idx in _sections(adata, library_key):
        if idx.size <= n_neighbors:
            raise DataError(sec, f"section has {idx.size} spot(s); a {n_neighbors}-neighbour graph needs more")
        X = sp.csr_matrix(data.X[idx], dtype=np.float32)
        # a bare AnnData of the section's counts, as the authors built one per section: no var
        # columns, so that scanpy's PCA cannot pick up a `highly_variable` column of `data`
        # (from gene selection) and silently use those genes only
        sub = AnnData(X=X[:, np.asarray((X > 0).sum(axis=0)).ravel() > 0])
        sc.pp.normalize_total(sub)
        sc.pp.log1p(sub)
        sc.pp.pca(sub, random_state=seed)
        sc.pp.neighbors(sub, n_neighbors=n_neighbors, random_state=seed)
        dist_blocks.append((idx, sp.csr_matrix(sub.obsp["distances"])))
        conn_blocks.append((idx, sp.csr_matrix(sub.obsp["connectivities"])))

    def assemble(blocks: list[tuple[np.ndarray, sp.csr_matrix]]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for idx, B in blocks:
            c = B.tocoo()
            rows.append(idx[c.row])
            cols.append(idx[c.col])
            vals.append(c.data)
        M = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        M.sort_indices()
        return M

    adata.obsp[key_added + "_distances"] = assemble(dist_blocks)
    adata.obsp[key_added + "_connectivities"] = assemble(conn_blocks)
    adata.uns[key_added] = {
        "n_neighbors": int(n_neighbors), "seed": int(seed), "library_key": library_key,
        "recipe": "per section: normalize_total, log1p, pca (50), neighbors (umap connectivities)",
        "leak": RECORDS["neighbors"],
    }


# --------------------------------------------------------------------------- #
# Spatial graph and its SVD
# --------------------------------------------------------------------------- #


def spatial_graph(
    adata: AnnData,
    n_neighs: int = 15,
    library_key: str = "section",
    spatial_key: str = "spatial",
) -> None:
    """k-nearest-neighbour spatial graph within each section (squidpy).

    Calls ``squidpy.gr.spatial_neighbors_knn(n_neighs=n_neighs,
    library_key=library_key)`` (the generic-coordinate kNN builder): each spot is linked to its
    ``n_neighs`` nearest other spots of its own section (the graph is
    directed: spot ``j`` may be among ``i``'s neighbours without the
    converse). Then checks that no edge joins two sections.

    Reads ``obsm[spatial_key]``, ``obs[library_key]``. Writes (via squidpy)
    ``obsp["spatial_connectivities"]`` (0/1 CSR), ``obsp["spatial_distances"]``
    (CSR) and ``uns["spatial_neighbors"]``.

    Parameters
    ----------
    adata
        Spots with ``obsm[spatial_key]`` and ``obs[library_key]``; modified in place
        (``obs[library_key]`` is made categorical when it is not).
    n_neighs
        Neighbours per spot; each section needs more spots than this.
    library_key
        ``obs`` column naming each spot's section.
    spatial_key
        ``obsm`` key of the spot coordinates.

    Raises
    ------
    DataError
        A section with ``n_neighs`` spots or fewer (naming it), or an edge
        across sections.
    """
    from stlib._compat import import_squidpy, quiet_spatialdata

    sq = import_squidpy()
    secs = _sections(adata, library_key)
    for sec, idx in secs:
        if idx.size <= n_neighs:
            raise DataError(sec, f"section has {idx.size} spot(s); a {n_neighs}-neighbour graph needs more")
    if not hasattr(adata.obs[library_key], "cat"):
        adata.obs[library_key] = adata.obs[library_key].astype("category")
    with quiet_spatialdata():
        sq.gr.spatial_neighbors_knn(adata, n_neighs=n_neighs, library_key=library_key, spatial_key=spatial_key)
    conn = sp.coo_matrix(adata.obsp["spatial_connectivities"])
    codes = adata.obs[library_key].cat.codes.to_numpy()
    crossing = int((codes[conn.row] != codes[conn.col]).sum())
    if crossing:
        raise DataError("obsp['spatial_connectivities']", f"{crossing} edge(s) join spots of different sections")


def graph_svd(
    adata: AnnData,
    n_components: int = 32,
    library_key: str = "section",
    key_added: str = "X_graph_svd",
    seed: int = 0,
    connectivity_key: str = "spatial_connectivities",
) -> None:
    """Truncated SVD of each section's spatial connectivity matrix.

    For each section the ``(n_s, n_s)`` block of ``obsp[connectivity_key]``
    is decomposed with ``TruncatedSVD(n_components, algorithm="arpack",
    random_state=seed)`` (seeded start vector, signs fixed by sklearn's
    ``svd_flip``: deterministic) and ``fit_transform`` gives each spot's
    coordinates. This is the paper's approach; note its weakness: each
    section gets its own SVD, so component ``k`` of one section has no
    relation to component ``k`` of another, yet downstream models treat the
    columns as the same features across sections.

    Reads ``obsp[connectivity_key]`` (from :func:`spatial_graph`) and
    ``obs[library_key]``. Writes ``obsm[key_added]`` (``(n_obs,
    n_components)`` float32) and ``uns[key_added] = {"n_components", "seed",
    "library_key", "explained_variance_ratio": {section: array}}``.

    Parameters
    ----------
    adata
        Spots with ``obsp[connectivity_key]`` and ``obs[library_key]``; modified in place.
    n_components
        Components per section; each section needs more spots than this.
    library_key
        ``obs`` column naming each spot's section.
    key_added
        ``obsm``/``uns`` key of the result.
    seed
        ``random_state`` of the SVD.
    connectivity_key
        ``obsp`` key of the graph (default :func:`spatial_graph`'s); also recorded in
        ``uns[key_added]``.

    Raises
    ------
    DataError
        No connectivity matrix, or a section with ``n_components`` spots or
        fewer (naming it).
    """
    from sklearn.decomposition import TruncatedSVD

    if connectivity_key not in adata.obsp:
        raise DataError("adata.obsp", f"no {connectivity_key!r}; run stlib.tl.features.spatial_graph first")
    conn = sp.csr_matrix(adata.obsp[connectivity_key], dtype=np.float64)
    secs = _sections(adata, library_key)
    for sec, idx in secs:
        if idx.size <= n_components:
            raise DataError(sec, f"section has {idx.size} spot(s); an SVD with {n_components} components needs more")
    out = np.zeros((adata.n_obs, n_components), dtype=np.float32)
    evr: dict[str, Any] = {}
    for sec, idx in secs:
        block = conn[idx][:, idx]
        svd = TruncatedSVD(n_components=n_components, algorithm="arpack", random_state=seed)
        out[idx] = svd.fit_transform(block).astype(np.float32)
        evr[sec] = svd.explained_variance_ratio_.astype(np.float64)
    adata.obsm[key_added] = out
    adata.uns[key_added] = {
        "n_components": int(n_components),
        "seed": int(seed),
        "library_key": library_key,
        "connectivity_key": connectivity_key,
        "explained_variance_ratio": evr,
    }
