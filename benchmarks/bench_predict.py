"""Benchmark `stlib predict` on one full-resolution H&E section (~9,300 x 9,900 px).

Runs the command line as a user does, in a fresh process per case, and prints wall time and
peak memory (the child's maximum resident set) for:

- the tissue grid (the image alone: tissue detection, grid, CNN, model, maps of 3 genes);
- the section's measured spot centres (``--spots``).

The model is fitted from a run's results (``stlib fit-model``, default ``results/default``).
Usage::

    python benchmarks/bench_predict.py [--results results/default] [--section B4] [--repeat 2]

Needs the demo data (``STLIB_DATA_MIRROR`` or the download cache) and the MobileNetV2 weights.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


_CHILD = ("import resource, sys\nfrom stlib.cli import main\nrc = main(sys.argv[1:])\n"
          "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(rc)")


def run(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (GiB) of one child process, and its stdout."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"stlib {' '.join(args)} failed:\n{r.stderr}")
    kib = int(r.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    return wall, kib / 2**20, r.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(REPO / "results" / "default"))
    p.add_argument("--section", default="B4")
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()

    import anndata as ad
    import pandas as pd

    import stlib as st

    tmp = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    wall, peak, _ = run(["fit-model", a.results, str(tmp / "model")])
    print(f"fit-model: {wall:.1f} s, peak {peak:.2f} GiB")
    data = ad.read_h5ad(Path(a.results) / "targets.h5ad", backed="r")
    meta = data.uns["spatial"][a.section]["metadata"]
    image = meta["image_path"]
    sec = data.obs["section"] == a.section
    spots = pd.DataFrame({"spot_id": data.obs.loc[sec, "spot_id"].to_numpy(),
                          "pixel_x": data.obsm["spatial"][sec.to_numpy(), 0],
                          "pixel_y": data.obsm["spatial"][sec.to_numpy(), 1]})
    spots.to_csv(tmp / "spots.csv", index=False)
    h, w = st.io.images.image_size(image)
    print(f"section {a.section}: {w:,} x {h:,} px ({w * h / 1e6:.0f} Mpx), {len(spots)} measured spots; "
          f"{os.cpu_count()} CPUs")
    rows = []
    for case, extra in (("tissue grid + 3 maps", ["--maps", str(tmp / "maps")]),
                        ("measured spots", ["--spots", str(tmp / "spots.csv")])):
        for k in range(a.repeat):
            wall, peak, out = run(["predict", str(tmp / "model"), image, "--out", str(tmp / "p.h5ad"), "--quiet", *extra])
            pred = ad.read_h5ad(tmp / "p.h5ad")
            rows.append({"case": case, "run": k + 1, "spots": pred.n_obs, "wall s": round(wall, 1),
                         "inside s": pred.uns["prediction"]["seconds"], "peak GiB": round(peak, 2)})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print("'wall s' is the whole command (Python and TensorFlow start-up included); 'inside s' is "
          "predict_image itself; peak is the child's maximum resident set.")


if __name__ == "__main__":
    main()
