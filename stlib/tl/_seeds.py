"""A model fitted with several seeds, scored as the mean over its seeds with the seeds resampled
(used by :mod:`stlib.tl.uncertainty`, which exports these functions)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from stlib.errors import DataError

__all__ = ["seed_mean", "seed_multiplicities", "seed_stack"]


def seed_stack(name: str, pred: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A model's prediction as ``(n_seeds, n_spots, n_genes)``: a 2-D prediction is one seed.

    Parameters
    ----------
    name
        The model's name (for the error message).
    pred
        ``(n_spots, n_genes)`` or ``(n_seeds, n_spots, n_genes)``.
    shape
        ``(n_spots, n_genes)`` of the truth.

    Returns
    -------
    numpy.ndarray
        float64, ``(n_seeds, n_spots, n_genes)``.

    Raises
    ------
    DataError
        Neither ``shape`` nor ``(n_seeds, *shape)``, or no seed at all.
    """
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != tuple(shape) or p.shape[0] == 0:
        raise DataError(name, f"prediction of shape {np.shape(pred)}; expected {tuple(shape)} or (n_seeds, *{tuple(shape)})")
    return p


def seed_multiplicities(name: str, n_seeds: int, n_boot: int, seed: int) -> np.ndarray | None:
    """How often each of a model's seeds is drawn in each bootstrap replicate.

    Seeds are drawn with replacement from a stream of the model's own (``seed`` and the model's
    name), so adding a model changes no other model's replicates.

    Parameters
    ----------
    name
        The model's name.
    n_seeds, n_boot, seed
        Its number of seeds, the replicates, the seed of the resampling.

    Returns
    -------
    numpy.ndarray or None
        ``(n_boot, n_seeds)`` multiplicities summing to ``n_seeds`` per replicate; ``None`` for a
        single seed.
    """
    if n_seeds == 1:
        return None
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot)


def seed_mean(per_seed: Sequence[np.ndarray], multiplicities: np.ndarray | None) -> np.ndarray:
    """Per replicate, the mean over a model's seeds of a statistic.

    Parameters
    ----------
    per_seed
        One ``(n_boot,)`` array of the statistic per seed.
    multiplicities
        :func:`seed_multiplicities`: each replicate weighs the seeds it drew, so the replicates
        carry the seed-to-seed variance too; ``None``: the plain mean.

    Returns
    -------
    numpy.ndarray
        ``(n_boot,)``; NaN where a drawn seed has no value.
    """
    R = np.stack([np.asarray(r, dtype=np.float64) for r in per_seed])  # (S, n_boot)
    if multiplicities is None:
        return R.mean(axis=0)
    V = np.asarray(multiplicities, dtype=np.float64).T  # (S, n_boot)
    out = (V * np.nan_to_num(R, nan=0.0)).sum(axis=0) / V.sum(axis=0)
    out[((V > 0) & np.isnan(R)).any(axis=0)] = np.nan  # a drawn seed without a value: no value
    return out
