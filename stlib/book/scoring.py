"""From predictions to numbers: mean-over-genes scores per split, bootstrap intervals and
fractions of the noise ceiling, seed spreads, and rounding for display.

A model is scored in the space it predicts (:data:`Scored`: its per-split arrays and
``"target"`` or ``"counts"``), read from a fitted :class:`~stlib.models._base.ModelResult` or
from a prediction file (:func:`scored_from_results`, :func:`scored_from_files`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, metrics
from stlib.tl import autocorr, blocked, ceiling, uncertainty
from stlib.book import store
from stlib._format import show as _round, with_interval
from stlib._utils import SPLITS
from stlib.models import ModelResult
from stlib.pp import TARGET_SUM

__all__ = ["BOOK_CONSTANT", "IID_RULE", "INTERVAL_COLUMNS", "IntervalRule", "Scored", "block_size", "choose_interval_rule",
           "interval_rule", "resampling_for", "rule_bootstrap", "set_interval_rule", "use_run_intervals", "by_compartment", "fit_summary", "interval_extras", "interval_table", "mean_scores", "metric_table",
           "n_seeds", "scored_from_files", "scored_from_results", "scores", "readable_models", "seed_spread", "show", "thinned_by_space",
           "with_interval"]


def show(table: pd.DataFrame, digits: int = 3, *, names: bool = True) -> pd.DataFrame:
    """A table for the page: floats rounded to ``digits`` (exact-output regression checks compare
    text) and, with ``names``, the book's model ids read as their names (:func:`readable_models`).

    Parameters
    ----------
    table
        A table to show.
    digits
        Decimal places of its float columns.
    names
        Replace model ids by their readable names.

    Returns
    -------
    pandas.DataFrame
        A rounded, relabelled copy (the stored tables and downloads keep the ids).
    """
    out = _round(table, digits)
    return readable_models(out) if names else out


def readable_models(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every model id of the book (:data:`stlib.pl.MODEL_LABELS`) in its index,
    its column labels and its text cells replaced by the model's readable name, for display
    (the stored tables and downloads keep the ids).

    Parameters
    ----------
    table
        A table to show.

    Returns
    -------
    pandas.DataFrame
        A relabelled copy; labels and cells that are not model ids are left as they are.
    """
    from stlib.pl._labels import MODEL_LABELS

    def label(x):
        return MODEL_LABELS.get(x, x) if isinstance(x, str) else x

    def index(ix: pd.Index) -> pd.Index:
        if isinstance(ix, pd.MultiIndex):
            return pd.MultiIndex.from_tuples([tuple(label(v) for v in t) for t in ix], names=ix.names)
        return pd.Index([label(v) for v in ix], name=ix.name)

    out = table.copy()
    out.index, out.columns = index(out.index), index(out.columns)
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(label)
    return out


def mean_scores(targets: ad.AnnData, scored: Mapping[str, Scored], *, by_section: bool = False,
                constant: str | None = None) -> pd.DataFrame:
    """The one scoring step: mean-over-genes metrics of each model on each split, in the space
    the model is scored in (:data:`Scored`), as :func:`stlib.metrics.evaluate` computes them.

    ``constant`` is the rule for genes a model predicts as a constant (``"zero"``: PCC 0, every
    model averaged over the same genes; ``"skip"``: left out, the report's Table I convention);
    default: the rule in force (:func:`interval_rule`), so plain means and intervals agree.

    A model with seeds (``(n_seeds, n_spots, n_genes)`` arrays, :func:`scored_from_files`) is
    scored as the mean over its seeds of each metric.

    Returns a long table with columns ``model, split, aggregation`` (``"pooled"``; with
    ``by_section`` also ``"per_section_mean"``), the metric columns and ``space``.
    """
    spaces = {space for _, space in scored.values()}
    truth = {s: get.counts_by_split(targets) if s == "counts" else get.split_arrays(targets, ["X"]) for s in spaces}
    genes = list(targets.var_names)
    rows = []
    for name, (pred, space) in scored.items():
        groups = get.section_groups(targets, pred) if by_section else None
        per_seed = [metrics.evaluate(truth[space], fit, genes, groups=groups,
                                     constant=constant or interval_rule().constant).reset_index()
                    for fit in _seed_fits(pred)]
        t = per_seed[0]
        if len(per_seed) > 1:  # a model with seeds: the mean over its seeds of every metric
            num = t.select_dtypes("number").columns
            t = t.copy()
            t[num] = np.mean([d[num].to_numpy(dtype=np.float64) for d in per_seed], axis=0)
        t.insert(0, "model", name)
        t["space"] = space
        rows.append(t)
    return pd.concat(rows, ignore_index=True)


