"""stlib: the helper package behind the book.

Predicting spatial gene expression of legacy Spatial Transcriptomics sections from H&E
histology through low-dimensional embeddings. Used as scanpy is::

    import stlib as st
    adata = st.io.load_dataset("her2st-demo").read()
    targets = st.pp.make_targets(adata, st.pp.select_genes(adata, 250))

The layers, in the order data flows through them (each imports only the ones above it):

- :mod:`stlib.io` -- data sets (manifests, fetching, splits), readers, H&E images
- :mod:`stlib.pp` -- gene selection, targets, clusters
- :mod:`stlib.im` -- spot windows and CNN features
- :mod:`stlib.features` -- PCA, KNN pooling, spatial graph embeddings
- :mod:`stlib.get` -- per-split and per-section views of an AnnData
- :mod:`stlib.models` -- model inputs, GLMs, linear models, probes, Keras networks, references
- :mod:`stlib.protocol` -- every choice in which the authors' code and the sound protocol differ
- :mod:`stlib.metrics`, :mod:`stlib.ceiling`, :mod:`stlib.uncertainty`, :mod:`stlib.scoring` --
  per-gene metrics, the noise ceiling, bootstrap intervals, and scores of models
- analyses: :mod:`stlib.tables` (Table I), :mod:`stlib.qualitative` (the report's figures),
  :mod:`stlib.controls`, :mod:`stlib.ladder`, :mod:`stlib.cv`, :mod:`stlib.verdict`,
  :mod:`stlib.markers`
- :mod:`stlib.model`, :mod:`stlib.predict` -- a saved image-to-expression model, and its
  prediction for a new H&E image (spots given, or a grid over the tissue)
- :mod:`stlib.pl` -- figures
- running the book: :mod:`stlib.store` (a run's artifacts), :mod:`stlib.run` (papermill),
  :mod:`stlib.provenance`, :mod:`stlib.cli`

Submodules are imported on first use (``st.pl`` imports matplotlib only when touched).
"""

from __future__ import annotations

import importlib
import warnings as _warnings
from typing import Any

from stlib.errors import ChecksumError, DataError, SplitError

with _warnings.catch_warnings():
    # tqdm.auto warns once, at import, when ipywidgets is absent (squidpy imports it); the
    # warning would otherwise land in the first notebook cell that imports squidpy.
    _warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

__version__ = "0.1.0"

#: The public submodules (``stlib.<name>``), imported lazily.
SUBMODULES: tuple[str, ...] = (
    "ceiling", "cli", "controls", "cv", "features", "get", "im", "io", "ladder", "markers", "metrics", "model",
    "models", "parallel", "pl", "pp", "predict", "protocol", "provenance", "qualitative", "run", "scale", "scoring",
    "store", "tables", "uncertainty", "verdict",
)

__all__ = ["ChecksumError", "DataError", "SplitError", "__version__", *SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f"stlib.{name}")
    raise AttributeError(f"module 'stlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))
