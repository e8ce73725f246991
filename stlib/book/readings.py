"""The numbers the chapters' text quotes, as formatted strings (for ``myst_nb.glue``).

Chapter 11 reads the noise ceiling (:mod:`stlib.tl.ceiling`) against the scores of the
models: :func:`ceiling_reading` and :func:`per_gene_reading`.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from stlib._format import with_interval
from stlib.models.reference import REFERENCE_MODELS
from stlib.tl.ceiling import depth_match


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
