"""The ceiling and interval tables of chapters 8-11 (stlib.book.tables, stlib.book.ladder, stlib.book.controls)."""

from __future__ import annotations

import dataclasses

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib import get, pp
from stlib.tl import ceiling, uncertainty
from stlib.book import ladder, scoring, tables
from stlib.models._base import ModelResult

SECTIONS = {"T1": ("train", 3000), "T2": ("train", 3000), "V1": ("valid", 3000), "S1": ("test", 300)}


def _data(seed: int = 0) -> ad.AnnData:
    """Four sections with spatial structure; the test section sequenced ten times less deeply."""
    rng = np.random.default_rng(seed)
    n_genes, n = 60, 80
    load = rng.normal(size=(3, n_genes)) * rng.uniform(0.2, 1.2, size=n_genes)
    frac = np.exp(rng.uniform(np.log(5e-4), np.log(2e-2), size=n_genes))
    frac /= frac.sum() * 1.5  # a third of each spot's molecules are in no listed gene... kept as one "rest" gene
    obs, counts, truth = [], [], []
    for sec, (split, depth) in SECTIONS.items():
        z = rng.normal(size=(n, 3))
        rel = np.exp(z @ load)
        rel /= rel.mean(axis=0)
        size = depth * np.exp(rng.normal(0, 0.2, size=n))
        lam = np.column_stack([size[:, None] * frac * rel, size / 3])
        counts.append(rng.poisson(lam))
        truth.append(lam)
        obs.append(pd.DataFrame({"section": sec, "split": split}, index=[f"{sec}_{i}" for i in range(n)]))
    a = ad.AnnData(X=sp.csr_matrix(np.vstack(counts).astype(np.int32)), obs=pd.concat(obs),
                   var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)] + ["rest"]))
    a.obs["section"] = pd.Categorical(a.obs["section"])
    a.obsm["lam"] = np.vstack(truth)
    return a


@pytest.fixture(scope="module")
def data() -> ad.AnnData:
    return _data()


@pytest.fixture(scope="module")
def targets(data: ad.AnnData) -> ad.AnnData:
    return pp.make_targets(data, [f"g{i}" for i in range(60)], transform="paper")


def _results(t: ad.AnnData) -> list[ModelResult]:
    """An oracle (the log expected rate), a noisy oracle, a constant, and a count-space model."""
    lam = t.obsm["lam"] if "lam" in t.obsm else None
    rng = np.random.default_rng(3)
    out = {"oracle": {}, "noisy": {}, "constant": {}}
    counts = {}
    for s in ("train", "valid", "test"):
        m = (t.obs["split"] == s).to_numpy()
        good = np.log1p(lam[m, :60] / lam[m, :60].sum(axis=1, keepdims=True) * 1e3)
        out["oracle"][s] = good
        out["noisy"][s] = good + rng.normal(0, 1.0, size=good.shape)
        out["constant"][s] = np.ones_like(good)
        counts[s] = lam[m, :60]
    res = [ModelResult(name=k, predictions=v) for k, v in out.items()]
    res.append(ModelResult(name="glm_counts", predictions=out["oracle"], counts=counts,
                           settings={"score_space": "counts"}))
    return res


