"""Tests for stlib.tl.features: PCA, KNN pooling, spatial graph, graph SVD."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA, TruncatedSVD

from stlib.errors import DataError
from stlib.tl.features import graph_svd, knn_pool, pca_fit_transform, spatial_graph


def make_adata(n_per_section: tuple[int, ...] = (60, 50), d: int = 40, seed: int = 0) -> ad.AnnData:
    """Sections with OVERLAPPING coordinate ranges (so a cross-section graph would be easy to get)."""
    rng = np.random.default_rng(seed)
    n = sum(n_per_section)
    sections = np.repeat([f"S{i}" for i in range(len(n_per_section))], n_per_section)
    coords = rng.uniform(0, 1000, size=(n, 2))
    splits = np.array(["train", "valid", "test"])[rng.integers(0, 3, size=n)]
    obs = pd.DataFrame(
        {"section": pd.Categorical(sections), "split": pd.Categorical(splits)},
        index=[f"spot{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm["spatial"] = coords
    # low-rank structure + noise so PCA has something to find
    latent = rng.normal(size=(n, 5))
    adata.obsm["X_cnn"] = (latent @ rng.normal(size=(5, d)) + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
    return adata


# --------------------------------------------------------------------------- #
# PCA
# --------------------------------------------------------------------------- #


def test_pca_matches_sklearn_on_train_spots() -> None:
    adata = make_adata()
    pca = pca_fit_transform(adata, n_comps=8)
    train = (adata.obs["split"] == "train").to_numpy()
    ref = PCA(n_components=8, svd_solver="full").fit(adata.obsm["X_cnn"][train].astype(np.float64))
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(ref.components_), atol=1e-8)
    expected = ref.transform(adata.obsm["X_cnn"].astype(np.float64))
    got = adata.obsm["X_img_pca"]
    assert got.shape == (adata.n_obs, 8) and got.dtype == np.float32
    # same up to the sign of each component
    signs = np.sign((got * expected).sum(axis=0))
    np.testing.assert_allclose(got, expected * signs, rtol=1e-4, atol=1e-4)
    info = adata.uns["X_img_pca"]
    np.testing.assert_allclose(info["explained_variance_ratio"], ref.explained_variance_ratio_)
    assert info["n_fit"] == int(train.sum()) and info["fit_on"] == ["train"]
    assert info["components"].shape == (8, 40)


def test_pca_ignores_test_spots() -> None:
    a = make_adata()
    b = a.copy()
    test = (b.obs["split"] == "test").to_numpy()
    b.obsm["X_cnn"][test] = np.random.default_rng(9).normal(size=(test.sum(), 40)) * 100
    pa = pca_fit_transform(a, n_comps=6)
    pb = pca_fit_transform(b, n_comps=6)
    np.testing.assert_array_equal(pa.components_, pb.components_)
    np.testing.assert_array_equal(a.obsm["X_img_pca"][~test], b.obsm["X_img_pca"][~test])
    assert not np.allclose(a.obsm["X_img_pca"][test], b.obsm["X_img_pca"][test])
    # ... whereas changing a training spot does change the fit
    c = a.copy()
    first_train = int(np.flatnonzero((c.obs["split"] == "train").to_numpy())[0])
    c.obsm["X_cnn"][first_train] += 50
    pc = pca_fit_transform(c, n_comps=6)
    assert not np.allclose(pa.components_, pc.components_)


def test_pca_fit_on_several_splits_and_deterministic() -> None:
    adata = make_adata()
    p1 = pca_fit_transform(adata, n_comps=4, fit_on=["train", "valid"], key_added="P")
    first = adata.obsm["P"].copy()
    p2 = pca_fit_transform(adata, n_comps=4, fit_on=("train", "valid"), key_added="P")
    np.testing.assert_array_equal(first, adata.obsm["P"])
    np.testing.assert_array_equal(p1.components_, p2.components_)
    n_tv = int(adata.obs["split"].isin(["train", "valid"]).sum())
    assert adata.uns["P"]["n_fit"] == n_tv


def test_pca_errors() -> None:
    adata = make_adata((10, 10), d=5)
    with pytest.raises(DataError, match="no representation 'nope'"):
        pca_fit_transform(adata, use_rep="nope")
    with pytest.raises(DataError, match="cannot fit 8 components"):
        pca_fit_transform(adata, n_comps=8)
    with pytest.raises(DataError, match="cannot fit 3 components on 0 spot"):
        pca_fit_transform(adata, n_comps=3, fit_on="holdout")
    adata.obsm["X_cnn"][0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        pca_fit_transform(adata, n_comps=2)


# --------------------------------------------------------------------------- #
# KNN pooling
# --------------------------------------------------------------------------- #


def brute_knn_mean(adata: ad.AnnData, k: int, include_self: bool) -> np.ndarray:
    X = adata.obsm["X_cnn"].astype(np.float64)
    xy = adata.obsm["spatial"]
    sec = adata.obs["section"].to_numpy()
    out = np.zeros_like(X)
    for i in range(adata.n_obs):
        same = np.flatnonzero(sec == sec[i])
        d = np.linalg.norm(xy[same] - xy[i], axis=1)
        order = same[np.argsort(d)]
        assert order[0] == i  # distinct random coordinates: self is nearest
        chosen = order[:k] if include_self else order[1 : k + 1]
        out[i] = X[chosen].mean(axis=0)
    return out


@pytest.mark.parametrize("include_self", [True, False])
def test_knn_pool_equals_brute_force(include_self: bool) -> None:
    adata = make_adata()
    knn_pool(adata, n_neighbors=15, include_self=include_self)
    got = adata.obsm["X_cnn_knn"]
    assert got.shape == adata.obsm["X_cnn"].shape and got.dtype == np.float32
    np.testing.assert_allclose(got, brute_knn_mean(adata, 15, include_self), rtol=1e-5, atol=1e-5)
    assert adata.uns["X_cnn_knn"]["include_self"] is include_self


def test_knn_pool_self_first_even_with_duplicate_coordinates() -> None:
    adata = make_adata((20,), d=3)
    adata.obsm["spatial"][1] = adata.obsm["spatial"][0]  # two spots on the same spot centre
    adata.obsm["X_cnn"][:] = 0
    adata.obsm["X_cnn"][0] = 1.0
    knn_pool(adata, n_neighbors=1, include_self=True)
    np.testing.assert_array_equal(adata.obsm["X_cnn_knn"][0], [1, 1, 1])  # itself, not its twin
    np.testing.assert_array_equal(adata.obsm["X_cnn_knn"][1], [0, 0, 0])
    knn_pool(adata, n_neighbors=1, include_self=False)
    np.testing.assert_array_equal(adata.obsm["X_cnn_knn"][1], [1, 1, 1])  # its twin


def test_knn_pool_small_section_names_it() -> None:
    adata = make_adata((30, 14))
    with pytest.raises(DataError, match=r"^S1: section has 14 spot\(s\)"):
        knn_pool(adata, n_neighbors=15)
    knn_pool(adata, n_neighbors=14)  # 14 spots, self included: fine
    with pytest.raises(DataError, match="S1"):
        knn_pool(adata, n_neighbors=14, include_self=False)


# --------------------------------------------------------------------------- #
# Spatial graph and SVD
# --------------------------------------------------------------------------- #


def test_spatial_graph_15_neighbours_within_sections() -> None:
    adata = make_adata()
    spatial_graph(adata, n_neighs=15)
    conn = sp.csr_matrix(adata.obsp["spatial_connectivities"])
    dist = sp.csr_matrix(adata.obsp["spatial_distances"])
    assert conn.shape == (adata.n_obs, adata.n_obs)
    np.testing.assert_array_equal(np.diff(conn.indptr), 15)
    assert conn.diagonal().sum() == 0
    codes = adata.obs["section"].cat.codes.to_numpy()
    coo = conn.tocoo()
    assert (codes[coo.row] == codes[coo.col]).all()
    # the neighbours are the 15 nearest same-section spots
    xy = adata.obsm["spatial"]
    for i in (0, 7, adata.n_obs - 1):
        same = np.flatnonzero(codes == codes[i])
        d = np.linalg.norm(xy[same] - xy[i], axis=1)
        expected = set(same[np.argsort(d)[1:16]])
        assert set(conn[i].indices) == expected
        np.testing.assert_allclose(
            np.sort(dist[i].data), np.sort(np.linalg.norm(xy[list(expected)] - xy[i], axis=1)), rtol=1e-6
        )


def test_spatial_graph_prints_no_log_line(capfd) -> None:
    """squidpy logs "Creating graph using ..." through spatialdata's rich logger: kept out of outputs."""
    import logging

    import squidpy  # noqa: F401  (sets up spatialdata's logger)

    logger = logging.getLogger("spatialdata._logging")
    level = logger.level
    spatial_graph(make_adata(), n_neighs=15)
    out, err = capfd.readouterr()
    assert "Creating graph" not in out + err
    assert logger.level == level  # restored afterwards


