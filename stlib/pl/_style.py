"""The book's house style for figures: the width of the page's column, twice its pixels, fonts
that stay readable when the browser shrinks the image into the column.

The book's content column is about 676 px wide at a 1280 px window: :data:`COLUMN_IN` inches
at :data:`DPI` pixels per inch, with the PNG's padding. A figure is drawn at most that wide, and the notebooks store it
at twice its pixels with half its size as the display size (IPython's ``retina`` PNG, set by
:func:`retina_in_notebooks` when :mod:`stlib.pl` is imported in a kernel; :func:`stlib.pl.as_image`
does the same): sharp on a high-density screen, and shown at the size it was drawn, so a 9 pt
font (:data:`MIN_FONT_PT`) is 12.5 px on the page. A figure drawn wider than the column would
be shrunk, and its fonts with it, so no figure is wider.

Every figure function of :mod:`stlib.pl` draws under :data:`RC` (:func:`house_style`) and makes
its axes with :func:`subplots`; :func:`check_figure` states the rules a test can check on a
figure: its width, its smallest font, and a label on every axis that shows tick labels and on
every colour bar. The rendered-page check (``tests/rendered/pagecheck.py``) checks on the page
that each figure is stored at twice the pixels it is shown at, and is not shrunk.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

#: Width of a figure that fills the book's content column, in inches: the column is 676 px at
#: 100 px per inch, and the stored PNG adds 0.1 in of padding on each side (``bbox_inches="tight"``).
COLUMN_IN = 6.5
#: Pixels per inch of a figure as shown on the page (the column is ``COLUMN_IN * DPI`` px).
DPI = 100
#: The stored PNG has this many pixels per shown pixel.
EXPORT_SCALE = 2
#: The smallest font of any text in a figure, in points at :data:`COLUMN_IN`.
MIN_FONT_PT = 9.0

#: Matplotlib settings every figure is drawn under.
RC: dict[str, Any] = {
    "figure.dpi": DPI,
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable: ``"error"`` makes every figure function raise :class:`FigureStyleError`
#: when its figure breaks the house style (:func:`check_figure`; ``./run test`` sets it for the
#: notebooks' regression run, so the book's real figures are checked, not only synthetic ones),
#: ``"warn"`` warns (``./run pipeline``); unset or empty, nothing is checked.
CHECK_ENV = "STLIB_CHECK_FIGURES"


class FigureStyleError(ValueError):
    """A figure breaks the house style (with ``STLIB_CHECK_FIGURES=error``)."""


class FigureStyleWarning(Warning):
    """A figure breaks the house style (with ``STLIB_CHECK_FIGURES=warn``); not a ``UserWarning``,
    so that a chapter's filter for its libraries' user warnings does not hide it."""


def house_style(func: F) -> F:
    """Decorator: run a figure function under :data:`RC` (fonts are fixed when text is made) and,
    as :data:`CHECK_ENV` says, check what it drew (:func:`check_figure`).

    Parameters
    ----------
    func
        A function that draws and returns a figure.

    Returns
    -------
    callable
        The same function, drawing under :data:`RC`.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mpl.rc_context(RC):
            fig = func(*args, **kwargs)
        mode = os.environ.get(CHECK_ENV, "").strip().lower()
        if mode and isinstance(fig, Figure):
            if mode not in ("error", "warn"):
                raise ValueError(f"{CHECK_ENV} must be 'error', 'warn' or empty, got {mode!r}")
            problems = check_figure(fig)
            if problems:
                msg = f"{func.__name__}: the figure breaks the house style: " + "; ".join(problems)
                if mode == "error":
                    raise FigureStyleError(msg)
                warnings.warn(msg, FigureStyleWarning, stacklevel=2)
        return fig

    return wrapper  # type: ignore[return-value]


