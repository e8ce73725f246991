"""Your own sections: the ``spots`` layout, `stlib summary`, the pipeline and `stlib predict` on a
fixture data set with its own manifest; physical windows; the saved model; bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import stlib as st
from stlib.errors import DataError
from stlib.predictor import ImageModel, ModelError, load_model, save_model

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import make_her2st_fixture  # noqa: E402
from spots_fixture import BAD, SECTIONS, UM_PER_PX, make_spots_fixture  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STLIB = [sys.executable, "-m", "stlib.cli"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([*STLIB, *args], capture_output=True, text=True, cwd=cwd, env=env)


# ---- reading ----------------------------------------------------------------------------------
def test_summary_of_own_sections(tmp_path: Path) -> None:
    manifest = make_spots_fixture(tmp_path)
    out = _cli("summary", str(manifest), "--quiet")
    assert out.returncode == 0, out.stderr
    for sec in SECTIONS:
        assert f"| {sec} " in out.stdout
    a = st.io.load_dataset(manifest).read(progress=False)
    assert list(a.obs["section"].cat.categories) == list(SECTIONS)
    assert dict(a.obs.groupby("section", observed=True)["patient"].first()) == {s: v[0] for s, v in SECTIONS.items()}
    assert a.obs.loc[a.obs["section"] == "S3", "subtype"].iloc[0] == "B"
    assert (a.obs["split"].astype(str).to_numpy() == [SECTIONS[s][2] for s in a.obs["section"]]).all()
    geo = {s: a.uns["spatial"][s]["metadata"] for s in SECTIONS}
    assert geo["S1"]["um_per_px"] == UM_PER_PX and geo["S1"]["um_per_px_source"] == "manifest"
    assert geo["S4"]["um_per_px_source"] == "spot pitch" and abs(geo["S4"]["um_per_px"] - UM_PER_PX) < 0.1
    assert a.uns["spatial"]["S1"]["scalefactors"]["spot_diameter_fullres"] == pytest.approx(100 / UM_PER_PX)
    rep = a.uns["load_report"]["S1"]
    assert rep["dropped_not_in_tissue"] == ["0x0"] and rep["dropped_selected_missing"] == ["1x0"]
    assert rep["dropped_no_counts"] == ["2x0"] and rep["n_kept"] == 53
    assert rep["dropped_no_coords"] == []  # the in_tissue drops are not "counts without coordinates"
    s1 = a.obs[a.obs["section"] == "S1"].set_index("spot_id")
    assert s1.loc["4x0", "tumor"] and not s1.loc["3x0", "tumor"] and pd.isna(s1.loc["6x0", "tumor"])
    assert pd.isna(s1.loc["5x5", "tumor"])  # not annotated


def test_sections_without_annotations_write_to_h5ad(tmp_path: Path) -> None:
    """No section annotated: the tumour columns are all missing, and the data still writes."""
    manifest = make_spots_fixture(tmp_path)
    m = yaml.safe_load(manifest.read_text())
    m["sections"]["S1"].pop("annotations")
    manifest.write_text(yaml.safe_dump(m))
    a = st.io.load_dataset(manifest).read(progress=False)
    assert a.obs["tumor"].isna().all() and a.obs["tumor_label"].isna().all()
    a.write_h5ad(tmp_path / "a.h5ad")
    import anndata as ad

    assert ad.read_h5ad(tmp_path / "a.h5ad").obs["tumor_label"].isna().all()


@pytest.mark.parametrize("bad", BAD)
def test_bad_own_data_is_one_clear_line(tmp_path: Path, bad: str) -> None:
    manifest = make_spots_fixture(tmp_path, bad=bad)
    out = _cli("summary", str(manifest), "--quiet")
    assert out.returncode == 2, (bad, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: "), out.stderr
    expected = {"nan_coordinate": r"S1/spots\.csv: .*not a finite number", "text_coordinate": r"S1/spots\.csv: .*not a finite",
                "spot_outside": r"S1/spots\.csv: 1 spot centre\(s\) outside", "missing_image": r"S1/he\.jpg: missing file",
                "checksum": r"S1/counts\.tsv\.gz: checksum mismatch", "no_common_spots": r"S1/counts\.tsv\.gz: empty section S1",
                "all_out_of_tissue": r"S1/spots\.csv: empty section S1: none of its 56 spots",
                "corrupt_counts": r"S1/counts\.tsv\.gz: truncated or corrupt gzip",
                "missing_patient": r"own\.yaml: section S1: no patient given"}[bad]
    assert re.search(expected, out.stderr), out.stderr


def test_her2st_nan_coordinate_and_empty_selected_flag(tmp_path: Path) -> None:
    fx = make_her2st_fixture(tmp_path, sections=("B1",), pathologist_sections=())
    sel_path = fx.truth["B1"].files["selection"]
    sel = pd.read_csv(sel_path, sep="\t")
    chosen = sel.index[sel["selected"] == 1][:2]
    sel["selected"] = sel["selected"].astype(object)
    sel.loc[chosen[0], "selected"] = ""
    sel.to_csv(sel_path, sep="\t", index=False)
    a = st.io.her2st.read_her2st(fx.root, ["B1"])
    rep = a.uns["load_report"]["B1"]
    key = f"{sel.loc[chosen[0], 'x']}x{sel.loc[chosen[0], 'y']}"
    assert rep["dropped_selected_missing"] == [key] and key not in rep["dropped_no_coords"]
    sel.loc[chosen[1], "pixel_x"] = "NaN"
    sel.to_csv(sel_path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"_selection\.tsv: 1 spot centre\(s\) outside .*not a finite number"):
        st.io.her2st.read_her2st(fx.root, ["B1"])
    sel.loc[chosen[1], "x"] = np.nan
    sel.to_csv(sel_path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"_selection\.tsv: 1 row\(s\) with a missing, non-numeric or infinite array"):
        st.io.her2st.read_her2st(fx.root, ["B1"])


def test_the_data_page_manifest_is_a_working_manifest(tmp_path: Path) -> None:
    """The worked manifest of book/data.md uses the reader's keys, and with the fixture's sections
    and files in place of its example ones it reads."""
    text = (ROOT / "book" / "data.md").read_text()
    block = text.split("```yaml\n# my-sections.yaml", 1)[1].split("```", 1)[0]
    m = yaml.safe_load("# my-sections.yaml" + block)
    assert m["reader"] == "spots"
    fx = yaml.safe_load(make_spots_fixture(tmp_path).read_text())
    # the page's keys are the reader's keys
    assert set(m["sections"]["S1"]) <= set(fx["sections"]["S1"]) | {"annotations", "um_per_px"}
    assert set(m["geometry"]) <= {"um_per_px", "spot_diameter_um", "spot_pitch_um"}
    path = tmp_path / "own" / "my-sections.yaml"
    m["sections"], m["split"], m["files"] = fx["sections"], "split.tsv", {}
    path.write_text(yaml.safe_dump(m))
    assert st.io.load_dataset(path).read(progress=False).n_obs == 4 * 53


# ---- physical windows --------------------------------------------------------------------------
def test_window_px_and_resampling() -> None:
    assert st.im.window_px(154.6, 0.69) == 224 and st.im.window_px(154.6, 0.733) == 211
    assert st.im.window_px(154.6, 2.0) == 77
    with pytest.raises(DataError, match="um_per_px must be a positive"):
        st.im.window_px(154.6, 0.0)
    with pytest.raises(DataError, match="only 3 px"):
        st.im.window_px(154.6, 50.0)
    w = np.random.default_rng(0).integers(0, 255, size=(2, 77, 77, 3), dtype=np.uint8)
    assert st.im.resample_windows(w, 224).shape == (2, 224, 224, 3)
    assert st.im.resample_windows(w, 77) is w
    c = np.array([[10.0, 10.0]])
    keys = {st.im.feature_cache_key("ab", "m", "w", 224, c, window=win) for win in (None, 224, 211)}
    assert len(keys) == 2  # a 224 px window is the old key; a resampled one is another


def _demo_or_skip():
    mirror = os.environ.get("STLIB_DATA_MIRROR")
    if not mirror or not (Path(mirror) / "her2st").is_dir():
        pytest.skip("no STLIB_DATA_MIRROR with her2st/")
    if not st.im.weights_file("mobilenet_v2", "imagenet").is_file():
        pytest.skip("no MobileNetV2 ImageNet weights in $KERAS_HOME/models")


def test_half_resolution_gives_close_features(tmp_path: Path) -> None:
    """The same tissue at half the resolution: a physical window gives features close to the
    original's (correlation ~0.9); a pixel window (twice the tissue) does not (~0.5, as unrelated spots)."""
    _demo_or_skip()
    from stlib.io.images import read_image

    a = st.io.load_dataset("her2st-demo").read(["B4"], progress=False)
    xy = np.asarray(a.obsm["spatial"])[:32]
    img = read_image(a.uns["spatial"]["B4"]["metadata"]["image_path"])
    x0, y0 = (xy.min(0) - 400).astype(int)
    x1, y1 = (xy.max(0) + 400).astype(int)
    crop = Image.fromarray(img[y0:y1, x0:x1])
    del img
    crop.save(tmp_path / "full.png")
    crop.resize((crop.width // 2, crop.height // 2), Image.Resampling.LANCZOS).save(tmp_path / "half.png")
    c, um = xy - [x0, y0], a.uns["spatial"]["B4"]["metadata"]["um_per_px"]
    full, _ = st.im.section_features(tmp_path / "full.png", c, window_um=154.6, um_per_px=um)
    half, info = st.im.section_features(tmp_path / "half.png", c / 2, window_um=154.6, um_per_px=2 * um)
    pixel, _ = st.im.section_features(tmp_path / "half.png", c / 2)
    assert info["window_px"] == round(154.6 / (2 * um))

    def corr(u: np.ndarray, v: np.ndarray) -> float:
        u, v = u - u.mean(1, keepdims=True), v - v.mean(1, keepdims=True)
        return float(((u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1))).mean())

    physical, by_pixels, other = corr(full, half), corr(full, pixel), corr(full, np.roll(full, 1, axis=0))
    assert physical > 0.85, physical
    assert physical > by_pixels + 0.2 and physical > other + 0.2, (physical, by_pixels, other)


# ---- the saved model ---------------------------------------------------------------------------
def _toy_model(genes: list[str], d: int = 6, **meta_over) -> ImageModel:
    rng = np.random.default_rng(0)
    k = 2
    arrays = {"img_mean": rng.normal(size=d), "img_components": rng.normal(size=(k, d)), "knn_mean": rng.normal(size=d),
              "knn_components": rng.normal(size=(k, d)), "scale_mean": np.zeros(2 * k), "scale_std": np.ones(2 * k),
              "coef": rng.normal(size=(2 * k, len(genes))), "intercept": rng.normal(size=len(genes))}
    meta = {"format_version": st.predictor.FORMAT_VERSION, "genes": genes, "genes_sha256": st.predictor.genes_digest(genes),
            "backbone": "mobilenet_v2", "weights": "imagenet", "weights_sha256": "ab" * 32, "window_um": 154.6,
            "input_size": 224, "um_per_px_train": 0.7, "spot_pitch_um": 200.0, "spot_diameter_um": 100.0,
            "n_neighbors": 15, **meta_over}
    return ImageModel(meta, {k: np.asarray(v) for k, v in arrays.items()})


def test_predict_image_needs_a_resolution(tmp_path: Path) -> None:
    """The API refuses an image without um_per_px, spots or a declared resolution, as the CLI does;
    ``um_per_px="training"`` asks for the old assumption, and says so."""
    manifest = make_spots_fixture(tmp_path)
    image = manifest.parent / "S4" / "he.jpg"
    model = _toy_model(["G00", "G01"], um_per_px_train=2.0)
    with pytest.raises(DataError, match=r"he\.jpg: the image's resolution is unknown: without spots give um_per_px "
                                        r"\(micrometres per pixel; the model was trained on images at 2 um/px\)"):
        st.predictor.predict_image(model, image, progress=False)
    um, source = st.predictor.resolve_resolution(model, "training", None, image, image_path=image)
    assert um == 2.0 and source == "assumed: the training images' resolution (um_per_px='training')"
    with pytest.raises(DataError, match=r"um_per_px must be a number .* or 'training', got 'train'"):
        st.predictor.resolve_resolution(model, "train", None, image, image_path=image)
    # a TIFF that declares its resolution (Aperio MPP) needs nothing more
    tif = tmp_path / "he.tif"
    Image.open(image).save(tif, description="Aperio Image Library |MPP = 2.1")
    assert st.predictor.resolve_resolution(model, None, None, tif, image_path=tif) == (
        2.1, "the image's metadata (Aperio MPP)")


def test_predict_cli_prints_the_tissue_grid_line(tmp_path: Path) -> None:
    """`stlib predict` without spots says how many grid spots it found on tissue."""
    manifest = make_spots_fixture(tmp_path)
    image = manifest.parent / "S4" / "he.jpg"
    folder = save_model(_toy_model(["G00", "G01", "G02"], d=1280, weights="none", weights_sha256=None,
                                   um_per_px_train=2.0), tmp_path / "model")
    r = _cli("predict", str(folder), str(image), "--um-per-px", "2", "--quiet", "--out", str(tmp_path / "p.h5ad"))
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"^tissue grid: (\d+) of (\d+) grid spots on tissue \((\d+) x (\d+) at 100\.0 px; \d+% of the image "
                  r"is tissue\)$", r.stdout, re.M)
    assert m, r.stdout
    n, total = int(m.group(1)), int(m.group(2))
    assert 40 <= n <= 80 and total == int(m.group(3)) * int(m.group(4))  # the stained region holds about 56
    assert ad.read_h5ad(tmp_path / "p.h5ad").n_obs == n


