"""Other views for frozen features: test-time augmentation, context windows, stain normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stlib import im
from stlib.errors import DataError
from test_im import WIN, make_adata, random_centers, tiny_model, tiny_preprocess, write_png  # noqa: F401


def he_like(seed: int, shift: tuple[float, float, float] = (0, 0, 0), h: int = 500, w: int = 600) -> np.ndarray:
    """An H&E-like image: pink and purple blobs on white, with an optional colour cast (RGB offset)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w, 3), 245.0)
    for _ in range(40):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 60)
        colour = np.array([200, 110, 170]) if rng.random() < 0.5 else np.array([120, 70, 160])
        m = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img[m] = colour + rng.normal(0, 12, (m.sum(), 3))
    img = img + np.asarray(shift) * (img.mean(axis=2, keepdims=True) < 230)  # the cast on tissue only
    return np.clip(img, 0, 255).astype(np.uint8)


def test_dihedral_is_the_group_of_the_square() -> None:
    w = np.random.default_rng(0).integers(0, 255, (2, 5, 5, 3), dtype=np.uint8)
    out = [im.dihedral(w, k) for k in range(8)]
    assert np.array_equal(out[0], w)
    assert len({o.tobytes() for o in out}) == 8  # eight different transforms of a generic window
    assert np.array_equal(im.dihedral(im.dihedral(w, 1), 3), w)  # a quarter turn, then three more
    assert np.array_equal(im.dihedral(im.dihedral(w, 4), 4), w)  # a mirror is its own inverse
    with pytest.raises(ValueError, match="0..7"):
        im.dihedral(w, 8)


def test_tta_features_do_not_depend_on_orientation(tiny_model: Any) -> None:
    w = np.random.default_rng(1).integers(0, 255, (5, WIN, WIN, 3), dtype=np.uint8)
    base = im.tta_features(w, tiny_model, tiny_preprocess)
    plain = im.embed_windows(w, tiny_model, tiny_preprocess)
    assert not np.allclose(base, plain, atol=1e-3)  # the tiny CNN itself is orientation-sensitive
    for k in range(8):
        np.testing.assert_allclose(im.tta_features(im.dihedral(w, k), tiny_model, tiny_preprocess), base,
                                   rtol=1e-5, atol=1e-6)


def test_views_in_cache_key(tmp_path: Path, tiny_model: Any) -> None:
    c = np.floor(random_centers(6, 3, margin=40)) + 0.2
    base = im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c)
    assert base == im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c, views="")  # old caches stay
    target = im.StainTarget(mean=(60.0, 20.0, -10.0), std=(10.0, 5.0, 5.0))
    labels = [im.views_label(True, (1,), None), im.views_label(False, (1, 2, 4), None),
              im.views_label(False, (1,), target), im.views_label(True, (1, 2), target)]
    assert im.views_label(False, (1,), None) == "" and len(set(labels)) == 4
    assert len({im.feature_cache_key("ab" * 32, "mobilenet_v2", "imagenet", 224, c, views=v) for v in labels} | {base}) == 5
    # through section_features: each option gets its own file, and a second call is a cache hit
    p = write_png(tmp_path / "s.png", he_like(0))
    pair = (tiny_model, tiny_preprocess)
    cache = tmp_path / "cache"
    infos = [im.section_features(p, c, backbone=pair, size=WIN, cache_dir=cache, **kw)[1]
             for kw in ({}, {"tta": True}, {"scales": (1, 2)}, {"stain": target})]
    assert len({i["cache_file"] for i in infos}) == 4 and not any(i["from_cache"] for i in infos)
    again = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=cache, tta=True)[1]
    assert again["from_cache"] and again["cache_file"] == infos[1]["cache_file"] and again["tta"] is True
    for bad in ((), (0,), (1, 1), (1, float("nan"))):
        with pytest.raises(ValueError, match="scales"):
            im.section_features(p, c, backbone=pair, size=WIN, scales=bad)


def test_context_scales(tmp_path: Path, tiny_model: Any) -> None:
    img = he_like(1)
    p = write_png(tmp_path / "s.png", img)
    c = random_centers(7, 4, margin=30)
    pair = (tiny_model, tiny_preprocess)
    plain, _ = im.section_features(p, c, backbone=pair, size=WIN)
    multi, info = im.section_features(p, c, backbone=pair, size=WIN, scales=(1, 2, 4))
    d = plain.shape[1]
    assert multi.shape == (7, 3 * d)
    np.testing.assert_array_equal(multi[:, :d], plain)  # the spot window's block is the plain feature
    wide = im.resample_windows(im.extract_windows(img, c, 4 * WIN)[0], WIN)  # 4x the width, shown at WIN px
    np.testing.assert_allclose(multi[:, 2 * d:], im.embed_windows(wide, tiny_model, tiny_preprocess), rtol=1e-5, atol=1e-6)
    assert info["scales"] == [1.0, 2.0, 4.0] and info["n_padded_scales"]["1"] == 0 and info["n_padded_scales"]["4"] > 0
    tta, _ = im.section_features(p, c, backbone=pair, size=WIN, tta=True)
    windows = im.extract_windows(img, c, WIN)[0]
    np.testing.assert_allclose(tta, im.tta_features(windows, tiny_model, tiny_preprocess), rtol=1e-6)


