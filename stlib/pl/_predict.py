"""Figures of a prediction from an image alone (:mod:`stlib.predictor`)."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
from matplotlib.figure import Figure

from stlib.pl._maps import spatial_panels
from stlib.pl._style import house_style, subplots


@house_style
def prediction_map(pred: ad.AnnData, genes: Sequence[str], *, value_label: str = "predicted target",
                   vlims: Sequence[tuple[float, float] | None] | None = None) -> Figure:
    """Predicted values of ``genes`` at each spot over the H&E (one panel per gene).

    Parameters
    ----------
    pred
        A prediction of one section (:mod:`stlib.predictor`; may be backed): genes in ``X``,
        ``obs["section"]``, ``obsm["spatial"]`` and ``uns["spatial"]`` with a ``"hires"`` image.
    genes
        The genes shown (``var_names`` of ``pred``).
    value_label
        Label of the colour bars.
    vlims
        Per gene ``(vmin, vmax)`` of its colour scale (e.g. shared with the measured values), or
        ``None`` for the automatic range.

    Returns
    -------
    Figure
        One panel per gene (:func:`spatial_panels`, two per row): the predicted value of each spot
        over the H&E.
    """
    lib = str(pred.obs["section"].iloc[0])
    expr = pred[:, list(genes)].to_memory() if pred.isbacked else pred[:, list(genes)]
    expr = ad.AnnData(obs=expr.obs.assign(**{g: np.asarray(expr[:, g].X).ravel() for g in genes}),
                      obsm={"spatial": np.asarray(pred.obsm["spatial"])}, uns={"spatial": pred.uns["spatial"]})
    return spatial_panels(expr, list(genes), section=lib, titles=[f"{g} (predicted)" for g in genes],
                          cbar_labels=[value_label] * len(genes), vlims=vlims, crop_margin=0.03,
                          ncols=min(len(genes), 2))  # two per row: room for each colour bar's label


@house_style
def tissue_grid(pred: ad.AnnData, measured_xy: np.ndarray | None = None, *, margin: float = 0.03) -> Figure:
    """The H&E with the spots a prediction used (a tissue grid or given spots) and, when given,
    the spots that were measured, in full-resolution pixels.

    Parameters
    ----------
    pred
        A prediction of one section, with ``obs["section"]``, ``obsm["spatial"]`` and
        ``uns["spatial"][section]`` (``"hires"`` image, ``tissue_hires_scalef``,
        ``spot_diameter_fullres``).
    measured_xy
        Optional ``(n, 2)`` full-resolution pixel coordinates of the measured spots.
    margin
        Padding around the spots, as a fraction of the image width (plus one spot diameter).

    Returns
    -------
    Figure
        One axis: the H&E cropped to the spots, the predicted spots as blue circles and the
        measured ones as black dots, with their numbers in the legend.
    """
    lib = str(pred.obs["section"].iloc[0])
    meta = pred.uns["spatial"][lib]
    img, s = meta["images"]["hires"], meta["scalefactors"]["tissue_hires_scalef"]
    fig, ax = subplots(height=4.2, width=4.2)
    ax.imshow(img)
    xy = np.asarray(pred.obsm["spatial"], float) * s
    d = meta["scalefactors"]["spot_diameter_fullres"] * s
    ax.scatter(xy[:, 0], xy[:, 1], s=(0.5 * d) ** 2 * 0.6, facecolors="none", edgecolors="tab:blue", linewidths=0.8,
               label=f"predicted spots ({len(xy)})")
    pts = [xy]
    if measured_xy is not None:
        m = np.asarray(measured_xy, float) * s
        ax.scatter(m[:, 0], m[:, 1], s=4, c="black", label=f"measured spots ({len(m)})")
        pts.append(m)
    allp = np.vstack(pts)
    pad = margin * img.shape[1] + d
    ax.set_xlim(max(allp[:, 0].min() - pad, 0), min(allp[:, 0].max() + pad, img.shape[1]))
    ax.set_ylim(min(allp[:, 1].max() + pad, img.shape[0]), max(allp[:, 1].min() - pad, 0))
    ax.axis("off")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=1, frameon=False)
    ax.set_title(f"{lib}: {pred.uns.get('prediction', {}).get('spots', 'spots')}")
    return fig
