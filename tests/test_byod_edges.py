"""Bring your own data (issue 30), the remaining edges: ``stlib predict`` on an image whose resolution
is only in its metadata (or nowhere), the 4x resolution limit as ``stlib summary`` states it, Visium's
header-less ``tissue_positions_list.csv`` (Space Ranger < 2.0), duplicate gene names and negative
counts in a HEST-1k ``st/<id>.h5ad``, and an image with an alpha channel named by the pre-run check.

Each input is run through the ``stlib`` command where it is a command's input (``main`` in this
process, its stdout and stderr captured), and must give one line naming the file and the problem."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from PIL import Image

import stlib as st
from stlib.cli import main
from stlib.errors import DataError, DataWarning
from stlib.predictor import save_model

sys.path.insert(0, str(Path(__file__).parent))
from spots_fixture import UM_PER_PX, make_spots_fixture  # noqa: E402
from test_own_data import _toy_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "her2st"
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "ST-cnts" / "C2.tsv.gz").is_file(), reason="../shared absent")


def _one_error(argv: list[str], capsys) -> str:
    """Run ``stlib <argv>``: exit status 2 and exactly one stderr line, ``error: ...``, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ---- 1. `stlib predict` without spots: the resolution the image declares, or a refusal --------------
@pytest.fixture(scope="module")
def s4(tmp_path_factory) -> dict:
    """S4 of the spots fixture (2 um/px, tissue under a 100 px grid) and a toy model trained at 2 um/px
    on random-weight MobileNetV2 features (nothing is downloaded)."""
    tmp = tmp_path_factory.mktemp("s4")
    manifest = make_spots_fixture(tmp)
    model = save_model(_toy_model(["G00", "G01", "G02"], d=1280, weights="none", weights_sha256=None,
                                  um_per_px_train=UM_PER_PX), tmp / "model")
    with Image.open(manifest.parent / "S4" / "he.jpg") as im:
        rgb = im.convert("RGB")
        rgb.load()
    return {"rgb": rgb, "model": model}


def _ppi(um_per_px: float) -> float:
    return 25400.0 / um_per_px


def test_predict_reads_a_png_phys_resolution_and_says_so(s4, tmp_path: Path, capsys) -> None:
    """A PNG with a pHYs chunk at 2 um/px (500,000 px/m): predicted end to end, the resolution line
    printed, and the .h5ad records the metadata as its source (not "given")."""
    png = tmp_path / "he.png"
    s4["rgb"].save(png, dpi=(_ppi(UM_PER_PX),) * 2)
    out = tmp_path / "he.h5ad"
    assert main(["predict", str(s4["model"]), str(png), "--quiet", "--out", str(out)]) == 0
    std = capsys.readouterr().out
    assert re.search(r"^resolution: 2 um/px, from the image's metadata \(PNG pHYs, 12700 px/inch\)$", std, re.M), std
    assert re.search(r"^wrote .*he\.h5ad: \d+ spots x 3 genes \(tissue grid; 2 um/px, the image's metadata \(PNG pHYs",
                     std, re.M), std
    pred = ad.read_h5ad(out)
    info = pred.uns["prediction"]
    assert info["um_per_px"] == pytest.approx(UM_PER_PX, rel=1e-4)
    assert info["um_per_px_source"].startswith("the image's metadata (PNG pHYs")
    assert info["window_px"] == round(154.6 / UM_PER_PX) and 40 <= pred.n_obs <= 80


