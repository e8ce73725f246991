"""stlib: the helper package behind the book.

Predicting spatial gene expression of legacy Spatial Transcriptomics sections from H&E
histology through low-dimensional embeddings. Used as scanpy is::

    import stlib as st
    adata = st.io.load_dataset("her2st-demo").read()
    targets = st.pp.make_targets(adata, st.pp.select_genes(adata, 250))

The public face, in the order data flows through it (:data:`LAYERS`: each layer imports only
the layers below it, ``tests/test_structure.py`` checks it):

- :mod:`stlib.io` -- data sets (manifests, fetching, splits), readers, H&E images
- :mod:`stlib.get` -- per-split and per-section views of an AnnData (the only place that
  builds split and section masks)
- :mod:`stlib.pp` -- gene selection, targets, clusters
- :mod:`stlib.im` -- spot windows and CNN features
- :mod:`stlib.tl` -- tools: features (PCA, KNN pooling, spatial graph embeddings), the noise
  ceiling, bootstrap intervals
- :mod:`stlib.metrics` -- per-gene metrics and their summaries
- :mod:`stlib.models` -- model inputs, GLMs, linear models, probes, Keras networks, references
- :mod:`stlib.pl` -- figures
- :mod:`stlib.predictor` -- a saved image-to-expression model, and its prediction for a new H&E
  image (spots given, or a grid over the tissue)
- :mod:`stlib.book` -- this reproduction: the chapters' analyses (protocol, scoring, tables,
  ladder, controls, cv, verdict, ...) and the machinery that runs the book (store, run,
  provenance, scale)

Beside the face: :mod:`stlib.cli` (the ``stlib`` command) on top, and the private helpers at
the bottom (:mod:`stlib.errors`, ``stlib._utils``, ``stlib._compat``, ``stlib._format``,
``stlib._parallel``, ``stlib._kernels``).

Submodules are imported on first use (``st.pl`` imports matplotlib only when touched).
"""

from __future__ import annotations

import warnings as _warnings

from stlib._lazy import lazy_submodules
from stlib.errors import ChecksumError, DataError, SplitError

with _warnings.catch_warnings():
    # tqdm.auto warns once, at import, when ipywidgets is absent (squidpy imports it); the
    # warning would otherwise land in the first notebook cell that imports squidpy.
    _warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

__version__ = "0.1.0"

#: The public submodules (``stlib.<name>``), imported lazily, in layer order.
SUBMODULES: tuple[str, ...] = ("io", "get", "pp", "im", "tl", "metrics", "models", "pl", "predictor", "book")

#: The layers of the package, bottom first: a module may import its own layer and the layers
#: before it, never one after it (``tests/test_structure.py``). A layer is a top-level name of
#: ``stlib`` (a module or a package); the first holds the private helpers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_lazy", "_leaks", "_utils", "_compat", "_format", "_kernels", "_parallel", "_compare", "_pytest_pins"),
    *((name,) for name in SUBMODULES),
    ("cli",),
)

__all__ = ["ChecksumError", "DataError", "SplitError", "__version__", *SUBMODULES]

__getattr__, __dir__ = lazy_submodules(__name__, SUBMODULES, globals())
