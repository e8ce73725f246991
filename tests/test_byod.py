"""Bring your own data (issue 30): the rough edges of a user's own sections, resolution checked, the
chapters' split rules checked up front (:func:`stlib.io.check_design`), a mirror holding part of a
data set summarised with what is present."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import stlib as st
from stlib.errors import DataError, DataWarning

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import make_he2020_fixture  # noqa: E402
from spots_fixture import SECTIONS, UM_PER_PX, make_spots_fixture  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "her2st"


def _unverified(manifest: Path, **changes) -> None:
    """Drop the manifest's checksums (the tests edit files) and apply ``changes`` to it."""
    m = yaml.safe_load(manifest.read_text())
    m["files"] = {}
    m.update(changes)
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))


def _edit_counts(manifest: Path, edit) -> Path:
    path = manifest.parent / "S1" / "counts.tsv.gz"
    df = pd.read_csv(path, sep="\t", index_col=0)
    df = edit(df)
    df.to_csv(path, sep="\t")
    _unverified(manifest)
    return path


def _cli_error(manifest: Path, capsys) -> str:
    from stlib.cli import main

    assert main(["summary", str(manifest), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---- rough edges -------------------------------------------------------------------------------
def test_negative_count_names_file_spot_and_gene(tmp_path: Path, capsys) -> None:
    def neg(df):
        df.loc["4x0", "G03"] = -2
        return df

    path = _edit_counts(make_spots_fixture(tmp_path), neg)
    err = _cli_error(path.parents[1] / "own.yaml", capsys)
    assert re.search(rf"{re.escape(str(path))}: 1 negative count\(s\) .*spot 4x0, gene G03: -2", err), err


def test_duplicate_gene_names_are_named(tmp_path: Path, capsys) -> None:
    def dup(df):
        return df.rename(columns={"G05": "G04", "G07": "G06"})

    path = _edit_counts(make_spots_fixture(tmp_path), dup)
    err = _cli_error(path.parents[1] / "own.yaml", capsys)
    assert f"{path}: 2 gene name(s) appear more than once in the header: ['G04', 'G06']" in err, err


def test_blank_count_cell_names_line_spot_and_gene(tmp_path: Path, capsys) -> None:
    def blank(df):
        df = df.astype(object)
        df.loc["5x0", "G02"] = ""
        return df

    path = _edit_counts(make_spots_fixture(tmp_path), blank)
    err = _cli_error(path.parents[1] / "own.yaml", capsys)
    assert re.search(r"counts have 1 blank cell\(s\); first at line \d+ \(spot 5x0\), column 4 \(gene G02\): blank",
                     err), err


def test_text_count_cell_names_line_spot_and_gene(tmp_path: Path) -> None:
    def text(df):
        df = df.astype(object)
        df.loc["5x0", "G02"] = "n/a"
        return df

    manifest = make_spots_fixture(tmp_path)
    _edit_counts(manifest, text)
    with pytest.raises(DataError, match=r"1 non-numeric cell\(s\); first at .*\(spot 5x0\).*\(gene G02\): 'n/a' is not"):
        st.io.load_dataset(manifest).read(progress=False)


def test_legacy_st_spot_table_is_read_as_is(tmp_path: Path) -> None:
    """HER2ST's own ``*_selection.tsv`` layout (``x y new_x new_y pixel_x pixel_y selected``), by the spots reader."""
    manifest = make_spots_fixture(tmp_path)
    ref = st.io.load_dataset(manifest).read(progress=False)
    m = yaml.safe_load(manifest.read_text())
    for sec in SECTIONS:
        spots = pd.read_csv(manifest.parent / sec / "spots.csv", dtype={"spot_id": str})
        xy = spots["spot_id"].str.split("x", expand=True).astype(int)
        legacy = pd.DataFrame({"x": xy[0], "y": xy[1], "new_x": xy[0] + 0.02, "new_y": xy[1] - 0.01,
                               "pixel_x": spots["pixel_x"], "pixel_y": spots["pixel_y"], "selected": spots["in_tissue"]})
        legacy.to_csv(manifest.parent / sec / f"{sec}_selection.tsv", sep="\t", index=False)
        m["sections"][sec]["spots"] = f"{sec}/{sec}_selection.tsv"
    manifest.write_text(yaml.safe_dump({**m, "files": {}}, sort_keys=False))
    a = st.io.load_dataset(manifest).read(progress=False)
    assert list(a.obs_names) == list(ref.obs_names)
    np.testing.assert_array_equal(a.obsm["spatial"], ref.obsm["spatial"])
    assert (a.X != ref.X).nnz == 0
    assert (a.obs[["array_x", "array_y"]].to_numpy() == ref.obs[["array_x", "array_y"]].to_numpy()).all()
    rep = a.uns["load_report"]["S1"]
    assert rep["dropped_not_in_tissue"] == ["0x0"] and rep["dropped_selected_missing"] == ["1x0"]
    assert rep["spots_format"].startswith("legacy ST spot table") and "in_tissue = selected" in rep["spots_format"]


def test_legacy_st_table_of_a_real_section(tmp_path: Path) -> None:
    """C2's real ``C2_selection.tsv`` reads with the spots reader; its ids match the counts' ``<x>x<y>``."""
    sel = SHARED / "data" / "ST-spotfiles" / "C2_selection.tsv"
    if not sel.is_file():
        pytest.skip("../shared absent")
    from stlib.io.spots import read_spot_table

    df, not_in, no_flag = read_spot_table(sel)
    raw = pd.read_csv(sel, sep="\t")
    assert len(df) == int((raw["selected"] == 1).sum()) == 187 and len(not_in) == len(raw) - 187 and not no_flag
    assert df.index[0] == f"{raw.loc[raw['selected'] == 1, 'x'].iloc[0]}x{raw.loc[raw['selected'] == 1, 'y'].iloc[0]}"


def test_legacy_table_with_fractional_array_coordinates_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "s.tsv"
    pd.DataFrame({"x": [1, 2.5], "y": [1, 1], "pixel_x": [10.0, 20.0], "pixel_y": [5.0, 5.0],
                  "selected": [1, 1]}).to_csv(p, sep="\t", index=False)
    from stlib.io.spots import read_spot_table

    with pytest.raises(DataError, match=r"s\.tsv: legacy ST spot table: 1 row\(s\) whose array x, y are not whole numbers"):
        read_spot_table(p)


def test_rgba_image_is_composited_over_white_and_said(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # the top half transparent
    p = tmp_path / "he.png"
    Image.fromarray(rgba, "RGBA").save(p)
    with pytest.warns(DataWarning, match=r"he\.png: the image has an alpha channel and 50\.0% of its pixels are "
                                          r"\(partly\) transparent; composited over white"):
        img = st.io.read_image(p)
    assert img.shape == (20, 30, 3)
    assert (img[:10] == 255).all() and (img[10:] == (200, 0, 0)).all()
    opaque = tmp_path / "opaque.png"
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(opaque)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert (st.io.read_image(opaque) == (200, 0, 0)).all()  # nothing to say when nothing is transparent


def test_section_with_spots_off_its_tissue_is_reported(tmp_path: Path, capsys) -> None:
    """S2's spots shifted by 300 px (3 pitches): about 40% off the tissue, a warning naming S2 and the share."""
    manifest = make_spots_fixture(tmp_path)
    path = manifest.parent / "S2" / "spots.csv"
    spots = pd.read_csv(path, dtype={"spot_id": str})
    w, h = Image.open(manifest.parent / "S2" / "he.jpg").size
    spots["pixel_x"] = np.minimum(spots["pixel_x"] + 300, w - 1)
    spots.to_csv(path, index=False)
    _unverified(manifest)
    with pytest.warns(DataWarning, match=r"section S2: (3\d|4\d)% of its 53 spots \(\d+\) lie off the tissue of .*he\.jpg"):
        a = st.io.load_dataset(manifest).read(progress=False)
    assert a.uns["load_report"]["S2"]["off_tissue_share"] > 0.1
    assert a.uns["load_report"]["S1"]["off_tissue_share"] < 0.1
    from stlib.cli import main

    assert main(["summary", str(manifest), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^warning: section S2: \d+% of its 53 spots", err, re.M), err


def test_spots_on_a_real_section_are_on_tissue_and_a_shift_is_seen() -> None:
    """A1 (app image, dark background): its scaled spots sit on tissue; shifted 4 pitches they do not."""
    img = SHARED / "app" / "www" / "imgs" / "A1_HE_image_dark.png"
    sel = SHARED / "data" / "ST-spotfiles" / "A1_selection.tsv"
    if not img.is_file():
        pytest.skip("../shared absent")
    from stlib.io.register import check_spots_on_tissue

    raw = pd.read_csv(sel, sep="\t")
    raw = raw[raw["selected"] == 1]
    xy = raw[["pixel_x", "pixel_y"]].to_numpy(float) * np.array([2000 / 6954, 2138 / 7435])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        ok = check_spots_on_tissue(img, xy, 29.0, section="A1")
    assert ok["off_tissue_share"] < 0.1
    with pytest.warns(DataWarning, match=r"section A1: \d+% of its"):
        bad = check_spots_on_tissue(img, xy + [4 * 58, 0], 29.0, section="A1")
    assert bad["off_tissue_share"] > 0.1
    assert ok["tissue_check"] == "done"


def test_a2_real_spots_off_tissue_are_reported() -> None:
    """A2 (app image): about 18% of its plainly scaled spots land on the background, as the shared README says."""
    img = SHARED / "app" / "www" / "imgs" / "A2_HE_image_dark.png"
    if not img.is_file():
        pytest.skip("../shared absent")
    from stlib.io.register import check_spots_on_tissue

    raw = pd.read_csv(SHARED / "data" / "ST-spotfiles" / "A2_selection.tsv", sep="\t")
    raw = raw[raw["selected"] == 1]
    xy = raw[["pixel_x", "pixel_y"]].to_numpy(float) * np.array([2000 / 6966, 2136 / 7441])
    with pytest.warns(DataWarning, match=r"section A2: 1[5-9]% of its \d+ spots \(\d+\) lie off the tissue of .*A2_HE_image_dark"):
        out = check_spots_on_tissue(img, xy, 29.0, section="A2")
    assert 0.15 < out["off_tissue_share"] < 0.2


def test_grey_glass_gives_no_verdict(tmp_path: Path) -> None:
    """An image without black or white background (grey glass): the mask is the image, no warning, said so."""
    from stlib.io.register import check_spots_on_tissue

    p = tmp_path / "grey.jpg"
    Image.fromarray(np.full((400, 400, 3), 200, np.uint8)).save(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        out = check_spots_on_tissue(p, np.array([[10.0, 10.0], [390.0, 390.0]]), 20.0, section="G")
    assert out["tissue_check"].startswith("not informative")


# ---- resolution --------------------------------------------------------------------------------
def test_summary_shows_resolution_and_its_source(tmp_path: Path, capsys) -> None:
    from stlib.cli import main

    manifest = make_spots_fixture(tmp_path)
    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "um/px" in out and "um/px source" in out
    row = {ln.split("|")[1].strip(): ln for ln in out.splitlines() if ln.startswith("| S")}
    assert "declared (pitch measures 2" in row["S1"] and "measured from spot pitch" in row["S4"]
    a = st.io.load_dataset(manifest).read(progress=False)
    tab = st.io.resolution_table(a)
    assert tab.loc["S1", "um/px"] == UM_PER_PX and abs(tab.loc["S4", "um/px"] - UM_PER_PX) < 0.1


def test_declared_resolution_disagreeing_with_the_pitch_is_an_error(tmp_path: Path, capsys) -> None:
    manifest = make_spots_fixture(tmp_path)
    m = yaml.safe_load(manifest.read_text())
    m["sections"]["S2"]["um_per_px"] = 0.5
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    err = _cli_error(manifest, capsys)
    assert re.search(r"spots\.csv: section S2: um_per_px 0\.5 is declared, but the spots' 200 um pitch \(\d+\.\d px\) "
                     r"measures 2(\.\d+)? um/px, \d\d% apart \(tolerance 15%\)", err), err
    m["sections"]["S2"]["um_per_px"] = 2.2  # within 15%
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    a = st.io.load_dataset(manifest).read(progress=False)
    assert a.uns["spatial"]["S2"]["metadata"]["um_per_px"] == 2.2


def test_image_declared_resolution() -> None:
    from stlib.io.images import image_um_per_px

    return_none = []
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        arr = np.full((10, 10, 3), 200, np.uint8)
        cm = Path(d) / "cm.tif"
        Image.fromarray(arr).save(cm, resolution=20000.0, resolution_unit=3)  # 20,000 px/cm = 0.5 um/px
        um, src = image_um_per_px(cm)
        assert um == pytest.approx(0.5) and "TIFF resolution, cm" in src
        aperio = Path(d) / "aperio.tif"
        Image.fromarray(arr).save(aperio, description="Aperio Image Library |AppMag = 40|MPP = 0.2520")
        assert image_um_per_px(aperio)[0] == pytest.approx(0.252)
        for name, kw in (("screen.tif", {"dpi": (72, 72)}), ("plain.jpg", {"dpi": (300, 300)})):
            Image.fromarray(arr).save(Path(d) / name, **kw)
            return_none.append(image_um_per_px(Path(d) / name))
    assert return_none == [None, None]


def test_the_resolution_limit_is_checked_at_summary_time(tmp_path: Path) -> None:
    """A test section at 5x the train sections' um/px: chapter 14 (the saved model's 4x limit) cannot run."""
    tab = pd.DataFrame({"section": ["S1", "S2", "S3", "S4"], "patient": ["P1", "P1", "P2", "P3"],
                        "split": ["train", "train", "valid", "test"]})
    import anndata as ad

    a = ad.AnnData(obs=tab.set_index("section", drop=False))
    a.uns["spatial"] = {s: {"metadata": {"um_per_px": u}} for s, u in zip(tab["section"], (0.5, 0.5, 0.6, 2.5))}
    d = st.io.check_design(a)
    assert d.chapters["14"] is not None and "S4 2.5 um/px (5x) are beyond 4x" in d.chapters["14"]
    assert d.chapters["04"] is None and "14" not in d.runnable
    a.uns["spatial"]["S4"]["metadata"]["um_per_px"] = 1.9
    assert st.io.check_design(a).chapters["14"] is None


# ---- split rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["her2st-demo", "her2st", "her2st-abc", "he2020"])
def test_registered_data_sets_can_run_every_chapter(name: str) -> None:
    d = st.io.check_design(st.io.load_dataset(name))
    assert not d.blocked, d.describe()
    assert list(d.chapters) == [f"{k:02d}" for k in range(1, 17)]


def _four_sections(split: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"section": ["m1a", "m1b", "m2a", "m2b"], "patient": ["mouse1", "mouse1", "mouse2", "mouse2"],
                         "split": split})


def test_two_patients_four_sections_the_rules() -> None:
    """The issue's data set: four sections of two animals, under the splits the loader accepts."""
    d = st.io.check_design(_four_sections(["train", "valid", "test", "test"]))
    assert d.runnable == ["01", "02", "03", "05", "06", "10", "12", "14", "15", "16"]
    assert "needs 2 train section(s) for grouped cross-validation over train sections, the split has 1" in d.blocked["04"]
    assert d.blocked["07"] == "reads the results of chapter(s) 04, which cannot run"
    d = st.io.check_design(_four_sections(["train", "train", "test", "test"]))
    assert "needs 1 valid section(s) for valid (model choice), the split has 0" in d.blocked["03"]
    assert d.runnable == ["01", "02", "12", "16"]
    assert "--only 01 02 12 16" in d.describe()
    d = st.io.check_design(_four_sections(["train", "train", "valid", "valid"]))
    assert "needs 1 test section(s) for test (scoring)" in d.blocked["06"]
    d = st.io.check_design(_four_sections(["train", "train", "valid", "test"]))
    assert not d.blocked, d.describe()
    only = st.io.check_design(_four_sections(["train", "valid", "test", "test"]), ["01", "02", "14"])
    assert list(only.chapters) == ["01", "02", "14"] and not only.blocked


def test_summary_says_which_chapters_can_run(tmp_path: Path, capsys) -> None:
    from stlib.cli import main

    manifest = make_spots_fixture(tmp_path)  # train S1, S2 (P1); valid S3 (P2); test S4 (P3)
    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "split of own-fixture: train 2 section(s); valid 1 section(s); test 1 section(s); 3 patient(s)" in out
    assert "every chapter can run" in out
    split = manifest.parent / "split.tsv"
    tab = pd.read_csv(split, sep="\t")
    tab.loc[tab["section"] == "S2", "split"] = "valid"
    tab.loc[tab["section"] == "S3", "split"] = "train"
    tab.loc[tab["section"] == "S1", "split"] = "valid"
    tab.to_csv(split, sep="\t", index=False)
    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "chapter 04 cannot: needs 2 train section(s)" in out and "--only 01 02 03 05 06" in out


def test_book_run_refuses_a_split_up_front(tmp_path: Path, capsys) -> None:
    """``stlib.book.run`` checks the split before the first chapter: no notebook starts."""
    from stlib.book import run as book_run

    manifest = make_spots_fixture(tmp_path)
    split = manifest.parent / "split.tsv"
    tab = pd.read_csv(split, sep="\t")
    tab["split"] = tab["section"].map({"S1": "valid", "S2": "valid", "S3": "train", "S4": "test"})
    tab.to_csv(split, sep="\t", index=False)
    with pytest.raises(SystemExit) as exc:
        book_run.run({"dataset": str(manifest)}, out=tmp_path / "run", only=["01", "04"], progress=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "chapter 04 cannot: needs 2 train section(s)" in err and "--only 01" in err
    assert not list((tmp_path / "run" / "notebooks").glob("*.ipynb"))


def test_book_run_refuses_the_resolution_rule_up_front(tmp_path: Path, capsys) -> None:
    """The 4x rule of chapter 14 is checked before the first chapter, from the manifest's declared
    um/px (S1-S3) and the spots file's pitch (S4), in the words of ``stlib summary``."""
    from stlib.book import run as book_run

    manifest = make_spots_fixture(tmp_path)
    m = yaml.safe_load(manifest.read_text())
    m["sections"]["S3"]["um_per_px"] = 10.0  # valid: 5x the train sections' 2 um/px
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    design = st.io.check_design(st.io.load_dataset(manifest), ["14"])
    assert "S3 10 um/px (5x)" in design.chapters["14"]
    with pytest.raises(SystemExit) as exc:
        book_run.run({"dataset": str(manifest)}, out=tmp_path / "run", only=["01", "14"], progress=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"chapter 14 cannot: section\(s\) S3 10 um/px \(5x\) are beyond 4x the train sections' median "
                     r"2 um/px, the saved image model's limit", err), err
    assert "--only 01" in err and not list((tmp_path / "run" / "notebooks").glob("*.ipynb"))
    # measured from the spots file when not declared: S4's spots at 1/5 the pitch in pixels (10 um/px)
    m["sections"]["S3"]["um_per_px"] = 2.0
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    spots = pd.read_csv(manifest.parent / "S4" / "spots.csv")
    spots[["pixel_x", "pixel_y"]] /= 5
    spots.to_csv(manifest.parent / "S4" / "spots.csv", index=False)
    assert st.io.spots.manifest_resolutions(st.io.load_dataset(manifest))["S4"] == pytest.approx(10.0, rel=0.05)
    with pytest.raises(SystemExit):
        book_run.run({"dataset": str(manifest)}, out=tmp_path / "run", only=["14"], progress=False)
    assert re.search(r"chapter 14 cannot: section\(s\) S4 \d+(\.\d+)? um/px \(5(\.\d)?x\)", capsys.readouterr().err)


# ---- a mirror with part of a data set ----------------------------------------------------------
def test_he2020_subset_in_a_mirror_is_summarised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror holding 4 of He et al. 2020's 68 sections: a warning says which are present and missing,
    and the 4 are read with their split."""
    make_he2020_fixture(tmp_path, patients={"BC23287": "HER2_luminal"}, replicates=("C1", "C2", "D1"))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(tmp_path))
    ds = st.io.load_dataset("he2020")
    with pytest.warns(DataWarning, match=r"he2020: 3 of the split's 68 sections are present \(\['BC23287_C1', "
                                          r"'BC23287_C2', 'BC23287_D1'\]\), 65 are missing"):
        a = ds.read(progress=False)
    assert sorted(a.obs["section"].unique()) == ["BC23287_C1", "BC23287_C2", "BC23287_D1"]
    assert set(a.obs["split"].astype(str)) == {"train"}


# ---- 10x Visium (Space Ranger outputs, through squidpy) ---------------------------------------
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "ST-cnts" / "C2.tsv.gz").is_file(), reason="../shared absent")


@needs_shared
def test_visium_layout_of_a_real_section_reads_as_its_her2st_self(tmp_path: Path, capsys) -> None:
    from visium_fixture import make_visium_fixture

    manifest, info = make_visium_fixture(tmp_path)
    a = st.io.load_dataset(manifest).read(progress=False)
    ref = st.io.load_dataset("her2st-demo").read(["C2"], progress=False)
    assert a.n_obs == ref.n_obs == 187 and list(a.var_names) == info["genes"]
    ids = [s.removesuffix("-1") for s in a.obs["spot_id"]]
    r = ref[[f"C2_{i}" for i in ids], info["genes"]]
    assert (a.X != r.X).nnz == 0
    np.testing.assert_allclose(a.obsm["spatial"], r.obsm["spatial"] * np.array(info["scale"]), atol=1e-3)
    assert (a.obs["array_x"].to_numpy() == r.obs["array_x"].to_numpy()).all()
    meta = a.uns["spatial"]["C2"]["metadata"]
    assert meta["um_per_px"] == pytest.approx(info["um_per_px"]) and meta["um_per_px_source"].startswith("scalefactors")
    assert a.uns["load_report"]["C2"]["off_tissue_share"] < 0.1 and a.obs["split"].astype(str).eq("test").all()
    from stlib.cli import main

    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| C2 " in out and "scalefactors_json.json" in out and "chapter 01 cannot: needs 1 train section(s)" in out


@needs_shared
def test_visium_duplicate_symbols_and_bad_folders(tmp_path: Path, capsys) -> None:
    from visium_fixture import make_visium_fixture

    manifest, info = make_visium_fixture(tmp_path, n_genes=50, duplicate_symbol=True)
    a = st.io.load_dataset(manifest).read(progress=False)
    assert a.var_names.is_unique and a.uns["load_report"]["C2"]["genes_renamed"] == 1
    assert a.var["gene_ids"].is_unique
    m = yaml.safe_load(manifest.read_text())
    m["sections"]["C2"]["um_per_px"] = 1.0
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    err = _cli_error(manifest, capsys)
    assert re.search(r"tissue_positions\.csv: section C2: um_per_px 1 is declared, but the spots' 200 um pitch", err), err
    del m["sections"]["C2"]["um_per_px"]
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    (manifest.parent / "C2" / "outs" / "spatial" / "tissue_positions.csv").unlink()
    err = _cli_error(manifest, capsys)
    assert re.search(r"spatial/tissue_positions\.csv: missing file \(nor spatial/tissue_positions_list\.csv\)", err), err
    m["sections"]["C2"].pop("folder")
    manifest.write_text(yaml.safe_dump(m, sort_keys=False))
    err = _cli_error(manifest, capsys)
    assert "visium.yaml: section C2: no folder given" in err


@needs_shared
def test_the_data_page_visium_manifest_is_a_working_manifest(tmp_path: Path) -> None:
    from visium_fixture import make_visium_fixture

    text = (Path(__file__).resolve().parents[1] / "book" / "data.md").read_text()
    block = text.split("```yaml\n# my-visium.yaml", 1)[1].split("```", 1)[0]
    m = yaml.safe_load("# my-visium.yaml" + block)
    assert m["reader"] == "visium" and set(m["sections"]["V1"]) == {"patient", "group", "folder", "image"}
    manifest, _ = make_visium_fixture(tmp_path, n_genes=20)
    fx = yaml.safe_load(manifest.read_text())
    m["sections"], m["geometry"] = fx["sections"], fx["geometry"]  # legacy-ST data in the Visium layout
    path = manifest.parent / "my-visium.yaml"
    path.write_text(yaml.safe_dump(m))
    assert st.io.load_dataset(path).read(progress=False).n_obs == 187


# ---- the documented pipeline command on a real two-patient data set ------------------------------
#: Full-size (width, height) of A1 and A2 (app/data/dims.list; ../shared/README.md): their spot tables'
#: pixels, scaled here to the web app's images.
_A_FULLRES_WH = {"A1": (6954, 7435), "A2": (6966, 7441)}


def _real_two_patient_manifest(tmp_path: Path, her2st: Path) -> Path:
    """C2, C3 (patient C, full-resolution JPEGs) and A1, A2 (patient A, the web app's 2000 px PNGs) in the
    ``spots`` layout with legacy-ST spot tables (``*_selection.tsv``), resolution measured from the pitch:
    train C2, valid C3 (``allow_train_valid_patient_overlap``), test A1, A2."""
    root = tmp_path / "real"
    sections = {}
    for sec, patient in (("C2", "C"), ("C3", "C"), ("A1", "A"), ("A2", "A")):
        folder = root / sec
        folder.mkdir(parents=True)
        (folder / "counts.tsv.gz").symlink_to(her2st / "data" / "ST-cnts" / f"{sec}.tsv.gz")
        table = pd.read_csv(her2st / "data" / "ST-spotfiles" / f"{sec}_selection.tsv", sep="\t")
        if patient == "A":
            image = her2st / "app" / "www" / "imgs" / f"{sec}_HE_image_dark.png"
            with Image.open(image) as im:
                w, h = im.size
            table["pixel_x"] *= w / _A_FULLRES_WH[sec][0]
            table["pixel_y"] *= h / _A_FULLRES_WH[sec][1]
        else:
            image = next((her2st / "data" / "ST-imgs" / "C" / sec).glob("*.jpg"))
        (folder / f"he{image.suffix}").symlink_to(image)
        table.to_csv(folder / f"{sec}_selection.tsv", sep="\t", index=False)
        sections[sec] = {"patient": patient, "group": "HER2+", "counts": f"{sec}/counts.tsv.gz",
                         "spots": f"{sec}/{sec}_selection.tsv", "image": f"{sec}/he{image.suffix}"}
    pd.DataFrame({"section": list(sections), "patient": [m["patient"] for m in sections.values()],
                  "split": ["train", "valid", "test", "test"]}).to_csv(root / "split.tsv", sep="\t", index=False)
    manifest = {"name": "real-two-patients", "reader": "spots", "origin": "local",
                "geometry": {"spot_diameter_um": 100, "spot_pitch_um": 200}, "split": "split.tsv",
                "split_policy": {"allow_train_valid_patient_overlap": True,
                                 "reason": "two patients: train and valid share patient C"},
                "sections": sections, "files": {}}
    path = root / "real.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def test_documented_pipeline_command_refuses_a_real_two_patient_set_up_front(tmp_path: Path) -> None:
    """``python -m stlib.book.run --dataset <manifest>`` (every chapter, no ``--only``) on four real sections
    of two patients: refused before the first chapter (exit 2, no notebook), with the reasons and the
    ``--only`` line; the resolution rule comes from the spot tables' pitch (A at ~3.4 um/px, C at ~0.69)."""
    import os
    import subprocess
    import time

    from conftest import demo_mirror

    mirror = demo_mirror()
    if mirror is None or not (mirror / "her2st" / "app" / "www" / "imgs" / "A2_HE_image_dark.png").is_file():
        pytest.skip("real data absent: set STLIB_DATA_MIRROR")
    manifest = _real_two_patient_manifest(tmp_path, mirror / "her2st")
    out = tmp_path / "run"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "stlib.book.run", "--dataset", str(manifest), "--out", str(out),
                        "--no-progress"], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    seconds = time.perf_counter() - t0
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-3000:]
    assert not list(out.rglob("*.ipynb")) and "->" not in r.stdout  # no chapter started
    err = r.stderr
    assert "split of real-two-patients: train 1 section(s); valid 1 section(s); test 2 section(s); 2 patient(s)" in err
    assert "chapter 04 cannot: needs 2 train section(s) for grouped cross-validation over train sections, the split has 1" in err
    assert "chapter 09 cannot: needs 2 train section(s)" in err
    for ch in ("07", "08", "11", "13"):
        assert re.search(rf"chapter {ch} cannot: reads the results of chapter\(s\) [0-9 ]*04", err), (ch, err)
    assert re.search(r"chapter 14 cannot: section\(s\) A1 3\.\d+ um/px \([45](\.\d)?x\), A2 3\.\d+ um/px \([45](\.\d)?x\) "
                     r"are beyond 4x the train sections' median 0\.\d+ um/px", err), err
    assert "run them with: ./run pipeline --dataset ... --only 01 02 03 05 06 10 12 15 16" in err.splitlines()
    assert "Traceback" not in err and seconds < 120, seconds
