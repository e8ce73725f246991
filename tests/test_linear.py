"""Tests of stlib.models.linear (OLS / Lasso / Ridge with a per-gene penalty)."""

from __future__ import annotations

import numpy as np
import pytest

from stlib.errors import DataError
from stlib.models.linear import DEFAULT_ALPHAS, fit_linear, grid_edges


def _data(seed: int = 0, n: tuple[int, int, int] = (200, 100, 50), p: int = 5, g: int = 4):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(p, g))
    X = {s: rng.normal(loc=2.0, scale=3.0, size=(k, p)) for s, k in zip(("train", "valid", "test"), n)}
    Y = {s: x @ W + 1.5 + 0.01 * rng.normal(size=(len(x), g)) for s, x in X.items()}
    return X, Y, W


def test_ols_recovers_linear_map_and_equals_lstsq() -> None:
    X, Y, W = _data()
    res = fit_linear(X, Y["train"], kind="ols")
    A = np.column_stack([np.ones(len(X["train"])), X["train"]])
    beta = np.linalg.lstsq(A, Y["train"], rcond=None)[0]
    for s in ("train", "valid", "test"):
        ref = np.column_stack([np.ones(len(X[s])), X[s]]) @ beta
        np.testing.assert_allclose(res.predictions[s], ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(res.predictions[s], X[s] @ W + 1.5, atol=0.01)
    assert (res.per_gene["alpha"] == 0.0).all() and res.name == "ols"


@pytest.mark.parametrize("kind", ["lasso", "ridge"])
def test_default_grid_recovers_map(kind: str) -> None:
    X, Y, W = _data()
    res = fit_linear(X, Y["train"], Y["valid"], kind=kind)
    assert res.settings["alphas"] == sorted(DEFAULT_ALPHAS[kind])
    assert len(res.settings["alphas"]) == (16 if kind == "lasso" else 18)
    pos = np.asarray([a for a in res.settings["alphas"] if a > 0])
    assert pos.max() / pos.min() > 0.99e5  # five decades or more
    np.testing.assert_allclose(np.diff(np.log10(pos)), np.diff(np.log10(pos))[0])  # log-spaced
    np.testing.assert_allclose(res.predictions["test"], X["test"] @ W + 1.5, atol=0.05)
    assert (res.per_gene["alpha"] <= 1.0).all()  # almost no noise: no strong shrinkage
    cols = [f"valid_mse_{a:g}" for a in res.settings["alphas"]]
    assert list(res.per_gene.columns) == ["alpha", "n_nonzero", *cols]
    assert sum(res.settings["n_genes_per_alpha"].values()) == 4


def _shrink_data():
    """Gene 0: strong signal, little noise; gene 1: pure noise, few spots, many features."""
    rng = np.random.default_rng(3)
    n_tr, n_va, p = 30, 200, 20
    X = {"train": rng.normal(size=(n_tr, p)), "valid": rng.normal(size=(n_va, p)), "test": rng.normal(size=(10, p))}
    w = rng.normal(size=p)
    Yt = np.column_stack([X["train"] @ w + 0.01 * rng.normal(size=n_tr), rng.normal(size=n_tr)])
    Yv = np.column_stack([X["valid"] @ w + 0.01 * rng.normal(size=n_va), rng.normal(size=n_va)])
    return X, Yt, Yv


def test_per_gene_choice_differs_and_uses_valid_only() -> None:
    X, Yt, Yv = _shrink_data()
    res = fit_linear(X, Yt, Yv, kind="ridge", genes=["signal", "noise"])
    a = res.per_gene["alpha"]
    assert a["signal"] <= 1e-2 and a["noise"] >= 100.0
    assert res.settings["n_genes_per_alpha"][f"{a['noise']:g}"] == 1
    mse = res.per_gene.filter(like="valid_mse_")
    assert mse.loc["noise"].idxmin() == f"valid_mse_{a['noise']:g}"
    # selection really uses only the valid targets: make the valid truth of the noise gene
    # equal to the OLS prediction, and alpha 0 wins; the per-alpha train fits are unchanged
    ols = fit_linear(X, Yt, kind="ols")
    Yv2 = Yv.copy()
    Yv2[:, 1] = ols.predictions["valid"][:, 1]
    res2 = fit_linear(X, Yt, Yv2, kind="ridge", genes=["signal", "noise"])
    assert res2.per_gene.loc["noise", "alpha"] == 0.0 and res2.per_gene.loc["signal", "alpha"] == a["signal"]
    np.testing.assert_allclose(res2.predictions["test"][:, 1], ols.predictions["test"][:, 1], atol=1e-10)
    np.testing.assert_array_equal(res2.predictions["test"][:, 0], res.predictions["test"][:, 0])


def test_lasso_per_gene_choice_and_warnings_counted() -> None:
    X, Yt, Yv = _shrink_data()
    res = fit_linear(X, Yt, Yv, kind="lasso")
    assert res.per_gene.loc["0", "alpha"] <= 1e-2 and res.per_gene.loc["1", "alpha"] >= 1e-1
    # a tiny iteration budget must produce counted convergence warnings, not hidden ones
    res_few = fit_linear(X, Yt, Yv, kind="lasso", alphas=[1e-4, 1e-2], max_iter=2)
    assert sum(res_few.settings["n_convergence_warnings"].values()) >= 1
    assert set(res_few.settings["n_convergence_warnings"]) == {"0.0001", "0.01"}


def test_ties_choose_larger_alpha() -> None:
    X, Yt, Yv = _shrink_data()
    # lasso with alpha >= 10 zeroes every coefficient on this data: identical valid MSE
    res = fit_linear(X, Yt, Yv, kind="lasso", alphas=[100.0, 10.0, 1000.0])
    assert res.settings["alphas"] == [10.0, 100.0, 1000.0]
    mse = res.per_gene.filter(like="valid_mse_")
    assert (mse.nunique(axis=1) == 1).all()
    assert (res.per_gene["alpha"] == 1000.0).all()


def test_no_test_leakage_and_determinism() -> None:
    X, Y, _ = _data(seed=5)
    a = fit_linear(X, Y["train"], Y["valid"], kind="lasso")
    b = fit_linear(X, Y["train"], Y["valid"], kind="lasso")
    for s in X:
        np.testing.assert_array_equal(a.predictions[s], b.predictions[s])
    assert a.per_gene.equals(b.per_gene) and a.settings == b.settings
    X2 = dict(X, test=X["test"] + 1.0)
    c = fit_linear(X2, Y["train"], Y["valid"], kind="lasso")
    np.testing.assert_array_equal(c.predictions["train"], a.predictions["train"])
    np.testing.assert_array_equal(c.predictions["valid"], a.predictions["valid"])
    assert not np.allclose(c.predictions["test"], a.predictions["test"])
    assert c.per_gene.equals(a.per_gene)


def test_bad_input() -> None:
    X, Y, _ = _data()
    with pytest.raises(DataError):
        fit_linear(X, Y["train"], kind="elasticnet")
    with pytest.raises(DataError):
        fit_linear(X, Y["train"], kind="ridge")  # grid needs valid targets
    with pytest.raises(DataError):
        fit_linear(X, Y["train"][:10], Y["valid"], kind="ridge")
    with pytest.raises(DataError):
        fit_linear(X, Y["train"], Y["valid"], kind="ridge", alphas=[-1.0, 1.0])
    single = fit_linear(X, Y["train"], kind="ridge", alphas=[1.0])  # one penalty: no selection needed
    assert (single.per_gene["alpha"] == 1.0).all() and "valid_mse_1" not in single.per_gene


def test_grid_edges_count_the_edges_and_the_constants() -> None:
    """Signal genes choose small penalties (lowest edge or interior); a pure-noise gene asks for
    the largest, where Lasso predicts a constant."""
    rng = np.random.default_rng(3)
    X, Y, _ = _data(g=3)
    noise = {s: rng.normal(size=(len(y), 1)) for s, y in Y.items()}
    Y = {s: np.hstack([y, noise[s]]) for s, y in Y.items()}
    res = fit_linear(X, Y["train"], Y["valid"], kind="lasso", alphas=(1e-4, 1e-2, 1.0, 10.0))
    e = grid_edges(res)
    assert e["genes"] == 4 and e["grid size"] == 4
    assert e["at lowest"] + e["interior"] + e["at highest"] == 4
    assert res.per_gene["alpha"].iloc[3] == 10.0 and res.per_gene["n_nonzero"].iloc[3] == 0
    assert e["at highest"] >= 1 and e["constant"] >= 1
    assert (res.per_gene["alpha"].iloc[:3] <= 1e-2).all() and (res.per_gene["n_nonzero"].iloc[:3] > 0).all()
    np.testing.assert_allclose(res.predictions["test"][:, 3], Y["train"][:, 3].mean())
    with pytest.raises(DataError):
        grid_edges(fit_linear(X, Y["train"], kind="ols").__class__(name="x", predictions={}, settings={"alphas": []}))
