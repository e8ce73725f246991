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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib.book.store import read_record, resolve

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

COLUMNS = ("sections", "chapter", "seconds", "peak GiB", "measured")


def _chapter_label(chapter: object) -> str:
    """``"06"`` for a chapter read back as ``6`` or ``"6"``; other labels unchanged."""
    return f"{int(chapter):02d}" if str(chapter).isdigit() else str(chapter)


def as_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as a flat table with :data:`COLUMNS` (``sections`` may be the index)."""
    if "sections" not in rows.columns and rows.index.name == "sections":
        rows = rows.reset_index()
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise KeyError(f"scale rows lack the columns {missing}; they have {list(rows.columns)}")
    out = rows.loc[:, list(COLUMNS)].copy()
    out["chapter"] = out["chapter"].map(_chapter_label)
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


def growth(rows: pd.DataFrame, last: int | None = None) -> pd.DataFrame:
    """Per chapter, the power law ``seconds = a * sections ** exponent`` fitted (least squares on
    logs) to its measured sizes: columns ``exponent``, ``a``, ``sizes`` (how many were measured).
    ``last``: fit only the ``last`` largest measured sizes (the local growth, once fixed costs
    such as imports and model building have faded). A chapter measured at fewer than two sizes
    has no fit (NaN)."""
    r = as_rows(rows)
    r = r[r["measured"]]
    out = {}
    for ch, g in r.groupby("chapter"):
        g = g.groupby("sections")["seconds"].mean()
        if last is not None:
            g = g.iloc[-int(last):]
        if len(g) >= 2:
            b, c = np.polyfit(np.log(g.index.to_numpy(float)), np.log(g.to_numpy(float)), 1)
            out[ch] = {"exponent": float(b), "a": float(np.exp(c)), "sizes": len(g)}
        else:
            out[ch] = {"exponent": np.nan, "a": np.nan, "sizes": len(g)}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("chapter")


#: Extrapolation uses the growth between the two largest measured sizes: over all sizes, the fixed
#: costs of the small ones (imports, model building) pull the exponent down, and a stage that grows
#: faster than the data (chapter 6's full-graph network) would be underestimated.
EXTRAPOLATE_FROM = 2


def extrapolate(rows: pd.DataFrame, sections: int, last: int | None = EXTRAPOLATE_FROM) -> pd.Series:
    """Seconds per chapter at ``sections`` from :func:`growth` of the measured rows over the
    ``last`` largest sizes (``None``: all sizes); NaN where a chapter has no fit."""
    g = growth(rows, last=last)
    return (g["a"] * float(sections) ** g["exponent"]).rename("seconds")


def wide(rows: pd.DataFrame) -> pd.DataFrame:
    """Minutes per chapter (rows) and size (columns, ``"68 (extrapolated)"`` where not run), a
    ``total`` row, and the growth exponents per chapter: over all measured sizes, and between the
    two largest (the one the extrapolation uses)."""
    r = as_rows(rows)
    labels = {n: f"{n}" if m.all() else f"{n} (extrapolated)" for n, m in r.groupby("sections")["measured"]}
    minutes = (r.pivot_table(index="chapter", columns="sections", values="seconds", aggfunc="first") / 60)
    minutes.loc["total"] = minutes.sum()
    minutes = minutes.rename(columns=labels).round(1)
    minutes.columns.name = "sections"
    totals = r.groupby("sections").agg(seconds=("seconds", "sum"), measured=("measured", "all")).reset_index()
    totals = totals.assign(chapter="total", **{"peak GiB": np.nan})
    for label, last in (("growth exponent", None), ("exponent, largest two", EXTRAPOLATE_FROM)):
        exponent = growth(r, last=last)["exponent"]
        exponent.loc["total"] = growth(totals, last=last)["exponent"].iloc[0]
        minutes[label] = exponent.round(2)
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


def slowest_cells(cells: pd.DataFrame, sections: int | None = None) -> pd.DataFrame:
    """The slowest cells of every chapter at ``sections`` (default: the largest measured size),
    with each cell's growth exponent from the next smaller size where that cell was also among
    the slowest (NaN otherwise): which cell of a chapter grows faster than the data."""
    need = {"sections", "chapter", "cell", "seconds", "source"}
    if not need <= set(cells.columns):
        raise KeyError(f"slowest cells lack the columns {sorted(need - set(cells.columns))}")
    c = cells.assign(chapter=cells["chapter"].map(_chapter_label))
    sizes = sorted(c["sections"].unique())
    n = int(sizes[-1]) if sections is None else int(sections)
    if n not in sizes:
        raise ValueError(f"no cells for {n} sections; the sizes are {sizes}")
    at = c[c["sections"] == n].set_index(["chapter", "cell"])
    smaller = [s for s in sizes if s < n]
    out = at[["seconds", "source"]].copy()
    out.insert(1, "exponent", np.nan)
    if smaller:
        prev = c[c["sections"] == smaller[-1]].set_index(["chapter", "cell"])["seconds"]
        both = out.index.intersection(prev.index)
        out.loc[both, "exponent"] = (np.log(out.loc[both, "seconds"] / prev.loc[both]) / np.log(n / smaller[-1])).round(2)
    return out.sort_index()


def compare(records: dict[str, pd.DataFrame], sections: int | None = None) -> pd.DataFrame:
    """Minutes per chapter at one size in several runs of the benchmark (e.g. with other chapter
    parameters): one column per record (named by its key; ``" (extrapolated)"`` where that run
    did not measure the size), a ``total`` row, and, for two records, the second minus the first.
    ``sections`` defaults to the largest size that every record has."""
    if not records:
        raise ValueError("no records to compare")
    rs = {name: as_rows(r) for name, r in records.items()}
    common = set.intersection(*(set(r["sections"]) for r in rs.values()))
    if not common:
        raise ValueError("the records share no size: " + "; ".join(
            f"{name}: {sorted(r['sections'].unique())}" for name, r in rs.items()))
    n = max(common) if sections is None else int(sections)
    if n not in common:
        raise ValueError(f"not every record has {n} sections; the sizes they share are {sorted(common)}")
    cols = {}
    for name, r in rs.items():
        at = r[r["sections"] == n].set_index("chapter")
        label = name if at["measured"].all() else f"{name} (extrapolated)"
        cols[label] = at["seconds"] / 60
    out = pd.DataFrame(cols)
    out.loc["total"] = out.sum()
    if len(out.columns) == 2:
        out["difference"] = out.iloc[:, 1] - out.iloc[:, 0]
    out.columns.name = f"minutes at {n} sections"
    return out.round(1)


def scale_curves(rows: pd.DataFrame, *, budget_minutes: float = 60.0, memory_gib: float = 8.0) -> Figure:
    """Three panels from the rows of ``benchmarks/bench_scale.py`` (:func:`as_rows`).

    Left: seconds per chapter against sections on log axes, measured sizes as filled points, the
    fitted power law dashed and extrapolated sizes hollow. Middle: total minutes per size, stacked
    by chapter (extrapolated sizes hatched), with the time budget. Right: the largest peak memory
    of a chapter per measured size, with the memory target.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    from stlib.pl._style import COLUMN_IN, DPI, RC

    with mpl.rc_context(RC):
        return _scale_curves(as_rows(rows), budget_minutes=budget_minutes, memory_gib=memory_gib, plt=plt,
                             width=COLUMN_IN, dpi=DPI)


