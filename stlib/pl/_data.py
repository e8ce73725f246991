"""Figures of the data: quality, targets, windows, embeddings; readable log axes."""

from __future__ import annotations


from collections.abc import Sequence

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stlib import get
from stlib._utils import dense
from stlib.pl._style import COLUMN_IN, house_style, subplots


@house_style
def qc_overview(adata: ad.AnnData) -> Figure:
    """Counts per spot and genes per spot, by section (log scale), coloured by split.

    Parameters
    ----------
    adata
        Spots with raw counts in ``X`` (all genes), ``obs["section"]`` and ``obs["split"]``.

    Returns
    -------
    Figure
        Two panels of one box per section (ordered by split name, then section; coloured by split):
        total counts per spot and genes detected per spot, log y axes.
    """
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    ngenes = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    df = pd.DataFrame({"section": adata.obs["section"].astype(str).to_numpy(), "counts": totals,
                       "genes": ngenes, "split": adata.obs.get("split", "all").astype(str).to_numpy()})
    order = list(dict.fromkeys(df.sort_values(["split", "section"])["section"]))
    colors = {"train": "tab:blue", "valid": "tab:orange", "test": "tab:green"}
    fig, axes = subplots(1, 2, height=3.0)
    for ax, col, label in zip(axes, ["counts", "genes"], ["total counts per spot", "genes detected per spot"]):
        data = [df.loc[df.section == s, col].to_numpy() for s in order]
        bp = ax.boxplot(data, tick_labels=order, patch_artist=True, showfliers=False)
        ax.set_xlabel("section")
        for patch, s in zip(bp["boxes"], order):
            patch.set_facecolor(colors.get(df.loc[df.section == s, "split"].iloc[0], "grey"))
        ax.set_yscale("log")
        ax.set_ylabel(label)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    axes[1].legend(handles, list(colors), loc="lower right")
    return fig


@house_style
def target_overview(targets: ad.AnnData) -> Figure:
    """Mean vs variance of the target genes (train spots), and the share of zeros per gene.

    Parameters
    ----------
    targets
        Targets in a dense ``X``, raw counts in ``layers["counts"]`` and ``obs["split"]``.

    Returns
    -------
    Figure
        Left: each gene's train mean against its train variance of the target; right: histogram
        over genes of the fraction of train spots with zero counts.
    """
    tr = get.split_mask(targets, "train")
    X = np.asarray(targets.X[tr])
    counts = targets.layers["counts"][tr]
    counts = dense(counts)
    fig, axes = subplots(1, 2, height=2.9)
    axes[0].scatter(X.mean(0), X.var(0), s=6)
    axes[0].set_xlabel("mean of target (train)")
    axes[0].set_ylabel("variance of target (train)")
    axes[1].hist((counts == 0).mean(0), bins=30, color="grey")
    axes[1].set_xlabel("fraction of train spots\nwith zero counts")
    axes[1].set_ylabel("genes")
    return fig


@house_style
def window_gallery(adata: ad.AnnData, section: str, n: int = 6, size: int = 224, seed: int = 0,
                   window_um: float | None = None) -> Figure:
    """A few of the CNN's input windows of one section (random spots, seeded): ``size`` px, or a
    ``window_um`` window at the section's resolution resampled to ``size`` px, as the network sees it.

    Parameters
    ----------
    adata
        Spots with ``obs["section"]``, ``obs["spot_id"]``, ``obsm["spatial"]`` (full-resolution
        pixels) and ``uns["spatial"][section]["metadata"]["image_path"]``.
    section
        The section shown.
    n
        Spots shown (fewer if the section has fewer).
    size
        Side of the windows shown, in pixels.
    seed
        Seed of the random choice of spots.
    window_um
        Side of the window in micrometres (:func:`stlib.im.window_px` at
        :func:`stlib.im.section_um_per_px`); ``None``: a ``size``-pixel window of the image.

    Returns
    -------
    Figure
        One row of windows, each titled with its ``spot_id``, in the order of ``adata``.
    """
    from stlib.im import extract_windows, resample_windows, section_um_per_px, window_px
    from stlib.io.images import read_image

    idx = np.flatnonzero(get.section_mask(adata, section))
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    img = read_image(adata.uns["spatial"][section]["metadata"]["image_path"])
    win = size if window_um is None else window_px(window_um, section_um_per_px(adata, section))
    wins, _ = extract_windows(img, np.asarray(adata.obsm["spatial"])[pick], size=win)
    del img
    wins = resample_windows(wins, size)
    fig, axes = subplots(1, len(pick), height=1.75)
    for ax, w, i in zip(np.atleast_1d(axes), wins, pick):
        ax.imshow(w)
        ax.set_title(str(adata.obs["spot_id"].iloc[i]))
        ax.axis("off")
    what = (f"{size} x {size} px windows" if window_um is None
            else f"{window_um:g} um windows ({win} px of the image,\nshown to the network as {size} px)")
    fig.suptitle(f"{what}, section {section}")
    return fig


