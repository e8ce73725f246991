"""Heads on frozen image features (ridge, low-rank) and spatial smoothing of predictions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge

from stlib.errors import DataError
from stlib.models import heads


def lattice(n_side: int, sections: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Square lattices (pitch 1) of ``n_side**2`` spots per section, sections interleaved."""
    xy = np.array([(i, j) for i in range(n_side) for j in range(n_side)], dtype=float)
    coords = np.vstack([xy] * sections)
    secs = np.repeat([f"S{k}" for k in range(sections)], len(xy))
    order = np.random.default_rng(0).permutation(len(coords))
    return coords[order], secs[order]


def make_targets(seed: int = 0, d: int = 40, n_genes: int = 12) -> ad.AnnData:
    coords, secs = lattice(8, 4)
    rng = np.random.default_rng(seed)
    split = np.select([secs == "S0", secs == "S1", secs == "S2"], ["train", "train", "valid"], "test")
    obs = pd.DataFrame({"section": pd.Categorical(secs), "split": split}, index=[f"s{i}" for i in range(len(secs))])
    a = ad.AnnData(X=rng.normal(size=(len(secs), n_genes)), obs=obs)
    a.obsm["spatial"] = coords
    a.obsm["X_cnn"] = rng.normal(size=(len(secs), d))
    return a


def masks_of(a: ad.AnnData) -> dict[str, np.ndarray]:
    return {s: (a.obs["split"] == s).to_numpy() for s in ("train", "valid", "test")}


def test_image_design_fits_on_train_only() -> None:
    a = make_targets()
    Z = heads.image_design(a, n_comps=5, n_neighbors=4)
    tr = masks_of(a)["train"]
    assert Z.shape == (a.n_obs, 10)
    np.testing.assert_allclose(Z[tr].mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(Z[tr].std(0), 1, atol=1e-10)
    pca = PCA(5, svd_solver="full").fit(a.obsm["X_cnn"][tr])
    first = pca.transform(a.obsm["X_cnn"])
    first = (first - first[tr].mean(0)) / first[tr].std(0)
    np.testing.assert_allclose(np.abs(Z[:, :5]), np.abs(first), atol=1e-8)  # up to the components' signs
    b = a.copy()
    test = masks_of(b)["test"]
    b.obsm["X_cnn"][test] += 100 * np.random.default_rng(1).normal(size=(test.sum(), 40))
    Zb = heads.image_design(b, n_comps=5, n_neighbors=4)
    np.testing.assert_array_equal(Zb[~test], Z[~test])  # the test spots change nothing else
    with pytest.raises(DataError, match="X_nope"):
        heads.image_design(a, "X_nope")


def test_ridge_head_is_sklearn_ridge_with_the_valid_choice() -> None:
    a = make_targets()
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(a.n_obs, 6))
    Y = Z @ rng.normal(size=(6, 12)) + 3 * rng.normal(size=(a.n_obs, 12))
    m = masks_of(a)
    res = heads.fit_ridge_head(Z, Y, m, alphas=(0.1, 10.0, 1e3, 1e5))
    grid = pd.DataFrame(res.settings["grid"])
    assert res.settings["alpha"] == grid.loc[grid["valid mse"].idxmin(), "alpha"]
    sk = Ridge(alpha=res.settings["alpha"]).fit(Z[m["train"]], Y[m["train"]])
    for s in m:
        np.testing.assert_allclose(res.predictions[s], sk.predict(Z[m[s]]), atol=1e-8)
    Y2 = Y.copy()
    Y2[m["test"]] = 0  # test targets take no part
    again = heads.fit_ridge_head(Z, Y2, m, alphas=(0.1, 10.0, 1e3, 1e5))
    np.testing.assert_array_equal(again.predictions["test"], res.predictions["test"])
    with pytest.raises(DataError, match="valid"):
        heads.fit_ridge_head(Z, Y, {"train": m["train"]})


def test_lowrank_head_finds_a_low_rank_signal() -> None:
    a = make_targets()
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(a.n_obs, 10))
    W = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 12))  # the genes depend on 2 directions of Z
    Y = Z @ W + 1.5 * rng.normal(size=(a.n_obs, 12))
    m = masks_of(a)
    for method in ("pca", "rrr"):
        res = heads.fit_lowrank_head(Z, Y, m, ranks=(1, 2, 4, 8, 12), alphas=(1.0, 10.0), method=method)
        assert res.settings["rank"] <= 4, res.settings
        full = heads.fit_lowrank_head(Z, Y, m, ranks=(12,), alphas=(10.0,), method=method)
        ridge = heads.fit_ridge_head(Z, Y, m, alphas=(10.0,))
        np.testing.assert_allclose(full.predictions["test"], ridge.predictions["test"], atol=1e-8)  # full rank = ridge
    with pytest.raises(ValueError, match="method"):
        heads.fit_lowrank_head(Z, Y, m, method="svd")


def test_spatial_smooth_uses_neighbours_of_the_same_section() -> None:
    coords, secs = lattice(5, 2)
    P = np.random.default_rng(4).normal(size=(len(coords), 3))
    np.testing.assert_array_equal(heads.spatial_smooth(P, coords, secs, weight=0.0), P)
    S = heads.spatial_smooth(P, coords, secs, n_neighbors=4, weight=1.0)
    centre = np.flatnonzero((coords == [2, 2]).all(1) & (secs == "S0"))[0]
    nb = np.flatnonzero((np.abs(coords - [2, 2]).sum(1) == 1) & (secs == "S0"))
    assert len(nb) == 4
    np.testing.assert_allclose(S[centre], P[nb].mean(0))
    half = heads.spatial_smooth(P, coords, secs, n_neighbors=4, weight=0.5)
    np.testing.assert_allclose(half[centre], 0.5 * P[centre] + 0.5 * P[nb].mean(0))
    with pytest.raises(ValueError):
        heads.spatial_smooth(P, coords, secs, weight=1.5)


def test_fit_smoothing_smooths_noise_and_leaves_a_sharp_truth() -> None:
    coords, secs = lattice(10, 2)
    rng = np.random.default_rng(5)
    smooth_truth = np.column_stack([np.sin(coords[:, 0] / 3) + np.cos(coords[:, 1] / 4) for _ in range(5)])
    noisy = smooth_truth + rng.normal(0, 1.0, smooth_truth.shape)
    chosen = heads.fit_smoothing(noisy, smooth_truth, coords, secs)
    assert chosen["weight"] > 0 and chosen["grid"].shape[0] == len(heads.SMOOTH_NEIGHBORS) * len(heads.SMOOTH_WEIGHTS)
    rough = rng.normal(size=(len(coords), 5))  # no spatial structure, predicted exactly
    assert heads.fit_smoothing(rough, rough, coords, secs)["weight"] == 0.0