def _scale_curves(r: pd.DataFrame, *, budget_minutes: float, memory_gib: float, plt: Any, width: float,
                  dpi: float) -> Figure:
    """:func:`scale_curves` drawn (under the house style): per chapter on top, total and memory below."""
    g = growth(r)
    chapters = sorted(r["chapter"].unique())
    colors = dict(zip(chapters, plt.get_cmap("tab10")(np.arange(len(chapters)) % 10)))
    fig, ax = plt.subplot_mosaic([["a", "a"], ["b", "c"]], figsize=(width, 7.2), dpi=dpi, layout="constrained",
                                 gridspec_kw={"width_ratios": [1.2, 1]})
    a, b, c = ax["a"], ax["b"], ax["c"]
    sizes = np.array(sorted(r["sections"].unique()), dtype=float)
    grid = np.geomspace(sizes.min(), sizes.max(), 50)
    for ch in chapters:
        d = r[r["chapter"] == ch].sort_values("sections")
        m = d[d["measured"]]
        a.plot(m["sections"], m["seconds"], "o-", color=colors[ch], label=f"{ch} (b={g.loc[ch, 'exponent']:.2f})")
        if np.isfinite(g.loc[ch, "exponent"]):
            a.plot(grid, g.loc[ch, "a"] * grid ** g.loc[ch, "exponent"], "--", color=colors[ch], lw=0.8)
        e = d[~d["measured"]]
        a.plot(e["sections"], e["seconds"], "o", mfc="none", color=colors[ch])
    a.set(xscale="log", yscale="log", xlabel="sections", ylabel="wall seconds",
          title="per chapter (hollow: extrapolated; b: growth exponent)")
    a.set_xticks(sizes, [f"{int(s)}" for s in sizes])
    a.minorticks_off()
    a.legend(ncol=2, loc="upper left")
    minutes = r.pivot_table(index="sections", columns="chapter", values="seconds", aggfunc="first") / 60
    measured = r.groupby("sections")["measured"].all()
    x = np.arange(len(minutes))
    bottom = np.zeros(len(minutes))
    for ch in chapters:
        v = minutes[ch].fillna(0).to_numpy()
        bars = b.bar(x, v, bottom=bottom, color=colors[ch], label=ch)
        for bar, ok in zip(bars, measured.reindex(minutes.index)):
            if not ok:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        bottom += v
    for xi, tot in zip(x, bottom):
        b.text(xi, tot, f"{tot:.0f}", ha="center", va="bottom")
    b.axhline(budget_minutes, color="black", ls=":", lw=1)
    b.text(x[0] - 0.4, budget_minutes, f" {budget_minutes:.0f} min target", va="bottom")
    b.set_xticks(x, [f"{n}" + ("" if measured[n] else "\n(extrap.)") for n in minutes.index])
    b.set(xlabel="sections", ylabel="minutes, chapters 01-09", title="total wall time\n(hatched: extrapolated)")
    p = peaks(r)
    c.plot(p.index, p.to_numpy(), "o-", color="black")
    c.axhline(memory_gib, color="black", ls=":", lw=1)
    c.text(p.index.min(), memory_gib, f" {memory_gib:.0f} GiB target", va="bottom")
    c.set(xlabel="sections (measured)", ylabel="GiB", ylim=(0, max(memory_gib * 1.15, float(p.max()) * 1.15)),
          title="largest peak memory\nof a chapter")
    c.set_xticks(p.index, [f"{int(s)}" for s in p.index])
    return fig
