"""The data-set registry: the project's manifests, mirror precedence, downloads (pooch mocked),
zip archives with sections discovered from metadata.csv, and patient-level splits."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures import her2st_manifest_files, make_he2020_fixture, make_her2st_fixture, sha256_of, zip_folder

from stlib.io.he2020 import HE2020_PATIENTS, HER2ST_OVERLAP
from stlib.io.registry import available_datasets, load_dataset

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STLIB_MANIFESTS", raising=False)


# ---- the project's manifests ---------------------------------------------------------------
def test_available_datasets_lists_the_three_manifests(project_manifests) -> None:
    assert {"her2st-demo", "her2st", "he2020"} <= set(available_datasets())


def test_her2st_manifest(project_manifests) -> None:
    full, demo = load_dataset("her2st"), load_dataset("her2st-demo")
    assert full.reader == "her2st" and full.origin == demo.origin
    assert "85df7411b987a7dec3feff9718b869a7a82091ec" in full.origin
    want = [f"{p}{i}" for p, n in zip("ABCDEFGH", [6, 6, 6, 6, 3, 3, 3, 3]) for i in range(1, n + 1)]
    assert list(full.sections) == want
    assert all(full.sections[s]["patient"] == s[0] for s in want)
    for f, h in demo.files.items():  # the demo files keep their checksums
        assert full.files[f] == h and h
    # sha256 known for the demo files and for patient A's A1 / A2 files in ../shared (not the A images)
    known = {f for f, h in full.files.items() if h is not None}
    assert known - set(demo.files) == {f"data/ST-cnts/{s}.tsv.gz" for s in ("A1", "A2")} | {
        f"data/ST-spotfiles/{s}_selection.tsv" for s in ("A1", "A2")} | {
        f"res/ST-cluster/lbl/{s}-cluster-annotation.tsv.gz" for s in ("A1", "A2")} | {
        "data/ST-pat/lbl/A1_labeled_coordinates.tsv"}
    pat = [f for f in full.files if f.startswith("data/ST-pat/lbl/")]
    assert sorted(pat) == [f"data/ST-pat/lbl/{s}_labeled_coordinates.tsv" for s in
                           ("A1", "B1", "C1", "D1", "E1", "F1", "G2", "H1")]
    for s in want:
        assert f"data/ST-cnts/{s}.tsv.gz" in full.files
        assert f"data/ST-spotfiles/{s}_selection.tsv" in full.files
        assert f"res/ST-cluster/lbl/{s}-cluster-annotation.tsv.gz" in full.files
    assert "images_note" in full.extra
    split = full.split()
    assert list(split["section"]) == want
    parts = split.drop_duplicates("patient").set_index("patient")["split"].to_dict()
    # E, F, G, H are He et al. patients: on the side of the authors' he2020 split (F valid, the others train)
    assert parts == {"A": "train", "B": "test", "C": "train", "D": "valid", "E": "train", "F": "valid",
                     "G": "train", "H": "train"}
    assert full.files_for(["B4"]) == [
        "data/ST-cnts/B4.tsv.gz", "data/ST-spotfiles/B4_selection.tsv", "data/ST-imgs/B/B4/BT10737_D2_HE.jpg",
        "res/ST-cluster/lbl/B4-cluster-annotation.tsv.gz", "res/ST-cluster/motivation.csv",
    ]
    # C3's image is named ..._BT_D1.jpg: it belongs to C3 only, not to D1 (whose own is 10426_HE_BT_C1.jpg)
    assert [f for f in full.files_for(["D1"]) if "ST-imgs" in f] == ["data/ST-imgs/D/D1/10426_HE_BT_C1.jpg"]
    assert [f for f in full.files_for(["C3"]) if "ST-imgs" in f] == ["data/ST-imgs/C/C3/5714_HE_BT_D1.jpg"]


def test_he2020_manifest(project_manifests) -> None:
    ds = load_dataset("he2020")
    assert ds.archive is not None and ds.archive["sha256"] is None
    assert ds.archive["url"] == ds.origin == (
        "https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/29ntw7sh4r-5.zip")
    assert ds.archive["marker"] == "Human breast cancer in situ capturing transcriptomics/metadata.csv"
    assert ds.sections == {} and ds.sections_from == "metadata.csv" and ds.mirror_subdir == "he2020"
    assert {p: v["subtype"] for p, v in ds.patients.items()} == HE2020_PATIENTS
    assert {p: v["her2st_patient"] for p, v in ds.patients.items() if "her2st_patient" in v} == HER2ST_OVERLAP
    split = ds.split()  # the authors' split, per section (checked against the patients until sections are known)
    assert list(split.columns) == ["section", "patient", "split", "n_spots"]
    assert split["split"].value_counts().to_dict() == {"train": 38, "valid": 15, "test": 15}
    assert split.drop_duplicates("patient")["split"].value_counts().to_dict() == {"train": 13, "valid": 5, "test": 5}
    assert "authors' split" in ds.split_policy["reason"]


# ---- split files: comments, extra columns, sections discovered at read time ------------------
def test_split_file_comments_and_extra_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = ("# provenance: where this split comes from\n#\tanother comment line\n"
            "section\tpatient\tsplit\tn_spots\n# a comment between rows\n"
            "B1\tB\ttrain\t10\nB2\tB\ttrain\t#12\nC1\tC\ttest\t7\n")
    _her2st_env(tmp_path, monkeypatch, split=text)
    split = load_dataset("tiny").split()
    assert list(split.columns) == ["section", "patient", "split", "n_spots"]
    assert split.to_dict("list") == {"section": ["B1", "B2", "C1"], "patient": ["B", "B", "C"],
                                     "split": ["train", "train", "test"], "n_spots": ["10", "#12", "7"]}
    a = load_dataset("tiny").read(progress=False)  # extra columns do not disturb reading
    assert a.obs.groupby("section", observed=True)["split"].agg(lambda v: set(v)).to_dict() == {
        "B1": {"train"}, "B2": {"train"}, "C1": {"test"}}
    # a patient-level file may carry comments too
    _her2st_env(tmp_path / "p", monkeypatch, split="# by patient\npatient\tsplit\nB\tvalid\nC\ttest\n")
    assert load_dataset("tiny").split().set_index("section")["split"].to_dict() == {
        "B1": "valid", "B2": "valid", "C1": "test"}
    # comments only: malformed
    from stlib.errors import SplitError

    _her2st_env(tmp_path / "q", monkeypatch, split="# nothing else\n")
    with pytest.raises(SplitError, match="malformed split file"):
        load_dataset("tiny").split()


def _he_section_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: str):
    _he_env(tmp_path, monkeypatch, sha256=None, mirror="tree")
    (tmp_path / "data" / "splits" / "he.tsv").write_text("# sections discovered at read time\n"
                                                         "section\tpatient\tsplit\n" + rows)
    return load_dataset("he")


def test_section_level_split_before_sections_are_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stlib.errors import SplitError

    rows = ("BC23287_C1\tBC23287\ttrain\nBC23287_D1\tBC23287\ttrain\nBC23567_C1\tBC23567\tvalid\n"
            "BC23567_D1\tBC23567\tvalid\nBC23209_C1\tBC23209\ttest\nBC23209_D1\tBC23209\ttest\n")
    ds = _he_section_split(tmp_path, monkeypatch, rows)
    assert ds.sections == {}
    assert len(ds.split()) == 6  # checked against the manifest's patients
    a = ds.read(progress=False)  # then against the discovered sections
    want = {"BC23287": "train", "BC23567": "valid", "BC23209": "test"}
    assert (a.obs["split"].astype(str) == a.obs["patient"].astype(str).map(want)).all()
    ds = _he_section_split(tmp_path / "a", monkeypatch, rows + "BC99999_C1\tBC99999\ttest\n")
    with pytest.raises(SplitError, match=r"unknown patient\(s\) \['BC99999'\]"):
        ds.split()
    ds = _he_section_split(tmp_path / "b", monkeypatch, rows.replace("BC23209_C1\tBC23209\ttest\n", "")
                           .replace("BC23209_D1\tBC23209\ttest\n", ""))
    with pytest.raises(SplitError, match=r"patient\(s\) \['BC23209'\] of he have no split"):
        ds.split()
    ds = _he_section_split(tmp_path / "c", monkeypatch, rows.replace("BC23209_D1\tBC23209\ttest", "BC23209_D1\tBC23209\ttrain"))
    with pytest.raises(SplitError, match=r"patient BC23209 appears in more than one part"):
        ds.split()
    ds = _he_section_split(tmp_path / "d", monkeypatch, rows.replace("BC23209_D1", "BC23209_Z9"))
    ds.split()  # the section is checked only once sections are known
    with pytest.raises(SplitError, match=r"unknown section\(s\) \['BC23209_Z9'\]"):
        ds.read(progress=False)


# ---- mirror and download -------------------------------------------------------------------
def _her2st_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, split: str | None = None):
    mirror = tmp_path / "mirror"
    fx = make_her2st_fixture(mirror, sections=("B1", "B2", "C1"))
    data = tmp_path / "data"
    (data / "datasets").mkdir(parents=True)
    body = {
        "name": "tiny", "reader": "her2st", "origin": "https://example.invalid/her2st/", "mirror_subdir": "her2st",
        "sections": {s: {"patient": s[0], "subtype": "HER2+"} for s in fx.sections},
        "files": her2st_manifest_files(fx),
    }
    if split is not None:
        (data / "splits").mkdir()
        (data / "splits" / "tiny.tsv").write_text(split)
        body["split"] = "splits/tiny.tsv"
    (data / "datasets" / "tiny.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    return fx


def test_manifest_parsing_and_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = _her2st_env(tmp_path, monkeypatch)
    assert available_datasets() == ["tiny"]
    ds = load_dataset("tiny")
    assert ds.reader == "her2st" and list(ds.sections) == ["B1", "B2", "C1"]
    assert ds.files["res/ST-cluster/motivation.csv"] == sha256_of(fx.root / "res/ST-cluster/motivation.csv")
    assert ds.mirror_root() == tmp_path / "mirror" / "her2st"
    assert ds.cache_root() == tmp_path / "cache" / "tiny"
    assert load_dataset(tmp_path / "data" / "datasets" / "tiny.yaml").name == "tiny"


def test_mirror_is_used_in_place_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    fx = _her2st_env(tmp_path, monkeypatch)
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("must not download"))
    root = load_dataset("tiny").fetch(progress=False)
    assert root == fx.root
    assert not (tmp_path / "cache").exists()


def test_partial_mirror_downloads_the_rest_with_its_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    fx = _her2st_env(tmp_path, monkeypatch)
    remote = tmp_path / "remote"
    shutil.copytree(fx.root, remote)
    missing = "data/ST-cnts/C1.tsv.gz"
    (fx.root / missing).unlink()
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, processor=None, progressbar=False, **kw):
        calls.append({"url": url, "known_hash": known_hash, "fname": fname, "path": Path(path)})
        rel = url.removeprefix("https://example.invalid/her2st/")
        dest = Path(path) / fname
        shutil.copyfile(remote / rel, dest)
        return str(dest)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    ds = load_dataset("tiny")
    root = ds.fetch(progress=False)
    assert root == tmp_path / "cache" / "tiny"
    assert calls == [{"url": "https://example.invalid/her2st/" + missing,
                      "known_hash": "sha256:" + ds.files[missing], "fname": "C1.tsv.gz",
                      "path": root / "data" / "ST-cnts"}]
    assert (root / "data/ST-cnts/B1.tsv.gz").resolve() == (fx.root / "data/ST-cnts/B1.tsv.gz").resolve()
    # only the requested sections' files are fetched: B1 is complete in the mirror, read in place
    calls.clear()
    a = ds.read(["B1"], progress=False)
    assert a.n_obs == len(fx.truth["B1"].kept) and calls == []
    assert Path(a.uns["spatial"]["B1"]["metadata"]["image_path"]).is_relative_to(fx.root)


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    from stlib.errors import ChecksumError

    fx = _her2st_env(tmp_path, monkeypatch)
    (fx.root / "res/ST-cluster/motivation.csv").unlink()

    def fake_retrieve(url, known_hash=None, **kw):
        raise ValueError(f"SHA256 hash of downloaded file (abc) does not match the known hash: expected {known_hash}")

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(ChecksumError, match="checksum mismatch after download") as err:
        load_dataset("tiny").fetch(progress=False)
    assert err.value.where.endswith("res/ST-cluster/motivation.csv")


def test_read_her2st_with_split_and_both_annotation_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = _her2st_env(tmp_path, monkeypatch, split="patient\tsplit\nB\ttrain\nC\ttest\n")
    a = load_dataset("tiny").read(progress=False)
    assert a.obs.groupby("section", observed=True)["split"].agg(lambda s: set(s)).to_dict() == {
        "B1": {"train"}, "B2": {"train"}, "C1": {"test"}}
    assert a.uns["dataset"]["name"] == "tiny"
    for sec, t in fx.truth.items():
        o = a.obs[a.obs["section"] == sec].set_index("spot_id")
        assert list(o.index) == t.kept
        got = [None if v is pd.NA else bool(v) for v in o["tumor"]]
        assert got == [t.tumor[s] for s in t.kept]
        assert [None if pd.isna(v) else v for v in o["tumor_label"]] == [t.tumor_label[s] for s in t.kept]
        if t.extra["source"] == "pathologist":
            assert set(o["tumor_source"]) == {"pathologist drawing (data/ST-pat/lbl)"}
            assert {"invasive cancer", "cancer in situ", "undetermined"} <= set(o["tumor_label"].dropna())
        else:
            assert set(o["tumor_source"]) == {"authors' expression clusters (res/ST-cluster, motivation.csv)"}
    assert a.obs["tumor"].isna().any() and a.obs["tumor"].fillna(False).any()


# ---- zip archives (He et al. 2020) ---------------------------------------------------------
def _he_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, sha256: str | None, mirror: str):
    fx = make_he2020_fixture(tmp_path / "src")
    zpath = zip_folder(fx.root, tmp_path / "zips" / "he-1.zip")
    data = tmp_path / "data"
    (data / "datasets").mkdir(parents=True)
    (data / "splits").mkdir()
    (data / "splits" / "he.tsv").write_text(
        "patient\tsubtype\tsplit\nBC23287\tHER2_luminal\ttrain\nBC23567\tHER2_non_luminal\tvalid\nBC23209\tTNBC\ttest\n")
    body = {
        "name": "he", "reader": "he2020", "origin": "https://example.invalid/he-1.zip", "mirror_subdir": "he",
        "archive": {"url": "https://example.invalid/he-1.zip", "fname": "he-1.zip", "sha256": sha256,
                    "marker": f"{fx.root.name}/metadata.csv"},
        "split": "splits/he.tsv", "sections_from": "metadata.csv", "sections": {}, "files": {},
        "patients": {p: {"subtype": s} for p, s in
                     {"BC23287": "HER2_luminal", "BC23567": "HER2_non_luminal", "BC23209": "TNBC"}.items()},
    }
    (data / "datasets" / "he.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    mroot = tmp_path / "mirror"
    if mirror == "zip":
        (mroot / "he").mkdir(parents=True)
        shutil.copyfile(zpath, mroot / "he" / "he-1.zip")
    elif mirror == "tree":
        shutil.copytree(fx.parent, mroot / "he")
    if mirror == "none":
        monkeypatch.delenv("STLIB_DATA_MIRROR", raising=False)
    else:
        monkeypatch.setenv("STLIB_DATA_MIRROR", str(mroot))
    return fx, zpath


def _check_he(a, fx) -> None:
    assert list(a.obs["section"].cat.categories) == fx.sections
    assert a.n_obs == sum(len(t.kept) for t in fx.truth.values())
    want = {"BC23287": "train", "BC23567": "valid", "BC23209": "test"}
    assert (a.obs["split"].astype(str) == a.obs["patient"].astype(str).map(want)).all()


def test_archive_in_mirror_is_verified_and_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    fx, zpath = _he_env(tmp_path, monkeypatch, sha256=None, mirror="zip")
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("must not download"))
    ds = load_dataset("he")
    a = ds.read(progress=False)
    _check_he(a, fx)
    assert list(ds.sections) == fx.sections  # discovered from metadata.csv
    assert ds.sections["BC23209_D1"] == {"patient": "BC23209", "subtype": "TNBC", "replicate": "D1"}
    assert list(ds.split().columns) == ["section", "patient", "split", "subtype"]
    assert (tmp_path / "cache" / "he" / "he-1.zip.unzip" / fx.root.name / "metadata.csv").is_file()
    # a known checksum is enforced on the mirror's zip
    from stlib.errors import ChecksumError

    _he_env(tmp_path / "b", monkeypatch, sha256="0" * 64, mirror="zip")
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        load_dataset("he").read(progress=False)


def test_extracted_tree_in_mirror_is_used_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx, _ = _he_env(tmp_path, monkeypatch, sha256=None, mirror="tree")
    ds = load_dataset("he")
    assert ds.fetch(progress=False) == tmp_path / "mirror" / "he"
    a = ds.read(["BC23567_C1"], progress=False)
    assert list(a.obs["section"].unique()) == ["BC23567_C1"] and set(a.obs["split"]) == {"valid"}


@pytest.mark.parametrize("known", [False, True])
def test_archive_download_with_pooch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, known: bool) -> None:
    import pooch

    fx, zpath = _he_env(tmp_path, monkeypatch, sha256=None, mirror="none")
    sha = sha256_of(zpath)
    if known:
        mpath = tmp_path / "data" / "datasets" / "he.yaml"
        body = yaml.safe_load(mpath.read_text())
        body["archive"]["sha256"] = sha
        mpath.write_text(yaml.safe_dump(body, sort_keys=False))
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, processor=None, progressbar=False, **kw):
        calls.append((url, known_hash, fname))
        dest = Path(path) / fname
        shutil.copyfile(zpath, dest)
        assert isinstance(processor, pooch.Unzip)
        return processor(str(dest), "download", None)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with caplog.at_level(logging.WARNING, logger="stlib.io.registry"):
        a = load_dataset("he").read(progress=False)
    _check_he(a, fx)
    assert calls == [("https://example.invalid/he-1.zip", f"sha256:{sha}" if known else None, "he-1.zip")]
    assert (sha in caplog.text) is (not known)  # an unknown checksum is reported for recording
    # second read: the extracted cache is reused
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("must not download again"))
    assert load_dataset("he").read(["BC23287_C1"], progress=False).n_obs == len(fx.truth["BC23287_C1"].kept)


@pytest.mark.realdata
def test_full_her2st_manifest_reads_a_demo_section_from_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    mirror = Path(os.environ.get("STLIB_DATA_MIRROR") or PROJECT.parent / "shared" / "data")
    if not (mirror / "her2st" / "data" / "ST-cnts" / "B4.tsv.gz").is_file():
        pytest.skip("no HER2ST mirror")
    monkeypatch.delenv("STLIB_MANIFESTS", raising=False)
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(mirror))
    a = load_dataset("her2st").read(["B4"], progress=False)  # only B4's files: all in the mirror, verified
    assert a.n_obs == 283 and len(a.uns["load_report"]["B4"]["dropped_no_counts"]) == 1
    assert set(a.obs["split"]) == {"test"}
    assert a.obs["tumor"].value_counts().to_dict() == {False: 97, True: 17}
