"""The paper's "KNN Pooled GNN": a two-layer GraphSAGE-style network on the spot graph.

Nodes are the spots of a section, edges go from each spot to its ``k = 15`` nearest spots in
the same section (:func:`knn_adjacency`), node inputs are the KNN-pooled image PCA features.
Each layer is ``h' = Dropout(ReLU(BatchNorm(Dense(concat(h, mean_{u in N(v)} h_u)))))`` with
the mean over the FULL neighbourhood (no neighbour sampling), followed by a linear
``Dense(n_genes)`` output.

Implementation: for every target node we precompute its exact 2-hop computation tree as index
arrays into one feature table -- the node, its neighbours ``(K,)`` and its neighbours'
neighbours ``(K, K)`` with masks (``K`` = largest degree in the split; shorter rows are padded
with the node itself and masked out of every mean). Layer 1 is applied with shared weights to
the node and to each of its neighbours, layer 2 combines ``h1(v)`` with ``mean_u h1(u)``. The
model is then a plain Keras model trained on mini-batches of target nodes
(:func:`stlib.models._keras.train`: ``train_on_batch`` with early stopping).

**What a batch of 128 means on a graph**: 128 target nodes (spots), each carrying its full
2-hop neighbourhood (which may include nodes outside the batch, including nodes of other
batches); the loss is the MSE over those 128 target nodes only. Batch normalisation statistics
of layer 1 are taken over the 128 nodes and their neighbour slots, those of layer 2 over the
128 nodes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_matrix
from stlib._parallel import map_processes
from stlib._compat import FLOAT, import_tf
from stlib.models._keras import label_history, loss_key, predict, set_seed, train

PAPER_CONFIG: dict[str, Any] = {"hidden": 32, "lr": 1e-3, "dropout": 0.8, "optimizer": "nadam"}
"""The paper's configuration: Nadam, learning rate 1e-3, dropout 0.8 (Keras rate = fraction dropped), 32 units."""

DEFAULT_GRID: dict[str, list[Any]] = {
    "hidden": [32, 64], "lr": [1e-3, 1e-2], "dropout": [0.2, 0.5, 0.8], "optimizer": ["nadam", "adam"],
}
"""Default hyper-parameter grid of :func:`fit_gnn` (24 configurations; the paper's is one of them)."""

_OPTIMIZERS = ("nadam", "adam")


@dataclass
class SectionGraph:
    """One section as a graph.

    Parameters
    ----------
    x
        ``(n_i, d)`` node (spot) features.
    adjacency
        ``(n_i, n_i)`` sparse adjacency; row ``v`` lists the neighbours of ``v`` (directed; any
        non-zero is an edge, weights are ignored, the diagonal is ignored).
    y
        ``(n_i, n_genes)`` targets for train/valid sections; ``None`` for test sections
        (:func:`fit_gnn` never reads ``y`` of any split other than train and valid).
    section
        Optional section id, used in error messages.
    """

    x: np.ndarray
    adjacency: sp.csr_matrix
    y: np.ndarray | None = None
    section: str = ""


