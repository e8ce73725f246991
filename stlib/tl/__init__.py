"""Tools: reusable computations on an AnnData of spots (scanpy's ``tl`` role).

- :mod:`stlib.tl.features` -- PCA, KNN pooling and spatial graph embeddings of the CNN features;
- :mod:`stlib.tl.ceiling` -- the noise ceiling of each gene (binomial thinning);
- :mod:`stlib.tl.uncertainty` -- bootstrap intervals over sections and spots.

Each is imported on first use (``st.tl.ceiling``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: The tools, ``stlib.tl.<name>``.
SUBMODULES: tuple[str, ...] = ("features", "ceiling", "uncertainty")

__all__ = [*SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f"stlib.tl.{name}")
    raise AttributeError(f"module 'stlib.tl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))
