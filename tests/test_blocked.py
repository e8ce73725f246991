"""Spatially blocked bootstrap (stlib.tl.blocked), block size from autocorrelation (stlib.tl.autocorr),
seed resampling, and the coverage simulation (stlib.tl.coverage)."""

from __future__ import annotations

import numpy as np
import pytest

from stlib import metrics
from stlib.errors import DataError
from stlib.tl import autocorr, blocked, coverage, uncertainty


def _grid(n_side: int = 12, n_sections: int = 1, pitch: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    xy, g = coverage.grid_coords(n_side, n_sections)
    return xy * pitch, g


def _field_data(seed: int = 0, n_side: int = 15, genes: int = 20, noise: float = 1.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    xy, g = _grid(n_side, 1)
    y = coverage.gaussian_field(rng, n_side, 1.0, genes).T + rng.normal(size=(n_side**2, genes))
    p = y + noise * coverage.gaussian_field(rng, n_side, 1.5, genes).T  # errors that miss a spatial pattern
    return xy, g, y, p


# ---------------------------------------------------------------- blocks and weights
def test_pitch_and_grid_blocks() -> None:
    xy, g = _grid(12, 2)
    assert blocked.spot_pitch(xy, g) == pytest.approx(100.0)
    b = blocked.grid_blocks(xy, g, 400.0)
    # 12 spots per side + one pitch = 1200 units -> 3 equal cells of 4 spots per axis, per section
    assert len(set(b)) == 18
    assert all(label.startswith(sec + "|") for label, sec in zip(b, g, strict=True))
    _, sizes = np.unique(b, return_counts=True)
    assert set(sizes) == {16}
    assert len(set(blocked.grid_blocks(xy, g, np.inf))) == 2
    with pytest.raises(DataError, match="block_size"):
        blocked.grid_blocks(xy, g, 0)
    with pytest.raises(DataError, match="coords"):
        blocked.grid_blocks(xy[:, :1], g, 100.0)
    with pytest.raises(DataError, match="groups"):
        blocked.grid_blocks(xy, g[:-1], 100.0)


def test_block_weights_draw_whole_blocks_and_sections_first() -> None:
    xy, g = _grid(12, 3)
    b = blocked.grid_blocks(xy, g, 400.0)
    W = blocked.block_weights(g, b, 300, 0)
    assert W.shape == (300, len(g))
    for lab in np.unique(b):  # every spot of a block has the block's multiplicity
        assert (W[:, b == lab] == W[:, b == lab][:, :1]).all()
    assert (W[:, g == "s0"].sum(axis=1) == 0).any()  # some replicates leave a section out
    assert W.sum(axis=1).mean() == pytest.approx(len(g), rel=0.05)
    np.testing.assert_array_equal(W, blocked.block_weights(g, b, 300, 0))
    one = blocked.block_weights(None, np.arange(50).astype(str), 20, 1)  # one block per spot: iid spots
    assert (one.sum(axis=1) == 50).all()
    with pytest.raises(DataError, match="n_boot"):
        blocked.block_weights(g, b, 0, 0)
    with pytest.raises(DataError, match="spans several sections"):
        blocked.block_weights(g, np.zeros(len(g)).astype(str), 5, 0)
    with pytest.raises(DataError, match="blocks"):
        blocked.block_weights(g, [], 5, 0)


def test_interval_methods() -> None:
    rng = np.random.default_rng(0)
    reps = rng.normal(1.0, 0.1, size=4000)
    lo, hi = blocked.interval_from_replicates(1.0, reps, method="percentile")
    assert (lo, hi) == pytest.approx((np.quantile(reps, 0.025), np.quantile(reps, 0.975)))
    # basic: the percentile interval reflected around the point
    lo, hi = blocked.interval_from_replicates(0.9, reps, method="basic")
    assert (lo, hi) == pytest.approx((1.8 - np.quantile(reps, 0.975), 1.8 - np.quantile(reps, 0.025)))
    assert lo < 0.9 - 0.1 and hi < 0.9 + 0.1  # replicates above the point: the basic interval sits below
    # symmetric replicates centred on the point, symmetric jackknife: BCa = percentile
    jk = np.array([-1.0, 1.0, -2.0, 2.0])
    bca = blocked.interval_from_replicates(float(np.median(reps)), reps, method="bca", jackknife=jk)
    pct = blocked.interval_from_replicates(float(np.median(reps)), reps, method="percentile")
    assert bca == pytest.approx(pct, abs=2e-3)
    with pytest.raises(DataError, match="method"):
        blocked.interval_from_replicates(1.0, reps, method="t")
    with pytest.raises(DataError, match="jackknife"):
        blocked.interval_from_replicates(1.0, reps, method="bca")
    with pytest.raises(DataError, match="level"):
        blocked.interval_from_replicates(1.0, reps, level=95)


# ---------------------------------------------------------------- scores, seeds, constant genes
def test_point_equals_metrics_and_blocks_widen_the_interval() -> None:
    xy, g, y, p = _field_data(1)
    iid = blocked.blocked_bootstrap_scores(y, {"m": p}, groups=g, blocks=np.arange(len(g)).astype(str), n_boot=300)
    blk = blocked.blocked_bootstrap_scores(y, {"m": p}, groups=g, blocks=blocked.grid_blocks(xy, g, 500.0), n_boot=300)
    ref = metrics.per_gene_metrics(y, p)["pearson"].mean()
    assert iid.point["m"] == pytest.approx(ref, abs=1e-12) and blk.point["m"] == pytest.approx(ref, abs=1e-12)
    for method in blocked.METHODS:
        wi, wb = (float(np.diff(bs.interval(method).loc["m", ["pcc_lo", "pcc_hi"]].to_numpy())[0]) for bs in (iid, blk))
        assert wb > 1.3 * wi, method
    assert blk.settings["resampling"] == "blocks" and blk.settings["n_blocks"] == 9


def test_constant_rule_skip_and_zero() -> None:
    xy, g, y, p = _field_data(2)
    q = p.copy()
    q[:, :5] = 1.0  # gives up on a quarter of the genes
    q[:, 5] = np.nan  # a failed gene
    blocks = blocked.grid_blocks(xy, g, 500.0)
    skip = blocked.blocked_bootstrap_scores(y, {"q": q}, groups=g, blocks=blocks, n_boot=50, constant="skip")
    zero = blocked.blocked_bootstrap_scores(y, {"q": q}, groups=g, blocks=blocks, n_boot=50, constant="zero")
    per_gene = metrics.per_gene_metrics(y, q)["pearson"]
    assert skip.point["q"] == pytest.approx(per_gene.mean(), abs=1e-12)
    assert zero.point["q"] == pytest.approx(per_gene.fillna(0.0).mean(), abs=1e-12)
    assert zero.point["q"] == pytest.approx(skip.point["q"] * 14 / 20, abs=1e-12)
    assert (zero.replicates["q"] < skip.replicates["q"]).all()
    with pytest.raises(DataError, match="constant"):
        blocked.blocked_bootstrap_scores(y, {"q": q}, groups=g, blocks=blocks, n_boot=5, constant="nan")


def test_seed_resampling() -> None:
    xy, g, y, p = _field_data(3)
    blocks = blocked.grid_blocks(xy, g, 500.0)
    rng = np.random.default_rng(9)
    kw = {"groups": g, "blocks": blocks, "n_boot": 300, "seed": 4}
    one = blocked.blocked_bootstrap_scores(y, {"m": p}, **kw)
    same = blocked.blocked_bootstrap_scores(y, {"m": np.stack([p, p, p])}, **kw)
    np.testing.assert_allclose(same.replicates["m"], one.replicates["m"], rtol=1e-12)
    assert same.point["m"] == pytest.approx(one.point["m"], rel=1e-12)
    for method in blocked.METHODS:
        np.testing.assert_allclose(same.interval(method).to_numpy(), one.interval(method).to_numpy(), rtol=1e-10)
    # seeds that differ a lot: from a near-perfect to a near-useless fit
    seeds = np.stack([y + s * rng.normal(size=y.shape) for s in (0.3, 1.0, 3.0, 6.0)])
    many = blocked.blocked_bootstrap_scores(y, {"m": seeds}, **kw)
    single = blocked.blocked_bootstrap_scores(y, {"m": seeds[1]}, **kw)
    per_seed = [metrics.per_gene_metrics(y, s)["pearson"].mean() for s in seeds]
    assert many.point["m"] == pytest.approx(np.mean(per_seed), abs=1e-12)
    width = {k: float(np.diff(bs.interval().loc["m", ["pcc_lo", "pcc_hi"]].to_numpy())[0])
             for k, bs in (("many", many), ("single", single))}
    assert width["many"] > 2 * width["single"]
    assert many.settings["n_seeds"] == {"m": 4}
    # a paired difference with a seeded model carries its seed variance
    d = many.difference("m", "m")
    assert d["difference"] == 0 and d["lo"] == d["hi"] == 0
    both = blocked.blocked_bootstrap_scores(y, {"m": seeds, "one": seeds[1]}, **kw)
    diff = both.difference("m", "one")
    assert diff["hi"] - diff["lo"] > width["single"]
    np.testing.assert_array_equal(both.replicates["m"], many.replicates["m"])  # another model changes nothing
    with pytest.raises(DataError, match="^b: no model 'nope'"):
        both.difference("m", "nope")
    with pytest.raises(DataError, match="prediction of shape"):
        blocked.blocked_bootstrap_scores(y, {"m": seeds[:, :10]}, **kw)
    with pytest.raises(DataError, match="block labels"):
        blocked.blocked_bootstrap_scores(y, {"m": p}, groups=g, blocks=blocks[:-1], n_boot=5)


# ---------------------------------------------------------------- block size from autocorrelation
def test_block_size_rule_reads_the_correlation_range() -> None:
    rng = np.random.default_rng(5)
    xy, g = _grid(20, 2, pitch=50.0)
    field = np.concatenate([coverage.gaussian_field(rng, 20, 1.0, 30) for _ in range(2)], axis=1).T
    bs = autocorr.block_size_from_residuals(field, xy, g)
    assert bs.pitch == pytest.approx(50.0) and bs.size == bs.pitches * 50.0
    assert 3 <= bs.pitches <= 5, bs.correlogram  # correlation exp(-d^2 / 4): 0.02 at 4 pitches
    assert (bs.correlogram["moran_i"].iloc[:bs.pitches - 1] >= autocorr.DEFAULT_THRESHOLD).all()
    assert "Moran" in bs.rule
    noise = autocorr.block_size_from_residuals(rng.normal(size=(800, 10)), xy, g)
    assert noise.pitches == 1
    with pytest.warns(RuntimeWarning, match="max_lag"):
        assert autocorr.block_size_from_residuals(field, xy, g, max_lag=2).pitches == 2
    with pytest.raises(DataError, match="threshold"):
        autocorr.block_size_from_residuals(field, xy, g, threshold=2)
    with pytest.raises(DataError, match="residuals"):
        autocorr.moran_correlogram(np.full_like(field, np.nan), xy, g)
    with pytest.raises(DataError, match="coords"):
        autocorr.moran_correlogram(field[:10], xy, g)
    with pytest.raises(DataError, match="max_lag"):
        autocorr.moran_correlogram(field, xy, g, max_lag=0)


def test_pcc_influence_is_the_first_order_share_of_the_mean_pcc() -> None:
    _, _, y, p = _field_data(6, n_side=20)
    u = autocorr.pcc_influence(y, p)
    assert u.shape == (400,) and abs(u.mean()) < 1e-12
    # leaving spot i out moves the mean PCC by about -u_i / (n - 1)
    full = metrics.per_gene_metrics(y, p)["pearson"].mean()
    for i in (0, 17, 200):
        keep = np.arange(400) != i
        loo = metrics.per_gene_metrics(y[keep], p[keep])["pearson"].mean()
        assert loo - full == pytest.approx(-u[i] / 399, rel=0.1, abs=1e-5)
    with pytest.raises(DataError, match="y_pred"):
        autocorr.pcc_influence(y, p[:, :3])


# ---------------------------------------------------------------- coverage simulation
def test_blocked_intervals_cover_better_than_iid_spots() -> None:
    """The coverage table: one section of 289 spots (the demo's test split has 283) and three
    sections. 300 simulations: Monte Carlo standard error 0.0126 at 95%, so 3 se = 0.038."""
    one = coverage.coverage_table(n_sims=300, n_sections=1, block_pitches=4, seed=0)
    se = float(one["mc_se"].iloc[0])
    assert se == pytest.approx(np.sqrt(0.95 * 0.05 / 300))
    iid = one.loc["iid spots", "coverage"]
    blk = one.loc["blocks of 4 pitches", "coverage"]
    assert (iid < 0.95 - 0.15).all()  # far below nominal (0.7)
    assert (blk > iid + 0.08).all() and (blk < 0.95 + 3 * se).all()  # much closer, never above nominal
    assert (blk > 0.95 - 0.15).all()  # ... but still below it in one section (see coverage_table)
    three = coverage.coverage_table(n_sims=150, n_sections=3, block_pitches=4, seed=1, n_boot=150)
    se3 = float(three["mc_se"].iloc[0])
    blk3 = three.loc["blocks of 4 pitches", "coverage"]
    assert (abs(blk3 - 0.95) <= 3 * se3 + 0.01).all()  # sections first: close to nominal
    with pytest.raises(DataError, match="n_sims"):
        coverage.coverage_table(n_sims=0)


def test_bca_with_rank_statistics_and_constant_genes() -> None:
    """SRCC gets its own jackknife under BCa, and a constant gene counts as 0 with constant='zero'."""
    from stlib.tl import uncertainty

    xy, g = _grid(n_side=8)
    rng = np.random.default_rng(1)
    y = rng.normal(size=(len(xy), 4))
    good = y + rng.normal(size=y.shape)
    flat = good.copy()
    flat[:, 0] = 1.0  # gene 0 predicted as a constant
    blocks = blocked.grid_blocks(xy, g, 2 * blocked.spot_pitch(xy, g))
    W = blocked.block_weights(g, blocks, 200, 0)
    J = blocked.jackknife_weights(g, blocks)
    kw = dict(groups=g, n_boot=200, seed=0, weights=W, jackknife=J, method="bca", rank_stats=True)
    skip = uncertainty.bootstrap_scores(y, {"good": good, "flat": flat}, constant="skip", **kw)
    zero = uncertainty.bootstrap_scores(y, {"good": good, "flat": flat}, constant="zero", **kw)
    t = zero.table()
    assert np.isfinite(t.loc["good", ["srcc_lo", "srcc_hi"]]).all() and len(zero.jackknife["srcc"]) == J.shape[0]
    # skipping the constant gene averages over 3 genes, counting it as 0 over 4
    assert zero.point.loc["flat", "srcc"] == pytest.approx(skip.point.loc["flat", "srcc"] * 3 / 4)
    assert zero.point.loc["flat", "pcc"] == pytest.approx(skip.point.loc["flat", "pcc"] * 3 / 4)


def test_book_bootstrap_scores_seeds_as_the_blocked_one() -> None:
    """uncertainty.bootstrap_scores (the book's tables: PCC, ceiling, errors, SRCC) takes a seed
    stack too: the point is the mean over seeds of every statistic, and each replicate draws the
    seeds with replacement from the same stream as blocked_bootstrap_scores, so the two agree."""
    xy, g, y, p = _field_data(5)
    rng = np.random.default_rng(2)
    seeds = np.stack([y + s * rng.normal(size=y.shape) for s in (0.5, 1.5, 4.0)])
    blocks = blocked.grid_blocks(xy, g, 500.0)
    W = blocked.block_weights(g, blocks, 250, 7)
    J = blocked.jackknife_weights(g, blocks)
    kw = dict(groups=g, n_boot=250, seed=7, weights=W, jackknife=J, method="bca")
    book = uncertainty.bootstrap_scores(y, {"m": seeds, "p": p}, rank_stats=True, **kw)
    ref = blocked.blocked_bootstrap_scores(y, {"m": seeds, "p": p}, groups=g, blocks=blocks, n_boot=250, seed=7)
    np.testing.assert_allclose(book.replicates["pcc"]["m"], ref.replicates["m"], rtol=1e-10)
    np.testing.assert_allclose(book.jackknife["pcc"]["m"], ref.jackknife["m"], rtol=1e-10)
    for stat in ("pcc", "mse", "srcc"):
        singles = [uncertainty.bootstrap_scores(y, {"m": s}, rank_stats=True, **kw).point.loc["m", stat] for s in seeds]
        assert book.point.loc["m", stat] == pytest.approx(np.mean(singles), rel=1e-10)
    assert book.settings["n_seeds"] == {"m": 3, "p": 1}
    # the seed-to-seed variance is in the replicates: wider than one seed's interval
    held = uncertainty.bootstrap_scores(y, {"m": seeds[1]}, **kw).interval("pcc").loc["m"]
    drawn = book.interval("pcc").loc["m"]
    assert drawn["pcc_hi"] - drawn["pcc_lo"] > 2 * (held["pcc_hi"] - held["pcc_lo"])
    # one model's seeds change no other model's replicates, and a 2-D prediction is one seed
    alone = uncertainty.bootstrap_scores(y, {"p": p}, **kw)
    np.testing.assert_array_equal(alone.replicates["pcc"]["p"], book.replicates["pcc"]["p"])
    same = uncertainty.bootstrap_scores(y, {"p": p[None]}, **kw)
    np.testing.assert_array_equal(same.replicates["pcc"]["p"], alone.replicates["pcc"]["p"])
    with pytest.raises(DataError, match="prediction of shape"):
        uncertainty.bootstrap_scores(y, {"m": seeds[:, :, :3]}, **kw)
