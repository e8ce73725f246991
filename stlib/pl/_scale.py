"""Figure of the scale benchmark: time per chapter against sections, totals against the budget, memory."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stlib import scale


def scale_curves(rows: pd.DataFrame, *, budget_minutes: float = 60.0, memory_gib: float = 8.0) -> Figure:
    """Three panels from the rows of ``benchmarks/bench_scale.py`` (:mod:`stlib.scale`).

    Left: seconds per chapter against sections on log axes, measured sizes as filled points, the
    fitted power law dashed and extrapolated sizes hollow. Middle: total minutes per size, stacked
    by chapter (extrapolated sizes hatched), with the time budget. Right: the largest peak memory
    of a chapter per measured size, with the memory target.
    """
    r = scale.as_rows(rows)
    g = scale.growth(r)
    chapters = sorted(r["chapter"].unique())
    colors = dict(zip(chapters, plt.get_cmap("tab10")(np.arange(len(chapters)) % 10)))
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained",
                                  gridspec_kw={"width_ratios": [1.4, 1, 0.8]})
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
    a.legend(fontsize=7, ncol=2, loc="upper left")
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
        b.text(xi, tot, f"{tot:.0f}", ha="center", va="bottom", fontsize=8)
    b.axhline(budget_minutes, color="black", ls=":", lw=1)
    b.text(x[0] - 0.4, budget_minutes, f" {budget_minutes:.0f} min target", va="bottom", fontsize=8)
    b.set_xticks(x, [f"{n}" + ("" if measured[n] else "\n(extrap.)") for n in minutes.index])
    b.set(xlabel="sections", ylabel="minutes, chapters 01-09", title="total wall time (hatched: extrapolated)")
    p = scale.peaks(r)
    c.plot(p.index, p.to_numpy(), "o-", color="black")
    c.axhline(memory_gib, color="black", ls=":", lw=1)
    c.text(p.index.min(), memory_gib, f" {memory_gib:.0f} GiB target", va="bottom", fontsize=8)
    c.set(xlabel="sections (measured)", ylabel="GiB", ylim=(0, max(memory_gib * 1.15, float(p.max()) * 1.15)),
          title="largest peak memory of a chapter")
    c.set_xticks(p.index, [f"{int(s)}" for s in p.index])
    return fig
