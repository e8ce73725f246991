"""Figures of the book. Plotting functions compute nothing a tool function should; they
return the matplotlib figure."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def qc_overview(adata: ad.AnnData) -> Figure:
    """Counts per spot and genes per spot, by section (log scale), coloured by split."""
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    ngenes = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    df = pd.DataFrame({"section": adata.obs["section"].astype(str).to_numpy(), "counts": totals,
                       "genes": ngenes, "split": adata.obs.get("split", "all").astype(str).to_numpy()})
    order = list(dict.fromkeys(df.sort_values(["split", "section"])["section"]))
    colors = {"train": "tab:blue", "valid": "tab:orange", "test": "tab:green"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    for ax, col, label in zip(axes, ["counts", "genes"], ["total counts per spot", "genes detected per spot"]):
        data = [df.loc[df.section == s, col].to_numpy() for s in order]
        bp = ax.boxplot(data, tick_labels=order, patch_artist=True, showfliers=False)
        for patch, s in zip(bp["boxes"], order):
            patch.set_facecolor(colors.get(df.loc[df.section == s, "split"].iloc[0], "grey"))
        ax.set_yscale("log")
        ax.set_ylabel(label)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    axes[1].legend(handles, list(colors), loc="lower right", fontsize=8)
    return fig


def target_overview(targets: ad.AnnData) -> Figure:
    """Mean vs variance of the target genes (train spots), and the share of zeros per gene."""
    tr = (targets.obs["split"] == "train").to_numpy()
    X = np.asarray(targets.X[tr])
    counts = targets.layers["counts"][tr]
    counts = counts.toarray() if hasattr(counts, "toarray") else np.asarray(counts)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    axes[0].scatter(X.mean(0), X.var(0), s=6)
    axes[0].set_xlabel("mean of target (train)")
    axes[0].set_ylabel("variance of target (train)")
    axes[1].hist((counts == 0).mean(0), bins=30, color="grey")
    axes[1].set_xlabel("fraction of train spots with zero counts")
    axes[1].set_ylabel("genes")
    return fig


def spatial_panels(
    expr: ad.AnnData,
    keys: Sequence[str],
    *,
    section: str,
    titles: Sequence[str] | None = None,
    cmaps: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 1.3,
    vlims: Sequence[tuple[float, float] | None] | None = None,
    cbar_labels: Sequence[str | None] | None = None,
) -> Figure:
    """Spots over the section's H&E (``images["hires"]``), one panel per ``obs`` key, via squidpy.

    ``cbar_labels`` label the colour bars of continuous keys (one entry per key, ``None`` for none).
    """
    from stlib._compat import import_squidpy

    sq = import_squidpy()
    ncols = ncols or len(keys)
    nrows = int(np.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.6 * nrows), layout="constrained", squeeze=False)
    for i, key in enumerate(keys):
        ax = axes.flat[i]
        kw = {}
        if vlims is not None and vlims[i] is not None:
            kw = {"vmin": vlims[i][0], "vmax": vlims[i][1]}
        sq.pl.spatial_scatter(
            expr, color=key, library_id=section, library_key="section", img_res_key="hires", ax=ax,
            cmap=(cmaps[i] if cmaps else None), size=size, title=(titles[i] if titles else key),
            frameon=False, **kw,
        )
        ax.title.set_fontsize(10)
        if cbar_labels is not None and cbar_labels[i]:
            for coll in ax.collections:
                if getattr(coll, "colorbar", None) is not None:
                    coll.colorbar.set_label(cbar_labels[i], fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return fig


def count_histogram(true_counts: np.ndarray, pred_counts: np.ndarray, *, title: str, bins: int = 60) -> Figure:
    """Fig. 4: histogram of measured counts and of predicted means (all genes and spots of a split).

    Both on the same bins (up to the 99.5th percentile of the measured counts), log-scaled
    frequency; a predicted mean is a real number, a count an integer.
    """
    t = np.asarray(true_counts).ravel()
    p = np.asarray(pred_counts).ravel()
    p = p[np.isfinite(p)]
    hi = np.quantile(t, 0.995)
    edges = np.arange(-0.5, max(np.ceil(hi), 2) + 0.5, 1.0) if hi <= bins else np.linspace(0, hi, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    ax.hist(t, bins=edges, alpha=0.6, label="measured counts", color="black")
    ax.hist(p, bins=edges, alpha=0.6, label="predicted means", color="tab:red")
    ax.set_yscale("log")
    ax.set_xlabel("counts per spot and gene (unit-wide bins; the top 0.5% of measured counts cut)")
    ax.set_ylabel("spot x gene pairs (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    return fig


def cluster_figure(means: pd.DataFrame, errors: pd.DataFrame, gene: str, section: str) -> Figure:
    """Fig. 1: one gene's mean per Leiden cluster (truth beside each model), and per cluster the
    error of the cluster means averaged over all genes (:func:`stlib.qualitative.cluster_errors`)."""
    models = [c for c in means.columns if c not in ("n_spots", "truth") and means[c].notna().any()]
    cols = ["truth", *models]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    x = np.arange(len(means))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        axes[0].bar(x + i * width - 0.4 + width / 2, means[c], width, label=c, color="black" if c == "truth" else f"C{i - 1}")
    ticks = [f"{k}\n(n={n})" for k, n in zip(means.index, means["n_spots"])]
    axes[0].set_xticks(x, ticks, fontsize=8)
    axes[0].set_xlabel("Leiden cluster (spots)")
    axes[0].set_ylabel(f"mean {gene} (log-normalised)")
    axes[0].set_title(f"(a) {gene} per cluster, section {section}", fontsize=10)
    width = 0.8 / len(models)
    for i, c in enumerate(models):
        axes[1].bar(x + i * width - 0.4 + width / 2, errors[c], width, color=f"C{i}")
    axes[1].set_xticks(x, ticks, fontsize=8)
    axes[1].set_xlabel("Leiden cluster (spots)")
    axes[1].set_ylabel("|predicted - true| cluster mean,\naveraged over genes")
    axes[1].set_title(f"(b) error of cluster means, all {errors.attrs.get('n_genes', '')} genes".replace("  ", " "),
                      fontsize=10)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(cols), fontsize=9)
    return fig


def de_heatmap(scores: pd.DataFrame, tops: dict[str, list[str]], *, truth: str = "truth") -> Figure:
    """Fig. 2: tumour vs non-tumour z-scores of the truth's and each model's own top genes.

    Rows: the union of every column's top genes (the truth's first, by its z-score); colour:
    Wilcoxon z-score in that column's expression (red: higher in tumour); a dot marks the
    column's own top genes; each model's title says how many of its top genes the truth's top shares.
    """
    from matplotlib.colors import TwoSlopeNorm

    rows = list(tops[truth])
    rest = [g for c in scores.columns for g in tops[c] if g not in rows]
    rest = list(dict.fromkeys(sorted(rest, key=lambda g: -np.nanmax(scores.loc[g].to_numpy()))))
    rows += rest
    M = scores.loc[rows].to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(M))) or 1.0
    fig, ax = plt.subplots(figsize=(1.2 * scores.shape[1] + 3.5, 0.2 * len(rows) + 1.6), layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(M), aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(0, -lim, lim))
    for j, c in enumerate(scores.columns):
        for i, g in enumerate(rows):
            if g in tops[c]:
                ax.plot(j, i, "o", ms=3, color="black")
    n = len(tops[truth])
    labels = [c if c == truth else f"{c}\n{len(set(tops[c]) & set(tops[truth]))} of {n} shared" for c in scores.columns]
    ax.set_xticks(np.arange(scores.shape[1]), labels, fontsize=8, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=7)
    ax.axhline(n - 0.5, color="black", lw=0.8)
    fig.colorbar(im, ax=ax, label="Wilcoxon z-score, tumour vs non-tumour", shrink=0.6)
    ax.set_title(f"top {n} tumour genes of each expression (dots); above the line: the truth's", fontsize=10)
    return fig


def he_image(expr: ad.AnnData, section: str, *, margin: float = 0.04) -> Figure:
    """The plain H&E of a section (``uns["spatial"][section]["images"]["hires"]``), cropped to its spots."""
    meta = expr.uns["spatial"][section]
    img = meta["images"]["hires"]
    s = meta["scalefactors"]["tissue_hires_scalef"]
    xy = np.asarray(expr.obsm["spatial"], float) * s
    pad = margin * img.shape[1]
    x0, y0 = np.maximum(xy.min(0) - pad, 0)
    x1, y1 = np.minimum(xy.max(0) + pad, [img.shape[1], img.shape[0]])
    fig, ax = plt.subplots(figsize=(4.2, 4.2), layout="constrained")
    ax.imshow(img)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.axis("off")
    ax.set_title(f"H&E, section {section}", fontsize=10)
    return fig


def metric_bars(table: pd.DataFrame, metric: str = "pearson", *, title: str = "") -> Figure:
    """Mean-over-genes metric per model and split (rows: model; columns: splits)."""
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    table.plot.bar(ax=ax)
    ax.set_ylabel(f"mean {metric} over genes")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(title)
    return fig


def window_gallery(adata: ad.AnnData, section: str, n: int = 6, size: int = 224, seed: int = 0) -> Figure:
    """A few of the CNN's input windows of one section (random spots, seeded)."""
    from stlib.im import extract_windows
    from stlib.io.images import read_image

    idx = np.flatnonzero((adata.obs["section"] == section).to_numpy())
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    img = read_image(adata.uns["spatial"][section]["metadata"]["image_path"])
    wins, _ = extract_windows(img, np.asarray(adata.obsm["spatial"])[pick], size=size)
    del img
    fig, axes = plt.subplots(1, len(pick), figsize=(2.2 * len(pick), 2.4), layout="constrained")
    for ax, w, i in zip(np.atleast_1d(axes), wins, pick):
        ax.imshow(w)
        ax.set_title(str(adata.obs["spot_id"].iloc[i]), fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{size} x {size} px windows, section {section}")
    return fig


def beside_paper(side: pd.DataFrame, metric: str = "PCC") -> Figure:
    """Grouped bars: the report's value and ours for one metric, per Table I row, one panel per split.

    ``side`` is :func:`stlib.tables.beside_paper`'s output.
    """
    splits = list(dict.fromkeys(side.index.get_level_values("split")))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.6), sharey=True, layout="constrained",
                             squeeze=False)
    models = list(dict.fromkeys(side.index.get_level_values("model")))
    y = np.arange(len(models))
    for ax, split in zip(axes[0], splits):
        sub = side.xs(split, level="split").reindex(models)
        ax.barh(y - 0.2, sub[(metric, "report")], height=0.4, color="grey", label="report (He et al. 2020, ResNet50)")
        ax.barh(y + 0.2, sub[(metric, "ours")], height=0.4, color="tab:blue", label="this run")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(split)
        ax.set_xlabel(f"mean {metric} over genes")
    axes[0][0].set_yticks(y, models)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=8, loc="lower right")
    return fig


