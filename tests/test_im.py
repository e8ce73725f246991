"""Tests for stlib.im: image reading, windows, CNN features, cache, Dask."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stlib import im  # noqa: E402
from stlib._utils import sha256_file  # noqa: E402
from stlib.io import images  # noqa: E402
from stlib.errors import DataError  # noqa: E402

H, W = 500, 600  # synthetic image: 500 rows x 600 columns
WIN = 32  # small windows keep the tiny model fast


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #


def tiny_preprocess(x: np.ndarray) -> np.ndarray:
    return x / 255.0 - 0.5


@pytest.fixture(scope="module")
def tiny_model() -> Any:
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 4, strides=4, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, x, name="tiny")


class CountingModel:
    """Wraps a Keras model and counts forward passes."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = model.name
        self.output_shape = model.output_shape
        self.calls = 0

    def predict_on_batch(self, x: Any) -> Any:
        self.calls += 1
        return self.model.predict_on_batch(x)

    def get_weights(self) -> list[np.ndarray]:
        return self.model.get_weights()


def synthetic_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=(H, W, 3), dtype=np.uint8)


def write_png(path: Path, img: np.ndarray) -> Path:
    Image.fromarray(img).save(path, format="PNG")
    return path


def random_centers(n: int, seed: int, margin: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(margin, W - 1 - margin, n), rng.uniform(margin, H - 1 - margin, n)])


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


def test_read_image_and_size(tmp_path: Path) -> None:
    img = synthetic_image()
    p = write_png(tmp_path / "a.png", img)
    got = images.read_image(p)
    assert got.dtype == np.uint8 and got.shape == (H, W, 3)
    np.testing.assert_array_equal(got, img)
    assert images.image_size(p) == (H, W)
    # grey-scale is converted to RGB
    Image.fromarray(img[..., 0]).save(tmp_path / "g.png")
    g = images.read_image(tmp_path / "g.png")
    assert g.shape == (H, W, 3)
    np.testing.assert_array_equal(g[..., 2], img[..., 0])


