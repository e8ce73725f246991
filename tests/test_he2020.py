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
    read_he2020,
    read_metadata,
    read_tumor_annotation,
    resolve_root,
    write_he2020_split,
)
from stlib.io.registry import load_dataset
from stlib.io.splits import read_split, stratified_patient_split

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
    s = stratified_patient_split(_real_patients(), seed=0)
    assert list(s.columns) == ["patient", "subtype", "split"]
    assert s["split"].value_counts().to_dict() == {"train": 13, "valid": 5, "test": 5}
    for part in ("valid", "test"):
        assert sorted(s.loc[s["split"] == part, "subtype"]) == sorted(set(HE2020_PATIENTS.values()))
    assert set(s.loc[s["split"] == "train", "subtype"]) == set(HE2020_PATIENTS.values())
    pd.testing.assert_frame_equal(s, stratified_patient_split(_real_patients().iloc[::-1], seed=0))
    other = stratified_patient_split(_real_patients(), seed=1)
    assert not other.set_index("patient")["split"].equals(s.set_index("patient").loc[other["patient"], "split"])


def test_split_is_patient_level_over_sections(fx) -> None:
    s = stratified_patient_split(fx.metadata, seed=0, n=(1, 1, 1))
    assert list(s.columns) == ["section", "patient", "subtype", "split"]
    assert sorted(s["section"]) == sorted(fx.sections)
    assert (s.groupby("patient")["split"].nunique() == 1).all()
    assert sorted(s.drop_duplicates("patient")["split"]) == ["test", "train", "valid"]
    with pytest.raises(ValueError, match="do not add up"):
        stratified_patient_split(fx.metadata, n=(13, 5, 5))


def test_write_he2020_split_writes_a_fresh_draw(tmp_path: Path) -> None:
    out = write_he2020_split(tmp_path / "sub" / "he2020.tsv", seed=0)
    assert len(out) == 23
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sub" / "he2020.tsv", sep="\t"), out)
    pd.testing.assert_frame_equal(out, stratified_patient_split(_real_patients(), seed=0))


# ---- the committed split: the authors' ------------------------------------------------------
COMMITTED = PROJECT / "data" / "splits" / "he2020.tsv"
SHARED_SPLIT = PROJECT.parent / "shared" / "paper" / "he2020_split.tsv"
#: Spots per part as the report states them (train, valid, test).
PAPER_SPOTS = {"train": 17_682, "valid": 6_875, "test": 6_098}


@pytest.fixture
def project_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STLIB_MANIFESTS", raising=False)


def _committed() -> pd.DataFrame:
    return read_split(COMMITTED)  # the loader itself: '#' provenance lines skipped


def test_committed_split_is_the_authors() -> None:
    if not SHARED_SPLIT.is_file():
        pytest.skip(f"{SHARED_SPLIT} absent (only on the developers' machines)")
    ours = _committed().set_index("section")
    theirs = pd.read_csv(SHARED_SPLIT, sep="\t", comment="#", dtype=str).set_index("section")
    assert list(ours.index) == list(theirs.index)
    assert ours["patient"].to_dict() == theirs["patient"].to_dict()
    assert ours["split"].to_dict() == theirs["split"].to_dict()
    assert ours["n_spots"].astype(int).to_dict() == theirs["n_spots"].astype(int).to_dict()


def test_committed_split_keeps_its_provenance() -> None:
    head = "\n".join(ln for ln in COMMITTED.read_text().splitlines() if ln.startswith("#"))
    assert "savagyan00/ST_GExp_Prediction_CS229" in head and "17,682 / 6,875 / 6,098" in head


def test_committed_split_sizes_and_spots() -> None:
    s = _committed()
    assert list(s.columns) == ["section", "patient", "split", "n_spots"]
    assert len(s) == 68 and s["section"].is_unique
    assert all(sec.startswith(f"{p}_") for sec, p in zip(s["section"], s["patient"]))
    assert s["patient"].nunique() == 23
    per_patient = s.drop_duplicates("patient")["split"].value_counts().to_dict()
    assert per_patient == {"train": 13, "valid": 5, "test": 5}
    assert s["split"].value_counts().to_dict() == {"train": 38, "valid": 15, "test": 15}
    spots = s.assign(n=s["n_spots"].astype(int)).groupby("split")["n"].sum().to_dict()
    assert spots == PAPER_SPOTS


