"""Chapter 9's controls: random backbones are one fixed network; targets keep their features."""

from __future__ import annotations

import numpy as np
import pytest

from stlib.book import controls, scoring
from tests.test_leakage import _synthetic


def test_random_backbone_is_seeded() -> None:
    from stlib.im import get_backbone
    from stlib.im._features import _weights_digest
    from stlib._compat import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(1)
    a, _ = get_backbone("mobilenet_v2", None)
    keras.utils.set_random_seed(2)  # a different global state must not matter
    b, _ = get_backbone("mobilenet_v2", None)
    assert _weights_digest(a) == _weights_digest(b)


def test_targets_with_features_both_transforms() -> None:
    data = _synthetic()
    feats = data.copy()
    feats.obsm["X_graph_svd"] = np.arange(data.n_obs * 2, dtype=float).reshape(-1, 2)
    t1 = controls.targets_with_features(data, feats, "log1p", n_genes=10)
    t2 = controls.targets_with_features(data, feats, "normalize_log1p", n_genes=10)
    assert t1.uns["target"]["transform"] == "log1p" and t2.uns["target"]["transform"] == "normalize_log1p"
    np.testing.assert_array_equal(t2.obsm["X_graph_svd"], feats.obsm["X_graph_svd"])
    assert not np.allclose(t1.X[:, :3], t2.X[:, :3])
    with pytest.raises(ValueError, match="different spots"):
        controls.targets_with_features(data, feats[::-1].copy(), "log1p", n_genes=10)


def test_partial_pearson_removes_a_shared_covariate() -> None:
    """y and p share only depth: their plain correlation is high, the partial one about zero; a
    prediction that is a line in depth (stored as float32) and a constant have none."""
    from stlib.book.controls import partial_pearson

    rng = np.random.default_rng(0)
    z = rng.normal(size=2000)
    own = rng.normal(size=2000)
    y = np.column_stack([z + rng.normal(size=2000), z + own, z + rng.normal(size=2000), z])
    p = np.column_stack([z + rng.normal(size=2000), own + rng.normal(scale=0.5, size=2000),
                         (0.3 + 2.0 * z).astype(np.float32), np.ones(2000)])
    r = partial_pearson(y, p, z)
    assert np.corrcoef(y[:, 0], p[:, 0])[0, 1] > 0.4 and abs(r[0]) < 0.06
    assert r[1] > 0.8  # the part beyond depth is kept
    assert np.isnan(r[2]) and np.isnan(r[3])
    # equals the textbook formula from the three pairwise correlations
    c = np.corrcoef(np.column_stack([y[:, 1], p[:, 1], z]).T)
    expect = (c[0, 1] - c[0, 2] * c[1, 2]) / np.sqrt((1 - c[0, 2] ** 2) * (1 - c[1, 2] ** 2))
    assert r[1] == pytest.approx(expect, abs=1e-10)


def test_depth_from_image_and_depth_partial_table() -> None:
    """Counts driven by the features make depth predictable from them; the table has a row per
    target-space model and no partial PCC for a depth-only prediction."""
    from stlib import pp
    from stlib.models._base import ModelResult

    a = _synthetic(0)
    genes = pp.select_genes(a, 10, n_mean=25, min_spots=1, rule="book", transform="log1p")
    t = pp.make_targets(a, genes, transform="log1p")
    t.obsm["X_cnn"] = a.obsm["X_cnn"]
    t.obsm["X_cnn_knn"] = a.obsm["X_cnn"] * 2
    d = controls.depth_from_image(t)
    assert set(d.index.get_level_values("split")) == {"train", "valid", "test"}
    assert d.loc[("X_cnn", "test"), "PCC"] > 0.3  # depth follows the features (through the rates)
    Y = {s: np.asarray(t.X[(t.obs["split"] == s).to_numpy()]) for s in ("train", "valid", "test")}
    logd = {s: np.log(t.obs.loc[(t.obs["split"] == s).to_numpy(), "total_counts"].to_numpy()) for s in Y}
    depth = ModelResult("depth_only", {s: np.outer(logd[s], np.ones(len(genes))) for s in Y})
    good = ModelResult("good", {s: y + 0.1 for s, y in Y.items()})
    from tests.test_ceiling_tables import _as_file

    table = controls.depth_partial(t, {r.name: _as_file(r, t) for r in (depth, good)})
    assert table.loc["depth_only", ("genes with a partial PCC", "test")] == 0
    assert table.loc["good", ("PCC, depth removed", "test")] == pytest.approx(1.0)
    assert table.loc["good", ("lo", "test")] <= table.loc["good", ("PCC, depth removed", "test")] <= \
        table.loc["good", ("hi", "test")]
    # the book's rule: a gene with nothing beyond depth counts as 0, so every model has the same genes
    before = scoring.interval_rule()
    try:
        scoring.set_interval_rule({"constant": "zero"})
        zero = controls.depth_partial(t, {r.name: _as_file(r, t) for r in (depth, good)}, n_boot=50)
    finally:
        scoring.set_interval_rule(before)
    assert zero.loc["depth_only", ("PCC, depth removed", "test")] == 0.0
    assert np.isnan(table.loc["depth_only", ("PCC, depth removed", "test")])
