"""Table I and the other metric tables of chapter 8."""

from __future__ import annotations

from collections.abc import Mapping
import textwrap
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, metrics
from stlib.tl import uncertainty
from stlib.io.paper import read_paper_table1
from stlib._utils import SPLITS
from stlib.models.reference import REFERENCE_MODELS
from stlib.book.scoring import Scored, resampling_for
from stlib._format import with_interval
from stlib.book import readings
from stlib.book.protocol import TABLE_MODELS

#: The paper's Table I rows and the model of this book that reproduces each.
PAPER_ROWS: dict[str, str] = TABLE_MODELS
#: Rows that Table I carries beyond the report's: the HEST-Benchmark probe (chapter 4).
PROBE_ROWS: dict[str, str] = {"HEST probe (not in the report)": "hest_probe",
                              "KNN HEST probe (not in the report)": "knn_hest_probe"}
METRIC_NAMES = {"pearson": "PCC", "spearman": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}


def table_one(long: pd.DataFrame, aggregation: str = "pooled") -> pd.DataFrame:
    """The paper's rows (Train / Valid / Test x PCC, SRCC, MSE, MAE, R2) from our models."""
    rows = []
    for paper_name, model in {**PAPER_ROWS, **PROBE_ROWS}.items():
        if model not in long.index.get_level_values("model"):
            continue
        sub = long.xs((model, aggregation), level=("model", "aggregation"))
        for split in SPLITS:
            if split in sub.index:
                r = sub.loc[split]
                flags = "; ".join(x for x in (r.get("leaks", ""), r.get("bugs", "")) if isinstance(x, str) and x)
                rows.append({"model": paper_name, "ours": model, "split": split.capitalize(),
                             **{METRIC_NAMES[m]: float(r[m]) for m in METRIC_NAMES},
                             "genes w/o correlation": int(r["n_genes"]) - int(r["n_genes_correlated"]),
                             "scored in": r.get("space", "target"), "leaks / bugs": flags or "none"})
    return pd.DataFrame(rows).set_index(["model", "split"])


def without_constant(table: pd.DataFrame, columns: tuple[str, ...] = ("scored in", "leaks / bugs")
                     ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``table`` without those of ``columns`` that hold one value in every row, and that value of
    each dropped column (to be said once above the table instead of repeated in every row).

    Parameters
    ----------
    table
        A table to show (e.g. :func:`table_one`).
    columns
        The columns to drop when constant; absent ones are ignored.

    Returns
    -------
    tuple
        ``(shown, constants)``: the narrower table and ``{column: its one value}``.
    """
    constants = {c: table[c].iloc[0] for c in columns
                 if c in table.columns and len(table) and table[c].nunique(dropna=False) == 1}
    return table.drop(columns=list(constants)), constants


def beside_paper_parts(side: pd.DataFrame, groups: tuple[tuple[str, ...], ...] = (("PCC", "SRCC"), ("MSE", "MAE", "R2"))
                       ) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """:func:`beside_paper`'s table cut for the column: one table per group of metrics (report and
    ours side by side), and the descriptive columns (``("", ...)``: our model, scored in, leaks)
    one row per Table I row, to be said once rather than beside every split.

    Parameters
    ----------
    side
        :func:`beside_paper`'s output.
    groups
        The metrics of each shown table.

    Returns
    -------
    tuple
        ``(parts, about)``: a table per group, and the descriptive columns by Table I row.
    """
    parts = [side[[c for c in side.columns if c[0] in g]] for g in groups]
    about = side[[c for c in side.columns if c[0] == ""]].droplevel(0, axis=1)
    about = about.groupby(level=0, sort=False).first()
    return parts, about


def paper_table() -> pd.DataFrame:
    """The report's published Table I (``data/paper_table1.tsv``, exactly as printed)."""
    return read_paper_table1()


