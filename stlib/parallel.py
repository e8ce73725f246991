"""Where per-gene fits run: local processes (joblib), or a dask.distributed cluster given by address.

:func:`joblib_backend` wraps joblib's ``Parallel`` loops (one GLM per gene, :mod:`stlib.models.glm`)
so that, given a scheduler, they run on the cluster's workers through joblib's ``dask`` backend.
The CNN features have their own Dask runner (:func:`stlib.im.cnn_features`, ``scheduler=``).
Results do not depend on where a fit runs: each gene is fitted by the same deterministic code.

.. code-block:: console

    $ dask scheduler &                          # on one machine
    $ dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1 &   # on each machine (same env, same files)
    $ ./run pipeline -p scheduler tcp://HOST:8786
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def joblib_backend(scheduler: Any = None) -> Iterator[int]:
    """Run the joblib loops inside on ``scheduler``; yields the ``n_jobs`` to give them.

    ``None``: nothing changes (yields ``0``: keep the caller's ``n_jobs``). A
    ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``): joblib's ``dask``
    backend on that cluster, every worker thread used (yields ``-1``). A client made from an
    address is closed on exit.
    """
    if scheduler is None:
        yield 0
        return
    import joblib
    from distributed import Client

    client = Client(scheduler) if isinstance(scheduler, str) else scheduler
    try:
        with joblib.parallel_config(backend="dask", wait_for_workers_timeout=60):
            yield -1
    finally:
        if isinstance(scheduler, str):
            client.close()
