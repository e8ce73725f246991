"""The tables of the ceiling chapter: ceilings by section and split, against depth, per gene,
and the sentences that read them."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib.models.reference import REFERENCE_MODELS
from stlib._format import with_interval
from stlib._utils import SPLITS
from stlib.ceiling._counts import check_counts, thin
from stlib.ceiling._estimator import _with_rest, noise_ceiling


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
    df = noise_ceiling(X, transform, sections=secs, groups=None if by == "section" else split,
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
    full, mask = _with_rest(check_counts(X), totals, np.ones(len(genes), dtype=bool))
    secs = data.obs["section"].astype(str).to_numpy()
    split = pd.Series(data.obs["split"].astype(str).to_numpy(), index=secs).groupby(level=0).first()
    rng = np.random.default_rng(seed)
    frames = []
    for f in fractions:
        thinned = full if f == 1.0 else thin(full, f, rng)
        tot = pd.Series(np.asarray(thinned.sum(axis=1), dtype=np.float64).ravel(), index=secs)
        df = noise_ceiling(thinned, transform, sections=secs, genes_mask=mask, n_draws=n_draws,
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


def ceiling_caption(iv: pd.DataFrame, space: str = "target") -> str:
    """The noise ceiling of each split (mean over genes, with its interval), for a table caption."""
    sub = iv[iv["space"] == space].reset_index().drop_duplicates("split").set_index("split")
    parts = [f"  {s}: {with_interval(sub.loc[s, 'ceiling'], sub.loc[s, 'ceiling_lo'], sub.loc[s, 'ceiling_hi'])}"
             for s in SPLITS if s in sub.index]
    return "noise ceiling of the mean PCC, pooled over each split's spots [95% CI]:\n" + "\n".join(parts)


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
