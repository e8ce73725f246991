"""The HEST-1k reader (``reader: hest``) and the registered ``hest`` data set.

The fixture writes the real HER2ST section C2 (``../shared/data/her2st``) in HEST-1k's layout, as
HEST's ``STReader`` / ``align_her2`` and ``tiff_save`` would: ``st/SPA141.h5ad`` (counts as floats,
spot ids zero-padded ``"025x013"``, x in ``array_row``, centres in ``obsm["spatial"]``),
``wsis/SPA141.tif`` (the decoded JPEG as a tiled, LZW, pyramidal TIFF: a pyramid of pages, its
resolution in px/cm) and ``metadata/SPA141.json`` (the values of the manifest's HEST row). It is
read through the registered manifest (``hest:her2st`` from a mirror) and compared with the her2st
reader's C2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from conftest import demo_mirror
from stlib.errors import DataError
from stlib.io import check_design, load_dataset
from stlib.io import hest as hest_io
from stlib.io.her2st import read_her2st_section
from stlib.io.images import read_image

SECTION = "C2"


def _her2st_root() -> Path:
    mirror = demo_mirror()
    if mirror is None or not (mirror / "her2st" / "data" / "ST-cnts" / f"{SECTION}.tsv.gz").is_file():
        pytest.skip("real data absent: set STLIB_DATA_MIRROR to a folder holding her2st/ (e.g. ../shared/data)")
    return mirror / "her2st"


def write_pyramid(path: Path, img: np.ndarray, um_per_px: float | None, *, levels: int = 3,
                  first: str = "full") -> None:
    """``img`` as a tiled LZW pyramidal TIFF, one page per level (pyvips' ``pyramid=True`` layout);
    ``first="reduced"`` writes a reduced level first (a file the reader must refuse)."""
    import tifffile

    pages = [img[:: 2 ** k, :: 2 ** k] for k in range(levels)]
    if first == "reduced":
        pages = pages[1:] + pages[:1]
    path.parent.mkdir(parents=True, exist_ok=True)
    res = {} if um_per_px is None else {"resolution": (1e4 / um_per_px, 1e4 / um_per_px),
                                        "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tw:
        for k, page in enumerate(pages):
            tw.write(np.ascontiguousarray(page), tile=(256, 256), compression="lzw", photometric="rgb",
                     subfiletype=1 if k else 0, **(res if k == 0 else {}))


def write_hest_sample(root: Path, her2st: Path, section: str, entry: dict, *, tif: Path | None = None) -> dict:
    """Section ``section`` of the HER2ST layout at ``her2st`` as HEST sample ``entry["hest_id"]`` under
    ``root``; ``tif``: an already written WSI to link instead of writing one. Returns what was written."""
    hid = entry["hest_id"]
    counts = pd.read_csv(her2st / "data" / "ST-cnts" / f"{section}.tsv.gz", sep="\t", index_col=0)
    sel = pd.read_csv(her2st / "data" / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t")
    sel.index = sel["x"].astype(str) + "x" + sel["y"].astype(str)
    common = [s for s in sel.index if s in counts.index]  # align_her2: inner join, selection order
    counts, sel = counts.loc[common], sel.loc[common]
    a = ad.AnnData(X=sp.csr_matrix(counts.to_numpy(dtype=np.float32)),
                   obs=pd.DataFrame(index=[f"{int(x):03d}x{int(y):03d}" for x, y in zip(sel["x"], sel["y"])]),
                   var=pd.DataFrame(index=counts.columns.astype(str)))
    a.obs["array_row"], a.obs["array_col"] = sel["x"].to_numpy(int), sel["y"].to_numpy(int)
    a.obs["pxl_col_in_fullres"], a.obs["pxl_row_in_fullres"] = sel["pixel_x"].to_numpy(), sel["pixel_y"].to_numpy()
    a.obs["in_tissue"] = True
    a.obsm["spatial"] = sel[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    px = float(entry["hest_pixel_size_um_estimated"])
    a.uns["spatial"] = {"ST": {"images": {"downscaled_fullres": np.full((4, 4, 3), 255, np.uint8)},
                               "scalefactors": {"spot_diameter_fullres": 100 / px,
                                                "tissue_downscaled_fullres_scalef": 0.1}}}
    (root / "st").mkdir(parents=True, exist_ok=True)
    a.write_h5ad(root / "st" / f"{hid}.h5ad")
    jpg = next((her2st / "data" / "ST-imgs" / section[0] / section).glob("*.jpg"))
    dest = root / "wsis" / f"{hid}.tif"
    if tif is None:
        write_pyramid(dest, read_image(jpg), px)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(tif)
    meta = {"id": hid, "pixel_size_um_estimated": px, "pixel_size_um_embedded": None, "spot_diameter": 100.0,
            "inter_spot_dist": 200.0, "st_technology": "Spatial Transcriptomics", "subseries": entry["hest_subseries"],
            "patient": entry["hest_patient"], "spots_under_tissue": len(common),
            "dataset_title": "Spatial deconvolution of HER2-positive breast cancer delineates tumor-associated "
                             "cell type interactions"}
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "metadata" / f"{hid}.json").write_text(json.dumps(meta))
    return {"jpg": jpg, "tif": dest, "meta": meta, "n_spots": len(common)}


@pytest.fixture(scope="module")
def c2(tmp_path_factory):
    """C2 written as HEST sample SPA141 under a mirror ``<tmp>/hest``; the manifest entry and paths."""
    her2st = _her2st_root()
    entry = load_dataset("hest").sections[SECTION]
    mirror = tmp_path_factory.mktemp("hest_mirror")
    written = write_hest_sample(mirror / "hest", her2st, SECTION, entry)
    return {"mirror": mirror, "root": mirror / "hest", "her2st": her2st, "entry": entry, **written}


@pytest.fixture()
def sample(c2, tmp_path):
    """A copy of the C2 sample to damage (the WSI linked, not copied); ``(root, entry, paths)``."""
    root = tmp_path / "hest"
    hid = c2["entry"]["hest_id"]
    for sub, ext in (("st", "h5ad"), ("metadata", "json")):
        (root / sub).mkdir(parents=True)
        shutil.copy(c2["root"] / sub / f"{hid}.{ext}", root / sub / f"{hid}.{ext}")
    (root / "wsis").mkdir()
    (root / "wsis" / f"{hid}.tif").symlink_to(c2["tif"])
    paths = dict(zip(("h5ad", "tif", "json"), (root / f for f in hest_io.sample_paths(hid))))
    return root, dict(c2["entry"]), paths


def _read(root: Path, entry: dict):
    return hest_io.read_hest_sample(root, SECTION, entry)


# ---- the real section, through the manifest -------------------------------------------------------
def test_c2_through_the_manifest_equals_the_her2st_reader(c2, monkeypatch) -> None:
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(c2["mirror"]))
    ds = load_dataset("hest:her2st")
    a = ds.read([SECTION], progress=False)
    b = read_her2st_section(c2["her2st"], SECTION)
    assert a.n_obs == b.n_obs == c2["entry"]["hest_spots_under_tissue"]
    assert list(a.obs_names) == list(b.obs_names) and list(a.var_names) == list(b.var_names)
    assert (a.X != b.X).nnz == 0 and a.X.dtype == np.int32
    np.testing.assert_array_equal(a.obsm["spatial"], b.obsm["spatial"])
    for col in ("section", "spot_id", "patient", "subtype", "array_x", "array_y"):
        assert list(a.obs[col].astype(str)) == list(b.obs[col].astype(str)), col
    # the same columns, less the authors' clusters (HEST does not carry them: no tumour annotation)
    assert set(a.obs.columns) == set(b.obs.columns) - {"author_cluster"} | {"split"}
    assert a.obs["tumor"].isna().all() and (a.obs["tumor_source"] == "none").all()
    want_split = ds.split().set_index("section").at[SECTION, "split"]
    her2st_split = load_dataset("her2st").split().set_index("section").at[SECTION, "split"]
    assert want_split == her2st_split and (a.obs["split"] == want_split).all()
    ma, mb = a.uns["spatial"][SECTION]["metadata"], b.uns["spatial"][SECTION]["metadata"]
    assert ma["um_per_px"] == c2["meta"]["pixel_size_um_estimated"]
    assert "pixel_size_um_estimated" in ma["um_per_px_source"]
    assert ma["um_per_px_measured"] == round(mb["um_per_px"], 4)  # the same spots, the same pitch
    assert ma["image_shape"] == mb["image_shape"]
    for k in ("spot_pitch_um", "spot_diameter_um"):
        assert ma[k] == mb[k]
    assert ma["hest_id"] == c2["entry"]["hest_id"] and ma["image_path"] == str(c2["tif"])
    assert ma["image_levels"][0] == ma["image_shape"] and len(ma["image_levels"]) == 3
    assert ma["image_um_per_px_declared"] == pytest.approx(c2["meta"]["pixel_size_um_estimated"], rel=1e-5)
    rep = a.uns["load_report"][SECTION]
    assert rep["n_kept"] == rep["n_spots_listed"] == a.n_obs and rep["dropped_not_in_tissue"] == []


def test_windows_from_the_pyramidal_tiff_equal_those_of_the_jpeg(c2) -> None:
    """The feature code's path (PIL's first page, :func:`read_image`) decodes level 0 losslessly."""
    from stlib.im import extract_windows

    xy = pd.read_csv(c2["her2st"] / "data" / "ST-spotfiles" / f"{SECTION}_selection.tsv", sep="\t")[
        ["pixel_x", "pixel_y"]].to_numpy()[:7]
    wa, _ = extract_windows(read_image(c2["tif"]), xy, 160)
    wb, _ = extract_windows(read_image(c2["jpg"]), xy, 160)
    assert wa.std() > 0
    np.testing.assert_array_equal(wa, wb)


# ---- what is dropped, and bad input ---------------------------------------------------------------
def test_spots_not_in_tissue_are_dropped_and_listed(sample) -> None:
    root, entry, p = sample
    a = ad.read_h5ad(p["h5ad"])
    a.obs["in_tissue"] = [i >= 3 for i in range(a.n_obs)]
    a.write_h5ad(p["h5ad"])
    out = _read(root, entry)
    rep = out.uns["load_report"][SECTION]
    gone = [s.split("x")[0].lstrip("0") + "x" + s.split("x")[1].lstrip("0") for s in a.obs_names[:3]]
    assert rep["dropped_not_in_tissue"] == gone and out.n_obs == a.n_obs - 3 == rep["n_kept"]


def test_missing_json_field_names_the_file(sample) -> None:
    root, entry, p = sample
    js = json.loads(p["json"].read_text())
    del js["spot_diameter"]
    p["json"].write_text(json.dumps(js))
    with pytest.raises(DataError, match="spot_diameter") as e:
        _read(root, entry)
    assert str(p["json"]) in str(e.value)


def test_pixel_size_disagreeing_with_the_spot_pitch_names_the_file(sample) -> None:
    root, entry, p = sample
    js = json.loads(p["json"].read_text())
    js["pixel_size_um_estimated"] *= 1.5
    p["json"].write_text(json.dumps(js))
    with pytest.raises(DataError, match="um_per_px .* pitch") as e:
        _read(root, entry)
    assert str(p["json"]) in str(e.value)


def test_spots_outside_the_image_name_the_file(sample) -> None:
    root, entry, p = sample
    a = ad.read_h5ad(p["h5ad"])
    xy = np.asarray(a.obsm["spatial"]).copy()
    xy[0, 0] = entry["hest_fullres_px"][0] + 10
    a.obsm["spatial"] = xy
    a.write_h5ad(p["h5ad"])
    with pytest.raises(DataError, match="outside") as e:
        _read(root, entry)
    assert str(p["h5ad"]) in str(e.value)


def test_non_integer_counts_name_the_file(sample) -> None:
    root, entry, p = sample
    a = ad.read_h5ad(p["h5ad"])
    X = sp.csr_matrix(a.X, dtype=np.float32)
    X.data[0] += 0.5
    a.X = X
    a.write_h5ad(p["h5ad"])
    with pytest.raises(DataError, match="not integers") as e:
        _read(root, entry)
    assert str(p["h5ad"]) in str(e.value)


def test_a_wrong_id_mapping_is_refused(sample) -> None:
    root, entry, p = sample
    js = json.loads(p["json"].read_text())
    js["subseries"] = "C3"
    p["json"].write_text(json.dumps(js))
    with pytest.raises(DataError, match="subseries") as e:
        _read(root, entry)
    assert str(p["json"]) in str(e.value)


def test_missing_sample_file_says_how_to_get_access(sample) -> None:
    root, entry, p = sample
    p["h5ad"].unlink()
    with pytest.raises(DataError, match="gated") as e:
        _read(root, entry)
    assert str(p["h5ad"]) in str(e.value)


def test_a_tiff_whose_first_page_is_not_level_0_is_refused(tmp_path) -> None:
    img = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    good, bad = tmp_path / "good.tif", tmp_path / "bad.tif"
    write_pyramid(good, img, 0.5)
    write_pyramid(bad, img, 0.5, first="reduced")
    assert hest_io.tiff_levels(good) == [(600, 800), (300, 400), (150, 200)]
    import tifffile

    with tifffile.TiffWriter(tmp_path / "subifds.tif") as tw:  # the other pyramid layout: SubIFDs
        tw.write(img, tile=(256, 256), compression="lzw", photometric="rgb", subifds=1)
        tw.write(img[::2, ::2], tile=(256, 256), compression="lzw", photometric="rgb", subfiletype=1)
    assert hest_io.tiff_levels(tmp_path / "subifds.tif") == [(600, 800), (300, 400)]
    np.testing.assert_array_equal(read_image(tmp_path / "subifds.tif"), img)
    np.testing.assert_array_equal(read_image(good), img)
    root = tmp_path / "s"
    (root / "wsis").mkdir(parents=True)
    (root / "st").mkdir()
    (root / "st" / "X1.h5ad").write_bytes(b"")  # never read: the image is refused first
    (root / "wsis" / "X1.tif").symlink_to(bad)
    (root / "metadata").mkdir()
    (root / "metadata" / "X1.json").write_text(json.dumps(
        {"pixel_size_um_estimated": 0.5, "spot_diameter": 55, "inter_spot_dist": 100}))
    with pytest.raises(DataError, match="first page") as e:
        hest_io.read_hest_sample(root, "X1", {"hest_id": "X1", "patient": "P"})
    assert str(root / "wsis" / "X1.tif") in str(e.value)


def test_sections_of_two_subsets_are_not_read_together(tmp_path) -> None:
    ds = load_dataset("hest")
    with pytest.raises(DataError, match="subsets"):
        hest_io.read_from_manifest(ds, tmp_path, ["C2", "BC23287_C1"])


# ---- the gated origin -------------------------------------------------------------------------------
def test_gated_download_needs_a_token_and_sends_it(tmp_path, monkeypatch) -> None:
    import pooch

    monkeypatch.delenv("STLIB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("STLIB_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar, downloader=None):
        calls.append((url, downloader))
        Path(path, fname).write_bytes(b"x")
        return str(Path(path, fname))

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    ds = load_dataset("hest:her2st")
    with pytest.raises(DataError, match="gated Hugging Face"):
        ds.fetch(progress=False, files=ds.files_for([SECTION]))
    assert calls == []
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    ds.fetch(progress=False, files=ds.files_for([SECTION]))
    assert [u for u, _ in calls] == [ds.origin + f for f in hest_io.sample_paths(ds.sections[SECTION]["hest_id"])]
    assert all(d.kwargs["headers"]["Authorization"] == "Bearer hf_test" for _, d in calls)
    assert (tmp_path / "cache" / "hest" / "st").is_dir()  # a subset shares the data set's cache


# ---- the manifest and its split ------------------------------------------------------------------------
def test_manifest_maps_every_section_once_and_agrees_with_the_splits() -> None:
    ds = load_dataset("hest")
    secs = ds.sections
    ids = [m["hest_id"] for m in secs.values()]
    assert len(set(ids)) == len(ids)
    num = {s: int(m["hest_id"][3:]) for s, m in secs.items()}
    assert {num[s] for s, m in secs.items() if m["subset"] == "her2st"} == set(range(119, 155))
    assert {num[s] for s, m in secs.items() if m["subset"] == "he2020"} == set(range(51, 119))
    assert all(m["hest_subseries"] == s for s, m in secs.items())
    assert set(load_dataset("her2st").sections) == {s for s, m in secs.items() if m["subset"] == "her2st"}
    # two independent sources: HEST's spots_under_tissue and the authors' n_spots (splits/he2020.tsv)
    he = pd.read_csv(ds.split_file.parent / "he2020.tsv", sep="\t", comment="#").set_index("section")
    assert set(he.index) == {s for s, m in secs.items() if m["subset"] == "he2020"}
    assert all(secs[s]["hest_spots_under_tissue"] == he.at[s, "n_spots"] for s in he.index)
    for sub, other in (("her2st", "her2st"), ("he2020", "he2020")):
        mine = load_dataset(f"hest:{sub}").split().set_index("section")["split"]
        theirs = load_dataset(other).split().set_index("section")["split"]
        assert mine.sort_index().to_dict() == theirs.reindex(mine.index).sort_index().to_dict(), sub
    header = yaml.safe_load(ds.manifest_path.read_text())["id_mapping"]
    assert len(header["commit"]) == 40 and header["commit"] in header["source"]
    assert all(v is None for v in ds.files.values())  # unknown sha256 are null, not invented


@pytest.mark.parametrize("name", ["hest:her2st", "hest:he2020"])
def test_each_subset_can_run_every_chapter(name: str) -> None:
    d = check_design(load_dataset(name))
    assert not d.blocked, d.describe()
