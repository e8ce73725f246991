"""Artifacts of a run: where they live, and the one tidy format for predictions.

A run writes everything under one results folder::

    <results_dir>/
        config.json           the protocol (data set, backbone, target transform, seed, ...)
        data.h5ad             all spots, all genes, raw counts (01)
        targets.h5ad          the target genes: targets in X, raw counts in layers["counts"] (01)
        embeddings.h5ad       spot-level embeddings, no genes: obsm / obsp / uns of chapter 2 (02)
        predictions/<model>.h5ad   one per model (03-06)
        tables/<name>.csv     the chapters' result tables, each named in :data:`TABLES`
                              (:func:`write_table`, :func:`read_table`)

Embeddings do not depend on the genes: they are stored once per spot and joined to any set of
targets on load (:func:`load_targets`, :func:`join_embeddings`), so a chapter that selects its
genes anew (another target transform, a cross-validation fold) reuses them as they are.

Prediction files are AnnData with the same ``obs_names`` and ``var_names`` as
``targets.h5ad``: ``X`` = predictions in target space, optional ``layers["counts"]`` (GLMs),
per-gene information as ``var`` columns, settings in ``uns["model"]`` and learning curves in
``uns["history"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib._utils import resolve
from stlib.errors import DataError
from stlib.get import full_predictions

#: ``uns`` entries that belong to a set of target genes, never to the embeddings.
GENE_UNS: tuple[str, ...] = ("gene_selection", "target")
from stlib.models import ModelResult


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


def save_seed_predictions(name: str, fits: Mapping[int, ModelResult], targets: ad.AnnData, results_dir: Path,
                          split_key: str = "split") -> Path:
    """Add a model's refits with other seeds to its prediction file: ``layers["seed_<k>"]`` (target
    space) for each seed ``k`` of ``fits``, and ``uns["seeds"]``. ``X`` stays the fit the chapter
    made with its own ``seed``; scores of the model are then the mean over ``uns["seeds"]``
    (:func:`stlib.book.scoring.scored_from_files`).

    Raises
    ------
    FileNotFoundError
        The model has no prediction file yet (:func:`save_predictions` first).
    ValueError
        Fewer than two seeds, or a fit of another model.
    """
    path = results_dir / "predictions" / f"{name}.h5ad"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions of {name!r} to add seeds to (save_predictions first)")
    if len(fits) < 2:
        raise ValueError(f"{name}: {len(fits)} seed(s); seeds are stored for two or more")
    other = sorted({r.name for r in fits.values()} - {name})
    if other:
        raise ValueError(f"{name}: the seed fits are of {other}")
    pred = ad.read_h5ad(path)
    for k in [k for k in pred.layers if k.startswith("seed_")]:
        del pred.layers[k]
    for k, r in fits.items():
        pred.layers[f"seed_{int(k)}"] = full_predictions(targets, r.predictions, split_key)
    pred.uns["seeds"] = np.asarray([int(k) for k in fits], dtype=np.int64)
    pred.write_h5ad(path)
    return path


def seed_layers(pred: ad.AnnData) -> list[str]:
    """The layers of a prediction file that hold one fit per seed (empty: one fit, in ``X``)."""
    return [f"seed_{int(k)}" for k in pred.uns.get("seeds", [])]


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


# --------------------------------------------------------------------------- targets and embeddings
def write_embeddings(adata: ad.AnnData, results_dir: Path) -> Path:
    """Write the spot-level embeddings of ``adata`` (``obsm``, ``obsp``, and ``uns`` except
    :data:`GENE_UNS`) to ``embeddings.h5ad``, without genes; ``obs`` keeps ``section`` and ``split``."""
    keep = [c for c in ("section", "spot_id", "split") if c in adata.obs]
    emb = ad.AnnData(obs=adata.obs[keep].copy(), obsm={k: adata.obsm[k] for k in adata.obsm},
                     obsp={k: adata.obsp[k] for k in adata.obsp},
                     uns={k: v for k, v in adata.uns.items() if k not in GENE_UNS})
    path = results_dir / "embeddings.h5ad"
    emb.write_h5ad(path)
    return path


def load_embeddings(results_dir: Path) -> ad.AnnData:
    """The run's spot-level embeddings (``embeddings.h5ad``, chapter 2)."""
    path = results_dir / "embeddings.h5ad"
    if not path.is_file():
        raise DataError(path, "missing file: run chapter 2 (the embeddings) first")
    return ad.read_h5ad(path)


def _reorder(mapping: Any, keys: Sequence[str]) -> None:
    items = [(k, mapping[k]) for k in keys]
    for k in list(mapping.keys()):
        del mapping[k]
    for k, v in items:
        mapping[k] = v


