"""Tests of stlib.models.gnn_authors (the authors' own GNN, with and without their train-graph bug)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlib.errors import DataError
from stlib.models import ModelResult
from stlib.models.gnn_authors import BUG, SplitGraph, build_gnn_authors, fit_gnn_authors, mutual_edges

N = {"train": 120, "valid": 60, "test": 50}
D, GENES = 6, 4
KW = dict(hidden=(16, 16), dropout=0.1, lr=1e-2, batch_size=32, epochs=25, seed=0)  # small, learns fast


class _Trap:
    """Test targets that raise on any use."""

    def _boom(self, *args, **kwargs):
        raise AssertionError("test targets were read")

    __array__ = __len__ = __getitem__ = __iter__ = __bool__ = __float__ = _boom

    def __getattr__(self, name):
        raise AssertionError(f"test targets were read ({name})")


def _knn(x: np.ndarray, k: int = 4) -> sp.csr_matrix:
    """Directed kNN graph (no self), row i = the k nearest rows of row i."""
    dist = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nn = np.argsort(dist, axis=1)[:, :k]
    n = x.shape[0]
    return sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), nn.ravel())), shape=(n, n))


def _split(rng: np.random.Generator, n: int, W: np.ndarray, with_y: bool = True) -> SplitGraph:
    x = rng.normal(size=(n, D))
    y = x @ W + 0.1 * rng.normal(size=(n, GENES))
    return SplitGraph(x, mutual_edges(_knn(x)), y if with_y else _Trap())


@pytest.fixture(scope="module")
def data() -> dict[str, SplitGraph]:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(D, GENES))
    return {s: _split(rng, n, W, with_y=s != "test") for s, n in N.items()}


# ---------------------------------------------------------------- graph construction
def test_mutual_edges_hand_made_graph() -> None:
    A = sp.lil_matrix((5, 5))
    for i, j in [(0, 1), (1, 0), (0, 2), (2, 3), (3, 2), (4, 4), (1, 4), (4, 1)]:
        A[i, j] = 0.5
    A = sp.csr_matrix(A)
    A[3, 4] = 0.0  # explicit zeros are no edges
    A[4, 3] = 0.0
    assert A.nnz == 10
    expected = np.array([[1, 4, 3], [0, 1, 2]])  # pairs (0,1), (1,4), (2,3) once, as [source j, target i]
    for m in (A, A.toarray(), A.tocoo()):
        e = mutual_edges(m)
        assert e.dtype == np.int64
        np.testing.assert_array_equal(e, expected)
    np.testing.assert_array_equal(mutual_edges(A, both_directions=True),
                                  [[0, 1, 1, 2, 3, 4], [1, 0, 4, 3, 2, 1]])
    assert mutual_edges(sp.csr_matrix((3, 3))).shape == (2, 0)
    with pytest.raises(DataError):
        mutual_edges(np.ones((3, 4)))


def test_mutual_edges_equals_the_notebook_loop() -> None:
    rng = np.random.default_rng(1)
    D_ = _knn(rng.normal(size=(40, 3)), k=5).toarray() * rng.uniform(1, 2, size=(40, 40))  # "distances"
    names = [f"{i}x{j}" for i in range(5) for j in range(8)]
    df = pd.DataFrame(D_, index=names, columns=names)
    target, source = [], []
    for i in range(len(df)):  # get_X_y, verbatim
        for j in range(i + 1, len(df.columns)):
            if df.iloc[i, j] != 0 and df.iloc[j, i] != 0:
                target.append(df.index[i])
                source.append(df.columns[j])
    pos = {s: k for k, s in enumerate(names)}
    expected = np.array([[pos[s] for s in source], [pos[t] for t in target]])  # edges = [source, target]
    assert expected.shape[1] > 10
    np.testing.assert_array_equal(mutual_edges(sp.csr_matrix(D_)), expected)


# ---------------------------------------------------------------- model
def test_model_has_the_notebook_parameter_count() -> None:
    """gnn_model.summary() in GNN.ipynb: 24,798 parameters, 23,900 trainable (33 inputs, [32, 32], 250 genes)."""
    import tensorflow as tf

    model = build_gnn_authors(250)
    model({"x": tf.zeros((4, 33)), "edges": tf.constant([[1], [0]]), "weights": tf.constant([1.0]),
           "nodes": tf.constant([0])})
    assert model.count_params() == 24798
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 23900
    assert [lay.name for lay in model.layers] == ["preprocess", "graph_conv1", "graph_conv2", "postprocess", "output"]


def test_messages_flow_from_edges1_to_edges0() -> None:
    import tensorflow as tf

    model = build_gnn_authors(2, hidden=(4,))
    x = np.random.default_rng(2).normal(size=(3, 3)).astype(np.float32)
    edges = tf.constant([[1], [0]])  # one edge: node 0 sends to node 1

    def out(x):
        return model({"x": tf.constant(x), "edges": edges, "weights": tf.constant([1.0]),
                      "nodes": tf.range(3)}).numpy()

    base = out(x)
    x0 = x.copy()
    x0[0] += 5.0
    x1 = x.copy()
    x1[1] += 5.0
    assert not np.allclose(out(x0)[1], base[1])  # node 1 hears node 0
    np.testing.assert_array_equal(out(x1)[0], base[0])  # node 0 does not hear node 1
    np.testing.assert_array_equal(out(x1)[2], base[2])  # node 2 is isolated


# ---------------------------------------------------------------- fitting
@pytest.fixture(scope="module")
def sound(data) -> tuple[ModelResult, ModelResult]:
    first = fit_gnn_authors(data, **KW)
    t = data["test"]
    rng = np.random.default_rng(5)
    changed = {**data, "test": SplitGraph(t.x + rng.normal(size=t.x.shape), t.edges, None),
               "test_orig": SplitGraph(t.x, t.edges, _Trap())}
    return first, fit_gnn_authors(changed, **KW)


@pytest.fixture(scope="module")
def bug(data) -> ModelResult:
    return fit_gnn_authors(data, **{**KW, "patience": 2}, train_graph_bug=True)  # restore="early_stop"


def test_sound_result_and_settings(data, sound) -> None:
    r, _ = sound
    assert {s: p.shape for s, p in r.predictions.items()} == {s: (n, GENES) for s, n in N.items()}
    s = r.settings
    assert s["mode"] == "sound" and s["bug"] is None and s["n_nodes"] == N
    assert s["n_features"] == D + 1 and s["node_id_feature"] and s["feature_scaling"] == "none"
    assert s["epochs_run"] == 25 and not s["stopped_early"] and not s["restored_best"]
    json.dumps(s, allow_nan=False)
    h = r.history
    assert list(h.columns) == ["epoch", "loss", "val_loss", "mae", "val_mae", "rmse", "val_rmse"]
    assert h.epoch.tolist() == list(range(1, 26)) and s["best_epoch"] == int(h.val_rmse.idxmin()) + 1
    assert np.all(np.isfinite(h.to_numpy()))
    # not stopped early -> the notebook's Keras keeps the last epoch's weights
    mse = np.mean((r.predictions["valid"] - data["valid"].y) ** 2)
    assert mse == pytest.approx(h.val_loss.iloc[-1], rel=1e-5)


def test_deterministic_and_split_graphs_independent(sound) -> None:
    first, again = sound
    for s in ("train", "valid"):
        np.testing.assert_array_equal(first.predictions[s], again.predictions[s])
    np.testing.assert_array_equal(first.predictions["test"], again.predictions["test_orig"])
    assert not np.allclose(first.predictions["test"], again.predictions["test"])  # own features matter
    pd.testing.assert_frame_equal(first.history, again.history)


def test_bug_mode_reads_valid_and_test_off_the_train_graph(data, bug) -> None:
    r = bug
    P = r.predictions["train"]
    np.testing.assert_array_equal(r.predictions["valid"], P[:N["valid"]])
    np.testing.assert_array_equal(r.predictions["test"], P[:N["test"]])
    assert r.settings["mode"] == "train_graph_bug" and r.settings["bug"] == BUG
    # (so the valid/test features and edges are never used); early stopping saw the first n_valid train
    # nodes against the valid targets; patience 2 -> stopped early, best weights restored
    best = r.history.val_loss.iloc[r.settings["best_epoch"] - 1]
    assert np.mean((P[:N["valid"]] - data["valid"].y) ** 2) == pytest.approx(best, rel=1e-5)
    assert r.settings["restored_best"] and r.settings["best_val_loss"] == best
    assert r.settings["epochs_run"] == r.settings["best_epoch"] + 2 and r.settings["stopped_early"]


def test_learns_a_linear_target(data, sound) -> None:
    r, _ = sound
    yva = data["valid"].y
    mse = np.mean((r.predictions["valid"] - yva) ** 2)
    mse_mean = np.mean((data["train"].y.mean(0) - yva) ** 2)
    assert mse < 0.5 * mse_mean, (mse, mse_mean)


def test_bad_input(data) -> None:
    tr, va, te = data["train"], data["valid"], data["test"]

    def fit(**graphs):
        return fit_gnn_authors(graphs, epochs=1)

    cases = [
        dict(train=tr),  # no valid
        dict(train=tr, valid=SplitGraph(va.x[:, :3], va.edges, va.y)),  # feature count
        dict(train=tr, valid=SplitGraph(va.x, va.edges[:1], va.y)),  # edges not (2, E)
        dict(train=tr, valid=SplitGraph(va.x, va.edges.astype(float), va.y)),  # float edges
        dict(train=tr, valid=SplitGraph(va.x, va.edges + N["valid"], va.y)),  # out of range
        dict(train=tr, valid=SplitGraph(va.x, va.edges - N["valid"], va.y)),  # negative
        dict(train=tr, valid=SplitGraph(va.x, va.edges, None)),  # valid targets missing
        dict(train=tr, valid=SplitGraph(va.x, va.edges, va.y[:10])),  # target rows
        dict(train=tr, valid=SplitGraph(va.x, va.edges, va.y[:, :2])),  # gene count
        dict(train=SplitGraph(np.where(tr.x > 2, np.nan, tr.x), tr.edges, tr.y), valid=va),  # NaN
        dict(train=SplitGraph(tr.x, tr.edges[:, :0], tr.y), valid=va),  # train graph without edges
        dict(train=tr, valid=va, test=SplitGraph(te.x[:, :2], te.edges, None)),
    ]
    for graphs in cases:
        with pytest.raises(DataError):
            fit(**graphs)
    with pytest.raises(DataError, match="gene names"):
        fit_gnn_authors({"train": tr, "valid": va}, genes=["a"], epochs=1)
    with pytest.raises(DataError, match="more nodes than train"):  # the bug needs n_split <= n_train
        fit_gnn_authors({"train": va, "valid": tr}, train_graph_bug=True, epochs=1)
    with pytest.raises(DataError, match="restore"):
        fit_gnn_authors({"train": tr, "valid": va}, restore="never", epochs=1)  # type: ignore[arg-type]
