"""What every layer of the package shares: the split names, where the project lives, file
hashes and dense arrays. One home for each, so no module defines its own."""

from __future__ import annotations

import hashlib
import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from stlib.errors import DataError

#: The three parts of every split, in the order tables print them.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: The folder above the package: the project checkout (``data/``, ``_toc.yml``, ...).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The project folder: ``$STLIB_PROJECT_ROOT``, else the nearest parent of the working
    directory holding ``_toc.yml``, else the folder above the package."""
    env = os.environ.get("STLIB_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    for p in [Path.cwd(), *Path.cwd().parents]:
        if (p / "_toc.yml").is_file():
            return p
    return PACKAGE_ROOT


def project_data_dir() -> Path:
    """The ``data/`` folder of the project (manifests, splits, the report's facts):
    ``$STLIB_MANIFESTS``, else ``data/`` beside the package."""
    env = os.environ.get("STLIB_MANIFESTS")
    if env:
        return Path(env)
    return PACKAGE_ROOT / "data"


def sha256_file(path: str | PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks; a missing file is a :class:`DataError`."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                h.update(block)
    except FileNotFoundError:
        raise DataError(path, "missing file") from None
    except IsADirectoryError:
        raise DataError(path, "a folder, not a file") from None
    return h.hexdigest()


def dense(a: Any, dtype: Any = None) -> np.ndarray:
    """A numpy array from a dense or scipy-sparse matrix (``dtype`` optional)."""
    out = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
    return out if dtype is None else np.asarray(out, dtype=dtype)


def resolve(path: str | os.PathLike[str]) -> Path:
    """A path relative to the project root (absolute paths are kept)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p

