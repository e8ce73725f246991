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

    python benchmarks/bench_bootstrap.py --blocked [--models 8] [--seeds 5] [--block 3]

times instead the iid spot bootstrap (:func:`stlib.tl.uncertainty.bootstrap_scores`, mean PCC and
error statistics, no ranks) against the blocked one (:func:`stlib.tl.blocked.blocked_bootstrap_scores`:
blocks of ``--block`` pitches, jackknife for BCa), and the blocked one with every model given
``--seeds`` seeds, at the demo's test split (one section of 283 spots) and at 68 sections of
about 200 spots (He et al.'s size), 250 genes and 1000 replicates.
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


def grid_split(n_sections: int, spots: int, genes: int, models: int, seed: int = 0):
    """Sections of ``spots`` spots on square grids (pitch 1), a smooth truth and noisy predictions."""
    from stlib.tl.coverage import gaussian_field, grid_coords

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(spots)))
    xy, g = grid_coords(side, n_sections)
    keep = np.tile(np.arange(side * side) < spots, n_sections)
    xy, g = xy[keep], g[keep]
    y = np.log1p(rng.poisson(0.8, size=(len(g), genes)).astype(float))
    y += 0.3 * np.concatenate([gaussian_field(rng, side, 1.0, genes)[:, :spots] for _ in range(n_sections)], axis=1).T
    preds = [0.3 * y + rng.normal(size=y.shape) for _ in range(models)]
    return xy, g, y, preds


def blocked_benchmark(a: argparse.Namespace) -> None:
    """Seconds of the iid and the blocked bootstrap of the mean PCC (all models of one split)."""
    from stlib.tl import blocked, uncertainty

    print(f"{a.genes} genes, {a.models} models, {a.n_boot} replicates, blocks of {a.block} pitches; seconds")
    print(f"{'split':>24} {'iid':>7} {'blocked':>8} {'ratio':>6} {f'blocked, {a.seeds} seeds':>17} {'peak GiB':>9}")
    for n_sections, spots in ((1, 283), (68, 200)):
        xy, g, y, preds = grid_split(n_sections, spots, a.genes, a.models)
        named = {f"m{i}": p for i, p in enumerate(preds)}
        t = time.perf_counter()
        uncertainty.bootstrap_scores(y, named, groups=g, n_boot=a.n_boot, seed=0, rank_stats=False)
        t_iid = time.perf_counter() - t
        t = time.perf_counter()
        blocks = blocked.grid_blocks(xy, g, float(a.block))
        blocked.blocked_bootstrap_scores(y, named, groups=g, blocks=blocks, n_boot=a.n_boot, seed=0)
        t_blk = time.perf_counter() - t
        rng = np.random.default_rng(1)
        seeded = {k: np.stack([p + 0.1 * rng.normal(size=p.shape) for _ in range(a.seeds)]) for k, p in named.items()}
        t = time.perf_counter()
        blocked.blocked_bootstrap_scores(y, seeded, groups=g, blocks=blocks, n_boot=a.n_boot, seed=0)
        t_seed = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        label = f"{n_sections} x {spots} = {len(g)} spots"
        print(f"{label:>24} {t_iid:>7.1f} {t_blk:>8.1f} {t_blk / t_iid:>6.2f} {t_seed:>17.1f} {peak:>9.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spots", type=int, nargs="+", default=[283, 1000, 3000, 6000])
    p.add_argument("--genes", type=int, default=250)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--reference-max", type=int, default=1000)
    p.add_argument("--blocked", action="store_true", help="iid against blocked bootstrap of the mean PCC")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--block", type=int, default=3, help="block side in spot pitches (--blocked)")
    a = p.parse_args()
    if a.blocked:
        blocked_benchmark(a)
        return

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
