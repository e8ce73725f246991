"""Tests of stlib.metrics against scipy / scikit-learn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from stlib.errors import DataError
from stlib.metrics import evaluate, per_gene_metrics, summarize


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    t = rng.normal(size=(60, 7))
    p = 0.6 * t + rng.normal(size=t.shape)
    p[:, 3] = np.round(p[:, 3])  # ties for spearman
    t[:, 4] = rng.poisson(1.0, size=60)  # ties in the truth
    return t, p


def test_matches_scipy_and_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = data
    pg = per_gene_metrics(t, p, genes=[f"g{i}" for i in range(7)])
    assert list(pg.index) == [f"g{i}" for i in range(7)]
    for j in range(7):
        row = pg.iloc[j]
        assert row.pearson == pytest.approx(pearsonr(t[:, j], p[:, j])[0], abs=1e-12)
        assert row.spearman == pytest.approx(spearmanr(t[:, j], p[:, j])[0], abs=1e-12)
        assert row.mse == pytest.approx(mean_squared_error(t[:, j], p[:, j]), rel=1e-12)
        assert row.mae == pytest.approx(mean_absolute_error(t[:, j], p[:, j]), rel=1e-12)
        assert row.r2 == pytest.approx(r2_score(t[:, j], p[:, j]), rel=1e-12)
    assert not pg[["constant_pred", "constant_true", "missing_pred"]].any().any()


def test_hand_computed_tiny_example() -> None:
    t = np.array([[1.0], [2.0], [3.0], [4.0]])
    p = np.array([[2.0], [2.0], [4.0], [4.0]])
    pg = per_gene_metrics(t, p).iloc[0]
    # errors 1, 0, 1, 0 -> mse 0.5, mae 0.5; SS_tot = 5 -> r2 = 1 - 2/5
    assert pg.mse == pytest.approx(0.5)
    assert pg.mae == pytest.approx(0.5)
    assert pg.r2 == pytest.approx(0.6)
    # centred t: -1.5 -0.5 0.5 1.5; centred p: -1 -1 1 1 -> r = 4 / sqrt(5 * 4)
    assert pg.pearson == pytest.approx(4 / np.sqrt(20))
    # ranks of p: 1.5 1.5 3.5 3.5, same pattern -> same value
    assert pg.spearman == pytest.approx(4 / np.sqrt(20))


def test_constant_prediction_and_truth_are_nan_and_counted(data: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = data
    t, p = t.copy(), p.copy()
    p[:, 0] = 0.3  # constant prediction
    t[:, 1] = 2.0  # constant truth
    pg = per_gene_metrics(t, p)
    assert np.isnan(pg.loc["0", "pearson"]) and np.isnan(pg.loc["0", "spearman"])
    assert pg.loc["0", "r2"] == pytest.approx(r2_score(t[:, 0], p[:, 0]))  # truth not constant: r2 defined
    assert np.isnan(pg.loc["1", "pearson"]) and np.isnan(pg.loc["1", "r2"])
    assert pg.loc["1", "mse"] == pytest.approx(np.mean((p[:, 1] - 2.0) ** 2))
    assert pg["constant_pred"].tolist() == [True] + [False] * 6
    assert pg["constant_true"].tolist() == [False, True] + [False] * 5
    s = summarize(pg)
    assert s["n_constant_pred"] == 1 and s["n_constant_true"] == 1
    assert s["n_genes"] == 7 and s["n_genes_correlated"] == 5
    assert s["pearson"] == pytest.approx(pg["pearson"].iloc[2:].mean())
    assert s["mse"] == pytest.approx(pg["mse"].mean())


def test_nan_prediction_is_missing(data: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = data
    p = p.copy()
    p[:, 2] = np.nan
    p[5, 6] = np.nan
    pg = per_gene_metrics(t, p)
    metrics = ["pearson", "spearman", "mse", "mae", "r2"]
    assert pg.loc[["2", "6"], metrics].isna().all().all()
    assert pg.loc[["0", "1", "3", "4", "5"], metrics].notna().all().all()
    assert pg["missing_pred"].sum() == 2 and not pg.loc[["2", "6"], "constant_pred"].any()
    s = summarize(pg)
    assert s["n_missing_pred"] == 2 and s["n_genes_correlated"] == 5
    assert s["mae"] == pytest.approx(pg["mae"].dropna().mean())


def test_bad_input() -> None:
    with pytest.raises(DataError):
        per_gene_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(DataError):
        per_gene_metrics(np.array([[np.nan, 1.0]]), np.zeros((1, 2)))
    with pytest.raises(DataError):
        per_gene_metrics(np.zeros((3, 2)), np.zeros((3, 2)), genes=["a"])


def test_evaluate_pooled_and_per_section() -> None:
    rng = np.random.default_rng(1)
    # two sections with very different mean levels: pooled correlation is high, within-section low
    sec = np.repeat(["A", "B"], 40)
    level = np.where(sec == "A", 0.0, 5.0)[:, None]
    t = level + rng.normal(size=(80, 3))
    p = level + rng.normal(size=(80, 3))
    y_true = {"train": t[:60], "test": t}
    preds = {"test": p, "train": p[:60]}
    groups = {"test": sec, "train": sec[:60]}
    genes = ["a", "b", "c"]

    pooled = evaluate(y_true, preds, genes)
    assert list(pooled.index) == ["test", "train"] and (pooled["aggregation"] == "pooled").all()
    assert pooled.loc["test", "pearson"] == pytest.approx(summarize(per_gene_metrics(t, p, genes))["pearson"])
    assert pooled.loc["test", "n_genes"] == 3 and pooled.loc["test", "n_spots"] == 80

    both = evaluate(y_true, preds, genes, groups=groups)
    test = both.loc["test"].set_index("aggregation")
    per_sec = np.mean([summarize(per_gene_metrics(t[sec == s], p[sec == s]))["pearson"] for s in "AB"])
    assert test.loc["per_section_mean", "pearson"] == pytest.approx(per_sec)
    assert test.loc["pooled", "pearson"] > 0.8 > 0.3 > test.loc["per_section_mean", "pearson"]
    assert test.loc["per_section_mean", "n_sections"] == 2
    assert test.loc["per_section_mean", "n_genes"] == 6  # (section, gene) pairs
    train = both.loc["train"].set_index("aggregation")
    assert train.loc["per_section_mean", "n_sections"] == 2  # 40 A + 20 B

    with pytest.raises(DataError):
        evaluate({"train": t[:60]}, preds, genes)
    with pytest.raises(DataError):
        evaluate(y_true, preds, genes, groups={"test": sec})


# ---------------------------------------------------------------- one gene set for every mean
def test_constant_rule_skip_is_the_default_and_zero_counts_constants_as_0(data: tuple[np.ndarray, np.ndarray]) -> None:
    from stlib.metrics import CONSTANT_RULES

    t, p = data
    t, p = t.copy(), p.copy()
    p[:, 0] = 0.3  # constant prediction: 0 under "zero"
    p[:, 2] = np.nan  # failed fit: 0 under "zero"
    t[:, 1] = 2.0  # constant truth: skipped under both
    pg = per_gene_metrics(t, p)
    assert CONSTANT_RULES == ("skip", "zero")
    skip, zero, default = summarize(pg, "skip"), summarize(pg, constant="zero"), summarize(pg)
    pd.testing.assert_series_equal(skip, default)
    ok = [3, 4, 5, 6]
    for col in ("pearson", "spearman"):
        assert skip[col] == pytest.approx(pg[col].iloc[ok].mean(), abs=1e-12)
        assert zero[col] == pytest.approx(pg[col].iloc[ok].sum() / 6, abs=1e-12)  # 6 genes with a varying truth
    for col in ("mse", "mae", "r2", "n_genes_correlated", "n_constant_pred"):
        assert zero[col] == skip[col]
    ev = {rule: evaluate({"test": t}, {"test": p}, groups={"test": np.repeat(["a", "b"], 30)}, constant=rule)
          for rule in CONSTANT_RULES}
    assert ev["zero"].loc["test", "pearson"].iloc[0] == pytest.approx(zero["pearson"])
    assert (ev["zero"]["pearson"] < ev["skip"]["pearson"]).all()
    pd.testing.assert_frame_equal(ev["skip"], evaluate({"test": t}, {"test": p}, groups={"test": np.repeat(["a", "b"], 30)}))
    with pytest.raises(DataError, match="^constant: must be one of"):
        summarize(pg, "nan")
    with pytest.raises(DataError, match="^constant: must be one of"):
        evaluate({"test": t}, {"test": p}, constant="0")


def test_shared_gene_means_average_every_model_over_the_same_genes(data: tuple[np.ndarray, np.ndarray]) -> None:
    from stlib.metrics import shared_gene_means

    t, p = data
    lazy = p.copy()
    lazy[:, :3] = 1.0  # constant on three genes
    tables = {"full": per_gene_metrics(t, p), "lazy": per_gene_metrics(t, lazy)}
    out = shared_gene_means(tables)
    assert list(out.index) == ["full", "lazy"] and (out["n_genes_shared"] == 4).all()
    assert list(out["n_genes_own"]) == [7, 4]
    assert out.loc["full", "pearson"] == pytest.approx(tables["full"]["pearson"].iloc[3:].mean())
    assert out.loc["full", "pearson_own"] == pytest.approx(summarize(tables["full"])["pearson"])
    assert out.loc["lazy", "pearson"] == pytest.approx(out.loc["lazy", "pearson_own"])
    with pytest.raises(DataError, match="^metric:"):
        shared_gene_means(tables, "auc")
    with pytest.raises(DataError, match="^per_gene:"):
        shared_gene_means({})
    with pytest.raises(DataError, match="^per_gene:.*same genes"):
        shared_gene_means({"a": tables["full"], "b": tables["lazy"].iloc[:5]})