def test_read_image_large_limit_is_local(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    p = write_png(tmp_path / "a.png", synthetic_image())
    images.read_image(p)
    assert Image.MAX_IMAGE_PIXELS == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.jpg: missing image file"):
        images.read_image(tmp_path / "nope.jpg")
    with pytest.raises(DataError, match="missing image file"):
        images.image_size(tmp_path / "nope.jpg")


def test_read_thumbnail_scales_names_bad_files_and_keeps_pil_limits(tmp_path: Path) -> None:
    img = synthetic_image()
    p = write_png(tmp_path / "a.png", img)
    thumb, scale = images.read_thumbnail(p, max(img.shape[:2]) // 2)
    assert thumb.dtype == np.uint8 and thumb.shape[2] == 3
    assert scale == pytest.approx(thumb.shape[1] / img.shape[1]) and 0.45 < scale < 0.55
    same, one = images.read_thumbnail(p, 10 * max(img.shape[:2]))  # a small image is not enlarged
    assert one == 1.0 and np.array_equal(same, img)
    assert Image.MAX_IMAGE_PIXELS != images.MAX_IMAGE_PIXELS and ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(DataError, match=r"nope\.jpg: missing image file"):
        images.read_thumbnail(tmp_path / "nope.jpg", 100)
    bad = tmp_path / "garbage.jpg"
    bad.write_bytes(b"this is not a jpeg" * 100)
    with pytest.raises(DataError, match=r"garbage\.jpg: corrupt or truncated image"):
        images.read_thumbnail(bad, 100)
    with pytest.raises(ValueError, match="resample"):
        images.read_thumbnail(p, 100, resample="cubic")
    rgba = np.zeros((40, 60, 4), np.uint8)  # black, transparent on the left half: white glass there
    rgba[:, 30:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    t, _ = images.read_thumbnail(tmp_path / "alpha.png", 100)
    assert (t[:, :30] == 255).all() and (t[:, 31:] == 0).all()


def test_corrupt_image_names_file(tmp_path: Path) -> None:
    p = tmp_path / "garbage.jpg"
    p.write_bytes(b"this is not a jpeg" * 100)
    with pytest.raises(DataError, match=r"garbage\.jpg: not a readable image"):
        images.read_image(p)
    with pytest.raises(DataError, match=r"garbage\.jpg"):
        images.image_size(p)


def test_truncated_jpeg_names_file(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    Image.fromarray(synthetic_image()).save(full, format="JPEG", quality=90)
    data = full.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert images.image_size(cut) == (H, W)  # the header is intact...
    with pytest.raises(DataError, match=r"cut\.jpg: corrupt or truncated image"):
        images.read_image(cut)  # ...but the pixels are not
    # even when a caller has switched PIL to tolerate truncation globally
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(DataError, match=r"cut\.jpg"):
            images.read_image(cut)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert images.read_image(full).shape == (H, W, 3)


# --------------------------------------------------------------------------- #
# Windows
# --------------------------------------------------------------------------- #


def test_windows_centred_on_markers() -> None:
    img = np.full((H, W, 3), 100, dtype=np.uint8)
    centers = np.array([[300.0, 250.0], [40.4, 60.6], [559.5, 100.0], [123.0, 456.49]])
    rounded = np.array([[300, 250], [40, 61], [560, 100], [123, 456]])
    for i, (x, y) in enumerate(rounded):
        img[y, x] = (i + 1, 200 + i, 7)  # marker at (row y, column x)
    for size in (WIN, 31, 224):
        windows, n_padded = im.extract_windows(img, centers, size=size)
        assert windows.shape == (4, size, size, 3) and windows.dtype == np.uint8
        for i in range(4):
            w = windows[i]
            np.testing.assert_array_equal(w[size // 2, size // 2], [i + 1, 200 + i, 7])
            marks = np.argwhere(w[..., 2] == 7)
            assert len(marks) == 1  # only its own marker, no other
        expected_pad = 0 if size < 80 else 3  # 224 windows cross the border for all but (300, 250)
        assert n_padded == expected_pad


def test_window_content_and_extent() -> None:
    img = synthetic_image(1)
    windows, n_padded = im.extract_windows(img, [[100, 200]], size=WIN)
    assert n_padded == 0
    np.testing.assert_array_equal(windows[0], img[200 - 16 : 200 + 16, 100 - 16 : 100 + 16])


def test_border_padding_is_white_and_counted() -> None:
    img = synthetic_image(2)  # values < 200, so 255 can only come from padding
    centers = [[5, 5], [W - 3, H // 2], [W // 2, H - 1], [W // 2, H // 2], [0, 0]]
    windows, n_padded = im.extract_windows(img, centers, size=WIN)
    assert n_padded == 4
    # top-left corner spot: 11 padded columns/rows (5 - 16 = -11)
    w = windows[0]
    assert (w[:11] == 255).all() and (w[:, :11] == 255).all()
    np.testing.assert_array_equal(w[11:, 11:], img[0:21, 0:21])
    # right border: columns W-3-16 .. W-1 real (19 columns), then 13 padded
    w = windows[1]
    np.testing.assert_array_equal(w[:, :19], img[H // 2 - 16 : H // 2 + 16, W - 19 :])
    assert (w[:, 19:] == 255).all()
    assert (windows[3] < 255).all()


@pytest.mark.parametrize("bad", [[W, 10], [10, H], [-0.6, 10], [10, -1]])
def test_center_outside_image(bad: list[float]) -> None:
    img = synthetic_image()
    with pytest.raises(DataError, match=r"sec1: 1 spot centre\(s\) lie outside the 600 x 500"):
        im.extract_windows(img, [[10, 10], bad], size=WIN, where="sec1")


def test_center_just_inside_is_fine() -> None:
    windows, n_padded = im.extract_windows(synthetic_image(), [[-0.4, 0], [W - 0.51, H - 1]], size=WIN)
    assert n_padded == 2 and windows.shape == (2, WIN, WIN, 3)


def test_bad_centers() -> None:
    with pytest.raises(DataError, match="NaN or infinite"):
        im.extract_windows(synthetic_image(), [[np.nan, 3]], size=WIN)
    with pytest.raises(DataError, match=r"shape \(n, 2\)"):
        im.extract_windows(synthetic_image(), [[1, 2, 3]], size=WIN)


# --------------------------------------------------------------------------- #
# Embedding, backbones
# --------------------------------------------------------------------------- #


def test_embed_windows_batches_agree(tiny_model: Any) -> None:
    windows, _ = im.extract_windows(synthetic_image(), random_centers(10, 0, margin=20), size=WIN)
    counting = CountingModel(tiny_model)
    f3 = im.embed_windows(windows, counting, tiny_preprocess, batch_size=3)
    assert counting.calls == 4  # ceil(10 / 3) batches
    f32 = im.embed_windows(windows, tiny_model, tiny_preprocess, batch_size=32)
    assert f3.shape == (10, 6) and f3.dtype == np.float32
    np.testing.assert_allclose(f3, f32, rtol=1e-5, atol=1e-6)
    assert np.ptp(f3, axis=0).min() > 0  # different windows, different features
    empty = im.embed_windows(windows[:0], tiny_model, tiny_preprocess)
    assert empty.shape == (0, 6)
    # any callable works as a model too: here, the mean colour of each window
    mean_rgb = im.embed_windows(windows, lambda x, training: x.mean(axis=(1, 2)), lambda x: x, batch_size=4)
    np.testing.assert_allclose(mean_rgb, windows.mean(axis=(1, 2)), rtol=1e-6)


def test_get_backbone_mobilenet_random_weights() -> None:
    model, preprocess = im.get_backbone("mobilenet_v2", weights=None)
    assert model.output_shape == (None, 1280)
    x = preprocess(np.full((1, 224, 224, 3), 255.0, dtype=np.float32))
    np.testing.assert_allclose(x, 1.0)  # mobilenet scaling to [-1, 1]
    with pytest.raises(ValueError, match="unknown backbone"):
        im.get_backbone("vgg99", weights=None)
    with pytest.raises(ValueError, match="takes 224 px windows"):
        im.section_features("any.png", [[1, 1]], backbone="resnet50", weights=None, size=WIN)


# --------------------------------------------------------------------------- #
# Section features and cache
# --------------------------------------------------------------------------- #


def test_section_features_cache_hit(tmp_path: Path, tiny_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    img = synthetic_image(3)
    p = write_png(tmp_path / "s.png", img)
    centers = random_centers(12, 1, margin=20)
    centers[0] = [2, 2]  # one padded window
    counting = CountingModel(tiny_model)
    cache = tmp_path / "cache"
    f1, info1 = im.section_features(p, centers, backbone=(counting, tiny_preprocess), size=WIN, cache_dir=cache)
    assert counting.calls > 0 and info1["from_cache"] is False
    assert info1["n_padded"] == 1 and info1["n_spots"] == 12 and info1["size"] == WIN
    assert info1["sha256"] == sha256_file(p) and info1["image_shape"] == [H, W]
    expected = im.embed_windows(im.extract_windows(img, centers, WIN)[0], tiny_model, tiny_preprocess)
    np.testing.assert_array_equal(f1, expected)
    assert len(list(cache.glob("*.npy"))) == 1
    saved = json.loads(next(cache.glob("*.json")).read_text())
    assert saved["n_padded"] == 1 and saved["backbone"] == "custom:tiny" and saved["seconds"] >= 0

    # rerun: no decoding, no forward pass
    calls = counting.calls
    monkeypatch.setattr(im._features, "read_image", lambda path: pytest.fail("image decoded on a cache hit"))
    f2, info2 = im.section_features(p, centers, backbone=(counting, tiny_preprocess), size=WIN, cache_dir=cache)
    assert counting.calls == calls
    assert info2["from_cache"] is True and info2["n_padded"] == 1
    np.testing.assert_array_equal(f1, f2)


def test_cache_key_changes(tmp_path: Path, tiny_model: Any) -> None:
    c = np.floor(random_centers(5, 2, margin=20)) + 0.1
    base = im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c)
    assert base == im.feature_cache_key("AB" * 32, "mobilenet_v2", "imagenet", 224, c + 0.2)  # same rounding
    assert base != im.feature_cache_key("ac" * 32, "mobilenet_v2", "imagenet", 224, c)
    assert base != im.feature_cache_key("ab" * 32, "resnet50", "imagenet", 224, c)
    assert base != im.feature_cache_key("ab" * 32, "mobilenet_v2", "none", 224, c)
    assert base != im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 256, c)
    assert base != im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c + 1)
    assert base != im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c[::-1])

    # through section_features: new size / image / model -> new files, recomputed
    p = write_png(tmp_path / "s.png", synthetic_image(4))
    cache = tmp_path / "cache"
    pair = (tiny_model, tiny_preprocess)
    _, i1 = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=cache)
    _, i2 = im.section_features(p, c, backbone=pair, size=WIN + 8, cache_dir=cache)
    _, i3 = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=cache, image_sha256="0" * 64)
    import keras

    other = keras.models.clone_model(tiny_model)  # same architecture and name, new weights
    other.set_weights([w + 1 for w in tiny_model.get_weights()])
    f4, i4 = im.section_features(p, c, backbone=(other, tiny_preprocess), size=WIN, cache_dir=cache)
    assert not any(i["from_cache"] for i in (i1, i2, i3, i4))
    assert len({i["cache_file"] for i in (i1, i2, i3, i4)}) == 4
    _, i5 = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=cache)
    assert i5["from_cache"] and i5["cache_file"] == i1["cache_file"]


def test_section_features_errors(tmp_path: Path, tiny_model: Any) -> None:
    p = write_png(tmp_path / "s.png", synthetic_image())
    with pytest.raises(DataError, match=r"s\.png: 1 spot centre\(s\) lie outside"):
        im.section_features(p, [[10, 10], [W + 5, 10]], backbone=(tiny_model, tiny_preprocess), size=WIN)
    with pytest.raises(DataError, match=r"missing\.png: missing (image )?file"):
        im.section_features(tmp_path / "missing.png", [[10, 10]], backbone=(tiny_model, tiny_preprocess))


# --------------------------------------------------------------------------- #
# cnn_features over sections, with Dask
# --------------------------------------------------------------------------- #


def make_adata(tmp_path: Path) -> ad.AnnData:
    sections = {"A": 14, "B": 9}
    obs, coords, spatial = [], [], {}
    for k, (sec, n) in enumerate(sections.items()):
        path = write_png(tmp_path / f"{sec}.png", synthetic_image(10 + k))
        spatial[sec] = {
            "metadata": {"image_path": str(path), "image_sha256": None, "image_shape": [H, W]},
            "scalefactors": {"spot_diameter_fullres": 20.0, "tissue_hires_scalef": 0.2},
        }
        c = random_centers(n, 20 + k, margin=20)
        c[0] = [1, H - 2]  # one padded window per section
        coords.append(c)
        obs += [(f"{sec}_{i}", sec, ["train", "valid", "test"][i % 3]) for i in range(n)]
    df = pd.DataFrame(obs, columns=["spot", "section", "split"]).set_index("spot")
    df["section"] = pd.Categorical(df["section"])
    # interleave the sections so the code must respect obs positions
    order = np.r_[np.arange(0, 23, 2), np.arange(1, 23, 2)]
    adata = ad.AnnData(X=np.zeros((23, 2), dtype=np.float32), obs=df)
    adata.obsm["spatial"] = np.vstack(coords)
    adata.uns["spatial"] = spatial
    return adata[order].copy()


def test_cnn_features_schedulers_agree(tmp_path: Path, tiny_model: Any) -> None:
    from distributed import Client, LocalCluster

    adata = make_adata(tmp_path)
    pair = (tiny_model, tiny_preprocess)
    out = im.cnn_features(adata, backbone=pair, size=WIN, progress=False, copy=True)
    assert out is not None and "X_cnn" not in adata.obsm  # copy left the input alone
    X = out.obsm["X_cnn"]
    assert X.shape == (23, 6) and X.dtype == np.float32
    # each row equals the direct computation for its own spot
    for sec in ("A", "B"):
        idx = np.flatnonzero((adata.obs["section"] == sec).to_numpy())
        meta = adata.uns["spatial"][sec]["metadata"]
        direct, _ = im.section_features(meta["image_path"], adata.obsm["spatial"][idx], backbone=pair, size=WIN)
        np.testing.assert_array_equal(X[idx], direct)
    u = out.uns["cnn_features"]
    assert u["n_padded"] == {"A": 1, "B": 1} and u["cached"] == {"A": False, "B": False}
    assert u["backbone"] == "custom:tiny" and u["size"] == WIN and u["n_features"] == 6

    # in place, synchronous scheduler
    assert im.cnn_features(adata, backbone=pair, size=WIN, scheduler="synchronous", progress=False) is None
    np.testing.assert_array_equal(adata.obsm["X_cnn"], X)

    # dask.distributed cluster, as a Client and as an address
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            b = im.cnn_features(adata, backbone=pair, size=WIN, scheduler=client, progress=True, copy=True)
            np.testing.assert_array_equal(b.obsm["X_cnn"], X)
            # other settings on the same cluster give a fresh result, not the one held under an old key
            b2 = im.cnn_features(adata, backbone=pair, size=WIN + 8, scheduler=client, progress=False, copy=True)
            assert not np.allclose(b2.obsm["X_cnn"], X)
            assert b2.uns["cnn_features"]["size"] == WIN + 8
        c = im.cnn_features(
            adata, backbone=pair, size=WIN, scheduler=cluster.scheduler_address, progress=False, copy=True,
            key_added="X_other",
        )
        np.testing.assert_array_equal(c.obsm["X_other"], X)


def test_cnn_features_cache_across_runs(tmp_path: Path, tiny_model: Any) -> None:
    adata = make_adata(tmp_path)
    counting = CountingModel(tiny_model)
    pair = (counting, tiny_preprocess)
    im.cnn_features(adata, backbone=pair, size=WIN, cache_dir=tmp_path / "c", progress=False)
    first = adata.obsm["X_cnn"].copy()
    calls = counting.calls
    assert calls == 2  # one batch per section
    im.cnn_features(adata, backbone=pair, size=WIN, cache_dir=tmp_path / "c", progress=False)
    assert counting.calls == calls
    assert adata.uns["cnn_features"]["cached"] == {"A": True, "B": True}
    np.testing.assert_array_equal(adata.obsm["X_cnn"], first)


def test_cnn_features_missing_metadata(tmp_path: Path, tiny_model: Any) -> None:
    adata = make_adata(tmp_path)
    del adata.uns["spatial"]["B"]["metadata"]["image_path"]
    with pytest.raises(DataError, match="^B: .*image_path"):
        im.cnn_features(adata, backbone=(tiny_model, tiny_preprocess), size=WIN, progress=False)


# --------------------------------------------------------------------------- #
# Real data
# --------------------------------------------------------------------------- #


def _her2st_root() -> Path | None:
    for root in (os.environ.get("STLIB_DATA_MIRROR"), "/work/shared/data/her2st", Path(__file__).parents[2] / "shared/data/her2st"):
        if root and (Path(root) / "data/ST-imgs/C/C2").is_dir():
            return Path(root)
    return None


def _mobilenet_weights() -> Path | None:
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    candidates = [Path(os.environ["KERAS_HOME"]) / "models" / name] if "KERAS_HOME" in os.environ else []
    candidates += [Path.home() / ".keras/models" / name, Path("/work/shared/weights/keras/models") / name]
    candidates += [Path(__file__).parents[2] / "shared/weights/keras/models" / name]
    return next((p for p in candidates if p.is_file()), None)


@pytest.mark.realdata
def test_real_c2_mobilenet_features() -> None:
    root = _her2st_root()
    weights = _mobilenet_weights()
    if root is None:
        pytest.skip("HER2ST C2 image not found (set STLIB_DATA_MIRROR to a her2st mirror root)")
    if weights is None:
        pytest.skip("MobileNetV2 ImageNet weights not found in $KERAS_HOME/models or ../shared/weights")
    image = next((root / "data/ST-imgs/C/C2").glob("*.jpg"))
    spots = pd.read_csv(root / "data/ST-spotfiles/C2_selection.tsv", sep="\t")
    spots = spots[spots["selected"] == 1].head(8)
    centers = spots[["pixel_x", "pixel_y"]].to_numpy()
    h, w = images.image_size(image)
    assert h > 5000 and w > 5000
    # weights="imagenet" when keras finds the file in its cache ($KERAS_HOME/models), else the same file by path
    keras_home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    in_cache = weights.parent == keras_home / "models"
    feats, info = im.section_features(
        image, centers, backbone="mobilenet_v2", weights="imagenet" if in_cache else str(weights)
    )
    assert feats.shape == (8, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert feats.std(axis=0).max() > 0 and np.ptp(feats, axis=1).min() > 0
    assert (feats >= 0).all()  # pooled ReLU6 activations
    assert info["image_shape"] == [h, w] and info["n_padded"] == 0