def beside_paper(table1: pd.DataFrame, paper: pd.DataFrame,
                 metrics_: tuple[str, ...] = ("PCC", "SRCC", "MSE", "MAE", "R2")) -> pd.DataFrame:
    """The report's value beside ours for every row of Table I, split and metric.

    ``table1`` is :func:`table_one`'s output, ``paper`` :func:`paper_table`'s. Returns rows
    (model, split) in the report's order, then the probe rows of :data:`PROBE_ROWS` (no report
    value), and columns (metric, ``"report"`` / ``"ours"``), plus
    ``("", "ours: model")``, ``("", "leaks")`` and ``("", "scored in")`` when ``table1`` has them.
    """
    extra = [i for i in table1.index if i not in paper.index and i[0] in PROBE_ROWS]
    index = paper.index.append(pd.MultiIndex.from_tuples(extra, names=paper.index.names)) if extra else paper.index
    cols = {}
    for m in metrics_:
        cols[(m, "report")] = paper[m].reindex(index)
        cols[(m, "ours")] = table1[m].reindex(index)
    out = pd.DataFrame(cols, index=index)
    for col, label in (("ours", "ours: model"), ("scored in", "scored in"), ("leaks / bugs", "leaks / bugs")):
        if col in table1.columns:
            out[("", label)] = table1[col].reindex(index)
    return out


def wide(long: pd.DataFrame, aggregation: str = "pooled", metrics_: tuple[str, ...] = ("pearson", "spearman", "mse", "r2")) -> pd.DataFrame:
    """Models x (metric, split), for one aggregation (``"pooled"`` or ``"per_section_mean"``)."""
    sub = long.xs(aggregation, level="aggregation")[list(metrics_)]
    w = sub.unstack("split")
    return w.sort_values(("pearson", "valid") if ("pearson", "valid") in w.columns else w.columns[0], ascending=False)


def aggregations_side_by_side(long: pd.DataFrame, metric: str = "pearson") -> pd.DataFrame:
    """One metric, models x (aggregation, split)."""
    return long[metric].unstack(["aggregation", "split"]).sort_index(axis=1)


def protocol_text(config: Mapping[str, Any], targets: ad.AnnData, aggregation: str) -> str:
    """The protocol of a table (data, target, genes, split, aggregation, seed), printed above it (HEST-style)."""
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
        f"aggregation: per gene over the spots of a split ({aggregation.replace('_', ' ')}), mean over genes",
        f"seed: {config.get('seed')}",
    ]
    return "\n".join(lines)