def join_embeddings(targets: ad.AnnData, embeddings: ad.AnnData, *, obsm: Sequence[str] | None = None,
                    obsp: Sequence[str] | None = None, uns: Sequence[str] | None = None) -> ad.AnnData:
    """``targets`` with the embeddings of its spots added in place (and returned).

    ``obsm`` / ``obsp`` / ``uns`` name the entries to add (default: all of ``embeddings``;
    entries ``targets`` already has are kept as they are; absent names are skipped). Rows are
    matched by ``obs_names``: a target spot without embeddings is a :class:`DataError`. The
    entries end in name order, as :func:`anndata.read_h5ad` returns them.
    """
    absent = targets.obs_names.difference(embeddings.obs_names)
    if len(absent):
        raise DataError("embeddings", f"{len(absent)} spots of the targets have no embeddings, e.g. {list(absent[:3])}")
    same = embeddings.obs_names.equals(targets.obs_names)
    rows = None if same else embeddings.obs_names.get_indexer(targets.obs_names)
    for k in (list(embeddings.obsm) if obsm is None else [k for k in obsm if k in embeddings.obsm]):
        if k not in targets.obsm:
            v = embeddings.obsm[k]
            targets.obsm[k] = v if same else v[rows]
    for k in (list(embeddings.obsp) if obsp is None else [k for k in obsp if k in embeddings.obsp]):
        if k not in targets.obsp:
            v = embeddings.obsp[k]
            targets.obsp[k] = v if same else v[rows][:, rows]
    for k in (list(embeddings.uns) if uns is None else [k for k in uns if k in embeddings.uns]):
        if k not in targets.uns and k not in GENE_UNS:
            targets.uns[k] = embeddings.uns[k]
    _reorder(targets.obsm, sorted(targets.obsm.keys()))
    _reorder(targets.obsp, sorted(targets.obsp.keys()))
    targets.uns = {k: targets.uns[k] for k in sorted(targets.uns)}
    return targets


def load_targets(results_dir: Path, *, embeddings: bool = True) -> ad.AnnData:
    """The run's targets (``targets.h5ad``), with the spot-level embeddings joined when asked."""
    path = results_dir / "targets.h5ad"
    if not path.is_file():
        raise DataError(path, "missing file: run chapter 1 (the targets) first")
    t = ad.read_h5ad(path)
    return join_embeddings(t, load_embeddings(results_dir)) if embeddings else t


