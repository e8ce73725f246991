"""Figures of the qualitative chapter: spots over the H&E, clusters, tumour genes, maps, counts."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from stlib import get
from stlib.pl._labels import model_label
from stlib.pl._style import COLUMN_IN, RC, house_style, subplots

RC_TITLE = RC["axes.titlesize"]


@house_style
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
    crop_margin: float | None = None,
    hide_cbars: Sequence[bool] | None = None,
) -> Figure:
    """Spots over the section's H&E (``images["hires"]``), one panel per ``obs`` key, via squidpy.

    ``cbar_labels`` label the colour bars of continuous keys (one entry per key, ``None`` for none).
    A categorical key is drawn in the colours of ``uns[f"{key}_colors"]`` when it has them
    (scanpy's convention), its legend below its panel.

    Parameters
    ----------
    expr
        Spots with ``obs["section"]``, the ``obs`` columns of ``keys``, ``obsm["spatial"]`` and the
        section's ``uns["spatial"]`` with a ``"hires"`` image.
    keys
        The ``obs`` columns (or genes) to colour by, one panel each.
    section
        The section (library) drawn.
    titles
        Panel titles, one per key; default the keys.
    cmaps
        Colour maps, one per key; default squidpy's.
    ncols
        Panels per row; default all in one row.
    size
        Spot size (squidpy's ``size``).
    vlims
        Per key ``(vmin, vmax)``, or ``None`` for the automatic range.
    cbar_labels
        Per key the label of its colour bar, or ``None``.
    crop_margin
        If given, each panel is cropped to the section's spots, padded by this fraction of the
        image width (default: the whole image).
    hide_cbars
        Per key whether its colour bar is hidden (its room is kept, so every panel has the same
        size): for a panel that shares the scale of the colour bar next to it.

    Returns
    -------
    Figure
        The panels in rows of ``ncols`` (unused axes hidden), each the spots over the H&E.
    """
    from stlib._compat import import_squidpy

    sq = import_squidpy()
    ncols = ncols or len(keys)
    nrows = int(np.ceil(len(keys) / ncols))
    side = COLUMN_IN / max(ncols, 2)  # one panel and its colour bar; a single panel takes half the column
    fig, axes = subplots(nrows, ncols, height=side * nrows + 0.1, width=side * ncols, squeeze=False)
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
        ax.title.set_fontsize(RC_TITLE)
        legend = ax.get_legend()
        if legend is not None:  # a categorical key: its legend below the panel, not beside it (the column's width)
            handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
            legend.remove()
            ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.01), frameon=False,
                      ncols=min(len(labels), 3), handletextpad=0.2, columnspacing=0.8)
        for coll in ax.collections:
            if getattr(coll, "colorbar", None) is None:
                continue
            if cbar_labels is not None and cbar_labels[i]:
                coll.colorbar.set_label(cbar_labels[i])
            if hide_cbars is not None and hide_cbars[i]:
                coll.colorbar.ax.set_visible(False)
        if crop_margin is not None:
            _crop_to_spots(ax, expr[get.section_mask(expr, section)], section, crop_margin)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return fig


def _crop_to_spots(ax, expr: ad.AnnData, section: str, margin: float) -> None:
    """Limit ``ax`` to the spots of ``expr`` (hires pixels), padded by ``margin`` of the image width."""
    meta = expr.uns["spatial"][section]
    img = meta["images"]["hires"]
    xy = np.asarray(expr.obsm["spatial"], float) * meta["scalefactors"]["tissue_hires_scalef"]
    pad = margin * img.shape[1]
    x0, y0 = np.maximum(xy.min(0) - pad, 0)
    x1, y1 = np.minimum(xy.max(0) + pad, [img.shape[1], img.shape[0]])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)


#: Colours of the tissue compartments (:data:`stlib.get.COMPARTMENTS`), readable over H&E.
COMPARTMENT_COLORS = {"tumour": "#d62728", "non-tumour": "#ff9f1c", "unannotated": "#6e6e6e"}


@house_style
def depth_and_compartments(expr: ad.AnnData, section: str) -> Figure:
    """A section's total counts per spot (log scale) beside its tissue compartments, over its H&E.

    Parameters
    ----------
    expr
        The section's spots (:func:`stlib.get.expression_adata`): ``obs["total_counts"]``,
        ``obs["tumor"]``, ``obsm["spatial"]`` and ``uns["spatial"][section]`` with a ``"hires"``
        image (:func:`stlib.io.add_hires_image`).
    section
        The section drawn.

    Returns
    -------
    Figure
        Two panels cropped to the spots: ``log10`` total counts (labelled colour bar) and the
        compartment of each spot (:func:`stlib.get.compartments`) in :data:`COMPARTMENT_COLORS`.
    """
    view = expr[get.section_mask(expr, section)].copy()
    view.obs["log10 counts per spot"] = np.log10(np.maximum(view.obs["total_counts"].to_numpy(float), 1.0))
    view.obs["compartment"] = pd.Categorical(get.compartments(view), categories=list(get.COMPARTMENTS))
    view.uns["compartment_colors"] = [COMPARTMENT_COLORS[c] for c in get.COMPARTMENTS]
    return spatial_panels(view, ["log10 counts per spot", "compartment"], section=section,
                          titles=[f"{section}: total counts per spot", f"{section}: tumour annotation"],
                          cmaps=["viridis", None], cbar_labels=["log10 total counts per spot", None],
                          crop_margin=0.03, size=1.0)


@house_style
def counts_maps(adata: ad.AnnData, sections: Sequence[str] | None = None, *, ncols: int = 4) -> Figure:
    """Every section's total counts per spot over its H&E, on one colour scale.

    Parameters
    ----------
    adata
        Spots read by :mod:`stlib.io`: raw counts in ``X`` (or ``obs["total_counts"]``),
        ``obs["section"]`` (and ``obs["split"]``, shown in the titles), ``obsm["spatial"]`` and each
        section's ``uns["spatial"]`` (a ``"hires"`` image is decoded with
        :func:`stlib.io.add_hires_image` on a copy where missing).
    sections
        The sections drawn, in order; default every section of ``obs["section"]``.
    ncols
        Panels per row.

    Returns
    -------
    Figure
        One panel per section, cropped to its spots: ``log10`` total counts per spot, one colour
        scale (the 1st to 99th percentile over all sections) and one labelled colour bar below.
    """
    import matplotlib as mpl

    from stlib._compat import import_squidpy
    from stlib.io import add_hires_image

    sq = import_squidpy()
    cats = adata.obs["section"].cat.categories if hasattr(adata.obs["section"], "cat") else adata.obs["section"].unique()
    secs = [str(s) for s in (sections if sections is not None else cats)]
    totals = (adata.obs["total_counts"].to_numpy(float) if "total_counts" in adata.obs
              else np.asarray(adata.X.sum(axis=1), dtype=float).ravel())
    logc = np.log10(np.maximum(totals, 1.0))
    vmin, vmax = (float(v) for v in np.percentile(logc, [1, 99]))
    ncols = min(ncols, len(secs))
    nrows = int(np.ceil(len(secs) / ncols))
    side = COLUMN_IN / ncols
    fig, axes = subplots(nrows, ncols, height=side * nrows + 0.75, width=COLUMN_IN, squeeze=False)
    for ax, sec in zip(axes.flat, secs):
        mask = get.section_mask(adata, sec)
        view = ad.AnnData(obs=adata.obs.loc[mask, ["section"]].copy(), obsm={"spatial": np.asarray(adata.obsm["spatial"])[mask]},
                          uns={"spatial": {sec: _copy_spatial(adata.uns["spatial"][sec])}})
        view.obs["section"] = pd.Categorical(view.obs["section"].astype(str))
        view.obs["log10 counts"] = logc[mask]
        if "hires" not in view.uns["spatial"][sec].get("images", {}):
            add_hires_image(view, sec)
        split = f" ({adata.obs.loc[mask, 'split'].iloc[0]})" if "split" in adata.obs else ""
        sq.pl.spatial_scatter(view, color="log10 counts", library_id=sec, library_key="section", img_res_key="hires",
                              ax=ax, cmap="viridis", size=1.4, title=f"{sec}{split}", frameon=False, colorbar=False,
                              vmin=vmin, vmax=vmax)
        ax.title.set_fontsize(RC_TITLE)
        _crop_to_spots(ax, view, sec, 0.03)
    for ax in list(axes.flat)[len(secs):]:
        ax.axis("off")
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(vmin, vmax), cmap="viridis")
    fig.colorbar(sm, ax=list(axes.flat), orientation="horizontal", fraction=0.05, pad=0.03, aspect=40,
                 label="log10 total counts per spot (one scale for every section)")
    return fig


def _copy_spatial(meta: dict) -> dict:
    """A section's ``uns["spatial"]`` entry with its own dicts (images shared, not copied)."""
    return {"images": dict(meta.get("images", {})), "scalefactors": dict(meta.get("scalefactors", {})),
            "metadata": dict(meta.get("metadata", {}))}


@house_style
def count_histogram(true_counts: np.ndarray, pred_counts: np.ndarray, *, title: str, bins: int = 60) -> Figure:
    """Fig. 4: histogram of measured counts and of predicted means (all genes and spots of a split).

    Both on the same bins (up to the 99.5th percentile of the measured counts), log-scaled
    frequency; a predicted mean is a real number, a count an integer.

    Parameters
    ----------
    true_counts
        Measured counts, any shape (flattened).
    pred_counts
        Predicted means, any shape (flattened; non-finite values left out).
    title
        Title of the axis.
    bins
        Number of bins when the 99.5th percentile exceeds ``bins``; otherwise bins are one count wide.

    Returns
    -------
    Figure
        One axis: the two histograms overlaid (measured in black, predicted in red), log y axis.
    """
    t = np.asarray(true_counts).ravel()
    p = np.asarray(pred_counts).ravel()
    p = p[np.isfinite(p)]
    hi = np.quantile(t, 0.995)
    edges = np.arange(-0.5, max(np.ceil(hi), 2) + 0.5, 1.0) if hi <= bins else np.linspace(0, hi, bins + 1)
    fig, ax = subplots(height=3.2)
    ax.hist(t, bins=edges, alpha=0.6, label="measured counts", color="black")
    ax.hist(p, bins=edges, alpha=0.6, label="predicted means", color="tab:red")
    ax.set_yscale("log")
    ax.set_xlabel("counts per spot and gene\n(unit-wide bins; the top 0.5% of measured counts cut)")
    ax.set_ylabel("spot x gene pairs (log scale)")
    ax.set_title(title)
    ax.legend()
    return fig


@house_style
def cluster_figure(means: pd.DataFrame, errors: pd.DataFrame, gene: str, section: str) -> Figure:
    """Fig. 1: one gene's mean per Leiden cluster (truth beside each model), and per cluster the
    error of the cluster means averaged over all genes (:func:`stlib.book.qualitative.cluster_errors`).

    Parameters
    ----------
    means
        Per cluster (rows): ``n_spots``, ``truth`` and one column per model
        (``stlib.book.qualitative.cluster_means``); a model without any value is left out.
    errors
        Per cluster (same rows): one column per model shown; ``attrs["n_genes"]``, if set, is put in
        the title.
    gene
        The gene of ``means`` (axis label and title).
    section
        The section the clusters are of (title only).

    Returns
    -------
    Figure
        (a) bars of the gene's cluster means, truth in black beside each model; (b) bars of each
        model's cluster-mean error; clusters labelled with their number of spots.
    """
    models = [c for c in means.columns if c not in ("n_spots", "truth") and means[c].notna().any()]
    cols = ["truth", *models]
    fig, axes = subplots(2, 1, height=6.4)
    x = np.arange(len(means))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        axes[0].bar(x + i * width - 0.4 + width / 2, means[c], width, label=model_label(c), color="black" if c == "truth" else f"C{i - 1}")
    ticks = [f"{k}\n(n={n})" for k, n in zip(means.index, means["n_spots"])]
    axes[0].set_xticks(x, ticks)
    axes[0].set_xlabel("Leiden cluster (spots)")
    axes[0].set_ylabel(f"mean {gene} (log-normalised)")
    axes[0].set_title(f"(a) {gene} per cluster, section {section}")
    width = 0.8 / len(models)
    for i, c in enumerate(models):
        axes[1].bar(x + i * width - 0.4 + width / 2, errors[c], width, color=f"C{i}")
    axes[1].set_xticks(x, ticks)
    axes[1].set_xlabel("Leiden cluster (spots)")
    axes[1].set_ylabel("|predicted - true| cluster mean,\naveraged over genes")
    axes[1].set_title(f"(b) error of cluster means, all {errors.attrs.get('n_genes', '')} genes".replace("  ", " "))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(cols), 2))
    return fig