def scores(targets: ad.AnnData, result: ModelResult, *, aggregation: str = "pooled") -> pd.DataFrame:
    """Mean-over-genes metrics per split for one fitted model, in the space it is scored in.

    ``aggregation`` is ``"pooled"`` (each gene over all spots of a split) or ``"per_section_mean"``.
    """
    t = mean_scores(targets, scored_from_results([result]), by_section=True)
    t = t[t["aggregation"] == aggregation].drop(columns=["model", "aggregation", "space"]).set_index("split")
    return t.loc[[s for s in SPLITS if s in t.index]]


def fit_summary(results: Sequence[ModelResult], targets: ad.AnnData) -> pd.DataFrame:
    """Valid and test mean Pearson / MSE of several models, one row each."""
    rows = []
    for r in results:
        s = scores(targets, r)
        row = {"model": r.name}
        for split in ("train", "valid", "test"):
            if split in s.index:
                row[f"{split} PCC"] = float(s.loc[split, "pearson"])
                row[f"{split} MSE"] = float(s.loc[split, "mse"])
        rows.append(row)
    return show(pd.DataFrame(rows).set_index("model"))


def seed_spread(results: Mapping[int, ModelResult], targets: ad.AnnData,
                metric: str = "pearson") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One model refitted with several seeds: its mean-over-genes ``metric`` per seed and split,
    and their mean, standard deviation and range over the seeds (rounded for display).

    ``results`` maps each seed to its fit (same data, same settings, only the seed differs).
    """
    if len(results) < 2:
        raise ValueError(f"a seed spread needs at least 2 seeds, got {len(results)}")
    per_seed = pd.DataFrame({seed: scores(targets, r)[metric] for seed, r in sorted(results.items())}).T
    per_seed.index.name = "seed"
    per_seed = per_seed[[s for s in SPLITS if s in per_seed.columns]]
    summary = pd.DataFrame({"mean": per_seed.mean(), "sd": per_seed.std(ddof=1),
                            "min": per_seed.min(), "max": per_seed.max(), "seeds": len(per_seed)})
    summary.index.name = "split"
    return show(per_seed), show(summary)


def metric_table(targets: ad.AnnData, predictions: Mapping[str, ad.AnnData], *,
                 constant: str | None = None, seeds: bool = True) -> pd.DataFrame:
    """Long table: one row per (model, split, aggregation) with the mean-over-genes metrics of the
    prediction files, their scoring space, leaks and bugs (``constant`` as :func:`mean_scores`;
    ``attrs["constant"]`` records the rule used). A model stored with several seeds is scored as
    the mean over them (``seeds=False``: its one fit in ``X``, :func:`scored_from_files`);
    ``attrs["n_seeds"]`` says how many each model averages."""
    constant = constant or interval_rule().constant
    scored = scored_from_files(predictions, seeds=seeds)
    out = mean_scores(targets, scored, by_section=True, constant=constant)
    settings = {name: store.model_settings(pred) for name, pred in predictions.items()}
    out["leaks"] = out["model"].map(lambda m: "; ".join(settings[m].get("leaks", [])))
    out["bugs"] = out["model"].map(lambda m: "; ".join(settings[m].get("bugs", [])))
    out["split"] = pd.Categorical(out["split"], categories=list(SPLITS))
    out = out.sort_values(["model", "aggregation", "split"]).set_index(["model", "aggregation", "split"])
    out.attrs["constant"] = constant
    out.attrs["n_seeds"] = n_seeds(scored)
    return out


#: What :func:`interval_table` adds to a score table (besides the point PCC), as other tables copy it.
INTERVAL_COLUMNS = ("pcc_lo", "pcc_hi", "ceiling", "fraction", "fraction_lo", "fraction_hi")


#: A model's predictions per split and the space it is scored in (``"target"`` or ``"counts"``).
Scored = tuple[Mapping[str, np.ndarray], str]


def scored_from_files(predictions: Mapping[str, ad.AnnData], *, seeds: bool = True) -> dict[str, Scored]:
    """Per model, its per-split predictions in the space it is scored in (from prediction files).

    A model refitted with several seeds (:func:`stlib.book.store.save_seed_predictions`) gives
    ``(n_seeds, n_spots, n_genes)`` arrays: every score of it is then the mean over its seeds, and
    every interval resamples the seeds with the spots (:func:`stlib.tl.uncertainty.bootstrap_scores`).
    ``seeds=False`` reads the one fit in ``X`` (seed ``seed`` of the chapter that fitted it).
    """
    out = {}
    for name, pred in predictions.items():
        space = store.model_settings(pred).get("score_space", "target")
        fits = store.seed_layers(pred) if seeds and space == "target" else []
        if fits:
            per_seed = [get.split_arrays(pred, [layer]) for layer in fits]
            out[name] = ({s: np.stack([d[s] for d in per_seed]) for s in per_seed[0]}, space)
        else:
            out[name] = (get.split_arrays(pred, ["counts" if space == "counts" else "X"]), space)
    return out


def n_seeds(scored: Mapping[str, Scored]) -> dict[str, int]:
    """Per model, how many seeds its scores average over (1: one fit)."""
    return {name: (next(iter(p.values())).shape[0] if p and np.ndim(next(iter(p.values()))) == 3 else 1)
            for name, (p, _) in scored.items()}


def _seed_fits(pred: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Per-split predictions of each seed (a 2-D prediction is one seed)."""
    if not pred or np.ndim(next(iter(pred.values()))) == 2:
        return [dict(pred)]
    n = next(iter(pred.values())).shape[0]
    return [{s: a[k] for s, a in pred.items()} for k in range(n)]


