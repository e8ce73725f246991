"""Packages whose submodules are imported on first use. Imports nothing but ``importlib``:
``stlib`` must load no numerical library before :mod:`stlib._kernels` pins the kernels."""

from __future__ import annotations

import importlib
from typing import Any


def lazy_submodules(package: str, names: tuple[str, ...], namespace: dict[str, Any]) -> tuple[Any, Any]:
    """``__getattr__`` and ``__dir__`` for a package whose submodules ``names`` are imported on
    first use (``st.pl`` imports matplotlib only when touched); ``namespace`` is its ``globals()``."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
