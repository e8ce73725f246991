"""The He et al. 2020 reader on a fixture with every quirk of the real files, and the split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures import ENSG, make_he2020_fixture

from stlib.errors import DataError
from stlib.io.he2020 import (
    HE2020_PATIENTS,
    HER2ST_OVERLAP,
    TOP_FOLDER,
    label_is_tumor,
    make_he2020_split,
    read_he2020,
    read_metadata,
    read_tumor_annotation,
    resolve_root,
    write_he2020_split,
)

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory):
    return make_he2020_fixture(tmp_path_factory.mktemp("he"))


@pytest.fixture(scope="module")
def adata(fx):
    return read_he2020(fx.root)


def test_metadata_sections_and_root_resolution(fx) -> None:
    meta = read_metadata(fx.parent)  # the folder holding the zip's top folder
    assert list(meta.index) == fx.sections
    assert fx.sections[0] == "BC23287_C1"
    assert resolve_root(fx.parent) == fx.root == resolve_root(fx.root)
    assert fx.root.name == TOP_FOLDER
    # the BT/BC prefixes differ within a section: names come from metadata.csv
    row = meta.loc["BC23287_C1"]
    assert row["histology_image"].startswith("HE_BT") and row["count_matrix"].startswith("BC")


def test_spots_kept_in_order_and_counts_exact(fx, adata) -> None:
    assert adata.n_obs == sum(len(t.kept) for t in fx.truth.values())
    X = adata.X.toarray()
    for sec, t in fx.truth.items():
        m = (adata.obs["section"] == sec).to_numpy()
        assert list(adata.obs.loc[m, "spot_id"]) == t.kept
        assert list(adata.obs_names[m]) == [f"{sec}_{s}" for s in t.kept]
        got = pd.DataFrame(X[m], index=t.kept, columns=adata.var_names)
        pd.testing.assert_frame_equal(got[t.genes], t.counts.astype(got.dtypes.iloc[0]), check_names=False)
        absent = [g for g in adata.var_names if g not in t.genes]
        assert absent, "each fixture section lacks some genes"
        assert (got[absent].to_numpy() == 0).all()
        xy = adata.obsm["spatial"][m]
        np.testing.assert_allclose(xy, t.pixel[["pixel_x", "pixel_y"]].to_numpy())
        ax = [int(s.split("x")[0]) for s in t.kept]
        assert list(adata.obs.loc[m, "array_x"]) == ax


def test_gene_union_zero_filled(fx, adata) -> None:
    assert sorted(adata.var_names) == fx.all_genes == sorted(ENSG)
    assert all(g.startswith("ENSG") for g in adata.var_names)
    assert adata.X.dtype == np.int32
    assert "gene_symbol" not in adata.var.columns  # no offline mapping by default


def test_dropped_spots_are_counted_and_reported(fx, adata) -> None:
    for sec, t in fx.truth.items():
        rep = adata.uns["load_report"][sec]
        assert rep["dropped_no_counts"] == t.dropped_no_counts
        assert len(t.dropped_no_counts) in (1, 2)
        assert sorted(rep["dropped_no_coords"]) == t.dropped_no_coords
        assert rep["n_kept"] == len(t.kept)
        assert rep["n_rows_spots_file"] == len(t.kept) + len(t.dropped_no_counts)
        assert rep["annotation_unmatched"] == t.extra["annotation_unmatched"]


def test_tumour_labels_after_rounding(fx, adata) -> None:
    assert str(adata.obs["tumor"].dtype) == "boolean"
    n_missing = 0
    for sec, t in fx.truth.items():
        obs = adata.obs[adata.obs["section"] == sec].set_index("spot_id")
        for spot in t.kept:
            want = t.tumor[spot]
            got = obs.at[spot, "tumor"]
            if want is None:
                assert got is pd.NA
                n_missing += 1
            else:
                assert bool(got) is want
            assert obs.at[spot, "tumor_label"] == t.tumor_label[spot] or (
                t.tumor_label[spot] is None and pd.isna(obs.at[spot, "tumor_label"])
            )
        assert set(obs["tumor_source"]) == {f"pathologist annotation ({t.files['tumor_annotation'].name})"}
        rep = adata.uns["load_report"][sec]
        assert rep["n_tumor"] + rep["n_non_tumor"] + rep["n_tumor_missing"] == len(t.kept)
        assert rep["n_tumor"] > 0 and rep["n_non_tumor"] > 0
    assert n_missing >= 2 * len(fx.sections)  # 2 unannotated spots + 1 empty label per section, minus dropped


def test_obs_metadata_and_uns(fx, adata) -> None:
    obs = adata.obs
    for col in ("section", "spot_id", "patient", "replicate", "subtype", "array_x", "array_y", "tumor",
                "tumor_label", "tumor_source"):
        assert col in obs.columns
    for sec, t in fx.truth.items():
        o = obs[obs["section"] == sec]
        assert set(o["patient"]) == {t.patient} and set(o["subtype"]) == {t.subtype}
        assert set(o["replicate"]) == {t.extra["replicate"]}
        sp = adata.uns["spatial"][sec]
        assert sp["metadata"]["image_shape"] == [400, 400]
        assert sp["metadata"]["image_path"].endswith(t.files["histology_image"].name)
        # spot diameter = half the (320 / 6 px) pitch
        assert sp["scalefactors"]["spot_diameter_fullres"] == pytest.approx(320 / 6 / 2, rel=0.1)
    assert list(obs["subtype"].cat.categories) == ["HER2_luminal", "HER2_non_luminal", "TNBC"]


def test_subset_of_sections_and_unknown_section(fx) -> None:
    a = read_he2020(fx.parent, ["BC23209_D1", "BC23287_C1"])
    assert list(a.obs["section"].cat.categories) == ["BC23209_D1", "BC23287_C1"]
    with pytest.raises(DataError, match=r"metadata\.csv: unknown section\(s\) \['BC1_C1'\]"):
        read_he2020(fx.root, ["BC1_C1"])


def test_gene_symbol_hook(fx) -> None:
    a = read_he2020(fx.root, [fx.sections[0]], gene_symbols={ENSG[1]: "TSPAN6"})
    assert a.var.loc[ENSG[1], "gene_symbol"] == "TSPAN6"
    assert a.var["gene_symbol"].isna().sum() == a.n_vars - 1


def test_coords_file_quirks(tmp_path: Path) -> None:
    text = "xcoord\tycoord\tlab\ttumor\rC1_3.04_4.96\t3.04\t4.96\tL1\ttumor\rC1_5_6\t5\t6\tL2\tnon\r" \
           "C1_5.2_5.8\t5.2\t5.8\tL2\ttumor\rC1_7_7\t7\t7\tL3\t\r"
    p = tmp_path / "BC1_C1_Coords.tsv.gz"
    p.write_bytes(gzip.compress(text.encode()))
    labels, info = read_tumor_annotation(p)
    assert labels["3x5"] == "tumor"
    assert labels["7x7"] is None
    # 5x6 is listed twice with different labels after rounding: not trusted, reported
    assert labels["5x6"] is None and info["conflicting"] == ["5x6"] and info["n_duplicates"] == 1
    assert info["n_rows"] == 4
    assert [label_is_tumor(v) for v in ("tumor", "non", None, "L3")] == [True, False, None, None]


# ---- split ---------------------------------------------------------------------------------
def _real_patients() -> pd.DataFrame:
    return pd.DataFrame({"patient": list(HE2020_PATIENTS), "type": list(HE2020_PATIENTS.values())})


def test_split_sizes_stratified_and_deterministic() -> None:
    s = make_he2020_split(_real_patients(), seed=0)
    assert list(s.columns) == ["patient", "subtype", "split"]
    assert s["split"].value_counts().to_dict() == {"train": 13, "valid": 5, "test": 5}
    for part in ("valid", "test"):
        assert sorted(s.loc[s["split"] == part, "subtype"]) == sorted(set(HE2020_PATIENTS.values()))
    assert set(s.loc[s["split"] == "train", "subtype"]) == set(HE2020_PATIENTS.values())
    pd.testing.assert_frame_equal(s, make_he2020_split(_real_patients().iloc[::-1], seed=0))
    other = make_he2020_split(_real_patients(), seed=1)
    assert not other.set_index("patient")["split"].equals(s.set_index("patient").loc[other["patient"], "split"])


def test_split_is_patient_level_over_sections(fx) -> None:
    s = make_he2020_split(fx.metadata, seed=0, n=(1, 1, 1))
    assert list(s.columns) == ["section", "patient", "subtype", "split"]
    assert sorted(s["section"]) == sorted(fx.sections)
    assert (s.groupby("patient")["split"].nunique() == 1).all()
    assert sorted(s.drop_duplicates("patient")["split"]) == ["test", "train", "valid"]
    with pytest.raises(ValueError, match="do not add up"):
        make_he2020_split(fx.metadata, n=(13, 5, 5))


def test_committed_split_file_is_regenerated_exactly(tmp_path: Path) -> None:
    out = write_he2020_split(tmp_path / "he2020.tsv", seed=0)
    committed = PROJECT / "data" / "splits" / "he2020.tsv"
    assert committed.read_text() == (tmp_path / "he2020.tsv").read_text()
    assert len(out) == 23
    # the HER2ST patients E-H sit in the same part in splits/her2st.tsv (no cross-data-set leakage)
    her2st = pd.read_csv(PROJECT / "data" / "splits" / "her2st.tsv", sep="\t").set_index("patient")["split"]
    he = out.set_index("patient")["split"]
    for he_patient, letter in HER2ST_OVERLAP.items():
        assert her2st[letter] == he[he_patient]


def test_metadata_with_byte_order_mark(tmp_path: Path) -> None:
    fx = make_he2020_fixture(tmp_path, patients={"BC23287": "HER2_luminal"}, replicates=("C1",))
    path = fx.root / "metadata.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(read_metadata(fx.root).index) == ["BC23287_C1"]