def knn_adjacency(coords: np.ndarray, k: int = 15) -> sp.csr_matrix:
    """Directed k-nearest-neighbour graph of the spots of one section.

    Row ``i`` has exactly ``k`` ones, at the ``k`` spots nearest to spot ``i`` (Euclidean, ties
    broken by scikit-learn's order), excluding ``i`` itself: "the 15 nearest spots of each spot".
    The graph is **not** symmetrised (``j`` in N(i) does not imply ``i`` in N(j)), as in the paper.

    Parameters
    ----------
    coords
        ``(n, 2)`` (or ``(n, p)``) spot coordinates of one section.
    k
        Number of neighbours; the section must have more than ``k`` spots.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n, n)`` float32 0/1 adjacency without self loops.
    """
    X = check_matrix(coords, "knn_adjacency(coords)")
    n = X.shape[0]
    if k < 1 or n <= k:
        raise DataError("knn_adjacency", f"need 1 <= k < n_spots, got k={k} with {n} spots")
    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    # drop each row's own index (not necessarily in column 0 when spots coincide), else the farthest
    is_self = idx == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), drop] = False
    cols = idx[keep].reshape(n, k)
    A = sp.csr_matrix((np.ones(n * k, FLOAT), cols.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    A.sort_indices()
    return A


def _clean_adjacency(adjacency: Any, n: int, where: str) -> tuple[sp.csr_matrix, int]:
    """Binary csr adjacency without diagonal; returns it and the number of self loops removed."""
    if not sp.issparse(adjacency):
        raise DataError(where, "adjacency must be a scipy.sparse matrix")
    A = sp.csr_matrix(adjacency)
    if A.shape != (n, n):
        raise DataError(where, f"adjacency has shape {A.shape}, expected ({n}, {n})")
    C = A.tocoo()
    nz = C.data != 0
    self_loops = int((nz & (C.row == C.col)).sum())
    keep = nz & (C.row != C.col)
    B = sp.csr_matrix((np.ones(int(keep.sum()), FLOAT), (C.row[keep], C.col[keep])), shape=(n, n))
    B.sum_duplicates()
    B.data[:] = 1.0
    B.sort_indices()
    return B, self_loops


def two_hop_index(adjacency: sp.csr_matrix, K: int | None = None, offset: int = 0) -> dict[str, np.ndarray]:
    """Index arrays of every node's exact 2-hop computation tree.

    Parameters
    ----------
    adjacency
        ``(n, n)`` binary csr adjacency without self loops (row ``v`` = neighbours of ``v``).
    K
        Width to pad to (default: the largest degree; must be >= it).
    offset
        Added to every index (position of this section in a concatenated feature table).

    Returns
    -------
    dict
        ``self`` ``(n,)``; ``n1`` ``(n, K)`` neighbour indices with ``m1`` ``(n, K)`` float32 mask;
        ``n2`` ``(n, K, K)`` neighbours' neighbour indices with ``m2`` ``(n, K, K)`` mask. Padded slots
        hold the node itself with mask 0. A node without neighbours gets itself as its only
        neighbour (mask 1), i.e. its neighbour mean is its own feature vector.
        ``masked_mean(X[n1], m1)`` equals ``D^-1 A X``; ``masked_mean(X[n2], m2, axis=2)`` equals
        ``(D^-1 A X)[n1]``.
    """
    A = sp.csr_matrix(adjacency)
    n = A.shape[0]
    deg = np.diff(A.indptr)
    kmax = max(int(deg.max(initial=0)), 1)
    K = kmax if K is None else int(K)
    if K < kmax:
        raise DataError("two_hop_index", f"K={K} is smaller than the largest degree {kmax}")
    nodes = np.arange(n)
    n1 = np.repeat(nodes[:, None], K, axis=1)
    m1 = np.zeros((n, K), FLOAT)
    rows = np.repeat(nodes, deg)
    pos = np.arange(A.indices.size) - np.repeat(A.indptr[:-1], deg)
    n1[rows, pos] = A.indices
    m1[rows, pos] = 1.0
    m1[deg == 0, 0] = 1.0
    n2, m2 = n1[n1], m1[n1]
    return {"self": (nodes + offset).astype(np.int32), "n1": (n1 + offset).astype(np.int32), "m1": m1,
            "n2": (n2 + offset).astype(np.int32), "m2": m2}


def build_gnn(table: np.ndarray, n_genes: int, *, hidden: int = 32, dropout: float = 0.8, lr: float = 1e-3,
              optimizer: str = "nadam") -> Any:
    """Build and compile the two-layer mean-aggregator GNN over a fixed feature ``table``.

    The model's input is a dict of :func:`two_hop_index` arrays (indices into ``table``); its
    layers are ``dense1, bn1, drop1`` (layer 1, shared by node and neighbours), ``dense2, bn2,
    drop2`` (layer 2) and ``out``. Loss MSE, metric MAE; weights follow the current seed.

    Parameters
    ----------
    table
        ``(n_nodes, d)`` node features of every split, stored in the model as a constant.
    n_genes
        Width of the linear output layer.
    hidden
        Units of each of the two graph layers.
    dropout
        Dropout rate after each graph layer (fraction dropped).
    lr
        Learning rate of the optimizer.
    optimizer
        ``"nadam"`` or ``"adam"`` (else a :class:`~stlib.errors.DataError`).

    Returns
    -------
    keras.Model
        The compiled, untrained model; called on a batch of :func:`two_hop_index` arrays it
        returns ``(batch, n_genes)`` predictions.
    """
    tf, keras = import_tf()
    ops, layers = keras.ops, keras.layers
    table_t = tf.constant(np.asarray(table, FLOAT))

    def masked_mean(x: Any, m: Any, axis: int) -> Any:
        m = ops.expand_dims(m, -1)
        return ops.sum(x * m, axis=axis) / ops.sum(m, axis=axis)

    class MeanSAGE(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense1, self.bn1, self.drop1 = layers.Dense(hidden), layers.BatchNormalization(), layers.Dropout(dropout)
            self.dense2, self.bn2, self.drop2 = layers.Dense(hidden), layers.BatchNormalization(), layers.Dropout(dropout)
            self.out = layers.Dense(n_genes)

        def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
            m1, m2 = inputs["m1"], inputs["m2"]
            xs = ops.take(table_t, inputs["self"], axis=0)  # (B, d)
            x1 = ops.take(table_t, inputs["n1"], axis=0)  # (B, K, d)
            x2 = ops.take(table_t, inputs["n2"], axis=0)  # (B, K, K, d)
            h = ops.concatenate([ops.expand_dims(xs, 1), x1], axis=1)  # node + neighbours (B, 1+K, d)
            agg = ops.concatenate([ops.expand_dims(masked_mean(x1, m1, 1), 1), masked_mean(x2, m2, 2)], axis=1)
            h1 = self.drop1(ops.relu(self.bn1(self.dense1(ops.concatenate([h, agg], -1)), training=training)),
                            training=training)  # (B, 1+K, H)
            z2 = ops.concatenate([h1[:, 0], masked_mean(h1[:, 1:], m1, 1)], axis=-1)
            h2 = self.drop2(ops.relu(self.bn2(self.dense2(z2), training=training)), training=training)
            return self.out(h2)

    if optimizer not in _OPTIMIZERS:
        raise DataError("build_gnn", f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    opt = (keras.optimizers.Nadam if optimizer == "nadam" else keras.optimizers.Adam)(learning_rate=lr)
    model = MeanSAGE()
    model.compile(optimizer=opt, loss="mse", metrics=["mae"])
    return model


def _edge_extensions(best: dict[str, Any], tried: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configurations one step beyond the tried range of ``hidden`` and ``lr`` where ``best`` sits
    at its edge (the step is the ratio of the two values nearest that edge)."""
    out = []
    for key in ("hidden", "lr"):
        values = sorted({c[key] for c in tried})
        if len(values) < 2 or best[key] not in (values[0], values[-1]):
            continue
        if best[key] == values[-1]:
            new = values[-1] * values[-1] / values[-2]
        else:
            new = values[0] * values[0] / values[1]
        c = {**best, key: int(round(new)) if key == "hidden" else float(f"{new:.6g}")}
        if c not in tried and c not in out and c["hidden"] >= 1:
            out.append(c)
    return out


def _candidates(grid: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Paper config first, then the grid's product (keys missing from ``grid`` take the paper value)."""
    grid = DEFAULT_GRID if grid is None else grid
    unknown = set(grid) - set(PAPER_CONFIG)
    if unknown:
        raise DataError("grid", f"unknown keys {sorted(unknown)}; allowed {sorted(PAPER_CONFIG)}")
    axes = {k: list(grid.get(k, [v])) for k, v in PAPER_CONFIG.items()}
    out = [dict(PAPER_CONFIG)]
    for values in itertools.product(*axes.values()):
        c = {"hidden": int(values[0]), "lr": float(values[1]), "dropout": float(values[2]), "optimizer": str(values[3])}
        if c not in out:
            out.append(c)
    return out


def config_id(config: Mapping[str, Any]) -> str:
    """Readable id of a configuration, e.g. ``"hidden=32,lr=0.001,dropout=0.8,optimizer=nadam"``.

    Parameters
    ----------
    config
        A configuration with the keys ``hidden``, ``lr``, ``dropout`` and ``optimizer`` (as
        :data:`PAPER_CONFIG`).

    Returns
    -------
    str
        The id (``lr`` and ``dropout`` formatted with ``:g``), as in ``history["config"]``.
    """
    return f"hidden={config['hidden']},lr={config['lr']:g},dropout={config['dropout']:g},optimizer={config['optimizer']}"


def _prepare(graphs: Mapping[str, Sequence[SectionGraph]]) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]],
                                                                    dict[str, np.ndarray], dict[str, Any]]:
    """Validate, standardise on train, build the feature table, per-split index arrays and train/valid targets."""
    for split in ("train", "valid"):
        if not graphs.get(split):
            raise DataError("fit_gnn", f"no sections for split {split!r} (got {sorted(graphs)})")
    d = check_matrix(graphs["train"][0].x, "train[0].x").shape[1]
    xs: dict[str, list[np.ndarray]] = {}
    adjs: dict[str, list[sp.csr_matrix]] = {}
    targets: dict[str, np.ndarray] = {}
    self_loops = 0
    n_genes: int | None = None
    for split, sections in graphs.items():
        xs[split], adjs[split] = [], []
        ys = []
        for i, g in enumerate(sections):
            where = f"{split}[{i}]" + (f" ({g.section})" if g.section else "")
            x = check_matrix(g.x, f"{where}.x", n_cols=d)
            A, loops = _clean_adjacency(g.adjacency, x.shape[0], f"{where}.adjacency")
            xs[split].append(x)
            adjs[split].append(A)
            self_loops += loops
            if split in ("train", "valid"):  # targets of any other split are never read
                if g.y is None:
                    raise DataError(where, f"{split} sections need targets y")
                y = check_matrix(g.y, f"{where}.y", n_rows=x.shape[0], n_cols=n_genes)
                n_genes = y.shape[1]
                ys.append(y)
        if split in ("train", "valid"):
            targets[split] = np.vstack(ys).astype(FLOAT)
    scaler = StandardScaler().fit(np.vstack(xs["train"]))
    table_parts, inputs, offset = [], {}, 0
    info: dict[str, Any] = {"n_sections": {}, "n_nodes": {}, "max_degree": {}, "n_isolated": {}}
    for split in graphs:
        K = max(max(int(np.diff(A.indptr).max(initial=0)), 1) for A in adjs[split]) if adjs[split] else 1
        parts = []
        for x, A in zip(xs[split], adjs[split], strict=True):
            table_parts.append(scaler.transform(x).astype(FLOAT))
            parts.append(two_hop_index(A, K=K, offset=offset))
            offset += x.shape[0]
        inputs[split] = ({k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else
                         {"self": np.zeros(0, np.int32), "n1": np.zeros((0, 1), np.int32), "m1": np.zeros((0, 1), FLOAT),
                          "n2": np.zeros((0, 1, 1), np.int32), "m2": np.zeros((0, 1, 1), FLOAT)})
        info["n_sections"][split] = len(adjs[split])
        info["n_nodes"][split] = int(sum(A.shape[0] for A in adjs[split]))
        info["max_degree"][split] = K
        info["n_isolated"][split] = int(sum((np.diff(A.indptr) == 0).sum() for A in adjs[split]))
    info["n_self_loops_ignored"] = self_loops
    info["n_genes"] = n_genes
    table = np.vstack(table_parts) if table_parts else np.zeros((0, d), FLOAT)
    return table, inputs, targets, info


def _fit_config(table: np.ndarray, inputs: dict[str, dict[str, np.ndarray]], targets: dict[str, np.ndarray],
                config: dict[str, Any], epochs: int, batch_size: int, patience: int, min_delta: float,
                seed: int) -> tuple[pd.DataFrame, dict[str, Any], dict[str, np.ndarray]]:
    """One configuration of the grid: seed, build, train, predict every split (history, summary, predictions)."""
    n_genes = int(targets["train"].shape[1])
    set_seed(seed)
    model = build_gnn(table, n_genes, **config)
    hist, summary = train(model, inputs["train"], targets["train"], inputs["valid"], targets["valid"],
                          epochs=epochs, batch_size=batch_size, patience=patience, min_delta=min_delta, seed=seed)
    return hist, summary, {s: predict(model, v, n_genes) for s, v in inputs.items()}


def fit_gnn_paper_and_best(
    graphs: Mapping[str, Sequence[SectionGraph]],
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    epochs: int = 100,
    patience: int = 15,
    min_delta: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    names: tuple[str, str] = ("gnn_paper", "gnn"),
    grid_epochs: int | None = None,
    extend_edges: int = 0,
    n_jobs: int = 1,
) -> tuple[ModelResult, ModelResult]:
    """Fit the paper's configuration and every grid configuration once; return ``(paper, chosen)``.

    Parameters
    ----------
    graphs
        Split -> list of :class:`SectionGraph`; ``"train"`` and ``"valid"`` (with targets) are
        required, any other split (``"test"``) needs only ``x`` and ``adjacency`` -- its ``y`` is
        never read. Features are standardised with a ``StandardScaler`` fit on all train nodes.
    grid
        Hyper-parameter lists for ``hidden``, ``lr``, ``dropout``, ``optimizer`` (``"nadam"`` or
        ``"adam"``); keys left out take the :data:`PAPER_CONFIG` value. ``None`` -> :data:`DEFAULT_GRID`;
        ``{}`` -> the paper configuration only. :data:`PAPER_CONFIG` is always a candidate.
    epochs, patience, min_delta
        At most ``epochs`` passes over the train nodes; early stopping on the valid loss with
        the best weights restored.
    grid_epochs
        The epoch limit of the grid's configurations (default ``epochs``); the paper's
        configuration keeps ``epochs``. A configuration whose best epoch lies within the last
        ``patience`` epochs of its limit was still improving when stopped: ``configs`` flags it
        (``still_improving``), so a limit that cuts training short shows.
    extend_edges
        Rounds of grid extension: while the best configuration sits at the lowest or highest
        value tried of ``hidden`` or ``lr``, the next value one grid step further (same ratio)
        is fitted with the best configuration's other settings, up to ``extend_edges`` rounds
        (``settings["extended"]`` lists them, ``configs[...]["round"]`` says when each ran).
    batch_size
        Target nodes per batch (each with its full 2-hop neighbourhood; see the module docstring).
    seed
        Seed set (with op determinism) before building each configuration's model.
    genes
        Gene names (only used to check the number of target columns).
    names
        Names of the two returned results.
    n_jobs
        Worker processes for a round's configurations (:func:`stlib._parallel.map_processes`); each
        configuration is seeded on its own, so the results do not depend on ``n_jobs`` (tested).

    Returns
    -------
    tuple of ModelResult
        ``predictions``: split -> ``(n_nodes, n_genes)``, sections concatenated in the given order.
        The chosen configuration has the lowest best valid loss (ties -> earlier candidate: the paper
        configuration first, then the grid in ``itertools.product`` order). Both results share
        ``history`` (tidy, ``config, epoch, loss, val_loss, mae, val_mae``) and ``settings``
        (``chosen``, ``chosen_id``, ``paper_config``, ``paper_val_loss``, ``configs``: one entry per
        candidate with ``best_val_loss``, ``best_epoch``, ``epochs_run``; graph sizes, ``seed``...);
        ``settings["config"]`` is the configuration that produced the predictions.
    """
    table, inputs, targets, info = _prepare(graphs)
    n_genes = int(targets["train"].shape[1])
    if genes is not None and len(genes) != n_genes:
        raise DataError("fit_gnn", f"{len(genes)} gene names for {n_genes} target columns")
    candidates = _candidates(grid)
    summaries, histories, extended, preds = [], [], [], {}  # preds: only the paper's and the current best
    best, rounds, queue = -1, 0, list(range(len(candidates)))
    while queue:
        limits = {i: int(epochs if i == 0 or grid_epochs is None else grid_epochs) for i in queue}
        fits = map_processes(_fit_config, [
            {"table": table, "inputs": inputs, "targets": targets, "config": candidates[i], "epochs": limits[i],
             "batch_size": batch_size, "patience": patience, "min_delta": min_delta, "seed": seed} for i in queue],
            n_jobs=n_jobs)
        for i, (hist, summary, pred) in zip(queue, fits):
            config, limit = candidates[i], limits[i]
            summaries.append({"id": config_id(config), **config, **summary, "max_epochs": limit, "round": rounds,
                              "still_improving": bool(summary["epochs_run"] >= limit
                                                      and summary["best_epoch"] > limit - patience)})
            histories.append(label_history(hist, config=config_id(config)))
            if best < 0 or loss_key(summary["best_val_loss"]) < loss_key(summaries[best]["best_val_loss"]):
                preds = {j: p for j, p in preds.items() if j == 0}
                preds[i] = pred
                best = i
        queue = []
        if rounds < extend_edges:
            new = [c for c in _edge_extensions(candidates[best], candidates) if c not in candidates]
            extended += new
            queue = list(range(len(candidates), len(candidates) + len(new)))
            candidates += new
            rounds += 1
    settings: dict[str, Any] = {
        "chosen": dict(candidates[best]), "chosen_id": config_id(candidates[best]),
        "paper_config": dict(PAPER_CONFIG), "paper_val_loss": summaries[0]["best_val_loss"], "configs": summaries,
        "aggregator": "mean over the full neighbourhood (no sampling), 2 layers + linear output",
        "batch_size": int(batch_size), "max_epochs": int(epochs),
        "grid_max_epochs": int(epochs if grid_epochs is None else grid_epochs), "patience": int(patience),
        "extended": extended, "extension_rounds": int(rounds),
        "min_delta": float(min_delta), "feature_scaling": "standardised on train", "seed": int(seed), **info,
    }
    history = pd.concat(histories, ignore_index=True)
    paper = ModelResult(names[0], {s: p.copy() for s, p in preds[0].items()}, {**settings, "config": dict(candidates[0])},
                        history=history.copy())
    chosen = ModelResult(names[1], preds[best], {**settings, "config": dict(candidates[best])}, history=history)
    return paper, chosen


def fit_gnn_config(
    graphs: Mapping[str, Sequence[SectionGraph]],
    config: Mapping[str, Any],
    *,
    epochs: int = 100,
    patience: int = 15,
    min_delta: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    name: str = "gnn",
) -> ModelResult:
    """Fit one given configuration (no grid): a configuration chosen on valid, refitted with another seed.

    With the configuration, epoch limit and seed under which :func:`fit_gnn_paper_and_best` fitted
    it, the fit is the same as the grid's (the fits are deterministic and seeded per configuration).

    Parameters
    ----------
    graphs
        Split -> list of :class:`SectionGraph`; ``"train"`` and ``"valid"`` need targets.
    config
        ``hidden``, ``lr``, ``dropout``, ``optimizer``; keys left out take the :data:`PAPER_CONFIG` value.
    epochs, patience, min_delta
        Epoch limit and early stopping on the valid loss (best weights restored).
    batch_size
        Target nodes per batch.
    seed
        Seed set before the model is built.
    genes
        Gene names (only used to check the number of target columns).
    name
        Name of the returned result.

    Returns
    -------
    ModelResult
        Predictions of every split; ``settings`` with ``config``, ``seed``, ``best_epoch``,
        ``epochs_run`` and the graph sizes.

    Raises
    ------
    DataError
        An unknown key in ``config``, or gene names that do not match the targets.
    """
    unknown = set(config) - set(PAPER_CONFIG)
    if unknown:
        raise DataError("config", f"unknown keys {sorted(unknown)}; allowed {sorted(PAPER_CONFIG)}")
    config = {**PAPER_CONFIG, **config}
    table, inputs, targets, info = _prepare(graphs)
    if genes is not None and len(genes) != int(targets["train"].shape[1]):
        raise DataError("fit_gnn", f"{len(genes)} gene names for {targets['train'].shape[1]} target columns")
    hist, summary, pred = _fit_config(table, inputs, targets, config, int(epochs), batch_size, patience, min_delta, seed)
    settings = {"config": config, "chosen_id": config_id(config), **summary, "max_epochs": int(epochs),
                "patience": int(patience), "batch_size": int(batch_size), "seed": int(seed), **info}
    return ModelResult(name, pred, settings, history=label_history(hist, config=config_id(config)))


def fit_gnn(
    graphs: Mapping[str, Sequence[SectionGraph]],
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    epochs: int = 100,
    patience: int = 15,
    min_delta: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    name: str = "gnn",
) -> ModelResult:
    """Fit the grid (plus :data:`PAPER_CONFIG`) and return the configuration with the lowest valid loss.

    Same parameters and result as :func:`fit_gnn_paper_and_best` (its second result);
    ``grid={}`` fits the paper's configuration only.

    Parameters
    ----------
    graphs
        Split -> list of :class:`SectionGraph`; ``"train"`` and ``"valid"`` need targets.
    grid
        Hyper-parameter lists (see :func:`fit_gnn_paper_and_best`); ``None`` -> :data:`DEFAULT_GRID`.
    epochs, patience, min_delta
        Epoch limit and early stopping on the valid loss (best weights restored).
    batch_size
        Target nodes per batch.
    seed
        Seed set before building each configuration's model.
    genes
        Gene names (only used to check the number of target columns).
    name
        Name of the returned result.

    Returns
    -------
    ModelResult
        The chosen configuration's fit (without grid extension, one worker process, the same
        epoch limit for every configuration).
    """
    return fit_gnn_paper_and_best(graphs, grid=grid, epochs=epochs, patience=patience, min_delta=min_delta,
                                  batch_size=batch_size, seed=seed, genes=genes, names=(name, name))[1]
