"""Table I and the other metric tables of chapter 8."""

from __future__ import annotations

from collections.abc import Mapping
import textwrap
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib import ceiling, get, metrics, uncertainty
from stlib.io.paper import read_paper_table1
from stlib._utils import SPLITS
from stlib.models.reference import REFERENCE_MODELS
from stlib.scoring import Scored, with_interval
from stlib.protocol import TABLE_MODELS

#: The paper's Table I rows and the model of this book that reproduces each.
PAPER_ROWS: dict[str, str] = TABLE_MODELS
#: Rows that Table I carries beyond the report's: the HEST-Benchmark probe (chapter 4).
PROBE_ROWS: dict[str, str] = {"HEST probe (not in the report)": "hest_probe",
                              "KNN HEST probe (not in the report)": "knn_hest_probe"}
METRIC_NAMES = {"pearson": "PCC", "spearman": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}


def table_one(long: pd.DataFrame, protocol: str = "pooled") -> pd.DataFrame:
    """The paper's rows (Train / Valid / Test x PCC, SRCC, MSE, MAE, R2) from our models."""
    rows = []
    for paper_name, model in {**PAPER_ROWS, **PROBE_ROWS}.items():
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


def wide(long: pd.DataFrame, protocol: str = "pooled", metrics_: tuple[str, ...] = ("pearson", "spearman", "mse", "r2")) -> pd.DataFrame:
    """Models x (metric, split), for one protocol."""
    sub = long.xs(protocol, level="protocol")[list(metrics_)]
    w = sub.unstack("split")
    return w.sort_values(("pearson", "valid") if ("pearson", "valid") in w.columns else w.columns[0], ascending=False)


def protocols_side_by_side(long: pd.DataFrame, metric: str = "pearson") -> pd.DataFrame:
    """One metric, models x (protocol, split)."""
    return long[metric].unstack(["protocol", "split"]).sort_index(axis=1)


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


def depth_sentence(long: pd.DataFrame, protocol: str = "pooled", split: str = "test",
                   boots: Mapping[tuple[str, str], uncertainty.Bootstrap] | None = None) -> str:
    """One sentence comparing the depth-only reference (an oracle) with the best image model.

    With ``boots`` (:func:`interval_table`'s second output) the sentence gives the paired
    bootstrap interval of the difference and calls the two different only if it excludes 0.
    """
    sub = long.xs((protocol, split), level=("protocol", "split"))["pearson"]
    image = sub.drop(index=[m for m in REFERENCE_MODELS if m in sub.index]).dropna()
    if "depth_only" not in sub.index or image.empty:
        return "no depth-only reference in this run"
    best = image.idxmax()
    d, b = float(sub["depth_only"]), float(image.max())
    verdict = "higher than" if d > b else "below"
    text = (f"{split} mean PCC ({protocol}): the depth-only oracle {d:.3f}, {verdict} the best image model "
            f"({best}, {b:.3f}); {int((image < d).sum())} of {len(image)} image models are below it.")
    bs = (boots or {}).get((split, "target"))
    if bs is not None and protocol == "pooled" and {best, "depth_only"} <= set(bs.point.index):
        diff = bs.difference(best, "depth_only")
        call = "different" if diff["excludes_zero"] else "not distinguishable"
        text += (f"\n{best} minus depth-only: {diff['difference']:+.3f}, 95% paired interval "
                 f"[{diff['lo']:+.3f}, {diff['hi']:+.3f}]: {call}.")
        if "fraction" in bs.point.columns:
            frac = bs.point["fraction"].drop(index=[m for m in REFERENCE_MODELS if m in bs.point.index])
            fbest = frac.idxmax()
            fd = bs.difference(fbest, "depth_only", stat="fraction")
            call = "different" if fd["excludes_zero"] else "not distinguishable"
            text += (f"\nby the fraction of the noise ceiling (genes predicted as a constant count as 0): best "
                     f"image model {fbest} {frac[fbest]:.3f}, depth-only {bs.point.loc['depth_only', 'fraction']:.3f}; "
                     f"difference {fd['difference']:+.3f} [{fd['lo']:+.3f}, {fd['hi']:+.3f}]: {call}.")
    return "\n".join(textwrap.fill(line, 90, subsequent_indent="  ") for line in text.split("\n"))


