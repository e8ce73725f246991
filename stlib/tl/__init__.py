"""Tools: reusable computations on an AnnData of spots (scanpy's ``tl`` role).

- :mod:`stlib.tl.features` -- PCA, KNN pooling and spatial graph embeddings of the CNN features;
- :mod:`stlib.tl.ceiling` -- the noise ceiling of each gene (binomial thinning);
- :mod:`stlib.tl.uncertainty` -- bootstrap intervals over sections and spots;
- :mod:`stlib.tl.blocked` -- the spatially blocked bootstrap (blocks of neighbouring spots, seeds
  resampled with them; percentile, basic and BCa intervals);
- :mod:`stlib.tl.autocorr` -- Moran's I correlogram of residuals and the block size read from it.
- :mod:`stlib.tl.coverage` -- coverage of iid-spot against blocked intervals on simulated fields.

Each is imported on first use (``st.tl.ceiling``).
"""

from __future__ import annotations

from stlib._lazy import lazy_submodules

#: The tools, ``stlib.tl.<name>``.
SUBMODULES: tuple[str, ...] = ("features", "ceiling", "uncertainty", "blocked", "autocorr", "coverage")

__all__ = [*SUBMODULES]

__getattr__, __dir__ = lazy_submodules(__name__, SUBMODULES, globals())
