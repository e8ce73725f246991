"""A figure as fixed PNG bytes, for figures that one page shows and another pastes (myst-nb glue)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from stlib.pl._style import EXPORT_SCALE


def as_image(fig: Figure, *, dpi: float | None = None):
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

    Returns
    -------
    IPython.display.Image
        PNG bytes of the figure.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=dpi or EXPORT_SCALE * fig.dpi)
    plt.close(fig)
    return Image(data=buf.getvalue(), format="png", retina=dpi is None)
