"""Benchmark: bootstrap intervals with rank statistics (chapter 8's SRCC intervals) against split size.

Every replicate re-ranks the resampled spots of every gene and model, so this is the part of the
bootstrap that grows fastest with the data. It is timed on synthetic data of the shape of a split
(log-normalised counts with many ties as truth, continuous predictions, one prediction with tied
values), for split sizes from the demo's test section to the He et al. train split, and beside it
the per-column reference (:func:`stlib.tl.uncertainty.weighted_ranks` for both columns, as chapter 8
computed SRCC before), which must give the same correlations.

    python benchmarks/bench_bootstrap.py [--spots 283 1000 3000 6000] [--genes 250] [--models 8]

Prints seconds and peak resident memory per size; the reference only up to ``--reference-max``
spots (it is several times slower).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def reference_spearman(W: np.ndarray, y: np.ndarray, preds: list[np.ndarray]) -> list[np.ndarray]:
    """SRCC per replicate and gene from the ranks of both columns (:func:`weighted_ranks`)."""
    from stlib.tl.uncertainty import weighted_ranks

    s = W.sum(axis=1)
    out = [np.full((W.shape[0], y.shape[1]), np.nan) for _ in preds]
    for j in range(y.shape[1]):
        ry = weighted_ranks(W, y[:, j])
        for k, p in enumerate(preds):
            rp = weighted_ranks(W, p[:, j])
            ma, mb = (W * ry).sum(1) / s, (W * rp).sum(1) / s
            va, vb = (W * ry * ry).sum(1) / s - ma**2, (W * rp * rp).sum(1) / s - mb**2
            out[k][:, j] = ((W * ry * rp).sum(1) / s - ma * mb) / np.sqrt(va * vb)
    return out


def data(n: int, genes: int, models: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.log1p(rng.poisson(0.8, size=(n, genes)).astype(float))
    preds = [0.3 * y + rng.normal(size=(n, genes)) for _ in range(models)]
    preds[-1] = np.round(preds[-1], 1)  # a model with tied predictions
    groups = np.repeat([f"s{i}" for i in range(max(1, n // 300))], -(-n // max(1, n // 300)))[:n]
    return y, preds, groups


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spots", type=int, nargs="+", default=[283, 1000, 3000, 6000])
    p.add_argument("--genes", type=int, default=250)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--reference-max", type=int, default=1000)
    a = p.parse_args()

    from stlib.tl import uncertainty

    print(f"{a.genes} genes, {a.models} models, {a.n_boot} replicates; seconds for SRCC of every replicate")
    print(f"{'spots':>7} {'stlib':>8} {'reference':>10} {'max |diff|':>11} {'peak GiB':>9}")
    for n in a.spots:
        y, preds, groups = data(n, a.genes, a.models)
        W = uncertainty.bootstrap_weights(groups, a.n_boot, 0)
        t = time.perf_counter()
        got = uncertainty.weighted_spearman(W, y, preds)
        fast = time.perf_counter() - t
        ref_s, diff = "", ""
        if n <= a.reference_max:
            t = time.perf_counter()
            ref = reference_spearman(W, y, preds)
            ref_s = f"{time.perf_counter() - t:.1f}"
            diff = f"{max(np.nanmax(np.abs(g - r)) for g, r in zip(got, ref, strict=True)):.1e}"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{n:>7} {fast:>8.1f} {ref_s:>10} {diff:>11} {peak:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
