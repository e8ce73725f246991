"""Does the book reproduce on another machine? Re-execute the whole pipeline under simulated machines.

Each variant plays a machine that differs from this one in what decides the last bits of a
result: another BLAS kernel, no AVX-512, fewer or more cores. The pipeline (every chapter, from
an empty results folder and empty feature and model caches, so nothing is reused) runs under
each, and its text outputs are compared with the stored notebooks as nbval compares them
(``tests/nbval_sanitize.cfg``); a differing cell is also read as numbers. The table gives, per
variant, the cells compared, how many differ, the numbers that differ and the largest difference.

.. code-block:: console

    $ .venv/bin/python benchmarks/machines.py                      # every variant, pinned kernels
    $ .venv/bin/python benchmarks/machines.py --native --only 01 02 03 04 05
      # the machines' own kernels (STLIB_KERNELS=native): what the book did before the pins
    $ .venv/bin/python benchmarks/machines.py --compare-only       # re-read finished runs
    $ .venv/bin/python benchmarks/machines.py --external /other/book/notebooks --against STORED \
          --record book/records/machines.csv
      # a run made on a real other machine (./run pipeline there, same commit), compared per
      # chapter with the notebooks it should reproduce; the record (CSV + JSON: both runs'
      # commits and CPUs) is what chapter 13 shows

With the pins (``stlib/_kernels.py``, the default) a variant that sets a pinned variable plays a
machine whose libraries would choose otherwise, and the pin replaces the choice, as it does on
such a machine; the run checks that the pins reach every process (notebook kernels, worker
processes) and that what they leave free (TensorFlow's threads, the number of cores) moves
nothing. ``--native`` shows what the variants do without the pins. Two variants run side by side
(``--jobs``); a full run takes about 20 minutes of one core's time and a little of a second's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (what it plays, environment, CPUs it may use (None: all))
VARIANTS: dict[str, tuple[str, dict[str, str], list[int] | None]] = {
    "this-machine": ("this machine as it is", {}, None),
    "intel-avx512": ("an Intel Xeon with AVX-512: OpenBLAS picks its SkylakeX kernel, oneDNN and numpy their "
                     "AVX-512 code", {"OPENBLAS_CORETYPE": "SkylakeX", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, None),
    "avx2-only": ("a CPU without AVX-512 (AMD Zen 2/3, Intel desktop): AVX2 kernels in OpenBLAS, oneDNN and numpy",
                  {"OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2",
                   "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}, None),
    "one-core": ("a one-core machine: every thread pool sized 1 (CPU affinity)", {}, [0]),
    "four-threads": ("a larger machine's thread pools: 4 BLAS, OpenMP, numba and TensorFlow threads",
                     {"OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4", "TF_NUM_INTRAOP_THREADS": "4",
                      "TF_NUM_INTEROP_THREADS": "4", "NUMBA_NUM_THREADS": "4"}, None),
    "no-onednn": ("a TensorFlow without oneDNN (its Eigen kernels, as on ARM and macOS builds)",
                  {"TF_ENABLE_ONEDNN_OPTS": "0"}, None),
}


def _run_variant(name: str, work: Path, native: bool, only: list[str] | None) -> subprocess.Popen:
    _, env_add, cpus = VARIANTS[name]
    out = work / name
    log = (work / f"{name}.log").open("w")
    env = dict(os.environ)
    env.pop("STLIB_KERNELS", None)
    env.update(env_add)
    if native:
        env["STLIB_KERNELS"] = "native"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "stlib.book.run", "--out", str(out), "--no-progress", "--timings",
           "-p", "cache_dir", str(out / "cache" / "features"), "-p", "model_cache", str(out / "cache" / "models")]
    if only:
        cmd += ["--only", *only]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(cmd[-12:])}", flush=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="*", default=[v for v in VARIANTS if v != "no-onednn"],
                   choices=sorted(VARIANTS))
    p.add_argument("--work", default="/tmp/stlib-machines", help="one folder per variant (emptied first)")
    p.add_argument("--against", default=str(ROOT / "book" / "notebooks"), help="the stored notebooks")
    p.add_argument("--native", action="store_true", help="the machines' own kernels (STLIB_KERNELS=native)")
    p.add_argument("--only", nargs="*", help="chapter prefixes (default: the whole pipeline)")
    p.add_argument("--jobs", type=int, default=2, help="variants run side by side")
    p.add_argument("--compare-only", action="store_true", help="compare finished runs; run nothing")
    p.add_argument("--record", help="write the table as JSON here (with --external: a CSV record and its JSON)")
    p.add_argument("--external", help="compare this folder of notebooks executed on another machine; run nothing")
    a = p.parse_args(argv)
    if a.external:
        return _external(a.external, a.against, a.record, argv)

    import pandas as pd

    from stlib._compare import compare_runs

    work = Path(a.work) / ("native" if a.native else "pinned")
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    if not a.compare_only:
        pending, running = list(a.variants), {}
        while pending or running:
            while pending and len(running) < a.jobs:
                name = pending.pop(0)
                subprocess.run(["rm", "-rf", str(work / name)], check=True)
                running[name] = (_run_variant(name, work, a.native, a.only), time.time())
            time.sleep(5)
            for name, (proc, t0) in list(running.items()):
                if proc.poll() is not None:
                    seconds[name] = time.time() - t0
                    print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {proc.returncode} after {seconds[name]:.0f} s",
                          flush=True)
                    del running[name]

    rows = []
    sanitize = ROOT / "tests" / "nbval_sanitize.cfg"
    for name in a.variants:
        nb_dir = work / name / "notebooks"
        per_nb = compare_runs(a.against, nb_dir, sanitize=sanitize)
        done = [r["notebook"] for r in per_nb]
        differ = [r for r in per_nb if r["cells_differ"]]
        rows.append({
            "variant": name,
            "kernels": "native" if a.native else "pinned",
            "chapters": len(done),
            "cells": sum(r["cells"] for r in per_nb),
            "cells_differ": sum(r["cells_differ"] for r in per_nb),
            "values": sum(r["values"] for r in per_nb),
            "values_differ": sum(r["values_differ"] for r in per_nb),
            "largest": max((r["largest"] for r in per_nb), default=0.0),
            "chapters_differ": " ".join(r["notebook"][:2] for r in differ),
            "first": differ[0]["notebook"][:2] + " " + differ[0]["first"] if differ else "",
            "minutes": round(seconds.get(name, float("nan")) / 60, 1),
        })
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(table.to_string(index=False))
    if a.record:
        Path(a.record).write_text(json.dumps({
            "against": a.against, "work": str(work), "variants": {k: {"plays": VARIANTS[k][0], "env": VARIANTS[k][1],
                                                                       "cpus": VARIANTS[k][2]} for k in a.variants},
            "rows": rows}, indent=1, default=str))
    return 0


def _external(new_dir: str, against: str, record: str | None, argv: list[str] | None) -> int:
    """Compare an execution made on another machine with ``against``, per chapter."""
    import pandas as pd

    from stlib._compare import compare_runs, run_provenance

    stored, other = run_provenance(against), run_provenance(new_dir)
    table = pd.DataFrame(compare_runs(against, new_dir, sanitize=ROOT / "tests" / "nbval_sanitize.cfg"))
    if table.empty:
        print(f"no notebook of {against} is in {new_dir}")
        return 1
    table = table.set_index("notebook")
    print(f"stored: commit {stored['commit']} on {stored['cpu']}; other: commit {other['commit']} on {other['cpu']}")
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(table.to_string())
    # the code that differs between the two executions' commits (none when they are the same)
    changed = subprocess.run(["git", "diff", "--name-only", stored["commit"], other["commit"], "--", "stlib", "notebooks",
                              "data"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    print("code that differs between the two commits:", ", ".join(changed) or "none")
    if record:
        out = Path(record)
        table.to_csv(out)
        out.with_suffix(".json").write_text(json.dumps({
            "command": "python benchmarks/machines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "commit": other["commit"], "date": time.strftime("%Y-%m-%d"), "stored": stored, "other": other,
            "same_commit": stored["commit"] == other["commit"], "code_changed": changed}, indent=1))
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
