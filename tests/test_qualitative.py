"""Tools of the qualitative chapter: cluster-mean errors, tumour z-scores, offsets, count tails."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from stlib.book import qualitative


def _targets(n=60, g=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, g)).astype(np.float32)
    tumor = np.array([True] * 20 + [False] * 30 + [None] * 10, dtype=object)
    X[:20, 0] += 3.0  # gene 0 up in tumour
    obs = pd.DataFrame({"section": "S1", "leiden": pd.Categorical(np.repeat(["0", "1", "2"], n // 3)),
                        "tumor": tumor}, index=[f"s{i}" for i in range(n)])
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(g)]))
    a.obsm["spatial"] = rng.uniform(0, 100, size=(n, 2))
    return a


def test_cluster_errors_zero_for_truth_and_constant_offset():
    t = _targets()
    preds = {"exact": ad.AnnData(X=t.X.copy()), "shifted": ad.AnnData(X=t.X + 0.5)}
    e = qualitative.cluster_errors(t, preds)
    assert list(e.index) == ["0", "1", "2"] and list(e["n_spots"]) == [20, 20, 20]
    assert np.allclose(e["exact"], 0) and np.allclose(e["shifted"], 0.5, atol=1e-6)


def test_cluster_errors_skips_failed_genes():
    t = _targets()
    P = t.X + 1.0
    P[:, 0] = np.nan
    e = qualitative.cluster_errors(t, {"m": ad.AnnData(X=P)})
    assert np.allclose(e["m"], 1.0, atol=1e-6)


def test_de_scores_find_the_tumour_gene_and_leave_out_unannotated():
    t = _targets()
    mask = np.ones(t.n_obs, bool)
    s = qualitative.de_scores(t, {"truth": t.X, "flat": np.zeros_like(t.X) + np.arange(t.n_obs)[:, None] % 2}, mask)
    assert s["truth"].idxmax() == "g0" and s.loc["g0", "truth"] > 3
    assert qualitative.top_genes(s, 2)["truth"][0] == "g0"
    one = qualitative.expression_adata(t, t.X, mask)
    qualitative.tumor_de(one)
    assert one.uns["tumor_de"]["n_left_out_unannotated"] == 10


def test_offset_share():
    truth = np.random.default_rng(0).normal(size=(500, 2))
    pred = truth.copy()
    pred[:, 0] += 2.0  # pure offset
    pred[:, 1] += np.random.default_rng(1).normal(size=500)  # pure noise
    o = qualitative.offset_share(truth, pred)
    assert o.loc[0, "offset share"] == pytest.approx(1.0)
    assert o.loc[1, "offset share"] < 0.05


def test_count_tail():
    t = np.array([[0, 0, 1, 5]])
    p = np.array([[0.2, 0.6, np.nan, 30.0]])
    tail = qualitative.count_tail(t, p, thresholds=(0.5, 1, 20))
    assert list(tail["measured counts"]) == [0.5, 0.5, 0.0]
    assert list(tail["predicted means"]) == pytest.approx([2 / 3, 1 / 3, 1 / 3])


def test_de_spots_prefers_pathologist_sections_of_the_split():
    t = _targets()
    t.obs["section"] = np.repeat(["A1", "A2", "B4"], 20)
    t.obs["split"] = np.repeat(["valid", "valid", "test"], 20)
    t.obs["tumor_source"] = np.repeat(["pathologist drawing (data/ST-pat/lbl)", "authors' expression clusters",
                                       "authors' expression clusters"], 20)
    mask, note = qualitative.de_spots(t, "valid")
    assert mask.sum() == 20 and set(t.obs.loc[mask, "section"]) == {"A1"}
    assert "A1" in note and "A2 left out" in note
    mask, note = qualitative.de_spots(t, "test")  # no pathologist: every section of the split
    assert mask.sum() == 20 and set(t.obs.loc[mask, "section"]) == {"B4"} and "expression clusters" in note
    with pytest.raises(ValueError, match="no spots"):
        qualitative.de_spots(t, "train")
