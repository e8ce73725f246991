"""The pinned numerical kernels (stlib/_kernels.py): applied, in force, and needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stlib import _kernels
from stlib.book import provenance


def _show(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "stlib._kernels", "--show"], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def test_apply_writes_every_pin_and_reports_what_it_replaced() -> None:
    env = {"OPENBLAS_CORETYPE": "SkylakeX", "PATH": "/bin"}
    changed = _kernels.apply(env)
    assert {k: env[k] for k in _kernels.PINS} == _kernels.PINS
    assert changed["OPENBLAS_CORETYPE"] == "SkylakeX" and changed["ONEDNN_MAX_CPU_ISA"] == ""
    assert _kernels.apply(env) == {}  # idempotent


def test_native_leaves_the_machine_s_kernels() -> None:
    env = {_kernels.SWITCH: "native", "OPENBLAS_CORETYPE": "SkylakeX"}
    assert _kernels.apply(env) == {} and env["OPENBLAS_CORETYPE"] == "SkylakeX"


def test_this_test_process_runs_the_pinned_kernels() -> None:
    # pyproject loads stlib._pytest_pins before numpy; nbval's kernels and xdist's workers inherit the pins
    if not _kernels.pinned():
        pytest.skip("STLIB_KERNELS=native")
    # the hash seed acts at start-up only: a bare `pytest` (not ./run test) starts this process randomised;
    # the processes it starts get PYTHONHASHSEED=0 (test_worker_processes_inherit_the_pins)
    assert [m for m in _kernels.mismatches() if "PYTHONHASHSEED" not in m] == []


def test_a_process_started_with_the_pins_runs_them_whatever_the_machine_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != _kernels.SWITCH}
    env.update({"OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": ""})
    _kernels.apply(env)
    shown = _show(env)
    assert shown["mismatches"] == []
    assert {b["kernel"] for b in shown["in_force"]["blas"]} == {"Haswell"}
    assert shown["in_force"]["numpy_simd"] in ("X86_V3", "baseline")
    # and a machine left to itself is reported as such
    env2 = {**env, "OPENBLAS_CORETYPE": "Zen", "OPENBLAS_NUM_THREADS": "2"}
    assert any("OPENBLAS_CORETYPE" in m for m in _show(env2)["mismatches"])


def _avx512() -> bool:
    try:
        return " avx512f" in open("/proc/cpuinfo").read()
    except OSError:
        return False


@pytest.mark.skipif(not _avx512(), reason="the AVX-512 kernels need a CPU that has them")
def test_the_pins_matter_here_a_machine_s_own_kernels_round_otherwise() -> None:
    """Without the pins, an Intel AVX-512 server's BLAS kernel and numpy's AVX-512 loops give other
    last bits than the pinned ones on the same inputs (so a pin that stopped working would show)."""
    code = ("import numpy as np, hashlib; r = np.random.default_rng(0); a = r.normal(size=(300, 700)).astype(np.float32);"
            "x = r.gamma(1, 1, 100000); print(hashlib.sha256((a @ a.T).tobytes()).hexdigest()[:12],"
            " hashlib.sha256(np.log1p(x).tobytes()).hexdigest()[:12])")

    def run(env: dict[str, str]) -> list[str]:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.split()

    base = {k: v for k, v in os.environ.items() if k not in _kernels.PINS}
    pinned = dict(base)
    _kernels.apply(pinned)
    native = {**base, _kernels.SWITCH: "native", "OPENBLAS_CORETYPE": "SkylakeX"}
    p, n = run(pinned), run(native)
    assert p[0] != n[0], "the SkylakeX BLAS kernel gave the pinned product bit for bit"
    assert p[1] != n[1], "numpy's AVX-512 log1p gave the pinned values bit for bit"


def test_provenance_names_the_machine_and_its_kernels() -> None:
    m = {**_kernels.in_force(), "mismatches": []}
    text = provenance.machine_text(m)
    assert "cores" in text and "numpy up to" in text and "oneDNN" in text
    assert "pinned kernels" in text if m["pinned"] else "native" in text
    text2 = provenance.machine_text({**m, "pinned": {"x": "1"}, "mismatches": ["numpy dispatches to X86_V4"]})
    assert "differ from the book" in text2 and "X86_V4" in text2


def _worker_mismatches(i: int) -> list[str]:
    return _kernels.mismatches()


def test_worker_processes_inherit_the_pins() -> None:
    """The fits that run side by side (stlib._parallel) compute with the same kernels as this process."""
    from stlib._parallel import map_processes

    if not _kernels.pinned():
        pytest.skip("STLIB_KERNELS=native")
    assert map_processes(_worker_mismatches, [{"i": 0}, {"i": 1}], n_jobs=2) == [[], []]
