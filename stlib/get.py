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

__all__ = ["counts_by_split", "expression_adata", "full_predictions", "section_groups", "sections", "split_arrays",
           "split_arrays_obs", "split_masks"]


def split_masks(adata: ad.AnnData, split_key: str = "split", splits: Iterable[str] = SPLITS) -> dict[str, np.ndarray]:
    """Per split (of ``splits``) that has spots, the boolean mask of its rows."""
    labels = adata.obs[split_key].to_numpy()
    out = {}
    for s in splits:
        mask = labels == s
        if mask.any():
            out[s] = mask
    return out


def sections(adata: ad.AnnData, mask: np.ndarray | None = None, key: str = "section") -> list[str]:
    """The section ids of the (masked) rows, in order of first appearance."""
    col = adata.obs[key].astype(str)
    return list(dict.fromkeys(col.to_numpy() if mask is None else col.to_numpy()[np.asarray(mask)]))


def _part(adata: ad.AnnData, key: str, mask: np.ndarray):
    if key == "X":
        return adata.X[mask]
    if key == "counts":
        return adata.layers["counts"][mask]
    return adata.obsm[key][mask]


def split_arrays(adata: ad.AnnData, keys: Sequence[str], split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the horizontal concatenation of ``obsm[k]`` for ``k in keys`` (``"X"`` = targets).

    Rows keep the order of ``adata`` within each split. ``"counts"`` reads ``layers["counts"]``.
    """
    return {s: np.hstack([dense(_part(adata, k, m), np.float64) for k in keys])
            for s, m in split_masks(adata, split_key).items()}


def section_groups(adata: ad.AnnData, splits, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the section id of each spot (the ``groups`` of :func:`stlib.metrics.evaluate`)."""
    return {s: adata.obs.loc[(adata.obs[split_key] == s).to_numpy(), "section"].astype(str).to_numpy() for s in splits}


def split_arrays_obs(adata: ad.AnnData, column: str, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, one ``obs`` column as an ``(n, 1)`` float array."""
    return {s: adata.obs.loc[m, column].to_numpy(dtype=np.float64)[:, None]
            for s, m in split_masks(adata, split_key).items()}


def counts_by_split(adata: ad.AnnData, split_key: str = "split") -> dict[str, np.ndarray]:
    """Per split, the raw counts of the target genes (``layers["counts"]``) as dense arrays."""
    return split_arrays(adata, ["counts"], split_key)


def full_predictions(adata: ad.AnnData, by_split: dict[str, np.ndarray], split_key: str = "split") -> np.ndarray:
    """Per-split arrays (a :class:`~stlib.models._base.ModelResult`'s ``predictions``) as one
    ``(n_obs, n_vars)`` array in the order of ``adata`` (NaN where a split has none)."""
    full = np.full(adata.shape, np.nan, dtype=np.float32)
    labels = adata.obs[split_key].to_numpy()
    for s, arr in by_split.items():
        mask = labels == s
        if arr.shape != (int(mask.sum()), adata.n_vars):
            raise ValueError(f"{s}: predictions of shape {arr.shape}, expected {(int(mask.sum()), adata.n_vars)}")
        full[mask] = arr
    return full


def expression_adata(targets: ad.AnnData, X: np.ndarray, mask: np.ndarray | None = None) -> ad.AnnData:
    """An AnnData with the obs/obsm/uns of ``targets`` (optionally a subset) and ``X`` as data."""
    m = np.ones(targets.n_obs, bool) if mask is None else np.asarray(mask)
    out = ad.AnnData(X=np.asarray(X)[m].astype(np.float32), obs=targets.obs.loc[m].copy(),
                     var=pd.DataFrame(index=targets.var_names.copy()))
    out.obsm["spatial"] = np.asarray(targets.obsm["spatial"])[m]
    out.uns["spatial"] = targets.uns.get("spatial", {})
    return out
