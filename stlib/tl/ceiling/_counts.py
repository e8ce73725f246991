"""Counts: checks, binomial thinning, splits into independent parts, and the target transforms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stlib.errors import DataError
from stlib.pp import TARGET_SUM, TRANSFORMS

Counts = np.ndarray | sp.spmatrix | sp.sparray


# --------------------------------------------------------------------------- checks
def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def check_counts(counts: Counts, what: str = "<counts>") -> Counts:
    """Check that ``counts`` is a 2-D matrix of non-negative integers (sparse or dense).

    Returns ``counts`` as a new CSR matrix with sorted indices (sparse input) or an ``int64``
    ndarray (dense; the input itself when it already is one), never modifying ``counts``;
    raises a :class:`~stlib.errors.DataError` naming ``what`` otherwise.

    Parameters
    ----------
    counts
        Spots x genes counts, dense (array-like) or scipy sparse. Integer, boolean or float dtypes
        are accepted; float values must be finite whole numbers.
    what
        Name of the input in the error message (e.g. a file or argument name).

    Returns
    -------
    scipy.sparse.csr_matrix or numpy.ndarray
        The counts as ``int64``: a CSR copy with sorted indices for sparse input, an ndarray for
        dense input.

    Raises
    ------
    DataError
        Not 2-D, not numeric, or values that are non-finite, not whole or negative.
    """
    if sp.issparse(counts):
        X = sp.csr_matrix(counts)
        values = X.data
    else:
        X = np.asarray(counts)
        values = X
    if X.ndim != 2:
        raise DataError(what, f"expected a (n_spots, n_genes) count matrix, got shape {X.shape}")
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
            or values.dtype == bool):
        raise DataError(what, f"counts must be numeric, got dtype {values.dtype}")
    if values.size:
        if np.issubdtype(values.dtype, np.floating):
            if not np.isfinite(values).all():
                raise DataError(what, "counts hold NaN or infinite values")
            if (values != np.round(values)).any():
                n = int((values != np.round(values)).sum())
                raise DataError(what, f"counts must be integers (raw UMI/read counts, not normalised values); "
                                      f"{n} value(s) are not")
        if (values < 0).any():
            raise DataError(what, f"counts must be non-negative; {int((values < 0).sum())} value(s) are negative")
    if sp.issparse(X):
        # a copy: scipy shares index arrays between a matrix and its re-typed version, and
        # sorting the indices of a shared array would scramble the caller's matrix
        X = sp.csr_matrix(X, dtype=np.int64, copy=True)
        X.sort_indices()
        return X
    return X.astype(np.int64, copy=False)


def _check_sections(sections: Sequence[str] | np.ndarray | None, n_spots: int, what: str = "sections") -> np.ndarray:
    if sections is None:
        return np.full(n_spots, "all")
    s = np.asarray(sections).astype(str)
    if s.ndim != 1 or len(s) != n_spots:
        raise DataError(what, f"needs one section label per spot: got {s.shape} labels for {n_spots} spots")
    return s


def _check_mask(genes_mask: Sequence[bool] | np.ndarray | None, n_genes: int) -> np.ndarray:
    if genes_mask is None:
        return np.ones(n_genes, dtype=bool)
    m = np.asarray(genes_mask)
    if m.dtype != bool:
        if np.issubdtype(m.dtype, np.integer):  # column indices
            out = np.zeros(n_genes, dtype=bool)
            if m.size and (m.min() < -n_genes or m.max() >= n_genes):
                raise DataError("genes_mask", f"gene index out of range for {n_genes} genes")
            out[m] = True
            return out
        raise DataError("genes_mask", f"expected a boolean mask or integer indices, got dtype {m.dtype}")
    if m.shape != (n_genes,):
        raise DataError("genes_mask", f"boolean mask of shape {m.shape} for {n_genes} genes")
    return m


# --------------------------------------------------------------------------- thinning
def thin(counts: Counts, fraction: float, rng: np.random.Generator | int | None) -> Counts:
    """Binomial thinning: keep each molecule independently with probability ``fraction``.

    Parameters
    ----------
    counts
        Spots x genes integer counts, dense or sparse.
    fraction
        Probability of keeping a molecule, in ``[0, 1]``.
    rng
        A :class:`numpy.random.Generator` (or a seed).

    Returns
    -------
    The thinned counts, of the same kind (CSR or ``int64`` ndarray) and shape. Under Poisson
    sampling with mean ``lambda`` the result is Poisson with mean ``fraction * lambda``. The
    draws run over the non-zero counts in row-major order, so dense and sparse copies of the
    same counts are thinned identically for the same generator state.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    X = check_counts(counts)
    gen = _rng(rng)
    # draws over the non-zero counts in CSR (row-major) order, whatever the storage: dense and
    # sparse copies of the same counts give the same result for the same seed
    out = sp.csr_matrix(X) if not sp.issparse(X) else X.copy()
    out.sort_indices()
    out.data = gen.binomial(out.data, fraction).astype(np.int64)
    if sp.issparse(X):
        out.eliminate_zeros()
        return out
    return out.toarray()


