"""Figures of the models: scores beside the report's, penalties, learning curves, folds, the ladder, the claims."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stlib.pl._data import log_axis
from stlib.pl._labels import model_label, model_labels
from stlib.pl._style import COLUMN_IN, house_style, subplots


#: Metric ids -> the names the figures use.
_METRIC_NAMES = {"pearson": "PCC", "spearman": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}


@house_style
def metric_bars(table: pd.DataFrame, metric: str = "pearson", *, title: str = "") -> Figure:
    """Mean-over-genes metric per model and split (rows: model; columns: splits).

    Parameters
    ----------
    table
        Models x splits of one metric's mean over genes.
    metric
        Name of the metric, for the axis label only.
    title
        Title of the axis.

    Returns
    -------
    Figure
        One axis of grouped horizontal bars: per model (by its readable name, in the table's
        order) one bar per split (train, valid, test first), with a line at 0.
    """
    splits = [c for c in ("train", "valid", "test") if c in table.columns]
    splits += [c for c in table.columns if c not in splits]
    colors = {"train": "tab:blue", "valid": "tab:orange", "test": "tab:green"}
    fig, ax = subplots(height=0.3 * len(table) + 1.4)
    y = np.arange(len(table))
    h = 0.8 / len(splits)
    for i, split in enumerate(splits):
        ax.barh(y + (i - (len(splits) - 1) / 2) * h, table[split].to_numpy(dtype=float), height=h, label=split,
                color=colors.get(split, f"C{i + 3}"))
    ax.set_yticks(y, model_labels(table.index))
    ax.invert_yaxis()
    ax.set_ylabel("model")
    ax.set_xlabel(f"mean {_METRIC_NAMES.get(metric, metric)} over genes")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=len(splits))
    return fig


@house_style
def beside_paper(side: pd.DataFrame, metric: str = "PCC", bounds: pd.DataFrame | None = None) -> Figure:
    """Grouped bars: the report's value and ours for one metric, per Table I row, one panel per split.

    ``side`` is :func:`stlib.book.tables.beside_paper`'s output.

    Parameters
    ----------
    side
        Rows indexed by (``model``, ``split``), columns (metric, ``"report"`` / ``"ours"``).
    metric
        The metric shown, e.g. ``"PCC"``.
    bounds
        The 95% interval of ours, indexed as ``side`` with columns ``lo`` and ``hi``
        (:func:`stlib.book.tables.table_one_bounds`); the report printed none.

    Returns
    -------
    Figure
        One panel per split (shared y): per model a grey bar of the report's value and a blue one
        of this run's, with its interval as a black line where ``bounds`` has one.
    """
    splits = list(dict.fromkeys(side.index.get_level_values("split")))
    fig, axes = subplots(1, len(splits), height=0.3 * len(set(side.index.get_level_values("model"))) + 1.6,
                         sharey=True, squeeze=False)
    models = list(dict.fromkeys(side.index.get_level_values("model")))
    y = np.arange(len(models))
    for ax, split in zip(axes[0], splits):
        sub = side.xs(split, level="split").reindex(models)
        ax.barh(y - 0.2, sub[(metric, "report")], height=0.4, color="grey", label="report (He et al. 2020, ResNet50)")
        ax.barh(y + 0.2, sub[(metric, "ours")], height=0.4, color="tab:blue", label="this run")
        if bounds is not None:
            b = bounds.reindex(pd.MultiIndex.from_product([models, [split]]))
            ok = b[["lo", "hi"]].notna().all(axis=1).to_numpy()
            ax.hlines(y[ok] + 0.2, b["lo"].to_numpy(float)[ok], b["hi"].to_numpy(float)[ok], color="black", lw=1.0,
                      label="this run's 95% interval")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(split)
        ax.set_xlabel(f"mean {metric}")
    axes[0][0].set_yticks(y, model_labels(models))
    axes[0][0].set_ylabel("Table I row")
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("report" not in labels[i], "interval" in labels[i]))
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
               ncols=len(order), title=f"mean {metric} over genes")
    return fig


@house_style
def penalty_choices(results: Sequence, titles: dict[str, str] | None = None) -> Figure:
    """Genes per chosen penalty, one panel per model family, one line per model; the grid's
    first and last values are marked, so a pile-up at an edge shows at once.

    ``results`` are fits with ``settings["alphas"]`` and ``per_gene["alpha"]`` (linear models,
    the probe). A penalty of 0 (OLS) is drawn one step left of the smallest positive one.

    Parameters
    ----------
    results
        The fits (:class:`~stlib.models.ModelResult`); a name ending in ``probe`` is the family
        ``"probe"``, any other the part after its last ``_`` (``"knn_ridge"`` -> ``"ridge"``). Each
        grid needs a positive penalty.
    titles
        Family -> panel title; default the family.

    Returns
    -------
    Figure
        One panel per family: per model the number of genes at each penalty of its grid (x: log10
        penalty), dotted lines at the grid's ends.
    """
    families: dict[str, list] = {}
    for r in results:
        families.setdefault(r.name.split("_")[-1] if not r.name.endswith("probe") else "probe", []).append(r)
    fig, axes = subplots(1, len(families), height=3.0, squeeze=False)
    for ax, (fam, rs) in zip(axes[0], families.items()):
        for r in rs:
            grid = np.asarray(r.settings["alphas"], dtype=float)
            pos = grid[grid > 0]
            step = np.log10(pos[1] / pos[0]) if pos.size > 1 else 1.0
            x = np.where(grid > 0, np.log10(np.where(grid > 0, grid, 1.0)), np.log10(pos.min()) - step)
            n = [int(np.isclose(r.per_gene["alpha"].to_numpy(dtype=float), a).sum()) for a in grid]
            ax.plot(x, n, marker="o", ms=3, label=model_label(r.name))
            for edge in (x.min(), x.max()):
                ax.axvline(edge, color="grey", lw=0.6, ls=":")
        ax.set_title((titles or {}).get(fam, fam))
        ax.set_xlabel("log10 penalty chosen" + ("\n(leftmost: 0)" if any((np.asarray(r.settings["alphas"]) == 0).any()
                                                                       for r in rs) else ""))
        ax.legend()
        ax.set_ylabel("genes")
    return fig


@house_style
def cv_folds(scores: pd.DataFrame, stat: str = "pcc") -> Figure:
    """Test ``stat`` of each model in each fold with its 95% interval (``scores``:
    :func:`stlib.book.cv.cross_validate`), one group of bars per model.

    Parameters
    ----------
    scores
        Rows indexed by ``fold`` and ``model`` with the columns ``stat``, ``<stat>_lo`` and
        ``<stat>_hi``; a model without any value of ``stat`` is left out.
    stat
        The statistic shown, e.g. ``"pcc"`` or ``"fraction"``.

    Returns
    -------
    Figure
        One axis: per model one bar per held-out fold, each with its interval as a line.
    """
    folds = list(dict.fromkeys(scores.index.get_level_values("fold")))
    models = [m for m in dict.fromkeys(scores.index.get_level_values("model"))
              if scores.xs(m, level="model")[stat].notna().any()]
    fig, ax = subplots(height=3.2, width=min(COLUMN_IN, 1.6 + 1.3 * len(models)))
    width = 0.8 / len(folds)
    for i, f in enumerate(folds):
        sub = scores.xs(f, level="fold").reindex(models)
        x = np.arange(len(models)) + (i - (len(folds) - 1) / 2) * width
        ax.bar(x, sub[stat], width=width, label=f)
        # the interval as a line from lo to hi: a percentile interval need not contain its point
        ax.vlines(x, sub[f"{stat}_lo"], sub[f"{stat}_hi"], color="black", lw=1.2)
        ax.hlines(np.r_[sub[f"{stat}_lo"], sub[f"{stat}_hi"]], np.r_[x, x] - width / 6, np.r_[x, x] + width / 6,
                  color="black", lw=1.2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(models)), [model_label(m).replace(", ", ",\n") for m in models])
    ax.set_xlabel("model")
    ax.set_ylabel({"pcc": "test mean PCC over genes", "fraction": "fraction of the noise ceiling"}.get(stat, stat))
    ax.legend(title="held out")
    return fig


@house_style
def claim_differences(judged: pd.DataFrame, by: str = "target") -> Figure:
    """Forest plot of the report's claims: each comparison's claimed difference and its 95% interval.

    ``judged`` is :func:`stlib.book.verdict.judge`'s table with a column ``by`` (one colour per value,
    e.g. the target transform). A point right of zero is a difference in the claimed direction;
    a comparison holds when its whole interval is right of zero.

    Parameters
    ----------
    judged
        One row per comparison with ``claim``, ``comparison``, ``claimed difference``, ``lo``, ``hi``
        and the column ``by``; with a ``central`` column, central comparisons are labelled in bold.
    by
        The column whose values are drawn in different colours, side by side on each row.

    Returns
    -------
    Figure
        One row per (claim, comparison) in order of appearance: the difference and its interval per
        value of ``by``, a line at 0 and dotted lines between claims.
    """
    groups = list(dict.fromkeys(judged[by]))
    rows = list(dict.fromkeys(zip(judged["claim"], judged["comparison"])))
    # a long comparison (readable model names) on two lines, broken after its operator
    ticks = [re.sub(r" ([<>]) ", r" \1\n", x, count=1) if len(x) > 42 else x for _, x in rows]
    lines = max((t.count("\n") + 1 for t in ticks), default=1)
    fig, ax = subplots(height=max(3.5, (0.27 if lines == 1 else 0.42) * len(rows) + 1.9))  # + the x label's 3 lines
    offset = np.linspace(-0.18, 0.18, len(groups)) if len(groups) > 1 else np.zeros(1)
    pos = {r: i for i, r in enumerate(rows)}
    for k, g in enumerate(groups):
        sub = judged[judged[by] == g]
        y = np.array([pos[(c, x)] for c, x in zip(sub["claim"], sub["comparison"])]) + offset[k]
        d = sub["claimed difference"].to_numpy()
        ax.hlines(y, sub["lo"].to_numpy(), sub["hi"].to_numpy(), colors=f"C{k}", lw=1.2)
        ax.plot(d, y, "o", ms=3.5, color=f"C{k}", label=str(g))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(rows)), ticks)
    if "central" in judged.columns:
        central = {(c, x) for c, x, k in zip(judged["claim"], judged["comparison"], judged["central"]) if bool(k)}
        for label, r in zip(ax.get_yticklabels(), rows):
            label.set_fontweight("bold" if r in central else "normal")
    ax.invert_yaxis()
    ax.set_ylabel("comparison\n(bold: central)")
    bounds = [i for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0]]
    for b in bounds:
        ax.axhline(b - 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("claimed difference, mean over genes\n(95% interval); right of 0: as claimed\n(MSE: worse - better)")
    fig.legend(*ax.get_legend_handles_labels(), title=by, loc="outside lower center", ncols=len(groups))
    return fig


@house_style
def learning_curves(history: pd.DataFrame, learning_rates: Sequence[Any], best_epochs: Sequence[int], *,
                    by: str = "lr") -> Figure:
    """Train and valid loss per epoch, one panel per learning rate (shared log y axis); a dot marks
    the restored epoch. ``by`` names another column of ``history`` to make the panels of (e.g. a
    gene rule); ``learning_rates`` are then its values.

    Parameters
    ----------
    history
        Tidy curves with ``epoch``, ``loss``, ``val_loss`` and the column ``by``.
    learning_rates
        The values of ``by`` to show, one panel each.
    best_epochs
        The restored epoch of each panel, aligned with ``learning_rates`` (must be an epoch of the
        curve).
    by
        The column that tells the panels apart.

    Returns
    -------
    Figure
        One panel per value (shared log y axis): train and valid loss against epoch, a black dot on
        the valid loss at the restored epoch.
    """
    fig, axes = subplots(1, len(learning_rates), height=2.8, sharey=True, squeeze=False)
    axes = axes[0]
    for ax, lr, best in zip(axes, learning_rates, best_epochs):
        d = history[history[by] == lr]
        ax.plot(d["epoch"], d["loss"], label="train")
        ax.plot(d["epoch"], d["val_loss"], label="valid")
        ax.scatter([best], [d.loc[d["epoch"] == best, "val_loss"].iloc[0]], color="k", zorder=3)
        ax.set_title(f"lr = {lr:g}" if by == "lr" else f"{by}: {lr}")
        ax.set_xlabel("epoch")
    log_axis(axes[0])  # the panels share their y axis
    axes[0].set_ylabel("MSE (log scale)")
    axes[0].legend()
    return fig


@house_style
def config_losses(history: pd.DataFrame, highlight: str, title: str) -> Figure:
    """Valid loss per epoch of every configuration of a grid (``history["config"]``), one in red.

    Parameters
    ----------
    history
        Tidy curves with ``config``, ``epoch`` and ``val_loss`` (e.g. a GNN fit's ``history``).
    highlight
        The ``config`` drawn in red (e.g. :func:`~stlib.models.gnn.config_id` of the paper's).
    title
        Title of the axis.

    Returns
    -------
    Figure
        One axis: one valid-loss curve per configuration (grey, ``highlight`` red), log y axis.
    """
    fig, ax = subplots(height=3.0, width=5.5)
    for cfg, d in history.groupby("config", sort=True):
        ax.plot(d["epoch"], d["val_loss"], lw=1, alpha=0.7, color="tab:red" if cfg == highlight else "grey")
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid MSE (log scale)")
    log_axis(ax)
    ax.set_title(title)
    return fig


@house_style
def controls_overview(test: pd.DataFrame, per_gene: pd.DataFrame, model: str) -> Figure:
    """Test mean PCC of each model under each control (bars), and one model's per-gene test PCC
    under the two targets of ``per_gene`` (columns ``log1p``, ``paper``).

    Parameters
    ----------
    test
        Models x controls of the test mean PCC.
    per_gene
        One row per gene with the columns ``log1p`` and ``paper``: ``model``'s per-gene test PCC.
    model
        Name of the model of ``per_gene`` (title only).

    Returns
    -------
    Figure
        Top: grouped horizontal bars of ``test`` (per model one bar per control, the legend above);
        bottom: per-gene PCC under ``log1p`` against ``paper``, with the line y = x.
    """
    n_models, n_ctrl = test.shape
    top = 0.42 * n_models + 0.9
    fig, axes = subplots(2, 1, height=top + 3.6, gridspec_kw={"height_ratios": [top, 3.0]})
    ax = axes[0]
    y = np.arange(n_models)
    h = 0.8 / max(n_ctrl, 1)
    for k, col in enumerate(test.columns):
        ax.barh(y + (k - (n_ctrl - 1) / 2) * h, test[col].to_numpy(float), height=h, label=str(col), color=f"C{k}")
    ax.set_yticks(y, model_labels(test.index))
    ax.invert_yaxis()
    ax.set_ylabel("model")
    ax.set_xlabel("test mean PCC over genes (test split, pooled)")
    ax.axvline(0, color="black", lw=0.8)
    fig.legend(*ax.get_legend_handles_labels(), title="control", loc="outside upper center", ncols=2, frameon=False)
    axes[1].scatter(per_gene["log1p"], per_gene["paper"], s=8)
    lo = float(np.nanmin(per_gene[["log1p", "paper"]].to_numpy())) - 0.05
    hi = float(np.nanmax(per_gene[["log1p", "paper"]].to_numpy())) + 0.05
    axes[1].plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="y = x")
    axes[1].set_xlim(lo, hi)
    axes[1].set_ylim(lo, hi)
    axes[1].set_xlabel("per-gene test PCC, raw log1p target")
    axes[1].set_ylabel("per-gene test PCC,\nthe authors' target")
    axes[1].set_title(f"{model_label(model)}, the {len(per_gene)} genes")
    return fig


@house_style
def ladder_lines(pcc: pd.DataFrame, lo: pd.DataFrame | None = None, hi: pd.DataFrame | None = None) -> Figure:
    """Mean PCC of each Table I model at each step of the ladder (``stlib.book.ladder.step_table``
    without the report's row), valid and test, with 95% intervals where ``lo`` and ``hi`` give them.

    Parameters
    ----------
    pcc
        Steps (rows, in order) x (model, ``"Valid"`` / ``"Test"``) columns of mean PCC.
    lo, hi
        The intervals' bounds in the shape of ``pcc`` (``step_table`` of ``pcc_lo`` / ``pcc_hi``);
        a missing bound draws no bar.

    Returns
    -------
    Figure
        Two panels (valid, test; shared y): one line per model over the steps, numbered from 0,
        each point with its interval (models side by side at each step, so bars do not hide
        each other).
    """
    fig, axes = subplots(1, 2, height=3.4, sharey=True)
    for ax, split in zip(axes, ("Valid", "Test")):
        sub = pcc.xs(split, axis=1, level=1)
        shift = np.linspace(-0.15, 0.15, len(sub.columns)) if len(sub.columns) > 1 else np.zeros(1)
        for k, model in enumerate(sub.columns):
            x = np.arange(len(sub)) + shift[k]
            line = ax.plot(x, sub[model], marker="o", ms=3.5, lw=1.2, label=model_label(model))[0]
            if lo is not None and hi is not None:
                y = sub[model].to_numpy(float)
                a = lo.xs(split, axis=1, level=1)[model].reindex(sub.index).to_numpy(float)
                b = hi.xs(split, axis=1, level=1)[model].reindex(sub.index).to_numpy(float)
                ok = np.isfinite(a) & np.isfinite(b)
                ax.vlines(x[ok], a[ok], b[ok], color=line.get_color(), lw=0.9, alpha=0.8)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(np.arange(len(sub)), [f"{i}" for i in range(len(sub))])
        ax.set_xlabel("step of the ladder\n(0 = the authors' code)")
        ax.set_title(split)
    axes[0].set_ylabel("mean PCC over genes\n(95% interval)" if lo is not None else "mean PCC over genes")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    return fig


@house_style
def dispersion_histogram(moments: np.ndarray, paper_alpha: np.ndarray) -> Figure:
    """The NB dispersion of each gene two ways (log10, positive values only): the method of
    moments ``(v - m) / m^2`` and the authors' ``m^2 / (v - m)``.

    Parameters
    ----------
    moments
        Per gene the moment estimate of the NB2 dispersion (:func:`stlib.models.glm.apriori_alpha`).
    paper_alpha
        Per gene the authors' value (:func:`stlib.models.glm.apriori_alpha_paper`).

    Returns
    -------
    Figure
        One axis: two overlaid histograms over genes of log10 alpha on the same bins (over the
        values' range), the legend below.
    """
    moments, paper_alpha = np.asarray(moments, float), np.asarray(paper_alpha, float)
    a, b = np.log10(moments[moments > 0]), np.log10(paper_alpha[paper_alpha > 0])
    both = np.concatenate([a, b])
    both = both[np.isfinite(both)]
    # the same bins for both, over the values there are (quarter decades)
    lo, hi = (np.floor(both.min() * 4) / 4, np.ceil(both.max() * 4) / 4) if len(both) else (-4.0, 4.0)
    bins = np.linspace(lo, max(hi, lo + 0.25), 41)
    fig, ax = subplots(height=3.0, width=5.0)
    ax.hist(a, bins=bins, color="grey", alpha=0.7, label="(v - m) / m^2 (NB2 dispersion)")
    ax.hist(b, bins=bins, color="tab:red", alpha=0.5, label="m^2 / (v - m) (the authors)")
    ax.set_xlabel("log10 alpha (train counts)")
    ax.set_ylabel("genes")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2)  # below: not over the bars
    return fig
