"""Changing the test sections' data changes nothing that was fitted (gene choice, PCA,
penalties, GLM coefficients), end to end through the pipeline functions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib import pp
from stlib.tl import features
from stlib.models import glm, inputs, linear


def _synthetic(seed: int = 0, test_shift: float = 0.0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    secs = {"T1": "train", "T2": "train", "V1": "valid", "S1": "test"}
    obs, xy, feats, counts = [], [], [], []
    n_genes, d = 40, 12
    W = rng.normal(size=(d, n_genes)) * 0.3
    for sec, split in secs.items():
        gx, gy = np.meshgrid(np.arange(8), np.arange(6))
        n = gx.size
        f = rng.normal(size=(n, d))
        lam = np.exp(1.0 + f @ W * 0.5)
        c = rng.poisson(lam)
        if split == "test":
            rs = np.random.default_rng(seed + 99)
            f = f + test_shift * rs.normal(size=f.shape)
            c = c + (rs.poisson(5 * test_shift, size=c.shape) if test_shift else 0)
        obs.append(pd.DataFrame({"section": sec, "split": split}, index=[f"{sec}_{i}" for i in range(n)]))
        xy.append(np.c_[gx.ravel() * 100.0, gy.ravel() * 100.0])
        feats.append(f)
        counts.append(c)
    a = ad.AnnData(X=sp.csr_matrix(np.vstack(counts).astype(np.int32)), obs=pd.concat(obs),
                   var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))
    a.obs["section"] = pd.Categorical(a.obs["section"])
    a.obsm["spatial"] = np.vstack(xy)
    a.obsm["X_cnn"] = np.vstack(feats)
    return a


def _fit_everything(a: ad.AnnData) -> dict:
    genes = pp.select_genes(a, 10, n_mean=25, min_spots=1)
    t = pp.make_targets(a, genes)
    t.obsm["X_cnn"] = a.obsm["X_cnn"]
    pca = features.pca_fit_transform(t, "X_cnn", n_comps=4, key_added="X_img_pca")
    features.knn_pool(t, "X_cnn", n_neighbors=5, key_added="X_cnn_knn")
    features.pca_fit_transform(t, "X_cnn_knn", n_comps=4, key_added="X_img_knn_pca")
    features.spatial_graph(t, n_neighs=5)
    features.graph_svd(t, n_components=4)
    X, Ytr, Yva = inputs.arrays(t, "single")
    ridge = linear.fit_linear(X, Ytr, Yva, kind="ridge")
    counts = {s: np.asarray(t.layers["counts"][(t.obs["split"] == s).to_numpy()].toarray(), float) for s in X}
    nb = glm.fit_glm(X, counts["train"], family="nb_apriori")
    return {"genes": genes, "pca": pca.components_.copy(), "ridge": ridge, "nb": nb, "t": t}


def test_changing_test_data_changes_nothing_fitted() -> None:
    base = _fit_everything(_synthetic(test_shift=0.0))
    moved = _fit_everything(_synthetic(test_shift=3.0))
    assert base["genes"] == moved["genes"]
    np.testing.assert_array_equal(base["pca"], moved["pca"])
    for key in ("X_img_pca", "X_img_knn_pca", "X_graph_svd"):
        m = (base["t"].obs["split"] != "test").to_numpy()
        np.testing.assert_array_equal(base["t"].obsm[key][m], moved["t"].obsm[key][m])
    pd.testing.assert_series_equal(base["ridge"].per_gene["alpha"], moved["ridge"].per_gene["alpha"])
    coef = [c for c in base["nb"].per_gene.columns if c.startswith("coef_")]
    pd.testing.assert_frame_equal(base["nb"].per_gene[coef], moved["nb"].per_gene[coef])
    for r in ("ridge", "nb"):
        for s in ("train", "valid"):
            np.testing.assert_array_equal(base[r].predictions[s], moved[r].predictions[s])
        # ... while the test predictions did change: the perturbation was real
        assert not np.allclose(base[r].predictions["test"], moved[r].predictions["test"])


def test_test_split_data_does_influence_when_it_is_in_the_fit_set() -> None:
    """Control: the same perturbation moves the gene choice when test spots are (wrongly) used."""
    a0, a1 = _synthetic(test_shift=0.0), _synthetic(test_shift=3.0)
    g0 = pp.select_genes(a0, 10, n_mean=25, min_spots=1, fit_on=["train", "test"])
    g1 = pp.select_genes(a1, 10, n_mean=25, min_spots=1, fit_on=["train", "test"])
    assert g0 != g1
