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

    Parameters
    ----------
    data
        All genes' raw counts in ``X``, with ``obs["section"]`` and ``obs["split"]``.
    genes
        The target genes (``var_names`` of ``data``), in output order.
    transform
        The target transform (:data:`stlib.pp.TRANSFORMS`) or ``"counts"``.
    by
        ``"section"`` (default): a ceiling per section; any other value: per split, pooled over its
        sections' spots.
    n_draws, seed
        Thinnings averaged and their seed (:func:`noise_ceiling`).

    Returns
    -------
    DataFrame
        The columns of :func:`noise_ceiling`, one row per (section, gene) with ``split`` and
        ``median_total`` inserted after ``section``; with ``by="split"`` one row per (split, gene),
        the first column ``split``.
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

    Parameters
    ----------
    data
        All genes' raw counts in ``X``, with ``obs["section"]`` and ``obs["split"]``.
    genes
        The target genes (``var_names`` of ``data``).
    transform
        The target transform (:data:`stlib.pp.TRANSFORMS`) or ``"counts"``.
    fractions
        Shares of the molecules kept, in ``[0, 1]``; each is thinned from the full counts.
    n_draws, seed
        Thinnings averaged per ceiling, and the seed of both the depth thinning and the ceilings.

    Returns
    -------
    DataFrame
        Columns ``section``, ``split``, ``fraction``, ``median_total``, ``gene`` and ``ceiling``,
        one row per (fraction, section, gene).
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
    over genes: ``mean_ceiling`` over the genes with a ceiling, and ``n_nan``.

    Parameters
    ----------
    depth
        :func:`ceiling_vs_depth` output, optionally several stacked with a ``rule`` column.

    Returns
    -------
    DataFrame
        One row per combination of the key columns present (``rule``, ``section``, ``split``,
        ``fraction``, ``median_total``), in order of appearance, with ``mean_ceiling`` (NaN skipped)
        and ``n_nan`` (genes without a ceiling).
    """
    keys = [k for k in ("rule", "section", "split", "fraction", "median_total") if k in depth.columns]
    g = depth.groupby(keys, sort=False)["ceiling"]
    return pd.DataFrame({"mean_ceiling": g.mean(), "n_nan": g.apply(lambda c: int(c.isna().sum()))}).reset_index()


def ceiling_caption(iv: pd.DataFrame, space: str = "target") -> str:
    """The noise ceiling of each split (mean over genes, with its interval), for a table caption.

    Parameters
    ----------
    iv
        An interval table with one row per (model, split): ``split`` (a column or an index level),
        ``space``, ``ceiling``, ``ceiling_lo`` and ``ceiling_hi`` (the columns of
        :meth:`stlib.tl.uncertainty.Bootstrap.table` plus ``split`` and ``space``). The first row of
        each split in ``space`` is read.
    space
        The score space whose ceiling is shown: ``"target"`` (the run's targets) or ``"counts"``.

    Returns
    -------
    str
        A heading line, then one line per split present (train, valid, test):
        ``"  <split>: <ceiling> [<lo>, <hi>]"`` to three decimals, ``n/a`` without a ceiling.
    """
    sub = iv[iv["space"] == space].reset_index().drop_duplicates("split").set_index("split")
    parts = [f"  {s}: {with_interval(sub.loc[s, 'ceiling'], sub.loc[s, 'ceiling_lo'], sub.loc[s, 'ceiling_hi'])}"
             for s in SPLITS if s in sub.index]
    return "noise ceiling of the mean PCC, pooled over each split's spots [95% CI]:\n" + "\n".join(parts)


def ceiling_summary(by_section: pd.DataFrame, by_split: pd.DataFrame) -> pd.DataFrame:
    """Mean ceiling over genes per section (by depth) and per pooled split, one column per gene rule.

    ``by_section`` / ``by_split``: :func:`ceilings` outputs stacked with a ``rule`` column.

    Parameters
    ----------
    by_section
        :func:`ceilings` outputs with ``by="section"``, stacked with a ``rule`` column.
    by_split
        :func:`ceilings` outputs with ``by="split"``, stacked the same way.

    Returns
    -------
    DataFrame
        Indexed by ``spots of`` (a section, or ``"<split> (pooled)"``): the sections by increasing
        median total, then the pooled splits (train, valid, test). Columns ``split``, ``median counts
        per spot`` (formatted; ``"(its sections)"`` for pooled rows) and ``mean ceiling, <rule>
        genes`` per rule; ``attrs["genes without a ceiling (section rows)"]`` counts the section rows
        without a ceiling, per rule.
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

    Parameters
    ----------
    depth
        :func:`ceiling_vs_depth` outputs stacked with a ``rule`` column.
    rule
        The gene rule (a value of ``rule``) to compare.

    Returns
    -------
    DataFrame
        Indexed by ``section``: first the section with the lowest median total as measured
        (``thinned to`` 1.0), then each other section at the fraction whose median total is nearest
        to it on a log scale. Columns ``thinned to``, ``median counts per spot``, ``mean ceiling``
        and ``genes compared``.
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