def scored_from_results(results: Mapping[str, ModelResult] | list[ModelResult]) -> dict[str, Scored]:
    """Per model, its per-split predictions in the space it is scored in (from fitted models)."""
    items = results.items() if isinstance(results, Mapping) else ((r.name, r) for r in results)
    out = {}
    for name, r in items:
        space = r.settings.get("score_space", "target")
        out[name] = (r.counts if space == "counts" else r.predictions, space)
    return out


def thinned_by_space(targets: ad.AnnData, spaces: tuple[str, ...] = ("target",), *, n_draws: int = 5,
                    seed: int = 0) -> dict[str, ceiling.ThinnedTargets]:
    """Thinned copies of every spot's target genes, per scoring space (:mod:`stlib.tl.ceiling`).

    Reads ``layers["counts"]`` (target genes), ``obs["total_counts"]`` (all genes),
    ``obs["section"]`` and ``uns["target"]`` of the targets; ``"target"`` is the run's
    transform, ``"counts"`` raw counts.
    """
    tr = targets.uns["target"]
    out = {}
    for space in spaces:
        out[space] = ceiling.thinned_targets(
            targets.layers["counts"], tr["transform"] if space == "target" else "counts",
            sections=targets.obs["section"].astype(str).to_numpy(),
            all_gene_totals=targets.obs["total_counts"].to_numpy(), n_draws=n_draws, seed=seed,
            target_sum=tr.get("target_sum") or TARGET_SUM, gene_names=list(targets.var_names))
    return out


@dataclass(frozen=True)
class IntervalRule:
    """How every interval of a run is made: one source, read by every chapter that draws one.

    ``block_pitches``: the side of the square blocks of neighbouring spots that are resampled
    (None: single spots); ``method``: ``"percentile"``, ``"basic"`` or ``"bca"``; ``constant``:
    ``"zero"`` counts a gene predicted as a constant as PCC 0 (every model is averaged over the
    same genes), ``"skip"`` leaves it out (the report's Table I convention); ``chosen_on``: how
    the block side was chosen (a sentence; never on test).
    """

    block_pitches: float | None = None
    method: str = "percentile"
    constant: str = "skip"
    chosen_on: str = ""

    def kwargs(self) -> dict[str, Any]:
        """The arguments of :func:`interval_table` this rule sets."""
        return {"block_pitches": self.block_pitches, "method": self.method, "constant": self.constant}

    def describe(self) -> str:
        """One sentence for a caption or a printout."""
        what = "single spots" if self.block_pitches is None else f"blocks of {self.block_pitches:g} x {self.block_pitches:g} spot pitches"
        genes = "genes predicted as constant count as PCC 0" if self.constant == "zero" else \
            "genes predicted as constant are left out of the mean"
        return (f"{self.method} intervals resampling {what} (sections first where a split has several); {genes}"
                + (f"; block side chosen on {self.chosen_on}" if self.chosen_on else ""))


