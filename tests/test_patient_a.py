"""Patient A (HER2ST A1, A2 from the web-app views): the her2st-abc data set, its three-patient split,
the full-size dimensions from dims.list, the spot geometry against the image, and the registration
of A2's spots (a method: recovered on a synthetic shift, identity on A1, A2 from >10% to <5% off)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import demo_mirror

from stlib.errors import DataError
from stlib.io.rdata import app_image_dims, read_rds
from stlib.io.register import disc_coverage, register_spots, spot_pitch_px, spots_on_tissue, tissue_mask
from stlib.io.registry import load_dataset

#: Full-size (width, height) of A1 and A2, from app/data/dims.list at the pinned commit
#: (also in ../shared/README.md): the manifest records them and the reader checks them.
FULLRES_WH = {"A1": (6954, 7435), "A2": (6966, 7441)}


@pytest.fixture
def project_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STLIB_MANIFESTS", raising=False)


def _mirror() -> Path:
    m = demo_mirror()
    if m is None or not (m / "her2st" / "app" / "www" / "imgs" / "A2_HE_image_dark.png").is_file():
        pytest.skip("no patient A files in the HER2ST mirror")
    return m


# ---- manifest and split ------------------------------------------------------------------
def test_her2st_abc_manifest_and_three_patient_split(project_manifests) -> None:
    ds = load_dataset("her2st-abc")
    assert list(ds.sections) == ["A1", "A2", "B4", "C2", "C3", "C4", "C5", "C6"]
    for s, wh in FULLRES_WH.items():
        assert tuple(ds.sections[s]["fullres_wh"]) == wh
        assert ds.sections[s]["fullres_source"] == "app/data/dims.list"
        assert "um_per_px" not in ds.sections[s]  # measured from the spot pitch
    assert ds.sections["A2"]["register"] == {"method": "spots_on_tissue"}  # a method, no typed offset
    assert "register" not in ds.sections["A1"]
    split = ds.split()
    parts = split.groupby("split")["patient"].agg(lambda p: sorted(set(p))).to_dict()
    assert parts == {"train": ["C"], "valid": ["A"], "test": ["B"]}
    assert split.groupby("patient")["split"].nunique().max() == 1  # no patient in two parts
    assert split["patient"].nunique() == 3
    assert not ds.split_policy["allow_train_valid_patient_overlap"]
    demo = load_dataset("her2st-demo")  # B4, C2-C6 keep the demo's files and checksums
    for f, h in demo.files.items():
        assert ds.files[f] == h
    for s in ("A1", "A2"):
        img = f"app/www/imgs/{s}_HE_image_dark.png"
        assert ds.files[img] and ds.git_blobs[img]
        assert img in ds.files_for([s]) and "app/data/dims.list" in ds.files_for([s])


# ---- dims.list -----------------------------------------------------------------------------
def test_dims_list_holds_the_manifests_fullres_sizes(project_manifests) -> None:
    m = _mirror()
    dims = app_image_dims(m / "her2st" / "app" / "data" / "dims.list")
    assert len(dims) == 36
    for s, wh in FULLRES_WH.items():
        assert dims[s] == wh
    assert 9200 < dims["B4"][0] < 9300  # the full-resolution scans of B and C


def _rds(payload: bytes) -> bytes:
    return gzip.compress(b"X\n" + struct.pack(">iii", 2, 0x040200, 0x020300) + payload)


def test_read_rds_small_values_and_bad_input(tmp_path: Path) -> None:
    # list(a = 1:2, b = "x"): VECSXP with a names attribute
    names = struct.pack(">ii", 1026, 1) + struct.pack(">ii", 9, 5) + b"names"
    payload = (struct.pack(">ii", 19 | (1 << 9), 2)
               + struct.pack(">iiii", 13, 2, 1, 2)
               + struct.pack(">ii", 16, 1) + struct.pack(">ii", 9, 1) + b"x"
               + names + struct.pack(">ii", 16, 2) + struct.pack(">ii", 9, 1) + b"a" + struct.pack(">ii", 9, 1) + b"b"
               + struct.pack(">i", 254))
    f = tmp_path / "x.rds"
    f.write_bytes(_rds(payload))
    obj = read_rds(f)
    assert obj.names == ["a", "b"] and obj["a"].values == [1, 2] and obj["b"].values == ["x"]
    f.write_bytes(_rds(payload[:20]))
    with pytest.raises(DataError, match="unexpected end of data") as err:
        read_rds(f)
    assert str(f) in str(err.value)
    f.write_bytes(gzip.compress(b"RDX2\n"))
    with pytest.raises(DataError, match="not an XDR R serialisation"):
        read_rds(f)
    f.write_bytes(_rds(struct.pack(">i", 4)))  # an environment
    with pytest.raises(DataError, match="unsupported R type 4"):
        read_rds(f)


def test_a_manifest_size_that_disagrees_with_dims_list_is_refused(tmp_path: Path, monkeypatch) -> None:
    import yaml

    m = _mirror()
    data = tmp_path / "data"
    (data / "datasets").mkdir(parents=True)
    (data / "splits").mkdir()
    src = Path(load_dataset("her2st-abc").manifest_path)
    body = yaml.safe_load(src.read_text())
    body["sections"]["A1"]["fullres_wh"] = [6955, 7435]
    body.pop("split")
    (data / "datasets" / "abc.yaml").write_text(yaml.safe_dump(body))
    monkeypatch.setenv("STLIB_MANIFESTS", str(data))
    monkeypatch.setenv("STLIB_DATA_MIRROR", str(m))
    with pytest.raises(DataError, match=r"A1: full-size dimensions \(6954, 7435\).*differ.*\[6955, 7435\]") as err:
        load_dataset("abc").read(["A1"], progress=False)
    assert "dims.list" in err.value.where


# ---- registration: synthetic -----------------------------------------------------------------
def _synthetic(shift: tuple[int, int], *, white: bool = False):
    """A black (or white) image with a tissue blob, an annotation thumbnail top-right, and a spot
    grid on the blob; the returned spots are displaced by ``-shift`` (registration must add it)."""
    rng = np.random.default_rng(0)
    h, w = 700, 800
    img = np.full((h, w, 3), 255 if white else 0, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    blob = (((xx - 380) / 230.0) ** 2 + ((yy - 400) / 200.0) ** 2) <= 1
    img[blob] = rng.integers(90, 200, size=(int(blob.sum()), 3), dtype=np.uint8)
    img[:120, w - 140:] = (230, 200, 230)  # thumbnail
    img[20:100, w - 120:w - 20] = (120, 60, 140)
    gx, gy = np.meshgrid(np.arange(0, w, 30.0), np.arange(0, h, 30.0))
    pts = np.c_[gx.ravel(), gy.ravel()]
    inside = (((pts[:, 0] - 380) / 226.0) ** 2 + ((pts[:, 1] - 400) / 196.0) ** 2) <= 1
    return img, blob, pts[inside] - np.asarray(shift, dtype=float)


def test_tissue_mask_drops_background_and_thumbnail() -> None:
    for white in (False, True):
        img, blob, _ = _synthetic((0, 0), white=white)
        mask, info = tissue_mask(img)
        assert info["inset_bbox"] == [660, 0, 800, 120]
        assert (mask == blob).mean() > 0.995
    with pytest.raises(DataError, match=r"shape \(H, W, 3\)"):
        tissue_mask(np.zeros((5, 5)), where="x.png")


@pytest.mark.parametrize("shift", [(36, -51), (-45, 38)])
def test_registration_recovers_a_known_shift(shift) -> None:
    img, _, xy = _synthetic(shift)
    mask, _ = tissue_mask(img)
    reg = register_spots(mask, xy)
    assert reg.off_tissue_before > 0.1 and reg.off_tissue_after == 0.0
    assert abs(reg.translation[0] - shift[0]) <= 3 and abs(reg.translation[1] - shift[1]) <= 3
    assert reg.scale == 1.0 and reg.mean_coverage_after > reg.mean_coverage_before
    assert np.allclose(reg.apply(xy), xy + np.asarray(reg.translation))


def test_registration_leaves_aligned_spots_alone() -> None:
    img, _, xy = _synthetic((0, 0))
    mask, _ = tissue_mask(img)
    reg = register_spots(mask, xy)
    assert reg.off_tissue_before == reg.off_tissue_after == 0.0
    assert np.hypot(*reg.translation) <= 3 and reg.scale == 1.0
    # the optional scale: never more spots off; it leans towards shrinking the grid (a smaller grid
    # sits deeper in the tissue), which is why the reader fits a translation only by default
    reg = register_spots(mask, xy, scale_range=0.03)
    assert reg.off_tissue_after == 0.0 and 0.97 <= reg.scale <= 1.0


def test_registration_bad_input() -> None:
    with pytest.raises(DataError, match="tissue mask is empty"):
        register_spots(np.zeros((50, 50), bool), np.array([[1.0, 1.0], [5.0, 5.0]]), where="A9")
    with pytest.raises(DataError, match="finite"):
        register_spots(np.ones((50, 50), bool), np.array([[1.0, np.nan], [5.0, 5.0]]))


# ---- the real sections -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def patient_a():
    m = _mirror()
    mp = pytest.MonkeyPatch()
    mp.setenv("STLIB_DATA_MIRROR", str(m))
    mp.delenv("STLIB_MANIFESTS", raising=False)
    a = load_dataset("her2st-abc").read(["A1", "A2"], progress=False)
    mp.undo()
    return a


@pytest.mark.realdata
def test_a1_a2_spot_geometry_against_the_image(patient_a) -> None:
    from stlib.io.images import read_image

    a = patient_a
    assert a.obs.groupby("section", observed=True).size().to_dict() == {"A1": 346, "A2": 325}
    assert set(a.obs["split"]) == {"valid"}
    rep = a.uns["load_report"]
    assert rep["A1"]["dropped_no_counts"] == ["17x14", "18x20"] and rep["A2"]["dropped_no_counts"] == []
    for s in ("A1", "A2"):
        md = a.uns["spatial"][s]["metadata"]
        assert md["image_shape"][1] == 2000 and md["um_per_px_source"] == "spot pitch"
        assert 3.3 < md["um_per_px"] < 3.5  # the 200 um pitch measures ~58-59 px
        st = rep[s]["spot_transform"]
        assert st["fullres_source"] == "app/data/dims.list (checked)"
        assert st["tissue_mask"]["inset_bbox"] is not None  # the thumbnail, top right
        # measured again here, with the tissue mask: the share of spots on tissue
        mask, _ = tissue_mask(read_image(md["image_path"]))
        xy = a.obsm["spatial"][(a.obs["section"] == s).to_numpy()]
        r = spot_pitch_px(xy) / 4
        _, off, _ = spots_on_tissue(disc_coverage(mask, r), xy)
        assert off == pytest.approx(st["off_tissue"], abs=1e-9)
        assert off < 0.05, s
    assert rep["A1"]["spot_transform"]["off_tissue_scaled"] < 0.01  # A1: the plain scaling fits
    assert "registration" not in rep["A1"]["spot_transform"]


@pytest.mark.realdata
def test_a2_registration_result(patient_a) -> None:
    st = patient_a.uns["load_report"]["A2"]["spot_transform"]
    reg = st["registration"]
    assert st["off_tissue_scaled"] > 0.10 and reg["off_tissue_before"] == st["off_tissue_scaled"]
    assert reg["off_tissue_after"] < 0.05 and st["off_tissue"] == reg["off_tissue_after"]
    tx, ty = reg["translation"]
    assert 60 < tx < 130 and -170 < ty < -110  # about (+105, -135) app px, 1.5-2.5 pitches
    assert reg["scale"] == 1.0


@pytest.mark.realdata
def test_a1_registration_is_near_identity() -> None:
    import pandas as pd

    from stlib.io.images import read_image

    m = _mirror() / "her2st"
    img = read_image(m / "app/www/imgs/A1_HE_image_dark.png")
    mask, _ = tissue_mask(img)
    sel = pd.read_csv(m / "data/ST-spotfiles/A1_selection.tsv", sep="\t")
    sel = sel[sel["selected"] == 1]
    W, H = FULLRES_WH["A1"]
    xy = np.c_[sel["pixel_x"] * img.shape[1] / W, sel["pixel_y"] * img.shape[0] / H]
    reg = register_spots(mask, xy)
    assert reg.off_tissue_before == reg.off_tissue_after == 0.0
    assert np.hypot(*reg.translation) < 0.25 * reg.search["pitch_px"]


@pytest.mark.realdata
def test_a1_tumour_annotation_is_the_pathologists(patient_a) -> None:
    a1 = patient_a[patient_a.obs["section"] == "A1"]
    assert set(a1.obs["tumor_source"]) == {"pathologist drawing (data/ST-pat/lbl)"}
    assert a1.obs["tumor"].value_counts(dropna=False).to_dict() == {True: 303, False: 38, pd_na(): 5}
    assert set(a1.obs.loc[a1.obs["tumor"].fillna(False).astype(bool), "tumor_label"]) == {
        "invasive cancer", "cancer in situ"}
    a2 = patient_a[patient_a.obs["section"] == "A2"]
    assert set(a2.obs["tumor_source"]) == {"authors' expression clusters (res/ST-cluster, motivation.csv)"}


def pd_na():
    import pandas as pd

    return pd.NA
