"""A saved image-to-expression model, and its prediction for a new H&E image.

:func:`fit_image_model` fits the book's image model (CNN features of a window -> PCA and
KNN-pooled PCA -> ridge regression) on a run's targets, :func:`save_model` and
:func:`load_model` keep it with everything needed to use it again (genes, backbone, weights
digest, window), and :func:`predict_image` predicts every gene at given spots or on a grid
over the tissue of a new image (:func:`tissue_grid`). The ``stlib`` command (:mod:`stlib.cli`)
runs the same functions.
"""

from __future__ import annotations

from stlib.predictor._model import (
    ARRAY_KEYS,
    DEFAULT_ALPHAS,
    FORMAT_VERSION,
    ImageModel,
    ModelError,
    describe,
    fit_image_model,
    genes_digest,
    load_model,
    save_model,
)
from stlib.predictor._predict import (
    MAX_RESOLUTION_RATIO,
    TISSUE_THUMB,
    TRAINING_RESOLUTION,
    match_spots,
    predict_image,
    read_spots,
    resolve_resolution,
    tissue_grid,
    tissue_mask,
    write_maps,
)

__all__ = [
    "ARRAY_KEYS",
    "DEFAULT_ALPHAS",
    "FORMAT_VERSION",
    "MAX_RESOLUTION_RATIO",
    "TISSUE_THUMB",
    "TRAINING_RESOLUTION",
    "ImageModel",
    "ModelError",
    "describe",
    "fit_image_model",
    "genes_digest",
    "load_model",
    "match_spots",
    "predict_image",
    "read_spots",
    "resolve_resolution",
    "save_model",
    "tissue_grid",
    "tissue_mask",
    "write_maps",
]