def test_variants_reuse_the_cached_plain_features(tmp_path: Path, tiny_model: Any) -> None:
    """With the plain features of the same windows in the cache, test-time augmentation takes them as
    its identity view and context as its 1x block, and the numbers are those of a cold run."""
    p = write_png(tmp_path / "s.png", he_like(2))
    c = random_centers(9, 5, margin=30)
    pair = (tiny_model, tiny_preprocess)
    kws = ({"tta": True}, {"scales": (1, 2)}, {"tta": True, "scales": (1, 2)})
    cold = [im.section_features(p, c, backbone=pair, size=WIN, cache_dir=tmp_path / "cold", **kw) for kw in kws]
    assert not any(info["plain_reused"] for _, info in cold)
    warm_dir = tmp_path / "warm"
    plain, _ = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=warm_dir)
    for kw, (f_cold, _) in zip(kws, cold, strict=True):
        f, info = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=warm_dir, **kw)
        assert info["plain_reused"] and not info["from_cache"], kw
        np.testing.assert_array_equal(f, f_cold)
    # a plain entry that is not the right one (other spots' features) is not taken
    bad_dir = tmp_path / "bad"
    im.section_features(p, c, backbone=pair, size=WIN, cache_dir=bad_dir)
    (npy,) = bad_dir.glob("*.npy")
    np.save(npy, np.zeros((4, plain.shape[1]), np.float32))
    f, info = im.section_features(p, c, backbone=pair, size=WIN, cache_dir=bad_dir, tta=True)
    assert not info["plain_reused"]
    np.testing.assert_array_equal(f, cold[0][0])


def test_reinhard_maps_a_section_to_the_target() -> None:
    w = im.extract_windows(he_like(2, shift=(-30, 10, 25)), random_centers(20, 5, margin=40), WIN)[0]
    target = im.StainTarget(mean=(55.0, 30.0, -15.0), std=(12.0, 8.0, 9.0))
    mu, sd, n = im.lab_stats(im.reinhard(w, target))
    assert n > 300
    np.testing.assert_allclose(mu, target.mean, atol=1.5)
    np.testing.assert_allclose(sd, target.std, rtol=0.15)
    with pytest.raises(DataError, match="tissue pixels"):
        im.lab_stats(np.full((3, WIN, WIN, 3), 250, np.uint8))


def test_stain_target_sees_train_sections_only(tmp_path: Path) -> None:
    a = make_adata(tmp_path)  # sections A and B; make A the train section, B the test section
    a.obs["split"] = np.where(a.obs["section"] == "A", "train", "test")
    for sec, seed in (("A", 3), ("B", 4)):
        write_png(Path(a.uns["spatial"][sec]["metadata"]["image_path"]), he_like(seed))
    t1 = im.fit_stain_target(a, size=WIN)
    assert t1.sections == ("A",) and t1.n_pixels > 0
    write_png(Path(a.uns["spatial"]["B"]["metadata"]["image_path"]), he_like(4, shift=(-40, 0, 40)))
    assert im.fit_stain_target(a, size=WIN) == t1  # the test image does not move the target
    write_png(Path(a.uns["spatial"]["A"]["metadata"]["image_path"]), he_like(3, shift=(-40, 0, 40)))
    assert im.fit_stain_target(a, size=WIN) != t1
    with pytest.raises(DataError, match="no sections"):
        im.fit_stain_target(a, fit_on="valid")


def test_stain_normalisation_removes_a_colour_cast(tmp_path: Path, tiny_model: Any) -> None:
    """The same tissue under two colour casts: normalised to one target, their features agree far
    better than without normalisation."""
    c = random_centers(30, 6, margin=40)
    pair = (tiny_model, tiny_preprocess)
    p1 = write_png(tmp_path / "a.png", he_like(5))
    p2 = write_png(tmp_path / "b.png", he_like(5, shift=(-35, 5, 30)))
    target = im.StainTarget(mean=(50.0, 35.0, -20.0), std=(15.0, 10.0, 10.0))
    raw = [im.section_features(p, c, backbone=pair, size=WIN)[0] for p in (p1, p2)]
    norm = [im.section_features(p, c, backbone=pair, size=WIN, stain=target)[0] for p in (p1, p2)]
    gap_raw = np.abs(raw[0] - raw[1]).mean()
    gap_norm = np.abs(norm[0] - norm[1]).mean()
    assert gap_norm < 0.3 * gap_raw, (gap_norm, gap_raw)


def test_cnn_features_records_the_views(tmp_path: Path, tiny_model: Any) -> None:
    a = make_adata(tmp_path)
    pair = (tiny_model, tiny_preprocess)
    im.cnn_features(a, backbone=pair, size=WIN, progress=False)
    im.cnn_features(a, backbone=pair, size=WIN, progress=False, tta=True, scales=(1, 2), key_added="X_cnn_tta")
    assert a.obsm["X_cnn_tta"].shape == (a.n_obs, 2 * a.obsm["X_cnn"].shape[1])
    meta = a.uns["cnn_features_X_cnn_tta"]
    assert meta["tta"] is True and meta["scales"] == [1.0, 2.0] and meta["stain"] is None
    assert a.uns["cnn_features"]["tta"] is False and a.uns["cnn_features"]["key_added"] == "X_cnn"
