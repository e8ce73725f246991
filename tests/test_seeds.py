"""Models refitted with several seeds: stored beside the chapter's fit, scored as the mean over the
seeds, and resampled with the spots in every interval (issue 28: intervals that include what varies)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib import get, metrics, pp
from stlib.book import scoring, store, tables
from stlib.models import ModelResult
from stlib.tl import uncertainty


def _targets(seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n, g = 90, 8
    X = rng.poisson(rng.gamma(2.0, 3.0, size=g), size=(n, g))
    split = np.array(["train"] * 30 + ["valid"] * 30 + ["test"] * 30)
    a = ad.AnnData(X=sp.csr_matrix(X.astype(np.int32)), var=pd.DataFrame(index=[f"g{i}" for i in range(g)]),
                   obs=pd.DataFrame({"split": split, "section": np.repeat(["A", "B", "C", "D", "E", "F"], 15)},
                                    index=[f"s{i}" for i in range(n)]))
    grid = np.stack(np.meshgrid(np.arange(5) * 100.0, np.arange(3) * 100.0), -1).reshape(-1, 2)  # 15 spots a section
    a.obsm["spatial"] = np.tile(grid, (6, 1))
    return pp.make_targets(a, list(a.var_names))


def _fits(t: ad.AnnData, seeds=(0, 1, 2), name: str = "net") -> dict[int, ModelResult]:
    Y = get.split_arrays(t, ["X"])
    out = {}
    for k in seeds:
        rng = np.random.default_rng(100 + k)
        out[k] = ModelResult(name, {s: (y + rng.normal(0, 1.0 + k, y.shape)).astype(np.float32) for s, y in Y.items()})
    return out


def test_seed_predictions_are_stored_and_scored_as_their_mean(tmp_path) -> None:
    t = _targets()
    fits = _fits(t)
    store.save_predictions(fits[0], t, tmp_path)
    store.save_seed_predictions("net", fits, t, tmp_path)
    pred = store.load_predictions(tmp_path)["net"]
    assert store.seed_layers(pred) == ["seed_0", "seed_1", "seed_2"]
    with_seeds = scoring.scored_from_files({"net": pred})
    one = scoring.scored_from_files({"net": pred}, seeds=False)
    assert with_seeds["net"][0]["test"].shape == (3, 30, 8) and one["net"][0]["test"].shape == (30, 8)
    assert scoring.n_seeds(with_seeds) == {"net": 3} and scoring.n_seeds(one) == {"net": 1}
    # X is still the chapter's own fit (seed 0)
    np.testing.assert_allclose(one["net"][0]["test"], fits[0].predictions["test"], rtol=1e-6)

    m = scoring.mean_scores(t, with_seeds, constant="zero").set_index("split")
    Y = get.split_arrays(t, ["X"])
    for split in ("valid", "test"):
        each = [metrics.evaluate({split: Y[split]}, {split: f.predictions[split]}, list(t.var_names),
                                 constant="zero").loc[split, "pearson"] for f in fits.values()]
        assert m.loc[split, "pearson"] == pytest.approx(np.mean(each), rel=1e-5)
        # not the seed-0 fit's score: the mean really averages the seeds
        assert abs(m.loc[split, "pearson"] - each[0]) > 1e-4


def test_seed_predictions_refuse_what_is_not_a_seed_set(tmp_path) -> None:
    t = _targets()
    fits = _fits(t)
    with pytest.raises(FileNotFoundError, match="save_predictions first"):
        store.save_seed_predictions("net", fits, t, tmp_path)
    store.save_predictions(fits[0], t, tmp_path)
    with pytest.raises(ValueError, match="seeds are stored for two or more"):
        store.save_seed_predictions("net", {0: fits[0]}, t, tmp_path)
    with pytest.raises(ValueError, match="the seed fits are of"):
        store.save_seed_predictions("net", {**fits, 3: _fits(t, (3,), name="other")[3]}, t, tmp_path)
    # storing again replaces the seeds, it does not add to them
    store.save_seed_predictions("net", fits, t, tmp_path)
    store.save_seed_predictions("net", {k: fits[k] for k in (0, 1)}, t, tmp_path)
    assert store.seed_layers(store.load_predictions(tmp_path)["net"]) == ["seed_0", "seed_1"]


def test_seed_resampling_widens_the_interval_and_a_single_seed_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 10))
    groups = np.repeat(["a", "b"], 100)
    # five fits whose scores differ a lot between seeds
    stack = np.stack([y * w + rng.normal(size=y.shape) for w in (0.1, 0.3, 0.5, 0.7, 0.9)])
    one = uncertainty.bootstrap_scores(y, {"m": stack[:1]}, groups=groups, n_boot=200, seed=0)
    flat = uncertainty.bootstrap_scores(y, {"m": stack[0]}, groups=groups, n_boot=200, seed=0)
    pd.testing.assert_frame_equal(one.table(), flat.table())  # a one-seed stack is the plain fit
    many = uncertainty.bootstrap_scores(y, {"m": stack}, groups=groups, n_boot=200, seed=0)
    per_seed = [np.mean([np.corrcoef(y[:, j], s[:, j])[0, 1] for j in range(10)]) for s in stack]
    t_one, t_many = one.table().loc["m"], many.table().loc["m"]
    assert t_many["pcc"] == pytest.approx(np.mean(per_seed), rel=1e-6)
    assert t_many["pcc_hi"] - t_many["pcc_lo"] > 1.5 * (t_one["pcc_hi"] - t_one["pcc_lo"])
    assert many.settings["n_seeds"] == {"m": 5}


def test_per_gene_intervals_follow_the_seeds_and_the_given_weights() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=(120, 6))
    groups = np.repeat(["a", "b", "c"], 40)
    stack = np.stack([y * 0.5 + rng.normal(size=y.shape) for _ in range(4)])
    t = uncertainty.per_gene_intervals(y, stack, groups=groups, n_boot=100, seed=0, name="m")
    per_seed = np.mean([[np.corrcoef(y[:, j], s[:, j])[0, 1] for j in range(6)] for s in stack], axis=0)
    np.testing.assert_allclose(t["pcc"].to_numpy(), per_seed, rtol=1e-6)
    w = np.zeros((100, 120))
    w[:, :40] = 3.0  # every replicate draws only the first section's spots
    only_a = uncertainty.per_gene_intervals(y, stack[0], groups=groups, n_boot=100, seed=0, weights=w)
    assert (only_a["pcc_lo"] == only_a["pcc_hi"]).all()  # one fixed draw: no spread
    with pytest.raises(ValueError):
        uncertainty.per_gene_intervals(y, stack[0], groups=groups, n_boot=100, seed=0, weights=w[:, :50])


def test_reliable_genes_use_the_rule_in_force_and_the_seeds(tmp_path) -> None:
    t = _targets()
    fits = _fits(t)
    store.save_predictions(fits[0], t, tmp_path)
    store.save_seed_predictions("net", fits, t, tmp_path)
    scored = scoring.scored_from_files(store.load_predictions(tmp_path))
    before = scoring.interval_rule()
    try:
        scoring.set_interval_rule({"constant": "zero"})
        iid, per_iid = tables.reliable_genes(t, scored, n_boot=100)
        scoring.set_interval_rule({"constant": "zero", "block_pitches": 2.0})
        blocks, per_block = tables.reliable_genes(t, scored, n_boot=100)
    finally:
        scoring.set_interval_rule(before)
    g = per_block["net"]
    assert len(g) == 8 and {"pcc_lo", "pcc_hi", "reliable"} <= set(g.columns)
    np.testing.assert_allclose(g["pcc"], per_iid["net"]["pcc"])  # same point estimate
    assert not np.allclose(g["pcc_lo"], per_iid["net"]["pcc_lo"])  # drawn by blocks, not by single spots
    assert iid.index.tolist() == blocks.index.tolist() == ["net"]


def test_verdict_by_seed_judges_each_seed_alone(tmp_path) -> None:
    """A claim that holds for the mean over seeds and for most fits, but not for a bad seed: the
    per-seed table shows which; models without seeds are the same in every column."""
    from stlib.book import verdict

    t = _targets()
    Y = get.split_arrays(t, ["X"])
    rng = np.random.default_rng(7)
    good = {k: ModelResult("net", {s: (y + rng.normal(0, 0.3 if k < 2 else 30.0, y.shape)).astype(np.float32)
                                   for s, y in Y.items()}) for k in range(3)}
    ref = ModelResult("ref", {s: (rng.normal(size=y.shape)).astype(np.float32) for s, y in Y.items()})
    store.save_predictions(good[0], t, tmp_path)
    store.save_seed_predictions("net", good, t, tmp_path)
    store.save_predictions(ref, t, tmp_path)
    scored = scoring.scored_from_files(store.load_predictions(tmp_path))
    claim = verdict.Claim("net_beats_ref", "net > ref", "V", "q", "r", "08_table",
                          (verdict.Comparison("net", "ref", "test", central=True),))
    by_seed = verdict.judge_by_seed([claim], t, scored, n_boot=200, seed_names=["a", "b", "c"])
    assert list(by_seed.columns) == ["a", "b", "c"]
    assert by_seed.loc["net_beats_ref", "a"] == by_seed.loc["net_beats_ref", "b"] == "replicated"
    assert by_seed.loc["net_beats_ref", "c"] != "replicated"  # the noisy seed alone does not carry it
    one = scoring.scored_from_files(store.load_predictions(tmp_path), seeds=False)
    assert verdict.judge_by_seed([claim], t, one, n_boot=50).shape[1] == 0  # no seeds: nothing to judge
    with pytest.raises(ValueError, match="seed names"):
        verdict.judge_by_seed([claim], t, scored, n_boot=50, seed_names=["a"])


def test_spearman_on_the_drawn_rows_only_equals_all_rows():
    """The SRCC of a seed is computed only on the replicates that draw it: the same bytes per row
    as computing every row, and the seed mean of the replicates is unchanged."""
    from stlib.tl import uncertainty as u

    rng = np.random.default_rng(3)
    y = rng.poisson(2.0, (60, 5)).astype(float)  # ties in the truth
    preds = [y + rng.normal(0, 1, y.shape), np.round(y + rng.normal(0, 1, y.shape))]  # ties in one
    W = u.bootstrap_weights(np.array(["a"] * 60), 40, 0)
    full = u.weighted_spearman(W, y, preds)
    rows = [np.array([0, 3, 7, 39]), None]
    part = u.weighted_spearman(W, y, preds, rows=rows)
    np.testing.assert_array_equal(part[0][rows[0]], full[0][rows[0]])
    assert np.isnan(np.delete(part[0], rows[0], axis=0)).all()
    np.testing.assert_array_equal(part[1], full[1])
    # through bootstrap_scores: seeds' SRCC replicates equal the seed mean of the full per-seed ones
    stack = np.stack([y + rng.normal(0, s, y.shape) for s in (0.5, 1.0, 2.0)])
    b = u.bootstrap_scores(y, {"net": stack}, groups=np.array(["a"] * 60), n_boot=40, seed=0, rank_stats=True)
    Wb = u.bootstrap_weights(np.array(["a"] * 60), 40, 0)
    per_seed = [np.nanmean(r, axis=1) for r in u.weighted_spearman(Wb, y, list(stack))]
    want = u.seed_mean(per_seed, u.seed_multiplicities("net", 3, 40, 0))
    np.testing.assert_array_equal(b.replicates["srcc"]["net"].to_numpy(), want)