def test_interval_table_points_ceilings_and_spaces(data: ad.AnnData, targets: ad.AnnData) -> None:
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    res = _results(targets)
    iv, boots = scoring.interval_table(targets, scoring.scored_from_results(res), n_boot=200, seed=0)
    assert set(iv.index.get_level_values("split")) == {"train", "valid", "test"}
    assert list(iv.columns[:3]) == ["pcc", "pcc_lo", "pcc_hi"] and "fraction" in iv.columns
    # the point PCC is Table I's pooled mean PCC
    long = scoring.metric_table(targets, {r.name: _as_file(r, targets) for r in res})
    for m in ("oracle", "noisy"):
        for s in ("valid", "test"):
            assert iv.loc[(m, s), "pcc"] == pytest.approx(long.loc[(m, "pooled", s), "pearson"], abs=1e-6)  # files hold float32
    # an oracle of the expected rates reaches about the ceiling; a noisy one much less; a constant 0
    test = iv.xs("test", level="split")
    assert 0.8 < test.loc["oracle", "fraction"] < 1.2
    assert test.loc["noisy", "fraction"] < 0.8 * test.loc["oracle", "fraction"]
    assert test.loc["constant", "fraction"] == 0 and np.isnan(test.loc["constant", "pcc"])
    # count-space models are compared with the ceiling of raw counts
    assert test.loc["glm_counts", "space"] == "counts"
    assert test.loc["glm_counts", "ceiling"] != pytest.approx(test.loc["oracle", "ceiling"])
    assert ("test", "counts") in boots and ("test", "target") in boots
    # the shallow test section has a lower ceiling than the deep valid section
    assert test.loc["oracle", "ceiling"] < iv.loc[("oracle", "valid"), "ceiling"] - 0.1
    caption = ceiling.ceiling_caption(iv)
    assert len(caption.splitlines()) == 4 and caption.splitlines()[-1].startswith("  test: ")
    t1 = tables.table_one_intervals(iv)
    assert t1.empty  # no Table I model names among these
    wide = tables.intervals_wide(iv)
    assert wide.index[-1] == "constant" and "n/a" in wide.loc["constant", ("test", "PCC [95% CI]")]


def _as_file(r: ModelResult, targets: ad.AnnData) -> ad.AnnData:
    import json

    from stlib.get import full_predictions as _to_full

    pred = ad.AnnData(X=_to_full(targets, r.predictions, "split"), obs=targets.obs[["section", "split"]].copy(),
                      var=pd.DataFrame(index=targets.var_names.copy()))
    if r.counts is not None:
        pred.layers["counts"] = _to_full(targets, r.counts, "split")
    pred.uns["model"] = {"name": r.name, "settings_json": json.dumps(r.settings)}
    return pred


def test_scored_from_files_matches_results(targets: ad.AnnData, data: ad.AnnData) -> None:
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    res = _results(targets)
    a = scoring.scored_from_results(res)
    b = scoring.scored_from_files({r.name: _as_file(r, targets) for r in res})
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][1] == b[k][1]
        for s in a[k][0]:
            np.testing.assert_allclose(a[k][0][s], b[k][0][s], rtol=1e-6)


def test_ceilings_by_section_split_and_depth(data: ad.AnnData) -> None:
    genes = [f"g{i}" for i in range(60)]
    sec = ceiling.ceilings(data, genes, "paper", by="section", n_draws=2)
    assert set(sec["section"]) == set(SECTIONS) and {"split", "median_total"} <= set(sec.columns)
    means = sec.groupby("section")["ceiling"].mean()
    assert means["S1"] < means[["T1", "T2", "V1"]].min() - 0.1
    spl = ceiling.ceilings(data, genes, "paper", by="split", n_draws=2)
    assert set(spl["split"]) == {"train", "valid", "test"}
    depth = ceiling.ceiling_vs_depth(data, genes, "paper", fractions=(1.0, 0.1), n_draws=2)
    # the full-depth rows are the per-section ceilings (same thinning draws)
    full = depth[depth["fraction"] == 1.0]
    np.testing.assert_allclose(full["ceiling"].to_numpy(), sec["ceiling"].to_numpy(), equal_nan=True)
    summ_d = ceiling.depth_summary(depth)
    d = summ_d.set_index(["section", "fraction"])["mean_ceiling"]
    for s in SECTIONS:  # thinning lowers every section's ceiling
        assert d[(s, 0.1)] < d[(s, 1.0)]
    assert summ_d.loc[summ_d["fraction"] == 0.1, "median_total"].max() < 400
    # the deep sections thinned to the test section's depth have ceilings like it (same tissue model),
    # compared on the genes defined in every row
    depth["rule"] = "paper"
    match = ceiling.depth_match(depth, "paper")
    assert match.index[0] == "S1" and (match.iloc[1:]["thinned to"] == 0.1).all()
    assert (match["genes compared"] == match["genes compared"].iloc[0]).all() and match["genes compared"].iloc[0] > 20
    assert abs(match.iloc[1:]["mean ceiling"].mean() - match.iloc[0]["mean ceiling"]) < 0.1
    summ = ceiling.ceiling_summary(sec.assign(rule="paper"), spl.assign(rule="paper"))
    assert summ.index[0] == "S1" and "test (pooled)" in summ.index


