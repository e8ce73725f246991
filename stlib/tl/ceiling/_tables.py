"""The tables of the ceiling: ceilings by section and split, against depth, per gene (the
sentences that read them are the book's: :mod:`stlib.book.readings`)."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib._format import with_interval
from stlib._utils import SPLITS
from stlib.tl.ceiling._counts import check_counts, thin
from stlib.tl.ceiling._estimator import _with_rest, noise_ceiling


def _target_counts(data: ad.AnnData, genes: list[str]) -> tuple[Any, np.ndarray]:
    """The target genes' raw counts and every spot's all-gene total, from all-gene data."""
    X = data[:, genes].X
    totals = np.asarray(data.X.sum(axis=1), dtype=np.float64).ravel()
    return X, totals


def ceilings(data: ad.AnnData, genes: list[str], transform: str, *, by: str = "section", n_draws: int = 5,
             seed: int = 0) -> pd.DataFrame:
    """Per gene, the noise ceiling in each section (``by="section"``) or pooled over each split
    (``by="split"``), for the given genes and target transform (:func:`stlib.tl.ceiling.noise_ceiling`).

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
