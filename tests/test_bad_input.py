"""Every bad input gives an error that names the file and the problem (or, where the data set is
expected to have it, is dropped, counted and reported). Both layouts: He et al. 2020 and HER2ST."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures import her2st_manifest_files, make_he2020_fixture, make_her2st_fixture, zip_folder

from stlib.errors import ChecksumError, DataError, SplitError
from stlib.io.he2020 import read_he2020
from stlib.io.her2st import parse_motivation, read_her2st
from stlib.io.registry import load_dataset

# ---- He et al. 2020 ------------------------------------------------------------------------
# bad input -> (file key in the section's files, or "metadata", regex of the problem)
HE_CASES = {
    "missing_counts": ("count_matrix", r"missing file"),
    "missing_spots": ("spot_coordinates", r"missing file"),
    "missing_image": ("histology_image", r"missing image file"),
    "truncated_counts_gzip": ("count_matrix", r"truncated or corrupt gzip"),
    "truncated_spots_gzip": ("spot_coordinates", r"truncated or corrupt gzip"),
    "truncated_coords_gzip": ("tumor_annotation", r"truncated or corrupt gzip"),
    "corrupt_jpeg": ("histology_image", r"not a readable image"),
    "truncated_jpeg": ("histology_image", r"truncated JPEG"),
    "spot_outside_image": ("spot_coordinates", r"1 spot centre\(s\) outside the 400 x 400 px image"),
    "duplicate_spot_counts": ("count_matrix", r"duplicate spot id\(s\) in counts"),
    "duplicate_spot_spots": ("spot_coordinates", r"duplicate spot id\(s\) in spot coordinates"),
    "empty_section": ("count_matrix", r"empty section BC23287_D1"),
    "bad_spot_ids": ("count_matrix", r"not '<x>x<y>' array coordinates"),
    "short_coords_row": ("tumor_annotation", r"expected 5 fields"),
    "negative_counts": ("count_matrix", r"negative"),
    "metadata_missing_column": ("metadata", r"lacks column\(s\) \['spot_coordinates'\]"),
    "metadata_duplicate_section": ("metadata", r"duplicate section id"),
    "metadata_empty_file_name": ("metadata", r"empty 'count_matrix' on line\(s\) \[2\]"),
}


@pytest.mark.parametrize("bad", sorted(HE_CASES))
def test_he2020_bad_input_names_file_and_problem(tmp_path: Path, bad: str) -> None:
    fx = make_he2020_fixture(tmp_path, bad=bad, bad_section=1, patients={"BC23287": "HER2_luminal"})
    key, problem = HE_CASES[bad]
    where = fx.root / "metadata.csv" if key == "metadata" else fx.truth[fx.sections[1]].files[key]
    with pytest.raises(DataError, match=problem) as err:
        read_he2020(fx.parent)
    assert Path(err.value.where) == where
    assert str(err.value).startswith(str(where))


def test_he2020_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"metadata\.csv: missing file"):
        read_he2020(tmp_path)


def test_he2020_off_tissue_counts_and_spots_without_counts_are_not_fatal(tmp_path: Path) -> None:
    fx = make_he2020_fixture(tmp_path, patients={"BC23287": "HER2_luminal"}, replicates=("C1",))
    a = read_he2020(fx.root)
    rep = a.uns["load_report"]["BC23287_C1"]
    t = fx.truth["BC23287_C1"]
    assert rep["dropped_no_coords"] and sorted(rep["dropped_no_coords"]) == t.dropped_no_coords
    assert rep["dropped_no_counts"] == t.dropped_no_counts
    assert a.n_obs == len(t.kept) == rep["n_spots_listed"] - len(t.dropped_no_counts)


def test_he2020_section_without_annotation_file_is_all_missing(tmp_path: Path) -> None:
    fx = make_he2020_fixture(tmp_path, patients={"BC23287": "HER2_luminal"}, replicates=("C1",))
    m = fx.metadata.copy()
    m["tumor_annotation"] = ""
    m.to_csv(fx.root / "metadata.csv", index=False)
    a = read_he2020(fx.root)
    assert a.obs["tumor"].isna().all() and set(a.obs["tumor_source"]) == {"none"}


# ---- HER2ST --------------------------------------------------------------------------------
HER2ST_CASES = {
    "missing_counts": (0, "counts", r"missing file"),
    "missing_selection": (0, "selection", r"missing file"),
    "missing_image": (0, "image_dir", r"expected exactly one \.jpg H&E image, found 0"),
    "truncated_counts_gzip": (0, "counts", r"truncated or corrupt gzip"),
    "corrupt_jpeg": (0, "image", r"not a readable image"),
    "truncated_jpeg": (0, "image", r"truncated JPEG"),
    "spot_outside_image": (0, "selection", r"outside the 400 x 400 px image"),
    "duplicate_spot_counts": (0, "counts", r"duplicate spot id\(s\) in counts"),
    "duplicate_spot_selection": (0, "selection", r"duplicate spot id\(s\) in spot coordinates"),
    "empty_section": (0, "counts", r"empty section B1"),
    "malformed_motivation": (1, "motivation", r"line 8: fewer than 3 fields"),
    "motivation_bad_cluster": (1, "motivation", r"cluster 'two' is not an integer"),
    "motivation_missing_header": (1, "motivation", r"missing header"),
    "unannotated_cluster": (1, "motivation", r"no annotation for cluster\(s\) \[1\] of patient B"),
}


@pytest.mark.parametrize("bad", sorted(HER2ST_CASES))
def test_her2st_bad_input_names_file_and_problem(tmp_path: Path, bad: str) -> None:
    sec_no, key, problem = HER2ST_CASES[bad]
    fx = make_her2st_fixture(tmp_path, sections=("B1", "B2"), bad=bad, bad_section=sec_no)
    files = fx.truth[fx.sections[sec_no]].files
    where = {
        "motivation": fx.root / "res" / "ST-cluster" / "motivation.csv",
        "image_dir": files["image"].parent,
    }.get(key) or files[key]
    with pytest.raises(DataError, match=problem) as err:
        read_her2st(fx.root, fx.sections)
    assert Path(err.value.where) == where


def test_motivation_with_unquoted_commas(tmp_path: Path) -> None:
    fx = make_her2st_fixture(tmp_path, sections=("B2",))
    mot = parse_motivation(fx.root / "res" / "ST-cluster" / "motivation.csv").set_index(["patient", "cluster"])
    assert mot.at[("B", 1), "annotated_as"] == "immune : APC, B-cell, T-cell"
    assert mot.at[("C", 1), "annotated_as"] == "cancer in situ : immune rich"
    assert mot.at[("B", 2), "tumor"] is pd.NA


def test_her2st_unselected_counts_and_selected_without_counts_are_reported(tmp_path: Path) -> None:
    fx = make_her2st_fixture(tmp_path, sections=("C1",), pathologist_sections=())
    a = read_her2st(fx.root, ["C1"])
    rep, t = a.uns["load_report"]["C1"], fx.truth["C1"]
    assert rep["dropped_no_counts"] == t.dropped_no_counts
    assert sorted(rep["dropped_no_coords"]) == t.dropped_no_coords
    assert list(a.obs["spot_id"]) == t.kept


# ---- checksums, downloads and splits (through the registry) ---------------------------------
def _write_manifest(data: Path, name: str, body: dict) -> Path:
    (data / "datasets").mkdir(parents=True, exist_ok=True)
    p = data / "datasets" / f"{name}.yaml"
    p.write_text(yaml.safe_dump(body, sort_keys=False))
    return p


def _her2st_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split_rows: list[str] | None = None,
                  policy: dict | None = None):
    mirror = tmp_path / "mirror"
    fx = make_her2st_fixture(mirror, sections=("B1", "B2", "C1"))
    data = tmp_path / "data"
    body = {
        "name": "tiny", "reader": "her2st", "origin": "https://example.invalid/her2st/", "mirror_subdir": "her2st",
        "sections": {s: {"patient": s[0], "subtype": "HER2+"} for s in fx.sections},
        "files": her2st_manifest_files(fx),
    }
    if split_rows is not None:
        (data / "splits").mkdir(parents=True, exist_ok=True)
        (data / "splits" / "tiny.tsv").write_text("\n".join(split_rows) + "\n")
        body["split"] = "splits/tiny.tsv"
    if policy is not None:
        body["split_policy"] = policy
    _write_manifest(data, "tiny", body)
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    return fx, data


def test_checksum_mismatch_in_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx, _ = _her2st_setup(tmp_path, monkeypatch)
    bad = fx.truth["B2"].files["selection"]
    bad.write_text(bad.read_text().replace("\t1\n", "\t0\n", 1))
    with pytest.raises(ChecksumError, match="checksum mismatch: expected sha256") as err:
        load_dataset("tiny").fetch(progress=False)
    assert Path(err.value.where) == bad


def test_missing_file_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    fx, _ = _her2st_setup(tmp_path, monkeypatch)
    fx.truth["C1"].files["counts"].unlink()

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DataError, match=r"download failed \(ConnectionError: no network\); set STLIB_DATA_MIRROR") as err:
        load_dataset("tiny").fetch(progress=False)
    assert err.value.where == "https://example.invalid/her2st/data/ST-cnts/C1.tsv.gz"


def test_corrupt_zip_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    _write_manifest(data, "he", {
        "name": "he", "reader": "he2020", "origin": "https://example.invalid/x.zip", "mirror_subdir": "he",
        "archive": {"fname": "x.zip", "sha256": None, "marker": "T/metadata.csv"},
        "sections_from": "metadata.csv", "sections": {}, "files": {},
    })
    (tmp_path / "mirror" / "he").mkdir(parents=True)
    (tmp_path / "mirror" / "he" / "x.zip").write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="cannot unpack the archive") as err:
        load_dataset("he").read(progress=False)
    assert Path(err.value.where) == tmp_path / "mirror" / "he" / "x.zip"


def test_metadata_disagreeing_with_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = make_he2020_fixture(tmp_path / "src", patients={"BC23287": "HER2_luminal"}, replicates=("C1",))
    zip_folder(fx.root, tmp_path / "mirror" / "he" / "x.zip")
    data = tmp_path / "data"
    _write_manifest(data, "he", {
        "name": "he", "reader": "he2020", "origin": "https://example.invalid/x.zip", "mirror_subdir": "he",
        "archive": {"fname": "x.zip", "sha256": None, "marker": f"{fx.root.name}/metadata.csv"},
        "sections_from": "metadata.csv", "sections": {}, "files": {},
        "patients": {"BC23287": {"subtype": "TNBC"}},
    })
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"subtype 'HER2_luminal' of patient BC23287 disagrees with the manifest \('TNBC'\)"):
        load_dataset("he").read(progress=False)


SPLIT_HEADER = "section\tpatient\tsplit"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([SPLIT_HEADER, "B1\tB\ttrain", "X9\tX\ttest"], r"split names unknown section\(s\) \['X9'\]"),
        ([SPLIT_HEADER, "B1\tB\ttrain", "B2\tB\ttest", "C1\tC\tvalid"], r"patient B appears in more than one part: \['test', 'train'\]; a test patient must be in test only "
         r"\(no split_policy allows it\): move its sections to one part \(see the book's Data page, `split_policy`\)"),
        ([SPLIT_HEADER, "B1\tB\ttrain", "B1\tB\ttest"], r"section\(s\) listed twice: \['B1'\]"),
        ([SPLIT_HEADER, "B1\tB\ttraining"], r"unknown split name\(s\) \['training'\]"),
        ([SPLIT_HEADER, "B1\tC\ttrain"], r"patient of section\(s\) \['B1'\] disagrees with the manifest"),
        (["section\tsplit", "B1\ttrain"], r"lacks column\(s\) \['patient'\]"),
        (["patient\tsplit", "B\ttrain", "Q\ttest", "C\tvalid"], r"unknown patient\(s\) \['Q'\]"),
        (["patient\tsplit", "B\ttrain"], r"patient\(s\) \['C'\] of tiny have no split"),
        (["patient\tsplit", "B\ttrain", "B\ttest", "C\tvalid"], r"patient\(s\) listed twice"),
        (["patient\tsubtype\tsplit", "B\tHER2+\ttrain", "C\tTNBC\ttest"], r"subtype of patient\(s\) \['C'\] disagrees"),
    ],
)
def test_bad_split_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[str], problem: str) -> None:
    _, data = _her2st_setup(tmp_path, monkeypatch, split_rows=rows)
    ds = load_dataset("tiny")
    with pytest.raises(SplitError, match=problem) as err:
        ds.split()
    assert str(err.value).startswith(str(data / "splits" / "tiny.tsv"))


def test_train_valid_overlap_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [SPLIT_HEADER, "B1\tB\ttrain", "B2\tB\tvalid", "C1\tC\ttest"]
    _her2st_setup(tmp_path, monkeypatch, split_rows=rows)
    with pytest.raises(SplitError, match=r"patient B appears in more than one part: \['train', 'valid'\]; to allow a "
                                         r"patient in train and valid, set `split_policy: "
                                         r"\{allow_train_valid_patient_overlap: true\}` in the manifest, or move its "
                                         r"sections to one part \(see the book's Data page, `split_policy`\)"):
        load_dataset("tiny").split()
    _her2st_setup(tmp_path / "p", monkeypatch, split_rows=rows, policy={"allow_train_valid_patient_overlap": True})
    split = load_dataset("tiny").split()
    assert split.set_index("section")["split"].to_dict() == {"B1": "train", "B2": "valid", "C1": "test"}
    # the policy never lets a patient reach test from another part
    bad = [SPLIT_HEADER, "B1\tB\ttrain", "B2\tB\ttest", "C1\tC\tvalid"]
    _her2st_setup(tmp_path / "q", monkeypatch, split_rows=bad, policy={"allow_train_valid_patient_overlap": True})
    with pytest.raises(SplitError, match=r"patient B appears in more than one part: \['test', 'train'\]; a test "
                                         r"patient must be in test only"):
        load_dataset("tiny").split()


def test_read_of_unknown_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _her2st_setup(tmp_path, monkeypatch)
    with pytest.raises(SplitError, match=r"unknown section\(s\) \['Z1'\]"):
        load_dataset("tiny").read(["B1", "Z1"], progress=False)


def test_malformed_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    p = _write_manifest(data, "broken", {"name": "broken", "reader": "her2st", "origin": "x", "files": {}})
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    with pytest.raises(DataError, match="manifest lacks 'sections'") as err:
        load_dataset("broken")
    assert Path(err.value.where) == p
    p.write_text("name: [unclosed\n")
    with pytest.raises(DataError, match="malformed manifest"):
        load_dataset("broken")
    _write_manifest(data, "nosec", {"name": "nosec", "reader": "her2st", "origin": "x", "sections": {}, "files": {}})
    with pytest.raises(DataError, match="no sections and no 'sections_from'"):
        load_dataset("nosec")
