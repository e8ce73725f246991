"""The fine-tuned CNN: a clean cut of the network, seeded training, no test leakage."""

from __future__ import annotations

import numpy as np
import pytest

from stlib.errors import DataError
from stlib.models import finetune


def data(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = {"train": 12, "valid": 4, "test": 4}
    windows = {s: rng.integers(0, 255, (k, 224, 224, 3), dtype=np.uint8) for s, k in n.items()}
    # a learnable target: the mean brightness of the window's centre, plus noise, for 3 genes
    Y = {s: np.column_stack([w[:, 80:144, 80:144].mean(axis=(1, 2, 3)) / 50 + rng.normal(0, 0.1, len(w))
                             for _ in range(3)]) for s, w in windows.items()}
    return windows, Y


VIEWS = {"weights": None, "n_views": 2, "batch_size": 8}
FIT = {"epochs": 3, "patience": 2, "batch_size": 8}


def test_split_network_is_a_clean_cut() -> None:
    from stlib.im import get_backbone

    model, prep = get_backbone("mobilenet_v2", None)
    frozen, trainable = finetune.split_network(model, finetune.FIRST_TRAINABLE)
    x = prep(np.random.default_rng(1).integers(0, 255, (2, 224, 224, 3)).astype(np.float32))
    np.testing.assert_allclose(np.asarray(trainable(frozen(x))), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert frozen.output.shape[1:] == (7, 7, 160)
    with pytest.raises(DataError, match="block starts"):
        finetune.split_network(model, "block_99_expand")


def test_finetune_is_seeded_and_blind_to_test() -> None:
    windows, Y = data()
    views = finetune.prepare_views(windows, seed=0, **VIEWS)
    assert views.train.shape[:2] == (2, 12) and views.eval["test"].shape[:2] == (1, 4)
    again = finetune.prepare_views(windows, seed=0, **VIEWS)
    np.testing.assert_array_equal(again.train, views.train)  # seeded jitter and views
    yt = {s: Y[s] for s in ("train", "valid")}
    a = finetune.finetune_cnn(views, yt, seed=0, **FIT)
    b = finetune.finetune_cnn(again, yt, seed=0, **FIT)
    for s in windows:
        np.testing.assert_array_equal(a.predictions[s], b.predictions[s])
        assert a.predictions[s].shape == (len(windows[s]), 3)
    assert 1 <= a.settings["epochs_run"] <= 3 and len(a.history) == a.settings["epochs_run"]
    # the weights of the best epoch are kept: its valid loss is the predictions' valid loss
    z = (Y["valid"] - Y["train"].mean(0)) / Y["train"].std(0)
    zp = (a.predictions["valid"] - Y["train"].mean(0)) / Y["train"].std(0)
    assert np.mean((zp - z) ** 2) == pytest.approx(a.history["val_loss"].min(), rel=1e-4)
    other = finetune.prepare_views(dict(windows, test=windows["test"][::-1].copy()), seed=0, **VIEWS)
    c = finetune.finetune_cnn(other, yt, seed=0, **FIT)  # other test windows: only the test predictions move
    np.testing.assert_array_equal(c.predictions["valid"], a.predictions["valid"])
    np.testing.assert_allclose(c.predictions["test"], a.predictions["test"][::-1], rtol=1e-6)
    d = finetune.finetune_cnn(views, yt, seed=1, **FIT)
    assert not np.array_equal(d.predictions["test"], a.predictions["test"])


def test_finetune_tta_and_bad_input() -> None:
    windows, Y = data(1)
    views = finetune.prepare_views(windows, tta=True, seed=0, **dict(VIEWS, n_views=1))
    assert views.eval["valid"].shape[0] == 8
    r = finetune.finetune_cnn(views, Y, seed=0, **dict(FIT, epochs=1))
    assert r.settings["tta"] is True and np.all(np.isfinite(r.predictions["test"]))
    head = finetune.finetune_cnn(views, Y, seed=0, train_blocks=False, **dict(FIT, epochs=1))
    assert head.settings["n_trainable_weights"] == 1280 * 3 + 3  # the linear head alone
    plain = finetune.prepare_views(windows, seed=0, eval_from=views, **dict(VIEWS, n_views=1))
    assert plain.eval is views.eval and plain.settings["tta"] is True
    with pytest.raises(DataError, match="no train or no valid"):
        finetune.prepare_views({"train": windows["train"]}, **VIEWS)
    with pytest.raises(DataError, match="224, 224, 3"):
        finetune.prepare_views(dict(windows, train=windows["train"][:, :100]), **VIEWS)
    with pytest.raises(DataError, match="rows of targets"):
        finetune.finetune_cnn(views, dict(Y, train=Y["train"][:5]), **FIT)
