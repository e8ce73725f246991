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


def cluster_bars(means: pd.DataFrame, gene: str, section: str | None = None) -> Figure:
    """Fig. 1a: mean expression of ``gene`` per Leiden cluster, truth beside each model."""
    cols = [c for c in means.columns if c != "n_spots"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(means) * len(cols) / 3), 3.4), layout="constrained")
    width = 0.8 / len(cols)
    x = np.arange(len(means))
    for i, c in enumerate(cols):
        ax.bar(x + i * width - 0.4 + width / 2, means[c], width, label=c,
               color="black" if c == "truth" else None)
    ax.set_xticks(x, [f"{k}\n(n={n})" for k, n in zip(means.index, means["n_spots"])], fontsize=8)
    ax.set_ylabel(f"mean {gene} (target)")
    ax.set_title(f"{gene} per Leiden cluster" + (f", section {section}" if section else ""))
    ax.legend(fontsize=8, ncol=min(len(cols), 5))
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
) -> Figure:
    """Spots over the section's H&E (``images["hires"]``), one panel per ``obs`` key, via squidpy."""
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
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return fig


def count_histogram(true_counts: np.ndarray, pred_counts: np.ndarray, *, title: str, bins: int = 60) -> Figure:
    """Fig. 4: histogram of true and predicted counts (all genes and spots of a split)."""
    t = np.asarray(true_counts).ravel()
    p = np.asarray(pred_counts).ravel()
    p = p[np.isfinite(p)]
    hi = np.quantile(np.concatenate([t, p]), 0.995)
    edges = np.linspace(0, max(hi, 1), bins + 1)
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    ax.hist(t, bins=edges, alpha=0.6, label="true counts", color="black")
    ax.hist(p, bins=edges, alpha=0.6, label="predicted mean", color="tab:red")
    ax.set_yscale("log")
    ax.set_xlabel("counts per spot and gene (top 0.5% cut)")
    ax.set_ylabel("spot x gene pairs")
    ax.set_title(title)
    ax.legend()
    return fig


def dotplots(truth: ad.AnnData, pred: ad.AnnData, genes: Sequence[str], *, title_pred: str) -> Figure:
    """Fig. 2: tumour vs non-tumour dotplots of the same genes, truth and prediction side by side."""
    import scanpy as sc

    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.5 * len(genes) * 2), 2.8), layout="constrained")
    for ax, a, title in zip(axes, (truth, pred), ("truth", title_pred)):
        sc.pl.dotplot(a, list(genes), groupby="tumor_group", ax=ax, show=False, standard_scale="var",
                      title=title)
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
    from stlib.im import extract_windows, read_image

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
