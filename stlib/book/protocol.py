"""Protocols: the authors' choices, and the sound ones, as one switch.

The report's Table I came from the authors' code (``../shared/paper/README.md`` lists what
each of their notebooks did). A :class:`Protocol` names every choice in which that code and
this book's sound default differ; :data:`PROTOCOLS` holds both ends, and
:data:`LADDER` walks from one to the other one choice at a time (chapter 10).

Every choice that lets valid or test information into a fit is a **leak** and every plain
error of the authors' code is a **bug**; :meth:`Protocol.leaks` and :meth:`Protocol.bugs` name
them so that every table can label its rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import anndata as ad
import numpy as np

from stlib import get
from stlib.tl import features
from stlib._utils import SPLITS
from stlib._leaks import LABELS, RECORDS
from stlib.errors import DataError
from stlib.get import counts_by_split
from stlib.models import inputs
from stlib.models import ModelResult

__all__ = ["LADDER", "PROTOCOLS", "TABLE_MODELS", "Protocol", "as_protocol", "build_features", "fit_gnn_seeds", "fit_table_models"]


@dataclass(frozen=True)
class Protocol:
    """Every choice in which the authors' code and the sound protocol differ.

    Attributes
    ----------
    name
        Label of the protocol (or ladder step).
    gene_fit_on
        Spots the gene rule is fitted on: ``"train"`` (sound) or ``"all"`` (the authors; a leak).
    neighbors
        Neighbours for KNN pooling, the graph SVD and the GNN's edges: ``"spatial"`` (the 15
        nearest spots) or ``"expression"`` (the authors' per-section expression kNN graph; a leak).
    scale
        Standardise features on train (sound) or use them raw (the authors).
    grids
        Penalty grids: ``"book"`` (:data:`stlib.models.linear.DEFAULT_ALPHAS`) or ``"paper"``
        (:data:`stlib.models.linear.PAPER_ALPHAS`).
    refit
        Refit the chosen penalty on train + valid (the authors' GridSearchCV; valid in-sample).
    apriori
        NB a-priori alpha: ``"moments"`` (NB2 dispersion) or ``"paper"`` (its inverse).
    glm
        ``"target"``: GLMs with the log size factor as offset, scored in target space (sound);
        ``"counts"``: no offset, scored on raw counts against the predicted mean, every fit kept
        (the authors).
    mlp_lr
        ``"valid"``: learning rate chosen on valid; ``"fixed"``: 1e-3, set by hand (the authors).
    gnn
        ``"sage"``: this book's GraphSAGE on each split's own graph; ``"authors"``: the authors'
        architecture (Keras example), each split on its own graph; ``"authors_bug"``: the
        authors' architecture with valid/test predictions read off train nodes (their bug).
    """

    name: str = "sound"
    gene_fit_on: str = "train"
    neighbors: str = "spatial"
    scale: bool = True
    grids: str = "book"
    refit: bool = False
    apriori: str = "moments"
    glm: str = "target"
    mlp_lr: str = "valid"
    gnn: str = "sage"

    def __post_init__(self) -> None:
        allowed = {"gene_fit_on": ("train", "all"), "neighbors": ("spatial", "expression"), "grids": ("book", "paper"),
                   "apriori": ("moments", "paper"), "glm": ("target", "counts"), "mlp_lr": ("valid", "fixed"),
                   "gnn": ("sage", "authors", "authors_bug")}
        for key, values in allowed.items():
            if getattr(self, key) not in values:
                raise DataError("protocol", f"{key} = {getattr(self, key)!r}; expected one of {values}")

    def leaks(self, refit: bool | None = None) -> list[str]:
        """The leaks of this protocol, one label each (``stlib._leaks.LABELS``).

        Parameters
        ----------
        refit
            Whether the model at hand was refitted on train + valid; None: whether the protocol
            refits (its penalised models, Lasso and KNN Ridge, are).

        Returns
        -------
        list of str
            The labels, in the order genes, neighbours, refit.
        """
        keys = [k for k, on in (("genes", self.gene_fit_on == "all"), ("neighbors", self.neighbors == "expression"),
                                ("refit", self.refit if refit is None else refit)) if on]
        return [LABELS[k] for k in keys]

    def bugs(self) -> list[str]:
        """The plain bugs of the authors' code that this protocol reproduces."""
        return ["GNN: valid/test predictions read off train nodes"] if self.gnn == "authors_bug" else []

    def as_dict(self) -> dict[str, Any]:
        """The choices as a plain dict (for ``config.json``)."""
        return asdict(self)


SOUND = Protocol()
PAPER = Protocol(name="paper", gene_fit_on="all", neighbors="expression", scale=False, grids="paper", refit=True,
                 apriori="paper", glm="counts", mlp_lr="fixed", gnn="authors")
PROTOCOLS: dict[str, Protocol] = {"sound": SOUND, "paper": PAPER}

#: From the authors' code, bug included, to the sound protocol: one change per step.
LADDER: list[tuple[str, Protocol]] = []
_p = replace(PAPER, name="the authors' code (GNN bug included)", gnn="authors_bug")
for _label, _change in [
    (None, {}),
    ("GNN: each split predicted on its own graph", {"gnn": "authors"}),
    ("genes chosen on train only", {"gene_fit_on": "train"}),
    ("spatial neighbours instead of expression", {"neighbors": "spatial"}),
    ("features standardised on train", {"scale": True}),
    ("no refit on train + valid", {"refit": False}),
    ("this book's penalty grids", {"grids": "book"}),
    ("NB alpha: the NB2 dispersion, not its inverse", {"apriori": "moments"}),
    ("GLMs: size-factor offset, scored in target space", {"glm": "target"}),
    ("MLP: learning rate chosen on valid", {"mlp_lr": "valid"}),
    ("GNN: this book's GraphSAGE", {"gnn": "sage"}),
]:
    _p = replace(_p, name=_label or _p.name, **_change)
    LADDER.append((_p.name, _p))
if asdict(replace(LADDER[-1][1], name="sound")) != asdict(SOUND):  # pragma: no cover - guarded by a test too
    raise RuntimeError("the ladder does not end at the sound protocol")

#: Table I's rows and the model of this book that stands for each.
TABLE_MODELS: dict[str, str] = {
    "Simple Neural Network": "mlp",
    "Linear Regression Lasso": "lasso",
    "NB Alpha Apriori Estimation": "nb_apriori",
    "KNN NB Alpha Apriori Estimation": "knn_nb_apriori",
    "KNN Pooled GNN": "gnn_paper",
    "KNN Linear Regression Ridge": "knn_ridge",
}


def as_protocol(name: str | Protocol) -> Protocol:
    """A protocol by name (``"sound"`` or ``"paper"``), or the protocol itself."""
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise DataError("protocol", f"unknown protocol {name!r}; use one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def build_features(targets: ad.AnnData, protocol: Protocol | str, *, data: ad.AnnData | None = None,
                   n_comps: int = 32, n_neighbors: int = 15, seed: int = 0) -> None:
    """Image PCA, pooled image PCA and graph SVD from ``obsm["X_cnn"]``, as the protocol says.

    Spatial neighbours: :func:`~stlib.tl.features.knn_pool` over the spot and its 14 nearest spots,
    :func:`~stlib.tl.features.spatial_graph` + :func:`~stlib.tl.features.graph_svd`. Expression
    neighbours (the authors): :func:`~stlib.tl.features.expression_neighbors` on ``data`` (all
    genes, raw counts), pooling over the 14 neighbours (self excluded), SVD of the UMAP
    connectivities. PCAs are fitted on train in both.

    Writes ``obsm["X_img_pca", "X_cnn_knn", "X_img_knn_pca", "X_graph_svd"]`` and
    ``uns["neighbors_for_features"]`` (``"spatial"`` / ``"expression"``).
    """
    p = as_protocol(protocol)
    features.pca_fit_transform(targets, "X_cnn", n_comps=n_comps, fit_on="train", key_added="X_img_pca", seed=seed)
    if p.neighbors == "expression":
        if "expression_connectivities" not in targets.obsp:
            if data is None:
                raise DataError("build_features", "expression neighbours need the all-gene counts (data=)")
            features.expression_neighbors(targets, data, n_neighbors=n_neighbors, seed=seed)
        features.knn_pool(targets, "X_cnn", key_added="X_cnn_knn", neighbors_key="expression_distances")
        conn = "expression_connectivities"
    else:
        features.knn_pool(targets, "X_cnn", n_neighbors=n_neighbors, key_added="X_cnn_knn")
        if "spatial_connectivities" not in targets.obsp:
            features.spatial_graph(targets, n_neighs=n_neighbors)
        conn = "spatial_connectivities"
    features.pca_fit_transform(targets, "X_cnn_knn", n_comps=n_comps, fit_on="train", key_added="X_img_knn_pca",
                               seed=seed)
    features.graph_svd(targets, n_components=n_comps, seed=seed, connectivity_key=conn)
    targets.uns["neighbors_for_features"] = p.neighbors


def edges_key(protocol: Protocol | str) -> str:
    """The directed kNN graph (``obsp``) whose mutual pairs are the authors' GNN's edges under this protocol.

    The authors took the mutual pairs of ``obsp["distances"]`` (directed); a symmetrised
    connectivity matrix would make every pair mutual.
    """
    return "expression_distances" if as_protocol(protocol).neighbors == "expression" else "spatial_connectivities"


def linear_alphas(protocol: Protocol | str, kind: str) -> tuple[float, ...]:
    """The penalty grid of ``kind`` under this protocol."""
    from stlib.models.linear import DEFAULT_ALPHAS, PAPER_ALPHAS

    return (PAPER_ALPHAS if as_protocol(protocol).grids == "paper" else DEFAULT_ALPHAS)[kind]


def glm_kwargs(protocol: Protocol | str, targets: ad.AnnData) -> dict[str, Any]:
    """Keyword arguments of :func:`stlib.models.glm.fit_glm` under this protocol."""

    p = as_protocol(protocol)
    counts = p.glm == "counts"
    return {"scale": p.scale, "apriori": p.apriori, "keep_unconverged": counts,
            "score_space": "counts" if counts else "target",
            "offset": None if counts else inputs.glm_offsets(targets)}


def fit_table_models(
    targets: ad.AnnData,
    protocol: Protocol | str,
    *,
    models: tuple[str, ...] = tuple(TABLE_MODELS.values()),
    model_cache: str | None = None,
    seed: int = 0,
    mlp_epochs: int = 1000,
    mlp_learning_rates: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
    gnn_epochs: int = 100,
    authors_gnn_epochs: int = 100,
    n_jobs: int = 2,
    glm_maxiter: int = 100,
    scheduler: Any = None,
) -> dict[str, ModelResult]:
    """Fit the models of Table I (or those named in ``models``) under a protocol.

    ``targets`` must hold the embeddings of :func:`build_features` for the same protocol. The
    per-gene GLMs run on ``n_jobs`` local processes, or on the dask.distributed cluster
    ``scheduler`` (an address or a ``Client``; :mod:`stlib._parallel`), with the same results.
    Each result's ``settings`` record the protocol, its leaks and bugs.
    """
    from stlib.models import glm, linear

    p = as_protocol(protocol)
    genes = list(targets.var_names)
    cached = lambda f: inputs.cached(f, model_cache)  # noqa: E731
    out: dict[str, ModelResult] = {}
    for name in models:
        feats = "knn" if name.startswith("knn_") or name.startswith("gnn") else "single"
        base = name.removeprefix("knn_")
        if base in ("lasso", "ridge", "ols"):
            X, Ytr, Yva = inputs.arrays(targets, feats)
            res = cached(linear.fit_linear)(X, Ytr, Yva, kind=base, alphas=linear_alphas(p, base) if base != "ols" else None,
                                            genes=genes, name=name, scale=p.scale, refit=p.refit and base != "ols")
        elif base in glm.FAMILIES:
            X, _, _ = inputs.arrays(targets, feats)
            counts = counts_by_split(targets)
            res = cached(glm.fit_glm)(X, counts["train"], family=base, genes=genes, n_jobs=n_jobs, name=name,
                                      maxiter=glm_maxiter, scheduler=scheduler, **glm_kwargs(p, targets))
        elif name == "mlp":
            fits = fit_mlp(targets, p, model_cache=model_cache, learning_rates=mlp_learning_rates, epochs=mlp_epochs,
                           seed=seed)
            res = mlp_result(fits, p, name=name)
        elif name == "gnn_paper":
            res = fit_gnn(targets, p, model_cache=model_cache, seed=seed,
                          epochs=gnn_epochs if p.gnn == "sage" else authors_gnn_epochs, name=name)
        else:
            raise DataError("models", f"no recipe for model {name!r}")
        out[name] = label(res, p)
    return out


def label(result: ModelResult, protocol: Protocol | str) -> ModelResult:
    """Record the protocol, and the leaks and bugs that touch this model, in ``result.settings``."""
    p = as_protocol(protocol)
    result.settings["protocol"] = p.as_dict()
    refit = bool(result.settings.get("refit"))
    leaks = {x for x in result.settings.get("leaks", []) if x != RECORDS["refit"]}  # the label replaces the record
    result.settings["leaks"] = sorted(leaks | set(p.leaks(refit=refit)))
    result.settings["bugs"] = p.bugs() if result.settings.get("mode") == "train_graph_bug" else []
    return result


def _fit_mlp_one(X: dict[str, np.ndarray], Ytr: np.ndarray, Yva: np.ndarray, *, lr: float, epochs: int, seed: int,
                 genes: list[str], name: str, scale: bool, model_cache: str | None) -> dict[float, ModelResult]:
    """One learning rate and seed of the MLP, memoised in ``model_cache`` (a worker process's unit)."""
    from stlib.models import nn

    return inputs.cached(nn.fit_mlp_per_lr, model_cache)(
        X, Ytr, Yva, learning_rates=(lr,), epochs=epochs, seed=seed, genes=genes, name=name, scale=scale)


def _fit_mlp_runs(targets: ad.AnnData, p: Protocol, runs: Sequence[tuple[float, int]], *, model_cache: str | None,
                  epochs: int, name: str, n_jobs: int) -> list[dict[float, ModelResult]]:
    """The MLP for every ``(learning rate, seed)`` of ``runs``, on ``n_jobs`` worker processes."""
    from stlib._parallel import map_processes

    X, Ytr, Yva = inputs.arrays(targets, "single")
    shared = {"X": X, "Ytr": Ytr, "Yva": Yva, "epochs": epochs, "genes": list(targets.var_names), "name": name,
              "scale": p.scale, "model_cache": model_cache}
    return map_processes(_fit_mlp_one, [{**shared, "lr": float(lr), "seed": int(s)} for lr, s in runs], n_jobs=n_jobs)


def fit_mlp(targets: ad.AnnData, protocol: Protocol | str, *, model_cache: str | None = None,
            learning_rates: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1), epochs: int = 1000, seed: int = 0,
            name: str = "mlp", n_jobs: int = 1) -> dict[float, ModelResult]:
    """The MLP once per learning rate (each memoised on its own); only 1e-3 when the protocol fixes it.

    With ``n_jobs`` > 1 the learning rates are fitted side by side on worker processes
    (:func:`stlib._parallel.map_processes`), with the same results as one by one.
    """
    from stlib.models import nn

    p = as_protocol(protocol)
    lrs = (nn.PAPER_LR,) if p.mlp_lr == "fixed" else tuple(float(lr) for lr in learning_rates)
    fits: dict[float, ModelResult] = {}
    for one in _fit_mlp_runs(targets, p, [(lr, seed) for lr in lrs], model_cache=model_cache, epochs=epochs,
                             name=name, n_jobs=n_jobs):
        fits.update(one)
    return fits


def fit_mlp_seeds(targets: ad.AnnData, protocol: Protocol | str, *, lr: float, seeds: Sequence[int],
                  model_cache: str | None = None, epochs: int = 1000, name: str = "mlp",
                  n_jobs: int = 1) -> dict[int, ModelResult]:
    """The MLP at one learning rate refitted with every seed (the seed spread), side by side on
    ``n_jobs`` worker processes; each result is :func:`mlp_result` of that seed's fit."""
    seeds = [int(s) for s in seeds]
    p = as_protocol(protocol)
    fits = _fit_mlp_runs(targets, p, [(lr, s) for s in seeds], model_cache=model_cache, epochs=epochs, name=name,
                         n_jobs=n_jobs)
    return {s: mlp_result(f, p, name=name) for s, f in zip(seeds, fits)}


def mlp_result(fits: dict[float, ModelResult], protocol: Protocol | str, name: str = "mlp") -> ModelResult:
    """The MLP of Table I from :func:`fit_mlp`'s fits: chosen on valid, or the authors' fixed 1e-3."""
    from stlib.models import nn

    res = nn.choose_lr(fits, name=name)
    if as_protocol(protocol).mlp_lr == "fixed":
        res.settings["lr_rule"] = "fixed at 1e-3 by hand (the authors)"
    return res


def fit_gnn(targets: ad.AnnData, protocol: Protocol | str, *, model_cache: str | None = None, seed: int = 0,
            epochs: int = 100, name: str = "gnn_paper", config: Mapping[str, Any] | None = None) -> ModelResult:
    """The Table I GNN under a protocol: this book's GraphSAGE (paper configuration) or the authors' network.

    ``config``: a GraphSAGE configuration to fit instead of the paper's (the one chosen on valid,
    refitted with another seed); only under a protocol whose GNN is the GraphSAGE.
    """

    p = as_protocol(protocol)
    genes = list(targets.var_names)
    if config is not None and p.gnn != "sage":
        raise ValueError(f"{name}: a configuration is only fitted for the GraphSAGE, not the protocol's {p.gnn!r} network")
    if p.gnn == "sage":
        from stlib.models import gnn

        graphs = inputs.section_graphs(targets, "X_img_knn_pca", k=15)
        if config is not None:
            return inputs.cached(gnn.fit_gnn_config, model_cache)(graphs, dict(config), epochs=epochs, seed=seed,
                                                                  genes=genes, name=name)
        res, _ = inputs.cached(gnn.fit_gnn_paper_and_best, model_cache)(
            graphs, grid={}, epochs=epochs, seed=seed, genes=genes, names=(name, name + "_chosen"))
        return res
    from stlib.models import gnn_authors

    graphs = split_graphs(targets, edges_key(p), scale=p.scale)
    return inputs.cached(gnn_authors.fit_gnn_authors, model_cache)(
        graphs, epochs=epochs, seed=seed, train_graph_bug=p.gnn == "authors_bug", genes=genes, name=name)


def fit_gnn_seeds(targets: ad.AnnData, models: Mapping[str, tuple[Any, ...]], seeds: Sequence[int], *,
                  model_cache: str | None = None, n_jobs: int = 1) -> dict[str, dict[int, ModelResult]]:
    """:func:`fit_gnn` for every model and seed: ``models`` maps a result name to ``(protocol, epochs)``
    or ``(protocol, epochs, config)`` (a GraphSAGE configuration, e.g. the one chosen on valid).

    The fits run side by side on ``n_jobs`` worker processes (:func:`stlib._parallel.map_processes`)
    and give the same results as one by one; each is memoised in ``model_cache`` as a lone fit is.
    Returns name -> seed -> result.
    """
    from stlib._parallel import map_processes

    runs = [(name, int(s)) for name in models for s in seeds]
    fits = map_processes(fit_gnn, [{"targets": targets, "protocol": as_protocol(models[name][0]), "model_cache": model_cache,
                                    "seed": s, "epochs": int(models[name][1]), "name": name,
                                    "config": models[name][2] if len(models[name]) > 2 else None} for name, s in runs],
                         n_jobs=n_jobs)
    out: dict[str, dict[int, ModelResult]] = {name: {} for name in models}
    for (name, s), res in zip(runs, fits):
        out[name][s] = res
    return out


def split_graphs(targets: ad.AnnData, connectivity_key: str, rep: str = "X_img_knn_pca",
                 split_key: str = "split", scale: bool = False) -> dict[str, Any]:
    """Per split, the authors' GNN input: node features, mutual-pair edges of the graph, targets (not test).

    ``scale``: standardise the node features with the train nodes' mean and standard deviation
    (the node-id feature that :func:`~stlib.models.gnn_authors.fit_gnn_authors` adds stays raw,
    as the authors had it).
    """
    from sklearn.preprocessing import StandardScaler

    from stlib.models.gnn_authors import SplitGraph, mutual_edges

    rep_all = np.asarray(targets.obsm[rep], dtype=np.float64)
    train = get.split_mask(targets, "train", split_key)
    if scale:
        rep_all = StandardScaler().fit(rep_all[train]).transform(rep_all)
    out = {}
    for s in SPLITS:
        m = get.split_mask(targets, s, split_key)
        if not m.any():
            continue
        A = targets.obsp[connectivity_key][m][:, m]
        out[s] = SplitGraph(x=rep_all[m], edges=mutual_edges(A),
                            y=np.asarray(targets.X[m], dtype=np.float64) if s in ("train", "valid") else None)
    return out
