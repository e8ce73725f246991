"""Patient-level cross-validation (stlib.book.cv): folds, spatial blocks, and no leakage from the test patient."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib.book import cv
from stlib.errors import DataError


def _data(seed: int = 0, n_genes: int = 120) -> tuple[ad.AnnData, ad.AnnData]:
    """Patients P1 (two sections), P2 (one), P3 (one); 48 spots per section on a grid; counts whose
    rates follow a latent factor that the features also carry."""
    rng = np.random.default_rng(seed)
    sections = {"A1": "P1", "A2": "P1", "B1": "P2", "C1": "P3"}
    obs, X, F, xy = [], [], [], []
    load = rng.gamma(1.0, 1.0, size=(3, n_genes))
    W = rng.normal(size=(3, 64))
    for sec, pat in sections.items():
        z = rng.normal(size=(48, 3))
        rate = np.exp(z @ (0.4 * load) / 2) * rng.gamma(2.0, 1.0, size=n_genes) * 2
        X.append(rng.poisson(rate))
        F.append(z @ W + rng.normal(scale=0.5, size=(48, 64)))
        xy.append(np.array([(i, j) for i in range(6) for j in range(8)], float) * 100)
        obs += [{"section": sec, "patient": pat} for _ in range(48)]
    obs = pd.DataFrame(obs, index=[f"{o['section']}_{i}" for i, o in enumerate(obs)])
    data = ad.AnnData(X=sp.csr_matrix(np.vstack(X).astype(np.float32)), obs=obs,
                      var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))
    data.obsm["spatial"] = np.vstack(xy)
    feats = ad.AnnData(X=np.zeros((data.n_obs, 1)), obs=obs.copy())
    feats.obsm["X_cnn"] = np.vstack(F)
    feats.obsm["X_cnn_knn"] = np.vstack(F) * 0.5
    feats.obsm["spatial"] = data.obsm["spatial"]
    return data, feats


def test_leave_one_patient_out_and_kfold() -> None:
    data, _ = _data()
    folds = cv.leave_one_patient_out(data)
    assert [f.test_patient for f in folds] == ["P1", "P2", "P3"]
    for sec in ("A1", "A2", "B1", "C1"):
        assert sum(f.split[sec] == "test" for f in folds) == 1
    assert folds[0].sections("test") == ["A1", "A2"] and folds[0].sections("train") == ["B1", "C1"]
    two = cv.patient_kfold(data, 2)
    assert len(two) == 2 and sorted(sum((f.sections("test") for f in two), [])) == ["A1", "A2", "B1", "C1"]
    for f in two:  # whole patients: both sections of P1 on the same side
        assert f.split["A1"] == f.split["A2"]
    with pytest.raises(DataError, match="n_folds"):
        cv.patient_kfold(data, 4)
    one = data[data.obs["patient"] == "P1"].copy()
    with pytest.raises(DataError, match="at least 2 patients"):
        cv.leave_one_patient_out(one)


def test_spatial_blocks_are_equal_contiguous_bands() -> None:
    xy = np.array([(i, j) for i in range(4) for j in range(12)], float)
    b = cv.spatial_blocks(xy, 4)
    assert pd.Series(b).value_counts().tolist() == [12, 12, 12, 12]
    for lab in np.unique(b):  # bands along the longer (second) axis
        y = xy[b == lab, 1]
        assert y.max() - y.min() <= 2
    with pytest.raises(DataError):
        cv.spatial_blocks(xy[:3], 4)


def test_fold_fits_on_train_only() -> None:
    """The test patient's counts change the test scores, never the genes or the fitted probe."""
    data, feats = _data()
    fold = cv.leave_one_patient_out(data)[2]  # test P3, train P1 (two sections) + P2
    kw = dict(n_genes=20, gene_rule="book", transform="log1p", n_boot=20)
    iv, rec = cv.run_fold(data, feats, fold, **kw)
    assert rec["probe CV over"] == "sections" and rec["train spots"] == 144 and rec["test spots"] == 48
    assert set(iv.index) == set(cv.FOLD_MODELS)
    assert iv.loc["hest_probe", "pcc"] > 0.1  # the features carry the latent factor
    other = data.copy()
    m = (other.obs["patient"] == "P3").to_numpy()
    Xd = other.X.toarray()
    Xd[m] = np.random.default_rng(9).permutation(Xd[m])
    other.X = sp.csr_matrix(Xd)
    iv2, rec2 = cv.run_fold(other, feats, fold, **kw)
    assert rec2["genes"] == rec["genes"]
    assert iv2.loc["hest_probe", "pcc"] != pytest.approx(iv.loc["hest_probe", "pcc"])


def test_single_train_section_uses_spatial_blocks_and_bad_features() -> None:
    data, feats = _data()
    sub = data[data.obs["patient"].isin(["P2", "P3"])].copy()
    fold = cv.leave_one_patient_out(sub)[1]  # train B1 only
    iv, rec = cv.run_fold(sub, feats, fold, n_genes=20, gene_rule="book", transform="log1p", n_boot=10)
    assert rec["probe CV over"].startswith("4 spatial blocks")
    scores, records = cv.cross_validate(sub, feats, cv.leave_one_patient_out(sub), n_genes=20, gene_rule="book",
                                        transform="log1p", n_boot=10)
    assert list(records.index) == ["test P2", "test P3"] and records["genes"].tolist() == [20, 20]
    assert 0 < records["genes chosen by every fold"].iloc[0] <= 20
    assert list(cv.summary(scores).columns)[:2] == ["folds", "mean PCC"]
    assert "PCC [95% CI]" in cv.table(scores).columns
    bad = feats.copy()
    del bad.obsm["X_cnn_knn"]
    with pytest.raises(DataError, match="X_cnn_knn"):
        cv.run_fold(sub, bad, fold, n_genes=20, gene_rule="book", transform="log1p", n_boot=10)