def test_spatial_graph_small_section() -> None:
    adata = make_adata((30, 15))
    with pytest.raises(DataError, match="^S1: section has 15 spot"):
        spatial_graph(adata, n_neighs=15)


def test_graph_svd_per_section() -> None:
    adata = make_adata((60, 50))
    spatial_graph(adata, n_neighs=15)
    graph_svd(adata, n_components=8, seed=0)
    emb = adata.obsm["X_graph_svd"].copy()
    assert emb.shape == (adata.n_obs, 8) and np.isfinite(emb).all()
    conn = sp.csr_matrix(adata.obsp["spatial_connectivities"], dtype=np.float64)
    for sec in ("S0", "S1"):
        idx = np.flatnonzero((adata.obs["section"] == sec).to_numpy())
        ref = TruncatedSVD(8, algorithm="arpack", random_state=0).fit_transform(conn[idx][:, idx])
        np.testing.assert_allclose(emb[idx], ref, rtol=1e-4, atol=1e-5)
        assert len(adata.uns["X_graph_svd"]["explained_variance_ratio"][sec]) == 8
    # deterministic
    graph_svd(adata, n_components=8, seed=0)
    np.testing.assert_array_equal(emb, adata.obsm["X_graph_svd"])
    # S0's embedding depends on S0's graph only
    s1 = np.flatnonzero((adata.obs["section"] == "S1").to_numpy())
    other = adata.copy()
    other.obsm["spatial"][s1] = np.random.default_rng(5).uniform(0, 1000, size=(s1.size, 2))
    spatial_graph(other, n_neighs=15)
    graph_svd(other, n_components=8, seed=0)
    s0 = np.flatnonzero((adata.obs["section"] == "S0").to_numpy())
    np.testing.assert_array_equal(emb[s0], other.obsm["X_graph_svd"][s0])
    assert not np.allclose(emb[s1], other.obsm["X_graph_svd"][s1])


def test_graph_svd_errors() -> None:
    adata = make_adata((40, 20))
    with pytest.raises(DataError, match="spatial_graph first"):
        graph_svd(adata, n_components=4)
    spatial_graph(adata, n_neighs=15)
    with pytest.raises(DataError, match="^S1: section has 20 spot"):
        graph_svd(adata, n_components=20)
    graph_svd(adata, n_components=19)
    assert adata.obsm["X_graph_svd"].shape == (60, 19)
