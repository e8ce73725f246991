"""Where fits run: local processes (joblib, :func:`map_processes`), or a dask.distributed cluster.

:func:`joblib_backend` wraps joblib's ``Parallel`` loops (one GLM per gene, :mod:`stlib.models.glm`)
so that, given a scheduler, they run on the cluster's workers through joblib's ``dask`` backend.
The CNN features have their own Dask runner (:func:`stlib.im.cnn_features`, ``scheduler=``).
Results do not depend on where a fit runs: each gene is fitted by the same deterministic code.

Whole network fits (the GNN grid's configurations, seed spreads) run side by side with
:func:`map_processes`: one small Keras network keeps about one core busy, so two fits on two
worker processes take little longer than one. Each worker is a fresh interpreter that runs the
same seeded code with the same thread settings, so its result equals the in-process one bit for
bit (tested).

.. code-block:: console

    $ dask scheduler &                          # on one machine
    $ dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1 &   # on each machine (same env, same files)
    $ ./run pipeline -p scheduler tcp://HOST:8786
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
#: The start of loky's warning when it replaces a worker (see :func:`worker_pool`).
LOKY_WORKER_RESTART = "A worker stopped while some jobs were given to the executor"


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


def n_workers(n_jobs: int) -> int:
    """``n_jobs`` as a count of processes: ``-1`` (or any value below 1) means one per CPU."""
    return int(n_jobs) if int(n_jobs) >= 1 else (os.cpu_count() or 1)


@contextmanager
def worker_pool(n_jobs: int) -> Iterator[Executor | None]:
    """A pool of ``n_jobs`` fresh worker processes (see :func:`map_processes`); ``0``: none (``None``)."""
    if int(n_jobs) == 0:
        yield None
        return
    import warnings

    from joblib.externals.loky import ProcessPoolExecutor as LokyExecutor

    from stlib import _kernels

    # the workers get the pinned kernels even if something in this process changed the variables
    # since (dask's multiprocessing scheduler, for one, sets PYTHONHASHSEED)
    env = dict(_kernels.PINS) if _kernels.pinned() else None
    with warnings.catch_warnings(), LokyExecutor(max_workers=n_workers(n_jobs), env=env) as pool:
        # loky replaces a worker whose memory grew past its leak threshold (Keras fits do) with a fresh
        # one and warns from its manager thread when that happens while calls wait; a fresh worker gives
        # the same results, so the warning only adds noise, at moments that vary from run to run.
        warnings.filterwarnings("ignore", message=LOKY_WORKER_RESTART, category=UserWarning)
        yield pool


def _call_frozen(payload: bytes) -> Any:
    func, args, kwargs = pickle.loads(payload)
    return func(*args, **kwargs)


def submit(pool: Executor, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future:
    """``pool.submit(func, *args, **kwargs)`` with the arguments pickled now, not when a worker frees up:
    the call sees its arguments as they are at submission even if this process changes them later."""
    return pool.submit(_call_frozen, pickle.dumps((func, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))


def map_processes(func: Callable[..., T], calls: Sequence[Mapping[str, Any]], n_jobs: int = 1) -> list[T]:
    """``[func(**kw) for kw in calls]``, on up to ``n_jobs`` worker processes; results in call order.

    ``n_jobs=1`` (or a single call) runs in this process. Otherwise the calls run on fresh
    interpreters started by joblib's loky (never a bare fork, which can hang a TensorFlow runtime;
    no ``if __name__ == "__main__"`` guard needed in scripts), which inherit the environment
    (``TF_*``, ``PYTHONHASHSEED``, ``KERAS_HOME``...) and set no thread limits of their own.
    ``func``'s arguments must be picklable. An exception in a call is raised here.
    """
    calls = list(calls)
    workers = min(n_workers(n_jobs), len(calls))
    if workers <= 1:
        return [func(**kw) for kw in calls]
    with worker_pool(workers) as pool:
        assert pool is not None
        futures = [submit(pool, func, **kw) for kw in calls]
        return [f.result() for f in futures]
