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
    assert len([ln for ln in ax.lines if ln.get_marker() == "o"]) == 2  # one series of points per target
    plt.close(fig)
    fig = pl.claim_differences(judged.assign(central=[True, False, True, False]))
    assert [t.get_fontweight() for t in fig.axes[0].get_yticklabels()] == ["bold", "normal"]
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
    assert [t.get_text() for t in axes[0].get_yticklabels()] == idx[:3] + ["depth only (measured counts) (oracle)"]
    from matplotlib.collections import PathCollection

    faces = [mcolors.to_hex(c.get_facecolors()[0]) for c in axes[0].collections if isinstance(c, PathCollection)]
    assert len(faces) == 4
    assert faces[2] == "#ffffff" and faces[1] != "#ffffff"  # "same" is open, "better" filled
    assert fig.get_size_inches()[0] <= pl.COLUMN_IN  # shown at the page's width, not shrunk
    assert axes[0].get_xlim() == axes[1].get_xlim()  # one x range for both gene rules
    plt.close(fig)
    # the oracle is filled only when it is a gain, like every other variant
    fig = pl.variants_vs_ceiling({"paper": tab.assign(gain=[False, True, False, False])})
    faces = [mcolors.to_hex(c.get_facecolors()[0]) for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert faces[3] == "#ffffff"
    plt.close(fig)


def test_depth_and_compartments_is_cropped_labelled_and_coloured():
    import anndata as ad

    rng = np.random.default_rng(0)
    n = 40
    xy = np.column_stack([rng.uniform(400, 600, n), rng.uniform(300, 500, n)])  # full-resolution pixels
    tumor = pd.array([True] * 10 + [False] * 10 + [pd.NA] * 20, dtype="boolean")
    obs = pd.DataFrame({"section": pd.Categorical(["S1"] * n), "tumor": tumor,
                        "total_counts": rng.integers(1, 20000, n).astype(float)}, index=[f"s{i}" for i in range(n)])
    a = ad.AnnData(np.zeros((n, 1), np.float32), obs=obs)
    a.obsm["spatial"] = xy
    a.uns["spatial"] = {"S1": {"images": {"hires": np.full((200, 200, 3), 0.8)},
                               "scalefactors": {"tissue_hires_scalef": 0.2, "spot_diameter_fullres": 10.0}}}
    fig = pl.depth_and_compartments(a, "S1")
    maps = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in maps] == ["S1: total counts per spot", "S1: tumour annotation"]
    x0, x1 = maps[0].get_xlim()
    assert 60 <= x0 <= 80 and 120 <= x1 <= 140  # cropped to the spots (80-120 hires px) plus 3% of 200 px
    cbar_labels = [ax.get_ylabel() for ax in fig.axes if not ax.get_title() and ax.get_ylabel()]
    assert cbar_labels == ["log10 total counts per spot"]
    colours = {tuple(np.round(c, 3)) for coll in maps[1].collections for c in coll.get_facecolors()}
    want = {tuple(np.round(matplotlib.colors.to_rgba(c), 3)) for c in pl.COMPARTMENT_COLORS.values()}
    assert want <= colours
    plt.close(fig)


def test_counts_maps_share_one_colour_scale_and_crop_each_section():
    import anndata as ad

    rng = np.random.default_rng(0)
    n = 30
    obs = pd.DataFrame({"section": pd.Categorical(["S1"] * n + ["S2"] * n), "split": ["train"] * n + ["test"] * n},
                       index=[f"s{i}" for i in range(2 * n)])
    counts = np.vstack([rng.poisson(50, (n, 5)), rng.poisson(5000, (n, 5))]).astype(np.float32)  # S2 far deeper
    a = ad.AnnData(counts, obs=obs)
    a.obsm["spatial"] = np.column_stack([rng.uniform(400, 600, 2 * n), rng.uniform(300, 500, 2 * n)])
    a.uns["spatial"] = {s: {"images": {"hires": np.full((200, 200, 3), 0.8)},
                            "scalefactors": {"tissue_hires_scalef": 0.2, "spot_diameter_fullres": 10.0}}
                        for s in ("S1", "S2")}
    fig = pl.counts_maps(a)
    maps = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in maps] == ["S1 (train)", "S2 (test)"]
    norms = {(c.norm.vmin, c.norm.vmax) for ax in maps for c in ax.collections if c.get_array() is not None}
    assert len(norms) == 1  # one scale: the shallow section is not stretched to its own range
    lo, hi = norms.pop()
    assert lo < np.log10(counts[:n].sum(1)).max() and hi > np.log10(counts[n:].sum(1)).min()
    x0, x1 = maps[0].get_xlim()
    assert 60 <= x0 <= 80 and 120 <= x1 <= 140  # cropped to the spots plus 3% of the image
    assert [ax.get_xlabel() for ax in fig.axes if not ax.get_title() and ax.get_xlabel()] == [
        "log10 total counts per spot (one scale for every section)"]
    assert "hires" in a.uns["spatial"]["S1"]["images"] and a.obs.shape[1] == 2  # the input is left as it was
    plt.close(fig)


def test_fraction_of_ceiling_draws_an_interval_beside_its_estimate():
    """A percentile interval can exclude its own estimate (chapter 12 showed one); the figure draws it
    as it is instead of failing on a negative error bar."""
    idx = pd.MultiIndex.from_product([["hest_probe", "depth_only"], ["test"]], names=["model", "split"])
    iv = pd.DataFrame({"pcc": [0.05, 0.07], "fraction": [0.20, 0.244], "fraction_lo": [0.15, 0.245],
                       "fraction_hi": [0.25, 0.323]}, index=idx)
    fig = pl.fraction_of_ceiling(iv, chosen="hest_probe")
    segs = [s for coll in fig.axes[0].collections for s in getattr(coll, "get_segments", lambda: [])()]
    spans = sorted((round(float(s[0][0]), 3), round(float(s[1][0]), 3)) for s in segs)
    assert spans == [(0.15, 0.25), (0.245, 0.323)]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["HEST probe: the chosen model", "depth only (measured counts)"]  # readable names
    assert [t.get_fontweight() for t in fig.axes[0].get_yticklabels()] == ["bold", "normal"]
    assert pl.model_label("not_a_model") == "not_a_model"
    plt.close(fig)


def test_as_image_is_one_rendering_of_the_figure():
    import matplotlib.pyplot as plt
    from IPython.display import Image

    from stlib import pl

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    img = pl.as_image(fig, dpi=50)
    assert isinstance(img, Image) and img.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not draw it again
    # the bytes are what a mime bundle carries, once
    import base64

    assert base64.b64decode(img._repr_png_()) == img.data