@pytest.mark.parametrize("kind", ["jpeg dpi", "tiff cm", "tiff inch"])
def test_predict_reads_jpeg_and_tiff_resolutions(s4, tmp_path: Path, capsys, kind: str) -> None:
    """A JPEG (JFIF dpi) and TIFFs (px/cm, px/inch) declaring 10 um/px, 5x the model's 2: the command
    says what it read, then refuses the 4x limit in one line, before any image is decoded; nothing written."""
    um = 10.0
    path = tmp_path / ("he.jpg" if kind == "jpeg dpi" else "he.tif")
    kw = {"jpeg dpi": {"dpi": (_ppi(um),) * 2}, "tiff cm": {"resolution": 1e4 / um, "resolution_unit": 3},
          "tiff inch": {"resolution": _ppi(um), "resolution_unit": 2}}[kind]
    s4["rgb"].save(path, **kw)
    out = tmp_path / "x.h5ad"
    assert main(["predict", str(s4["model"]), str(path), "--quiet", "--out", str(out)]) == 2
    cap = capsys.readouterr()
    source = {"jpeg dpi": r"JPEG JFIF density, 2540 px/inch", "tiff cm": r"TIFF resolution, cm",
              "tiff inch": r"TIFF resolution, inch"}[kind]
    assert re.search(rf"^resolution: 10 um/px, from the image's metadata \({source}\)$", cap.out, re.M), cap.out
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    assert re.fullmatch(rf"error: {re.escape(str(path))}: model/image mismatch: the image is at 10 um/px \(the image's "
                        rf"metadata \({source}\)\), the model was trained on images at 2 um/px; a factor 5 is beyond 4x"
                        r"\. Check um_per_px \(micrometres per pixel\)", lines[0]), lines[0]
    assert not out.exists()


@pytest.mark.parametrize("kind", ["png without pHYs", "png at 96 dpi", "jpeg at 300 dpi", "tiff at 72 dpi"])
def test_predict_refuses_an_image_without_a_usable_resolution(s4, tmp_path: Path, capsys, kind: str) -> None:
    """No resolution, or a screen's or printer's default density: one line naming the image, before any work."""
    ext, kw = {"png without pHYs": ("png", {}), "png at 96 dpi": ("png", {"dpi": (96, 96)}),
               "jpeg at 300 dpi": ("jpg", {"dpi": (300, 300)}),
               "tiff at 72 dpi": ("tif", {"resolution": 72.0, "resolution_unit": 2})}[kind]
    path = tmp_path / f"he.{ext}"
    s4["rgb"].save(path, **kw)
    out = tmp_path / "x.h5ad"
    line = _one_error(["predict", str(s4["model"]), str(path), "--quiet", "--out", str(out)], capsys)
    assert line == (f"error: {path}: the image's resolution is unknown: without --spots give --um-per-px (micrometres "
                    "per pixel; the model was trained on images at 2 um/px); the image declares none (an Aperio MPP, "
                    "TIFF resolution tags in px/cm, or a TIFF, PNG or JPEG density above 1,000 px per inch)"), line
    assert not out.exists()


