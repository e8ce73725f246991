"""Every figure function of ``stlib.pl`` (and the scale chapter's) drawn on small inputs and held
to the house style (``stlib.pl._style``): the column's width, twice its pixels, fonts of at least
9 pt, a label on every axis that shows tick labels and on every colour bar.

The inputs are synthetic but shaped as the book's (same columns, same index levels), so a
function that the book calls with another shape fails here too."""

from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")
import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from stlib import pl  # noqa: E402
from stlib.models import ModelResult  # noqa: E402

MODELS = ["knn_ridge", "gnn_paper", "hest_probe", "depth_only"]
SPLITS = ["train", "valid", "test"]
SECTIONS = {"S1": "train", "S2": "valid", "S3": "test"}


def _spots(tmp_path, n_per=30, seed=0):
    """Three sections on a 6 x 5 grid with a hires image, a full-resolution JPEG, targets and counts."""
    rng = np.random.default_rng(seed)
    rows, xy, spatial = [], [], {}
    for k, (sec, split) in enumerate(SECTIONS.items()):
        g = np.array([(x, y) for y in range(5) for x in range(6)])[:n_per]
        full = 200 + 100 * g.astype(float)  # full-resolution pixels, 100 px pitch
        img = (rng.uniform(0.6, 0.95, (1000, 1000, 3)) * 255).astype(np.uint8)
        path = tmp_path / f"{sec}.jpg"
        Image.fromarray(img).save(path)
        spatial[sec] = {"images": {"hires": img[::5, ::5] / 255.0},
                        "scalefactors": {"tissue_hires_scalef": 0.2, "spot_diameter_fullres": 55.0},
                        "metadata": {"image_path": str(path), "um_per_px": 1.0}}
        for i in range(len(g)):
            rows.append({"section": sec, "split": split, "spot_id": f"{g[i, 0]}x{g[i, 1]}",
                         "tumor": bool(i % 3 == 0) if i % 5 else pd.NA})
        xy.append(full)
    obs = pd.DataFrame(rows, index=[f"s{i}" for i in range(len(rows))])
    obs["section"] = pd.Categorical(obs["section"])
    obs["tumor"] = obs["tumor"].astype("boolean")
    counts = rng.poisson(3.0, (len(obs), 12)).astype(np.float32)
    a = ad.AnnData(np.log1p(counts), obs=obs)
    a.var_names = [f"G{j}" for j in range(12)]
    a.layers["counts"] = counts
    a.obs["total_counts"] = counts.sum(1)
    a.obsm["spatial"] = np.vstack(xy)
    a.obsm["X_img_pca"] = rng.normal(size=(len(obs), 4))
    a.obsm["X_img_knn_pca"] = rng.normal(size=(len(obs), 4))
    a.uns["spatial"] = spatial
    return a


