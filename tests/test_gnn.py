"""Tests of stlib.models.gnn (the paper's KNN-pooled GraphSAGE-style network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression

from stlib.errors import DataError
from stlib.models import ModelResult
from stlib.models.gnn import (
    PAPER_CONFIG,
    SectionGraph,
    build_gnn,
    fit_gnn,
    fit_gnn_paper_and_best,
    knn_adjacency,
    two_hop_index,
)

K = 6
GRID = {"lr": [1e-2], "dropout": [0.1]}  # + the paper config = 2 candidates
KW = dict(grid=GRID, epochs=30, patience=10, batch_size=32, seed=0)


def _row_normalised(A: sp.csr_matrix) -> np.ndarray:
    """Dense D^-1 A; a node without neighbours averages over itself."""
    P = A.toarray().astype(float)
    deg = P.sum(1)
    P[deg == 0, np.flatnonzero(deg == 0)] = 1.0
    return P / P.sum(1, keepdims=True)


def _random_graph(rng: np.random.Generator, n: int = 12) -> sp.csr_matrix:
    A = (rng.random((n, n)) < 0.3).astype(np.float32)
    np.fill_diagonal(A, 0)
    A[3] = 0  # an isolated node (no out-neighbours)
    return sp.csr_matrix(A)


# ---------------------------------------------------------------- graph construction
def test_knn_adjacency_directed_k_per_row_no_self() -> None:
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.normal(size=(30, 2)), [[50.0, 50.0]]])  # an outlier far from everyone
    A = knn_adjacency(coords, k=5)
    assert A.shape == (31, 31)
    assert np.all(np.diff(A.indptr) == 5) and A.diagonal().sum() == 0
    D = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    for i in range(31):
        assert set(A[i].indices) == set(np.argsort(D[i])[:5])
    assert (A != A.T).nnz > 0  # directed: the outlier's neighbours do not have it as a neighbour
    assert A[30].nnz == 5 and A[:, 30].nnz == 0
    # coincident spots: still no self loop, still k neighbours
    B = knn_adjacency(np.zeros((8, 2)), k=3)
    assert B.diagonal().sum() == 0 and np.all(np.diff(B.indptr) == 3)
    with pytest.raises(DataError):
        knn_adjacency(coords[:5], k=5)


def test_two_hop_index_equals_dense_aggregation() -> None:
    rng = np.random.default_rng(1)
    A = _random_graph(rng)
    X = rng.normal(size=(12, 4))
    P = _row_normalised(A)
    ix = two_hop_index(A, K=int(np.diff(A.indptr).max()) + 2, offset=5)  # extra padding on purpose
    Xo = np.vstack([rng.normal(size=(5, 4)), X])  # the section sits at offset 5 of a bigger table
    np.testing.assert_array_equal(ix["self"], np.arange(5, 17))
    mean1 = (Xo[ix["n1"]] * ix["m1"][..., None]).sum(1) / ix["m1"].sum(1, keepdims=True)
    np.testing.assert_allclose(mean1, P @ X, atol=1e-12)
    mean2 = (Xo[ix["n2"]] * ix["m2"][..., None]).sum(2) / ix["m2"].sum(2)[..., None]
    real = ix["m1"] > 0
    np.testing.assert_allclose(mean2[real], (P @ X)[ix["n1"] - 5][real], atol=1e-12)
    with pytest.raises(DataError):
        two_hop_index(A, K=1)


def test_model_forward_equals_dense_graphsage() -> None:
    """The Keras model (inference mode) equals relu(BN(W [h, P h])) twice + linear, written with dense P."""
    rng = np.random.default_rng(2)
    A = _random_graph(rng)
    X = rng.normal(size=(12, 4)).astype(np.float32)
    P = _row_normalised(A)
    model = build_gnn(X, n_genes=3, hidden=5, dropout=0.5)
    inputs = two_hop_index(A)
    model(inputs)  # build
    for bn in (model.bn1, model.bn2):  # non-trivial BN statistics and affine parameters
        for w in (bn.gamma, bn.beta, bn.moving_mean):
            w.assign(rng.normal(size=w.shape).astype(np.float32))
        bn.moving_variance.assign(rng.uniform(0.5, 2, size=bn.moving_variance.shape).astype(np.float32))
    got = np.asarray(model(inputs, training=False))

    def layer(h: np.ndarray, dense, bn) -> np.ndarray:
        W, b = (np.asarray(v, dtype=float) for v in dense.weights)
        z = np.hstack([h, P @ h]) @ W + b
        g, be, mm, mv = (np.asarray(v, dtype=float) for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
        return np.maximum(g * (z - mm) / np.sqrt(mv + bn.epsilon) + be, 0)

    h2 = layer(layer(X.astype(float), model.dense1, model.bn1), model.dense2, model.bn2)
    W, b = (np.asarray(v, dtype=float) for v in model.out.weights)
    np.testing.assert_allclose(got, h2 @ W + b, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- fitting
class _TrapY(SectionGraph):
    """A test section whose targets raise if anyone reads them."""

    @property  # type: ignore[override]
    def y(self):
        raise AssertionError("test targets were read")

    @y.setter
    def y(self, value) -> None:
        pass


def _section(rng: np.random.Generator, cls=SectionGraph) -> SectionGraph:
    coords = np.array([(i, j) for i in range(6) for j in range(10)], float) + rng.normal(scale=0.2, size=(60, 2))
    A = knn_adjacency(coords, k=K)
    x = rng.normal(size=(60, 8))
    y = 3 * _row_normalised(A) @ x[:, :5]  # each gene = a neighbours' mean of one feature
    return cls(x=x, adjacency=A, y=y, section=f"s{rng.integers(1000)}")


@pytest.fixture(scope="module")
def data() -> dict[str, list[SectionGraph]]:
    rng = np.random.default_rng(3)
    graphs = {"train": [_section(rng) for _ in range(3)], "valid": [_section(rng)], "test": [_section(rng) for _ in range(2)]}
    graphs["test"] = [_TrapY(g.x, g.adjacency, g.y) for g in graphs["test"]]
    return graphs


@pytest.fixture(scope="module")
def runs(data) -> tuple[ModelResult, ModelResult, ModelResult]:
    paper, chosen = fit_gnn_paper_and_best(data, **KW)
    # rerun of the paper configuration alone (each candidate is seeded on its own, so it must be identical),
    # with the second test section's features changed and the original test sections as an extra split
    t0, t1 = data["test"]
    changed = {**data, "test": [SectionGraph(t0.x, t0.adjacency, None), SectionGraph(t1.x * -2 + 1, t1.adjacency, None)],
               "test_orig": [SectionGraph(t0.x, t0.adjacency, None), SectionGraph(t1.x, t1.adjacency, None)]}
    again = fit_gnn(changed, **{**KW, "grid": {}})
    return paper, chosen, again


def test_learns_neighbour_dependent_target(data, runs) -> None:
    _, chosen, _ = runs
    Xtr = np.vstack([g.x for g in data["train"]])
    Ytr = np.vstack([g.y for g in data["train"]])
    xva, yva = data["valid"][0].x, data["valid"][0].y
    mse = np.mean((chosen.predictions["valid"] - yva) ** 2)
    mse_mean = np.mean((Ytr.mean(0) - yva) ** 2)
    mse_node = np.mean((LinearRegression().fit(Xtr, Ytr).predict(xva) - yva) ** 2)
    assert mse < 0.5 * min(mse_mean, mse_node), (mse, mse_mean, mse_node)
    assert chosen.predictions["train"].shape == (180, 5) and chosen.predictions["test"].shape == (120, 5)


def test_selection_settings_and_history(runs) -> None:
    paper, chosen, _ = runs
    s = chosen.settings
    losses = [c["best_val_loss"] for c in s["configs"]]
    assert len(losses) == 2 and s["configs"][1]["lr"] == 1e-2 and s["configs"][1]["dropout"] == 0.1
    assert {k: s["configs"][0][k] for k in PAPER_CONFIG} == PAPER_CONFIG
    assert s["chosen"] == {k: s["configs"][int(np.argmin(losses))][k] for k in PAPER_CONFIG}
    assert s["paper_val_loss"] == losses[0] and paper.settings["config"] == PAPER_CONFIG
    assert chosen.settings["config"] == s["chosen"]
    json.dumps(chosen.settings, allow_nan=False)
    assert s["n_nodes"] == {"train": 180, "valid": 60, "test": 120} and s["max_degree"]["train"] == K
    h = chosen.history
    assert list(h.columns) == ["config", "epoch", "loss", "val_loss", "mae", "val_mae"]
    for c in s["configs"]:
        hc = h[h.config == c["id"]]
        assert len(hc) == c["epochs_run"] and hc.val_loss.min() == pytest.approx(c["best_val_loss"], rel=1e-6)


def test_restored_best_weights(data, runs) -> None:
    paper, chosen, _ = runs
    yva = data["valid"][0].y
    for r in (paper, chosen):
        best = next(c["best_val_loss"] for c in r.settings["configs"] if {k: c[k] for k in PAPER_CONFIG} == r.settings["config"])
        assert np.mean((r.predictions["valid"] - yva) ** 2) == pytest.approx(best, rel=1e-4)


def test_deterministic_and_test_isolated(runs) -> None:
    paper, _, again = runs
    assert again.settings["config"] == PAPER_CONFIG and len(again.settings["configs"]) == 1
    for s in ("train", "valid"):
        np.testing.assert_array_equal(paper.predictions[s], again.predictions[s])
    np.testing.assert_array_equal(paper.predictions["test"], again.predictions["test_orig"])
    # only the changed second test section's predictions change
    np.testing.assert_array_equal(paper.predictions["test"][:60], again.predictions["test"][:60])
    assert not np.allclose(paper.predictions["test"][60:], again.predictions["test"][60:])
    assert again.history.equals(paper.history[paper.history.config == again.settings["chosen_id"]].reset_index(drop=True))


def test_bad_input(data) -> None:
    g = data["train"][0]
    with pytest.raises(DataError, match="valid"):
        fit_gnn({"train": data["train"]}, **KW)
    with pytest.raises(DataError, match="targets"):
        fit_gnn({**data, "valid": [SectionGraph(g.x, g.adjacency, None)]}, **KW)
    with pytest.raises(DataError, match="adjacency"):
        fit_gnn({**data, "valid": [SectionGraph(g.x, g.adjacency[:50, :50], g.y)]}, **KW)
    with pytest.raises(DataError, match="columns"):
        fit_gnn({**data, "test": [SectionGraph(g.x[:, :7], g.adjacency, None)]}, **KW)
    with pytest.raises(DataError, match="grid"):
        fit_gnn(data, grid={"units": [3]})


def test_grid_epochs_flag_and_edge_extension(data) -> None:
    """Grid configurations get their own epoch limit (the paper's keeps ``epochs``), a
    configuration still improving at its limit is flagged, and a choice at the edge of the
    tried learning rates is followed one step further."""
    from stlib.models.gnn import _edge_extensions

    kw = {**KW, "grid": {"lr": [1e-3, 1e-2], "dropout": [0.1]}, "epochs": 3, "patience": 50}
    _, chosen = fit_gnn_paper_and_best(data, **kw, grid_epochs=5, extend_edges=1)
    cfgs = chosen.settings["configs"]
    assert cfgs[0]["max_epochs"] == 3 and all(c["max_epochs"] == 5 for c in cfgs[1:])
    assert all(c["still_improving"] == (c["epochs_run"] >= c["max_epochs"] and c["best_epoch"] > c["max_epochs"] - 50)
               for c in cfgs)
    assert cfgs[0]["still_improving"]  # 3 epochs with patience 50: cut short
    ext = chosen.settings["extended"]
    assert chosen.settings["extension_rounds"] == 1 and [c["round"] for c in cfgs].count(1) == len(ext)
    best0 = min(cfgs[:-len(ext) or None], key=lambda c: c["best_val_loss"]) if ext else None
    if ext:  # the step beyond the edge where the round-0 best sat
        assert all(c in _edge_extensions({k: best0[k] for k in PAPER_CONFIG},
                                         [{k: c[k] for k in PAPER_CONFIG} for c in cfgs[:-len(ext)]]) for c in ext)
    # the extension rule itself
    tried = [{"hidden": h, "lr": lr, "dropout": 0.5, "optimizer": "nadam"} for h in (32, 64) for lr in (1e-3, 1e-2)]
    top = {"hidden": 64, "lr": 1e-2, "dropout": 0.5, "optimizer": "nadam"}
    assert _edge_extensions(top, tried) == [{**top, "hidden": 128}, {**top, "lr": 0.1}]
    low = {"hidden": 32, "lr": 1e-3, "dropout": 0.5, "optimizer": "nadam"}
    assert _edge_extensions(low, tried) == [{**low, "hidden": 16}, {**low, "lr": 1e-4}]
    assert _edge_extensions({**top, "hidden": 48}, tried + [{**top, "hidden": 48}]) == [{**top, "hidden": 48, "lr": 0.1}]


def test_configurations_on_worker_processes_equal_in_process(data, runs) -> None:
    """The grid's configurations fitted side by side on two worker processes give the in-process fits bit for bit."""
    import pandas as pd

    paper, chosen, _ = runs
    paper2, chosen2 = fit_gnn_paper_and_best(data, **KW, n_jobs=2)
    for a, b in ((paper, paper2), (chosen, chosen2)):
        assert a.predictions.keys() == b.predictions.keys()
        for s in a.predictions:
            np.testing.assert_array_equal(a.predictions[s], b.predictions[s])
        assert a.settings == b.settings
        pd.testing.assert_frame_equal(a.history, b.history)
