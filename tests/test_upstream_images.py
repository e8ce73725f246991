"""All 36 HER2ST images in the ``her2st`` manifest, each with its git blob id: the ids of the files
present in the mirror verify, and a file whose id differs is refused (mirror, download)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import demo_mirror
from fixtures import her2st_manifest_files, make_her2st_fixture

from stlib.errors import ChecksumError
from stlib.io.fetch import git_blob_sha1, verify_file
from stlib.io.registry import load_dataset

PIN = "85df7411b987a7dec3feff9718b869a7a82091ec"


@pytest.fixture
def project_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STLIB_MANIFESTS", raising=False)


def _upstream_list(mirror: Path) -> dict[str, str]:
    """``path -> git blob id`` from ``her2st-upstream-images.tsv`` beside the mirror."""
    tsv = mirror / "her2st-upstream-images.tsv"
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines() if ln and not ln.startswith(("#", "path\t"))]
    return {r[0]: r[1] for r in rows}


def test_git_blob_sha1_is_gits_object_id(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello\x00world\n" * 1000)
    assert git_blob_sha1(f) == subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True,
                                              check=True).stdout.strip()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert git_blob_sha1(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


def test_her2st_manifest_lists_all_36_images_with_their_ids(project_manifests) -> None:
    full = load_dataset("her2st")
    imgs = [f for f in full.files if f.startswith("data/ST-imgs/")]
    assert len(imgs) == 36
    for sec, meta in full.sections.items():  # one image per section, in its folder
        own = [f for f in imgs if f.startswith(f"data/ST-imgs/{meta['patient']}/{sec}/")]
        assert len(own) == 1 and own[0].endswith(".jpg"), sec
        assert len(full.git_blobs[own[0]]) == 40
    assert "85df7411b987a7dec3feff9718b869a7a82091ec" in full.origin
    # the six demo images keep their sha256 besides their id
    demo = load_dataset("her2st-demo")
    for f, h in demo.files.items():
        if f.startswith("data/ST-imgs/"):
            assert full.files[f] == h and full.git_blobs[f]
    # no sentence of the manifest says the images are missing from the repository
    text = Path(full.manifest_path).read_text()
    assert "only six" not in text and "other 30" not in text


def test_manifest_ids_match_the_upstream_tree_list(project_manifests) -> None:
    mirror = demo_mirror()
    if mirror is None or not (mirror / "her2st-upstream-images.tsv").is_file():
        pytest.skip("no ../shared/data/her2st-upstream-images.tsv")
    listed = _upstream_list(mirror)
    full = load_dataset("her2st")
    for f, blob in full.git_blobs.items():
        assert listed[f] == blob, f
    assert {f for f in listed if f.startswith("data/ST-imgs/")} == set(full.git_blobs)
    abc = load_dataset("her2st-abc") if "her2st-abc" in _registered() else None
    if abc is not None:
        for f, blob in abc.git_blobs.items():
            assert listed[f] == blob, f


def _registered() -> list[str]:
    from stlib.io.registry import available_datasets

    return available_datasets()


@pytest.mark.realdata
def test_ids_of_the_mirrored_images_verify(project_manifests) -> None:
    mirror = demo_mirror()
    if mirror is None:
        pytest.skip("no HER2ST mirror")
    checked = 0
    for name in [n for n in ("her2st", "her2st-abc") if n in _registered()]:
        ds = load_dataset(name)
        for f, blob in ds.git_blobs.items():
            p = mirror / ds.mirror_subdir / f
            if p.is_file():
                assert git_blob_sha1(p) == blob, f
                verify_file(p, None, blob)
                checked += 1
    assert checked >= 6  # B4, C2-C6 (and A1, A2's app views)


@pytest.mark.realdata
def test_a_copy_with_a_flipped_byte_is_refused(tmp_path: Path, project_manifests) -> None:
    mirror = demo_mirror()
    if mirror is None:
        pytest.skip("no HER2ST mirror")
    rel = "data/ST-imgs/C/C2/5714_HE_BT_C2.jpg"
    blob = load_dataset("her2st").git_blobs[rel]
    bad = tmp_path / Path(rel).name
    shutil.copyfile(mirror / "her2st" / rel, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    got = git_blob_sha1(bad)
    with pytest.raises(ChecksumError) as err:
        verify_file(bad, None, blob)
    msg = str(err.value)
    assert str(bad) in msg and blob in msg and got in msg


# ---- the downloader: a file known by its git blob id only --------------------------------
def _blob_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny HER2ST-layout data set whose images are listed by git blob id only (no sha256)."""
    mirror = tmp_path / "mirror"
    fx = make_her2st_fixture(mirror, sections=("B1", "C1"), pathologist_sections=())
    files: dict = dict(her2st_manifest_files(fx))
    for f in list(files):
        if f.startswith("data/ST-imgs/"):
            files[f] = {"git_blob": git_blob_sha1(fx.root / f)}
    data = tmp_path / "data"
    (data / "datasets").mkdir(parents=True)
    body = {"name": "tinyblob", "reader": "her2st", "origin": "https://example.invalid/her2st/",
            "mirror_subdir": "her2st", "sections": {s: {"patient": s[0], "subtype": "HER2+"} for s in fx.sections},
            "files": files}
    (data / "datasets" / "tinyblob.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    return fx


def _flip(p: Path) -> None:
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    p.chmod(0o644)
    p.write_bytes(bytes(raw))


def test_mirrored_file_is_verified_by_its_blob_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fx = _blob_env(tmp_path, monkeypatch)
    ds = load_dataset("tinyblob")
    img = next(f for f in ds.git_blobs if "/B1/" in f)
    assert ds.files[img] is None and ds.fetch(progress=False) == fx.root  # intact: used in place
    _flip(fx.root / img)
    with pytest.raises(ChecksumError, match="git blob id") as err:
        load_dataset("tinyblob").fetch(progress=False)
    assert img in err.value.where and ds.git_blobs[img] in str(err.value)


def test_download_with_a_wrong_blob_id_is_refused_and_not_kept(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    fx = _blob_env(tmp_path, monkeypatch)
    remote = tmp_path / "remote"
    shutil.copytree(fx.root, remote)
    ds = load_dataset("tinyblob")
    img = next(f for f in ds.git_blobs if "/C1/" in f)
    (fx.root / img).unlink()  # not in the mirror: downloaded
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, processor=None, progressbar=False, **kw):
        calls.append((url, known_hash))
        dest = Path(path) / fname
        shutil.copyfile(remote / url.removeprefix("https://example.invalid/her2st/"), dest)
        return str(dest)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    root = ds.fetch(progress=False, files=ds.files_for(["C1"]))
    assert calls == [("https://example.invalid/her2st/" + img, None)]  # no sha256 known: the id decides
    assert git_blob_sha1(root / img) == ds.git_blobs[img]
    # a corrupted origin: the download is refused, named with both ids, and removed from the cache
    (root / img).unlink()
    _flip(remote / img)
    with pytest.raises(ChecksumError) as err:
        ds.fetch(progress=False, files=ds.files_for(["C1"]))
    assert img in err.value.where and ds.git_blobs[img] in str(err.value)
    assert git_blob_sha1(remote / img) in str(err.value)
    assert not (root / img).exists()


def test_malformed_file_entry_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stlib.errors import DataError

    _blob_env(tmp_path, monkeypatch)
    p = tmp_path / "data" / "datasets" / "tinyblob.yaml"
    m = yaml.safe_load(p.read_text())
    f = next(k for k in m["files"] if k.startswith("data/ST-imgs/"))
    m["files"][f] = {"git_blob": "xyz"}
    p.write_text(yaml.safe_dump(m, sort_keys=False))
    with pytest.raises(DataError, match="git_blob 'xyz' is not 40 hex digits"):
        load_dataset("tinyblob")
    m["files"][f] = {"md5": "0" * 32}
    p.write_text(yaml.safe_dump(m, sort_keys=False))
    with pytest.raises(DataError, match="unknown key"):
        load_dataset("tinyblob")
