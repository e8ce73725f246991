"""Three patients: what resolution costs, leave-one-patient-out, and the field's protocol.

Chapter 12 runs on ``her2st-abc``: HER2ST patients A (two sections read from the study's
web-app views, about 3.4 um/px, background painted black), B and C (full-resolution scans,
about 0.73 um/px). Its three-part split puts one patient in each part (train C, valid A, test
B), so a choice made on valid is a choice made on a patient the model never saw.

- :func:`views` makes the two versions of the data set the chapter compares: ``"native"``
  (every section at its own resolution) and ``"common"`` (every section at the coarsest one:
  patients B and C downsampled to A's pixels). Both restore the painted background to white
  (:func:`stlib.im.common_resolution`), so the two differ only in resolution.
- :func:`spot_features` embeds a version (CNN features of a physical window, KNN pooling).
- :func:`feature_change` measures how much downsampling moves the features of the same spots.
- :func:`resolution_study` fits the fold models on train at both resolutions and scores valid
  and test with paired differences; :func:`choose_resolution` chooses on **valid only**.
- :func:`leave_one_patient_out` runs the fold models with every patient held out in turn
  (:mod:`stlib.book.cv`), with the mean over folds and its interval.
- :func:`field_comparison` puts the published HER2ST numbers (``data/field_benchmarks.yaml``,
  each with its source and conditions) beside this book's under the field's protocol
  (:data:`FIELD_PROTOCOL`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, im
from stlib.book import cv, scoring
from stlib.errors import DataError
from stlib.tl import features as tl_features

RESOLUTIONS: tuple[str, ...] = ("native", "common")

#: The protocol of the HER2ST benchmarks (ST-Net's, then HisToGene, Hist2ST, TRIPLEX): the 250
#: genes with the highest mean on train, ``normalize_total`` + ``log1p`` per spot, leave one
#: patient out, the mean over genes of each gene's PCC over the test spots.
FIELD_PROTOCOL: dict[str, Any] = {"gene_rule": "mean", "transform": "normalize_log1p", "n_genes": 250}

BENCHMARKS_FILE = Path(__file__).resolve().parents[2] / "data" / "field_benchmarks.yaml"

__all__ = ["BENCHMARKS_FILE", "FIELD_PROTOCOL", "RESOLUTIONS", "choose_resolution", "feature_change",
           "field_comparison", "leave_one_patient_out", "published", "resolution_study", "spot_features", "views"]


def views(adata: ad.AnnData, out_dir: str | os.PathLike[str], *, progress: bool = False) -> dict[str, ad.AnnData]:
    """The data set at each section's own resolution and at the coarsest one, backgrounds white."""
    from stlib.im._windows import section_um_per_px

    secs = [str(s) for s in pd.unique(adata.obs["section"].astype(str))]
    finest = min(section_um_per_px(adata, s) for s in secs)
    return {"native": im.common_resolution(adata, finest, out_dir, background="white", progress=progress),
            "common": im.common_resolution(adata, "coarsest", out_dir, background="white", progress=progress)}


