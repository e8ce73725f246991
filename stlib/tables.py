"""Table I and the other metric tables of chapter 8."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib import metrics, store
from stlib.io.paper import read_paper_table1
from stlib.models._base import SPLITS, ModelResult
from stlib.protocol import TABLE_MODELS

#: The paper's Table I rows and the model of this book that reproduces each.
PAPER_ROWS: dict[str, str] = TABLE_MODELS
METRIC_NAMES = {"pearson": "PCC", "spearman": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}


def metric_table(targets: ad.AnnData, predictions: Mapping[str, ad.AnnData]) -> pd.DataFrame:
    """Long table: one row per (model, split, protocol) with the mean-over-genes metrics."""
    Y = store.split_arrays(targets, ["X"])
    C = store.counts_by_split(targets)
    groups = store.section_groups(targets, Y)
    rows = []
    for name, pred in predictions.items():
        settings = store.model_settings(pred)
        space = settings.get("score_space", "target")
        P = store.split_arrays(pred, ["counts" if space == "counts" else "X"])
        t = metrics.evaluate(C if space == "counts" else Y, P, list(targets.var_names), groups=groups).reset_index()
        t.insert(0, "model", name)
        t["space"] = space
        t["leaks"] = "; ".join(settings.get("leaks", []))
        t["bugs"] = "; ".join(settings.get("bugs", []))
        rows.append(t)
    out = pd.concat(rows, ignore_index=True)
    out["split"] = pd.Categorical(out["split"], categories=list(SPLITS))
    return out.sort_values(["model", "protocol", "split"]).set_index(["model", "protocol", "split"])


def table_one(long: pd.DataFrame, protocol: str = "pooled") -> pd.DataFrame:
    """The paper's rows (Train / Valid / Test x PCC, SRCC, MSE, MAE, R2) from our models."""
    rows = []
    for paper_name, model in PAPER_ROWS.items():
        if model not in long.index.get_level_values("model"):
            continue
        sub = long.xs((model, protocol), level=("model", "protocol"))
        for split in SPLITS:
            if split in sub.index:
                r = sub.loc[split]
                flags = "; ".join(x for x in (r.get("leaks", ""), r.get("bugs", "")) if isinstance(x, str) and x)
                rows.append({"model": paper_name, "ours": model, "split": split.capitalize(),
                             **{METRIC_NAMES[m]: float(r[m]) for m in METRIC_NAMES},
                             "genes w/o correlation": int(r["n_genes"]) - int(r["n_genes_correlated"]),
                             "scored in": r.get("space", "target"), "leaks / bugs": flags or "none"})
    return pd.DataFrame(rows).set_index(["model", "split"])


def paper_table() -> pd.DataFrame:
    """The report's published Table I (``data/paper_table1.tsv``, exactly as printed)."""
    return read_paper_table1()


def beside_paper(table1: pd.DataFrame, paper: pd.DataFrame,
                 metrics_: tuple[str, ...] = ("PCC", "SRCC", "MSE", "MAE", "R2")) -> pd.DataFrame:
    """The report's value beside ours for every row of Table I, split and metric.

    ``table1`` is :func:`table_one`'s output, ``paper`` :func:`paper_table`'s. Returns rows
    (model, split) in the report's order and columns (metric, ``"report"`` / ``"ours"``), plus
    ``("", "ours: model")``, ``("", "leaks")`` and ``("", "scored in")`` when ``table1`` has them.
    """
    cols = {}
    for m in metrics_:
        cols[(m, "report")] = paper[m]
        cols[(m, "ours")] = table1[m].reindex(paper.index)
    out = pd.DataFrame(cols, index=paper.index)
    for extra, label in (("ours", "ours: model"), ("scored in", "scored in"), ("leaks / bugs", "leaks / bugs")):
        if extra in table1.columns:
            out[("", label)] = table1[extra].reindex(paper.index)
    return out


def wide(long: pd.DataFrame, protocol: str = "pooled", metrics_: tuple[str, ...] = ("pearson", "spearman", "mse", "r2")) -> pd.DataFrame:
    """Models x (metric, split), for one protocol."""
    sub = long.xs(protocol, level="protocol")[list(metrics_)]
    w = sub.unstack("split")
    return w.sort_values(("pearson", "valid") if ("pearson", "valid") in w.columns else w.columns[0], ascending=False)


def protocols_side_by_side(long: pd.DataFrame, metric: str = "pearson") -> pd.DataFrame:
    """One metric, models x (protocol, split)."""
    return long[metric].unstack(["protocol", "split"]).sort_index(axis=1)


def reference_models(targets: ad.AnnData) -> list[ModelResult]:
    """Two image-free references: the train mean, and a depth-only linear model per gene.

    ``depth_only`` regresses each gene's target on ``log(total_counts)`` of the spot (fitted
    on train, no penalty); it measures how much of a metric sequencing depth alone explains.
    """
    from stlib.models.linear import fit_linear

    Y = store.split_arrays(targets, ["X"])
    mean = Y["train"].mean(axis=0)
    train_mean = ModelResult(
        name="train_mean",
        predictions={s: np.tile(mean, (len(a), 1)) for s, a in Y.items()},
        settings={"rule": "the train mean of each gene, for every spot"},
    )
    logdepth = {s: np.log(a) for s, a in store.split_arrays_obs(targets, "total_counts").items()}
    depth = fit_linear(logdepth, Y["train"], Y["valid"], kind="ols", genes=list(targets.var_names), name="depth_only")
    depth.settings["features"] = "log total counts of the spot (all genes)"
    return [train_mean, depth]


def protocol_text(config: Mapping[str, Any], targets: ad.AnnData, protocol: str) -> str:
    """The protocol of a table, printed above it (HEST-style)."""
    n = targets.obs.groupby("split", observed=True)["section"].agg(lambda s: ", ".join(pd.unique(s.astype(str))))
    spots = targets.obs["split"].value_counts()
    sel = targets.uns.get("gene_selection", {})
    fit_on = "+".join(sel.get("fit_on", ["train"])) or "a fixed list"
    lines = [
        f"protocol: {config.get('protocol', 'sound')}",
        f"data set: {config.get('dataset')}; backbone: {config.get('backbone')} (weights: {config.get('weights')})",
        f"target: {targets.uns['target']['description']}",
        f"genes: {targets.n_vars}, rule '{sel.get('rule_name', 'book')}' fitted on {fit_on}"
        + (f" ({sel['leak']})" if sel.get("leak") else ""),
        "split: " + "; ".join(f"{s} = {n.get(s, '')} ({int(spots.get(s, 0))} spots)" for s in SPLITS),
        f"metric protocol: per gene over the spots of a split ({protocol.replace('_', ' ')}), mean over genes",
        f"seed: {config.get('seed')}",
    ]
    return "\n".join(lines)


def depth_sentence(long: pd.DataFrame, protocol: str = "pooled", split: str = "test") -> str:
    """One sentence comparing the depth-only reference with the best image model on a split."""
    sub = long.xs((protocol, split), level=("protocol", "split"))["pearson"]
    refs = {"depth_only", "train_mean"}
    image = sub.drop(index=[m for m in refs if m in sub.index]).dropna()
    if "depth_only" not in sub.index or image.empty:
        return "no depth-only reference in this run"
    best = image.idxmax()
    d, b = float(sub["depth_only"]), float(image.max())
    verdict = "higher than" if d > b else "below"
    return (f"{split} mean PCC ({protocol}): depth-only reference {d:.3f}, {verdict} the best image model "
            f"({best}, {b:.3f}); {int((image < d).sum())} of {len(image)} image models are below it.")