def depth_comparison(long: pd.DataFrame, aggregation: str = "pooled", split: str = "test",
                     boots: Mapping[tuple[str, str], uncertainty.Bootstrap] | None = None,
                     choose_on: str = "valid") -> dict[str, Any]:
    """The image model chosen on ``choose_on`` against the depth-only model, read on ``split``.

    Parameters
    ----------
    long
        :func:`stlib.book.scoring.metric_table` (``pearson`` by model, aggregation and split).
    aggregation
        ``"pooled"`` or ``"per_section_mean"``.
    split
        The split read (test).
    boots
        :func:`stlib.book.scoring.interval_table`'s bootstraps (keyed by ``(split, space)``): with
        them, the paired differences and their intervals (pooled aggregation only).
    choose_on
        The split that chooses the image model: ``"valid"`` or ``"train"``, never test. With
        ``boots`` the model with the highest fraction of ``choose_on``'s ceiling (every model over
        the same genes: constants count as 0), as chapter 11 chooses; without, the highest mean PCC.

    Returns
    -------
    dict
        ``model`` (chosen on ``choose_on``), ``chosen_by``, ``pcc``, ``depth_pcc``, ``n_below`` and
        ``n_image`` (image models below the depth-only model on ``split``), and with ``boots`` ``diff``,
        ``lo``, ``hi``, ``call`` ("different" / "not distinguishable"), ``relation`` of the image model
        to the depth-only one ("above", "below", "not distinguishable from") of the PCC and, for the same
        model, ``fraction``, ``depth_fraction``, ``fraction_diff``, ``fraction_lo``, ``fraction_hi``,
        ``fraction_call``. Empty when the run has no depth-only model.
    """
    if choose_on not in ("train", "valid"):
        raise ValueError(f"choose_on={choose_on!r}: a model is chosen on train or valid, never on test")
    sub = long.xs((aggregation, split), level=("aggregation", "split"))["pearson"]
    on = long.xs((aggregation, choose_on), level=("aggregation", "split"))["pearson"]
    image = sub.drop(index=[m for m in REFERENCE_MODELS if m in sub.index]).dropna()
    chooser = on.reindex(image.index).dropna()
    if "depth_only" not in sub.index or chooser.empty:
        return {}
    best, chosen_by = str(chooser.idxmax()), "mean PCC"
    bs = (boots or {}).get((split, "target")) if aggregation == "pooled" else None
    chooser_bs = (boots or {}).get((choose_on, "target"))
    if bs is not None and chooser_bs is not None and "fraction" in chooser_bs.point.columns:
        on_both = chooser_bs.point.loc[chooser_bs.point.index.isin(image.index) & chooser_bs.point.index.isin(bs.point.index)]
        if on_both["fraction"].notna().any():
            best = readings.chosen_image_model(pd.concat({choose_on: on_both}, names=["split", "model"]).swaplevel(),
                                               choose_on)
            chosen_by = "fraction of the noise ceiling"
    d = float(sub["depth_only"])
    out: dict[str, Any] = {"model": best, "chosen_by": chosen_by, "pcc": float(image[best]), "depth_pcc": d,
                           "n_below": int((image < d).sum()), "n_image": int(len(image)), "choose_on": choose_on}
    if bs is not None and {best, "depth_only"} <= set(bs.point.index):
        diff = bs.difference(best, "depth_only")
        # the points of the bootstrap: the same gene rule (constant genes) as the interval
        out.update({"pcc": float(bs.point.loc[best, "pcc"]), "depth_pcc": float(bs.point.loc["depth_only", "pcc"])})
        out.update({"diff": diff["difference"], "lo": diff["lo"], "hi": diff["hi"],
                    "call": "different" if diff["excludes_zero"] else "not distinguishable",
                    "relation": ("not distinguishable from" if not diff["excludes_zero"]
                                 else "above" if diff["difference"] > 0 else "below")})
        if "fraction" in bs.point.columns:
            fd = bs.difference(best, "depth_only", stat="fraction")
            out.update({"fraction": float(bs.point.loc[best, "fraction"]),
                        "depth_fraction": float(bs.point.loc["depth_only", "fraction"]),
                        "fraction_diff": fd["difference"], "fraction_lo": fd["lo"], "fraction_hi": fd["hi"],
                        "fraction_call": "different" if fd["excludes_zero"] else "not distinguishable"})
    return out


def depth_sentence(long: pd.DataFrame, aggregation: str = "pooled", split: str = "test",
                   boots: Mapping[tuple[str, str], uncertainty.Bootstrap] | None = None,
                   choose_on: str = "valid") -> str:
    """:func:`depth_comparison` in words (the image model is chosen on ``choose_on``, never on test).

    Parameters
    ----------
    long, aggregation, split, boots, choose_on
        As :func:`depth_comparison`.

    Returns
    -------
    str
        Wrapped at 90 characters; "no depth-only reference in this run" when there is none.
    """
    c = depth_comparison(long, aggregation, split, boots, choose_on)
    if not c:
        return "no depth-only reference in this run"
    verdict = ("equal, to three decimals, to" if f"{c['depth_pcc']:.3f}" == f"{c['pcc']:.3f}"
               else "higher than" if c["depth_pcc"] > c["pcc"] else "below")
    from stlib.pl._labels import model_label

    name = model_label(c["model"])
    text = (f"{split} mean PCC ({aggregation}): the depth-only model {c['depth_pcc']:.3f}, {verdict} the image model "
            f"chosen on {choose_on} by its {c['chosen_by']} ({name}, {c['pcc']:.3f}); {c['n_below']} of "
            f"{c['n_image']} image models are below it.")
    if "diff" in c:
        text += (f"\n{name} minus depth-only: {c['diff']:+.3f}, 95% paired interval "
                 f"[{c['lo']:+.3f}, {c['hi']:+.3f}]: {c['call']}.")
    if "fraction_diff" in c:
        text += (f"\nby the fraction of the noise ceiling (genes predicted as a constant count as 0): "
                 f"{name} {c['fraction']:.3f}, depth-only {c['depth_fraction']:.3f}; "
                 f"difference {c['fraction_diff']:+.3f} [{c['fraction_lo']:+.3f}, {c['fraction_hi']:+.3f}]: "
                 f"{c['fraction_call']}.")
    return "\n".join(textwrap.fill(line, 90, subsequent_indent="  ") for line in text.split("\n"))