def test_saved_model_round_trip_and_refusals(tmp_path: Path) -> None:
    genes = ["ERBB2", "KRT19", "CD74"]
    m = _toy_model(genes)
    folder = save_model(m, tmp_path / "m")
    back = load_model(folder, genes=genes)
    x = np.random.default_rng(1).normal(size=(5, 6))
    np.testing.assert_allclose(back.predict(x, x), m.predict(x, x))
    with pytest.raises(ModelError, match="other genes"):
        load_model(folder, genes=["ERBB2", "KRT19", "MUC1"])
    with pytest.raises(ModelError, match="features per spot"):
        back.predict(x[:, :4], x[:, :4])
    with pytest.raises(ModelError, match="not resnet50"):
        back.check_backbone("resnet50", "ab" * 32)
    with pytest.raises(ModelError, match="weights differ"):
        back.check_backbone("mobilenet_v2", "cd" * 32)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "genes": genes[::-1]}))
    with pytest.raises(ModelError, match="gene ids"):
        load_model(folder)
    (folder / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelError, match="format version 99"):
        load_model(folder)
    (folder / "model.json").write_text(json.dumps(meta))
    np.savez(folder / "arrays.npz", **{**m.arrays, "coef": m.arrays["coef"] * 2})
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(folder)
    with pytest.raises(ModelError, match="missing file"):
        load_model(tmp_path / "nowhere")


