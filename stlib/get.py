"""Per-split and per-section views of an AnnData, as scanpy's ``get`` gives views of results.

Every table and model of the book reads the spots of one split (or one section) at a time;
these are the only functions that build those masks. Arrays are dense float64 in the order of
the AnnData's rows within each split; a split without spots is left out of the dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from stlib._utils import SPLITS, dense

__all__ = ["COMPARTMENTS", "compartments", "counts_by_split", "expression_adata", "full_predictions", "section_groups", "section_mask", "sections",
           "split_arrays", "split_arrays_obs", "split_mask", "split_masks"]


def split_mask(adata: ad.AnnData, split: str | Iterable[str], split_key: str = "split") -> np.ndarray:
    """The boolean mask of the rows of one split (or of several).

    Parameters
    ----------
    adata
        Spots, with the split of each in ``obs[split_key]``.
    split
        ``"train"``, ``"valid"`` or ``"test"``, or several of them.
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    numpy.ndarray
        ``(n_obs,)`` booleans (all False when the split has no spots).
    """
    labels = adata.obs[split_key].astype(str).to_numpy()
    return np.isin(labels, [split] if isinstance(split, str) else list(split))


def section_mask(adata: ad.AnnData, section: str | Iterable[str], key: str = "section") -> np.ndarray:
    """The boolean mask of the rows of one section (or of several).

    Parameters
    ----------
    adata
        Spots, with the section of each in ``obs[key]``.
    section
        A section id, or several.
    key
        The ``obs`` column that holds the section.

    Returns
    -------
    numpy.ndarray
        ``(n_obs,)`` booleans (all False when no row belongs to it).
    """
    labels = adata.obs[key].astype(str).to_numpy()
    return np.isin(labels, [section] if isinstance(section, str) else [str(x) for x in section])


def split_masks(adata: ad.AnnData, split_key: str = "split", splits: Iterable[str] = SPLITS) -> dict[str, np.ndarray]:
    """Per split (of ``splits``) that has spots, the boolean mask of its rows.

    Parameters
    ----------
    adata
        Spots, with the split of each in ``obs[split_key]``.
    split_key
        The ``obs`` column that holds the split.
    splits
        The splits to look for, in output order (default ``"train"``, ``"valid"``, ``"test"``).

    Returns
    -------
    dict
        Split -> ``(n_obs,)`` booleans (:func:`split_mask`); a split without spots is left out.
    """
    out = {}
    for s in splits:
        mask = split_mask(adata, s, split_key)
        if mask.any():
            out[s] = mask
    return out


def sections(adata: ad.AnnData, mask: np.ndarray | None = None, key: str = "section") -> list[str]:
    """The section ids of the (masked) rows, in order of first appearance.

    Parameters
    ----------
    adata
        Spots, with the section of each in ``obs[key]``.
    mask
        Optional ``(n_obs,)`` booleans: only the sections of these rows; ``None`` for all rows.
    key
        The ``obs`` column that holds the section.

    Returns
    -------
    list of str
        Each section id once, as a string.
    """
    col = adata.obs[key].astype(str)
    return list(dict.fromkeys(col.to_numpy() if mask is None else col.to_numpy()[np.asarray(mask)]))


#: The tissue compartments of :func:`compartments`, in display order.
COMPARTMENTS = ("tumour", "non-tumour", "unannotated")


def compartments(adata: ad.AnnData, key: str = "tumor") -> np.ndarray:
    """Each spot's tissue compartment from its tumour annotation: ``"tumour"``, ``"non-tumour"``
    or ``"unannotated"`` (annotation missing).

    The annotation is data, fixed before any model is scored (``obs["tumor_source"]`` says where
    it comes from: a pathologist's labels, or the authors' expression clusters).

    Parameters
    ----------
    adata
        Spots with a boolean (nullable) ``obs[key]``.
    key
        The ``obs`` column of the tumour annotation.

    Returns
    -------
    numpy.ndarray
        ``(n_obs,)`` strings, one of :data:`COMPARTMENTS` per spot, in the order of ``adata``.
    """
    if key not in adata.obs:
        raise KeyError(f"obs[{key!r}] (the tumour annotation) is missing; columns: {list(adata.obs.columns)}")
    t = pd.array(adata.obs[key], dtype="boolean")
    out = np.full(adata.n_obs, COMPARTMENTS[2], dtype=object)
    known = ~np.asarray(t.isna())
    vals = np.asarray(t.fillna(False), dtype=bool)
    out[known & vals] = COMPARTMENTS[0]
    out[known & ~vals] = COMPARTMENTS[1]
    return out


def _part(adata: ad.AnnData, key: str, mask: np.ndarray):
    if key == "X":
        return adata.X[mask]
    if key == "counts" or (key not in adata.obsm and key in adata.layers):
        return adata.layers[key][mask]
    return adata.obsm[key][mask]


def split_arrays(adata: ad.AnnData, keys: Sequence[str], split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the horizontal concatenation of ``obsm[k]`` for ``k in keys`` (``"X"`` = targets).

    Rows keep the order of ``adata`` within each split. ``"counts"`` reads ``layers["counts"]``, and
    a key that is a layer and not an ``obsm`` key reads that layer.

    Parameters
    ----------
    adata
        Spots, with the split of each in ``obs[split_key]``.
    keys
        ``obsm`` keys, or ``"X"`` (the targets) or ``"counts"`` (``layers["counts"]``), concatenated in
        this order; dense or sparse blocks are both read.
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    dict
        Split -> dense float64 ``(n_spots, n_columns)`` array, for each split that has spots.
    """
    return {s: np.hstack([dense(_part(adata, k, m), np.float64) for k in keys])
            for s, m in split_masks(adata, split_key).items()}