@house_style
def resolution_pairs(views: dict[str, ad.AnnData], sections: list[str], n_per_section: int = 2, size: int = 224,
                     seed: int = 0, window_um: float = 154.6) -> Figure:
    """The same spots' network inputs in each version of the data (``views``: name -> AnnData over
    the same spots, e.g. :func:`stlib.book.patients.views`): one row per version, ``n_per_section``
    random spots (seeded) of each section in ``sections``.

    Parameters
    ----------
    views
        Version name -> AnnData over the same spots in the same order, each with ``obs["section"]``,
        ``obsm["spatial"]`` and ``uns["spatial"][section]["metadata"]["image_path"]``.
    sections
        The sections to draw spots from (chosen in the first version).
    n_per_section
        Spots per section (at most the section's number of spots).
    size
        Side of the windows shown, in pixels.
    seed
        Seed of the random choice of spots.
    window_um
        Side of the window in micrometres, converted to each version's pixels.

    Returns
    -------
    Figure
        One row per version, one column per chosen spot, each window titled with its section and
        its side in that version's pixels.
    """
    from stlib.im import extract_windows, resample_windows, section_um_per_px, window_px
    from stlib.io.images import read_image

    names = list(views)
    first = views[names[0]]
    rng = np.random.default_rng(seed)
    picks = [(sec, int(i)) for sec in sections
             for i in np.sort(rng.choice(np.flatnonzero(get.section_mask(first, sec)),
                                         size=n_per_section, replace=False))]
    fig, axes = subplots(len(names), len(picks), height=COLUMN_IN / len(picks) * 1.25 * len(names) + 0.5, squeeze=False)
    for r, name in enumerate(names):
        a = views[name]
        for sec in sections:
            cols = [c for c, (s, _) in enumerate(picks) if s == sec]
            img = read_image(a.uns["spatial"][sec]["metadata"]["image_path"])
            um = section_um_per_px(a, sec)
            win = window_px(window_um, um)
            wins, _ = extract_windows(img, np.asarray(a.obsm["spatial"])[[picks[c][1] for c in cols]], size=win)
            del img
            for c, w in zip(cols, resample_windows(wins, size)):
                ax = axes[r, c]
                ax.imshow(w)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{sec}: {win} px")
                if c == 0:
                    ax.set_ylabel(name)
    fig.suptitle(f"the same spots' {window_um:g} um windows as the network sees them ({size} px), per version")
    return fig


def log_axis(ax, axis: str = "y") -> None:
    """Log scale on ``axis`` with enough labelled ticks: when the data span less than three decades,
    1, 2 and 5 times each power of ten (every multiple, under one decade) are labelled ticks
    (matplotlib would label one power of ten, or none).

    Parameters
    ----------
    ax
        A matplotlib axis, already drawn on (its current limits decide the ticks).
    axis
        ``"x"`` or ``"y"``.
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    lo, hi = getattr(ax, f"get_{axis}lim")()
    a = getattr(ax, f"{axis}axis")
    if lo > 0 and hi / lo < 1000:  # under three decades: label 1, 2, 5 (or every multiple) of each decade
        subs = tuple(range(1, 10)) if hi / lo < 10 else (1.0, 2.0, 5.0)
        a.set_major_locator(LogLocator(subs=subs))
        a.set_major_formatter(FormatStrFormatter("%.2g"))
        a.set_minor_formatter(NullFormatter())


@house_style
def embeddings_overview(targets: ad.AnnData, explained: pd.DataFrame,
                        keys: Sequence[tuple[str, str]] = (("X_img_pca", "image PCA"),
                                                           ("X_img_knn_pca", "KNN-pooled image PCA"))) -> Figure:
    """Cumulative variance explained by the PCA components (``explained``: components x PCAs), and
    the first two components of each PCA coloured by split.

    Parameters
    ----------
    targets
        Spots with ``obs["split"]`` and each ``obsm`` key of ``keys``.
    explained
        Cumulative variance explained: one row per number of components, one column per PCA (the
        column names are the legend).
    keys
        ``(obsm key, title)`` pairs, one panel each.

    Returns
    -------
    Figure
        The curves of ``explained``, then per PCA a scatter of its first two components (train,
        valid, test in blue, orange, green).
    """
    fig, axes = subplots(1, 1 + len(keys), height=2.6)
    explained.plot(ax=axes[0])
    axes[0].set_xlabel("components")
    axes[0].set_ylabel("cumulative variance\nexplained (train)")
    for ax, (key, title) in zip(axes[1:], keys):
        for s, c in zip(["train", "valid", "test"], ["tab:blue", "tab:orange", "tab:green"]):
            m = get.split_mask(targets, s)
            ax.scatter(targets.obsm[key][m, 0], targets.obsm[key][m, 1], s=4, c=c, label=s, alpha=0.6)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        ax.set_title(title)
    axes[1].legend(markerscale=3)
    return fig
