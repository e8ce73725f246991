"""Figures of the book. Plotting functions compute nothing a tool function should; each returns
its matplotlib figure (squidpy's ``pl`` role)."""

from __future__ import annotations

from stlib.pl._data import embeddings_overview, log_axis, qc_overview, resolution_pairs, target_overview, window_gallery
from stlib.pl._models import (
    beside_paper,
    claim_differences,
    config_losses,
    controls_overview,
    cv_folds,
    dispersion_histogram,
    ladder_lines,
    learning_curves,
    metric_bars,
    penalty_choices,
)
from stlib.pl._maps import (
    COMPARTMENT_COLORS,
    cluster_figure,
    count_histogram,
    de_heatmap,
    depth_and_compartments,
    counts_maps,
    he_image,
    spatial_panels,
    truth_prediction_maps,
)
from stlib.pl._labels import MODEL_LABELS, TARGET_LABELS, model_label, model_labels, target_label
from stlib.pl._export import as_image
from stlib.pl._style import (COLUMN_IN, DPI, MIN_FONT_PT, FigureStyleError, FigureStyleWarning, check_figure, house_style,
                              retina_in_notebooks, subplots)
from stlib.pl._predict import prediction_map, tissue_grid
from stlib.pl._ceiling import (
    ceiling_by_section,
    ceiling_vs_depth,
    fraction_of_ceiling,
    per_gene_vs_ceiling,
    variants_vs_ceiling,
)

__all__ = [
    "COLUMN_IN",
    "COMPARTMENT_COLORS",
    "DPI",
    "MIN_FONT_PT",
    "check_figure",
    "FigureStyleError",
    "FigureStyleWarning",
    "house_style",
    "retina_in_notebooks",
    "subplots",
    "MODEL_LABELS",
    "model_label",
    "model_labels",
    "TARGET_LABELS",
    "target_label",
    "as_image",
    "beside_paper",
    "ceiling_by_section",
    "ceiling_vs_depth",
    "claim_differences",
    "cluster_figure",
    "config_losses",
    "controls_overview",
    "count_histogram",
    "cv_folds",
    "de_heatmap",
    "dispersion_histogram",
    "counts_maps",
    "depth_and_compartments",
    "embeddings_overview",
    "fraction_of_ceiling",
    "he_image",
    "ladder_lines",
    "learning_curves",
    "log_axis",
    "metric_bars",
    "penalty_choices",
    "prediction_map",
    "per_gene_vs_ceiling",
    "variants_vs_ceiling",
    "qc_overview",
    "spatial_panels",
    "target_overview",
    "tissue_grid",
    "truth_prediction_maps",
    "resolution_pairs",
    "window_gallery",
]

retina_in_notebooks()  # in a kernel: figures stored at twice their pixels, shown at their drawn size
