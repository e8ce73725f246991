"""pytest plugin that pins the numerical kernels (:mod:`stlib._kernels`) for every test run here.

``pyproject.toml`` loads it with ``-p stlib._pytest_pins``: pytest imports ``-p`` plugins before
the plugins installed packages register (zarr's and fast-array-utils' import numpy), so the pins
are in the environment before numpy, OpenBLAS or TensorFlow load in this process, in
pytest-xdist's workers and in the notebook kernels nbval starts. ``./run test`` pins them too.
"""

from stlib import _kernels

_kernels.apply()
