"""Shared fixtures: the real HER2ST demo sections, when a mirror of them is at hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def demo_mirror() -> Path | None:
    """``$STLIB_DATA_MIRROR``, else ``../shared/data`` beside the checkout, if it holds HER2ST."""
    cands = [os.environ.get("STLIB_DATA_MIRROR"), str(PROJECT.parent / "shared" / "data")]
    for c in cands:
        if c and (Path(c) / "her2st" / "data" / "ST-cnts" / "B4.tsv.gz").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def demo():
    """The six real her2st-demo sections as one AnnData (skips when no mirror is present)."""
    mirror = demo_mirror()
    if mirror is None:
        pytest.skip("real data absent: set STLIB_DATA_MIRROR to a folder holding her2st/ (e.g. ../shared/data)")
    mp = pytest.MonkeyPatch()
    mp.setenv("STLIB_DATA_MIRROR", str(mirror))
    mp.delenv("STLIB_MANIFESTS", raising=False)
    from stlib.io import load_dataset

    adata = load_dataset("her2st-demo").read(progress=False)
    mp.undo()
    return adata
