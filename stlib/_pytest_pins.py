"""pytest plugin that pins the numerical kernels (:mod:`stlib._kernels`) for every test run here,
and groups the book's notebooks for nbval's run on two workers.

``pyproject.toml`` loads it with ``-p stlib._pytest_pins``: pytest imports ``-p`` plugins before
the plugins installed packages register (zarr's and fast-array-utils' import numpy), so the pins
are in the environment before numpy, OpenBLAS or TensorFlow load in this process, in
pytest-xdist's workers and in the notebook kernels nbval starts. ``./run test`` pins them too.

Chapters 09-16 read only what chapters 01-08 wrote (results, feature and model caches) and write
nothing another of them reads, so ``./run test`` checks 01-08 in order, then 09-16 as the two
chains of :data:`NOTEBOOK_CHAINS` side by side (``pytest-xdist --dist loadgroup``: each chain on
one worker, in order). The kernels are pinned to one BLAS thread, so a chain computes the same
bytes whether or not the other runs beside it.
"""

from __future__ import annotations

from pathlib import Path

from stlib import _kernels

_kernels.apply()

#: Chapters (number prefixes) that nbval may run side by side after 01-08, one chain per worker.
NOTEBOOK_CHAINS: dict[str, tuple[str, ...]] = {
    "chapters-09-13": ("09", "10", "11", "12", "13"),
    "chapters-14-16": ("14", "15", "16"),
}


def notebook_group(path: str) -> str | None:
    """The chain of :data:`NOTEBOOK_CHAINS` a notebook belongs to (``None`` for 01-08 and others).

    Parameters
    ----------
    path
        The notebook's path.

    Returns
    -------
    str or None
        The chain's name.
    """
    name = Path(path).name
    if not name.endswith(".ipynb"):
        return None
    return next((g for g, chapters in NOTEBOOK_CHAINS.items() if name[:2] in chapters), None)


def _hookimpl(func):
    import pytest

    # first: pytest-xdist's worker turns the xdist_group mark into the scheduling unit in its own
    # hook of the same name, which must see the mark (without tryfirst every cell is its own unit)
    return pytest.hookimpl(tryfirst=True)(func)


@_hookimpl
def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001 - pytest's hook signature
    """Mark each notebook cell of a chain with ``xdist_group`` (used by ``--dist loadgroup``)."""
    import pytest

    for item in items:
        group = notebook_group(str(item.fspath))
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
