"""Chapter 15's table: paired gains over the probe, costs, the smoothing wrapper."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib import pp
from stlib.book import beyond
from stlib.errors import DataError
from stlib.models._base import ModelResult


def make_targets(seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    secs = np.repeat(["A", "B", "C"], 120)
    split = np.select([secs == "A", secs == "B"], ["train", "valid"], "test")
    xy = np.tile(np.array([(i, j) for i in range(12) for j in range(10)], float), (3, 1))
    signal = np.sin(xy[:, :1] / 3) + np.cos(xy[:, 1:] / 2)  # a smooth pattern every gene follows
    rate = np.exp(2.5 + 0.8 * signal + rng.normal(0, 0.2, (360, 8)))
    counts = rng.poisson(rate)
    obs = pd.DataFrame({"section": pd.Categorical(secs), "split": split}, index=[f"s{i}" for i in range(360)])
    a = ad.AnnData(X=sp.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(8)]))
    a.obsm["spatial"] = xy
    t = pp.make_targets(a, list(a.var_names), transform="log1p")
    t.uns["signal"] = signal
    return t


def test_variant_table_calls_gains_only_with_paired_intervals_above_zero() -> None:
    t = make_targets()
    y = np.asarray(t.X, np.float64)
    rng = np.random.default_rng(1)
    masks = {s: (t.obs["split"] == s).to_numpy() for s in ("train", "valid", "test")}

    def model(name: str, p: np.ndarray) -> ModelResult:
        return ModelResult(name=name, predictions={s: p[m] for s, m in masks.items()})

    noise = rng.normal(size=y.shape)
    res = [model(beyond.PROBE, 0.3 * y + noise), model("better", y + 0.3 * noise), model("same", 0.3 * y + noise),
           model("worse", noise)]
    tab, boot = beyond.variant_table(t, res, cost={"better": 2.0}, n_boot=200, seed=0)
    assert list(tab.index) == [beyond.PROBE, "better", "same", "worse"]
    assert bool(tab.loc["better", "gain"]) and tab.loc["better", "vs probe lo"] > 0
    assert not bool(tab.loc["same", "gain"]) and tab.loc["same", "vs probe"] == 0
    assert not bool(tab.loc["worse", "gain"]) and tab.loc["worse", "vs probe hi"] < 0
    assert tab.loc["better", "seconds"] == 2.0 and np.isnan(tab.loc["worse", "seconds"])
    assert (tab["fraction"] <= tab["fraction_hi"] + 1e-12).all() and (tab["ceiling"] > 0).all()
    assert tab.loc["better", "valid pcc"] > tab.loc["worse", "valid pcc"]
    text = beyond.readable(tab)
    assert list(text["gain"]) == ["-", "yes", "", ""] and text.loc[beyond.PROBE, "vs probe [95% CI]"] == "-"
    lo, hi = tab.loc["better", ["vs probe lo", "vs probe hi"]]
    assert text.loc["better", "vs probe [95% CI]"] == f"{tab.loc['better', 'vs probe']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert text.loc["worse", "fraction of ceiling [95% CI]"].startswith(f"{tab.loc['worse', 'fraction']:.2f} [")
    renamed = tab.rename(columns={"vs probe": "vs recipe", "vs probe lo": "vs recipe lo", "vs probe hi": "vs recipe hi",
                                  "gain": "better than the recipe"})
    again = beyond.readable(renamed, reference="vs recipe", gain="better than the recipe")
    assert list(again["gain"]) == ["-", "yes", "", ""] and list(again["vs recipe [95% CI]"]) == list(text["vs probe [95% CI]"])
    with pytest.raises(KeyError, match="'gain'"):
        beyond.readable(renamed, reference="vs recipe")


def test_smoothed_chooses_on_valid_and_keeps_the_model() -> None:
    t = make_targets(2)
    y = np.asarray(t.X, np.float64)
    rng = np.random.default_rng(3)
    masks = {s: (t.obs["split"] == s).to_numpy() for s in ("train", "valid", "test")}
    p = y + rng.normal(0, 1.0, y.shape)  # the truth under spatially independent noise: smoothing helps
    r = ModelResult(name="m", predictions={s: p[m] for s, m in masks.items()}, settings={"alpha": 1.0})
    s = beyond.smoothed(r, t)
    assert s.name == "m + smoothing" and s.settings["alpha"] == 1.0 and s.settings["smoothing"]["weight"] > 0
    sig = np.repeat(t.uns["signal"][masks["test"]], y.shape[1], axis=1)  # the pattern under the counts
    before = np.corrcoef(p[masks["test"]].ravel(), sig.ravel())[0, 1]
    after = np.corrcoef(s.predictions["test"].ravel(), sig.ravel())[0, 1]
    assert after > before + 0.05, (before, after)


def test_lowrank_ablation_keeps_the_chosen_head() -> None:
    from stlib import get
    from stlib.models import heads

    t = make_targets(4)
    rng = np.random.default_rng(5)
    t.obsm["X_cnn"] = np.asarray(t.X) @ rng.normal(size=(8, 20)) + rng.normal(0, 2, (t.n_obs, 20))
    t.obsm["X_other"] = rng.normal(size=(t.n_obs, 20))
    masks = get.split_masks(t)
    Z = heads.image_design(t, "X_cnn", n_comps=6, n_neighbors=4)
    chosen = heads.fit_lowrank_head(Z, np.asarray(t.X, np.float64), masks, ranks=(2, 4), alphas=(1.0, 10.0),
                                    method="rrr", name="reduced-rank ridge")
    parts = beyond.lowrank_ablation(t, {"plain": "X_cnn", "other": "X_other"}, chosen, ranks=(1, 8),
                                    n_comps=6, n_neighbors=4)
    names = [p.name for p in parts]
    r = chosen.settings["rank"]
    assert names[0] == f"reduced-rank ridge (rank {r})" and parts[0].predictions is chosen.predictions
    assert "full rank (ridge, same penalty)" in names and f"on all frozen views (rank {r})" in names
    full = parts[names.index("full rank (ridge, same penalty)")]
    ridge = heads.fit_ridge_head(Z, np.asarray(t.X, np.float64), masks, alphas=(chosen.settings["alpha"],))
    np.testing.assert_allclose(full.predictions["test"], ridge.predictions["test"])
    with pytest.raises(DataError, match="not a low-rank head"):
        beyond.lowrank_ablation(t, {"plain": "X_cnn"}, ridge)