# --------------------------------------------------------------------------- intervals and ceilings


# --------------------------------------------------------------------------- the ceiling chapter


def per_gene_table(targets: ad.AnnData, scored: Mapping[str, Scored], split_ceilings: pd.DataFrame,
                   split: str = "test", models: list[str] | None = None) -> pd.DataFrame:
    """Per gene on one split: mean count, detection rate, the ceiling and each model's PCC.

    ``split_ceilings`` is :func:`ceilings` with ``by="split"`` for the run's genes and target;
    models scored in counts are left out (their PCC is in another space). Sorted by ceiling.
    """
    mask = get.split_mask(targets, split)
    C = get.counts_by_split(targets)[split]
    Y = get.split_arrays(targets, ["X"])[split]
    genes = list(targets.var_names)
    ceil = split_ceilings[split_ceilings["split"] == split].set_index("gene")["ceiling"]
    out = pd.DataFrame({"mean count": C.mean(axis=0), "detected in": (C > 0).mean(axis=0),
                        "ceiling": ceil.reindex(genes).to_numpy()}, index=pd.Index(genes, name="gene"))
    for name, (P, space) in scored.items():
        if space != "target" or (models is not None and name not in models) or split not in P:
            continue
        fits = uncertainty.seed_stack(name, P[split], Y.shape)  # a model with seeds: the mean over them
        out[name] = np.mean([metrics.per_gene_metrics(Y, f, genes)["pearson"].to_numpy() for f in fits], axis=0)
    out.attrs["n_spots"] = int(mask.sum())
    return out.sort_values("ceiling", ascending=False)


def reliable_genes(targets: ad.AnnData, scored: Mapping[str, Scored], *, split: str = "test",
                   n_boot: int = uncertainty.DEFAULT_N_BOOT, seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per model (target space only): how many genes it predicts reliably on ``split`` (per-gene
    95% bootstrap interval of the PCC above zero, :func:`stlib.tl.uncertainty.per_gene_intervals`,
    resampled as the interval rule in force says, seeds with the spots), beside the number
    expected by chance; and each model's per-gene intervals."""
    Y = get.split_arrays(targets, ["X"])[split]
    groups = get.section_groups(targets, [split])[split]
    genes = list(targets.var_names)
    mask = get.split_mask(targets, split)
    coords = np.asarray(targets.obsm["spatial"], dtype=np.float64)[mask] if "spatial" in targets.obsm else None
    weights = resampling_for(coords, groups, n_boot, seed)[0]  # the rule in force: blocks of spots, or single ones
    per_model = {name: uncertainty.per_gene_intervals(Y, P[split], groups=groups, genes=genes, n_boot=n_boot, seed=seed,
                                                      weights=weights, name=name)
                 for name, (P, space) in scored.items() if space == "target" and split in P}
    chance = len(genes) * (1 - uncertainty.DEFAULT_LEVEL) / 2
    out = pd.DataFrame({"reliable genes": {m: int(t["reliable"].sum()) for m, t in per_model.items()},
                        "with a PCC": {m: int(t["pcc"].notna().sum()) for m, t in per_model.items()}})
    out["expected by chance"] = round(chance, 1)
    return out.sort_values("reliable genes", ascending=False), per_model


def _table_one_rows(iv: pd.DataFrame):
    """(report's row name, split, our model, row of ``iv``) for Table I's rows and the probe's, in order."""
    for paper_name, model in {**PAPER_ROWS, **PROBE_ROWS}.items():
        for split in SPLITS:
            if (model, split) in iv.index:
                yield paper_name, split, model, iv.loc[(model, split)]


def table_one_bounds(iv: pd.DataFrame, stat: str = "pcc") -> pd.DataFrame:
    """Table I's rows (the report's row name, ``Train`` / ``Valid`` / ``Test``), as
    :func:`beside_paper` indexes them, with ``stat``'s 95% interval: columns ``lo`` and ``hi``
    (``iv``: :func:`stlib.book.scoring.interval_table`)."""
    rows = {(paper_name, split.capitalize()): {"lo": r[f"{stat}_lo"], "hi": r[f"{stat}_hi"]}
            for paper_name, split, _, r in _table_one_rows(iv)}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["lo", "hi"])
    out.index = pd.MultiIndex.from_tuples(out.index, names=["model", "split"])
    return out