def subplots(nrows: int = 1, ncols: int = 1, *, height: float, width: float = COLUMN_IN,
             **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` at the column's width (at most), constrained layout.

    Parameters
    ----------
    nrows, ncols
        The grid of axes.
    height
        Height in inches.
    width
        Width in inches, at most :data:`COLUMN_IN` (a narrower figure is shown at its own size).
    **kwargs
        Passed to :func:`matplotlib.pyplot.subplots` (``sharey``, ``squeeze``, ...).

    Returns
    -------
    tuple
        ``(figure, axes)`` as :func:`matplotlib.pyplot.subplots`.
    """
    if width > COLUMN_IN + 1e-9:
        raise ValueError(f"a figure {width:g} in wide is wider than the book's column ({COLUMN_IN:g} in)")
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(width, height), dpi=DPI, **kwargs)


def _has_ticklabels(axis: Any) -> bool:
    return any(t.get_visible() and t.get_text().strip() for t in axis.get_ticklabels())


def _is_colorbar(ax: Any) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def _title_overlaps(fig: Figure) -> list[str]:
    """Titles and axis labels whose drawn box overlaps another visible axes' (with its ticks,
    labels and title)."""
    renderer = fig.canvas.get_renderer()
    shown = [ax for ax in fig.axes if ax.get_visible() and (ax.axison or ax.get_title().strip())]
    boxes = {ax: ax.get_tightbbox(renderer) for ax in shown}
    problems = []
    for ax in shown:
        for kind, text in (("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)):
            if not (text.get_visible() and text.get_text().strip()) or (kind != "title" and not ax.axison):
                continue
            x0, y0, x1, y1 = text.get_window_extent(renderer).extents
            tb = mpl.transforms.Bbox.from_extents(x0 + 1, y0 + 1, x1 - 1, y1 - 1)  # a pixel's touch is no overlap
            for other in shown:
                box = boxes[other]
                if other is ax or box is None or box.width == 0:
                    continue
                if tb.overlaps(box):
                    what = "a colour bar" if _is_colorbar(other) else f"axes {other.get_title()[:30]!r}"
                    problems.append(f"{kind} {text.get_text()[:30]!r} runs into {what}")
    return problems


def check_figure(fig: Figure) -> list[str]:
    """What in ``fig`` breaks the house style (an empty list when nothing does).

    Checks: width at most :data:`COLUMN_IN`; every visible text at least :data:`MIN_FONT_PT`; every axis that shows tick labels has a label (on itself
    or on an axes it shares that axis with), and so does every colour bar; no axes title runs
    into another axes (its ticks, labels or title), and no axis label either; no title, axis label or
    figure text runs past an edge of the figure.

    Parameters
    ----------
    fig
        A drawn figure.

    Returns
    -------
    list of str
        One sentence per problem.
    """
    problems = []
    w, _ = fig.get_size_inches()
    if w > COLUMN_IN + 1e-6:
        problems.append(f"{w:.2f} in wide, wider than the column ({COLUMN_IN} in)")
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    if box.width > COLUMN_IN + 0.05:  # a legend or label outside the figure widens the stored PNG
        problems.append(f"drawn {box.width:.2f} in wide with what lies outside it (a legend?), wider than the column")
    renderer = fig.canvas.get_renderer()
    _, h = fig.get_size_inches()
    labels = [t for ax in fig.axes if ax.get_visible()
              for t in ((ax.title, ax.xaxis.label, ax.yaxis.label) if ax.axison else (ax.title,))]
    for t in labels + list(fig.texts):  # a label longer than its axis runs past an edge of the figure
        if not (t.get_visible() and t.get_text().strip()):
            continue
        e = t.get_window_extent(renderer)
        over = max(e.y1 - h * fig.dpi, -e.y0) / fig.dpi
        if over > 0.05:
            problems.append(f"text {t.get_text()[:30]!r} runs {over:.2f} in past the figure's top or bottom (a label "
                            "longer than its axis?)")
        over = max(e.x1 - w * fig.dpi, -e.x0) / fig.dpi
        if over > 0.05:
            problems.append(f"text {t.get_text()[:30]!r} runs {over:.2f} in past the figure's left or right edge (a "
                            "label longer than its axis?)")
    for t in fig.findobj(mpl.text.Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT - 1e-6:
            problems.append(f"text {t.get_text()[:30]!r} at {t.get_fontsize():g} pt")
    problems += _title_overlaps(fig)
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        if _is_colorbar(ax):
            long = ax.yaxis if ax.get_position().height >= ax.get_position().width else ax.xaxis
            if not long.get_label().get_text().strip():
                problems.append("a colour bar without a label")
            continue
        for name in ("x", "y"):
            axis = getattr(ax, f"{name}axis")
            if not _has_ticklabels(axis):
                continue
            shared = getattr(ax, f"get_shared_{name}_axes")().get_siblings(ax)
            if not any(getattr(a, f"get_{name}label")().strip() for a in shared):
                problems.append(f"axes {ax.get_title()[:30]!r}: {name} axis without a label")
    return problems


def retina_in_notebooks() -> bool:
    """In a Jupyter kernel, store every inline figure as a ``retina`` PNG (twice the pixels,
    shown at half: :data:`EXPORT_SCALE`); outside one, do nothing.

    Returns
    -------
    bool
        Whether the inline backend was set.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return False
    ip = get_ipython()
    if ip is None or not hasattr(ip, "kernel"):
        return False
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
    return True