#: The book's rule for genes a model predicts as a constant, in every mean from chapter 1 on:
#: PCC 0, so every model is averaged over the same genes (chapter 1 stores it with the run).
BOOK_CONSTANT = "zero"

#: Independent spots, percentile intervals, constant genes skipped: the book's rule before issue 28
#: and the report's Table I convention; the default until a run chooses its own rule.
IID_RULE = IntervalRule()
_RULE: list[IntervalRule] = [IID_RULE]


def interval_rule() -> IntervalRule:
    """The rule in force (:func:`set_interval_rule`, :func:`use_run_intervals`)."""
    return _RULE[0]


def set_interval_rule(rule: IntervalRule | Mapping[str, Any] | None) -> IntervalRule:
    """Put ``rule`` in force for :func:`interval_table` and :func:`rule_bootstrap` (None: :data:`IID_RULE`).

    Parameters
    ----------
    rule
        An :class:`IntervalRule` or its fields as a mapping.

    Returns
    -------
    IntervalRule
        The rule now in force.
    """
    if rule is None:
        rule = IID_RULE
    elif not isinstance(rule, IntervalRule):
        rule = IntervalRule(**{k: rule[k] for k in ("block_pitches", "method", "constant", "chosen_on") if k in rule})
    if rule.method not in uncertainty.METHODS:
        raise ValueError(f"method={rule.method!r}; use one of {uncertainty.METHODS}")
    if rule.constant not in ("skip", "zero"):
        raise ValueError(f"constant={rule.constant!r}; use 'skip' or 'zero'")
    _RULE[0] = rule
    return rule


def choose_interval_rule(targets: ad.AnnData, scored: Mapping[str, Scored], model: str, *, split: str = "valid",
                         method: str = "bca", constant: str = "zero") -> IntervalRule:
    """The book's rule for a run: blocks whose side :func:`block_size` reads from ``model``'s
    residuals on ``split`` (valid or train, never test), ``method`` intervals, constant genes as 0.

    Parameters
    ----------
    targets, scored
        The run's targets and the models' predictions (:func:`scored_from_files`).
    model
        The target-space model whose residuals set the block side.
    split
        ``"valid"`` (default) or ``"train"``.
    method, constant
        As in :class:`IntervalRule`.

    Returns
    -------
    IntervalRule
        Not yet in force: pass it to :func:`set_interval_rule` (and store it with the run's config).
    """
    from stlib.pl._labels import model_label

    bs = block_size(targets, scored, model, split=split)
    return IntervalRule(block_pitches=float(bs.pitches), method=method, constant=constant,
                        chosen_on=f"{split}, from the spatial autocorrelation of the residuals of {model_label(model)}")


def use_run_intervals(results_dir: str | Path) -> IntervalRule:
    """Put in force the rule a run stored in its config (``"intervals"``, written where the rule
    was chosen); a run without one keeps :data:`IID_RULE`. Returns the rule in force."""
    cfg = store.read_config(Path(results_dir))
    return set_interval_rule(cfg.get("intervals"))


