"""Tests of stlib.models.glm (per-gene Poisson / negative-binomial GLMs)."""

from __future__ import annotations

import numpy as np
import pytest

from stlib.errors import DataError
from stlib.models.glm import ALPHA_MAX, ALPHA_MIN, ETA_MAX, fit_glm

N = {"train": 500, "valid": 100, "test": 100}
BETA = np.array(
    [[0.5, -0.3, 0.2, 0.0], [0.0, 0.4, -0.4, 0.3], [-0.5, 0.0, 0.3, 0.2], [0.3, 0.3, 0.0, -0.4], [0.2, -0.2, 0.4, 0.1], [0.0, 0.0, 0.5, -0.5]]
).T  # (4 features, 6 genes), per unit of the raw feature
B0 = np.log([5.0, 2.0, 8.0, 3.0, 1.0, 4.0])


def _sim(seed: int = 0, size_factors: bool = False):
    rng = np.random.default_rng(seed)
    X = {s: rng.normal(loc=1.0, scale=[1.0, 0.5, 2.0, 1.0], size=(n, 4)) for s, n in N.items()}
    logs = {s: (rng.normal(scale=0.5, size=n) if size_factors else np.zeros(n)) for s, n in N.items()}
    mu = {s: np.exp(B0 + X[s] @ BETA + logs[s][:, None]) for s in N}
    counts = {s: rng.poisson(mu[s]) for s in N}
    return X, counts, mu, logs


def test_poisson_recovers_coefficients_and_mean() -> None:
    X, counts, mu, _ = _sim()
    res = fit_glm(X, counts["train"], family="poisson", genes=[f"g{j}" for j in range(6)])
    pg = res.per_gene
    assert (pg["status"] == "ok").all() and res.settings["n_ok"] == 6 and res.settings["n_failed"] == 0
    # coefficients live on the train-standardised features: beta * sd, intercept absorbs the mean
    mean, sd = X["train"].mean(axis=0), X["train"].std(axis=0)
    np.testing.assert_allclose(pg[[f"coef_{k}" for k in range(1, 5)]].to_numpy(), (BETA * sd[:, None]).T, atol=0.06)
    np.testing.assert_allclose(pg["coef_0"].to_numpy(), B0 + mean @ BETA, atol=0.06)
    for s in N:
        assert res.counts is not None
        for j in range(6):
            assert np.corrcoef(res.counts[s][:, j], mu[s][:, j])[0, 1] > 0.9
        np.testing.assert_allclose(res.predictions[s], np.log1p(res.counts[s]), rtol=1e-12)
    assert res.name == "poisson" and "on train features only" in res.settings["scaler"]


def test_nb_apriori_alpha_is_moment_estimate_and_clipped() -> None:
    X, counts, _, _ = _sim(1)
    y = counts["train"].copy()
    y[:, 4] = 3  # under-dispersed (constant): alpha < 0 -> clipped low
    y[:, 5] = 0
    y[0, 5] = 1_000_000  # one huge spike: alpha ~ 500 -> clipped high
    res = fit_glm(X, y, family="nb_apriori")
    m, v = y.mean(axis=0), y.var(axis=0, ddof=1)
    raw = (v - m) / m**2
    np.testing.assert_allclose(res.per_gene["alpha_raw"], raw, rtol=1e-12)
    np.testing.assert_allclose(res.per_gene["alpha"], np.clip(raw, ALPHA_MIN, ALPHA_MAX), rtol=1e-12)
    assert res.per_gene["alpha"].iloc[4] == ALPHA_MIN and res.per_gene["alpha"].iloc[5] == ALPHA_MAX
    assert res.settings["n_alpha_clipped_low"] == 1 and res.settings["n_alpha_clipped_high"] == 1
    assert (res.per_gene["status"].iloc[:4] == "ok").all()
    # a constant gene is fitted exactly at once: statsmodels warns of perfect prediction, which is reported
    assert res.per_gene["status"].iloc[4] == "not_converged"
    assert res.per_gene["message"].iloc[4].startswith("PerfectSeparationWarning")
    assert np.isnan(res.predictions["test"][:, 4]).all()
    nb1 = fit_glm(X, counts["train"], family="nb_alpha1")
    assert (nb1.per_gene["alpha"] == 1.0).all() and (nb1.per_gene["status"] == "ok").all()