def ceiling_by_section(by_section: pd.DataFrame) -> Figure:
    """Per-gene noise ceilings in each section (ordered by depth), one box per gene rule."""
    order = (by_section.drop_duplicates("section").sort_values("median_total")[["section", "split", "median_total"]])
    rules = list(dict.fromkeys(by_section["rule"]))
    fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
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
    ax.set_xticklabels([f"{s} ({sp})\n{m:,.0f} counts/spot" for s, sp, m in order.itertuples(index=False)],
                       fontsize=8)
    ax.set_ylabel("noise ceiling of PCC, per gene")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("How much of each gene's variation over a section's spots any model could predict")
    return fig


def ceiling_vs_depth(depth: pd.DataFrame) -> Figure:
    """Mean ceiling against median counts per spot, each section thinned to lower depths."""
    rules = list(dict.fromkeys(depth["rule"]))
    fig, axes = plt.subplots(1, len(rules), figsize=(5 * len(rules), 3.6), layout="constrained", sharey=True,
                             squeeze=False)
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
                            textcoords="offset points", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("median counts per spot (after thinning)")
        ax.set_title(f"{rule} genes")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("mean noise ceiling over genes")
    handles = [plt.Line2D([], [], color=c, marker="o", ms=3) for c in colors.values()]
    handles.append(plt.Line2D([], [], ls="", marker="s", mfc="white", mec="black", ms=8))
    axes[0][-1].legend(handles, [*colors, "as sequenced"], fontsize=8, loc="lower right")
    return fig


