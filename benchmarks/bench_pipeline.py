"""Wall time and peak memory of notebooks 01-06 on her2st-demo, cold and with warm caches.

Run from the project root (needs the data mirror / network and the Keras cache):

    .venv/bin/python benchmarks/bench_pipeline.py [--only 01 02 03 04 05 06]

"Cold" starts from an empty results folder and empty caches (CNN features, model fits);
"warm" reruns the same notebooks with the caches that the cold run filled. Peak memory is the
largest resident set of any notebook kernel (ru_maxrss of the waited-for child processes; it
only grows, so the warm row shows the maximum over both runs).
Writes to runs/bench-cold and runs/bench-warm; prints a table.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, only: list[str], cache: Path) -> tuple[float, float]:
    """Run the notebooks in a child process; return (seconds, peak RSS of any kernel in GiB)."""
    cmd = [sys.executable, "-c",
           "import resource, sys; from stlib.book.run import main; rc = main(sys.argv[1:]); "
           "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)",
           "--name", name, "--no-progress", "-p", "cache_dir", str(cache / "features"),
           "-p", "model_cache", str(cache / "models"), "--only", *only]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"{name} failed")
    kib = max(int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("PEAK_KIB"))
    own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, max(kib, own) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=["01", "02", "03", "04", "05", "06"])
    a = ap.parse_args()
    cache = ROOT / "runs" / "bench-cache"
    for d in (cache, ROOT / "runs" / "bench-cold", ROOT / "runs" / "bench-warm"):
        shutil.rmtree(d, ignore_errors=True)
    rows = [("cold", *run("bench-cold", a.only, cache)), ("warm", *run("bench-warm", a.only, cache))]
    print(f"notebooks {' '.join(a.only)} on her2st-demo, {Path('/proc/cpuinfo').read_text().count('processor')} cores")
    print(f"{'run':<6}{'wall (s)':>10}{'peak RSS (GiB)':>16}")
    for name, dt, gib in rows:
        print(f"{name:<6}{dt:>10.1f}{gib:>16.2f}")
    print("targets: cold <= 600 s, warm <= 60 s, peak <= 4 GiB")


if __name__ == "__main__":
    main()