# --------------------------------------------------------------------------- intervals and ceilings


# --------------------------------------------------------------------------- the ceiling chapter
def _target_counts(data: ad.AnnData, genes: list[str]) -> tuple[Any, np.ndarray]:
    """The target genes' raw counts and every spot's all-gene total, from all-gene data."""
    X = data[:, genes].X
    totals = np.asarray(data.X.sum(axis=1), dtype=np.float64).ravel()
    return X, totals


def ceilings(data: ad.AnnData, genes: list[str], transform: str, *, by: str = "section", n_draws: int = 5,
             seed: int = 0) -> pd.DataFrame:
    """Per gene, the noise ceiling in each section (``by="section"``) or pooled over each split
    (``by="split"``), for the given genes and target transform (:func:`stlib.ceiling.noise_ceiling`).

    ``data`` holds all genes' raw counts (chapter 1's ``data.h5ad``); the normalisation of the
    ``"paper"`` transform stays per section in both cases. Adds ``split`` (and, per section,
    ``median_total``: the section's median all-gene count per spot) to the output.
    """
    X, totals = _target_counts(data, genes)
    secs = data.obs["section"].astype(str).to_numpy()
    split = data.obs["split"].astype(str).to_numpy()
    df = ceiling.noise_ceiling(X, transform, sections=secs, groups=None if by == "section" else split,
                               all_gene_totals=totals, n_draws=n_draws, seed=seed, gene_names=genes)
    if by == "section":
        first = pd.Series(split, index=secs).groupby(level=0).first()
        df.insert(1, "split", df["section"].map(first))
        med = pd.Series(totals, index=secs).groupby(level=0).median()
        df.insert(2, "median_total", df["section"].map(med))
    else:
        df = df.rename(columns={"group": "split"})
    return df


def ceiling_vs_depth(data: ad.AnnData, genes: list[str], transform: str, *,
                     fractions: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125, 0.0625), n_draws: int = 5,
                     seed: int = 0) -> pd.DataFrame:
    """Per gene, the ceiling in each section when its counts are thinned to a fraction of their depth.

    Each section's counts (target genes and the rest of each spot) are binomially thinned to
    ``fraction`` of the molecules, i.e. the section as it would have been sequenced less
    deeply, and the ceiling is estimated on that (the ``1.0`` rows equal :func:`ceilings`).
    Returns one row per (section, fraction, gene): ``split``, ``fraction``, ``median_total``
    (median count per spot after thinning), ``gene`` and ``ceiling``; :func:`depth_summary`
    averages over genes.
    """
    X, totals = _target_counts(data, genes)
    full, mask = ceiling._with_rest(ceiling.check_counts(X), totals, np.ones(len(genes), dtype=bool))
    secs = data.obs["section"].astype(str).to_numpy()
    split = pd.Series(data.obs["split"].astype(str).to_numpy(), index=secs).groupby(level=0).first()
    rng = np.random.default_rng(seed)
    frames = []
    for f in fractions:
        thinned = full if f == 1.0 else ceiling.thin(full, f, rng)
        tot = pd.Series(np.asarray(thinned.sum(axis=1), dtype=np.float64).ravel(), index=secs)
        df = ceiling.noise_ceiling(thinned, transform, sections=secs, genes_mask=mask, n_draws=n_draws,
                                   seed=seed, gene_names=[*genes, "rest"])
        df.insert(1, "split", df["section"].map(split))
        df.insert(2, "fraction", f)
        df.insert(3, "median_total", df["section"].map(tot.groupby(level=0).median()))
        frames.append(df[["section", "split", "fraction", "median_total", "gene", "ceiling"]])
    return pd.concat(frames, ignore_index=True)


def depth_summary(depth: pd.DataFrame) -> pd.DataFrame:
    """:func:`ceiling_vs_depth` (stacked over gene rules with a ``rule`` column, or not) averaged
    over genes: ``mean_ceiling`` over the genes with a ceiling, and ``n_nan``."""
    keys = [k for k in ("rule", "section", "split", "fraction", "median_total") if k in depth.columns]
    g = depth.groupby(keys, sort=False)["ceiling"]
    return pd.DataFrame({"mean_ceiling": g.mean(), "n_nan": g.apply(lambda c: int(c.isna().sum()))}).reset_index()