def test_ladder_and_controls_carry_intervals(targets: ad.AnnData, data: ad.AnnData) -> None:
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    res = {r.name: r for r in _results(targets)}
    plain = ladder.score_results(targets, res, "step")
    assert "fraction" not in plain.columns
    with_iv = ladder.score_results(targets, res, "step", n_boot=50)
    pd.testing.assert_series_equal(plain["pearson"], with_iv["pearson"])
    assert set(scoring.INTERVAL_COLUMNS) <= set(with_iv.columns)
    from stlib.book import controls

    a = list(res.values())[:2]
    b = [ModelResult(name=r.name, predictions={s: p + np.random.default_rng(0).normal(0, 2, p.shape)
                                              for s, p in r.predictions.items()}) for r in a]
    diff = controls.paired_difference(targets, a, b, ("clean", "noisier"), n_boot=200)
    assert list(diff.index) == ["noisy", "oracle"]
    assert (diff["difference"] > 0).all() and diff.loc["oracle", "verdict"] == "different"


def test_bootstrap_point_ceiling_matches_estimate_with_rare_genes() -> None:
    """The bootstrap's weighted ceiling (all weights 1) equals ThinnedTargets.estimate, including
    rare genes whose quarters are constant (Spearman-Brown fallback) or halves constant (NaN)."""
    rng = np.random.default_rng(0)
    X = rng.poisson(rng.gamma(1.0, 2.0, size=(120, 8)))
    X[:, 0] = 0
    X[:5, 1] = 1  # very rare: some quarters never see it
    X[:, 1][5:] = 0
    from stlib.tl import ceiling

    tt = ceiling.thinned_targets(X, "log1p", sections=None, n_draws=3, seed=1)
    est = tt.ceiling()
    got = uncertainty._ceiling_replicates(tt, np.ones((1, 120)))[0]
    np.testing.assert_allclose(got, est, rtol=1e-8, equal_nan=True)
    assert np.isnan(est[0])


def test_every_metric_of_table_one_with_intervals(data: ad.AnnData, targets: ad.AnnData) -> None:
    """Table I's rows with all five metrics and their intervals; the points equal metric_table's."""
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    res = _results(targets)
    for r, name in zip(res, ("lasso", "knn_ridge", "hest_probe")):
        r.name = name  # two of Table I's rows and a probe row
    res = res[:3]
    iv, _ = scoring.interval_table(targets, scoring.scored_from_results(res), n_boot=50, seed=0, rank_stats=True)
    long = scoring.metric_table(targets, {r.name: _as_file(r, targets) for r in res})
    for k, col in (("srcc", "spearman"), ("mse", "mse"), ("mae", "mae"), ("r2", "r2")):
        assert iv.loc[("lasso", "test"), k] == pytest.approx(long.loc[("lasso", "pooled", "test"), col], rel=1e-4), k
    t = tables.table_one_every_metric(iv)
    assert list(t.columns) == ["PCC", "SRCC", "MSE", "MAE", "R2"]
    assert list(t.index.get_level_values("model").unique()) == [
        "Linear Regression Lasso", "KNN Linear Regression Ridge", "HEST probe (not in the report)"]
    assert t.loc[("Linear Regression Lasso", "Test"), "MSE"].count("[") == 1
    assert "srcc" not in scoring.interval_table(targets, scoring.scored_from_results(res[:1]), n_boot=5)[0].columns
    # SRCC on some splits only: the same values there, none elsewhere
    some, _ = scoring.interval_table(targets, scoring.scored_from_results(res), n_boot=50, seed=0,
                                     rank_stats=("test",))
    assert some.loc[("lasso", "test"), ["srcc", "srcc_lo", "srcc_hi"]].tolist() == \
        iv.loc[("lasso", "test"), ["srcc", "srcc_lo", "srcc_hi"]].tolist()
    assert some.xs("train", level="split")["srcc"].isna().all()
    assert tables.table_one_every_metric(some).loc[("Linear Regression Lasso", "Train"), "SRCC"] == "n/a"


