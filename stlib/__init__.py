"""stlib: the helper package behind the book.

Predicting spatial gene expression of legacy Spatial Transcriptomics sections
from H&E histology through low-dimensional embeddings.

Submodules follow scanpy/squidpy roles:

- :mod:`stlib.io` -- readers (HER2ST, He et al. 2020) and the data-set registry
- :mod:`stlib.pp` -- gene selection and targets
- :mod:`stlib.im` -- image windows and CNN features
- :mod:`stlib.features` -- PCA, KNN pooling, spatial graph embeddings
- :mod:`stlib.models` -- GLMs, linear models, Keras networks
- :mod:`stlib.metrics` -- per-gene metrics
- :mod:`stlib.pl` -- figures
"""

from __future__ import annotations

import warnings as _warnings

from stlib.errors import ChecksumError, DataError, SplitError

with _warnings.catch_warnings():
    # tqdm.auto warns once, at import, when ipywidgets is absent (squidpy imports it); the
    # warning would otherwise land in the first notebook cell that imports squidpy.
    _warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

__version__ = "0.1.0"
__all__ = ["ChecksumError", "DataError", "SplitError", "__version__"]