def split_half(counts: Counts, rng: np.random.Generator | int | None) -> tuple[Counts, Counts]:
    """Split each spot's counts into two halves: ``a ~ Binomial(c, 1/2)``, ``b = c - a``.

    Parameters
    ----------
    counts
        Spots x genes integer counts, dense or sparse (all genes, so that the halves'
        totals are half-depth totals).
    rng
        A :class:`numpy.random.Generator` (or a seed).

    Returns
    -------
    (a, b)
        Same kind (CSR or ``int64`` ndarray) and shape as ``counts``; ``a + b == counts``.
        If the counts are Poisson (or a Poisson mixture, e.g. negative binomial) given the
        spot's rate ``lambda``, ``a`` and ``b`` are independent Poisson with mean
        ``lambda / 2`` given ``lambda``.

    Raises
    ------
    DataError
        Negative, non-integer or non-finite counts.
    """
    X = check_counts(counts)
    a = thin(X, 0.5, rng)
    if sp.issparse(X):
        b = sp.csr_matrix(X - a)
        b.eliminate_zeros()
        return a, b
    return a, X - a


def split_counts(counts: Counts, n_parts: int, rng: np.random.Generator | int | None) -> list[Counts]:
    """Split counts into ``n_parts`` parts of equal expected size (multinomial thinning).

    Each molecule goes to one part uniformly at random (sequential binomial draws). Under
    Poisson sampling the parts are independent Poisson with mean ``lambda / n_parts``; they
    sum to ``counts``.

    Parameters
    ----------
    counts
        Spots x genes integer counts, dense or sparse.
    n_parts
        Number of parts, at least 1 (``1`` gives the checked counts as the only part).
    rng
        A :class:`numpy.random.Generator` (or a seed).

    Returns
    -------
    list
        ``n_parts`` count matrices of the same kind (CSR or ``int64`` ndarray) and shape as
        ``counts``, summing to ``counts``.

    Raises
    ------
    ValueError
        ``n_parts < 1``.
    DataError
        Negative, non-integer or non-finite counts.
    """
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1, got {n_parts}")
    X = check_counts(counts)
    gen = _rng(rng)
    rest = X
    parts: list[Counts] = []
    for k in range(n_parts - 1):
        part = thin(rest, 1.0 / (n_parts - k), gen)
        rest = sp.csr_matrix(rest - part) if sp.issparse(rest) else rest - part
        parts.append(part)
    parts.append(rest)
    return parts


# --------------------------------------------------------------------------- transforms
def _scale_factors(totals: np.ndarray, transform: str, sections: np.ndarray, target_sum: float) -> np.ndarray:
    """Per spot, what its counts are divided by (as :func:`stlib.pp.size_factors`).

    Spots with zero total keep factor 1 (their values stay 0), as
    :func:`scanpy.pp.normalize_total` does; the ``"paper"`` median is over the spots of the
    section with a positive total (scanpy's rule).
    """
    if transform == "log1p":
        return np.ones_like(totals)
    out = np.ones_like(totals)
    pos = totals > 0
    if transform == "normalize_log1p":
        out[pos] = totals[pos] / target_sum
        return out
    for sec in pd.unique(sections):
        m = sections == sec
        mp = m & pos
        if mp.any():
            out[mp] = totals[mp] / np.median(totals[mp])
    return out


def transform_counts(
    counts: Counts,
    transform: str,
    *,
    sections: Sequence[str] | np.ndarray | None = None,
    all_gene_totals: np.ndarray | None = None,
    genes_mask: Sequence[bool] | np.ndarray | None = None,
    target_sum: float = TARGET_SUM,
) -> np.ndarray | sp.csr_matrix:
    """Apply one of the project's target transforms to a count matrix, as to the full data.

    Parameters
    ----------
    counts
        Spots x genes integer counts, dense or sparse. Give **all** genes (with
        ``genes_mask`` picking the targets) or pass ``all_gene_totals``: the normalising
        totals are over all genes.
    transform
        ``"paper"``: per section, each spot scaled to the section's median total count, then
        ``log1p`` (:func:`stlib.pp.make_targets`); ``"log1p"``: ``log1p`` of the raw counts;
        ``"normalize_log1p"``: each spot scaled to ``target_sum``, then ``log1p``.
    sections
        One section label per spot (only ``"paper"`` uses it; default: one section).
    all_gene_totals
        Per spot, the total count over all genes; default: the row sums of ``counts`` (all
        its columns, before ``genes_mask``).
    genes_mask
        Boolean mask (or integer indices) of the columns to return; default all.
    target_sum
        The total of ``"normalize_log1p"``.

    Returns
    -------
    float64 targets, spots x selected genes: an ndarray for dense input, CSR for sparse
    input (zeros stay zeros).

    Notes
    -----
    Matches :func:`stlib.pp.make_targets` (which runs :func:`scanpy.pp.normalize_total` and
    :func:`scanpy.pp.log1p`) up to float32 rounding there; unlike
    :func:`stlib.pp.size_factors`, spots with zero total are allowed (a thinned half can have
    one) and stay 0.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown target transform {transform!r}; use one of {TRANSFORMS}")
    X = check_counts(counts)
    n, g = X.shape
    secs = _check_sections(sections, n)
    mask = _check_mask(genes_mask, g)
    if all_gene_totals is None:
        totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    else:
        totals = np.asarray(all_gene_totals, dtype=np.float64).ravel()
        if totals.shape != (n,):
            raise DataError("all_gene_totals", f"needs one total per spot: got {totals.shape} for {n} spots")
        if (totals < 0).any() or not np.isfinite(totals).all():
            raise DataError("all_gene_totals", "totals must be finite and non-negative")
    factors = _scale_factors(totals, transform, secs, float(target_sum))
    Xm = X[:, mask]
    if sp.issparse(Xm):
        out = sp.csr_matrix(sp.diags(1.0 / factors) @ sp.csr_matrix(Xm, dtype=np.float64))
        out.data = np.log1p(out.data)
        return out
    return np.log1p(Xm / factors[:, None])
