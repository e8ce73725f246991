"""Run the book's notebooks in order with papermill.

.. code-block:: console

    $ python -m stlib.book.run                          # every chapter with the defaults -> book/notebooks/
    $ python -m stlib.book.run --name paper --protocol paper
      # the authors' choices (leaks labelled) -> runs/paper/notebooks/*.ipynb and runs/paper/results/
    $ python -m stlib.book.run --name resnet50-demo --backbone resnet50 --weights none

Sources are the jupytext files ``notebooks/NN_*.py``; they are converted in memory (papermill
cannot read them directly) and executed with the given parameters. Every notebook receives
the parameters its ``parameters`` cell declares; others are not passed. The run stops at the
first failing notebook and names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path
from typing import Any

from stlib import _kernels
from stlib._utils import project_root
from stlib.im import BACKBONES

DEFAULT_NAME = "default"
#: The data set of the notebooks' ``dataset`` parameter when none is given (checked before the first chapter).
DEFAULT_DATASET = "her2st-abc"


def notebook_sources(root: Path) -> list[Path]:
    """The numbered jupytext notebooks, in order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))


def declared_parameters(nb: Any) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            out = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    raise ValueError("no cell tagged 'parameters'")


VOLATILE_KEYS = ("start_time", "end_time", "duration", "exception")