def test_pathological_genes_are_reported_not_zeroed() -> None:
    X, counts, _, _ = _sim(2)
    y = np.column_stack([counts["train"][:, :2], np.zeros((N["train"], 3))])
    y[0, 3] = 1_000_000  # one outlier spot: NB IRLS does not converge (statsmodels' own verdict)
    y[0, 4] = 1e200  # absurd count: statsmodels raises (invalid weights)
    res = fit_glm(X, y, family="nb_alpha1", genes=["a", "b", "zeros", "spike", "absurd"])
    pg = res.per_gene
    assert pg["status"].tolist() == ["ok", "ok", "failed", "not_converged", "failed"]
    assert "zero" in pg.loc["zeros", "message"]
    assert "ValueError" in pg.loc["absurd", "message"]
    assert pg.loc["spike", "n_iter"] == 100 and pg.loc["spike", "message"]
    assert (res.settings["n_ok"], res.settings["n_not_converged"], res.settings["n_failed"]) == (2, 1, 2)
    assert pg.loc[["zeros", "spike", "absurd"], "coef_0"].isna().all()
    assert res.counts is not None
    for s in N:
        assert np.isnan(res.predictions[s][:, 2:]).all() and np.isnan(res.counts[s][:, 2:]).all()
        assert np.isfinite(res.predictions[s][:, :2]).all()
    # an iteration budget of 1 leaves every gene unconverged
    short = fit_glm(X, counts["train"][:, :2], family="poisson", maxiter=1)
    assert (short.per_gene["status"] == "not_converged").all() and short.settings["n_not_converged"] == 2
    assert np.isnan(short.predictions["test"]).all()


def test_offset_semantics() -> None:
    X, counts, mu, logs = _sim(3, size_factors=True)
    res = fit_glm(X, counts["train"], family="poisson", offset=logs)
    plain = fit_glm(X, counts["train"], family="poisson")
    assert res.counts is not None
    for s in N:
        rate = np.expm1(res.predictions[s])  # rate at the reference size (offset 0)
        np.testing.assert_allclose(res.counts[s], rate * np.exp(logs[s])[:, None], rtol=1e-10)
        true_rate = mu[s] / np.exp(logs[s])[:, None]
        assert min(np.corrcoef(rate[:, j], true_rate[:, j])[0, 1] for j in range(6)) > 0.9
    # with the offset the intercept is the reference-size one; without it, it absorbs the size factors
    mean = X["train"].mean(axis=0)
    np.testing.assert_allclose(res.per_gene["coef_0"], B0 + mean @ BETA, atol=0.08)
    assert not np.allclose(plain.per_gene["coef_0"], res.per_gene["coef_0"], atol=0.01)
    assert "offset" in res.settings["predictions"] and res.settings["offset"] != "none"
    with pytest.raises(DataError):
        fit_glm(X, counts["train"], family="poisson", offset={"train": logs["train"]})


def test_parallel_identical_and_no_test_leakage() -> None:
    X, counts, _, _ = _sim(4)
    one = fit_glm(X, counts["train"], family="nb_apriori", n_jobs=1)
    two = fit_glm(X, counts["train"], family="nb_apriori", n_jobs=2)
    for s in N:
        np.testing.assert_array_equal(one.predictions[s], two.predictions[s])
    assert one.per_gene.equals(two.per_gene) and one.settings == two.settings
    X2 = dict(X, test=X["test"][::-1] + 0.5)
    moved = fit_glm(X2, counts["train"], family="nb_apriori")
    for s in ("train", "valid"):
        np.testing.assert_array_equal(moved.predictions[s], one.predictions[s])
    assert not np.allclose(moved.predictions["test"], one.predictions["test"])
    assert moved.per_gene.equals(one.per_gene)


def test_linear_predictor_is_clipped_and_counted() -> None:
    X, counts, _, _ = _sim(5)
    X2 = dict(X, test=X["test"].copy())
    X2["test"][0] = [200.0, 200.0, 200.0, 200.0]  # far outside the train range
    res = fit_glm(X2, counts["train"], family="poisson")
    assert res.counts is not None
    assert np.isfinite(res.counts["test"]).all() and res.counts["test"].max() <= np.exp(ETA_MAX)
    clipped = res.per_gene["n_eta_clipped"]
    assert (clipped <= 1).all() and res.settings["n_genes_eta_clipped"] == int((clipped > 0).sum()) >= 1
    assert res.settings["eta_max"] == ETA_MAX


def test_bad_input() -> None:
    X, counts, _, _ = _sim(6)
    with pytest.raises(DataError):
        fit_glm(X, counts["train"], family="gaussian")
    with pytest.raises(DataError):
        fit_glm(X, counts["train"] + 0.5, family="poisson")
    with pytest.raises(DataError):
        fit_glm(X, -counts["train"], family="poisson")
    with pytest.raises(DataError):
        fit_glm(X, counts["train"][:10], family="poisson")
