"""Bootstrap intervals (stlib.tl.uncertainty): resampling, weighted correlations, intervals that cover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stlib import metrics
from stlib.tl import ceiling, uncertainty
from stlib.book import scoring
from stlib.errors import DataError


def _data(seed: int, n: int = 200, g: int = 30, signal: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, g))
    y = z + rng.normal(size=(n, g))
    p = signal * z + rng.normal(size=(n, g))
    return y, p


def test_weights_one_section_and_several() -> None:
    W = uncertainty.bootstrap_weights(["A"] * 50, 100, 0)
    assert W.shape == (100, 50) and (W.sum(axis=1) == 50).all()
    groups = np.repeat(["A", "B", "C"], [10, 20, 30])
    W = uncertainty.bootstrap_weights(groups, 200, 1)
    # sections are drawn whole: a replicate's weight over a section is a multiple of its size
    for lab, size in (("A", 10), ("B", 20), ("C", 30)):
        tot = W[:, groups == lab].sum(axis=1)
        assert (tot % size == 0).all()
    assert (W[:, groups == "A"].sum(axis=1) == 0).any()  # some replicates leave a section out
    np.testing.assert_array_equal(W, uncertainty.bootstrap_weights(groups, 200, 1))
    assert not np.array_equal(W, uncertainty.bootstrap_weights(groups, 200, 2))
    with pytest.raises(DataError):
        uncertainty.bootstrap_weights([], 10, 0)


def test_weighted_pearson_equals_copied_rows() -> None:
    y, p = _data(0, n=40, g=5)
    rng = np.random.default_rng(1)
    rows = rng.integers(40, size=40)
    w = np.bincount(rows, minlength=40)[None, :].astype(float)
    r = uncertainty.weighted_pearson(w, y, p)[0]
    ref = [np.corrcoef(y[rows, j], p[rows, j])[0, 1] for j in range(5)]
    np.testing.assert_allclose(r, ref, rtol=1e-10)
    const = p.copy()
    const[:, 2] = 3.0
    const[:, 3] = np.nan
    r = uncertainty.weighted_pearson(np.ones((1, 40)), y, const)[0]
    assert np.isnan(r[2]) and np.isnan(r[3]) and not np.isnan(r[0])


def test_point_equals_metrics_and_constant_counts_zero_in_fraction() -> None:
    y, p = _data(2)
    groups = np.repeat(["A", "B"], 100)
    pred = {"good": p, "const": np.tile(p.mean(axis=0), (len(p), 1))}
    pred["half"] = p.copy()
    pred["half"][:, :15] = 1.0  # gives up on half the genes
    counts = np.random.default_rng(0).poisson(np.exp(1 + 0.3 * y))
    tt = ceiling.thinned_targets(counts, "counts", sections=groups, n_draws=2, seed=0)
    bs = uncertainty.bootstrap_scores(counts, pred, groups=groups, thinned=tt, n_boot=50, seed=0)
    ev = metrics.per_gene_metrics(counts, p)
    assert bs.point.loc["good", "pcc"] == pytest.approx(ev["pearson"].mean(), abs=1e-12)
    assert np.isnan(bs.point.loc["const", "pcc"]) and bs.point.loc["const", "fraction"] == 0.0
    # skipping the constant genes keeps the mean PCC up, but not the fraction of the ceiling
    good, half = bs.point.loc["good"], bs.point.loc["half"]
    assert half["pcc"] == pytest.approx(metrics.per_gene_metrics(counts[:, 15:], p[:, 15:])["pearson"].mean())
    assert half["fraction"] < 0.7 * good["fraction"]
    assert bs.point.loc["good", "ceiling"] == pytest.approx(np.nanmean(tt.ceiling()), abs=1e-9)
    t = bs.table()
    assert list(t.columns) == [f"{s}{e}" for s in uncertainty.STATS for e in ("", "_lo", "_hi")]
    ok = t.loc["good"]
    assert ok["pcc_lo"] < ok["pcc"] < ok["pcc_hi"] and ok["fraction_lo"] < ok["fraction"] < ok["fraction_hi"]


def test_intervals_cover_the_truth() -> None:
    """95% intervals of the mean PCC cover the population value in most simulated data sets."""
    signal, n, g = 0.5, 150, 20
    # population correlation of y = z + e and p = s z + e': s / sqrt(2 (s^2 + 1))
    truth = signal / np.sqrt(2 * (signal**2 + 1))
    hits = 0
    for seed in range(40):
        y, p = _data(100 + seed, n=n, g=g, signal=signal)
        bs = uncertainty.bootstrap_scores(y, {"m": p}, groups=["A"] * n, n_boot=300, seed=seed)
        t = bs.table().loc["m"]
        hits += t["pcc_lo"] <= truth <= t["pcc_hi"]
    assert hits >= 34, f"{hits}/40 intervals cover the truth"


def test_paired_difference() -> None:
    y, p = _data(3, n=300)
    rng = np.random.default_rng(4)
    worse = 0.2 * p + rng.normal(size=p.shape)
    bs = uncertainty.bootstrap_scores(y, {"a": p, "b": worse, "a2": p.copy()}, groups=["A"] * 300, n_boot=300, seed=0)
    d = bs.difference("a", "b")
    assert d["difference"] > 0 and d["excludes_zero"] and d["lo"] > 0
    same = bs.difference("a", "a2")
    assert same["difference"] == 0 and not same["excludes_zero"]


def test_bad_shapes_raise() -> None:
    y, p = _data(5, n=20, g=3)
    with pytest.raises(DataError, match="prediction of shape"):
        uncertainty.bootstrap_scores(y, {"m": p[:, :2]}, groups=["A"] * 20, n_boot=5)
    with pytest.raises(DataError, match="labels for"):
        uncertainty.bootstrap_scores(y, {"m": p}, groups=["A"] * 19, n_boot=5)
    counts = np.ones((10, 3), dtype=int)
    tt = ceiling.thinned_targets(counts, "counts", sections=None, n_draws=1)
    with pytest.raises(DataError, match="thinned copies"):
        uncertainty.bootstrap_scores(y, {"m": p}, groups=["A"] * 20, thinned=tt, n_boot=5)


def test_determinism() -> None:
    y, p = _data(6)
    a = uncertainty.bootstrap_scores(y, {"m": p}, groups=["A"] * 200, n_boot=100, seed=7).table()
    b = uncertainty.bootstrap_scores(y, {"m": p}, groups=["A"] * 200, n_boot=100, seed=7).table()
    pd.testing.assert_frame_equal(a, b)


def test_seed_spread_mean_sd_and_range() -> None:
    """Per-seed mean PCC of a model refitted with several seeds, and their mean / sd / range."""
    import anndata as ad
    import pandas as pd

    from stlib.models._base import ModelResult

    rng = np.random.default_rng(0)
    n = {"train": 40, "valid": 30, "test": 20}
    split = np.concatenate([[s] * k for s, k in n.items()])
    X = rng.normal(size=(len(split), 6))
    obs = pd.DataFrame({"split": split, "section": np.where(split == "test", "T", "S")},
                       index=[f"s{i}" for i in range(len(split))])
    targets = ad.AnnData(X=X, obs=obs)
    truth = {s: X[split == s] for s in n}
    fits = {seed: ModelResult("m", {s: y + np.random.default_rng(seed).normal(scale=0.5 + seed, size=y.shape)
                                    for s, y in truth.items()}) for seed in (0, 1, 2)}
    per_seed, spread = scoring.seed_spread(fits, targets)
    assert list(per_seed.index) == [0, 1, 2] and list(per_seed.columns) == ["train", "valid", "test"]
    assert (per_seed["test"].diff().dropna() < 0).all()  # more noise, lower PCC
    assert spread.loc["test", "seeds"] == 3
    np.testing.assert_allclose(spread.loc["test", "mean"], per_seed["test"].mean(), atol=1e-3)
    np.testing.assert_allclose(spread.loc["test", "sd"], per_seed["test"].std(ddof=1), atol=1e-3)
    assert spread.loc["test", "min"] == per_seed["test"].min()
    with pytest.raises(ValueError, match="at least 2"):
        scoring.seed_spread({0: fits[0]}, targets)


def test_every_table_metric_equals_metrics_on_the_spots_and_on_copied_rows() -> None:
    """Point estimates of SRCC, MSE, MAE and R2 equal stlib.metrics on the measured spots; each
    replicate equals stlib.metrics on the resampled rows copied out (ties, constants and a
    failed gene included)."""
    rng = np.random.default_rng(5)
    y = rng.poisson(1.0, size=(60, 8)).astype(float)  # many ties
    y[:, 3] = 2.0  # constant truth: no r2, no correlation
    p = y + rng.normal(scale=1.0, size=y.shape)
    p[:, 5] = np.round(p[:, 5])  # tied predictions
    p[:, 6] = np.nan  # a failed gene
    groups = np.repeat(["a", "b", "c"], 20)
    bs = uncertainty.bootstrap_scores(y, {"m": p}, groups=groups, n_boot=4, seed=1)
    ref = metrics.summarize(metrics.per_gene_metrics(y, p))
    for stat, col in (("srcc", "spearman"), ("mse", "mse"), ("mae", "mae"), ("r2", "r2"), ("pcc", "pearson")):
        np.testing.assert_allclose(bs.point.loc["m", stat], ref[col], rtol=1e-9, err_msg=stat)
    W = uncertainty.bootstrap_weights(groups, 4, 1)
    for b in range(4):
        rows = np.repeat(np.arange(60), W[b].astype(int))
        ref = metrics.summarize(metrics.per_gene_metrics(y[rows], p[rows]))
        for stat, col in (("srcc", "spearman"), ("mse", "mse"), ("mae", "mae"), ("r2", "r2")):
            np.testing.assert_allclose(bs.replicates[stat]["m"].iloc[b], ref[col], rtol=1e-9, err_msg=(stat, b))


def test_weighted_ranks_equal_rankdata_of_copies() -> None:
    from scipy.stats import rankdata

    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=15).astype(float)
    W = uncertainty.bootstrap_weights(np.repeat("s", 15), 3, 0)
    R = uncertainty.weighted_ranks(W, x)
    for b in range(3):
        rows = np.repeat(np.arange(15), W[b].astype(int))
        expect = rankdata(x[rows])
        got = np.repeat(R[b], W[b].astype(int))
        np.testing.assert_allclose(got, expect)


def test_per_gene_intervals_find_the_signal_genes() -> None:
    """Genes with signal have intervals above zero; noise genes mostly not; the point is the PCC."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=(300, 40))
    p = rng.normal(size=(300, 40))
    p[:, :10] += y[:, :10]  # ten genes with signal
    p[:, 39] = 1.0  # a constant prediction
    t = uncertainty.per_gene_intervals(y, p, groups=np.repeat("s", 300), n_boot=200, seed=0)
    assert t["reliable"].iloc[:10].all()
    assert t["reliable"].iloc[10:].sum() <= 3 and not t["reliable"].iloc[39] and np.isnan(t["pcc"].iloc[39])
    ref = metrics.per_gene_metrics(y, p)["pearson"].to_numpy()
    np.testing.assert_allclose(t["pcc"].to_numpy(), ref, equal_nan=True, atol=1e-12)
    assert (t["pcc_lo"].iloc[:10] < t["pcc"].iloc[:10]).all() and (t["pcc_hi"].iloc[:10] > t["pcc"].iloc[:10]).all()
    with pytest.raises(DataError):
        uncertainty.per_gene_intervals(y, p[:10], groups=np.repeat("s", 300))