def resampling_for(coords: np.ndarray | None, sections: np.ndarray, n_boot: int, seed: int,
                   rule: IntervalRule | None = None) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Bootstrap weights, jackknife weights and a description of the resampling of one split's
    spots under ``rule`` (default: the rule in force), for :func:`stlib.tl.uncertainty.bootstrap_scores`.

    Parameters
    ----------
    coords
        ``(n_spots, 2)`` spot centres in pixels.
    sections
        Section of each spot.
    n_boot, seed
        Replicates and the seed of the resampling.
    rule
        The rule; default :func:`interval_rule`.

    Returns
    -------
    tuple
        ``(weights, jackknife, resampling)``, each None when the rule resamples single spots
        with percentile or basic intervals (the bootstrap's own resampling).
    """
    rule = rule or interval_rule()
    sections = np.asarray(sections).astype(str)
    if rule.block_pitches is None and rule.method != "bca":
        return None, None, None
    weights = resampling = None
    if rule.block_pitches is not None:
        if coords is None:
            raise ValueError("the interval rule resamples blocks of spots: give the spots' coordinates")
        coords = np.asarray(coords, dtype=np.float64)
        pitch = blocked.spot_pitch(coords, sections)
        blocks = blocked.grid_blocks(coords, sections, rule.block_pitches * pitch)
        weights = blocked.block_weights(sections, blocks, n_boot, seed)
        resampling = (f"{'sections, then ' if len(set(sections)) > 1 else ''}blocks of "
                      f"{rule.block_pitches:g} spot pitches")
    else:
        blocks = np.array([f"{s}:{i}" for i, s in enumerate(sections)])
    jack = blocked.jackknife_weights(sections, blocks) if rule.method == "bca" else None
    return weights, jack, resampling


def rule_bootstrap(y_true: np.ndarray, predictions: Mapping[str, np.ndarray], *, coords: np.ndarray | None,
                   sections: np.ndarray, thinned: ceiling.ThinnedTargets | None = None, n_boot: int = uncertainty.DEFAULT_N_BOOT,
                   seed: int = 0, rank_stats: bool = False, rule: IntervalRule | None = None) -> uncertainty.Bootstrap:
    """:func:`stlib.tl.uncertainty.bootstrap_scores` under the rule in force (or ``rule``): the
    one entry for chapters that bootstrap arrays rather than a run's splits.

    Parameters
    ----------
    y_true, predictions, thinned, n_boot, seed, rank_stats
        As in :func:`stlib.tl.uncertainty.bootstrap_scores`.
    coords, sections
        Spot centres (pixels) and sections of the rows of ``y_true``.
    rule
        Default :func:`interval_rule`.

    Returns
    -------
    stlib.tl.uncertainty.Bootstrap
    """
    rule = rule or interval_rule()
    sections = np.asarray(sections).astype(str)
    weights, jack, resampling = resampling_for(coords, sections, n_boot, seed, rule)
    return uncertainty.bootstrap_scores(y_true, predictions, groups=sections, thinned=thinned, n_boot=n_boot,
                                        seed=seed, rank_stats=rank_stats, weights=weights, jackknife=jack,
                                        method=rule.method, constant=rule.constant, resampling=resampling)


def interval_table(
    targets: ad.AnnData,
    scored: Mapping[str, Scored],
    *,
    splits: tuple[str, ...] = SPLITS,
    n_boot: int = uncertainty.DEFAULT_N_BOOT,
    seed: int = 0,
    n_draws: int = 5,
    thinned: Mapping[str, ceiling.ThinnedTargets] | None = None,
    rank_stats: bool | Sequence[str] = False,
    block_pitches: float | None | str = "rule",
    method: str | None = None,
    constant: str | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str], uncertainty.Bootstrap]]:
    """Mean PCC, ceiling and fraction of the ceiling with bootstrap intervals, per model and split.

    Pooled over the spots of each split; resampling as :mod:`stlib.tl.uncertainty` says
    (sections, then spots). Models scored in counts are compared with the ceiling of raw
    counts, the others with the ceiling of the run's target. The replicates of one split
    are shared by all models (same seed), so paired differences can be read off the
    returned :class:`~stlib.tl.uncertainty.Bootstrap` objects, keyed by ``(split, space)``.

    Returns a long table indexed by (model, split) with the columns of
    :meth:`stlib.tl.uncertainty.Bootstrap.table` plus ``space``: PCC, ceiling, fraction, MSE, MAE
    and R2, and with ``rank_stats=True`` SRCC (ranks per replicate and gene: slow, so only for
    the few rows that need it); ``rank_stats`` as a tuple of splits gives SRCC on those splits
    only (NaN on the others).

    ``block_pitches`` resamples square blocks of that many spot pitches
    (:func:`stlib.tl.blocked.grid_blocks` on ``obsm["spatial"]``; sections first when a split has
    several) instead of single spots: neighbouring spots are correlated, so single spots give
    intervals that are too narrow (:func:`block_size` chooses the side on valid). ``method`` is
    the interval (``"bca"`` adds a jackknife over sections, or blocks in a one-section split);
    ``constant="zero"`` counts a gene predicted as constant as PCC 0, so every model is averaged
    over the same genes. Left out, the three come from the rule in force (:func:`interval_rule`:
    the run's own, set by :func:`use_run_intervals`; :data:`IID_RULE` otherwise: independent
    spots, percentile intervals and Table I's convention).
    """
    rule = interval_rule()
    rule = replace(rule, **{k: v for k, v in {"block_pitches": block_pitches, "method": method,
                                               "constant": constant}.items()
                            if v is not None and not (k == "block_pitches" and v == "rule")})
    if block_pitches is None:
        rule = replace(rule, block_pitches=None)
    block_pitches, method, constant = rule.block_pitches, rule.method, rule.constant

    rank_splits = ((rank_stats,) if isinstance(rank_stats, str) else tuple(rank_stats)
                   if not isinstance(rank_stats, bool) else None if rank_stats else ())
    spaces = tuple(sorted({space for _, space in scored.values()}))
    thinned = dict(thinned or {})
    missing = tuple(s for s in spaces if s not in thinned)
    if missing:
        thinned.update(thinned_by_space(targets, missing, n_draws=n_draws, seed=seed))
    truth = {"target": get.split_arrays(targets, ["X"]), "counts": get.counts_by_split(targets)}
    split_of = targets.obs["split"].to_numpy()
    sections = targets.obs["section"].astype(str).to_numpy()
    rows, boots = [], {}
    for split in splits:
        idx = np.flatnonzero(split_of == split)
        if not len(idx):
            continue
        coords = (np.asarray(targets.obsm["spatial"], dtype=np.float64)[idx] if block_pitches is not None
                  else np.zeros((len(idx), 2)))  # single spots need no coordinates
        weights, jack, resampling = resampling_for(coords, sections[idx], n_boot, seed, rule)
        for space in spaces:
            preds = {n: p[split] for n, (p, sp_) in scored.items() if sp_ == space and split in p}
            if not preds:
                continue
            bs = uncertainty.bootstrap_scores(truth[space][split], preds, groups=sections[idx],
                                              thinned=thinned[space].subset(idx), n_boot=n_boot, seed=seed,
                                              rank_stats=rank_splits is None or split in rank_splits,
                                              weights=weights, jackknife=jack,
                                              method=method, constant=constant, resampling=resampling)
            boots[(split, space)] = bs
            t = bs.table()
            t.insert(0, "split", split)
            t["space"] = space
            rows.append(t)
    out = pd.concat(rows).rename_axis("model").reset_index().set_index(["model", "split"]).sort_index()
    out.attrs.update({"n_boot": n_boot, "level": uncertainty.DEFAULT_LEVEL, "seed": seed, "n_draws": n_draws,
                      "block_pitches": block_pitches, "method": method, "constant": constant})
    return out, boots


def block_size(targets: ad.AnnData, scored: Mapping[str, Scored], model: str, *, split: str = "valid",
               threshold: float | None = None):
    """The block side of the blocked bootstrap, read from one model's residuals on ``split``.

    The residual of a spot is its influence on the mean PCC (:func:`stlib.tl.autocorr.pcc_influence`);
    the side is the smallest lag at which their Moran's I falls below ``threshold``
    (:func:`stlib.tl.autocorr.block_size_from_residuals`). Chosen on train or valid, never test.

    Parameters
    ----------
    targets
        The run's targets (``obsm["spatial"]``, ``obs["section"]``, ``obs["split"]``).
    scored
        Model -> (per-split predictions, space) (:func:`scored_from_files`).
    model
        The model whose residuals are read (scored in the target space).
    split
        ``"valid"`` (default) or ``"train"``.
    threshold
        Moran's I counted as "about zero" (default: the rule's).

    Returns
    -------
    stlib.tl.autocorr.BlockSize
        ``pitches`` is the side to pass to :func:`interval_table` as ``block_pitches``.
    """
    if split not in ("train", "valid"):
        raise ValueError(f"split={split!r}: the block size is chosen on train or valid, never on test")
    preds, space = scored[model]
    if space != "target":
        raise ValueError(f"{model} is scored on {space}; choose the block size on a target-space model")
    mask = get.split_mask(targets, split)
    y = get.split_arrays(targets, ["X"])[split]
    infl = np.mean([autocorr.pcc_influence(y, np.asarray(fit[split], dtype=np.float64))
                    for fit in _seed_fits(preds)], axis=0)  # a model with seeds: their mean influence
    coords = np.asarray(targets.obsm["spatial"], dtype=np.float64)[mask]
    kw = {} if threshold is None else {"threshold": threshold}
    return autocorr.block_size_from_residuals(infl, coords, targets.obs.loc[mask, "section"].astype(str).to_numpy(), **kw)


def by_compartment(
    targets: ad.AnnData,
    scored: Mapping[str, Scored],
    *,
    split: str = "test",
    models: Sequence[str] | None = None,
    n_boot: int = uncertainty.DEFAULT_N_BOOT,
    seed: int = 0,
    n_draws: int = 5,
    thinned: Mapping[str, ceiling.ThinnedTargets] | None = None,
) -> pd.DataFrame:
    """Scores of one split within each tissue compartment, beside the whole split.

    The compartments (:func:`stlib.get.compartments`: tumour, non-tumour, unannotated) come from
    the tumour annotation, which is data and is fixed before any model is scored. Within each, as
    in :func:`interval_table`: mean PCC over genes with its bootstrap interval (the rule in force),
    the noise ceiling of those spots and the fraction of it, for models scored in the target space;
    a compartment's replicates are shared by all its models. A gene that is constant over a
    compartment's spots has no PCC there and is skipped, as in Table I.

    Parameters
    ----------
    targets
        The run's targets (``obs``: split, section, tumor, total_counts; ``layers["counts"]``).
    scored
        Model -> (per-split predictions, space), :func:`scored_from_files`.
    split
        The split to read.
    models
        The models to score (default: every model scored in the target space).
    n_boot, seed, n_draws
        Bootstrap replicates, their seed, and thinned draws of the ceiling.
    thinned
        Thinned copies of every spot in the target space (:func:`thinned_by_space`), if already made.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(compartment, model)``; ``compartment`` is ``"all"`` then
        :data:`stlib.get.COMPARTMENTS` (those with at least 3 spots); columns ``spots``,
        ``median counts`` (``obs["total_counts"]``: the molecules of every gene per
        spot) and those of :meth:`stlib.tl.uncertainty.Bootstrap.table`.
    """
    in_split = get.split_mask(targets, split)
    if not in_split.any():
        raise KeyError(f"split {split!r} has no spots")
    names = [m for m, (p, space) in scored.items() if space == "target" and split in p]
    if models is not None:
        names = [m for m in models if m in names]
    thinned = dict(thinned or {})
    if "target" not in thinned:
        thinned.update(thinned_by_space(targets, ("target",), n_draws=n_draws, seed=seed))
    y = get.split_arrays(targets, ["X"])[split]
    totals = targets.obs.loc[in_split, "total_counts"].to_numpy(dtype=np.float64)
    comp = get.compartments(targets)[in_split]
    sections = targets.obs.loc[in_split, "section"].astype(str).to_numpy()
    rows = np.flatnonzero(in_split)
    tabs = {}
    for name in ("all", *get.COMPARTMENTS):
        keep = np.ones(len(comp), bool) if name == "all" else comp == name
        if keep.sum() < 3:
            continue
        bs = rule_bootstrap(y[keep], {m: np.asarray(scored[m][0][split])[..., keep, :] for m in names},
                            coords=(np.asarray(targets.obsm["spatial"], dtype=np.float64)[rows[keep]]
                                    if "spatial" in targets.obsm else None),
                            sections=sections[keep], thinned=thinned["target"].subset(rows[keep]),
                            n_boot=n_boot, seed=seed)
        t = bs.table()
        t.insert(0, "median counts", float(np.median(totals[keep])))
        t.insert(0, "spots", int(keep.sum()))
        tabs[name] = t
    out = pd.concat(tabs, names=["compartment", "model"])
    out.attrs.update({"split": split, "sections": sorted(set(sections)), "n_boot": n_boot, "seed": seed, "n_draws": n_draws,
                      "annotation": ", ".join(sorted(targets.obs.loc[in_split, "tumor_source"].astype(str).unique()))
                      if "tumor_source" in targets.obs else "unknown"})
    return out


def interval_extras(targets: ad.AnnData, scored: Mapping[str, Scored], *, n_boot: int, seed: int = 0,
                    thinned: Mapping[str, ceiling.ThinnedTargets] | None = None) -> dict[tuple[str, str], dict[str, float]]:
    """Per (model, split), the :data:`INTERVAL_COLUMNS` of :func:`interval_table` (none when ``n_boot == 0``),
    for score tables that add them to their own rows."""
    if not n_boot:
        return {}
    iv = interval_table(targets, scored, n_boot=n_boot, seed=seed, thinned=thinned)[0]
    return {key: {k: float(row[k]) for k in INTERVAL_COLUMNS} for key, row in iv.iterrows()}


