"""Gene selection, targets and clusters (stlib.pp), and the prediction store."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib import pp, store
from stlib.errors import DataError
from stlib.models import ModelResult


def _adata(seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n, g = 60, 30
    X = rng.poisson(rng.gamma(2.0, 2.0, size=g), size=(n, g))
    X[:, 0] = 0  # never detected
    X[:, 1] = rng.poisson(50, n)  # high mean, variance ~ mean
    X[:, 2] = np.tile([0, 1], n // 2) * rng.poisson(200, n)  # high mean and very variable
    split = np.array(["train"] * 30 + ["valid"] * 15 + ["test"] * 15)
    X[split == "test", 3] = 10_000  # huge in test only: must not be chosen
    a = ad.AnnData(X=sp.csr_matrix(X.astype(np.int32)), var=pd.DataFrame(index=[f"g{i}" for i in range(g)]),
                   obs=pd.DataFrame({"split": split, "section": np.repeat(["A", "B", "C", "D"], 15)},
                                    index=[f"s{i}" for i in range(n)]))
    a.obsm["spatial"] = rng.uniform(0, 1000, size=(n, 2))
    return a


def test_select_genes_rule_and_train_only() -> None:
    a = _adata()
    genes = pp.select_genes(a, 5, n_mean=10, min_spots=3)
    assert len(genes) == 5 and "g0" not in genes
    b = _adata()
    dense = b.X.toarray()
    dense[(b.obs["split"] == "test").to_numpy(), 3] = 0  # the test-only spike of g3 plays no part
    b.X = sp.csr_matrix(dense)
    assert pp.select_genes(b.copy(), 5, n_mean=10, min_spots=3) == genes
    assert genes[0] == "g2"  # highest variance among the high-mean genes
    tr = (a.obs["split"] == "train").to_numpy()
    T = np.log1p(a.X[tr].toarray())
    by_mean = np.argsort(-T.mean(0), kind="stable")[:10]
    expect = [f"g{i}" for i in by_mean[np.argsort(-T.var(0, ddof=1)[by_mean], kind="stable")][:5]]
    assert genes == expect
    assert a.var["target_gene"].sum() == 5 and "train" in a.uns["gene_selection"]["rule"]


def test_make_targets_both_transforms() -> None:
    a = _adata()
    genes = ["g1", "g2", "g4"]
    t = pp.make_targets(a, genes, transform="log1p")
    np.testing.assert_allclose(t.X, np.log1p(a[:, genes].X.toarray()), rtol=1e-6)
    np.testing.assert_array_equal(t.layers["counts"].toarray(), a[:, genes].X.toarray())
    n = pp.make_targets(a, genes, transform="normalize_log1p")
    tot = np.asarray(a.X.sum(1)).ravel()
    np.testing.assert_allclose(n.X, np.log1p(a[:, genes].X.toarray() / tot[:, None] * 1e4), rtol=1e-5)
    np.testing.assert_allclose(n.obs["log_size_factor"], np.log(tot / 1e4))
    with pytest.raises(ValueError, match="unknown target transform"):
        pp.make_targets(a, genes, transform="sqrt")
    with pytest.raises(DataError, match="not in the data"):
        pp.make_targets(a, ["nope"])


def test_leiden_per_section_is_seeded_and_per_section() -> None:
    a = _adata()
    pp.leiden_per_section(a, n_pcs=5, n_neighbors=5, seed=0)
    first = a.obs["leiden"].astype(str).tolist()
    pp.leiden_per_section(a, n_pcs=5, n_neighbors=5, seed=0)
    assert a.obs["leiden"].astype(str).tolist() == first
    assert all(lbl.split("-")[0] == s for lbl, s in zip(a.obs["leiden"], a.obs["section"]))


def test_predictions_round_trip(tmp_path) -> None:
    a = _adata()
    t = pp.make_targets(a, ["g1", "g2"])
    Y = store.split_arrays(t, ["X"])
    res = ModelResult("m", {s: y + 1 for s, y in Y.items()}, {"alpha": np.float64(0.5)},
                      per_gene=pd.DataFrame({"alpha": [1.0, 2.0]}, index=["g1", "g2"]))
    path = store.save_predictions(res, t, tmp_path)
    back = store.load_predictions(tmp_path)["m"]
    np.testing.assert_allclose(store.split_arrays(back, ["X"])["test"], Y["test"] + 1, rtol=1e-6)
    assert store.model_settings(back) == {"alpha": 0.5}
    assert list(back.var["fit_alpha"]) == [1.0, 2.0] and path.name == "m.h5ad"
    with pytest.raises(ValueError, match="expected"):
        store.save_predictions(ModelResult("bad", {"train": np.zeros((2, 2))}), t, tmp_path)
