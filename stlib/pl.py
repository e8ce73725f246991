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
