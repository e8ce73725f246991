"""The numerical kernels the book computes with, fixed so that any x86-64 machine gives the same bytes.

Numerical libraries pick their kernels at run time from the CPU they find, and kernels for
different instruction sets or thread counts round differently in the last bits. Most results
do not show it, but a network trained with early stopping, or a choice on a grid, amplifies
last-bit differences of its inputs into other epochs, other configurations and other printed
numbers. Measured on one machine (``benchmarks/machines.py``, and the stage-by-stage probe its
docstring names), each of these moves some stage:

============================  ====================================================  =====================================
switch                        what differs                                          stage it moves
============================  ====================================================  =====================================
``OPENBLAS_CORETYPE``         OpenBLAS's kernel: an Intel AVX-512 Xeon picks         PCA, every matrix product in numpy,
                              ``SkylakeX`` / ``SapphireRapids``, AMD and older Intel   scipy and scikit-learn
                              CPUs ``Haswell`` / ``Zen`` (the same code)
``OPENBLAS_NUM_THREADS``      one against two BLAS threads                           PCA, float32 products
``ONEDNN_MAX_CPU_ISA``        TensorFlow's oneDNN kernels, AVX-512 against AVX2       the MLP's training
``NPY_DISABLE_CPU_FEATURES``  numpy's AVX-512 ``exp`` / ``log1p`` (SVML) against its   the targets (``log1p``), every
                              AVX2 ones                                              transcendental in numpy
``TF_ENABLE_ONEDNN_OPTS``     oneDNN against Eigen kernels                           the CNN features
============================  ====================================================  =====================================

:data:`PINS` fixes each at a level every x86-64 CPU since about 2015 has (x86-64-v3: AVX2, FMA),
with one BLAS and one OpenMP thread; TensorFlow's thread count did not change any result
(1, 2 and 4 intra-op threads), so TensorFlow keeps every core. ``./run``, ``python -m
stlib.book.run`` and the pytest plugin ``stlib._pytest_pins`` (unit tests, nbval) apply the pins before any kernel or
worker process starts: they must be in the environment before numpy, OpenBLAS and TensorFlow
load. ``STLIB_KERNELS=native`` leaves the machine's own kernels in force (faster, but the
stored outputs may then not reproduce).

This module imports nothing heavy, so that ``./run`` can read the pins from it
(``python -m stlib._kernels --shell``).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping
from typing import Any

#: Environment variables that fix the kernels, with the value the book is computed under.
PINS: dict[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "PYTHONHASHSEED": "0",
}

#: ``STLIB_KERNELS=native`` leaves the machine's kernels in force.
SWITCH = "STLIB_KERNELS"


def pinned(env: MutableMapping[str, str] | None = None) -> bool:
    """Whether the pins apply (``STLIB_KERNELS`` is not ``native``)."""
    env = os.environ if env is None else env
    return env.get(SWITCH, "pinned").lower() != "native"


def apply(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Write :data:`PINS` into ``env`` (default ``os.environ``) unless ``STLIB_KERNELS=native``.

    A pin replaces whatever the variable held: a machine's own ``OPENBLAS_CORETYPE`` (set on
    some hosts) is exactly what must not decide the numbers. Processes started afterwards
    (notebook kernels, worker processes) inherit the pins; libraries already loaded in this
    process keep the kernels they chose.

    Parameters
    ----------
    env
        The environment to change.

    Returns
    -------
    The variables whose value changed, with their previous value (``""`` when unset).
    """
    env = os.environ if env is None else env
    if not pinned(env):
        return {}
    changed = {k: env.get(k, "") for k, v in PINS.items() if env.get(k) != v}
    env.update(PINS)
    return changed


def shell() -> str:
    """``export NAME=VALUE`` lines of the pins, for ``eval`` in a shell (empty when native)."""
    if not pinned():
        return ""
    return "\n".join(f"export {k}='{v}'" for k, v in PINS.items())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def in_force() -> dict[str, Any]:
    """The kernels this process computes with, read from the libraries themselves.

    Returns
    -------
    ``cpu`` (model name), ``machine`` (e.g. ``x86_64``), ``cores`` (usable), ``pinned``
    (whether the pins are in the environment, each with its value), ``numpy_simd`` (the
    highest numpy dispatch target enabled), ``blas`` (each OpenBLAS loaded: its kernel and
    threads, from threadpoolctl), ``openmp_threads``, ``onednn`` (on or off, and its
    instruction-set cap) and ``tf_threads`` (intra-op and inter-op; 0 means one per core),
    the last only when TensorFlow is already imported.
    """
    import numpy as np  # noqa: F401  (loads numpy's BLAS for threadpoolctl)
    from threadpoolctl import threadpool_info

    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        simd = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
        numpy_simd = simd[-1] if simd else "baseline"
    except ImportError:  # pragma: no cover - numpy < 2
        numpy_simd = "unknown"
    pools = threadpool_info()
    blas = [{"library": os.path.basename(p["filepath"]).split("-")[0], "kernel": p.get("architecture"),
             "threads": p["num_threads"]} for p in pools if p["internal_api"] == "openblas"]
    omp = sorted({p["num_threads"] for p in pools if p["user_api"] == "openmp"})
    out: dict[str, Any] = {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "pinned": {k: os.environ.get(k, "") for k in PINS} if pinned() else {},
        "numpy_simd": numpy_simd,
        "blas": blas,
        "openmp_threads": omp[0] if len(omp) == 1 else omp,
        "onednn": {"on": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
                   "max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL (the CPU's best)")},
    }
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tf_threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return out


def mismatches() -> list[str]:
    """Where the kernels in force differ from the pins (empty when the pins hold, or are off)."""
    if not pinned():
        return []
    info = in_force()
    # PYTHONHASHSEED acts once, at start-up: whether this interpreter hashes with seed 0 is in sys.flags
    # (a library may change the variable later: dask's multiprocessing scheduler sets it)
    out = [f"{k}={os.environ.get(k, '')!r} (pin {v!r})" for k, v in PINS.items()
           if k != "PYTHONHASHSEED" and os.environ.get(k) != v]
    if sys.flags.hash_randomization:
        out.append("this interpreter started without PYTHONHASHSEED=0 (string hashes are randomised)")
    for b in info["blas"]:
        if str(b["kernel"]).lower() != PINS["OPENBLAS_CORETYPE"].lower():
            out.append(f"{b['library']} runs the {b['kernel']} kernel (pin {PINS['OPENBLAS_CORETYPE']})")
        if str(b["threads"]) != PINS["OPENBLAS_NUM_THREADS"]:
            out.append(f"{b['library']} runs {b['threads']} threads (pin {PINS['OPENBLAS_NUM_THREADS']})")
    if info["numpy_simd"] not in ("X86_V3", "baseline") and platform.machine() in ("x86_64", "AMD64"):
        out.append(f"numpy dispatches to {info['numpy_simd']} (pin: at most X86_V3)")
    return out


def main(argv: list[str] | None = None) -> int:
    """``--shell``: the pins as ``export`` lines; ``--show``: the kernels in force, as JSON."""
    import json

    args = sys.argv[1:] if argv is None else argv
    if args == ["--shell"]:
        print(shell())
        return 0
    if args == ["--show"]:
        print(json.dumps({"in_force": in_force(), "mismatches": mismatches()}, indent=1))
        return 0
    print("usage: python -m stlib._kernels --shell | --show", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