def table_one_every_metric(iv: pd.DataFrame, digits: int | None = None) -> pd.DataFrame:
    """Table I's rows, every metric with its 95% interval (``iv``: :func:`interval_table` with
    ``rank_stats=True``); MSE and MAE in the space each row is scored in. ``digits=None``: each
    value to the places its interval supports (:func:`stlib._format.with_interval`)."""
    names = {"pcc": "PCC", "srcc": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}
    rows = [{"model": paper_name, "split": split.capitalize(),
             **{label: with_interval(r[k], r[f"{k}_lo"], r[f"{k}_hi"], digits)
                for k, label in names.items() if k in r.index}}
            for paper_name, split, _, r in _table_one_rows(iv)]
    return pd.DataFrame(rows).set_index(["model", "split"])


def table_one_intervals(iv: pd.DataFrame) -> pd.DataFrame:
    """Table I's rows with ``PCC [95% CI]`` and ``fraction of ceiling [95% CI]`` (the ceilings:
    :func:`ceiling_caption`)."""
    rows = [{"model": paper_name, "split": split.capitalize(),
             "PCC [95% CI]": with_interval(r["pcc"], r["pcc_lo"], r["pcc_hi"]),
             "fraction of ceiling [95% CI]": with_interval(r["fraction"], r["fraction_lo"], r["fraction_hi"]),
             "scored in": r["space"]}
            for paper_name, split, model, r in _table_one_rows(iv)]
    cols = ["model", "split", "PCC [95% CI]", "fraction of ceiling [95% CI]", "scored in"]
    out = pd.DataFrame(rows, columns=cols).set_index(["model", "split"])
    if out["scored in"].nunique() <= 1:  # one space for every row: said once, in the caption
        out = out.drop(columns="scored in")
    return out


def intervals_wide(iv: pd.DataFrame, splits: tuple[str, ...] = ("valid", "test")) -> pd.DataFrame:
    """Every model (by its readable name, :func:`stlib.pl.model_label`): PCC and fraction of the
    ceiling with intervals, per split, by test fraction."""
    from stlib.pl._labels import model_label

    cols = {}
    for split in splits:
        sub = iv.xs(split, level="split")
        cols[(split, "PCC [95% CI]")] = with_interval(sub["pcc"], sub["pcc_lo"], sub["pcc_hi"])
        cols[(split, "fraction of ceiling [95% CI]")] = with_interval(sub["fraction"], sub["fraction_lo"],
                                                                      sub["fraction_hi"])
    out = pd.DataFrame(cols)
    order = iv.xs(splits[-1], level="split")["fraction"].sort_values(ascending=False).index
    out = out.reindex(order)
    space = iv.xs(splits[-1], level="split")["space"].reindex(order)
    if space.nunique() > 1:
        out["scored in"] = space
    out.index = pd.Index([model_label(m) for m in out.index], name="model")
    return out