def per_gene_table(targets: ad.AnnData, scored: Mapping[str, Scored], split_ceilings: pd.DataFrame,
                   split: str = "test", models: list[str] | None = None) -> pd.DataFrame:
    """Per gene on one split: mean count, detection rate, the ceiling and each model's PCC.

    ``split_ceilings`` is :func:`ceilings` with ``by="split"`` for the run's genes and target;
    models scored in counts are left out (their PCC is in another space). Sorted by ceiling.
    """
    mask = (targets.obs["split"] == split).to_numpy()
    C = get.counts_by_split(targets)[split]
    Y = get.split_arrays(targets, ["X"])[split]
    genes = list(targets.var_names)
    ceil = split_ceilings[split_ceilings["split"] == split].set_index("gene")["ceiling"]
    out = pd.DataFrame({"mean count": C.mean(axis=0), "detected in": (C > 0).mean(axis=0),
                        "ceiling": ceil.reindex(genes).to_numpy()}, index=pd.Index(genes, name="gene"))
    for name, (P, space) in scored.items():
        if space != "target" or (models is not None and name not in models) or split not in P:
            continue
        out[name] = metrics.per_gene_metrics(Y, P[split], genes)["pearson"].to_numpy()
    out.attrs["n_spots"] = int(mask.sum())
    return out.sort_values("ceiling", ascending=False)


