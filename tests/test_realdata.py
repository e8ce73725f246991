"""The real her2st-demo sections load as documented in ../shared/README.md."""

from __future__ import annotations

import numpy as np
import pytest

from stlib import pp

pytestmark = pytest.mark.realdata

# section: (selected spots, kept spots, genes, tumour, non-tumour, unknown, no cluster)
EXPECTED = {
    "B4": (284, 283, 15289, 17, 97, 108, 61),
    "C2": (187, 187, 15706, 83, 88, 14, 2),
    "C3": (182, 180, 15821, 84, 86, 9, 1),
    "C4": (187, 184, 15842, 78, 100, 6, 0),
    "C5": (183, 181, 15721, 77, 97, 5, 2),
    "C6": (179, 178, 15772, 86, 84, 6, 2),
}


def test_summary_matches_the_published_table(demo) -> None:
    s = pp.section_summary(demo)
    for sec, (listed, kept, genes, tum, non, unk, none) in EXPECTED.items():
        row = s.loc[sec]
        assert (row["spots listed"], row["spots kept"], row["genes"]) == (listed, kept, genes), sec
        assert row["dropped: no counts"] == listed - kept
        assert (row["tumour"], row["non-tumour"], row["unknown"], row["not annotated"]) == (tum, non, unk, none), sec
    assert demo.n_obs == 1193
    parts = [c for cols in pp.SECTION_SUMMARY_PARTS.values() for c in cols]
    assert sorted(parts) == sorted(s.columns) and len(parts) == len(set(parts))  # every column once


def test_every_spot_centre_is_inside_its_image(demo) -> None:
    for sec in EXPECTED:
        m = (demo.obs["section"] == sec).to_numpy()
        h, w = demo.uns["spatial"][sec]["metadata"]["image_shape"]
        xy = demo.obsm["spatial"][m]
        assert (xy[:, 0] >= 0).all() and (xy[:, 0] < w).all() and (xy[:, 1] >= 0).all() and (xy[:, 1] < h).all()
        assert 8000 < w < 10000 and 9000 < h < 11000


def test_gene_union_is_zero_filled(demo) -> None:
    per_section = {sec: demo.uns["load_report"][sec]["n_genes_file"] for sec in EXPECTED}
    assert demo.n_vars >= max(per_section.values())
    assert demo.n_vars <= sum(per_section.values())
    # a gene absent from B4's file is zero in every B4 spot
    b4 = (demo.obs["section"] == "B4").to_numpy()
    absent = np.asarray(demo.X[b4].sum(axis=0)).ravel() == 0
    assert absent.sum() >= demo.n_vars - per_section["B4"]
    assert demo.X.dtype == np.int32


def test_split_and_annotation_columns(demo) -> None:
    assert demo.obs.groupby("split", observed=True)["section"].agg(lambda s: sorted(set(s))).to_dict() == {
        "train": ["C2", "C3", "C4"], "valid": ["C5", "C6"], "test": ["B4"]}
    assert str(demo.obs["tumor"].dtype) == "boolean"
    assert demo.obs["tumor_source"].str.contains("motivation.csv").all()
    sha = demo.uns["spatial"]["B4"]["metadata"]["image_sha256"]
    assert sha == "3cb165614ce2a13426381e450220dccac980cc9bda6a90fb041c28ca0e2c753d"
