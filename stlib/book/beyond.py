"""Chapter 15: image models beyond the report's, each scored against the noise ceiling.

The pieces are in :mod:`stlib.im` (feature views), :mod:`stlib.models.heads` (ridge and low-rank
heads, spatial smoothing) and :mod:`stlib.models.finetune` (the fine-tuned CNN); this module runs
them on a run's targets and puts every variant in one table:

- :func:`rule_targets`: the run's targets and those of the other gene rule, both on train;
- :func:`feature_views`: the CNN features under each option (cached like chapter 2's);
- :func:`frozen_variants`: a ridge head on every feature set, the low-rank heads, smoothing;
- :func:`variant_table`: test PCC and fraction of the test ceiling with bootstrap intervals, the
  valid PCC that chose between them, paired differences against the frozen-feature probe and the
  cost of each variant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.models import heads
from stlib.models import ModelResult

__all__ = ["PROBE", "feature_views", "frozen_variants", "lowrank_ablation", "rule_targets", "smoothed",
           "variant_table"]

#: The baseline every variant is compared with: a ridge head on chapter 2's frozen features.
PROBE = "frozen probe"


def rule_targets(data: ad.AnnData, targets: ad.AnnData, rules: Sequence[str], *, n_genes: int | None = None
                 ) -> dict[str, ad.AnnData]:
    """The run's targets under its own gene rule, and the targets of every other rule in ``rules``.

    The other rules' genes are chosen on the train sections (:func:`stlib.pp.select_genes`) and
    transformed as the run's; the spots, coordinates and image features (``obsm``) are the run's.
    """
    from stlib import pp

    run_rule = targets.uns.get("gene_selection", {}).get("rule_name", "paper")
    transform = targets.uns["target"]["transform"]
    n = int(n_genes or targets.n_vars)
    out = {}
    for rule in rules:
        if rule == run_rule:
            out[rule] = targets
            continue
        genes = pp.select_genes(data.copy(), n, rule=rule, transform=transform, fit_on="train")
        t = pp.make_targets(data[targets.obs_names].copy(), genes, transform=transform)
        for key in targets.obsm:
            t.obsm[key] = np.asarray(targets.obsm[key])
        for key in ("split", "section"):
            t.obs[key] = targets.obs[key].to_numpy()
        t.uns["gene_selection"] = {"rule_name": rule}
        out[rule] = t
    return out


def feature_views(
    targets: ad.AnnData,
    *,
    backbone: str,
    weights: str | None,
    window_um: float | None,
    cache_dir: str | None,
    scales: Sequence[float] = (1, 2, 4),
    stain: bool = True,
    progress: bool = False,
) -> tuple[dict[str, str], dict[str, float]]:
    """Compute the feature variants into ``obsm``: ``X_cnn_tta``, ``X_cnn_context``, ``X_cnn_stain``.

    Returns ``{variant: obsm key}`` (``"plain"`` is chapter 2's ``X_cnn``) and the seconds each
    took: the wall time of computing it, or for a variant read from the cache the sum of its
    sections' times when they were computed (sections run two at a time, so that sum can exceed
    the wall time).
    """
    from stlib import im

    if "X_cnn" not in targets.obsm:
        raise DataError("targets", "no obsm['X_cnn']: run chapter 2 first")
    keys = {"plain": "X_cnn"}
    # chapter 2's features: their sections' compute times (they ran two at a time, one forward pass at a time)
    cost = {"plain": float(sum(targets.uns.get("cnn_features", {}).get("seconds", {}).values()))}
    common = {"backbone": backbone, "weights": weights, "window_um": window_um, "cache_dir": cache_dir,
              "progress": progress}
    options: dict[str, dict[str, Any]] = {"tta": {"tta": True}, "context": {"scales": tuple(scales)}}
    if stain:
        t0 = time.perf_counter()
        target = im.fit_stain_target(targets, window_um=window_um)
        options["stain"] = {"stain": target}
        cost["stain fit"] = time.perf_counter() - t0
    for name, kw in options.items():
        key = f"X_cnn_{name}"
        t0 = time.perf_counter()
        im.cnn_features(targets, key_added=key, **common, **kw)
        keys[name] = key
        meta = targets.uns[f"cnn_features_{key}"]
        # wall time when computed now; from the cache, the time its sections took when computed
        cost[name] = (float(sum(meta["seconds"].values())) if all(meta["cached"].values())
                      else time.perf_counter() - t0)
    if "stain fit" in cost:
        cost["stain"] += cost.pop("stain fit")
    return keys, cost


def smoothed(result: ModelResult, targets: ad.AnnData, *, neighbors: Sequence[int] = heads.SMOOTH_NEIGHBORS,
             weights: Sequence[float] = heads.SMOOTH_WEIGHTS, name: str | None = None) -> ModelResult:
    """``result`` with every split's prediction smoothed over neighbouring spots, the amount chosen
    on the valid spots (:func:`stlib.models.heads.fit_smoothing`)."""
    from stlib import get

    masks = get.split_masks(targets)
    coords = np.asarray(targets.obsm["spatial"], np.float64)
    secs = targets.obs["section"].astype(str).to_numpy()
    Y = np.asarray(targets.X, np.float64)
    va = masks["valid"]
    choice = heads.fit_smoothing(result.predictions["valid"], Y[va], coords[va], secs[va],
                                 neighbors=neighbors, weights=weights)
    preds = {s: heads.spatial_smooth(p, coords[masks[s]], secs[masks[s]], n_neighbors=choice["n_neighbors"],
                                     weight=choice["weight"]) for s, p in result.predictions.items()}
    return ModelResult(name=name or f"{result.name} + smoothing", predictions=preds, settings={
        **result.settings, "smoothing": {"n_neighbors": choice["n_neighbors"], "weight": choice["weight"],
                                         "chosen_on": "valid mean Pearson", "grid": choice["grid"].to_dict("records")}})


def frozen_variants(
    targets: ad.AnnData,
    views: Mapping[str, str],
    *,
    n_comps: int = 32,
    n_neighbors: int = 15,
    ranks: Sequence[int] = heads.LOWRANK_RANKS,
    feature_cost: Mapping[str, float] | None = None,
    seed: int = 0,
) -> tuple[list[ModelResult], dict[str, float]]:
    """Every head on frozen features: the probe (ridge on ``views["plain"]``), a ridge on each other
    view, one on all views together, the two low-rank heads and the probe with smoothing.

    Returns the results and the seconds of each: the head's fit plus, with ``feature_cost``
    (seconds per view, from :func:`feature_views`), the features it reads.
    """
    from stlib import get

    masks = get.split_masks(targets)
    Y = np.asarray(targets.X, np.float64)
    Z = {name: heads.image_design(targets, key, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
         for name, key in views.items()}
    out, cost = [], {}

    fc = dict(feature_cost or {})

    def timed(label: str, fn: Any, reads: Sequence[str] = ("plain",)) -> ModelResult:
        t0 = time.perf_counter()
        r = fn()
        cost[label] = time.perf_counter() - t0 + sum(fc.get(v, 0.0) for v in reads)
        out.append(r)
        return r

    probe = timed(PROBE, lambda: heads.fit_ridge_head(Z["plain"], Y, masks, name=PROBE))
    for name in views:
        if name != "plain":
            timed(f"+ {name}", lambda n=name: heads.fit_ridge_head(Z[n], Y, masks, name=f"+ {n}"), reads=(name,))
    if len(views) > 2:
        every = np.hstack([Z[n] for n in views])
        timed("all frozen views", lambda: heads.fit_ridge_head(every, Y, masks, name="all frozen views"),
              reads=tuple(views))
    for method in ("pca", "rrr"):
        label = "low-rank (PCA of targets)" if method == "pca" else "reduced-rank ridge"
        timed(label, lambda m=method, lab=label: heads.fit_lowrank_head(Z["plain"], Y, masks, ranks=ranks, method=m,
                                                                        name=lab))
    timed("+ smoothing", lambda: smoothed(probe, targets, name="+ smoothing"))
    return out, cost


def variant_table(
    targets: ad.AnnData,
    results: Sequence[ModelResult],
    *,
    cost: Mapping[str, float] | None = None,
    reference: str = PROBE,
    oracle: str | None = "depth_only",
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, Any]:
    """One row per model: valid PCC, test PCC and fraction of the test ceiling with 95% bootstrap
    intervals, the paired difference of test PCC against ``reference`` with its interval, whether
    it is a gain (the interval excludes zero and the difference is positive), and the cost.

    The bootstrap follows the rule in force (:func:`stlib.book.scoring.interval_rule`: blocks of
    neighbouring test spots, sections first), the same replicates for every model, so
    differences are paired.
    """
    from stlib import get
    from stlib.book import scoring
    from stlib.metrics import per_gene_metrics

    masks = get.split_masks(targets)
    if "test" not in masks:
        raise DataError("targets", "no test spots to score")
    test = targets[masks["test"]].copy()
    y = np.asarray(test.X, np.float64)
    preds = {r.name: r.predictions["test"] for r in results}
    thinned = scoring.thinned_by_space(test, ("target",), seed=seed)["target"]
    boot = scoring.rule_bootstrap(y, preds, coords=np.asarray(test.obsm["spatial"], dtype=np.float64),
                                  sections=test.obs["section"].astype(str).to_numpy(), thinned=thinned,
                                  n_boot=n_boot, seed=seed)
    tab = boot.table()[["pcc", "pcc_lo", "pcc_hi", "ceiling", "fraction", "fraction_lo", "fraction_hi"]]
    Yv = np.asarray(targets.X[masks["valid"]], np.float64)
    zero = scoring.interval_rule().constant == "zero"  # the same gene set as the test intervals
    valid_pcc = [per_gene_metrics(Yv, r.predictions["valid"])["pearson"] for r in results]
    tab.insert(0, "valid pcc", [float(np.nanmean(p.fillna(0) if zero else p)) for p in valid_pcc])
    rows = []
    for r in results:
        if r.name == reference or reference not in preds:
            rows.append({"vs probe": 0.0, "vs probe lo": np.nan, "vs probe hi": np.nan, "gain": False})
            continue
        d = boot.difference(r.name, reference)
        rows.append({"vs probe": d["difference"], "vs probe lo": d["lo"], "vs probe hi": d["hi"],
                     "gain": bool(d["excludes_zero"] and d["difference"] > 0)})
    tab = tab.join(pd.DataFrame(rows, index=[r.name for r in results]))
    if oracle is not None and oracle in tab.index:
        tab.loc[oracle, "gain"] = False  # the oracle is a reference, not a model
    if cost is not None:
        tab["seconds"] = [float(cost.get(r.name, np.nan)) for r in results]
    tab.index.name = "model"
    return tab, boot


def lowrank_ablation(
    targets: ad.AnnData,
    views: Mapping[str, str],
    chosen: ModelResult,
    *,
    ranks: Sequence[int] = (1, 2, 8, 32),
    n_comps: int = 32,
    n_neighbors: int = 15,
    seed: int = 0,
) -> list[ModelResult]:
    """The chosen low-rank head taken apart: the same head at other ranks and at full rank (the
    ridge at its penalty), on all frozen views together, and smoothed. ``chosen`` is a result of
    :func:`stlib.models.heads.fit_lowrank_head` on ``views["plain"]`` (its method, rank and
    penalty are kept)."""
    from stlib import get

    s = chosen.settings
    if "rank" not in s or "method" not in s:
        raise DataError("chosen", f"{chosen.name!r} is not a low-rank head")
    masks = get.split_masks(targets)
    Y = np.asarray(targets.X, np.float64)
    Z = {name: heads.image_design(targets, key, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
         for name, key in views.items()}
    a, r, m = float(s["alpha"]), int(s["rank"]), str(s["method"])
    out = [ModelResult(name=f"{chosen.name} (rank {r})", predictions=chosen.predictions, settings=s)]
    for k in ranks:
        if k != r:
            out.append(heads.fit_lowrank_head(Z["plain"], Y, masks, ranks=(k,), alphas=(a,), method=m,
                                              name=f"rank {k}"))
    out.append(heads.fit_ridge_head(Z["plain"], Y, masks, alphas=(a,), name="full rank (ridge, same penalty)"))
    if len(views) > 1:
        every = np.hstack([Z[n] for n in views])
        out.append(heads.fit_lowrank_head(every, Y, masks, ranks=(r,), alphas=(a,), method=m,
                                          name=f"on all frozen views (rank {r})"))
    out.append(smoothed(out[0], targets, name=f"rank {r} + smoothing"))
    return out


def readable(table: pd.DataFrame, reference: str = "vs probe", gain: str = "gain") -> pd.DataFrame:
    """:func:`variant_table` (or a concatenation of them) as text for reading: valid PCC, test PCC,
    fraction of the ceiling and the paired difference from ``reference`` each with its 95%
    interval, and whether the difference is a gain (column ``gain`` of ``table``; ``"yes"``, the
    reference row itself: ``"-"``). ``reference`` and ``gain`` name the columns when a table's
    were renamed for another reference row."""
    from stlib._format import with_interval

    missing = [c for c in (reference, f"{reference} lo", f"{reference} hi", gain) if c not in table.columns]
    if missing:
        raise KeyError(f"the table has no column(s) {missing}; its columns are {list(table.columns)}")
    diff = with_interval(table[reference], table[f"{reference} lo"], table[f"{reference} hi"])
    diff[table[f"{reference} lo"].isna()] = "-"
    gain_col = gain
    return pd.DataFrame({
        "valid PCC": table["valid pcc"].map(lambda v: f"{v:.3f}"),
        "test PCC [95% CI]": with_interval(table["pcc"], table["pcc_lo"], table["pcc_hi"]),
        "fraction of ceiling [95% CI]": with_interval(table["fraction"], table["fraction_lo"], table["fraction_hi"], 2),
        f"{reference} [95% CI]": diff,
        "gain": ["-" if pd.isna(lo) else "yes" if bool(g) else "" for g, lo in zip(table[gain_col], table[f"{reference} lo"])],
    }, index=table.index)
