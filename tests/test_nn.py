"""Tests of stlib.models.nn (the paper's simple neural network) and the shared Keras helpers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from stlib.errors import DataError
from stlib.models import ModelResult
from stlib.models import nn
from stlib.models.nn import fit_mlp

LRS = (1e-2, 1e-1)
KW = dict(learning_rates=LRS, epochs=15, patience=5, seed=0, hidden=32)


def _data(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = {s: rng.normal(size=(n, 8)) * 3 + 5 for s, n in [("train", 640), ("valid", 200), ("test", 40)]}

    def f(x: np.ndarray) -> np.ndarray:  # nonlinear: a linear model cannot beat the mean on genes 0-2
        z = (x - 5) / 3
        return np.column_stack([z[:, 0] ** 2, np.abs(z[:, 1]), np.maximum(z[:, 2], 0), np.tanh(2 * z[:, 3]), z[:, 4] ** 2 + z[:, 5]])

    return X, f(X["train"]), f(X["valid"])


@pytest.fixture(scope="module")
def runs() -> tuple[ModelResult, ModelResult, dict[str, np.ndarray]]:
    X, Ytr, Yva = _data()
    a = fit_mlp(X, Ytr, Yva, **KW)
    assert a.settings["lr"] == LRS[0]  # (the data are built so that the smaller lr wins)
    # second run, with only the chosen lr (each lr's model is seeded on its own, so it must be identical),
    # the test features changed, and the original test features as an extra split
    X2 = {**X, "test": X["test"] + 7.0, "test_orig": X["test"].copy()}
    b = fit_mlp(X2, Ytr, Yva, **{**KW, "learning_rates": LRS[:1]})
    return a, b, {"Yva": Yva, "Ytr": Ytr}


def test_learns_better_than_mean(runs) -> None:
    a, _, d = runs
    assert set(a.predictions) == {"train", "valid", "test"}
    assert a.predictions["valid"].shape == (200, 5) and a.predictions["test"].shape == (40, 5)
    mse = np.mean((a.predictions["valid"] - d["Yva"]) ** 2)
    mse_mean = np.mean((d["Ytr"].mean(0) - d["Yva"]) ** 2)
    assert mse < 0.5 * mse_mean


def test_lr_choice_and_restored_weights(runs) -> None:
    a, _, d = runs
    s = a.settings
    assert s["learning_rates"] == list(LRS)
    assert s["lr"] == LRS[int(np.argmin(s["best_val_loss"]))]
    # the returned model is the restored best one: its valid MSE is the chosen lr's best val loss
    mse = np.mean((a.predictions["valid"] - d["Yva"]) ** 2)
    assert mse == pytest.approx(min(s["best_val_loss"]), rel=1e-4)
    json.dumps(s, allow_nan=False)
    h = a.history
    assert list(h.columns) == ["lr", "epoch", "loss", "val_loss", "mae", "val_mae"]
    for lr, best, best_epoch, run in zip(LRS, s["best_val_loss"], s["best_epoch"], s["epochs_run"], strict=True):
        hl = h[h.lr == lr]
        assert len(hl) == run and list(hl.epoch) == list(range(1, run + 1))
        assert hl.val_loss.min() == pytest.approx(best, rel=1e-6)
        assert int(hl.epoch[hl.val_loss.idxmin()]) == best_epoch
    # the authors' network: two hidden layers, each followed by dropout
    assert s["architecture"] == ["input(8)", "dense(32, relu)", "dropout(0.5)",
                                 "dense(32, relu)", "dropout(0.5)", "dense(5, linear)"]


def test_deterministic_and_test_features_only_change_test(runs) -> None:
    a, b, _ = runs
    for s in ("train", "valid"):
        np.testing.assert_array_equal(a.predictions[s], b.predictions[s])
    np.testing.assert_array_equal(a.predictions["test"], b.predictions["test_orig"])
    assert not np.allclose(a.predictions["test"], b.predictions["test"])
    assert b.settings["best_val_loss"] == a.settings["best_val_loss"][:1]
    assert b.history.equals(a.history[a.history.lr == LRS[0]])


def test_bad_input() -> None:
    X, Ytr, Yva = _data()
    with pytest.raises(DataError, match="valid"):
        fit_mlp({"train": X["train"]}, Ytr, Yva)
    with pytest.raises(DataError, match="Y_valid"):
        fit_mlp(X, Ytr, Yva[:-1])
    with pytest.raises(DataError, match="non-finite"):
        fit_mlp({**X, "test": np.full((3, 8), np.nan)}, Ytr, Yva)
    with pytest.raises(DataError, match="columns"):
        fit_mlp({**X, "test": X["test"][:, :7]}, Ytr, Yva)


def test_import_is_lazy() -> None:
    code = "import sys, stlib, stlib.models.nn, stlib.models.gnn; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_built_model_has_the_authors_two_hidden_layers() -> None:
    from stlib.models.nn import build_mlp

    m = build_mlp(64, 250)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.units for layer in m.layers if type(layer).__name__ == "Dense"] == [64, 64, 250]


def test_per_lr_fits_are_independent_and_choose_lr_picks_the_lowest_valid_loss() -> None:
    from stlib.models.nn import choose_lr, fit_mlp_per_lr

    X, Ytr, Yva = _data()
    d = {"Ytr": Ytr, "Yva": Yva}
    both = fit_mlp_per_lr(X, d["Ytr"], d["Yva"], learning_rates=(1e-3, 1e-2), epochs=5, hidden=8, seed=0)
    alone = fit_mlp_per_lr(X, d["Ytr"], d["Yva"], learning_rates=(1e-2,), epochs=5, hidden=8, seed=0)
    np.testing.assert_array_equal(both[1e-2].predictions["valid"], alone[1e-2].predictions["valid"])
    chosen = choose_lr(both)
    best = min(both, key=lambda lr: both[lr].settings["best_val_loss"])
    assert chosen.settings["lr"] == best and chosen.settings["learning_rates"] == [1e-3, 1e-2]
    np.testing.assert_array_equal(chosen.predictions["valid"], both[best].predictions["valid"])
    unscaled = fit_mlp_per_lr(X, d["Ytr"], d["Yva"], learning_rates=(1e-2,), epochs=5, hidden=8, seed=0, scale=False)
    assert unscaled[1e-2].settings["feature_scaling"].startswith("none")


def test_networks_compute_in_float64_whatever_was_built_before() -> None:
    # float32 training amplifies round-off into other early-stopping epochs on other CPUs (stlib._compat.FLOATX)
    import keras

    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    keras.layers.Dense(2)  # a layer built before stlib imports TensorFlow fixes Keras's policy
    model = nn.build_mlp(4, 3)
    assert {w.dtype for w in model.weights} == {"float64"}
    assert np.asarray(model(np.zeros((1, 4)))).dtype == np.float64