def test_declared_resolution_of_png_and_jpeg_headers(tmp_path: Path) -> None:
    """:func:`image_um_per_px` on the PNG and JPEG densities: pHYs in px/m, JFIF in dpi or dots per cm."""
    from stlib.io.images import image_um_per_px

    arr = np.full((8, 8, 3), 200, np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png", dpi=(50800, 50800))  # 0.5 um/px
    um, src = image_um_per_px(tmp_path / "a.png")
    assert um == pytest.approx(0.5, rel=1e-4) and src == "the image's metadata (PNG pHYs, 50800 px/inch)"
    # JFIF density in dots per cm (unit 2): 20,000 dots/cm = 0.5 um/px; written by hand (PIL writes dpi only)
    Image.fromarray(arr).save(tmp_path / "b.jpg", dpi=(1, 1))
    raw = bytearray((tmp_path / "b.jpg").read_bytes())
    k = raw.index(b"JFIF\x00")
    assert raw[k + 7] == 1  # units: dpi
    raw[k + 7], raw[k + 8:k + 12] = 2, (20000).to_bytes(2, "big") * 2
    (tmp_path / "b.jpg").write_bytes(bytes(raw))
    um, src = image_um_per_px(tmp_path / "b.jpg")
    assert um == pytest.approx(0.5, rel=1e-4) and src.startswith("the image's metadata (JPEG JFIF density")
    Image.fromarray(arr).save(tmp_path / "c.png", dpi=(1000, 1000))  # at the limit: a default, not a microscope's
    assert image_um_per_px(tmp_path / "c.png") is None


# ---- 2. the 4x resolution limit, as `stlib summary` states it ----------------------------------------
@pytest.mark.parametrize("factor", [5.0, 0.2])
def test_summary_states_a_section_beyond_the_resolution_limit(tmp_path: Path, capsys, factor: float) -> None:
    """S4 (test) rescaled to 5x coarser (10 um/px) or 5x finer (0.4 um/px) than the train sections' 2 um/px,
    its spots with it: ``stlib summary`` reads it (exit 0), shows its um/px, and states in one line that
    chapter 14 (the saved image model's 4x limit) cannot run, naming the section, its um/px and the factor.
    Within the limit (3x) nothing is said. The design: a statement of the summary, not an error; the
    pipeline (``stlib.book.run``) refuses the chapter up front (tests/test_byod.py)."""
    manifest = make_spots_fixture(tmp_path)
    folder = manifest.parent / "S4"

    def rescale(f: float) -> None:
        with Image.open(folder / "he.orig.jpg") as im:
            im.resize((round(im.width / f), round(im.height / f)), Image.Resampling.BILINEAR).save(folder / "he.jpg")
        spots = pd.read_csv(folder / "spots.orig.csv")
        spots[["pixel_x", "pixel_y"]] = (spots[["pixel_x", "pixel_y"]] / f).round(2)
        spots.to_csv(folder / "spots.csv", index=False)

    (folder / "he.jpg").rename(folder / "he.orig.jpg")
    (folder / "spots.csv").rename(folder / "spots.orig.csv")
    m = yaml.safe_load(manifest.read_text())
    manifest.write_text(yaml.safe_dump({**m, "files": {}}, sort_keys=False))  # the files change
    rescale(factor)
    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    s4_row = next(ln for ln in lines if ln.startswith("| S4 "))
    row = dict(zip((c.strip() for c in lines[0].split("|")), (c.strip() for c in s4_row.split("|"))))
    assert float(row["um/px"]) == pytest.approx(UM_PER_PX * factor, rel=0.02), row
    assert row["um/px source"] == "measured from spot pitch", row
    hits = [ln for ln in out.splitlines() if "chapter 14 cannot" in ln]
    assert len(hits) == 1, out
    m = re.fullmatch(r"  chapter 14 cannot: section\(s\) S4 ([\d.]+) um/px \(([\d.]+)x\) are beyond 4x the train "
                     r"sections' median 2 um/px, the saved image model's limit", hits[0])
    assert m, hits[0]
    assert float(m.group(1)) == pytest.approx(UM_PER_PX * factor, rel=0.02)
    assert float(m.group(2)) == pytest.approx(factor, rel=0.05)
    assert "--only 01 02 03 04 05 06 07 08 09 10 11 12 13 15 16" in out  # every chapter but 14
    rescale(3.0 if factor > 1 else 1 / 3)
    assert main(["summary", str(manifest), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "chapter 14 cannot" not in out and "every chapter can run" in out
    assert re.search(r"^resolution: [\d.]+ to [\d.]+ um/px \(a factor (2\.[89]|3(\.[01])?)\); within the 4x limit",
                     out, re.M), out


# ---- 3. Visium: Space Ranger 1's header-less tissue_positions_list.csv -------------------------------
@needs_shared
def test_visium_header_less_tissue_positions_list_reads_as_the_headed_file(tmp_path: Path, capsys) -> None:
    """The fixture's ``tissue_positions.csv`` (Space Ranger >= 2.0, with a header) rewritten as Space Ranger
    1's ``tissue_positions_list.csv`` (no header, same six columns): the same spots, centres, array
    coordinates and counts, and the load report names the file read."""
    from visium_fixture import make_visium_fixture

    manifest, _ = make_visium_fixture(tmp_path, n_genes=40)
    spatial = manifest.parent / "C2" / "outs" / "spatial"
    headed = st.io.load_dataset(manifest).read(progress=False)
    pos = pd.read_csv(spatial / "tissue_positions.csv")
    assert list(pos.columns) == ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres",
                                 "pxl_col_in_fullres"]
    pos.to_csv(spatial / "tissue_positions_list.csv", index=False, header=False)
    (spatial / "tissue_positions.csv").unlink()
    assert (spatial / "tissue_positions_list.csv").read_text().split(",", 1)[0].endswith("-1")  # no header
    legacy = st.io.load_dataset(manifest).read(progress=False)
    assert list(legacy.obs_names) == list(headed.obs_names) and legacy.n_obs == int(pos["in_tissue"].sum())
    np.testing.assert_array_equal(legacy.obsm["spatial"], headed.obsm["spatial"])
    for col in ("array_x", "array_y", "spot_id"):
        assert list(legacy.obs[col]) == list(headed.obs[col]), col
    assert (legacy.X != headed.X).nnz == 0
    rep, ref = legacy.uns["load_report"]["C2"], headed.uns["load_report"]["C2"]
    assert rep["spots_format"] == "10x Visium (squidpy.read.visium; tissue_positions_list.csv)"
    assert rep["n_spots_listed"] == ref["n_spots_listed"] == len(pos)  # the first row is a spot, not a header
    assert rep["dropped_not_in_tissue"] == ref["dropped_not_in_tissue"]
    assert main(["summary", str(manifest), "--quiet"]) == 0
    assert "| C2 " in capsys.readouterr().out


# ---- 4. HEST-1k: duplicate gene names and negative counts in st/<id>.h5ad ----------------------------
def _hest_sample(tmp_path: Path) -> tuple[Path, Path]:
    """A small synthetic HEST-1k sample ``X1`` (the spots fixture's S4: 2 um/px, 200 um pitch) in HEST's
    layout (``st/X1.h5ad`` with float counts, ``wsis/X1.tif`` at 5,000 px/cm, ``metadata/X1.json``),
    with a ``reader: hest`` manifest; returns the manifest and the h5ad."""
    own = make_spots_fixture(tmp_path / "own").parent / "S4"
    root = tmp_path / "hest"
    for sub in ("st", "wsis", "metadata"):
        (root / sub).mkdir(parents=True)
    with Image.open(own / "he.jpg") as im:
        im.save(root / "wsis" / "X1.tif", resolution=1e4 / UM_PER_PX, resolution_unit=3)
    spots = pd.read_csv(own / "spots.csv", dtype={"spot_id": str})
    spots = spots[pd.to_numeric(spots["in_tissue"], errors="coerce") == 1]
    counts = pd.read_csv(own / "counts.tsv.gz", sep="\t", index_col=0)
    spots = spots[spots["spot_id"].isin(counts.index)]
    counts = counts.loc[spots["spot_id"]]
    a = ad.AnnData(X=sp.csr_matrix(counts.to_numpy(np.float32)),
                   obs=pd.DataFrame({"in_tissue": True}, index=[f"{int(x):03d}x{int(y):03d}" for x, y in
                                                                 zip(spots["array_x"], spots["array_y"])]),
                   var=pd.DataFrame(index=counts.columns.astype(str)))
    a.obsm["spatial"] = spots[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    a.write_h5ad(root / "st" / "X1.h5ad")
    (root / "metadata" / "X1.json").write_text(json.dumps(
        {"pixel_size_um_estimated": UM_PER_PX, "spot_diameter": 100.0, "inter_spot_dist": 200.0}))
    pd.DataFrame({"section": ["S4"], "patient": ["P3"], "split": ["test"]}).to_csv(root / "split.tsv", sep="\t",
                                                                                  index=False)
    manifest = root / "hest.yaml"
    manifest.write_text(yaml.safe_dump({"name": "hest-fixture", "reader": "hest", "origin": "local",
                                        "split": "split.tsv",
                                        "sections": {"S4": {"hest_id": "X1", "patient": "P3"}}}, sort_keys=False))
    return manifest, root / "st" / "X1.h5ad"


def test_hest_duplicate_gene_names_and_negative_counts(tmp_path: Path, capsys) -> None:
    manifest, h5 = _hest_sample(tmp_path)
    good = st.io.load_dataset(manifest).read(progress=False)  # the sample as written reads
    assert good.n_obs == 53 and good.n_vars == 30
    a = ad.read_h5ad(h5)
    genes = list(a.var_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata's own "Variable names are not unique"
        dup = a.copy()
        dup.var_names = [genes[0], genes[0], genes[0], genes[4], genes[4], *genes[5:]]
        dup.write_h5ad(h5)
    line = _one_error(["summary", str(manifest), "--quiet"], capsys)
    assert line == (f"error: {h5}: 2 gene name(s) appear more than once in var_names: ['G00', 'G04'] (sum or "
                    "rename the duplicated genes)"), line
    X = a.X.toarray()
    X[5, 7] = -3.0
    a.X = sp.csr_matrix(X)
    a.write_h5ad(h5)
    line = _one_error(["summary", str(manifest), "--quiet"], capsys)
    spot = str(good.obs["spot_id"].iloc[5])
    assert line == (f"error: {h5}: 1 negative count(s) (raw counts are >= 0), e.g. spot {spot}, gene G07: -3"), line
    with pytest.raises(DataError, match="negative count"):
        st.io.hest.read_hest_sample(h5.parents[1], "S4", {"hest_id": "X1", "patient": "P3"})


# ---- 5. an image with an alpha channel, named by the pre-run check -----------------------------------
def test_summary_names_an_image_with_an_alpha_channel(tmp_path: Path, capsys) -> None:
    """S2's image as an RGBA PNG (fully opaque, so decoding would say nothing): ``stlib summary`` warns in
    one line naming the file, from its header; S1's RGB JPEG gets no such line."""
    manifest = make_spots_fixture(tmp_path)
    folder = manifest.parent / "S2"
    with Image.open(folder / "he.jpg") as im:
        im.convert("RGBA").save(folder / "he.png")
    m = yaml.safe_load(manifest.read_text())
    m["sections"]["S2"]["image"] = "S2/he.png"
    manifest.write_text(yaml.safe_dump({**m, "files": {}}, sort_keys=False))
    assert main(["summary", str(manifest), "--quiet"]) == 0
    err = capsys.readouterr().err
    alpha = [ln for ln in err.splitlines() if "alpha channel" in ln]
    assert alpha == [f"warning: {folder / 'he.png'}: the image has an alpha channel (mode RGBA), which is dropped "
                     "when it is decoded: transparent pixels become white (glass)"], err


def test_alpha_channel_is_read_from_the_header_only(tmp_path: Path) -> None:
    """The pre-run check (:func:`check_jpeg`) warns of an alpha channel (RGBA, grey + alpha, a palette with a
    transparent entry) without decoding: a PNG cut after its header still warns; an RGB PNG does not."""
    from stlib.io.images import check_jpeg

    arr = np.zeros((40, 50, 4), np.uint8)
    arr[..., 3] = 255
    cases = {"rgba.png": Image.fromarray(arr, "RGBA"), "la.png": Image.fromarray(arr[..., 2:], "LA")}
    pal = Image.fromarray(arr[..., :3]).convert("P")
    pal.info["transparency"] = 0
    cases["p.png"] = pal
    for name, im in cases.items():
        im.save(tmp_path / name)
    raw = (tmp_path / "rgba.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: raw.index(b"IDAT") + 8])  # the header, and no pixels
    for name, mode in (("rgba.png", "RGBA"), ("la.png", "LA"), ("p.png", "P"), ("cut.png", "RGBA")):
        with pytest.warns(DataWarning, match=rf"{name}: the image has an alpha channel \(mode {mode}\), which is "
                                              "dropped"):
            assert check_jpeg(tmp_path / name) == (40, 50)
    Image.fromarray(arr[..., :3]).save(tmp_path / "rgb.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert check_jpeg(tmp_path / "rgb.png") == (40, 50)