@house_style
def de_heatmap(scores: pd.DataFrame, tops: dict[str, list[str]], *, truth: str = "truth") -> Figure:
    """Fig. 2: tumour vs non-tumour z-scores of the truth's and each model's own top genes.

    Rows: the union of every column's top genes (the truth's first, by its z-score); colour:
    Wilcoxon z-score in that column's expression (red: higher in tumour); a dot marks the
    column's own top genes; each model's title says how many of its top genes the truth's top shares.

    Parameters
    ----------
    scores
        Genes x expressions z-scores (``stlib.book.qualitative.de_scores``), one column per
        expression including ``truth``.
    tops
        Column -> its top genes (``stlib.book.qualitative.top_genes``); every column of ``scores``
        needs an entry.
    truth
        The column of the measured expression.

    Returns
    -------
    Figure
        A heatmap (genes x columns, diverging around 0) with dots on each column's own top genes, a
        line under the truth's top genes and a colour bar.
    """
    from matplotlib.colors import TwoSlopeNorm

    rows = list(tops[truth])
    rest = [g for c in scores.columns for g in tops[c] if g not in rows]
    rest = list(dict.fromkeys(sorted(rest, key=lambda g: -np.nanmax(scores.loc[g].to_numpy()))))
    rows += rest
    M = scores.loc[rows].to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(M))) or 1.0
    fig, ax = subplots(height=0.17 * len(rows) + 2.2, width=min(COLUMN_IN, 1.1 * scores.shape[1] + 3.2))
    im = ax.imshow(np.ma.masked_invalid(M), aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(0, -lim, lim))
    for j, c in enumerate(scores.columns):
        for i, g in enumerate(rows):
            if g in tops[c]:
                ax.plot(j, i, "o", ms=3, color="black")
    n = len(tops[truth])
    labels = [c if c == truth else f"{model_label(c)}\n{len(set(tops[c]) & set(tops[truth]))} of {n} shared" for c in scores.columns]
    ax.set_xticks(np.arange(scores.shape[1]), labels, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_ylabel("gene")
    ax.set_xlabel("expression")
    ax.axhline(n - 0.5, color="black", lw=0.8)
    fig.colorbar(im, ax=ax, label="Wilcoxon z-score,\ntumour vs non-tumour", shrink=0.5)
    ax.set_title(f"top {n} tumour genes of each expression (dots);\nabove the line: the truth's")
    return fig


@house_style
def he_image(expr: ad.AnnData, section: str, *, margin: float = 0.04) -> Figure:
    """The plain H&E of a section (``uns["spatial"][section]["images"]["hires"]``), cropped to its spots.

    Parameters
    ----------
    expr
        The section's spots: ``obsm["spatial"]`` (full-resolution pixels) and
        ``uns["spatial"][section]`` with the ``"hires"`` image and ``tissue_hires_scalef``. The crop
        covers every row of ``expr``, so pass the section's spots only.
    section
        The section's key in ``uns["spatial"]``.
    margin
        Padding around the spots, as a fraction of the image width.

    Returns
    -------
    Figure
        One axis with the cropped image, titled with the section.
    """
    fig, ax = subplots(height=3.4, width=3.4)
    ax.imshow(expr.uns["spatial"][section]["images"]["hires"])
    _crop_to_spots(ax, expr, section, margin)
    ax.axis("off")
    ax.set_title(f"H&E, section {section}")
    return fig


@house_style
def truth_prediction_maps(targets: ad.AnnData, prediction: np.ndarray, genes: Sequence[str], *, section: str,
                          spatial: dict, model: str, value_label: str) -> Figure:
    """Truth, prediction and error (prediction - truth) of ``genes`` over one section's H&E.

    ``prediction`` is ``(n_obs, n_vars)`` in the order of ``targets``; ``spatial`` is the
    ``uns["spatial"]`` holding the section's downscaled image. Truth and prediction share one
    colour scale per gene, drawn once, beside the prediction (the truth's colour bar is hidden,
    its room kept); the error's is symmetric around 0. Colour bars are labelled with
    ``value_label`` and "prediction - truth".

    Parameters
    ----------
    targets
        Targets in a dense ``X``, with ``obs["section"]`` and ``obsm["spatial"]``.
    prediction
        ``(n_obs, n_vars)`` predictions in the order of ``targets``.
    genes
        The genes shown (``var_names`` of ``targets``), one row of panels each.
    section
        The section drawn.
    spatial
        The ``uns["spatial"]`` with the section's ``"hires"`` image.
    model
        Name of the model, in the figure's title.
    value_label
        Label of the truth's and prediction's colour bars.

    Returns
    -------
    Figure
        Per gene three panels over the H&E (:func:`spatial_panels`): truth, prediction (with the
        pair's colour bar) and error.
    """
    from stlib.get import expression_adata

    m = get.section_mask(targets, section)
    e = expression_adata(targets, targets.X, m)
    e.uns["spatial"] = spatial
    keys, titles, cmaps, vlims, cbars = [], [], [], [], []
    for g in genes:
        j = targets.var_names.get_loc(g)
        t, q = np.asarray(targets.X)[m, j], np.asarray(prediction)[m, j]
        e.obs[f"{g} truth"], e.obs[f"{g} pred"], e.obs[f"{g} error"] = t, q, q - t
        lim = float(np.nanmax(np.abs(q - t)))
        lo, hi = float(min(t.min(), np.nanmin(q))), float(max(t.max(), np.nanmax(q)))
        keys += [f"{g} truth", f"{g} pred", f"{g} error"]
        titles += [f"{g}: truth", f"{g}: prediction", f"{g}: error"]
        cmaps += ["viridis", "viridis", "RdBu_r"]
        vlims += [(lo, hi), (lo, hi), (-lim, lim)]
        cbars += [None, f"{value_label}\n(truth and prediction)", "prediction - truth"]
    fig = spatial_panels(e, keys, section=section, titles=titles, cmaps=cmaps, ncols=3, vlims=vlims,
                         cbar_labels=cbars, crop_margin=0.03, hide_cbars=[True, False, False] * len(genes))
    fig.suptitle(f"{model_label(model)}, section {section}")
    return fig