def test_reliable_genes_counts_per_model(data: ad.AnnData, targets: ad.AnnData) -> None:
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    res = _results(targets)
    rel, per_model = tables.reliable_genes(targets, scoring.scored_from_results(res), split="test", n_boot=100)
    assert "glm_counts" not in rel.index  # scored in counts: not a target-space PCC
    assert rel.loc["oracle", "reliable genes"] > rel.loc["noisy", "reliable genes"]
    assert rel.loc["constant", "reliable genes"] == 0 and rel.loc["constant", "with a PCC"] == 0
    assert rel["expected by chance"].iloc[0] == pytest.approx(targets.n_vars * 0.025)
    assert per_model["oracle"]["reliable"].sum() == rel.loc["oracle", "reliable genes"]


def test_scores_by_compartment(data: ad.AnnData, targets: ad.AnnData) -> None:
    targets = targets.copy()
    targets.obsm["lam"] = data.obsm["lam"]
    test = np.flatnonzero((targets.obs["split"] == "test").to_numpy())
    tumor = pd.array([pd.NA] * targets.n_obs, dtype="boolean")
    tumor[test[:20]] = True
    tumor[test[20:50]] = False
    targets.obs["tumor"] = tumor
    targets.obs["tumor_source"] = "synthetic"
    comp = get.compartments(targets)
    assert (comp[test[:20]] == "tumour").all() and (comp[test[20:50]] == "non-tumour").all()
    assert (comp[test[50:]] == "unannotated").all() and set(get.COMPARTMENTS) == set(comp)
    scored = scoring.scored_from_results(_results(targets))
    by = scoring.by_compartment(targets, scored, split="test", n_boot=100, seed=0)
    assert list(dict.fromkeys(by.index.get_level_values("compartment"))) == ["all", *get.COMPARTMENTS]
    assert "glm_counts" not in by.index.get_level_values("model")  # scored on counts: another ceiling
    assert by.loc[("tumour", "oracle"), "spots"] == 20 and by.loc[("unannotated", "oracle"), "spots"] == 30
    iv, _ = scoring.interval_table(targets, scored, splits=("test",), n_boot=100, seed=0)
    assert by.loc[("all", "oracle"), "pcc"] == pytest.approx(iv.loc[("oracle", "test"), "pcc"])
    assert by.loc[("tumour", "oracle"), "pcc"] > by.loc[("tumour", "noisy"), "pcc"]
    med = np.median(targets.obs["total_counts"].to_numpy()[test[:20]])
    assert by.loc[("tumour", "oracle"), "median counts"] == pytest.approx(med)
    assert by.attrs["annotation"] == "synthetic" and by.attrs["sections"] == ["S1"]
    only = scoring.by_compartment(targets, scored, split="test", models=["noisy"], n_boot=20)
    assert set(only.index.get_level_values("model")) == {"noisy"}
    with pytest.raises(KeyError, match="tumour annotation"):
        get.compartments(ad.AnnData(obs=targets.obs.drop(columns="tumor")))


