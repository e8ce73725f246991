"""Compare two executions of the book: the text outputs nbval checks, cell by cell, with numbers.

``benchmarks/machines.py`` re-executes the pipeline under simulated machines and compares each
run with the stored notebooks through :func:`compare_runs`. A cell is compared as nbval compares
it (stream and ``text/plain`` outputs, after the sanitising regexes of
``tests/nbval_sanitize.cfg``; cells tagged ``nbval-ignore-output`` or ``nbval-skip`` are not);
a cell that differs is also read as numbers, so the table can say by how much.
"""

from __future__ import annotations

import configparser
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Numbers as a notebook prints them (signs, decimals, exponents, thousands separators excluded).
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_IGNORED_TAGS = ("nbval-ignore-output", "nbval-skip")


def read_sanitizers(path: str | Path) -> list[tuple[re.Pattern[str], str]]:
    """The ``regex`` / ``replace`` pairs of an nbval sanitize file, in order."""
    cfg = configparser.ConfigParser()
    cfg.read(path)
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def cell_texts(nb: Any, sanitizers: Sequence[tuple[re.Pattern[str], str]] = ()) -> dict[int, str]:
    """The compared text of every code cell nbval checks, by code-cell index (0-based).

    Code cells are numbered among code cells only, so that two executions whose markdown
    differs still line up.
    """
    out: dict[int, str] = {}
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if any(t in cell.metadata.get("tags", []) for t in _IGNORED_TAGS):
            continue
        parts = []
        last_stream = None
        for o in cell.get("outputs", []):
            if o.output_type == "stream":  # consecutive writes to one stream are one output (as nbval)
                if last_stream == o.name:
                    parts[-1] += o.text
                else:
                    parts.append(f"[{o.name}] {o.text}")
                last_stream = o.name
                continue
            last_stream = None
            if o.output_type in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
                parts.append(o["data"]["text/plain"])
            elif o.output_type == "error":
                parts.append(f"[error] {o.ename}: {o.evalue}")
        text = "\n".join(parts)
        for rx, rep in sanitizers:
            text = rx.sub(rep, text)
        out[i] = text
    return out


@dataclass(frozen=True)
class CellDiff:
    """How one cell's text differs between two executions."""

    values: int
    """Numbers in the stored cell."""
    values_differ: int
    """Numbers that differ (all of them when the text around the numbers differs)."""
    largest: float
    """Largest absolute difference of a number (``inf`` when the text around them differs)."""
    first: str
    """The first differing line of the stored cell, shortened."""


def diff_cell(stored: str, new: str) -> CellDiff | None:
    """``None`` when the texts are equal, else how they differ."""
    if stored == new:
        return None
    a, b = _NUMBER.findall(stored), _NUMBER.findall(new)
    first = next((la for la, lb in zip(stored.splitlines(), new.splitlines()) if la != lb),
                 stored.splitlines()[0] if stored else "")[:100]
    if _NUMBER.sub("#", stored) != _NUMBER.sub("#", new) or len(a) != len(b):
        return CellDiff(len(a), len(a), math.inf, first)
    diffs = [abs(float(x) - float(y)) for x, y in zip(a, b) if x != y]
    return CellDiff(len(a), len(diffs), max(diffs, default=0.0), first)


def compare_runs(stored_dir: str | Path, new_dir: str | Path, sanitize: str | Path | None = None,
                 notebooks: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per notebook of ``stored_dir`` that ``new_dir`` also holds.

    Parameters
    ----------
    stored_dir, new_dir
        Folders of executed ``NN_*.ipynb``.
    sanitize
        An nbval sanitize file (default: none).
    notebooks
        Stems to compare (default: every notebook of ``stored_dir`` present in ``new_dir``).

    Returns
    -------
    Rows with ``notebook``, ``cells`` (compared), ``cells_differ``, ``values`` (numbers in the
    compared cells), ``values_differ``, ``largest`` (absolute, ``inf`` for a text change) and
    ``first`` (the first differing line, or ``""``).
    """
    import nbformat

    sanitizers = read_sanitizers(sanitize) if sanitize else []
    rows = []
    for path in sorted(Path(stored_dir).glob("[0-9][0-9]_*.ipynb")):
        other = Path(new_dir) / path.name
        if (notebooks is not None and path.stem not in notebooks) or not other.is_file():
            continue
        a = cell_texts(nbformat.read(path, as_version=4), sanitizers)
        b = cell_texts(nbformat.read(other, as_version=4), sanitizers)
        row = {"notebook": path.stem, "cells": len(a), "cells_differ": 0, "values": 0, "values_differ": 0,
               "largest": 0.0, "first": ""}
        for i, text in a.items():
            d = diff_cell(text, b.get(i, "<cell missing>"))
            row["values"] += len(_NUMBER.findall(text))
            if d is None:
                continue
            row["cells_differ"] += 1
            row["values_differ"] += d.values_differ
            row["largest"] = max(row["largest"], d.largest)
            row["first"] = row["first"] or f"cell {i}: {d.first}"
        rows.append(row)
    return rows


def run_provenance(nb_dir: str | Path) -> dict[str, Any]:
    """Commit and machine of an execution of the book, read from the provenance block of its
    first notebook (the ``commit:`` and ``machine:`` lines :mod:`stlib.book.provenance` prints).

    Parameters
    ----------
    nb_dir
        A folder of executed ``NN_*.ipynb``.

    Returns
    -------
    dict
        ``commit`` (12 characters), ``cpu``, ``cores`` and ``pinned`` (whether the kernel pins held:
        no ``mismatches``).

    Raises
    ------
    ValueError
        No executed notebook in ``nb_dir``, or no provenance block in its first notebook.
    """
    import ast

    import nbformat

    paths = sorted(Path(nb_dir).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise ValueError(f"{nb_dir}: no executed notebooks (NN_*.ipynb)")
    nb = nbformat.read(paths[0], as_version=4)
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            text = o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
            lines = dict(line.split(": ", 1) for line in str(text).splitlines() if ": " in line)
            if "commit" in lines and "machine" in lines:
                machine = ast.literal_eval(lines["machine"])
                return {"commit": lines["commit"].strip()[:12], "cpu": machine.get("cpu", "unknown"),
                        "cores": machine.get("cores"), "pinned": not machine.get("mismatches")}
    raise ValueError(f"{paths[0]}: no provenance block (commit and machine lines)")