def fraction_of_ceiling(iv: pd.DataFrame, split: str = "test") -> Figure:
    """Forest plot: each model's fraction of the noise ceiling on ``split`` with its 95% interval."""
    sub = iv.xs(split, level="split")
    sub = sub[sub["pcc"].notna()].sort_values("fraction")
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(sub) + 1.2), layout="constrained")
    y = np.arange(len(sub))
    colors = ["tab:red" if m == "depth_only" else "tab:blue" for m in sub.index]
    ax.errorbar(sub["fraction"], y, xerr=[sub["fraction"] - sub["fraction_lo"], sub["fraction_hi"] - sub["fraction"]],
                fmt="none", ecolor=colors, elinewidth=1.5)
    ax.scatter(sub["fraction"], y, c=colors, s=18, zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{m} (oracle)" if m == "depth_only" else m for m in sub.index], fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(1, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"fraction of the noise ceiling reached, {split} split (95% bootstrap interval)")
    ax.set_xlim(min(-0.1, float(sub["fraction_lo"].min()) - 0.05), 1.05)
    return fig


def per_gene_vs_ceiling(per_gene: pd.DataFrame, models: Sequence[str], n_labels: int = 8) -> Figure:
    """Per gene: each model's test PCC against the gene's ceiling (the line y = x is the ceiling)."""
    ncol = min(2, len(models))
    nrow = -(-len(models) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.6 * nrow), layout="constrained", sharey=True,
                             sharex=True, squeeze=False)
    for ax in axes.ravel()[len(models):]:
        ax.set_visible(False)
    for ax, m in zip(axes.ravel(), models):
        ok = per_gene[["ceiling", m]].dropna()
        ax.scatter(ok["ceiling"], ok[m], s=6, alpha=0.6)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.axhline(0, color="black", lw=0.6)
        for g, row in ok.sort_values(m, ascending=False).head(n_labels // 2).iterrows():
            ax.annotate(g, (row["ceiling"], row[m]), fontsize=7, xytext=(2, 2), textcoords="offset points")
        ax.set_xlim(0, 1)
        ax.set_title(f"{m} ({len(ok)} genes with a correlation)", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("gene's noise ceiling (test)")
    for ax in axes[:, 0]:
        ax.set_ylabel("gene's test PCC")
    return fig


def penalty_choices(results: Sequence, titles: dict[str, str] | None = None) -> Figure:
    """Genes per chosen penalty, one panel per model family, one line per model; the grid's
    first and last values are marked, so a pile-up at an edge shows at once.

    ``results`` are fits with ``settings["alphas"]`` and ``per_gene["alpha"]`` (linear models,
    the probe). A penalty of 0 (OLS) is drawn one step left of the smallest positive one.
    """
    families: dict[str, list] = {}
    for r in results:
        families.setdefault(r.name.split("_")[-1] if not r.name.endswith("probe") else "probe", []).append(r)
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.0), layout="constrained",
                             squeeze=False)
    for ax, (fam, rs) in zip(axes[0], families.items()):
        for r in rs:
            grid = np.asarray(r.settings["alphas"], dtype=float)
            pos = grid[grid > 0]
            step = np.log10(pos[1] / pos[0]) if pos.size > 1 else 1.0
            x = np.where(grid > 0, np.log10(np.where(grid > 0, grid, 1.0)), np.log10(pos.min()) - step)
            n = [int(np.isclose(r.per_gene["alpha"].to_numpy(dtype=float), a).sum()) for a in grid]
            ax.plot(x, n, marker="o", ms=3, label=r.name)
            for edge in (x.min(), x.max()):
                ax.axvline(edge, color="grey", lw=0.6, ls=":")
        ax.set_title((titles or {}).get(fam, fam))
        ax.set_xlabel("log10 penalty chosen" + (" (leftmost: 0)" if any((np.asarray(r.settings["alphas"]) == 0).any()
                                                                       for r in rs) else ""))
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("genes")
    return fig


