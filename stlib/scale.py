"""How the pipeline's wall time and memory grow with the number of sections.

``benchmarks/bench_scale.py`` runs chapters 01-09 on data sets of 6, 12, 24, ... sections and
keeps one row per size and chapter (``sections``, ``chapter``, ``seconds``, ``peak GiB``,
``measured``). These functions read such rows: the growth exponent of each chapter (slope of
log time against log sections), the time of a size that was not run (extrapolated from the
measured sizes), the wide table the book shows, and where the time of the largest size goes.

The spots grow in proportion to the sections in the benchmark (copies of the same sections), so
an exponent of 1 is linear in spots; above 1 a stage grows faster than the data.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.store import read_record, resolve

COLUMNS = ("sections", "chapter", "seconds", "peak GiB", "measured")


def as_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as a flat table with :data:`COLUMNS` (``sections`` may be the index)."""
    if "sections" not in rows.columns and rows.index.name == "sections":
        rows = rows.reset_index()
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise KeyError(f"scale rows lack the columns {missing}; they have {list(rows.columns)}")
    out = rows.loc[:, list(COLUMNS)].copy()
    out["chapter"] = out["chapter"].map(lambda c: f"{int(c):02d}" if str(c).isdigit() else str(c))
    out["measured"] = out["measured"].astype(bool)
    return out


def read(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """A stored run of the benchmark: its rows, the slowest cells (``<name>_cells.csv``: the
    three slowest cells of every measured chapter and size) and the JSON record (commit, command,
    date, cores). A missing or malformed file is a :class:`~stlib.errors.DataError` naming it."""
    table, meta = read_record(path)
    try:
        rows = as_rows(table)
    except KeyError as e:
        raise DataError(path, f"not a scale benchmark table: {e.args[0]}") from None
    csv = resolve(path)
    cells_path = csv.with_name(csv.stem + "_cells.csv")
    if not cells_path.is_file():
        raise DataError(cells_path, "no such file: the slowest cells of the benchmark's record")
    cells = pd.read_csv(cells_path, dtype={"chapter": str})
    return rows, cells, meta


def growth(rows: pd.DataFrame) -> pd.DataFrame:
    """Per chapter, the power law ``seconds = a * sections ** exponent`` fitted (least squares on
    logs) to its measured sizes: columns ``exponent``, ``a``, ``sizes`` (how many were measured).
    A chapter measured at fewer than two sizes has no fit (NaN)."""
    r = as_rows(rows)
    r = r[r["measured"]]
    out = {}
    for ch, g in r.groupby("chapter"):
        g = g.groupby("sections")["seconds"].mean()
        if len(g) >= 2:
            b, c = np.polyfit(np.log(g.index.to_numpy(float)), np.log(g.to_numpy(float)), 1)
            out[ch] = {"exponent": float(b), "a": float(np.exp(c)), "sizes": len(g)}
        else:
            out[ch] = {"exponent": np.nan, "a": np.nan, "sizes": len(g)}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("chapter")


def extrapolate(rows: pd.DataFrame, sections: int) -> pd.Series:
    """Seconds per chapter at ``sections`` from :func:`growth` of the measured rows (NaN where a
    chapter has no fit)."""
    g = growth(rows)
    return (g["a"] * float(sections) ** g["exponent"]).rename("seconds")


def wide(rows: pd.DataFrame) -> pd.DataFrame:
    """Minutes per chapter (rows) and size (columns, ``"68 (extrapolated)"`` where not run), a
    ``total`` row, and the growth exponent per chapter."""
    r = as_rows(rows)
    labels = {n: f"{n}" if m.all() else f"{n} (extrapolated)" for n, m in r.groupby("sections")["measured"]}
    minutes = (r.pivot_table(index="chapter", columns="sections", values="seconds", aggfunc="first") / 60)
    minutes.loc["total"] = minutes.sum()
    minutes = minutes.rename(columns=labels).round(1)
    minutes.columns.name = "sections"
    minutes["growth exponent"] = growth(r)["exponent"].round(2)
    return minutes


def peaks(rows: pd.DataFrame) -> pd.Series:
    """The largest peak resident memory (GiB) over the chapters, per measured size."""
    r = as_rows(rows)
    return r[r["measured"]].groupby("sections")["peak GiB"].max()


def where_time_goes(rows: pd.DataFrame, sections: int | None = None) -> pd.DataFrame:
    """The chapters at ``sections`` (default: the largest size) by their share of the total,
    with whether the size was measured or extrapolated."""
    r = as_rows(rows)
    n = int(r["sections"].max()) if sections is None else int(sections)
    at = r[r["sections"] == n]
    if at.empty:
        raise ValueError(f"no rows for {n} sections; the sizes are {sorted(r['sections'].unique())}")
    out = at.set_index("chapter")[["seconds", "measured"]].sort_values("seconds", ascending=False)
    out.insert(1, "minutes", (out["seconds"] / 60).round(1))
    out.insert(2, "share", (out["seconds"] / out["seconds"].sum()).round(3))
    return out.drop(columns="seconds")
