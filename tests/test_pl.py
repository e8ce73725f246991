"""Figures of the book: the helpers that make axes readable and the new chapter figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stlib import pl  # noqa: E402


def _labels(ax):
    ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if lo <= v <= hi and t.get_text()]


def test_log_axis_labels_a_narrow_range():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.31, 0.35, 0.42])
    pl.log_axis(ax)
    assert ax.get_yscale() == "log"
    assert len(_labels(ax)) >= 2
    plt.close(fig)


def test_log_axis_labels_one_and_a_half_decades():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.2, 0.5, 4.0])
    pl.log_axis(ax)
    assert len(_labels(ax)) >= 3
    plt.close(fig)


def test_log_axis_keeps_decades_for_a_wide_range():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1e-3, 1e-1, 10])
    pl.log_axis(ax)
    assert len(_labels(ax)) >= 3
    plt.close(fig)


def test_claim_differences_one_row_per_comparison():
    judged = pd.DataFrame({"target": ["a", "a", "b", "b"], "claim": ["c1", "c2", "c1", "c2"],
                           "comparison": ["x > y", "x > z", "x > y", "x > z"],
                           "claimed difference": [0.1, -0.1, 0.2, 0.0], "lo": [0.05, -0.2, 0.1, -0.1],
                           "hi": [0.15, 0.0, 0.3, 0.1]})
    fig = pl.claim_differences(judged)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x > y", "x > z"]
    assert len(ax.containers) == 2  # one error-bar series per target
    plt.close(fig)


def test_de_heatmap_marks_each_columns_top_genes():
    genes = [f"g{i}" for i in range(8)]
    scores = pd.DataFrame({"truth": np.arange(8.0)[::-1], "m": np.arange(8.0)}, index=genes)
    tops = {"truth": ["g0", "g1"], "m": ["g7", "g6"]}
    fig = pl.de_heatmap(scores, tops)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["g0", "g1", "g7", "g6"]
    assert "0 of 2 shared" in [t.get_text() for t in ax.get_xticklabels()][1]
    plt.close(fig)


def test_variants_vs_ceiling_fills_gains_only():
    import matplotlib.colors as mcolors

    idx = ["frozen probe", "better", "same", "depth_only"]
    tab = pd.DataFrame({"fraction": [0.2, 0.3, 0.2, 0.4], "fraction_lo": [0.15, 0.25, 0.15, 0.35],
                        "fraction_hi": [0.25, 0.35, 0.25, 0.45], "gain": [False, True, False, True]}, index=idx)
    fig = pl.variants_vs_ceiling({"paper": tab, "book": tab})
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["paper genes", "book genes"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == idx[:3] + ["depth_only (oracle)"]
    from matplotlib.collections import PathCollection

    faces = [mcolors.to_hex(c.get_facecolors()[0]) for c in axes[0].collections if isinstance(c, PathCollection)]
    assert len(faces) == 4
    assert faces[2] == "#ffffff" and faces[1] != "#ffffff"  # "same" is open, "better" filled
    assert fig.get_size_inches()[0] <= 7.5  # shown at the page's width, not shrunk
    plt.close(fig)
