"""The numbers the chapters' text quotes, as formatted strings (for ``myst_nb.glue``).

Chapter 11 reads the noise ceiling (:mod:`stlib.tl.ceiling`) against the scores of the
models (:func:`ceiling_reading`, :func:`per_gene_reading`), the test section by its tissue
compartments (:func:`compartment_reading`), and names the model it quotes on valid only
(:func:`chosen_image_model`).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get
from stlib._format import with_interval
from stlib.pl._labels import model_label
from stlib.models.reference import REFERENCE_MODELS
from stlib.tl.ceiling import depth_match


def chosen_image_model(iv: pd.DataFrame, choose_on: str = "valid", stat: str = "fraction") -> str:
    """The image model with the highest ``stat`` on ``choose_on``: the book's "chosen model".

    Reference models (:data:`stlib.models.reference.REFERENCE_MODELS`: the depth-only oracle, the
    train mean) are not image models and are never chosen; only models scored in the target space
    compete. The choice is made on train or valid, never on test.

    Parameters
    ----------
    iv
        Intervals indexed by ``(model, split)`` with a ``stat`` column and, if it has one, ``space``
        (chapter 8's); with ``space``, only models scored in the target space compete.
    choose_on
        ``"valid"`` (default) or ``"train"``.
    stat
        The column that ranks the models (``"fraction"``: of the noise ceiling).

    Returns
    -------
    str
        The chosen model.
    """
    if choose_on not in ("train", "valid"):
        raise ValueError(f"choose_on={choose_on!r}: a model is chosen on train or valid, never on test")
    sub = iv.xs(choose_on, level="split")
    keep = ~sub.index.isin(REFERENCE_MODELS)
    if "space" in sub.columns:
        keep &= (sub["space"] == "target").to_numpy()
    sub = sub[keep][stat].dropna()
    if sub.empty:
        raise ValueError(f"no image model has a {stat!r} on {choose_on!r}")
    return str(sub.idxmax())


def ceiling_reading(iv: pd.DataFrame, by_section: pd.DataFrame, depth: pd.DataFrame, paper: pd.DataFrame,
                    rule: str, split: str = "test", choose_on: str = "valid") -> dict[str, str]:
    """The numbers chapter 11's text quotes, as formatted strings (for ``myst_nb.glue``).

    ``by_section``: :func:`ceilings` per section stacked over gene rules (``rule`` column);
    ``depth``: :func:`ceiling_vs_depth` stacked likewise; ``rule``: the run's gene rule. The model
    quoted (``best_model``) is :func:`chosen_image_model` on ``choose_on``; its numbers are read on
    ``split``.
    """
    best = chosen_image_model(iv, choose_on)
    r = iv.loc[(best, split)]
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
            "above": ("its median depth does not set its ceiling: at that depth the others reach less, because "
                      "its depth varies with its tissue from spot to spot, and that variation is signal"),
            "within": "at equal depth it is like the others: its lower ceiling is its depth",
            "below": "even at equal depth it is below the others: its depth and its tissue both lower it",
        }[where],
        "other_rule": str(other_rule),
        "rule_gain_min": f"{gain.min():+.2f}",
        "rule_gain_max": f"{gain.max():+.2f}",
        "test_ceiling": with_interval(r["ceiling"], r["ceiling_lo"], r["ceiling_hi"], 2),
        "best_model": model_label(str(best)),
        "chosen_on": choose_on,
        "best_pcc": with_interval(r["pcc"], r["pcc_lo"], r["pcc_hi"]),
        "best_fraction": with_interval(r["fraction"], r["fraction_lo"], r["fraction_hi"]),  # places the interval supports
        "depth_fraction": (with_interval(*iv.loc[("depth_only", split), ["fraction", "fraction_lo", "fraction_hi"]])
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
    totals = np.asarray(data.X[get.split_mask(data, split)].sum(axis=1), dtype=np.float64).ravel()
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


def compartment_reading(by_comp: pd.DataFrame, by_section: pd.DataFrame, model: str,
                        reference: str = "depth_only") -> dict[str, str]:
    """What chapter 11 says about the test split's depth and scores by tissue compartment.

    Parameters
    ----------
    by_comp
        :func:`stlib.book.scoring.by_compartment` of the split (``attrs["split"]`` names it).
    by_section
        Chapter 11's per-section ceilings with a ``median_total`` column (per section) and ``section``.
    model
        The chosen image model (:func:`chosen_image_model`), quoted per compartment.
    reference
        The reference quoted beside it (the depth-only model).

    Returns
    -------
    dict
        ``comp_split_median`` (median counts per spot of the whole split), ``comp_other_median_min``
        (the lowest median of the sections outside the split), and per compartment ``c`` of
        :data:`stlib.get.COMPARTMENTS` (``-`` written ``_``; "n/a" when it has fewer than 3 spots):
        ``comp_<c>_spots``, ``comp_<c>_median``, ``comp_<c>_model`` and ``comp_<c>_reference`` (PCC with
        interval), plus ``comp_model``, ``comp_reference``, ``comp_annotation`` (the annotation's source)
        and ``comp_deep_vs_others`` (whether the tumour spots' median is above every other section's).
    """
    split_sections = set(by_comp.attrs.get("sections", []))
    med = by_section.groupby("section")["median_total"].first()
    others = med.drop(index=[s for s in med.index if s in split_sections], errors="ignore")
    out = {"comp_model": model_label(model), "comp_reference": model_label(reference),
           "comp_annotation": str(by_comp.attrs.get("annotation", "unknown")),
           "comp_split_median": f"{by_comp.loc['all', 'median counts'].iloc[0]:,.0f}",
           "comp_other_median_min": f"{others.min():,.0f}" if len(others) else "n/a"}
    for c in get.COMPARTMENTS:
        key = c.replace("-", "_")
        if c not in by_comp.index.get_level_values("compartment"):
            for part in ("spots", "median", "model", "reference"):
                out[f"comp_{key}_{part}"] = "n/a"
            continue
        t = by_comp.loc[c]
        out[f"comp_{key}_spots"] = str(int(t["spots"].iloc[0]))
        out[f"comp_{key}_median"] = f"{t['median counts'].iloc[0]:,.0f}"
        for part, m in (("model", model), ("reference", reference)):
            out[f"comp_{key}_{part}"] = (with_interval(t.loc[m, "pcc"], t.loc[m, "pcc_lo"], t.loc[m, "pcc_hi"])
                                         if m in t.index else "n/a")
    if "tumour" in by_comp.index.get_level_values("compartment") and len(others):
        deep = by_comp.loc["tumour", "median counts"].iloc[0] > others.max()
        out["comp_deep_vs_others"] = ("deeper than the median spot of every other section" if deep
                                      else "not deeper than the median spot of every other section")
    else:
        out["comp_deep_vs_others"] = "n/a"
    return out


# ------------------------------------------------------------------ chapter 11: the best-predicted genes
IMMUNE_OVER = ("immune genes are over-represented among the best predicted: the image carries most where "
               "immune cells gather (lymphocyte- and macrophage-rich stroma looks unlike tumour epithelium in H&E)")
IMMUNE_NOT = "immune genes are not over-represented among the best predicted"


def top_genes_reading(iv: pd.DataFrame, per_gene: pd.DataFrame, *, split: str = "test", n_top: int = 20,
                      choose_on: str = "valid") -> tuple[str, pd.Series, pd.DataFrame, dict[str, str]]:
    """The genes the chosen image model predicts best, their marker classes, and the text about them.

    Parameters
    ----------
    iv
        Chapter 11's intervals, indexed by ``(model, split)`` with a ``fraction`` column (of the ceiling).
    per_gene
        Per-gene PCC of each model on ``split`` (columns: models, ``depth_only`` among them).
    split
        The split whose per-gene PCC ranks the genes.
    n_top
        How many genes.
    choose_on
        The split whose fraction of the ceiling chooses the model (:func:`chosen_image_model`).

    Returns
    -------
    tuple
        The chosen image model, its ``n_top`` genes (per-gene PCC, descending), the class shares
        (:func:`stlib.book.markers.class_shares`: top genes against all target genes) and the
        glued values ``top_model, top_genes, top_immune, all_immune,
        n_all_genes, n_beyond_depth, beyond_depth_genes, immune_reading, n_stromal,
        n_epithelial, n_adipose, erbb2_in``. A gene is "beyond depth" when the depth-only
        model's PCC is below half the best model's. Immune genes are "over-represented" when
        their share among the top genes is above 1.5 times their share among all.
    """
    from stlib.book import markers

    top_model = chosen_image_model(iv, choose_on)
    top = per_gene[top_model].dropna().sort_values(ascending=False).head(n_top)
    shares = markers.class_shares(top.index, per_gene.index)
    beyond = per_gene.loc[top.index, "depth_only"].fillna(0) < 0.5 * top
    over = (shares.loc["immune", "share of top"] > 1.5 * shares.loc["immune", "share of all"]
            if "immune" in shares.index else False)
    out = {
        "top_model": model_label(str(top_model)),
        "top_genes": ", ".join(f"{g} ({v:.2f})" for g, v in top.head(10).items()),
        "top_immune": str(int(shares["top genes"].get("immune", 0))),
        "all_immune": str(int(shares["all genes"].get("immune", 0))),
        "n_all_genes": str(int(shares["all genes"].sum())),
        "n_beyond_depth": str(int(beyond.sum())),
        "beyond_depth_genes": ", ".join(top.index[beyond.to_numpy()][:8]),
        "immune_reading": IMMUNE_OVER if over else IMMUNE_NOT,
    }
    for cls, key in (("stromal", "n_stromal"), ("epithelial / tumour", "n_epithelial"), ("adipose", "n_adipose")):
        out[key] = str(int(shares["all genes"].get(cls, 0)))
    out["erbb2_in"] = "is" if "ERBB2" in per_gene.index else "is not"
    return str(top_model), top, shares, out


# ------------------------------------------------------------------ chapter 15: beyond the report
def signed_interval(table: pd.DataFrame, row: str, column: str = "vs probe") -> str:
    """``"+0.012 [-0.003, +0.020]"``: a paired difference of ``table`` with its interval.

    Parameters
    ----------
    table
        A variant table with columns ``column``, ``column + " lo"`` and ``column + " hi"``.
    row
        The row (model).
    column
        The difference's column.

    Returns
    -------
    str
        Signed, three decimals.
    """
    r = table.loc[row]
    return f"{r[column]:+.3f} [{r[column + ' lo']:+.3f}, {r[column + ' hi']:+.3f}]"


def best_variant_readings(tables: dict[str, pd.DataFrame], probe: str) -> dict[str, str]:
    """Per gene rule, the model chosen on valid and what it scores on test, against the probe.

    Parameters
    ----------
    tables
        Gene rule -> chapter 15's variant table (:func:`stlib.book.beyond.variant_table`), with a
        ``depth_only`` row.
    probe
        The probe's row (:data:`stlib.book.beyond.PROBE`).

    Returns
    -------
    dict
        ``<rule>_best, _best_pcc, _best_fraction, _probe_pcc, _probe_fraction, _oracle_fraction,
        _vs_oracle, _gains, _n_gains, _top_test`` for each rule, in that order. The best is chosen
        by valid PCC among the image models; ``_vs_oracle`` says whether its fraction's interval
        lies below, above or across the oracle's ("lies below the oracle's", ...);
        ``_top_test`` names the best on test, for the text only.
    """
    out = {}
    for rule, tab in tables.items():
        image = tab.drop(index="depth_only")
        b = image["valid pcc"].idxmax()
        out[f"{rule}_best"] = b
        out[f"{rule}_best_pcc"] = f"{tab.loc[b, 'pcc']:.3f} [{tab.loc[b, 'pcc_lo']:.3f}, {tab.loc[b, 'pcc_hi']:.3f}]"
        out[f"{rule}_best_fraction"] = (f"{tab.loc[b, 'fraction']:.2f} [{tab.loc[b, 'fraction_lo']:.2f}, "
                                        f"{tab.loc[b, 'fraction_hi']:.2f}]")
        out[f"{rule}_probe_pcc"] = f"{tab.loc[probe, 'pcc']:.3f}"
        out[f"{rule}_probe_fraction"] = f"{tab.loc[probe, 'fraction']:.2f}"
        out[f"{rule}_oracle_fraction"] = f"{tab.loc['depth_only', 'fraction']:.2f}"
        o = tab.loc["depth_only"]
        lo, hi = tab.loc[b, "fraction_lo"], tab.loc[b, "fraction_hi"]
        out[f"{rule}_vs_oracle"] = ("cannot be set beside the oracle's (an interval is missing)"
                                    if pd.isna([lo, hi, o["fraction_lo"], o["fraction_hi"]]).any()
                                    else "lies below the oracle's" if hi < o["fraction_lo"]
                                    else "lies above the oracle's" if lo > o["fraction_hi"]
                                    else "overlaps the oracle's")
        gains = list(image.index[image["gain"].astype(bool)])
        out[f"{rule}_gains"] = ", ".join(gains) if gains else "none"
        out[f"{rule}_n_gains"] = str(len(gains))
        out[f"{rule}_top_test"] = image["pcc"].idxmax()
    return out


def _where(targets: ad.AnnData, split: str) -> str:
    obs = targets.obs[get.split_mask(targets, split)]
    n_sec, n_pat = obs["section"].nunique(), obs["patient"].nunique()
    return (f"{len(obs):,} spots of {n_sec} section{'s' if n_sec > 1 else ''} of {n_pat} "
            f"patient{'s' if n_pat > 1 else ''}")


def beyond_readings(tables: dict[str, pd.DataFrame], results: dict[str, list], targets: ad.AnnData,
                    abl: pd.DataFrame, parts: list, record_table: pd.DataFrame, probe: str) -> dict[str, str]:
    """The sentences of chapter 15's summary: fine-tuning, the splits, the ablation, larger backbones.

    Parameters
    ----------
    tables
        Gene rule -> variant table, rows ``"fine-tuned CNN"``, ``"+ tta"``, ``"+ context"`` and the probe.
    results
        Gene rule -> the fitted variants (:class:`~stlib.models.ModelResult`), ``"+ smoothing"`` among them.
    targets
        The run's targets (``obs["split", "section", "patient"]``).
    abl
        The low-rank ablation's table (difference columns ``"vs chosen"``), one row ``"full rank ..."``.
    parts
        The ablation's fits, the chosen head first (its ``settings`` hold ``rank`` and ``alpha``).
    record_table
        The larger backbones' record, difference columns ``"vs recipe"``, a ``"recipe"`` row,
        ``"better than the recipe"`` and ``seconds``.
    probe
        The probe's row.

    Returns
    -------
    dict
        The glued values, in the order the chapter glues them.
    """
    out = {}
    for rule, tab in tables.items():
        out[f"{rule}_tuned_diff"] = signed_interval(tab, "fine-tuned CNN")
        up_valid = [m for m in ("+ tta", "+ context") if tab.loc[m, "valid pcc"] > tab.loc[probe, "valid pcc"]]
        not_test = [m for m in up_valid if not bool(tab.loc[m, "gain"])]
        out[f"{rule}_valid_only"] = ", ".join(not_test) if not_test else "none"
        smooth = next(r for r in results[rule] if r.name == "+ smoothing").settings["smoothing"]["weight"]
        out[f"{rule}_smooth_weight"] = f"{smooth:g}"
    out["train_where"] = _where(targets, "train")
    obs = targets.obs
    shared = set(obs.loc[get.split_mask(targets, "valid"), "patient"]) <= set(obs.loc[get.split_mask(targets, "train"),
                                                                                       "patient"])
    out["valid_where"] = _where(targets, "valid") + (", all of them train patients" if shared else "")
    out["valid_reading"] = (
        "Valid shares its patients with train, so a variant that fits the train patients better "
        "looks better there; only the held-out patient tells." if shared else "Valid holds other patients than "
        "train, but it chose among the settings, so the chosen settings' valid scores are optimistic; only the "
        "test patients, used for no choice, read them without that bias.")
    full = next(n for n in abl.index if n.startswith("full rank"))
    out["abl_full"] = signed_interval(abl, full, "vs chosen")
    out["abl_rank"] = str(parts[0].settings["rank"])
    out["abl_alpha"] = f"{parts[0].settings['alpha']:g}"
    larger = record_table.drop(index="recipe")
    better = [m for m in larger.index if bool(larger.loc[m, "better than the recipe"])]
    worse = [m for m in larger.index if larger.loc[m, "vs recipe hi"] < 0]
    out["larger_diffs"] = "; ".join(f"{m}: {signed_interval(record_table, m, 'vs recipe')}" for m in larger.index)
    out["larger_reading"] = ((f"better than the recipe: {', '.join(better)}" if better else
                              "none is better than the recipe (no interval above zero)")
                             + (f"; worse: {', '.join(worse)}" if worse else ""))
    out["larger_seconds"] = (f"{larger['seconds'].min():.0f} to {larger['seconds'].max():.0f} s against "
                             f"{record_table.loc['recipe', 'seconds']:.0f} s for the recipe")
    out["abl_full_reading"] = (
        "the projection onto a few directions of expression is what helps: the same ridge "
        "without it is worse, with an interval below zero" if abl.loc[full, "vs chosen hi"] < 0 else
        "the projection alone does not separate from the same ridge at full rank")
    return out


# ------------------------------------------------------------------ the intro's design line (chapter 8)
def design_line(targets: ad.AnnData) -> str:
    """The run's design in one line: patients, sections and spots of the data and of each split.

    Parameters
    ----------
    targets
        The run's spots (``obs``: ``patient``, ``section``, ``split``).

    Returns
    -------
    str
        E.g. ``"2 patients, 6 sections, 1,193 spots: train 551 spots of 3 sections of 1 patient (C),
        valid ..., test 283 spots of 1 section of 1 patient (B)"``.
    """
    obs = targets.obs
    parts = []
    for split in ("train", "valid", "test"):
        m = get.split_mask(targets, split)
        if m.any():
            pats = ", ".join(sorted(obs.loc[m, "patient"].astype(str).unique()))
            parts.append(f"{split} {_where(targets, split)} ({pats})")
    n_pat, n_sec = obs["patient"].nunique(), obs["section"].nunique()
    return (f"{n_pat} patient{'s' if n_pat > 1 else ''}, {n_sec} section{'s' if n_sec > 1 else ''}, "
            f"{len(obs):,} spots: " + "; ".join(parts))