def reliable_genes(targets: ad.AnnData, scored: Mapping[str, Scored], *, split: str = "test",
                   n_boot: int = uncertainty.DEFAULT_N_BOOT, seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per model (target space only): how many genes it predicts reliably on ``split`` (per-gene
    95% bootstrap interval of the PCC above zero, :func:`stlib.uncertainty.per_gene_intervals`),
    beside the number expected by chance; and each model's per-gene intervals."""
    Y = get.split_arrays(targets, ["X"])[split]
    groups = get.section_groups(targets, [split])[split]
    genes = list(targets.var_names)
    per_model = {name: uncertainty.per_gene_intervals(Y, P[split], groups=groups, genes=genes, n_boot=n_boot, seed=seed)
                 for name, (P, space) in scored.items() if space == "target" and split in P}
    chance = len(genes) * (1 - uncertainty.DEFAULT_LEVEL) / 2
    out = pd.DataFrame({"reliable genes": {m: int(t["reliable"].sum()) for m, t in per_model.items()},
                        "with a PCC": {m: int(t["pcc"].notna().sum()) for m, t in per_model.items()}})
    out["expected by chance"] = round(chance, 1)
    return out.sort_values("reliable genes", ascending=False), per_model


def ceiling_caption(iv: pd.DataFrame, space: str = "target") -> str:
    """The noise ceiling of each split (mean over genes, with its interval), for a table caption."""
    sub = iv[iv["space"] == space].reset_index().drop_duplicates("split").set_index("split")
    parts = [f"  {s}: {with_interval(sub.loc[s, 'ceiling'], sub.loc[s, 'ceiling_lo'], sub.loc[s, 'ceiling_hi'])}"
             for s in SPLITS if s in sub.index]
    return "noise ceiling of the mean PCC, pooled over each split's spots [95% CI]:\n" + "\n".join(parts)


def _table_one_rows(iv: pd.DataFrame):
    """(report's row name, split, our model, row of ``iv``) for Table I's rows and the probe's, in order."""
    for paper_name, model in {**PAPER_ROWS, **PROBE_ROWS}.items():
        for split in SPLITS:
            if (model, split) in iv.index:
                yield paper_name, split, model, iv.loc[(model, split)]


def table_one_every_metric(iv: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Table I's rows, every metric with its 95% interval (``iv``: :func:`interval_table` with
    ``rank_stats=True``); MSE and MAE in the space each row is scored in."""
    names = {"pcc": "PCC", "srcc": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}
    places = {"r2": 1}
    rows = [{"model": paper_name, "split": split.capitalize(),
             **{label: with_interval(r[k], r[f"{k}_lo"], r[f"{k}_hi"], places.get(k, digits))
                for k, label in names.items() if k in r.index}}
            for paper_name, split, _, r in _table_one_rows(iv)]
    return pd.DataFrame(rows).set_index(["model", "split"])


def table_one_intervals(iv: pd.DataFrame) -> pd.DataFrame:
    """Table I's rows with ``PCC [95% CI]`` and ``fraction of ceiling [95% CI]`` (the ceilings:
    :func:`ceiling_caption`)."""
    rows = [{"model": paper_name, "split": split.capitalize(), "ours": model,
             "PCC [95% CI]": with_interval(r["pcc"], r["pcc_lo"], r["pcc_hi"]),
             "fraction of ceiling [95% CI]": with_interval(r["fraction"], r["fraction_lo"], r["fraction_hi"]),
             "scored in": r["space"]}
            for paper_name, split, model, r in _table_one_rows(iv)]
    cols = ["model", "split", "ours", "PCC [95% CI]", "fraction of ceiling [95% CI]", "scored in"]
    out = pd.DataFrame(rows, columns=cols).set_index(["model", "split"])
    if out["scored in"].nunique() <= 1:  # one space for every row: said once, in the caption
        out = out.drop(columns="scored in")
    return out


def intervals_wide(iv: pd.DataFrame, splits: tuple[str, ...] = ("valid", "test")) -> pd.DataFrame:
    """Every model: PCC and fraction of the ceiling with intervals, per split, by test fraction."""
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
    return out


def ceiling_summary(by_section: pd.DataFrame, by_split: pd.DataFrame) -> pd.DataFrame:
    """Mean ceiling over genes per section (by depth) and per pooled split, one column per gene rule.

    ``by_section`` / ``by_split``: :func:`ceilings` outputs stacked with a ``rule`` column.
    """
    sec = by_section.pivot_table(index=["section", "split", "median_total"], columns="rule", values="ceiling",
                                 aggfunc="mean").reset_index().sort_values("median_total")
    sec.insert(0, "spots of", sec.pop("section"))
    spl = by_split.pivot_table(index="split", columns="rule", values="ceiling", aggfunc="mean").reset_index()
    spl.insert(0, "spots of", [f"{s} (pooled)" for s in spl["split"]])
    spl = spl.set_index("split").reindex([s for s in SPLITS if s in set(spl["split"])]).reset_index()
    out = pd.concat([sec, spl], ignore_index=True).set_index("spots of")
    out["median_total"] = [f"{m:,.0f}" if pd.notna(m) else "(its sections)" for m in out["median_total"]]
    out = out.rename(columns={"median_total": "median counts per spot"})
    out.columns.name = None
    nan = by_section.groupby("rule")["ceiling"].apply(lambda c: int(c.isna().sum()))
    out.attrs["genes without a ceiling (section rows)"] = nan.to_dict()
    return out.rename(columns={r: f"mean ceiling, {r} genes" for r in nan.index})


def depth_match(depth: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The shallowest section at its depth beside each other section thinned to the nearest depth.

    ``depth``: :func:`ceiling_vs_depth` stacked over gene rules. Mean ceilings are over the
    genes that have a ceiling in **every** row of the table, so that the rows compare the same
    genes (a rare gene has none in a thinned section more often).
    """
    d = depth[depth["rule"] == rule]
    summ = depth_summary(d)
    native = summ[summ["fraction"] == 1.0].sort_values("median_total")
    low = native.iloc[0]
    picks = [(low["section"], 1.0, low["median_total"])]
    for sec, g in summ[summ["section"] != low["section"]].groupby("section", sort=False):
        best = g.iloc[int(np.argmin(np.abs(np.log(g["median_total"].to_numpy()) - np.log(low["median_total"]))))]
        picks.append((sec, best["fraction"], best["median_total"]))
    per = {sec: d[(d["section"] == sec) & (d["fraction"] == f)].set_index("gene")["ceiling"] for sec, f, _ in picks}
    common = pd.concat(per, axis=1).dropna().index
    rows = [{"section": sec, "thinned to": f, "median counts per spot": m, "mean ceiling": per[sec][common].mean(),
             "genes compared": len(common)} for sec, f, m in picks]
    return pd.DataFrame(rows).set_index("section")


