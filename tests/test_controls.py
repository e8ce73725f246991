"""Chapter 9's controls: random backbones are one fixed network; targets keep their features."""

from __future__ import annotations

import numpy as np
import pytest

from stlib import controls
from tests.test_leakage import _synthetic


def test_random_backbone_is_seeded() -> None:
    from stlib.im import _weights_digest, get_backbone
    from stlib.models._keras import import_keras

    _, keras = import_keras()
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