def test_constant_rule_zero_in_bootstrap_scores() -> None:
    """``constant="zero"``: the mean PCC counts constant / failed genes as 0 (as stlib.metrics), the
    default stays Table I's convention (skipped)."""
    y, p = _data(8, n=120, g=10)
    q = p.copy()
    q[:, :3] = 2.0
    q[:, 3] = np.nan
    groups = np.repeat(["A", "B"], 60)
    skip = uncertainty.bootstrap_scores(y, {"q": q}, groups=groups, n_boot=40, seed=0, rank_stats=False)
    zero = uncertainty.bootstrap_scores(y, {"q": q}, groups=groups, n_boot=40, seed=0, rank_stats=False, constant="zero")
    pg = metrics.per_gene_metrics(y, q)
    assert skip.point.loc["q", "pcc"] == pytest.approx(metrics.summarize(pg)["pearson"], abs=1e-12)
    assert zero.point.loc["q", "pcc"] == pytest.approx(metrics.summarize(pg, "zero")["pearson"], abs=1e-12)
    np.testing.assert_allclose(zero.replicates["pcc"]["q"], skip.replicates["pcc"]["q"] * 6 / 10, rtol=1e-12)
    pd.testing.assert_frame_equal(skip.replicates["mse"], zero.replicates["mse"])
    with pytest.raises(DataError, match="^constant:"):
        uncertainty.bootstrap_scores(y, {"q": q}, groups=groups, n_boot=5, constant="none")


def test_bootstrap_scores_checks_given_weights_and_the_method():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 4))
    preds = {"m": y + rng.normal(size=y.shape)}
    groups = np.array(["S"] * 30)
    with pytest.raises(DataError, match="weights"):
        uncertainty.bootstrap_scores(y, preds, groups=groups, weights=np.ones((5, 29)), rank_stats=False)
    with pytest.raises(DataError, match="jackknife"):
        uncertainty.bootstrap_scores(y, preds, groups=groups, method="bca", rank_stats=False)
    with pytest.raises(DataError, match="method"):
        uncertainty.bootstrap_scores(y, preds, groups=groups, method="bootstrap-t", rank_stats=False)
    W = rng.multinomial(30, np.full(30, 1 / 30), size=40).astype(float)
    J = 1.0 - np.eye(30)
    bs = uncertainty.bootstrap_scores(y, preds, groups=groups, weights=W, jackknife=J, method="bca", rank_stats=False)
    assert bs.n_boot == 40 and bs.method == "bca" and bs.jackknife["pcc"].shape == (30, 1)
    lo, hi = bs.interval("pcc").loc["m", ["pcc_lo", "pcc_hi"]]
    assert lo < hi