def cell_timings(path: Path) -> list[dict[str, Any]]:
    """Wall seconds of each code cell of an executed notebook (papermill's ``duration``), with the
    cell's index and first source line; read before :func:`strip_volatile_metadata` drops them."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    rows = []
    for i, cell in enumerate(nb.cells):
        seconds = cell.metadata.get("papermill", {}).get("duration")
        if cell.cell_type == "code" and seconds is not None:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            rows.append({"cell": i, "seconds": round(float(seconds), 2), "source": first[:80]})
    return rows


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's timestamps and durations so that a rerun gives a clean diff.

    Only metadata that changes on every run is removed, and the random cell ids that the
    conversion from text gives are replaced by ids from the cell's position (papermill's
    injected parameters cell included), which is tagged ``remove-cell`` so that the book
    shows the notebook's own parameters cell only; outputs are untouched.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    for k in VOLATILE_KEYS:
        pm_meta.pop(k, None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]  # the book shows the parameters cell once
        cell.metadata.pop("execution", None)
        cpm = cell.metadata.get("papermill", {})
        for k in VOLATILE_KEYS:
            cpm.pop(k, None)
    nbformat.write(nb, path)


def _check_design(dataset: str | None, chapters: list[str], *, selected: bool) -> None:
    """Refuse, before the first chapter, a data set whose split cannot run the selected chapters
    (:func:`stlib.io.check_design`), saying which can and suggesting ``--only``; chapter 14's 4x
    resolution rule is checked too where the manifest declares or its spots files measure each
    section's um/px (``reader: spots``, :func:`stlib.io.spots.manifest_resolutions`)."""
    from stlib.errors import DataError, SplitError
    from stlib.io import check_design, load_dataset

    try:
        design = check_design(load_dataset(dataset or DEFAULT_DATASET), chapters)
    except (DataError, SplitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if design.blocked:
        print(design.describe(), file=sys.stderr)
        raise SystemExit(2)


def run(
    params: dict[str, Any],
    *,
    name: str = DEFAULT_NAME,
    only: list[str] | None = None,
    progress: bool = True,
    out: str | os.PathLike[str] | None = None,
    timings: bool = False,
) -> list[Path]:
    """Execute the notebooks; return the executed files.

    With ``name == "default"`` the executed notebooks go to ``book/notebooks/`` (what the book
    renders) and results to ``results/default``; any other name writes to ``runs/<name>/``
    so that a rerun never overwrites the committed outputs. ``out`` (a folder anywhere) takes
    the executed notebooks (``out/notebooks``) and results (``out/results``) instead.
    ``timings`` writes each notebook's per-cell wall seconds beside it (``NN_name.timings.csv``),
    which the scale benchmark reads to say where the time goes.
    """
    import jupytext
    import nbformat
    import papermill as pm

    root = project_root()
    os.environ.setdefault("STLIB_PROJECT_ROOT", str(root))
    _kernels.apply()  # the kernels every notebook process inherits (unless STLIB_KERNELS=native)
    if out is not None:
        base = Path(out).resolve()
        nb_dir, results_dir = base / "notebooks", str(base / "results")
    elif name == DEFAULT_NAME:
        nb_dir, results_dir = root / "book" / "notebooks", f"results/{DEFAULT_NAME}"
    else:
        nb_dir, results_dir = root / "runs" / name / "notebooks", f"runs/{name}/results"
    nb_dir.mkdir(parents=True, exist_ok=True)
    params = {"results_dir": results_dir, **params}
    sources = notebook_sources(root)
    if only:
        sources = [s for s in sources if any(s.name.startswith(o) for o in only)]
    if not sources:
        raise SystemExit("no notebook selected")
    _check_design(params.get("dataset"), [s.name[:2] for s in sources], selected=bool(only))
    done = []
    for src in sources:
        nb = jupytext.read(src)
        declared = declared_parameters(nb)
        unknown = [k for k in params if k not in declared and k != "results_dir"]
        mine = {k: v for k, v in params.items() if k in declared}
        out_nb = nb_dir / (src.stem + ".ipynb")
        shown = out_nb.relative_to(root) if out_nb.is_relative_to(root) else out_nb
        print(f"[{time.strftime('%H:%M:%S')}] {src.name} -> {shown} {mine}", flush=True)
        if unknown:
            print(f"    (not a parameter of this notebook: {unknown})", flush=True)
        nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
        t0 = time.time()
        try:
            pm.execute_notebook(
                nbformat.from_dict(nb), str(out_nb), parameters=mine, cwd=str(root), kernel_name="python3",
                progress_bar=progress, report_mode=False, log_output=False,
            )
        except pm.PapermillExecutionError as exc:
            print(f"\nFAILED: {src.name}, cell {exc.exec_count} (cell index {exc.cell_index}):\n"
                  f"{exc.ename}: {exc.evalue}\nThe partly executed notebook is {out_nb}", file=sys.stderr)
            raise SystemExit(1) from None
        if timings:
            import pandas as pd

            pd.DataFrame(cell_timings(out_nb), columns=["cell", "seconds", "source"]).to_csv(
                out_nb.with_suffix(".timings.csv"), index=False)
        strip_volatile_metadata(out_nb)
        print(f"    done in {time.time() - t0:.0f} s", flush=True)
        done.append(out_nb)
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line of :func:`run`."""
    p = argparse.ArgumentParser(prog="python -m stlib.book.run", description=__doc__.splitlines()[0])
    p.add_argument("--name", default=DEFAULT_NAME, help="run name; not 'default' writes under runs/<name>/")
    p.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 01 02")
    p.add_argument("--out", help="write notebooks and results to this folder (OUT/notebooks, OUT/results)")
    p.add_argument("--dataset", help="registered data set (e.g. her2st-demo) or the path of a manifest (.yaml)")
    p.add_argument("--backbone", choices=sorted(BACKBONES))
    p.add_argument("--weights", help="'imagenet' or 'none' (random init, for tests)")
    p.add_argument("--protocol", choices=["sound", "paper"],
                   help="'paper': the authors' code's choices, leaks included and labelled (default: sound)")
    p.add_argument("--target-transform", choices=["paper", "log1p", "normalize_log1p"],
                   help="'paper' (default): per-section normalize_total + log1p, as the authors' code")
    p.add_argument("--gene-rule", choices=["paper", "book", "mean", "paper_list"],
                   help="'paper' (default): the authors' HVG + mean rule; 'mean': the field's (highest mean); 'paper_list': their 250 Ensembl ids")
    p.add_argument("--seed", type=int)
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="any other notebook parameter (value parsed as a Python literal when possible)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--timings", action="store_true", help="write per-cell wall seconds beside each notebook")
    a = p.parse_args(argv)
    params: dict[str, Any] = {}
    for k in ("dataset", "protocol", "backbone", "weights", "target_transform", "gene_rule", "seed"):
        v = getattr(a, k)
        if v is not None:
            params[k] = v
    for k, v in a.param:
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    t0 = time.time()
    run(params, name=a.name, only=a.only, progress=not a.no_progress, out=a.out, timings=a.timings)
    print(f"all done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
