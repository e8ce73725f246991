"""The authors' own GNN, as their notebook (``GNN.ipynb``) built it -- including its evaluation bug.

The authors adapted the Keras example "Node classification with graph neural networks"
(keras.io/examples/graph/gnn_citations) to regression of 250 genes per spot.

**Graph.** One node per spot; the split's sections are concatenated and a node's id is its
position ``0..n-1`` in that concatenation (``train_mapper = {node: i for i, node in
enumerate(train_X_.node_id)}``). Edges join the *mutual* pairs of each section's expression kNN
graph (``adata.obsp["distances"]``): for ``i < j`` the pair is kept when both ``i -> j`` and
``j -> i`` are kNN edges, and it is stored ONCE, as ``edges = [[j], [i]]`` (their ``source`` /
``target`` columns), see :func:`mutual_edges`. The graph layer gathers ``x[edges[1]]`` and sums
into ``edges[0]``, so each mutual pair carries a message in one direction only: from the spot
that comes first in the section's ``obs_names`` order to the one that comes later. Edge weights
are ``ones(E) / E`` -- every edge weighs ``1 / E`` (E = number of edges of the whole graph, about
23,000 in their train graph), so the aggregated neighbour messages are tiny.

**Node features** (unscaled): ``[node id, 32 KNN-pooled image PCA features]`` (33 columns: the
notebook inserts the integer node id as the first column of ``train_X_`` and passes the whole
frame as node features).

**Model** (``GNNNodeRegressor``; every FFN block is ``BatchNormalization -> Dropout -> Dense(gelu)``
per entry of ``hidden``)::

    x  = preprocess_FFN(node_features)                       # whole graph
    x  = conv1(x) + x ;  x = conv2(x) + x                    # skip connections
    conv(x): m = prepare_FFN(x[edges[1]]) * w                # messages, w = 1/E
             a = unsorted_segment_sum(m, edges[0], n)        # "sum" aggregation
             h = l2_normalize(update_FFN(concat([x, a])))    # "concat" combination, normalize=True
    x  = postprocess_FFN(x)
    out = Dense(n_genes)(x[batch_node_ids])                  # linear output

With 33 inputs, ``hidden=(32, 32)`` and 250 genes it has 24,798 parameters (23,900 trainable),
as the notebook's ``gnn_model.summary()`` prints.

**Training.** A batch is 128 node ids; every step runs the whole graph forward in training mode
(dropout on every node, batch-norm statistics over all nodes -- over all edges for the message
FFN) and takes the MSE over the batch's nodes. Nadam(1e-3), MSE (``sum_over_batch_size``), dropout
0.8, at most 100 epochs, ``EarlyStopping(monitor="val_rmse", patience=15,
restore_best_weights=True)``. Their Keras (2.x, before tf-keras 2.16) restores the best weights
only when early stopping triggers -- the default ``restore="early_stop"`` here; with
``restore="always"`` the best weights are restored also when the run reaches ``epochs``.

**The bug** (``train_graph_bug=True``). The model holds ONE graph, the train graph (``graph_info``
is built from ``train_X_`` and the train edges), and its input is a list of node ids. The
validation data of early stopping is ``(x_val, y_val)`` with ``x_val = valid_X_.node_id`` =
``0..n_valid-1`` -- ids of the valid graph, but looked up in the train graph -- and the test
predictions are ``gnn_model.predict(x_test)`` with ``x_test = 0..n_test-1``. So the valid loss
monitored by early stopping and the valid and test predictions are the train-graph outputs of
the first ``n_valid`` (resp. ``n_test``) train spots, compared with / reported for valid and test
spots. The valid and test features and edges are never used.

The sound mode (``train_graph_bug=False``) trains the same model on the train graph and applies
the same weights to each split's own graph (its node features, node ids ``0..n-1``, edges and
edge weights ``1/E_split``) for the early-stopping loss and for the predictions.

**Which run.** By the execution counts, the reported model is the one of cells 23-30 (counts
518-524: ``hidden_units = [32, 32]``, ``learning_rate = 0.001``, ``dropout_rate = 0.8``,
``num_epochs = 100``, ``batch_size = 128``; Nadam + MSE in ``run_experiment``), trained on the
KNN-pooled features loaded by cells 45-59 (counts 480-493); it ran 65 epochs (best ``val_rmse``
0.551 at epoch 50) and so stopped early and restored its best weights.

**Not determinable from the notebook** (left as documented choices here): the k of the kNN graph
behind ``adata.obsp["distances"]`` (the AnnData files were built outside the repository); whether
each section's ``obs_names`` order equals its image-feature row order (it decides which end of a
mutual pair receives the message; here: the row order of the matrix given to
:func:`mutual_edges`); the exact Keras version (the logs' format says Keras 2.13-2.15, hence the
restore-on-stop default); the device (on GPU an out-of-range ``tf.gather`` returns zeros, on CPU
it fails -- irrelevant for their data, where every split is smaller than train, and refused here);
any random seed (none is set in the notebook); the float64 -> float32 cast of their node-feature
tensor (Keras casts it; float32 throughout here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_matrix
from stlib._compat import FLOAT, FLOATX, import_tf
from stlib.models._keras import label_history, set_seed

MAX_EPOCHS = 100
"""``num_epochs = 100`` in the notebook."""

BUG = ("valid/test predictions, and the valid loss monitored by early stopping, are the model's outputs on the "
       "TRAIN graph at node ids 0..n_split-1 (the notebook's x_val = valid_X_.node_id and x_test = "
       "test_X_.node_id are positions in the valid/test tables, but the model's graph_info is the train graph): "
       "the predictions of the first n_split train spots, compared with / reported for the split's spots; the "
       "split's own features and edges are never used")
"""What ``train_graph_bug=True`` reproduces (also stored in ``settings["bug"]``)."""


@dataclass
class SplitGraph:
    """One split (all its sections) as a single graph.

    Parameters
    ----------
    x
        ``(n, d)`` node features, the split's sections concatenated (e.g. the 32 KNN-pooled image
        PCA features). The node-id column is added by :func:`fit_gnn_authors`, not here.
    edges
        ``(2, E)`` integer node indices within this split, as returned by :func:`mutual_edges`
        (offset by each section's position in the concatenation): messages go from ``edges[1]``
        to ``edges[0]``.
    y
        ``(n, n_genes)`` targets for the train and valid splits; ``None`` for test (the targets of
        any split other than train and valid are never read).
    """

    x: np.ndarray
    edges: np.ndarray
    y: np.ndarray | None = None


def mutual_edges(connectivities: Any, *, both_directions: bool = False) -> np.ndarray:
    """Edges between the mutual pairs of a directed kNN graph, as the authors built them.

    The notebook's ``get_X_y`` loops ``for i ...: for j in range(i + 1, n)`` over the dense
    ``adata.obsp["distances"]`` of a section and keeps the pair when ``D[i, j] != 0 and D[j, i] != 0``,
    appending ``target = spot i`` and ``source = spot j``; the model's edge array is
    ``[source, target]``. Pass the *directed* kNN matrix (scanpy's ``distances``): a symmetrised
    matrix such as scanpy's ``connectivities`` makes every kNN pair mutual.

    Parameters
    ----------
    connectivities
        ``(n, n)`` scipy.sparse matrix (or 2-D array); any stored non-zero ``A[i, j]`` is an edge
        ``i -> j``. The diagonal is ignored.
    both_directions
        ``False`` (the authors): each mutual pair once, as the column ``(j, i)`` with ``i < j``.
        ``True``: both ``(j, i)`` and ``(i, j)`` (not what the authors did).

    Returns
    -------
    numpy.ndarray
        ``(2, E)`` int64. Row 0 = receiving nodes, row 1 = sending nodes (the GNN gathers
        ``x[edges[1]]`` and sums into ``edges[0]``). Authors' mode: ``edges[0] > edges[1]``, columns
        in the notebook's loop order (by ``i = edges[1]``, then ``j = edges[0]``). With
        ``both_directions`` the columns are sorted by ``(edges[0], edges[1])``.
    """
    A = connectivities if sp.issparse(connectivities) else np.asarray(connectivities)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise DataError("mutual_edges", f"expected a square (n, n) matrix, got shape {A.shape}")
    C = sp.coo_matrix(A)
    keep = C.data != 0
    n = A.shape[0]
    B = sp.csr_matrix((np.ones(int(keep.sum()), np.int8), (C.row[keep], C.col[keep])), shape=(n, n))
    B.sum_duplicates()
    B.data[:] = 1
    U = sp.triu(B.multiply(B.T), k=1).tocoo()  # mutual pairs i < j
    i, j = U.row.astype(np.int64), U.col.astype(np.int64)
    if both_directions:
        recv, send = np.concatenate([j, i]), np.concatenate([i, j])
        order = np.lexsort((send, recv))
        return np.vstack([recv[order], send[order]])
    order = np.lexsort((j, i))
    return np.vstack([j[order], i[order]])


def _architecture(n_features: int, hidden: Sequence[int], dropout: float, n_genes: int) -> list[str]:
    ffn = " -> ".join(f"[batchnorm, dropout({dropout:g}), dense({u}, gelu)]" for u in hidden)
    return [
        f"input({n_features}): whole-graph node features",
        f"preprocess: {ffn}",
        f"graph_conv1: messages = prepare({ffn})(x[edges[1]]) * (1/E); sum into edges[0]; "
        f"update({ffn})(concat[x, messages]); l2-normalise; + x (skip)",
        "graph_conv2: same as graph_conv1, own weights; + x (skip)",
        f"postprocess: {ffn}",
        f"gather the batch's nodes -> dense({n_genes}, linear)",
    ]


def build_gnn_authors(n_genes: int, *, hidden: Sequence[int] = (32, 32), dropout: float = 0.8,
                      lr: float = 1e-3) -> Any:
    """Build the authors' ``GNNNodeRegressor`` (Nadam(lr) attached as ``model.optimizer``).

    Unlike the notebook's model, the graph is an input rather than a constant, so the same weights
    can be applied to any graph: ``model({"x": (n, d) float32, "edges": (2, E) int,
    "weights": (E,) float32, "nodes": (b,) int}, training=...)`` returns ``(b, n_genes)`` predictions
    for the nodes ``nodes`` of that graph. Layer names follow the notebook: ``preprocess``,
    ``graph_conv1``/``graph_conv2`` (each with ``ffn_prepare`` and ``update_fn``), ``postprocess``,
    ``output``. Weights follow the current seed (see :func:`stlib.models._keras.set_seed`).

    Parameters
    ----------
    n_genes
        Width of the linear output layer.
    hidden
        Widths of the ``BatchNormalization -> Dropout -> Dense(gelu)`` blocks of every FFN (each FFN
        has one block per entry); must be non-empty and positive.
    dropout
        Dropout rate of every block (fraction dropped).
    lr
        Nadam learning rate.

    Returns
    -------
    keras.Model
        The untrained, uncompiled ``GNNNodeRegressor`` with its Nadam optimizer set.
    """
    tf, keras = import_tf()
    layers = keras.layers
    hidden = [int(u) for u in hidden]
    if not hidden or min(hidden) < 1:
        raise DataError("build_gnn_authors", f"hidden must be a non-empty list of positive widths, got {hidden}")

    def ffn(name: str) -> Any:
        blocks: list[Any] = []
        for units in hidden:
            blocks += [layers.BatchNormalization(), layers.Dropout(dropout),
                       layers.Dense(units, activation=keras.activations.gelu)]  # tf.nn.gelu, exact
        return keras.Sequential(blocks, name=name)

    class GraphConvLayer(layers.Layer):  # aggregation_type="sum", combination_type="concat", normalize=True
        def __init__(self, name: str) -> None:
            super().__init__(name=name)
            self.ffn_prepare = ffn("ffn_prepare")
            self.update_fn = ffn("update_fn")

        def call(self, x: Any, edges: Any, weights: Any, training: bool = False) -> Any:
            receivers, senders = edges[0], edges[1]  # node_indices, neighbour_indices
            messages = self.ffn_prepare(tf.gather(x, senders), training=training) * tf.expand_dims(weights, -1)
            aggregated = tf.math.unsorted_segment_sum(messages, receivers, num_segments=tf.shape(x)[0])
            h = self.update_fn(tf.concat([x, aggregated], axis=1), training=training)
            return tf.nn.l2_normalize(h, axis=-1)

    class GNNNodeRegressor(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="gnn_model")
            self.preprocess = ffn("preprocess")
            self.conv1 = GraphConvLayer("graph_conv1")
            self.conv2 = GraphConvLayer("graph_conv2")
            self.postprocess = ffn("postprocess")
            self.compute_output = layers.Dense(n_genes, name="output")

        def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
            edges, weights = inputs["edges"], inputs["weights"]
            x = self.preprocess(inputs["x"], training=training)
            x = self.conv1(x, edges, weights, training=training) + x
            x = self.conv2(x, edges, weights, training=training) + x
            x = self.postprocess(x, training=training)
            return self.compute_output(tf.gather(x, inputs["nodes"]))

    model = GNNNodeRegressor()
    model.optimizer = keras.optimizers.Nadam(learning_rate=lr)
    return model


@dataclass
class _Graph:
    x: np.ndarray  # float32 node features (node id column included when asked)
    edges: np.ndarray  # int32 (2, E)
    weights: np.ndarray  # float32 (E,), 1/E each

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _prepare(graphs: Mapping[str, SplitGraph], node_id_feature: bool
             ) -> tuple[dict[str, _Graph], dict[str, np.ndarray]]:
    """Validate every split; return the model's graphs and the train/valid targets (test ``y`` is not read)."""
    for split in ("train", "valid"):
        if split not in graphs:
            raise DataError("fit_gnn_authors", f"no {split!r} split (got {sorted(graphs)})")
    d = check_matrix(graphs["train"].x, "train.x").shape[1]
    out: dict[str, _Graph] = {}
    targets: dict[str, np.ndarray] = {}
    n_genes: int | None = None
    for split, g in graphs.items():
        x = check_matrix(g.x, f"{split}.x", n_cols=d)
        n = x.shape[0]
        if n == 0:
            raise DataError(f"{split}.x", "no nodes")
        e = np.asarray(g.edges)
        if e.ndim != 2 or e.shape[0] != 2:
            raise DataError(f"{split}.edges", f"expected a (2, E) array, got shape {e.shape}")
        if e.size and not np.issubdtype(e.dtype, np.integer):
            raise DataError(f"{split}.edges", f"expected integer node indices, got dtype {e.dtype}")
        if e.size and (e.min() < 0 or e.max() >= n):
            raise DataError(f"{split}.edges", f"node indices must lie in [0, {n}), got [{e.min()}, {e.max()}]")
        n_edges = e.shape[1]
        if split == "train" and n_edges == 0:
            raise DataError("train.edges", "the train graph has no edges (edge weights 1/E and the message "
                                           "batch-norm statistics are undefined)")
        if node_id_feature:  # train_X_.insert(0, 'node_id', ...) mapped to 0..n-1
            x = np.hstack([np.arange(n, dtype=float)[:, None], x])
        w = np.full(n_edges, 1.0 / n_edges if n_edges else 0.0, FLOAT)  # ones / reduce_sum(ones)
        out[split] = _Graph(x.astype(FLOAT), e.astype(np.int32), w)
        if split in ("train", "valid"):  # the targets of any other split are never read
            if g.y is None:
                raise DataError(f"{split}.y", f"the {split} split needs targets")
            y = check_matrix(g.y, f"{split}.y", n_rows=n, n_cols=n_genes)
            n_genes = y.shape[1]
            targets[split] = y.astype(FLOAT)
    return out, targets


def fit_gnn_authors(
    graphs: Mapping[str, SplitGraph],
    *,
    hidden: Sequence[int] = (32, 32),
    dropout: float = 0.8,
    lr: float = 1e-3,
    batch_size: int = 128,
    epochs: int = MAX_EPOCHS,
    patience: int = 15,
    seed: int = 0,
    node_id_feature: bool = True,
    train_graph_bug: bool = False,
    restore: Literal["early_stop", "always"] = "early_stop",
    genes: Sequence[str] | None = None,
    name: str = "gnn_authors",
) -> ModelResult:
    """Train the authors' GNN on the train graph and predict every split (see the module docstring).

    Parameters
    ----------
    graphs
        Split -> :class:`SplitGraph`. ``"train"`` and ``"valid"`` (with ``y``) are required; any
        other split (``"test"``) needs only ``x`` and ``edges`` -- its ``y`` is never read. Features
        are used as given (the authors did not scale them).
    hidden, dropout, lr
        Widths of every FFN block, dropout rate (fraction dropped), Nadam learning rate.
    batch_size
        Node ids per gradient step; each step runs the whole train graph forward.
    epochs, patience
        At most ``epochs`` passes over the train nodes; early stopping on the valid RMSE (an epoch
        improves when its ``val_rmse`` is strictly below the best so far) after ``patience`` epochs
        without improvement.
    seed
        :func:`~stlib.models._keras.set_seed` before building; batches shuffled with
        ``np.random.RandomState(seed)``. Reruns give identical results.
    node_id_feature
        Prepend the node id (position ``0..n-1`` in the split's concatenated table, unscaled) as
        the first feature, as the authors did.
    train_graph_bug
        ``False``: the valid loss of early stopping and each split's predictions come from that
        split's own graph. ``True``: reproduce the notebook -- the valid loss and the predictions of
        every split other than train are the train-graph outputs at node ids ``0..n_split-1``
        (requires ``n_split <= n_train``); see :data:`BUG`.
    restore
        ``"early_stop"`` (the notebook's Keras 2): the best epoch's weights are restored only when
        early stopping triggers; ``"always"``: also when the run reaches ``epochs``.
    genes
        Gene names (only used to check the number of target columns).
    name
        Name of the returned result.

    Returns
    -------
    ModelResult
        ``predictions``: split -> ``(n, n_genes)`` float64. ``history``: ``epoch, loss, val_loss,
        mae, val_mae, rmse, val_rmse`` (train columns: batch-size-weighted means over the epoch's
        steps, training mode; valid columns: inference mode). ``settings``: ``mode``, ``bug``,
        ``architecture``, every hyper-parameter, ``best_epoch``, ``best_val_loss``, ``epochs_run``,
        ``stopped_early``, ``restored_best``, graph sizes, ``n_params``.
    """
    if restore not in ("early_stop", "always"):
        raise DataError("fit_gnn_authors", f"restore must be 'early_stop' or 'always', got {restore!r}")
    if int(batch_size) < 1 or int(epochs) < 1 or int(patience) < 1:
        raise DataError("fit_gnn_authors", f"batch_size, epochs and patience must be >= 1, got "
                                           f"{batch_size}, {epochs}, {patience}")
    G, targets = _prepare(graphs, node_id_feature)
    ytr, yva = targets["train"], targets["valid"]
    n_genes = int(ytr.shape[1])
    if genes is not None and len(genes) != n_genes:
        raise DataError("fit_gnn_authors", f"{len(genes)} gene names for {n_genes} target columns")
    ntr = G["train"].n
    if train_graph_bug:
        too_big = {s: g.n for s, g in G.items() if g.n > ntr}
        if too_big:
            raise DataError("fit_gnn_authors", f"train_graph_bug reads splits off the first train nodes, but "
                                               f"{too_big} have more nodes than train ({ntr})")

    tf, _ = import_tf()
    set_seed(seed)
    hidden = [int(u) for u in hidden]
    model = build_gnn_authors(n_genes, hidden=hidden, dropout=dropout, lr=lr)
    tensors = {s: (tf.constant(g.x), tf.constant(g.edges), tf.constant(g.weights)) for s, g in G.items()}
    model({"x": tensors["train"][0], "edges": tensors["train"][1], "weights": tensors["train"][2],
           "nodes": tf.constant([0], tf.int32)})  # build the layers before tracing
    opt, weights = model.optimizer, model.trainable_variables
    opt.build(weights)
    graph_spec = (tf.TensorSpec((None, G["train"].x.shape[1]), tf.as_dtype(FLOATX)), tf.TensorSpec((2, None), tf.int32),
                  tf.TensorSpec((None,), tf.as_dtype(FLOATX)))

    @tf.function(input_signature=[*graph_spec, tf.TensorSpec((None,), tf.int32),
                                  tf.TensorSpec((None, n_genes), tf.as_dtype(FLOATX))])
    def step(x: Any, e: Any, w: Any, nodes: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            err = model({"x": x, "edges": e, "weights": w, "nodes": nodes}, training=True) - y
            loss = tf.reduce_mean(tf.square(err))  # MeanSquaredError(reduction="sum_over_batch_size")
        opt.apply(tape.gradient(loss, weights), weights)
        return loss, tf.reduce_mean(tf.abs(err))

    @tf.function(input_signature=list(graph_spec))
    def forward(x: Any, e: Any, w: Any) -> Any:
        return model({"x": x, "edges": e, "weights": w, "nodes": tf.range(tf.shape(x)[0])}, training=False)

    def predict_split(split: str) -> np.ndarray:
        if train_graph_bug and split != "train":
            return np.asarray(forward(*tensors["train"]), dtype=float)[:G[split].n]
        return np.asarray(forward(*tensors[split]), dtype=float)

    rng = np.random.RandomState(seed)
    rows: list[dict[str, float]] = []
    best, best_loss, best_epoch, best_weights, wait, stopped = np.inf, float("nan"), 0, None, 0, False
    for epoch in range(1, int(epochs) + 1):
        order = rng.permutation(ntr).astype(np.int32)
        tot = np.zeros(2)
        for start in range(0, ntr, int(batch_size)):
            idx = order[start:start + int(batch_size)]
            loss, mae = step(*tensors["train"], tf.constant(idx), tf.constant(ytr[idx]))
            tot += np.array([float(loss), float(mae)]) * idx.size
        tot /= ntr
        err = predict_split("valid") - yva
        val_loss, val_mae = float(np.mean(err ** 2)), float(np.mean(np.abs(err)))
        val_rmse = float(np.sqrt(val_loss))
        rows.append({"epoch": epoch, "loss": tot[0], "val_loss": val_loss, "mae": tot[1], "val_mae": val_mae,
                     "rmse": float(np.sqrt(tot[0])), "val_rmse": val_rmse})
        # keras.callbacks.EarlyStopping(monitor="val_rmse", patience=15, restore_best_weights=True), min_delta=0
        # (Keras 2 keeps the first epoch's weights as "best" until an epoch improves on +inf)
        if best_weights is None:
            best_weights = model.get_weights()
        wait += 1
        if np.isfinite(val_rmse) and val_rmse < best:
            best, best_loss, best_epoch, best_weights, wait = val_rmse, val_loss, epoch, model.get_weights(), 0
        if wait >= int(patience):
            stopped = True
            break
    restored = stopped or restore == "always"
    if restored and best_weights is not None:
        model.set_weights(best_weights)
    predictions = {s: predict_split(s) for s in G}

    settings: dict[str, Any] = {
        "mode": "train_graph_bug" if train_graph_bug else "sound",
        "bug": BUG if train_graph_bug else None,
        "architecture": _architecture(G["train"].x.shape[1], hidden, dropout, n_genes),
        "hidden": hidden, "dropout": float(dropout), "lr": float(lr), "optimizer": "nadam",
        "loss": "mse (mean over batch nodes and genes)", "aggregation": "sum", "combination": "concat",
        "normalize": True, "skip_connections": True, "edge_weights": "1/E of the graph used",
        "batch_size": int(batch_size), "max_epochs": int(epochs), "patience": int(patience), "min_delta": 0.0,
        "monitor": "val_rmse", "restore": restore, "restored_best": bool(restored),
        "best_epoch": int(best_epoch), "best_val_loss": best_loss,
        "epochs_run": len(rows), "stopped_early": bool(stopped),
        "node_id_feature": bool(node_id_feature), "feature_scaling": "none",
        "n_features": int(G["train"].x.shape[1]), "n_genes": n_genes, "n_params": int(model.count_params()),
        "n_nodes": {s: g.n for s, g in G.items()}, "n_edges": {s: int(g.edges.shape[1]) for s, g in G.items()},
        "seed": int(seed),
    }
    return ModelResult(name=name, predictions=predictions, settings=settings, history=label_history(pd.DataFrame(rows)))