def _intervals(models=MODELS, splits=("valid", "test"), seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product([models, list(splits)], names=["model", "split"])
    f = rng.uniform(0.05, 0.4, len(idx))
    return pd.DataFrame({"pcc": f / 3, "fraction": f, "fraction_lo": f - 0.05, "fraction_hi": f + 0.05}, index=idx)


def _fit(name, alphas=(0.0, 1.0, 10.0, 100.0)):
    per_gene = pd.DataFrame({"alpha": np.array(alphas)[np.arange(12) % len(alphas)]}, index=[f"G{j}" for j in range(12)])
    return ModelResult(name=name, predictions={}, settings={"alphas": list(alphas)}, per_gene=per_gene)


def _cases(tmp_path):
    """Function name -> a call of it on small inputs."""
    a = _spots(tmp_path)
    sec = a[a.obs["section"] == "S3"].copy()
    rng = np.random.default_rng(1)
    curves = pd.DataFrame([{"lr": lr, "epoch": e, "loss": 1 / (e + 1) + 0.1, "val_loss": 1 / (e + 1) + 0.2}
                           for lr in (1e-3, 1e-4) for e in range(1, 11)])
    judged = pd.DataFrame({"target": ["code", "code", "text", "text"], "claim": ["c1", "c2", "c1", "c2"],
                           "comparison": ["mlp > gnn", "lasso > gnn", "mlp > gnn", "lasso > gnn"],
                           "claimed difference": [0.01, -0.02, 0.02, 0.0], "lo": [0.0, -0.03, 0.01, -0.01],
                           "hi": [0.02, -0.01, 0.03, 0.01], "central": [True, False, True, False]})
    side = pd.DataFrame({("PCC", "report"): rng.uniform(0, 0.2, 8), ("PCC", "ours"): rng.uniform(0, 0.2, 8)},
                        index=pd.MultiIndex.from_product([MODELS, ["Valid", "Test"]], names=["model", "split"]))
    folds = pd.DataFrame({"pcc": rng.uniform(0, 0.2, 6)}, index=pd.MultiIndex.from_product(
        [["A", "B", "C"], ["knn_ridge", "hest_probe"]], names=["fold", "model"]))
    folds["pcc_lo"], folds["pcc_hi"] = folds["pcc"] - 0.02, folds["pcc"] + 0.02
    ladder = pd.DataFrame(rng.uniform(0, 0.1, (4, 4)), columns=pd.MultiIndex.from_product(
        [["lasso", "mlp"], ["Valid", "Test"]]))
    by_section = pd.DataFrame([{"rule": r, "section": s, "split": sp, "median_total": 1000 * (k + 1),
                                "ceiling": c} for r in ("paper", "book") for k, (s, sp) in enumerate(SECTIONS.items())
                               for c in rng.uniform(0, 1, 10)])
    depth = pd.DataFrame([{"rule": r, "section": s, "split": sp, "fraction": f, "median_total": 1000 * (k + 1) * f,
                           "mean_ceiling": 0.5 * f} for r in ("paper", "book")
                          for k, (s, sp) in enumerate(SECTIONS.items()) for f in (0.25, 0.5, 1.0)])
    per_gene = pd.DataFrame({"ceiling": rng.uniform(0, 1, 12), "knn_ridge": rng.uniform(-0.1, 0.5, 12),
                             "gnn_paper": rng.uniform(-0.1, 0.5, 12)}, index=a.var_names)
    variants = pd.DataFrame({"fraction": [0.2, 0.3, 0.2, 0.4], "fraction_lo": [0.15, 0.25, 0.15, 0.35],
                             "fraction_hi": [0.25, 0.35, 0.25, 0.45], "gain": [False, True, False, False]},
                            index=["frozen probe", "+ tta", "+ stain", "depth_only"])
    long_names = ["gnn", "knn_nb_apriori", "knn_ridge", "mlp"]  # the book's: their legend must fit the column
    means = pd.DataFrame({"n_spots": [10, 12, 8], "truth": [1.0, 2.0, 0.5],
                          **{m: [1.1, 1.8, 0.7] for m in long_names}}, index=["0", "1", "2"])
    errors = means[long_names].sub(means["truth"], axis=0).abs()
    errors.attrs["n_genes"] = 12
    scores = pd.DataFrame(rng.normal(size=(12, 3)), index=a.var_names, columns=["truth", "knn_ridge", "gnn_paper"])
    tops = {c: list(scores[c].sort_values().index[-4:]) for c in scores.columns}
    pred = sec.copy()
    pred.uns["prediction"] = {"spots": "the measured spots"}
    scale_rows = pd.DataFrame([{"chapter": ch, "sections": n, "seconds": s * n, "measured": n < 20, "peak GiB": 0.1 * n}
                               for ch, s in (("01", 2.0), ("02", 5.0)) for n in (4, 8, 68)])
    return {
        "qc_overview": lambda: pl.qc_overview(ad.AnnData(a.layers["counts"], obs=a.obs)),
        "target_overview": lambda: pl.target_overview(a),
        "window_gallery": lambda: pl.window_gallery(a, "S1", n=4, size=64, window_um=150),
        "resolution_pairs": lambda: pl.resolution_pairs({"full": a, "half": a}, ["S1", "S3"], size=64, window_um=150),
        "embeddings_overview": lambda: pl.embeddings_overview(
            a, pd.DataFrame({"image PCA": np.linspace(0.2, 1, 4), "KNN-pooled": np.linspace(0.3, 1, 4)},
                            index=pd.RangeIndex(1, 5, name="components"))),
        "metric_bars": lambda: pl.metric_bars(pd.DataFrame(rng.uniform(0, 0.2, (4, 2)), index=MODELS,
                                                           columns=["valid", "test"]), "pearson"),
        "beside_paper": lambda: pl.beside_paper(side, "PCC", pd.DataFrame(
            {"lo": side[("PCC", "ours")] - 0.02, "hi": side[("PCC", "ours")] + 0.02})),
        "penalty_choices": lambda: pl.penalty_choices([_fit("lasso"), _fit("knn_lasso"), _fit("ridge")]),
        "cv_folds": lambda: pl.cv_folds(folds),
        "claim_differences": lambda: pl.claim_differences(judged),
        "learning_curves": lambda: pl.learning_curves(curves, [1e-3, 1e-4], [5, 7]),
        "config_losses": lambda: pl.config_losses(curves.assign(config=curves["lr"].astype(str)), "0.001", "configs"),
        "controls_overview": lambda: pl.controls_overview(
            pd.DataFrame(rng.uniform(0, 0.5, (5, 4)), index=["depth_only", "knn_lasso", "knn_ridge", "lasso", "ridge"],
                         columns=["log1p, imagenet features", "normalize_log1p, imagenet features",
                                  "paper, imagenet features", "paper, random-weight features"]),
            pd.DataFrame({"log1p": rng.uniform(-0.2, 0.8, 249), "paper": rng.uniform(-0.2, 0.3, 249)}), "knn_ridge"),
        "ladder_lines": lambda: pl.ladder_lines(ladder, ladder - 0.02, ladder + 0.02),
        "dispersion_histogram": lambda: pl.dispersion_histogram(rng.uniform(0.01, 10, 50), rng.uniform(0.01, 10, 50)),
        "spatial_panels": lambda: pl.spatial_panels(
            sec.copy(), ["total_counts", "G0"], section="S3", cbar_labels=["counts", "target"], crop_margin=0.03),
        "depth_and_compartments": lambda: pl.depth_and_compartments(sec, "S3"),
        "counts_maps": lambda: pl.counts_maps(a.copy()),
        "count_histogram": lambda: pl.count_histogram(a.layers["counts"], a.layers["counts"] * 1.1, title="test"),
        "cluster_figure": lambda: pl.cluster_figure(means, errors, "G0", "S3"),
        "de_heatmap": lambda: pl.de_heatmap(scores, tops),
        "he_image": lambda: pl.he_image(sec, "S3"),
        "truth_prediction_maps": lambda: pl.truth_prediction_maps(
            a, np.asarray(a.X) * 0.9, ["G0", "G1"], section="S3", spatial=a.uns["spatial"], model="knn_ridge",
            value_label="target"),
        "prediction_map": lambda: pl.prediction_map(pred, ["G0", "G1", "G2"], value_label="predicted\nlog-normalised\n(authors')"),
        "tissue_grid": lambda: pl.tissue_grid(pred, measured_xy=np.asarray(sec.obsm["spatial"])),
        "ceiling_by_section": lambda: pl.ceiling_by_section(by_section),
        "ceiling_vs_depth": lambda: pl.ceiling_vs_depth(depth),
        "fraction_of_ceiling": lambda: pl.fraction_of_ceiling(_intervals(), chosen="knn_ridge"),
        "per_gene_vs_ceiling": lambda: pl.per_gene_vs_ceiling(per_gene, ["knn_ridge", "gnn_paper"]),
        "variants_vs_ceiling": lambda: pl.variants_vs_ceiling({"paper": variants, "book": variants}),
        "scale_curves": lambda: __import__("stlib.book.scale", fromlist=["scale_curves"]).scale_curves(scale_rows),
    }


def _figure_functions():
    """Every public function of ``stlib.pl`` that returns a figure, and the scale chapter's."""
    names = {n for n in pl.__all__ if inspect.isfunction(getattr(pl, n)) and
             inspect.signature(getattr(pl, n)).return_annotation in ("Figure", "'Figure'")}
    return sorted(names | {"scale_curves"})


def test_every_figure_function_has_a_case(tmp_path):
    assert set(_figure_functions()) == set(_cases(tmp_path)), "a figure function without a case here"


@pytest.mark.parametrize("name", _figure_functions())
def test_figure_follows_the_house_style(name, tmp_path):
    fig = _cases(tmp_path)[name]()
    try:
        assert pl.check_figure(fig) == [], name
    finally:
        plt.close(fig)


def test_check_figure_catches_what_it_names():
    fig, ax = plt.subplots(figsize=(12, 3), dpi=100)
    ax.plot([0, 1], [0, 1])
    ax.set_title("tiny", fontsize=6)
    im = ax.imshow(np.eye(2))
    fig.colorbar(im, ax=ax)
    problems = pl.check_figure(fig)
    assert any("wider than the column" in p for p in problems)
    assert any("'tiny' at 6 pt" in p for p in problems)
    assert any("x axis without a label" in p for p in problems)
    assert any("colour bar without a label" in p for p in problems)
    plt.close(fig)
    fig, ax = pl.subplots(height=1.5, width=3.0)
    im = ax.imshow(np.eye(2))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.colorbar(im, ax=ax, label="a colour bar label far longer than its bar is tall")
    assert any("past the figure's top or bottom" in p for p in pl.check_figure(fig))
    plt.close(fig)
    with pytest.raises(ValueError, match="wider than the book's column"):
        pl.subplots(height=2, width=10)


def test_check_figure_catches_an_axis_label_past_the_side_of_the_figure():
    fig, ax = pl.subplots(height=2.0, width=3.0)
    ax.plot([0, 1], [0, 1])
    ax.set_ylabel("y")
    ax.set_xlabel("an x label far longer than its axis is wide, running past both sides of the figure")
    assert any("past the figure's left or right edge" in p for p in pl.check_figure(fig))
    ax.set_xlabel("x")
    assert not any("left or right edge" in p for p in pl.check_figure(fig))
    plt.close(fig)


def test_check_figure_catches_a_title_over_its_neighbour():
    fig, axes = pl.subplots(1, 2, height=2.0)
    for ax in axes:
        im = ax.imshow(np.eye(3))
        ax.axis("off")
        fig.colorbar(im, ax=ax, label="value")
    axes[1].set_title("a title far too long for its panel, over the colour bar on its left")
    assert any("runs into a colour bar" in p for p in pl.check_figure(fig))
    axes[1].set_title("short")
    assert not any("runs into" in p for p in pl.check_figure(fig))
    plt.close(fig)


def test_as_image_stores_twice_the_pixels_shown():
    fig, ax = pl.subplots(height=2.0, width=3.0)
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    img = pl.as_image(fig)
    w, h = Image.open(__import__("io").BytesIO(img.data)).size
    assert img.retina and img.width == w // 2 and 500 < w <= 2 * (3.0 + 0.2) * pl.DPI + 2


def test_as_image_as_jpeg_for_photographs():
    rng = np.random.default_rng(0)
    pictures = []
    for fmt in ("png", "jpeg"):
        fig, ax = pl.subplots(height=2.0, width=3.0)
        ax.imshow(rng.random((200, 300, 3)))  # an image-like figure: PNG compresses it badly
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        pictures.append(pl.as_image(fig, format=fmt))
    png, jpeg = pictures
    assert jpeg.data[:3] == b"\xff\xd8\xff" and jpeg.format == "jpeg"
    assert Image.open(__import__("io").BytesIO(jpeg.data)).size == Image.open(__import__("io").BytesIO(png.data)).size
    assert jpeg.retina and jpeg.width == png.width  # shown at the same size
    assert len(jpeg.data) < len(png.data) / 2
    fig, _ = pl.subplots(height=1.0, width=1.0)
    with pytest.raises(ValueError, match="format must be"):
        pl.as_image(fig, format="gif")


def test_house_style_checks_real_figures_when_asked(monkeypatch):
    @pl.house_style
    def too_small():
        fig, ax = pl.subplots(height=2.0, width=3.0)
        ax.plot([0, 1], [0, 1])
        ax.set_title("tiny", fontsize=6)
        return fig

    monkeypatch.delenv("STLIB_CHECK_FIGURES", raising=False)
    plt.close(too_small())  # unchecked
    monkeypatch.setenv("STLIB_CHECK_FIGURES", "warn")
    with pytest.warns(pl.FigureStyleWarning, match="too_small: the figure breaks the house style: .*'tiny' at 6 pt"):
        plt.close(too_small())
    monkeypatch.setenv("STLIB_CHECK_FIGURES", "error")
    with pytest.raises(pl.FigureStyleError, match="x axis without a label"):
        too_small()
    monkeypatch.setenv("STLIB_CHECK_FIGURES", "yes")
    with pytest.raises(ValueError, match="must be 'error', 'warn' or empty"):
        too_small()
    plt.close("all")


def test_target_label_names_the_transform():
    import anndata as ad

    a = ad.AnnData(np.zeros((2, 2)))
    assert pl.target_label(a) == "target"
    a.uns["target"] = {"transform": "paper"}
    assert pl.target_label(a) == "log-normalised\n(authors')"
    a.uns["target"] = {"transform": "mine"}
    assert pl.target_label(a) == "mine"
