"""Artifacts of a run: where they live, and the one tidy format for predictions.

A run writes everything under one results folder::

    <results_dir>/
        config.json           the protocol (data set, backbone, target transform, seed, ...)
        data.h5ad             all spots, all genes, raw counts (01)
        targets.h5ad          the target genes: targets in X, counts layer, features in obsm (01, 02)
        predictions/<model>.h5ad   one per model (03-06)
        tables/*.csv          metric tables (08)

Prediction files are AnnData with the same ``obs_names`` and ``var_names`` as
``targets.h5ad``: ``X`` = predictions in target space, optional ``layers["counts"]`` (GLMs),
per-gene information as ``var`` columns, settings in ``uns["model"]`` and learning curves in
``uns["history"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd

from stlib._utils import project_root
from stlib.get import full_predictions
from stlib.models._base import ModelResult


def resolve(path: str | os.PathLike[str]) -> Path:
    """A path relative to the project root (absolute paths are kept)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def write_config(results_dir: Path, config: dict[str, Any], *, fresh: bool = False) -> None:
    """Write (merge into) ``config.json`` of a run; ``fresh=True`` starts it anew (the run's
    first chapter), so that nothing of an earlier run with other settings is left in it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "config.json"
    old = json.loads(path.read_text()) if path.is_file() and not fresh else {}
    old.update(config)
    path.write_text(json.dumps(old, indent=2, sort_keys=True, default=str))


def read_config(results_dir: Path) -> dict[str, Any]:
    """The protocol of a run."""
    return json.loads((results_dir / "config.json").read_text())


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def save_predictions(result: ModelResult, targets: ad.AnnData, results_dir: Path, split_key: str = "split") -> Path:
    """Write a model's predictions in the tidy format (see module docstring)."""
    pred = ad.AnnData(
        X=full_predictions(targets, result.predictions, split_key),
        obs=targets.obs[[c for c in ("section", "spot_id", split_key) if c in targets.obs]].copy(),
        var=pd.DataFrame(index=targets.var_names.copy()),
    )
    if result.counts is not None:
        pred.layers["counts"] = full_predictions(targets, result.counts, split_key)
    if result.per_gene is not None:
        pg = result.per_gene.reindex(targets.var_names)
        for c in pg.columns:
            col = pg[c]
            pred.var[f"fit_{c}"] = col.astype(str) if col.dtype == object else col.to_numpy()
    pred.uns["model"] = {"name": result.name, "settings_json": json.dumps(_jsonable(result.settings), sort_keys=True)}
    if result.history is not None:
        pred.uns["history"] = result.history.reset_index(drop=True).astype(
            {c: str for c in result.history.columns if result.history[c].dtype == object}
        )
    out = results_dir / "predictions" / f"{result.name}.h5ad"
    out.parent.mkdir(parents=True, exist_ok=True)
    pred.write_h5ad(out)
    return out


def load_predictions(results_dir: Path, names: Sequence[str] | None = None) -> dict[str, ad.AnnData]:
    """All (or some) prediction files of a run, by model name."""
    files = sorted((results_dir / "predictions").glob("*.h5ad"))
    out = {f.stem: ad.read_h5ad(f) for f in files if names is None or f.stem in names}
    if names is not None:
        missing = sorted(set(names) - set(out))
        if missing:
            raise FileNotFoundError(f"{results_dir / 'predictions'}: no predictions for {missing}")
    return out


def model_settings(pred: ad.AnnData) -> dict[str, Any]:
    """The fitted settings stored with a prediction file."""
    return json.loads(pred.uns["model"]["settings_json"])
