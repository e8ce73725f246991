"""Figures of the noise ceiling: by section, against depth, fractions reached, per gene."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stlib.pl._labels import model_label, model_labels
from stlib.pl._style import house_style, subplots


def interval_lines(ax, y, lo, hi, colors, lw: float = 1.5) -> None:
    """Horizontal interval lines from ``lo`` to ``hi`` at ``y``, drawn as they are.

    Unlike ``errorbar``'s distances from the point, the lines need not contain the point: a
    percentile bootstrap interval can lie beside its own estimate, and the figure shows it so.
    """
    ax.hlines(np.atleast_1d(y), np.atleast_1d(lo), np.atleast_1d(hi), colors=colors, lw=lw)


@house_style
def ceiling_by_section(by_section: pd.DataFrame) -> Figure:
    """Per-gene noise ceilings in each section (ordered by depth), one box per gene rule.

    Parameters
    ----------
    by_section
        :func:`stlib.tl.ceiling.ceilings` (``by="section"``) of one or more gene rules stacked with a
        ``rule`` column: the columns ``rule``, ``section``, ``split``, ``median_total`` and
        ``ceiling`` are read (NaN ceilings are left out).

    Returns
    -------
    Figure
        One axis: per section (x, by increasing ``median_total``, labelled with its split and
        median counts per spot) a box of the genes' ceilings for each rule, y from 0 to 1.
    """
    order = (by_section.drop_duplicates("section").sort_values("median_total")[["section", "split", "median_total"]])
    rules = list(dict.fromkeys(by_section["rule"]))
    fig, ax = subplots(height=3.4)
    width = 0.8 / len(rules)
    for i, rule in enumerate(rules):
        sub = by_section[by_section["rule"] == rule]
        data = [sub.loc[sub["section"] == s, "ceiling"].dropna().to_numpy() for s in order["section"]]
        pos = np.arange(len(order)) + (i - (len(rules) - 1) / 2) * width
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
        for patch in bp["boxes"]:
            patch.set_facecolor(f"C{i}")
            patch.set_alpha(0.7)
        ax.plot([], [], color=f"C{i}", lw=6, alpha=0.7, label=f"{rule} genes")
    ax.set_xticks(np.arange(len(order)))
    ax.set_xticklabels([f"{s}\n{sp}\n{m:,.0f}" for s, sp, m in order.itertuples(index=False)])
    ax.set_xlabel("section, split, median counts per spot")
    ax.set_ylabel("noise ceiling of PCC, per gene")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig


@house_style
def ceiling_vs_depth(depth: pd.DataFrame) -> Figure:
    """Mean ceiling against median counts per spot, each section thinned to lower depths.

    Parameters
    ----------
    depth
        :func:`stlib.tl.ceiling.depth_summary` of :func:`stlib.tl.ceiling.ceiling_vs_depth` with a
        ``rule`` column: ``rule``, ``section``, ``split``, ``fraction``, ``median_total`` and
        ``mean_ceiling`` are read.

    Returns
    -------
    Figure
        One panel per rule (shared y): per section a line of ``mean_ceiling`` against
        ``median_total`` (log x), coloured by split, an open square at its sequenced depth
        (``fraction == 1``), and the shallowest section named.
    """
    rules = list(dict.fromkeys(depth["rule"]))
    fig, axes = subplots(1, len(rules), height=3.2, sharey=True, squeeze=False)
    colors = {"train": "tab:blue", "valid": "tab:orange", "test": "tab:green"}
    for ax, rule in zip(axes[0], rules):
        sub = depth[depth["rule"] == rule]
        for sec, g in sub.groupby("section", sort=False):
            g = g.sort_values("median_total")
            c = colors.get(g["split"].iloc[0], "grey")
            ax.plot(g["median_total"], g["mean_ceiling"], "-o", ms=3, color=c, alpha=0.8)
            top = g[g["fraction"] == 1.0].iloc[0]
            ax.plot(top["median_total"], top["mean_ceiling"], "s", ms=8, mfc="white", mec=c)
            if top["median_total"] == sub.loc[sub["fraction"] == 1.0, "median_total"].min():  # the shallowest
                ax.annotate(sec, (top["median_total"], top["mean_ceiling"]), xytext=(4, 4),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("median counts per spot\n(after thinning)")
        ax.set_title(f"{rule} genes")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("mean noise ceiling over genes")
    handles = [plt.Line2D([], [], color=c, marker="o", ms=3) for c in colors.values()]
    handles.append(plt.Line2D([], [], ls="", marker="s", mfc="white", mec="black", ms=8))
    axes[0][-1].legend(handles, [*colors, "as sequenced"], loc="lower right")
    return fig


@house_style
def fraction_of_ceiling(iv: pd.DataFrame, split: str = "test", chosen: str | None = None) -> Figure:
    """Forest plot: each model's fraction of the noise ceiling on ``split`` with its 95% interval.

    Parameters
    ----------
    iv
        Intervals indexed by (``model``, ``split``) with ``pcc``, ``fraction``, ``fraction_lo`` and
        ``fraction_hi`` (``stlib.book.scoring.interval_table``); rows without a PCC are left out.
    split
        The split shown.
    chosen
        The model chosen on valid, labelled in bold with ": the chosen model".

    Returns
    -------
    Figure
        One row per model by its readable name (:data:`stlib.pl.MODEL_LABELS`), sorted by
        fraction: the point and its interval, ``depth_only`` in red; lines at 0 and at 1 (the
        ceiling).
    """
    sub = iv.xs(split, level="split")
    sub = sub[sub["pcc"].notna()].sort_values("fraction")
    fig, ax = subplots(height=0.24 * len(sub) + 1.0)
    y = np.arange(len(sub))
    colors = ["tab:red" if m == "depth_only" else "tab:blue" for m in sub.index]
    interval_lines(ax, y, sub["fraction_lo"], sub["fraction_hi"], colors)
    ax.scatter(sub["fraction"], y, c=colors, s=18, zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{lab}: the chosen model" if m == chosen else lab
                        for m, lab in zip(sub.index, model_labels(sub.index))])
    for label, m in zip(ax.get_yticklabels(), sub.index):
        label.set_fontweight("bold" if m == chosen else "normal")
    ax.set_ylabel("model")
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(1, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"fraction of the noise ceiling\n({split}, 95% interval)")
    ax.set_xlim(min(-0.1, float(sub["fraction_lo"].min()) - 0.05), 1.05)
    return fig


def _label_points(ax, rows: pd.DataFrame, x: str, y: str, *, gap: float = 0.055) -> None:
    """Name each row's point beside it, moving a label down (with a thin leader line) until it is
    at least ``gap`` (axes fraction) below every label already placed nearby: labels of clustered
    points would otherwise print over each other."""
    to_axes = ax.transLimits
    placed: list[tuple[float, float]] = []
    for name, row in rows.sort_values(y, ascending=False).iterrows():
        px, py = to_axes.transform((row[x], row[y]))
        tx, ty = px + 0.015, py + 0.01
        while any(abs(ty - qy) < gap and abs(tx - qx) < 0.3 for qx, qy in placed):
            ty -= gap
        placed.append((tx, ty))
        moved = abs(ty - (py + 0.01)) > 1e-9
        ax.annotate(str(name), (row[x], row[y]), xytext=(tx, ty), textcoords="axes fraction", va="bottom",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"} if moved else None)


@house_style
def per_gene_vs_ceiling(per_gene: pd.DataFrame, models: Sequence[str], n_labels: int = 8) -> Figure:
    """Per gene: each model's test PCC against the gene's ceiling (the line y = x is the ceiling).

    Parameters
    ----------
    per_gene
        One row per gene (index: gene name) with a ``ceiling`` column and one PCC column per model
        (``stlib.book.tables.per_gene_table``); genes with a NaN in either are left out of a panel.
    models
        The model columns to plot, one panel each (two panels a row).
    n_labels
        Each panel names its ``n_labels // 2`` genes with the highest PCC (half of ``n_labels``).

    Returns
    -------
    Figure
        One scatter per model (shared axes): ceiling (x, 0 to 1) against PCC (y), with the line
        y = x and the number of genes in the title.
    """
    ncol = min(2, len(models))
    nrow = -(-len(models) // ncol)
    fig, axes = subplots(nrow, ncol, height=2.9 * nrow, sharey=True, sharex=True, squeeze=False)
    for ax in axes.ravel()[len(models):]:
        ax.set_visible(False)
    for ax, m in zip(axes.ravel(), models):
        ok = per_gene[["ceiling", m]].dropna()
        ax.scatter(ok["ceiling"], ok[m], s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlim(0, 1)
        ax.set_title(f"{model_label(m)}\n({len(ok)} genes with a PCC and a ceiling)")
    for ax, m in zip(axes.ravel(), models):  # labels once the shared limits are final
        ok = per_gene[["ceiling", m]].dropna()
        _label_points(ax, ok.sort_values(m, ascending=False).head(n_labels // 2), "ceiling", m)
    for ax in axes[-1]:
        ax.set_xlabel("gene's noise ceiling (test)")
    for ax in axes[:, 0]:
        ax.set_ylabel("gene's test PCC")
    return fig


@house_style
def variants_vs_ceiling(tables: dict[str, pd.DataFrame], reference: str = "frozen probe",
                        oracle: str = "depth_only") -> Figure:
    """One panel per gene rule: each variant's fraction of the test ceiling with its 95% interval.

    ``tables``: rule -> :func:`stlib.book.beyond.variant_table`. Gains over ``reference`` (paired
    interval above zero) are filled, every other variant open, the oracle (red) included; the
    reference is a grey diamond, and the dotted line marks its fraction. The panels share both axes.

    Parameters
    ----------
    tables
        Gene rule -> variant table (the first element of ``stlib.book.beyond.variant_table``): one
        row per variant with ``fraction``, ``fraction_lo``, ``fraction_hi`` and optionally ``gain``;
        the first table's row order is used for every panel.
    reference
        The variant that the gains are measured against (grey, with a dotted line).
    oracle
        The variant drawn in red and labelled "(oracle)".

    Returns
    -------
    Figure
        One panel per gene rule (shared y): each variant's fraction of the test ceiling with its
        95% interval, filled when it is a gain, open otherwise (the reference: a grey diamond).
    """
    order = list(next(iter(tables.values())).index)
    fig, axes = subplots(1, len(tables), height=0.26 * len(order) + 1.3, sharey=True, sharex=True, squeeze=False)
    y = np.arange(len(order))[::-1]
    for ax, (rule, tab) in zip(axes[0], tables.items()):
        tab = tab.reindex(order)
        for yi, (m, row) in zip(y, tab.iterrows()):
            color = "tab:red" if m == oracle else "grey" if m == reference else "tab:blue"
            interval_lines(ax, yi, row["fraction_lo"], row["fraction_hi"], color)
            filled = bool(row.get("gain", False)) or m == reference
            ax.scatter(row["fraction"], yi, s=28, zorder=3, edgecolors=color, marker="D" if m == reference else "o",
                       facecolors=color if filled else "white")
        if reference in tab.index:
            ax.axvline(tab.loc[reference, "fraction"], color="grey", lw=0.8, ls=":")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{rule} genes")
        ax.set_xlabel("fraction of the test ceiling")
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([f"{model_label(m)} (oracle)" if m == oracle else m for m in order])
    axes[0, 0].set_ylabel("variant")
    fig.suptitle("test section, 95% intervals")
    return fig
