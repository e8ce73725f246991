"""The HEST-Benchmark probe: standardise, PCA on train, ridge chosen by section-grouped CV."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib.models import probe
from stlib.models.linear import grid_edges


def _data(seed: int = 0, p: int = 60, g: int = 5):
    """Three train sections, a valid and a test one. Features are noisy views of 5 latent
    factors; genes 0-3 depend on the factors, gene 4 is noise."""
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(5, p))
    B = np.zeros((5, g))
    B[:, :4] = rng.normal(size=(5, 4))
    n = {"train": 240, "valid": 60, "test": 60}
    Z = {s: rng.normal(size=(k, 5)) for s, k in n.items()}
    X = {s: z @ L + 0.5 * rng.normal(size=(len(z), p)) + 1.0 for s, z in Z.items()}
    Y = {s: z @ B * 0.5 + rng.normal(scale=0.5, size=(len(z), g)) for s, z in Z.items()}
    groups = np.repeat(["S1", "S2", "S3"], 80)
    return X, Y, groups


def test_probe_predicts_signal_and_shrinks_noise() -> None:
    X, Y, groups = _data()
    res = probe.fit_probe(X, Y["train"], groups, n_components=20)
    assert res.settings["n_components"] == 20 and res.settings["leaks"] == []
    pcc = [np.corrcoef(res.predictions["test"][:, j], Y["test"][:, j])[0, 1] for j in range(4)]
    assert min(pcc) > 0.5
    alpha = res.per_gene["alpha"].to_numpy()
    assert alpha[4] == max(probe.PROBE_ALPHAS) and alpha[:4].max() < alpha[4]  # noise -> top of the grid
    assert np.std(res.predictions["test"][:, 4]) < 0.05 * np.std(res.predictions["test"][:, 0])
    e = grid_edges(res)
    assert e["genes"] == 5 and e["at highest"] >= 1


def test_probe_equals_its_recipe_with_the_chosen_penalty() -> None:
    X, Y, groups = _data(1)
    res = probe.fit_probe(X, Y["train"], groups, n_components=16, per_gene=False)
    a = res.per_gene["alpha"].iloc[0]
    assert (res.per_gene["alpha"] == a).all()
    sc = StandardScaler().fit(X["train"])
    pca = PCA(n_components=16, svd_solver="full").fit(sc.transform(X["train"]))
    ref = Ridge(alpha=a).fit(pca.transform(sc.transform(X["train"])), Y["train"])
    np.testing.assert_allclose(res.predictions["test"], ref.predict(pca.transform(sc.transform(X["test"]))), atol=1e-8)


def test_cv_is_grouped_by_section_and_refits_inside_folds() -> None:
    """Each fold holds out one whole section: the CV error of a section-specific offset that
    the features cannot see is large, whereas a spot-level split would hide it."""
    X, Y, groups = _data(2)
    shifted = Y["train"].copy()
    for k, s in enumerate(["S1", "S2", "S3"]):
        shifted[groups == s] += 3.0 * k
    mse = probe.grouped_cv_mse(X["train"], shifted, groups, (1.0,), n_components=10)
    assert mse.shape == (1, 5) and (mse > 2.0).all()  # the held-out section's level is never seen
    with pytest.raises(DataError, match="at least 2"):
        probe.grouped_cv_mse(X["train"], Y["train"], np.repeat("S1", 240), (1.0,))


def test_probe_never_reads_valid_or_test_targets_and_is_deterministic() -> None:
    X, Y, groups = _data(3)
    a = probe.fit_probe(X, Y["train"], groups, n_components=12)
    X2 = dict(X, test=X["test"].copy())
    b = probe.fit_probe(X2, Y["train"], groups, n_components=12)
    np.testing.assert_array_equal(a.predictions["test"], b.predictions["test"])
    # test features change only test predictions; nothing fitted moves
    X3 = dict(X, test=X["test"] + 5.0)
    c = probe.fit_probe(X3, Y["train"], groups, n_components=12)
    np.testing.assert_array_equal(a.predictions["train"], c.predictions["train"])
    assert a.per_gene.equals(c.per_gene)


def test_bad_input() -> None:
    X, Y, groups = _data()
    with pytest.raises(DataError):
        probe.fit_probe({"test": X["test"]}, Y["train"], groups)
    with pytest.raises(DataError):
        probe.fit_probe(X, Y["train"][:10], groups)
    bad = dict(X, train=X["train"].copy())
    bad["train"][0, 0] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        probe.fit_probe(bad, Y["train"], groups)
    with pytest.raises(DataError, match="> 0"):
        probe.fit_probe(X, Y["train"], groups, alphas=(0.0, 1.0))


def test_cv_has_at_most_max_folds_of_whole_sections() -> None:
    """Up to MAX_FOLDS sections: one section per fold (leave-one-section-out); beyond, MAX_FOLDS
    folds that each hold out whole sections, so the cost grows with the spots."""
    from unittest import mock

    from sklearn.model_selection import GroupKFold

    X, Y, _ = _data(4)
    n = X["train"].shape[0]
    seen = []
    real = GroupKFold.split

    def spy(self, *a, **k):
        seen.append(self.n_splits)
        for fit_idx, held_idx in real(self, *a, **k):
            seen.append(len(set(groups[held_idx])))
            yield fit_idx, held_idx

    for n_sections, folds in ((3, 3), (probe.MAX_FOLDS, probe.MAX_FOLDS), (12, probe.MAX_FOLDS)):
        groups = np.array([f"S{i % n_sections}" for i in range(n)])
        seen.clear()
        with mock.patch.object(GroupKFold, "split", spy):
            probe.grouped_cv_mse(X["train"], Y["train"], groups, (1.0,), n_components=5)
        assert seen[0] == folds and len(seen) == 1 + folds
        assert sum(seen[1:]) == n_sections  # every section held out once, whole