def test_committed_split_is_patient_level_and_stratified(project_manifests) -> None:
    ds = load_dataset("he2020")
    subtype = {p: v["subtype"] for p, v in ds.patients.items()}
    s = ds.split()  # validated against the manifest's patients (sections unknown until read)
    assert (s.groupby("patient")["split"].nunique() == 1).all()
    assert set(s["patient"]) == set(subtype) == set(HE2020_PATIENTS)
    part = s.drop_duplicates("patient").set_index("patient")["split"]
    for name in ("valid", "test"):
        got = sorted(subtype[p] for p in part.index[part == name])
        assert got == sorted(set(HE2020_PATIENTS.values())), name  # one patient of every subtype
    assert sorted(part.index[part == "valid"]) == ["BC23277", "BC23450", "BC23803", "BC23810", "BC24223"]
    assert sorted(part.index[part == "test"]) == ["BC23209", "BC23268", "BC23506", "BC24105", "BC24220"]


def test_shared_patients_on_the_same_side_in_her2st(project_manifests) -> None:
    """The four HER2ST patients who are also He et al. patients sit in the same part of both splits."""
    he_ds, her2st_ds = load_dataset("he2020"), load_dataset("her2st")
    overlap = {p: v["her2st_patient"] for p, v in he_ds.patients.items() if "her2st_patient" in v}
    assert overlap == HER2ST_OVERLAP
    he = he_ds.split().drop_duplicates("patient").set_index("patient")["split"]
    her2st = her2st_ds.split().drop_duplicates("patient").set_index("patient")["split"]
    assert {letter: her2st[letter] for letter in overlap.values()} == {
        letter: he[p] for p, letter in overlap.items()}
    assert (her2st_ds.split().groupby("patient")["split"].nunique() == 1).all()


def _he2020_data(ds) -> Path | None:
    """A mirror folder holding the He et al. data (extracted or zipped), or the filled download
    cache; ``None`` when neither is here (never downloads)."""
    import os

    arc = ds.archive or {}
    marker, fname = str(arc.get("marker")), str(arc.get("fname"))
    for base in (os.environ.get("STLIB_DATA_MIRROR"), str(PROJECT.parent / "shared" / "data")):
        if not base:
            continue
        folder = Path(base).expanduser() / ds.mirror_subdir
        if (folder / marker).is_file() or (folder / Path(marker).name).is_file() or (folder / fname).is_file():
            return Path(base).expanduser()
    if (ds.cache_root() / f"{fname}.unzip" / marker).is_file():
        return ds.cache_root()
    return None


@pytest.mark.realdata
@pytest.mark.slow
def test_committed_split_matches_the_real_data(project_manifests, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    ds = load_dataset("he2020")
    found = _he2020_data(ds)
    if found is None:
        pytest.skip("He et al. 2020 data absent (no mirror with he2020/, no filled download cache)")
    if found != ds.cache_root():
        monkeypatch.setenv("STLIB_DATA_MIRROR", str(found))
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("must not download"))
    adata = ds.read(progress=False)
    want = _committed().set_index("section")
    obs = adata.obs
    assert sorted(obs["section"].unique()) == sorted(want.index)
    got_split = obs.groupby("section", observed=True)["split"].agg(lambda v: sorted(set(v.astype(str))))
    assert got_split.to_dict() == {s: [p] for s, p in want["split"].items()}
    n = obs.groupby("section", observed=True).size()
    differ = {s: (int(n.get(s, 0)), int(k)) for s, k in want["n_spots"].astype(int).items() if n.get(s, 0) != k}
    totals = obs["split"].astype(str).value_counts().to_dict()
    assert totals == PAPER_SPOTS, f"spots per section (ours, authors') that differ: {differ}"


def test_metadata_with_byte_order_mark(tmp_path: Path) -> None:
    fx = make_he2020_fixture(tmp_path, patients={"BC23287": "HER2_luminal"}, replicates=("C1",))
    path = fx.root / "metadata.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(read_metadata(fx.root).index) == ["BC23287_C1"]
