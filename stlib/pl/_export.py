"""A figure as fixed PNG (or JPEG) bytes, for figures that one page shows and another pastes (myst-nb glue),
and for photographs (H&E maps) that PNG stores at several times the size of a JPEG."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from stlib.pl._style import EXPORT_SCALE


#: JPEG quality of :func:`as_image` (the H&E maps: no visible blocking at twice the shown pixels).
JPEG_QUALITY = 85


def as_image(fig: Figure, *, dpi: float | None = None, format: str = "png"):  # noqa: A002 - matplotlib's name
    """The figure rendered once to PNG (tight bounding box, as the notebook's inline backend), as an
    :class:`IPython.display.Image`, and the figure closed. Like the notebooks' inline figures, the
    PNG has twice the figure's pixels and is shown at half (``retina``), unless ``dpi`` is given.

    Glue the returned image with ``display=True``: the chapter shows and the other page pastes the
    same bytes. (A figure glued with ``display=False`` and then shown by the inline backend is
    rendered twice, and the two renderings can differ by a pixel, so the pasted image is one the
    chapter never wrote.)

    Parameters
    ----------
    fig
        A matplotlib figure.
    dpi
        Resolution; default twice the figure's own, shown at half size.
    format
        ``"png"`` (lossless: plots, text) or ``"jpeg"`` (figures that are mostly an H&E image,
        at :data:`JPEG_QUALITY`, drawn on white).

    Returns
    -------
    IPython.display.Image
        PNG (or JPEG) bytes of the figure.

    Raises
    ------
    ValueError
        For a format other than ``"png"`` and ``"jpeg"``.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image

    if format not in ("png", "jpeg"):
        raise ValueError(f"format must be 'png' or 'jpeg', got {format!r}")
    buf = io.BytesIO()
    extra = {"facecolor": "white", "pil_kwargs": {"quality": JPEG_QUALITY}} if format == "jpeg" else {}
    fig.savefig(buf, format=format, bbox_inches="tight", dpi=dpi or EXPORT_SCALE * fig.dpi, **extra)
    plt.close(fig)
    return Image(data=buf.getvalue(), format=format, retina=dpi is None)