def spot_features(
    adata: ad.AnnData,
    *,
    backbone: str = "mobilenet_v2",
    weights: str | None = "imagenet",
    window_um: float = im.REPORT_WINDOW_UM,
    size: int = 224,
    n_neighbors: int = 15,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ad.AnnData:
    """CNN features of every spot (``obsm["X_cnn"]``) and their KNN pooling (``obsm["X_cnn_knn"]``).

    Returns a new AnnData over the same spots (no counts) holding the features, the coordinates
    and ``uns["cnn_features"]``; nothing is fitted.
    """
    out = ad.AnnData(obs=adata.obs[[c for c in ("section", "patient") if c in adata.obs]].copy())
    out.obsm["spatial"] = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    out.uns["spatial"] = adata.uns["spatial"]
    im.cnn_features(out, backbone=backbone, weights=weights, size=size, window_um=window_um, cache_dir=cache_dir,
                    progress=progress)
    tl_features.knn_pool(out, "X_cnn", n_neighbors=n_neighbors, key_added="X_cnn_knn")
    return out


def feature_change(native: ad.AnnData, common: ad.AnnData, *, rep: str = "X_cnn") -> pd.DataFrame:
    """Per section: how far downsampling moved the features of the same spots.

    Columns: the resolution before and after, the median cosine similarity of a spot's two
    feature vectors, and how often the downsampled window's features find the same spot's
    native features as their nearest (cosine) among the section's spots ("same spot found").
    Sections that were not downsampled are left out.
    """
    rows = {}
    for sec in pd.unique(native.obs["section"].astype(str)):
        m = get.section_mask(native, sec)
        um_n = native.uns["spatial"][sec]["metadata"]["um_per_px"]
        um_c = common.uns["spatial"][sec]["metadata"]["um_per_px"]
        if np.isclose(um_n, um_c):
            continue
        a = np.asarray(native.obsm[rep][m], dtype=np.float64)
        b = np.asarray(common.obsm[rep][np.flatnonzero(get.section_mask(common, sec))],
                       dtype=np.float64)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        cos = (a * b).sum(axis=1)
        found = (np.argmax(b @ a.T, axis=1) == np.arange(len(a))).mean()
        rows[sec] = {"spots": int(m.sum()), "um/px native": round(float(um_n), 3), "um/px common": round(float(um_c), 3),
                     "median cosine": float(np.median(cos)), "lowest decile cosine": float(np.quantile(cos, 0.1)),
                     "same spot found": float(found)}
    return pd.DataFrame.from_dict(rows, orient="index")


def resolution_study(
    adata: ad.AnnData,
    feats: Mapping[str, ad.AnnData],
    split: Mapping[str, str],
    *,
    models: tuple[str, ...] = ("hest_probe", "knn_hest_probe"),
    **kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold models fitted on train and scored on valid and test at each resolution.

    ``feats`` maps :data:`RESOLUTIONS` to :func:`spot_features` outputs over the same spots;
    ``kwargs`` go to :func:`stlib.book.cv.fit_and_score` (genes and target do not depend on
    the images, so both resolutions score the same genes on the same bootstrap draws).

    Returns the scores (index: resolution, model, split) and the paired differences common -
    native per model and split (``difference``, ``lo``, ``hi``, ``excludes_zero``).
    """
    scores, boots = {}, {}
    for res in RESOLUTIONS:
        iv, bs, _ = cv.fit_and_score(adata, feats[res], dict(split), score_on=("valid", "test"), **kwargs)
        scores[res], boots[res] = iv, bs
    table = pd.concat(scores, names=["resolution"]).loc[(slice(None), list(models)), :]
    diffs = {}
    for part in ("valid", "test"):
        a, b = boots["common"][(part, "target")], boots["native"][(part, "target")]
        for m in models:
            d = a.replicates["pcc"][m] - b.replicates["pcc"][m]
            point = float(a.point.loc[m, "pcc"] - b.point.loc[m, "pcc"])
            q = (1 - a.level) / 2
            lo, hi = float(d.quantile(q)), float(d.quantile(1 - q))
            diffs[(m, part)] = {"difference": point, "lo": lo, "hi": hi, "excludes_zero": bool(lo > 0 or hi < 0)}
    return table, pd.DataFrame.from_dict(diffs, orient="index").rename_axis(["model", "split"])


def choose_resolution(diffs: pd.DataFrame, model: str = "knn_hest_probe") -> dict[str, str]:
    """The resolution the chapter's main result uses, chosen on **valid** only.

    The rule, fixed before looking: ``"common"`` (it removes the difference in resolution
    between patients, which a model could otherwise learn as a difference in expression) unless
    ``model``'s valid PCC is lower at the common resolution with a paired 95% interval below
    zero; then ``"native"``. Test rows of ``diffs`` are never read.
    """
    row = diffs.loc[(model, "valid")]
    if row["excludes_zero"] and row["difference"] < 0:
        choice, why = "native", "the common resolution lowers the valid PCC (interval below zero)"
    else:
        choice, why = "common", ("the common resolution does not lower the valid PCC "
                                 f"(difference {scoring.with_interval(row['difference'], row['lo'], row['hi'])})")
    return {"choice": choice, "reason": why, "model": model}


def leave_one_patient_out(adata: ad.AnnData, feats: ad.AnnData, **kwargs: Any) -> dict[str, pd.DataFrame]:
    """Every patient held out in turn (:func:`stlib.book.cv.cross_validate`), and the mean.

    Returns ``{"scores": per (fold, model), "records": per fold, "mean": per model}``, the mean
    from :func:`stlib.book.cv.mean_over_folds`.
    """
    folds = cv.leave_one_patient_out(adata)
    scores, records, boots = cv.cross_validate(adata, feats, folds, return_boots=True, **kwargs)
    return {"scores": scores, "records": records, "mean": cv.mean_over_folds(boots)}


def published(path: str | os.PathLike[str] = BENCHMARKS_FILE) -> pd.DataFrame:
    """The published HER2ST numbers with their conditions and sources (one row per method)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise DataError(str(p), "missing: the list of published numbers and their sources")
    doc = yaml.safe_load(p.read_text())
    rows = doc.get("methods") if isinstance(doc, dict) else None
    if not rows:
        raise DataError(str(p), "has no 'methods' list")
    need = {"method", "value", "dataset", "protocol", "encoder", "reported_in", "source", "verified"}
    for i, r in enumerate(rows):
        missing = need - set(r)
        if missing:
            raise DataError(str(p), f"entry {i} ({r.get('method', '?')}) lacks {sorted(missing)}")
    return pd.DataFrame(rows)


def field_comparison(ours: pd.DataFrame, pub: pd.DataFrame, *, models: Mapping[str, str]) -> pd.DataFrame:
    """This book's mean LOPO PCC under the field's protocol beside the published numbers.

    ``ours`` is :func:`leave_one_patient_out`'s ``"mean"`` under :data:`FIELD_PROTOCOL`;
    ``models`` maps its model names to the labels shown. Published rows keep their conditions
    and whether the number was verified against its source.
    """
    rows = []
    for m, label in models.items():
        r = ours.loc[m]
        rows.append({"method": label, "mean PCC": scoring.with_interval(r["pcc"], r["pcc_lo"], r["pcc_hi"]),
                     "conditions": "HER2ST patients A, B, C (8 sections), leave one patient out, 250 genes",
                     "encoder": "MobileNetV2 (ImageNet), frozen", "source": "this book, chapter 12",
                     "verified": "run here"})
    for _, r in pub.iterrows():
        value = r["value"]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            shown = str(r.get("value_as_quoted") or "not found")
        else:
            sd = r.get("sd")
            has_sd = sd is not None and not (isinstance(sd, float) and np.isnan(sd))
            shown = f"{value:.3f}" + (f" +- {sd}" if has_sd else "")
        rows.append({"method": r["method"], "mean PCC": shown, "conditions": r.get("conditions") or r["protocol"],
                     "encoder": r["encoder"].split(";")[0].split(" (")[0],
                     "source": str(r["reported_in"] or "none found").split(".")[0][:80],
                     "verified": "yes" if r["verified"] is True else "not verified"})
    return pd.DataFrame(rows).set_index("method")