def section_groups(adata: ad.AnnData, splits, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the section id of each spot (the ``groups`` of :func:`stlib.metrics.evaluate`).

    Parameters
    ----------
    adata
        Spots, with ``obs[split_key]`` and ``obs["section"]`` (the section column is always
        ``"section"``).
    splits
        The splits to return, e.g. ``["test"]`` or a dict keyed by split (its keys are used).
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    dict
        Split -> ``(n_spots,)`` string array of section ids, in the order of ``adata``; every split
        of ``splits`` is a key, an empty array when it has no spots.
    """
    return {s: adata.obs.loc[split_mask(adata, s, split_key), "section"].astype(str).to_numpy() for s in splits}


def split_arrays_obs(adata: ad.AnnData, column: str, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, one ``obs`` column as an ``(n, 1)`` float array.

    Parameters
    ----------
    adata
        Spots, with the split of each in ``obs[split_key]``.
    column
        The numeric ``obs`` column to read (e.g. ``"total_counts"``, ``"log_size_factor"``).
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    dict
        Split -> float64 ``(n_spots, 1)`` array, for each split that has spots.
    """
    return {s: adata.obs.loc[m, column].to_numpy(dtype=np.float64)[:, None]
            for s, m in split_masks(adata, split_key).items()}


def counts_by_split(adata: ad.AnnData, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the raw counts of the target genes (``layers["counts"]``) as dense arrays.

    Parameters
    ----------
    adata
        Targets with ``layers["counts"]`` and the split of each spot in ``obs[split_key]``.
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    dict
        Split -> float64 ``(n_spots, n_vars)`` counts, for each split that has spots.
    """
    return split_arrays(adata, ["counts"], split_key)


def full_predictions(adata: ad.AnnData, by_split: dict[str, np.ndarray], split_key: str = "split") -> np.ndarray:
    """Per-split arrays (a :class:`~stlib.models._base.ModelResult`'s ``predictions``) as one
    ``(n_obs, n_vars)`` array in the order of ``adata`` (NaN where a split has none).

    Parameters
    ----------
    adata
        The spots the predictions are of, with the split of each in ``obs[split_key]``.
    by_split
        Split -> ``(n_spots, n_vars)`` predictions, rows in the order of ``adata`` within the
        split; a shape that does not match raises a ``ValueError``.
    split_key
        The ``obs`` column that holds the split.

    Returns
    -------
    numpy.ndarray
        ``(n_obs, n_vars)`` float32; the rows of a split missing from ``by_split`` are NaN.
    """
    full = np.full(adata.shape, np.nan, dtype=np.float32)
    for s, arr in by_split.items():
        mask = split_mask(adata, s, split_key)
        if arr.shape != (int(mask.sum()), adata.n_vars):
            raise ValueError(f"{s}: predictions of shape {arr.shape}, expected {(int(mask.sum()), adata.n_vars)}")
        full[mask] = arr
    return full


def expression_adata(targets: ad.AnnData, X: np.ndarray, mask: np.ndarray | None = None) -> ad.AnnData:
    """An AnnData with the obs/obsm/uns of ``targets`` (optionally a subset) and ``X`` as data.

    Parameters
    ----------
    targets
        The spots, with ``obsm["spatial"]`` (and, if any, ``uns["spatial"]``).
    X
        ``(n_obs, n_vars)`` expression over all rows of ``targets`` (e.g. ``targets.X`` or a
        prediction), subset with ``mask`` here.
    mask
        Optional ``(n_obs,)`` booleans selecting the rows to keep; ``None`` keeps all.

    Returns
    -------
    anndata.AnnData
        ``X`` as float32, a copy of the kept rows' ``obs``, the ``var_names`` of ``targets``,
        ``obsm["spatial"]`` and ``uns["spatial"]`` (no other ``obsm`` or ``uns`` entry is copied).
    """
    m = np.ones(targets.n_obs, bool) if mask is None else np.asarray(mask)
    out = ad.AnnData(X=np.asarray(X)[m].astype(np.float32), obs=targets.obs.loc[m].copy(),
                     var=pd.DataFrame(index=targets.var_names.copy()))
    out.obsm["spatial"] = np.asarray(targets.obsm["spatial"])[m]
    out.uns["spatial"] = targets.uns.get("spatial", {})
    return out