def leak_flags(table: pd.DataFrame | pd.Series, column: str = "leaks / bugs") -> list[str]:
    """The distinct leaks and bugs named in a table's flag column (``"; "``-separated, ``"none"`` skipped).

    Parameters
    ----------
    table
        A table with the flag column (:func:`table_one`), or the column itself.
    column
        Its name.

    Returns
    -------
    list of str
        Sorted.
    """
    values = table[column] if isinstance(table, pd.DataFrame) else table
    return sorted({x for v in values.fillna("") for x in str(v).split("; ") if x and x != "none"})


#: Tolerance of :func:`same_numbers`: a hundred float32 rounding units at 1 (about 1.2e-5). The
#: predictions are stored as float32 (relative rounding about 6e-8 per value), and a mean PCC
#: recomputed from stored rather than in-memory predictions, or summed in another order, moves by
#: up to about 1e-6 on these data; three printed decimals never see the difference.
FLOAT32_TOL = float(100 * np.finfo(np.float32).eps)


def same_numbers(a: pd.Series, b: pd.Series, tol: float = FLOAT32_TOL) -> dict[str, Any]:
    """Whether two tables of the same scores agree to within float32 rounding.

    Parameters
    ----------
    a, b
        Scores with the same index (e.g. ``(model, split)``); NaN equals NaN.
    tol
        Largest absolute difference that counts as the same (:data:`FLOAT32_TOL`).

    Returns
    -------
    dict
        ``same`` (bool), ``max_abs_diff`` (float, NaN pairs ignored), ``tol``, ``n`` (entries compared)
        and ``missing`` (index entries of ``a`` that ``b`` lacks: these make ``same`` False).
    """
    missing = [k for k in a.index if k not in b.index]
    common = [k for k in a.index if k in b.index]
    x = a.loc[common].to_numpy(dtype=np.float64)
    y = b.loc[common].to_numpy(dtype=np.float64)
    both_nan = np.isnan(x) & np.isnan(y)
    one_nan = np.isnan(x) ^ np.isnan(y)
    diff = np.abs(x - y)[~both_nan & ~one_nan]
    biggest = float(diff.max()) if diff.size else 0.0
    return {"same": bool(not missing and not one_nan.any() and biggest <= tol), "max_abs_diff": biggest,
            "tol": tol, "n": len(common), "missing": missing}


def compartment_table(by_comp: pd.DataFrame, models: list[str] | None = None) -> pd.DataFrame:
    """:func:`stlib.book.scoring.by_compartment` for display: one row per compartment.

    Parameters
    ----------
    by_comp
        Indexed by ``(compartment, model)`` with ``spots``, ``median counts``, ``ceiling`` and
        ``pcc, pcc_lo, pcc_hi``.
    models
        The models shown, in this order (default: all).

    Returns
    -------
    pandas.DataFrame
        Indexed by compartment: ``spots``, ``median counts``, ``ceiling`` and one ``PCC [95% CI]``
        column per model (named by the model).
    """
    comps = list(dict.fromkeys(by_comp.index.get_level_values("compartment")))
    names = models or list(dict.fromkeys(by_comp.index.get_level_values("model")))
    rows = {}
    for c in comps:
        t = by_comp.loc[c]
        first = t.iloc[0]
        row = {"spots": int(first["spots"]), "median counts": f"{first['median counts']:,.0f}",
               "ceiling": f"{first['ceiling']:.2f}"}
        for m in names:
            row[m] = with_interval(t.loc[m, "pcc"], t.loc[m, "pcc_lo"], t.loc[m, "pcc_hi"]) if m in t.index else "n/a"
        rows[c] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("compartment")
