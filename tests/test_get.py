"""stlib.get: the masks and per-split views every table and model reads."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from stlib import get


@pytest.fixture
def adata():
    obs = pd.DataFrame({"split": pd.Categorical(["train", "valid", "train", "test", "valid"]),
                        "section": ["C2", "C3", "C2", "B4", "C3"]}, index=[f"s{i}" for i in range(5)])
    a = ad.AnnData(X=np.arange(10, dtype=np.float32).reshape(5, 2), obs=obs)
    a.obsm["f"] = np.arange(5, dtype=np.float64)[:, None]
    return a


def test_split_and_section_masks(adata):
    assert get.split_mask(adata, "train").tolist() == [True, False, True, False, False]
    assert get.split_mask(adata, ["valid", "test"]).tolist() == [False, True, False, True, True]
    assert not get.split_mask(adata, "nope").any()
    assert get.section_mask(adata, "C3").tolist() == [False, True, False, False, True]
    assert get.section_mask(adata, ("B4", "C2")).tolist() == [True, False, True, True, False]
    assert list(get.split_masks(adata)) == ["train", "valid", "test"]


def test_views_keep_row_order_within_a_split(adata):
    arr = get.split_arrays(adata, ["f"])
    assert arr["valid"][:, 0].tolist() == [1.0, 4.0]
    assert get.sections(adata, get.split_mask(adata, "train")) == ["C2"]
    full = get.full_predictions(adata, {"test": np.ones((1, 2))})
    assert np.isnan(full[0]).all() and full[3].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="test: predictions of shape"):
        get.full_predictions(adata, {"test": np.ones((2, 2))})
