"""Benchmark the local run against a dask.distributed cluster of worker processes.

On the demo data (or ``--results`` of another run) it times, locally and on a
``LocalCluster`` (``--workers`` processes, one thread each; or ``--scheduler ADDRESS`` of a
real cluster):

- the CNN features of every section, cold (a fresh feature cache);
- one negative-binomial GLM per gene (chapter 3's ``nb_apriori``) on the train spots;

and prints the wall times and the largest difference between the two results (0 for the GLMs;
float rounding for the CNN, whose worker processes run TensorFlow on one thread each).

    python benchmarks/bench_distributed.py [--results results/default] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(REPO / "results" / "default"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scheduler", help="a running cluster's address instead of a LocalCluster")
    a = p.parse_args()

    import numpy as np
    import pandas as pd
    from distributed import LocalCluster

    import stlib as st
    from stlib.models import glm, inputs

    targets = st.book.store.load_targets(Path(a.results))
    cluster = None
    address = a.scheduler
    if address is None:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        address = cluster.scheduler_address
    rows = []
    try:
        info = targets.uns["cnn_features"]
        feats = {}
        for where, sched in (("local (2 threads)", None), (f"cluster {address}", address)):
            cache = tempfile.mkdtemp(prefix="bench_dist_")
            t0 = time.perf_counter()
            out = st.im.cnn_features(targets, backbone=info["backbone"], weights=info["weights"], size=info["size"],
                                     window_um=info.get("window_um"), cache_dir=cache, scheduler=sched,
                                     progress=False, copy=True)
            feats[where] = out.obsm["X_cnn"]
            rows.append({"stage": f"CNN features, {targets.obs['section'].nunique()} sections", "where": where,
                         "seconds": round(time.perf_counter() - t0, 1)})
        diff_cnn = float(np.abs(np.subtract(*feats.values())).max())
        X, _, _ = inputs.arrays(targets, "single")
        counts = st.get.counts_by_split(targets)
        off = inputs.glm_offsets(targets)
        fits = {}
        for where, kw in (("local (n_jobs=2)", {"n_jobs": 2}), (f"cluster {address}", {"scheduler": address})):
            t0 = time.perf_counter()
            fits[where] = glm.fit_glm(X, counts["train"], family="nb_apriori", offset=off, **kw)
            rows.append({"stage": f"NB GLM, {targets.n_vars} genes", "where": where,
                         "seconds": round(time.perf_counter() - t0, 1)})
        a_, b_ = fits.values()
        diff_glm = max(float(np.nanmax(np.abs(a_.predictions[s] - b_.predictions[s]))) for s in a_.predictions)
    finally:
        if cluster is not None:
            cluster.close()
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"largest difference, local vs cluster: CNN features {diff_cnn:.1e}, GLM predictions {diff_glm:.1e}")


if __name__ == "__main__":
    main()