def cv_folds(scores: pd.DataFrame, stat: str = "pcc") -> Figure:
    """Test ``stat`` of each model in each fold with its 95% interval (``scores``:
    :func:`stlib.cv.cross_validate`), one group of bars per model."""
    folds = list(dict.fromkeys(scores.index.get_level_values("fold")))
    models = [m for m in dict.fromkeys(scores.index.get_level_values("model"))
              if scores.xs(m, level="model")[stat].notna().any()]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(models), 3.2), layout="constrained")
    width = 0.8 / len(folds)
    for i, f in enumerate(folds):
        sub = scores.xs(f, level="fold").reindex(models)
        x = np.arange(len(models)) + (i - (len(folds) - 1) / 2) * width
        err = np.vstack([sub[stat] - sub[f"{stat}_lo"], sub[f"{stat}_hi"] - sub[stat]])
        ax.bar(x, sub[stat], width=width, yerr=err, capsize=3, label=f)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(models)), models)
    ax.set_ylabel({"pcc": "test mean PCC over genes", "fraction": "fraction of the noise ceiling"}.get(stat, stat))
    ax.legend(fontsize=8, title="held out", title_fontsize=8)
    return fig


def claim_differences(judged: pd.DataFrame, by: str = "target") -> Figure:
    """Forest plot of the report's claims: each comparison's claimed difference and its 95% interval.

    ``judged`` is :func:`stlib.verdict.judge`'s table with a column ``by`` (one colour per value,
    e.g. the target transform). A point right of zero is a difference in the claimed direction;
    a comparison holds when its whole interval is right of zero.
    """
    groups = list(dict.fromkeys(judged[by]))
    rows = list(dict.fromkeys(zip(judged["claim"], judged["comparison"])))
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.8), layout="constrained")
    offset = np.linspace(-0.18, 0.18, len(groups)) if len(groups) > 1 else np.zeros(1)
    pos = {r: i for i, r in enumerate(rows)}
    for k, g in enumerate(groups):
        sub = judged[judged[by] == g]
        y = np.array([pos[(c, x)] for c, x in zip(sub["claim"], sub["comparison"])]) + offset[k]
        d = sub["claimed difference"].to_numpy()
        err = np.vstack([d - sub["lo"].to_numpy(), sub["hi"].to_numpy() - d])
        ax.errorbar(d, y, xerr=err, fmt="o", ms=3.5, lw=1.2, capsize=2, color=f"C{k}", label=str(g))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(rows)), [x for _, x in rows], fontsize=8)
    ax.invert_yaxis()
    bounds = [i for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0]]
    for b in bounds:
        ax.axhline(b - 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("claimed difference (better - worse; for MSE, worse - better), mean over genes")
    fig.legend(*ax.get_legend_handles_labels(), title=by, fontsize=9, loc="outside lower center", ncols=len(groups))
    ax.set_title("The report's claims: paired 95% bootstrap intervals (right of 0 = as claimed)", fontsize=10)
    return fig


def log_axis(ax, axis: str = "y") -> None:
    """Log scale on ``axis`` with enough labelled ticks: when the data span less than three decades,
    1, 2 and 5 times each power of ten (every multiple, under one decade) are labelled ticks
    (matplotlib would label one power of ten, or none)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    lo, hi = getattr(ax, f"get_{axis}lim")()
    a = getattr(ax, f"{axis}axis")
    if lo > 0 and hi / lo < 1000:  # under three decades: label 1, 2, 5 (or every multiple) of each decade
        subs = tuple(range(1, 10)) if hi / lo < 10 else (1.0, 2.0, 5.0)
        a.set_major_locator(LogLocator(subs=subs))
        a.set_major_formatter(FormatStrFormatter("%.2g"))
        a.set_minor_formatter(NullFormatter())
