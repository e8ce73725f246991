"""Spot windows and CNN features (squidpy's ``im`` role); images are read by :mod:`stlib.io.images`.

The image side of the pipeline, in squidpy's ``im`` role:

1. :func:`read_image` decodes one full-resolution H&E JPEG (~9,300 x 9,900 px,
   ~280 MB as RGB uint8) into a numpy array, with clear errors for missing,
   corrupt or truncated files.
2. :func:`extract_windows` cuts a window centred on every spot, padding
   windows that cross the image border with white and counting them; with a
   physical window (``window_um``, default in the book :data:`REPORT_WINDOW_UM`,
   the report's 224 px at ~0.69 um/px) it is :func:`window_px` pixels at the
   section's resolution, resampled to the network's 224 px input
   (:func:`resample_windows`).
3. :func:`get_backbone` builds an ImageNet CNN (MobileNetV2 or ResNet50) that
   maps a window to one pooled feature vector, and :func:`embed_windows`
   runs it in batches.
4. :func:`section_features` does 1-3 for one section (decoding the image once)
   and caches the result on disk; :func:`cnn_features` runs it over all
   sections of an AnnData in parallel with Dask and writes
   ``obsm["X_cnn"]``.
5. Other views for frozen features (:mod:`stlib.im._views`): test-time
   augmentation (``tta``: the 8 dihedral transforms averaged), context windows
   (``scales``: 2x and 4x windows around the spot) and Reinhard stain
   normalisation to a target fitted on the train sections
   (:func:`fit_stain_target`), each an option of :func:`cnn_features` and part
   of the feature-cache key.
6. :func:`common_resolution` brings sections to one resolution (finer images downsampled, a
   painted black background restored to white) before any of the above, for data sets that mix
   scans of different resolutions.

TensorFlow is imported lazily, so ``import stlib.im`` is cheap.
"""

from stlib.im._backbones import BACKBONES, IMAGENET_WEIGHTS_FILES, RANDOM_INIT_SEED, embed_windows, get_backbone, weights_file
from stlib.im._features import feature_cache_key, section_features
from stlib.im._rescale import common_resolution, restore_background
from stlib.im._runner import cnn_features, spot_windows
from stlib.im._views import StainTarget, dihedral, fit_stain_target, lab_stats, reinhard, tta_features, views_label
from stlib.im._windows import REPORT_UM_PER_PX, REPORT_WINDOW_UM, extract_windows, resample_windows, section_um_per_px, window_px

__all__ = [
    "BACKBONES",
    "StainTarget",
    "IMAGENET_WEIGHTS_FILES",
    "RANDOM_INIT_SEED",
    "REPORT_UM_PER_PX",
    "REPORT_WINDOW_UM",
    "cnn_features",
    "common_resolution",
    "dihedral",
    "embed_windows",
    "extract_windows",
    "feature_cache_key",
    "fit_stain_target",
    "get_backbone",
    "lab_stats",
    "reinhard",
    "resample_windows",
    "restore_background",
    "section_um_per_px",
    "section_features",
    "spot_windows",
    "tta_features",
    "views_label",
    "weights_file",
    "window_px",
]
