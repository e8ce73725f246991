"""Gene selection, targets and clusters (stlib.pp), and the prediction store."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib import get, pp
from stlib.book import store
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
    genes = pp.select_genes(a, 5, rule="book", transform="log1p", n_mean=10, min_spots=3)
    assert len(genes) == 5 and "g0" not in genes
    b = _adata()
    dense = b.X.toarray()
    dense[(b.obs["split"] == "test").to_numpy(), 3] = 0  # the test-only spike of g3 plays no part
    b.X = sp.csr_matrix(dense)
    assert pp.select_genes(b.copy(), 5, rule="book", transform="log1p", n_mean=10, min_spots=3) == genes
    assert genes[0] == "g2"  # highest variance among the high-mean genes
    tr = (a.obs["split"] == "train").to_numpy()
    T = np.log1p(a.X[tr].toarray())
    by_mean = np.argsort(-T.mean(0), kind="stable")[:10]
    expect = [f"g{i}" for i in by_mean[np.argsort(-T.var(0, ddof=1)[by_mean], kind="stable")][:5]]
    assert genes == expect
    assert a.var["target_gene"].sum() == 5 and "train" in a.uns["gene_selection"]["rule"]


def _paper_rule_by_hand(a: ad.AnnData, fit: list[str], n_top: int, n_hvg: int) -> list[str]:
    """The authors' top_genes notebook, written out with scanpy on the fitted spots."""
    import scanpy as sc

    sub = a[a.obs["split"].isin(fit).to_numpy()].copy()
    sub.X = sub.X.astype(np.float32)
    sc.pp.normalize_total(sub)
    sc.pp.log1p(sub)
    sc.pp.highly_variable_genes(sub, n_top_genes=n_hvg)
    hv = sub.var_names[sub.var["highly_variable"]]
    hv = pd.Index([g for g in hv if "__ambiguous" not in g])
    mean = np.asarray(sub[:, hv].X.mean(axis=0)).ravel()
    return [str(g) for g in hv[np.argsort(-mean, kind="stable")[:n_top]]]


def test_paper_gene_rule_matches_the_authors_recipe() -> None:
    a = _adata()
    a.var_names = [f"g{i}" if i != 5 else "g5__ambiguous" for i in range(a.n_vars)]
    genes = pp.select_genes(a, 5, n_hvg=12, fit_on="train")
    assert genes == _paper_rule_by_hand(a, ["train"], 5, 12)
    assert "g5__ambiguous" not in genes and a.uns["gene_selection"]["leak"] == ""
    assert a.uns["gene_selection"]["rule_name"] == "paper" and a.var["highly_variable"].sum() == 12
    # fitted on train only: the test spike of g3 plays no part; on all sections it does, and is labelled a leak
    b = a.copy()
    dense = b.X.toarray()
    dense[(b.obs["split"] == "test").to_numpy(), 3] = 0
    b.X = sp.csr_matrix(dense)
    assert pp.select_genes(b, 5, n_hvg=12) == genes
    everything = pp.select_genes(a, 5, n_hvg=12, fit_on="all")
    assert everything == _paper_rule_by_hand(a, ["train", "valid", "test"], 5, 12)
    assert "g3" in everything and "LEAK" in a.uns["gene_selection"]["leak"]


def test_paper_gene_rule_uses_genes_common_to_all_fitted_sections() -> None:
    a = _adata()
    present = pd.DataFrame(True, index=a.var_names, columns=["A", "B", "C", "D"])
    present.loc["g2", "B"] = False  # g2 was not in section B's file
    a.varm["in_section"] = present
    assert "g2" not in pp.select_genes(a, 5, n_hvg=12)
    assert a.uns["gene_selection"]["n_common_genes"] == a.n_vars - 1
    present.loc["g2", "B"] = True
    present.loc["g2", "D"] = False  # D is a test section: not fitted on, so g2 counts as common
    a.varm["in_section"] = present
    pp.select_genes(a, 5, n_hvg=12)
    assert a.uns["gene_selection"]["n_common_genes"] == a.n_vars


def test_paper_target_normalises_each_section_to_its_median() -> None:
    import scanpy as sc

    a = _adata()
    genes = ["g1", "g2", "g4"]
    t = pp.make_targets(a, genes)  # default: the authors' target
    assert t.uns["target"]["transform"] == "paper" and "median" in t.uns["target"]["description"]
    tot = np.asarray(a.X.sum(1)).ravel()
    for sec in "ABCD":
        m = (a.obs["section"] == sec).to_numpy()
        part = a[m].copy()
        part.X = part.X.astype(np.float32)
        sc.pp.normalize_total(part)
        sc.pp.log1p(part)
        np.testing.assert_allclose(t.X[m], part[:, genes].X.toarray(), rtol=1e-6)
        np.testing.assert_allclose(t.obs["log_size_factor"].to_numpy()[m], np.log(tot[m] / np.median(tot[m])))
    np.testing.assert_array_equal(t.layers["counts"].toarray(), a[:, genes].X.toarray())
    assert list(t.obs_names) == list(a.obs_names)
    # each section keeps its own scale (its median total): doubling every count of section A
    # doubles A's normalised values and leaves the other sections alone
    b = a.copy()
    dense = b.X.toarray()
    inA = (b.obs["section"] == "A").to_numpy()
    dense[inA] *= 2
    b.X = sp.csr_matrix(dense)
    tb = pp.make_targets(b, genes)
    np.testing.assert_allclose(np.expm1(tb.X[inA]), 2 * np.expm1(t.X[inA]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tb.X[~inA], t.X[~inA], rtol=1e-6)


def test_gene_set_names_what_is_missing() -> None:
    a = _adata()
    assert pp.gene_set(a, ["g1", "g2"], name="mine") == ["g1", "g2"]
    with pytest.raises(DataError, match="1 of its 2 genes are not in the data"):
        pp.gene_set(a, ["g1", "ENSG00000171345"], name="the authors' 250 genes")


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
    Y = get.split_arrays(t, ["X"])
    res = ModelResult("m", {s: y + 1 for s, y in Y.items()}, {"alpha": np.float64(0.5)},
                      per_gene=pd.DataFrame({"alpha": [1.0, 2.0]}, index=["g1", "g2"]))
    path = store.save_predictions(res, t, tmp_path)
    back = store.load_predictions(tmp_path)["m"]
    np.testing.assert_allclose(get.split_arrays(back, ["X"])["test"], Y["test"] + 1, rtol=1e-6)
    assert store.model_settings(back) == {"alpha": 0.5}
    assert list(back.var["fit_alpha"]) == [1.0, 2.0] and path.name == "m.h5ad"
    with pytest.raises(ValueError, match="expected"):
        store.save_predictions(ModelResult("bad", {"train": np.zeros((2, 2))}), t, tmp_path)
