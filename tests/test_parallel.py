"""Tests of stlib._parallel.map_processes (whole fits side by side on fresh worker processes)."""

from __future__ import annotations

import os

import pytest

from stlib._parallel import map_processes, n_workers


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def _fails(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad call {x}")
    return x


def test_results_keep_call_order_and_run_elsewhere() -> None:
    out = map_processes(_pid_and_square, [{"x": i} for i in range(5)], n_jobs=2)
    assert [sq for _, sq in out] == [0, 1, 4, 9, 16]
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_one_job_or_one_call_runs_here() -> None:
    assert map_processes(_pid_and_square, [{"x": 3}, {"x": 4}], n_jobs=1) == [(os.getpid(), 9), (os.getpid(), 16)]
    assert map_processes(_pid_and_square, [{"x": 3}], n_jobs=2) == [(os.getpid(), 9)]
    assert map_processes(_pid_and_square, [], n_jobs=2) == []


def test_a_failing_call_raises_here() -> None:
    with pytest.raises(ValueError, match="bad call 2"):
        map_processes(_fails, [{"x": i} for i in range(4)], n_jobs=2)


def test_n_workers() -> None:
    assert n_workers(3) == 3 and n_workers(-1) == (os.cpu_count() or 1) and n_workers(0) == (os.cpu_count() or 1)


def test_worker_restart_warning_is_loky_s_and_is_silenced_in_the_pool() -> None:
    """loky warns from its manager thread when it replaces a worker (memory grown past its leak
    threshold): the text is loky's own, and inside a pool that warning, from any thread, is not
    shown; other warnings are."""
    import inspect
    import re
    import threading
    import warnings

    from joblib.externals.loky import process_executor

    from stlib._parallel import LOKY_WORKER_RESTART, worker_pool

    source = re.sub(r'"\s*\n\s*"', "", inspect.getsource(process_executor))  # adjacent literals joined
    assert LOKY_WORKER_RESTART in source

    def manager_thread() -> None:
        warnings.warn(LOKY_WORKER_RESTART + ". This can be caused by a too short worker timeout or by a memory leak.",
                      UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with worker_pool(1):
            t = threading.Thread(target=manager_thread)
            t.start()
            t.join()
    assert [str(w.message) for w in seen] == ["something else"]