def ceiling_reading(iv: pd.DataFrame, by_section: pd.DataFrame, depth: pd.DataFrame, paper: pd.DataFrame,
                    rule: str, split: str = "test") -> dict[str, str]:
    """The numbers chapter 11's text quotes, as formatted strings (for ``myst_nb.glue``).

    ``by_section``: :func:`ceilings` per section stacked over gene rules (``rule`` column);
    ``depth``: :func:`ceiling_vs_depth` stacked likewise; ``rule``: the run's gene rule.
    """
    sub = iv.xs(split, level="split")
    sub = sub[(sub["space"] == "target") & ~sub.index.isin(REFERENCE_MODELS)]
    best = sub["fraction"].idxmax()
    r = sub.loc[best]
    gap = 1.0 - r["pcc"]
    sec = by_section[by_section["rule"] == rule].groupby("section")["ceiling"].mean()
    paper_best = float(paper.xs("Test", level="split")["PCC"].max())
    match = depth_match(depth, rule)
    others = match.iloc[1:]["mean ceiling"]
    per_rule = by_section.pivot_table(index="section", columns="rule", values="ceiling", aggfunc="mean")
    other_rule = next((r for r in per_rule.columns if r != rule), None)
    gain = (per_rule[other_rule] - per_rule[rule]) if other_rule else pd.Series([np.nan])
    depths = by_section.groupby("section")["median_total"].first()
    low = match.iloc[0]["mean ceiling"]
    where = "above" if low > others.max() else "below" if low < others.min() else "within"
    return {
        "shallow_section": str(match.index[0]),
        "shallow_depth": f"{match.iloc[0]['median counts per spot']:,.0f}",
        "deep_depth_min": f"{depths.drop(match.index[0]).min():,.0f}",
        "shallow_ceiling": f"{match.iloc[0]['mean ceiling']:.2f}",
        "matched_min": f"{others.min():.2f}",
        "matched_max": f"{others.max():.2f}",
        "shallow_vs_matched": where,
        "depth_verdict": {
            "above": "its low ceiling is its depth: at equal depth its spots vary more than the others'",
            "within": "at equal depth it is like the others: its low ceiling is its depth",
            "below": "even at equal depth it is below the others: its depth and its tissue both lower it",
        }[where],
        "other_rule": str(other_rule),
        "rule_gain_min": f"{gain.min():+.2f}",
        "rule_gain_max": f"{gain.max():+.2f}",
        "test_ceiling": with_interval(r["ceiling"], r["ceiling_lo"], r["ceiling_hi"], 2),
        "best_model": str(best),
        "best_pcc": with_interval(r["pcc"], r["pcc_lo"], r["pcc_hi"]),
        "best_fraction": with_interval(r["fraction"], r["fraction_lo"], r["fraction_hi"], 2),
        "depth_fraction": (with_interval(*iv.loc[("depth_only", split), ["fraction", "fraction_lo", "fraction_hi"]], 2)
                           if ("depth_only", split) in iv.index else "n/a"),
        "gap_noise_share": f"{(1.0 - r['ceiling']) / gap:.0%}",
        "gap_model_share": f"{(r['ceiling'] - r['pcc']) / gap:.0%}",
        "paper_best": f"{paper_best:.3f}",
        "ceiling_low": f"{sec.min():.2f}",
        "ceiling_high": f"{sec.max():.2f}",
        "paper_fraction_min": f"{paper_best / sec.max():.2f}",
        "paper_fraction_max": f"{paper_best / sec.min():.2f}",
    }


def per_gene_reading(per_gene: pd.DataFrame, data: ad.AnnData, split: str = "test", top: int = 15) -> dict[str, str]:
    """Numbers chapter 11 quotes about the per-gene ceilings of one split (for ``myst_nb.glue``)."""
    c = per_gene["ceiling"]
    totals = np.asarray(data.X[(data.obs["split"] == split).to_numpy()].sum(axis=1), dtype=np.float64).ravel()
    head = per_gene.head(top)
    return {
        "n_genes_ceiling": str(int(c.notna().sum())),
        "n_zero_ceiling": str(int((c == 0).sum())),
        "median_gene_ceiling": f"{c.median():.2f}",
        "n_top": str(top),
        "n_top_rare": str(int((head["mean count"] < 1).sum())),
        "depth_p5": f"{np.percentile(totals, 5):,.0f}",
        "depth_p95": f"{np.percentile(totals, 95):,.0f}",
    }