def read_record(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A stored run of a script too long for CI: the table ``<name>.csv`` (first column the index)
    and its provenance ``<name>.json`` beside it (``command``, ``commit``, ``date``, ...).

    Relative paths are resolved against the project (:func:`stlib._utils.resolve`). A missing or unreadable
    file is a :class:`~stlib.errors.DataError` naming it.
    """
    csv = resolve(path)
    meta_path = csv.with_suffix(".json")
    for f in (csv, meta_path):
        if not f.is_file():
            raise DataError(f, "no such stored record (make it with the command in the chapter's text)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(meta_path, f"not valid JSON ({e})") from None
    missing = [k for k in ("command", "commit", "date") if k not in meta]
    if missing:
        raise DataError(meta_path, f"the record's provenance lacks {missing}")
    try:
        table = pd.read_csv(csv, index_col=0)
    except (ValueError, pd.errors.ParserError) as e:
        raise DataError(csv, f"not a readable table ({e})") from None
    if table.empty:
        raise DataError(csv, "the stored table has no rows")
    return table, meta


#: Every result table a chapter writes (``tables/<name>.csv``): name -> (chapter, what it holds).
TABLES: dict[str, tuple[str, str]] = {
    "seeds_mlp": ("05", "the MLP's test scores over training seeds"),
    "seeds_gnn_paper": ("06", "the GNN's scores over training seeds"),
    "seeds_gnn_authors": ("06", "the authors' GNN's scores over training seeds"),
    "seeds_gnn": ("06", "the scores over training seeds of the GNN whose configuration was chosen on valid"),
    "all_models": ("08", "every model's metrics per split and aggregation (long)"),
    "table1": ("08", "Table I: the report's models and the two HEST probes, metrics per split"),
    "beside_paper": ("08", "the report's printed Table I beside this run's values (report's gene convention)"),
    "intervals": ("08", "bootstrap intervals of the mean PCC of every model"),
    "table1_intervals": ("08", "Table I's metrics with their bootstrap intervals"),
    "depth_partial": ("09", "image models' scores with spot depth partialled out"),
    "ladder": ("10", "every step from the authors' code to the sound protocol"),
    "ladder_fractions": ("10", "each step's test fraction of the ceiling per Table I row, with intervals"),
    "ceiling_sections": ("11", "the noise ceiling per section"),
    "ceiling_splits": ("11", "the noise ceiling per split"),
    "ceiling_depth": ("11", "the ceiling against sequencing depth"),
    "per_gene": ("11", "per-gene scores and ceilings"),
    "reliable_genes": ("11", "genes whose ceiling is reliably above zero"),
    "test_compartments": ("11", "the test split's scores and depth by tissue compartment"),
    "per_gene_intervals": ("11", "per-gene intervals of each model"),
    "resolution_study": ("12", "features and scores at native against common resolution"),
    "patient_cv": ("12", "leave-one-patient-out scores per fold"),
    "patient_cv_folds": ("12", "what each fold trained and tested on"),
    "patient_cv_mean": ("12", "leave-one-patient-out scores, mean over folds"),
    "field_protocol_folds": ("12", "the HER2ST papers' protocol on our patients, per fold"),
    "field_comparison": ("12", "our numbers beside the field's published ones"),
    "verdict": ("13", "each claim of the report and its outcome"),
    "verdict_by_seed": ("13", "each claim's outcome with the networks' seed means and with each seed's fits"),
    "image_alone": ("14", "the image-only model's scores"),
    "beyond": ("15", "models beyond the report, every column unrounded"),
    "beyond_ablation": ("15", "ablation of the models beyond the report"),
    "beyond_finetune_ablation": ("15", "ablation of the fine-tuned CNN"),
}


def table_path(results_dir: Path, name: str) -> Path:
    """Where a result table lives: ``<results_dir>/tables/<name>.csv``.

    Parameters
    ----------
    results_dir
        The run's results folder.
    name
        A key of :data:`TABLES`.

    Returns
    -------
    pathlib.Path
        The CSV's path (its folder is created).
    """
    if name not in TABLES:
        raise DataError("tables", f"no table named {name!r}; the tables are {sorted(TABLES)}")
    folder = Path(results_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.csv"


def write_table(table: pd.DataFrame, results_dir: Path, name: str, *, index: bool = True) -> None:
    """Write one result table of :data:`TABLES` as CSV.

    Parameters
    ----------
    table
        The table.
    results_dir
        The run's results folder.
    name
        A key of :data:`TABLES`.
    index
        Whether the index is written (as by :meth:`pandas.DataFrame.to_csv`). The file is
        :func:`table_path`; nothing is returned, so a cell that ends with it prints nothing.
    """
    table.to_csv(table_path(results_dir, name), index=index)


#: Where the book's own run (``results/default``) copies its tables for the pages' download links.
BOOK_TABLES = "book/tables"
#: The run whose tables the book links to.
BOOK_RUN = "results/default"


def download(results_dir: Path, name: str, table: pd.DataFrame | None = None):
    """A line for the page linking the full table ``name`` as CSV (written by :func:`write_table`).

    The book's own run (:data:`BOOK_RUN`) copies the file to :data:`BOOK_TABLES`, which the book
    links as a download, so the page can show one table per question and keep the rest one
    click away; any other run names the file where it is.

    Parameters
    ----------
    results_dir
        The run's results folder.
    name
        A key of :data:`TABLES`, already written.
    table
        The table as written, for its shape (default: read back; a table with several header
        rows, such as a column MultiIndex, needs it).

    Returns
    -------
    IPython.display.Markdown
        "Full table: <link>, R rows x C columns (what it holds)."
    """
    import shutil

    from IPython.display import Markdown

    src = table_path(results_dir, name)
    if not src.is_file():
        raise DataError(str(src), f"no table {name!r} written yet: write_table first")
    shape = pd.read_csv(src).shape if table is None else (table.shape[0], table.index.nlevels + table.shape[1])
    what = f"{shape[0]} rows x {shape[1]} columns ({TABLES[name][1]})"
    if Path(results_dir).resolve() == resolve(BOOK_RUN).resolve():
        dst = resolve(BOOK_TABLES) / f"{name}.csv"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return Markdown(f"Full table: {{download}}`{name}.csv <../tables/{name}.csv>`, {what}.")
    return Markdown(f"Full table: `{src}`, {what}.")


def read_table(results_dir: Path, name: str, **read_csv: Any) -> pd.DataFrame:
    """Read one result table of :data:`TABLES`, or say which chapter writes it.

    Parameters
    ----------
    results_dir
        The run's results folder.
    name
        A key of :data:`TABLES`.
    **read_csv
        Passed to :func:`pandas.read_csv` (``index_col``, ...).

    Returns
    -------
    DataFrame
        The table.
    """
    path = table_path(results_dir, name)
    if not path.is_file():
        raise DataError(path, f"no table {name!r} yet: chapter {TABLES[name][0]} writes it")
    return pd.read_csv(path, **read_csv)
