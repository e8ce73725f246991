"""Three patients (chapter 12): common resolution, valid-only choice, the mean over folds, the
field's gene rule and the published numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import anndata as ad
import scipy.sparse as sp
from PIL import Image

from stlib import im, pp
from stlib.book import cv, patients
from stlib.errors import DataError
from stlib.io import add_hires_image

from test_cv import _data


def _sections(tmp_path):
    """Section F: 400 x 400 px at 0.5 um/px, black painted around a tissue square holding a black
    'nucleus'; section K: 100 x 100 px at 2 um/px, white glass, nothing to paint."""
    fine = np.zeros((400, 400, 3), np.uint8)
    fine[100:300, 100:300] = (200, 120, 160)
    fine[190:210, 190:210] = 0  # black inside the tissue: not background
    coarse = np.full((100, 100, 3), 240, np.uint8)
    coarse[20:80, 20:80] = (180, 100, 150)
    paths = {}
    for name, img in (("F", fine), ("K", coarse)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(img).save(paths[name])
    obs = pd.DataFrame({"section": pd.Categorical(["F"] * 3 + ["K"] * 2)}, index=[f"s{i}" for i in range(5)])
    a = ad.AnnData(X=np.ones((5, 2), np.float32), obs=obs)
    a.obsm["spatial"] = np.array([[199.5, 199.5], [150.0, 250.0], [0.0, 0.0], [50.0, 50.0], [30.0, 70.0]])
    a.uns["spatial"] = {"F": {"metadata": {"image_path": str(paths["F"]), "um_per_px": 0.5},
                              "scalefactors": {"spot_diameter_fullres": 200.0}},
                        "K": {"metadata": {"image_path": str(paths["K"]), "um_per_px": 2.0}}}
    return a


def test_common_resolution_downsamples_finer_sections_and_paints_background(tmp_path) -> None:
    a = _sections(tmp_path)
    out = im.common_resolution(a, "coarsest", tmp_path / "out")
    rec = out.uns["common_resolution"]["sections"]
    assert out.uns["common_resolution"]["um_per_px"] == 2.0
    assert rec["F"]["size_wh"] == [100, 100] and rec["F"]["factor"] == pytest.approx(0.25)
    assert out.uns["spatial"]["F"]["metadata"]["um_per_px"] == pytest.approx(2.0)
    # pixel centres: (x + 0.5) * 0.25 - 0.5
    np.testing.assert_allclose(out.obsm["spatial"][:3], (a.obsm["spatial"][:3] + 0.5) * 0.25 - 0.5)
    np.testing.assert_allclose(out.obsm["spatial"][3:], a.obsm["spatial"][3:])  # K never upsampled
    img = np.asarray(Image.open(out.uns["spatial"]["F"]["metadata"]["image_path"]))
    assert img.shape == (100, 100, 3)
    assert list(out.uns["spatial"]["F"]["metadata"]["image_shape"]) == [100, 100]  # the new image's, not the source's
    # the downsampled section can be drawn (no low-resolution copy survives: one is made on demand)
    assert "images" not in out.uns["spatial"]["F"]
    assert out.uns["spatial"]["F"]["scalefactors"] == {"spot_diameter_fullres": pytest.approx(50.0)}  # 200 px * 0.25
    assert add_hires_image(out, "F", max_size=50) == pytest.approx(0.5)
    assert out.uns["spatial"]["F"]["images"]["hires"].shape == (50, 50, 3)
    assert (img[:10, :10] == 255).all()  # the painted border is white glass now
    assert img[49, 49].max() < 100  # the black inside the tissue stays dark
    assert rec["F"]["painted_px"] > 0
    # K had nothing to change: its own file serves, untouched
    assert out.uns["spatial"]["K"]["metadata"]["image_path"] == a.uns["spatial"]["K"]["metadata"]["image_path"]
    assert rec["K"]["painted_px"] == 0 and rec["K"]["factor"] == 1.0
    # the input is not modified; a second call reuses the written image
    assert a.uns["spatial"]["F"]["metadata"]["um_per_px"] == 0.5
    mtime = (tmp_path / "out").glob("F_*.png").__next__().stat().st_mtime_ns
    again = im.common_resolution(a, "coarsest", tmp_path / "out")
    assert next((tmp_path / "out").glob("F_*.png")).stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.obsm["spatial"], out.obsm["spatial"])


def test_common_resolution_bad_input(tmp_path) -> None:
    a = _sections(tmp_path)
    with pytest.raises(DataError, match="background"):
        im.common_resolution(a, "coarsest", tmp_path, background="black")
    with pytest.raises(DataError, match="um_per_px"):
        im.common_resolution(a, -1.0, tmp_path)
    del a.uns["spatial"]["K"]["metadata"]["um_per_px"]
    with pytest.raises(DataError, match="um_per_px"):
        im.common_resolution(a, "coarsest", tmp_path)


def test_views_differ_only_in_resolution(tmp_path) -> None:
    v = patients.views(_sections(tmp_path), tmp_path / "v")
    assert v["native"].uns["common_resolution"]["um_per_px"] == 0.5  # the finest: nothing downsampled
    assert v["native"].uns["common_resolution"]["sections"]["F"]["factor"] == 1.0
    assert v["native"].uns["common_resolution"]["sections"]["F"]["painted_px"] > 0  # but painted white, as common
    assert v["common"].uns["common_resolution"]["um_per_px"] == 2.0


def test_mean_gene_rule_is_the_top_mean_on_train_only() -> None:
    data, _ = _data()
    data.obs["split"] = np.where(data.obs["patient"] == "P3", "test", "train")
    genes = pp.select_genes(data, 20, rule="mean", transform="normalize_log1p", fit_on="train")
    train = data[data.obs["split"] == "train"]
    X = np.asarray(train.X.todense())
    T = np.log1p(X / X.sum(axis=1, keepdims=True) * pp.TARGET_SUM)
    expected = list(train.var_names[np.argsort(-T.mean(axis=0), kind="stable")[:20]])
    assert genes == expected
    assert "field's rule" in data.uns["gene_selection"]["rule"]
    # test counts never choose a gene
    other = data.copy()
    X = other.X.toarray()
    X[np.flatnonzero(other.obs["split"] == "test"), 0] = 1e5
    other.X = sp.csr_matrix(X)
    assert pp.select_genes(other, 20, rule="mean", transform="normalize_log1p", fit_on="train") == genes


def test_fit_and_score_valid_and_test_and_mean_over_folds() -> None:
    data, feats = _data()
    split = {"A1": "train", "A2": "train", "B1": "valid", "C1": "test"}
    iv, boots, rec = cv.fit_and_score(data, feats, split, score_on=("valid", "test"), n_genes=30, n_boot=50)
    assert set(iv.index.get_level_values("split")) == {"valid", "test"}
    assert rec["valid spots"] == 48 and rec["test spots"] == 48 and rec["train spots"] == 96
    with pytest.raises(DataError, match="parts must be"):
        cv.fit_and_score(data, feats, {**split, "C1": "holdout"}, n_genes=30, n_boot=10)
    with pytest.raises(DataError, match="no spots in 'valid'"):
        cv.fit_and_score(data, feats, {**split, "B1": "train"}, score_on=("valid",), n_genes=30, n_boot=10)
    folds = cv.leave_one_patient_out(data)
    scores, records, bs = cv.cross_validate(data, feats, folds, return_boots=True, n_genes=30, n_boot=50)
    mean = cv.mean_over_folds(bs)
    for m in ("hest_probe", "knn_hest_probe", "depth_only"):  # the train mean is constant: no PCC
        assert mean.loc[m, "pcc"] == pytest.approx(scores.xs(m, level="model")["pcc"].mean())
        assert mean.loc[m, "min pcc"] <= mean.loc[m, "pcc"] <= mean.loc[m, "max pcc"]
        assert mean.loc[m, "pcc_lo"] <= mean.loc[m, "pcc_hi"]
    assert (mean["folds"] == 3).all()


def test_choose_resolution_reads_valid_only() -> None:
    idx = pd.MultiIndex.from_product([["knn_hest_probe"], ["valid", "test"]], names=["model", "split"])

    def diffs(valid, test):
        return pd.DataFrame([valid, test], index=idx, columns=["difference", "lo", "hi", "excludes_zero"])

    keep = (0.01, -0.01, 0.03, False)
    assert patients.choose_resolution(diffs(keep, (-0.2, -0.3, -0.1, True)))["choice"] == "common"
    assert patients.choose_resolution(diffs(keep, (0.2, 0.1, 0.3, True)))["choice"] == "common"
    worse = (-0.05, -0.08, -0.02, True)
    assert patients.choose_resolution(diffs(worse, (0.2, 0.1, 0.3, True)))["choice"] == "native"


def test_published_numbers_carry_their_sources(tmp_path) -> None:
    pub = patients.published()
    assert len(pub) >= 5
    assert pub["source"].notna()[pub["verified"]].all()  # a verified number names where it was read
    hest = pub[pub["method"].str.contains("HEST")].iloc[0]
    assert hest["verified"] and "Xenium" in hest["dataset"] and "NOT HER2ST" in hest["dataset"]
    bad = tmp_path / "b.yaml"
    bad.write_text("methods:\n  - method: X\n    value: 0.1\n")
    with pytest.raises(DataError, match="b.yaml.*lacks"):
        patients.published(bad)
    ours = pd.DataFrame({"pcc": [0.2], "pcc_lo": [0.1], "pcc_hi": [0.3]}, index=["hest_probe"])
    table = patients.field_comparison(ours, pub, models={"hest_probe": "this book: probe"})
    assert table.loc["this book: probe", "verified"] == "run here"
    assert (table["verified"] == "not verified").sum() == int((~pub["verified"].astype(bool)).sum())


def test_mean_over_folds_uses_the_folds_interval_method() -> None:
    from stlib.tl.uncertainty import Bootstrap, interval_from_replicates

    rng = np.random.default_rng(0)

    def fold(centre: float, shift: float, n_boot: int = 400, n_units: int = 30) -> Bootstrap:
        # replicates skewed and centred `shift` above the estimate, as a biased statistic's are
        reps = pd.DataFrame({"m": centre + shift + rng.gamma(2.0, 0.02, n_boot) - 0.04})
        jack = pd.DataFrame({"m": centre + rng.normal(0, 0.005, n_units)})
        return Bootstrap(point=pd.DataFrame({"pcc": [centre]}, index=["m"]), replicates={"pcc": reps}, level=0.95,
                         n_boot=n_boot, seed=0, method="bca", jackknife={"pcc": jack})

    one = fold(-0.09, 0.02)
    m1 = cv.mean_over_folds({"A": one})  # one fold: exactly that fold's own BCa interval
    own = one.interval("pcc").loc["m"]
    assert m1.loc["m", ["pcc_lo", "pcc_hi"]].tolist() == pytest.approx([own["pcc_lo"], own["pcc_hi"]])
    folds = {"A": fold(-0.09, 0.02), "B": fold(0.056, 0.0), "C": fold(0.058, 0.0)}
    m = cv.mean_over_folds(folds).loc["m"]
    reps = (sum(b.replicates["pcc"]["m"] for b in folds.values()) / 3).to_numpy()
    pct = interval_from_replicates(m["pcc"], reps, method="percentile")
    assert m["pcc_lo"] < pct[0] and m["pcc_hi"] < pct[1]  # the bias correction moves it down, towards its estimate
    for b in folds.values():
        b.method = "percentile"
    p = cv.mean_over_folds(folds).loc["m"]
    assert [p["pcc_lo"], p["pcc_hi"]] == pytest.approx(list(pct))