def _with_grid(targets: ad.AnnData, data: ad.AnnData) -> ad.AnnData:
    t = targets.copy()
    t.obsm["lam"] = data.obsm["lam"]
    pos = t.obs.groupby("section", observed=True).cumcount().to_numpy()
    t.obsm["spatial"] = np.column_stack([(pos % 10) * 100.0, (pos // 10) * 100.0])  # 10 x 8 grid per section
    return t


def test_interval_table_blocks_methods_and_the_constant_rule(data: ad.AnnData, targets: ad.AnnData) -> None:
    t = _with_grid(targets, data)
    scored = scoring.scored_from_results(_results(t))
    iid, boots = scoring.interval_table(t, scored, n_boot=200, seed=0)
    # the default is the spot bootstrap with percentile intervals: quantiles of the replicates as they are
    reps = boots[("test", "target")].replicates["pcc"]["noisy"]
    assert iid.loc[("noisy", "test"), "pcc_lo"] == pytest.approx(reps.quantile(0.025))
    one_block, _ = scoring.interval_table(t, scored, n_boot=200, seed=0, block_pitches=100)
    row = one_block.loc[("noisy", "test")]  # the test split is one section, one block: every replicate is the data
    assert row["pcc_lo"] == pytest.approx(row["pcc"]) and row["pcc_hi"] == pytest.approx(row["pcc"])
    blocks, bb = scoring.interval_table(t, scored, n_boot=200, seed=0, block_pitches=2, method="bca")
    assert blocks.loc[("noisy", "test"), "pcc"] == pytest.approx(iid.loc[("noisy", "test"), "pcc"])
    assert bb[("test", "target")].settings["resampling"] == "blocks of 2 spot pitches"
    assert bb[("valid", "target")].method == "bca" and "pcc" in bb[("valid", "target")].jackknife
    assert blocks.attrs["block_pitches"] == 2 and blocks.attrs["method"] == "bca"
    d = bb[("test", "target")].difference("oracle", "noisy")
    assert d["lo"] <= d["difference"] <= d["hi"] and d["excludes_zero"]
    zero, _ = scoring.interval_table(t, scored, n_boot=50, seed=0, constant="zero")
    assert np.isnan(iid.loc[("constant", "test"), "pcc"]) and zero.loc[("constant", "test"), "pcc"] == 0


def test_block_size_is_chosen_on_valid_never_test(data: ad.AnnData, targets: ad.AnnData) -> None:
    t = _with_grid(targets, data)
    scored = scoring.scored_from_results(_results(t))
    size = scoring.block_size(t, scored, "noisy", split="valid")
    assert size.pitches >= 1 and size.pitch == pytest.approx(100.0)
    with pytest.raises(ValueError, match="never on test"):
        scoring.block_size(t, scored, "noisy", split="test")
    with pytest.raises(ValueError, match="target-space"):
        scoring.block_size(t, scored, "glm_counts", split="valid")


@pytest.fixture()
def iid_rule():
    """Leave the IID rule in force after a test that sets another."""
    yield
    scoring.set_interval_rule(None)


def test_the_rule_in_force_sets_every_interval_and_arguments_override(data: ad.AnnData, targets: ad.AnnData,
                                                                      iid_rule, tmp_path) -> None:
    t = _with_grid(targets, data)
    scored = scoring.scored_from_results(_results(t))
    assert scoring.interval_rule() == scoring.IID_RULE
    explicit, eb = scoring.interval_table(t, scored, n_boot=100, seed=0, block_pitches=2, method="bca", constant="zero")
    rule = scoring.choose_interval_rule(t, scored, "noisy", split="valid")
    assert rule.method == "bca" and rule.constant == "zero" and "valid" in rule.chosen_on
    with pytest.raises(ValueError, match="never on test"):
        scoring.choose_interval_rule(t, scored, "noisy", split="test")
    scoring.set_interval_rule(scoring.IntervalRule(block_pitches=2, method="bca", constant="zero"))
    ruled, rb = scoring.interval_table(t, scored, n_boot=100, seed=0)
    pd.testing.assert_frame_equal(ruled, explicit)  # the rule in force is the same as the arguments
    # an argument overrides the rule: Table I's convention for the column compared with the report
    skip, _ = scoring.interval_table(t, scored, n_boot=100, seed=0, constant="skip")
    assert np.isnan(skip.loc[("constant", "test"), "pcc"]) and ruled.loc[("constant", "test"), "pcc"] == 0
    spots, _ = scoring.interval_table(t, scored, n_boot=100, seed=0, block_pitches=None)
    assert spots.attrs["block_pitches"] is None and spots.attrs["method"] == "bca"
    # arrays bootstrapped outside interval_table get the same replicates
    m = (t.obs["split"] == "test").to_numpy()
    preds = {k: scored[k][0]["test"] for k in ("oracle", "noisy")}
    bs = scoring.rule_bootstrap(np.asarray(t.X[m].toarray() if hasattr(t.X, "toarray") else t.X[m], np.float64), preds,
                                coords=t.obsm["spatial"][m], sections=t.obs["section"].to_numpy()[m], n_boot=100, seed=0)
    assert bs.table().loc["noisy", "pcc_lo"] == pytest.approx(ruled.loc[("noisy", "test"), "pcc_lo"])
    # the run's config carries the rule to the next chapter
    from stlib.book import store
    store.write_config(tmp_path, {"intervals": dataclasses.asdict(rule)}, fresh=True)
    scoring.set_interval_rule(None)
    assert scoring.use_run_intervals(tmp_path) == rule and scoring.interval_rule() == rule
    store.write_config(tmp_path, {"dataset": "x"}, fresh=True)
    assert scoring.use_run_intervals(tmp_path) == scoring.IID_RULE
    with pytest.raises(ValueError, match="method"):
        scoring.set_interval_rule({"method": "studentized"})


def test_plain_means_follow_the_gene_rule_in_force(data: ad.AnnData, targets: ad.AnnData, iid_rule) -> None:
    """One gene set for every mean: with the rule's constant='zero', a partly constant model's plain
    mean PCC equals its interval table's point; Table I's convention on request."""
    t = targets.copy()
    t.obsm["lam"] = data.obsm["lam"]
    res = _results(t)
    half = {s: p.copy() for s, p in res[1].predictions.items()}  # "noisy" with half its genes constant
    for p in half.values():
        p[:, :30] = 1.0
    res.append(ModelResult(name="half", predictions=half))
    scored = scoring.scored_from_results(res)
    skip = scoring.mean_scores(t, scored).set_index(["model", "split"])
    scoring.set_interval_rule(scoring.IntervalRule(constant="zero"))
    zero = scoring.mean_scores(t, scored).set_index(["model", "split"])
    iv, _ = scoring.interval_table(t, scored, n_boot=20, seed=0)
    for split in ("valid", "test"):
        assert zero.loc[("half", split), "pearson"] == pytest.approx(skip.loc[("half", split), "pearson"] / 2)
        assert zero.loc[("half", split), "pearson"] == pytest.approx(iv.loc[("half", split), "pcc"])
        assert zero.loc[("constant", split), "pearson"] == 0 and np.isnan(skip.loc[("constant", split), "pearson"])
    report = scoring.mean_scores(t, scored, constant="skip").set_index(["model", "split"])
    pd.testing.assert_frame_equal(report, skip)


def test_constant_columns_are_said_once_not_shown_in_every_row():
    t = pd.DataFrame({"PCC": [0.1, 0.2], "scored in": ["target", "target"], "leaks / bugs": ["none", "valid read off train"]})
    shown, constants = tables.without_constant(t)
    assert list(shown.columns) == ["PCC", "leaks / bugs"] and constants == {"scored in": "target"}
    shown, constants = tables.without_constant(t.iloc[:1])
    assert list(shown.columns) == ["PCC"] and constants == {"scored in": "target", "leaks / bugs": "none"}