# ---- the pipeline and `stlib predict` on the fixture -------------------------------------------
@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> tuple[Path, Path]:
    """Chapters 01, 02 and 14 on the fixture (random-weight CNN), as a user runs them."""
    tmp = tmp_path_factory.mktemp("own")
    manifest = make_spots_fixture(tmp)
    out = tmp / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
    r = subprocess.run([sys.executable, "-m", "stlib.book.run", "--out", str(out), "--dataset", str(manifest),
                        "--weights", "none", "--only", "01", "02", "14", "-p", "n_genes", "20",
                        "-p", "cache_dir", str(tmp / "cache"), "-p", "n_boot", "50", "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return manifest, out


def test_pipeline_runs_on_own_sections(own_run) -> None:
    manifest, out = own_run
    for nb in ("01_preprocessing", "02_embeddings", "14_image_alone"):
        assert (out / "notebooks" / f"{nb}.ipynb").is_file()
    table = pd.read_csv(out / "results" / "tables" / "image_alone.csv", index_col=0)
    assert list(table.index) == ["image alone, measured spots", "image alone, tissue grid"]
    assert table["pcc"].between(-1, 1).all()
    m = load_model(out / "results" / "model")
    assert m.meta["fitted_on"]["train_sections"] == ["S1", "S2"] and m.meta["fitted_on"]["penalty_chosen_on"] == ["S3"]
    # chapter 1 brings every section to the coarsest one's resolution (S4's, measured from its pitch)
    data = ad.read_h5ad(out / "results" / "data.h5ad")
    coarsest = data.uns["common_resolution"]["um_per_px"]
    assert coarsest >= UM_PER_PX and coarsest == pytest.approx(UM_PER_PX, rel=0.05)
    # (each section at the target within its integer image size: the median of theirs)
    assert m.meta["um_per_px_train"] == pytest.approx(coarsest, rel=1e-3) and len(m.genes) == 20


def test_predict_cli_on_an_image(own_run, tmp_path: Path) -> None:
    manifest, out = own_run
    image, model = manifest.parent / "S4" / "he.jpg", out / "results" / "model"
    r = _cli("predict", str(model), str(image), "--out", str(tmp_path / "s4.h5ad"), "--maps", str(tmp_path / "maps"),
             "--um-per-px", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    import anndata as ad

    pred = ad.read_h5ad(tmp_path / "s4.h5ad")
    assert pred.n_vars == 20 and pred.obsm["spatial"].shape == (pred.n_obs, 2)
    assert "hires" in pred.uns["spatial"]["he"]["images"] and pred.uns["prediction"]["spots"] == "tissue grid"
    assert 40 <= pred.n_obs <= 80  # the stained region holds about 56 spots of a 200 um (100 px) grid
    assert len(list((tmp_path / "maps").glob("*.png"))) == 3
    # with the measured spots: the pipeline's own features and predictions
    r = _cli("predict", str(model), str(image), "--spots", str(manifest.parent / "S4" / "spots.csv"),
             "--out", str(tmp_path / "s4_spots.h5ad"), "--quiet")
    assert r.returncode == 0, r.stderr
    spots = ad.read_h5ad(tmp_path / "s4_spots.h5ad")
    emb = st.book.store.load_targets(out / "results")
    s4 = emb[emb.obs["section"] == "S4"]
    # every in-tissue spot of the file, the one without counts (2x0) included
    ids = list(spots.obs["spot_id"])
    assert "2x0" in ids and set(s4.obs["spot_id"]) == set(ids) - {"2x0"}
    rows = [ids.index(i) for i in s4.obs["spot_id"]]
    np.testing.assert_allclose(spots.obsm["X_cnn"][rows], s4.obsm["X_cnn"], rtol=0, atol=1e-5)


def test_predict_refuses_bad_input(own_run, tmp_path: Path) -> None:
    manifest, out = own_run
    model = out / "results" / "model"
    blank = tmp_path / "blank.jpg"
    Image.fromarray(np.full((900, 1000, 3), 245, dtype=np.uint8)).save(blank)
    tiny = tmp_path / "tiny.jpg"
    Image.open(manifest.parent / "S4" / "he.jpg").resize((90, 80)).save(tiny)
    far = pd.read_csv(manifest.parent / "S4" / "spots.csv")
    far.loc[3, "pixel_x"] = 5000
    far.to_csv(tmp_path / "far.csv", index=False)
    broken = tmp_path / "model"
    broken.mkdir()
    meta = json.loads((model / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**meta, "format_version": 0}))
    (broken / "arrays.npz").write_bytes((model / "arrays.npz").read_bytes())
    image = str(manifest.parent / "S4" / "he.jpg")
    cases = {
        "no tissue": ((str(model), str(blank), "--um-per-px", "2"), r"blank\.jpg: no tissue detected"),
        "too small": ((str(model), str(tiny), "--um-per-px", "2"), r"tiny\.jpg: the image is 90 x 80 px: .*downsampled image"),
        "no resolution": ((str(model), image), r"he\.jpg: the image's resolution is unknown: without --spots give "
                                               r"--um-per-px"),
        "unknown gene": ((str(model), image, "--um-per-px", "2", "--genes", "ERBB2", "--maps", str(tmp_path / "m")),
                         r"--genes: the model does not predict \['ERBB2'\]"),
        "um/px against the spots": ((str(model), image, "--um-per-px", "1", "--spots",
                                     str(manifest.parent / "S4" / "spots.csv")),
                                    r"um_per_px 1 is declared, but the spots' 200 um pitch .* measures 2(\.\d+)? um/px"),
        "resolution": ((str(model), image, "--um-per-px", "20"), r"model/image mismatch: the image is at 20 um/px"),
        "spots outside": ((str(model), image, "--spots", str(tmp_path / "far.csv")), r"far\.csv: 1 spot centre"),
        "format": ((str(broken), image), r"format version 0"),
        "not a model": ((str(tmp_path), image), r"model\.json: missing file"),
        "not an image": ((str(model), str(manifest)), r"own\.yaml: not a readable image file"),
    }
    for what, (args, pattern) in cases.items():
        r = _cli("predict", *args, "--quiet", "--out", str(tmp_path / "x.h5ad"))
        assert r.returncode == 2, (what, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and re.search(pattern, r.stderr), (what, r.stderr)
        assert not (tmp_path / "x.h5ad").exists(), what  # nothing written before the error
