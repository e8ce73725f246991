"""Chapter 10: from the authors' code to a sound protocol, one choice at a time.

:data:`stlib.book.protocol.LADDER` lists the steps; :func:`run_ladder` prepares the targets and
features each step needs (they depend only on where the genes are chosen and which
neighbours the features use, so at most four versions are built), fits the Table I models
under the step's protocol (fits are memoised: a step refits only what its change touches)
and scores them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import anndata as ad
import pandas as pd

from stlib import pp
from stlib.tl import ceiling
from stlib.book import protocol, store
from stlib.models import ModelResult
from stlib.book.protocol import TABLE_MODELS, Protocol
from stlib.book.scoring import interval_extras, mean_scores, scored_from_results, thinned_by_space
from stlib._format import with_interval

__all__ = ["NETWORKS", "prepare", "run_ladder", "end_intervals", "score_results", "step_intervals", "step_table"]

FEATURE_KEYS = ("X_cnn",)


def prepare(data: ad.AnnData, feats: ad.AnnData, p: Protocol, *, n_genes: int = 250, transform: str = "paper",
            n_comps: int = 32, n_neighbors: int = 15, seed: int = 0) -> ad.AnnData:
    """Targets (the authors' gene rule fitted as ``p`` says) with the step's embeddings.

    ``data``: all spots and genes, raw counts (chapter 1); ``feats``: the CNN features
    ``obsm["X_cnn"]`` of the same spots (chapter 2).
    """
    if not data.obs_names.equals(feats.obs_names):
        raise ValueError("data and features hold different spots")
    d = data.copy()
    genes = pp.select_genes(d, n_genes, rule="paper", transform=transform, fit_on=p.gene_fit_on)
    t = pp.make_targets(d, genes, transform=transform)
    store.join_embeddings(t, feats, obsm=("X_cnn",), uns=(), obsp=(
        "spatial_connectivities", "spatial_distances", "expression_connectivities", "expression_distances"))
    protocol.build_features(t, p, data=data, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
    return t


def score_results(targets: ad.AnnData, results: dict[str, ModelResult], step: str,
                  thinned: dict[str, ceiling.ThinnedTargets] | None = None, n_boot: int = 0,
                  seed: int = 0) -> pd.DataFrame:
    """Mean PCC and MSE over genes per model and split (pooled), in each model's scoring space.

    With ``n_boot > 0``, also the fraction of the noise ceiling each model reaches and the
    bootstrap intervals of PCC and fraction (:func:`stlib.book.scoring.interval_table`; ``thinned``
    are the thinned targets of ``targets``, built when not given).
    """

    scored = scored_from_results(results)
    extras = interval_extras(targets, scored, n_boot=n_boot, seed=seed, thinned=thinned)
    return pd.DataFrame([{"step": step, "model": row.model, "split": row.split, "pearson": float(row.pearson),
                          "mse": float(row.mse), **extras.get((row.model, row.split), {}), "space": row.space,
                          "leaks / bugs": "; ".join(results[row.model].settings.get("leaks", [])
                                                    + results[row.model].settings.get("bugs", []))}
                         for row in mean_scores(targets, scored).itertuples()])


#: The networks of Table I: under :func:`run_ladder` they train on a worker process beside the rest.
NETWORKS = ("mlp", "gnn_paper")


def run_ladder(
    data: ad.AnnData,
    feats: ad.AnnData,
    steps: Sequence[tuple[str, Protocol]] = protocol.LADDER,
    *,
    n_genes: int = 250,
    seed: int = 0,
    n_boot: int = 0,
    n_comps: int = 32,
    n_neighbors: int = 15,
    progress: Callable[[str], Any] | None = print,
    background: bool = True,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Fit and score the Table I models at every step; one long table (step, model, split, ...).

    ``n_boot > 0`` adds the fraction of the noise ceiling and bootstrap intervals
    (:func:`score_results`); the thinned targets are built once per set of genes. ``n_comps``,
    ``n_neighbors``: the features' components and neighbours (:func:`prepare`).
    ``background``: each network of :data:`NETWORKS` (each keeps about one core busy) trains on
    a worker process of its own (:func:`stlib._parallel.worker_pool`), its steps one after another
    so that a step whose change does not touch it reads the previous fit from ``model_cache``,
    while this process fits the linear models and GLMs and builds the next step's features. The
    results are those of fitting everything here (each fit is seeded and memoised on its own).
    Off when the GLMs run on a dask scheduler.
    """
    from stlib._parallel import submit, worker_pool

    models = tuple(fit_kwargs.pop("models", tuple(protocol.TABLE_MODELS.values())))
    networks = tuple(m for m in models if m in NETWORKS) if background and fit_kwargs.get("scheduler") is None else ()
    prepared: dict[tuple[str, str], ad.AnnData] = {}
    thinned: dict[str, dict[str, ceiling.ThinnedTargets]] = {}
    fitted = []
    with ExitStack() as stack:
        pools = {m: stack.enter_context(worker_pool(1)) for m in networks}  # one network's fits in step order
        for label, p in steps:
            key = (p.gene_fit_on, p.neighbors)
            if key not in prepared:
                prepared[key] = prepare(data, feats, p, n_genes=n_genes, n_comps=n_comps, n_neighbors=n_neighbors,
                                        seed=seed)
            t = prepared[key]
            later = {m: submit(pool, protocol.fit_table_models, t, p, models=(m,), seed=seed, **fit_kwargs)
                     for m, pool in pools.items()}
            res = protocol.fit_table_models(t, p, models=tuple(m for m in models if m not in later), seed=seed,
                                            **fit_kwargs)
            if n_boot and p.gene_fit_on not in thinned:  # the ceiling depends on the genes, not the features
                thinned[p.gene_fit_on] = thinned_by_space(t, ("target", "counts"), seed=seed)
            fitted.append((label, p, t, res, later))
            if progress is not None:  # the step's networks may still be training
                progress(f"step {len(fitted) - 1}: {label}")
        out = []
        for label, p, t, res, later in fitted:
            for f in later.values():
                res.update(f.result())
            res = {m: res[m] for m in models}
            out.append(score_results(t, res, label, thinned=thinned.get(p.gene_fit_on), n_boot=n_boot, seed=seed))
    table = pd.concat(out, ignore_index=True)
    table["step"] = pd.Categorical(table["step"], categories=[s for s, _ in steps])
    return table


def step_table(long: pd.DataFrame, metric: str = "pearson", splits: Sequence[str] = ("valid", "test"),
               paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Steps x (Table I row, split) for one metric; the report's printed values as the first row."""
    names = {v: k for k, v in TABLE_MODELS.items()}
    w = long[long["split"].isin(splits)].pivot_table(index="step", columns=["model", "split"], values=metric,
                                                     observed=True, sort=False)
    w = w.reindex(columns=pd.MultiIndex.from_product([list(TABLE_MODELS.values()), list(splits)]))
    w.columns = pd.MultiIndex.from_tuples([(names[m], s.capitalize()) for m, s in w.columns])
    w.index = w.index.astype(str)
    if paper is not None:
        col = {"pearson": "PCC", "mse": "MSE"}[metric]
        row = pd.DataFrame([[paper.loc[(m, s), col] for m, s in w.columns]], columns=w.columns,
                           index=["the report, as printed (He et al. 2020, ResNet50)"])
        w = pd.concat([row, w])
    return w


def end_intervals(long: pd.DataFrame, stat: str = "fraction", split: str = "test") -> pd.DataFrame:
    """Table I rows x the ladder's first and last steps: ``stat`` with its 95% interval on one split
    (the two ends of :func:`step_intervals`, narrow enough for the page; the steps between are its
    download).

    Parameters
    ----------
    long
        :func:`run_ladder`'s long table, with ``n_boot > 0``.
    stat
        ``"fraction"`` (of the ceiling) or ``"pcc"``.
    split
        The split scored.

    Returns
    -------
    pandas.DataFrame
        Indexed by Table I row; columns ``"step 0: <first step>"`` and ``"step N: <last step>"``.
    """
    w = step_intervals(long, stat, split)
    ends = w.iloc[[0, -1]].T
    ends.columns = [f"step 0: {w.index[0]}", f"step {len(w) - 1}: {w.index[-1]}"]
    ends.index.name = "Table I row"
    return ends


def step_intervals(long: pd.DataFrame, stat: str = "fraction", split: str = "test") -> pd.DataFrame:
    """Steps x Table I rows: ``stat`` (``"fraction"`` or ``"pcc"``) with its 95% interval, on one split.

    Needs :func:`run_ladder` with ``n_boot > 0``.
    """
    names = {v: k for k, v in TABLE_MODELS.items()}
    sub = long[long["split"] == split].copy()
    point = "pearson" if stat == "pcc" else stat
    sub["cell"] = with_interval(sub[point], sub[f"{stat}_lo"], sub[f"{stat}_hi"])
    w = sub.pivot(index="step", columns="model", values="cell")
    w = w.reindex(columns=list(TABLE_MODELS.values()))
    w.columns = [names[m] for m in w.columns]
    w.index = w.index.astype(str)
    return w
