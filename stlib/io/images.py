"""Every H&E image the package opens goes through this module, with one policy.

PIL keeps two safety settings as module globals: the decompression-bomb limit (its default,
~89 Mpx, is just below one HER2ST scan, ~92 Mpx) and whether truncated files load (with grey
pixels). While any call here runs, the limit is :data:`MAX_IMAGE_PIXELS` and truncated loads are
refused; both are restored afterwards (a thread-safe reference count), so a user's own PIL
settings are never changed for good.

- :func:`read_image`: a full decode (RGB uint8), for the windows of the CNN;
- :func:`image_size`: the header only;
- :func:`check_jpeg`: the header and the end-of-image marker (a truncated download), and a warning
  for an alpha channel (the readers' check before anything long);
- :func:`read_thumbnail`: a downscaled copy (JPEG draft mode), for tissue masks and figures;
- :func:`add_hires_image`: that copy for figures, squidpy's ``images["hires"]`` convention.

Every failure is a :class:`~stlib.errors.DataError` naming the file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import numpy as np
from PIL import Image, ImageFile

from stlib.errors import DataError, DataWarning

__all__ = ["MAX_IMAGE_PIXELS", "MIN_DECLARED_PPI", "add_hires_image", "check_jpeg", "image_size", "image_um_per_px",
           "read_image", "read_thumbnail"]

#: Largest image (in pixels) this module decodes: 40,000 x 40,000 px.
MAX_IMAGE_PIXELS = 1_600_000_000
#: A resolution declared in pixels per inch is a microscope's only above this (25.4 um/px): 72, 96
#: or 300 dpi are a screen's or a printer's defaults (:func:`image_um_per_px`).
MIN_DECLARED_PPI = 1000.0

_pil_lock = threading.Lock()
_pil_users = 0
_pil_saved: tuple[int | None, bool] = (None, False)


@contextmanager
def pil_limits() -> Iterator[None]:
    """Raise PIL's decompression-bomb limit and forbid truncated loads, locally.

    PIL keeps both settings as module globals. They are changed only while at
    least one :func:`read_image` / :func:`image_size` call is running (a
    thread-safe reference count) and restored afterwards.
    """
    global _pil_users, _pil_saved
    with _pil_lock:
        if _pil_users == 0:
            _pil_saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
            Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _pil_users += 1
    try:
        yield
    finally:
        with _pil_lock:
            _pil_users -= 1
            if _pil_users == 0:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = _pil_saved


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(path, "missing image file")
    if not path.is_file():
        raise DataError(path, "not a file (a folder?)")


def _has_alpha(img: Image.Image) -> bool:
    """Whether an opened image has an alpha channel or a transparent palette entry (header only)."""
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _to_rgb(img: Image.Image, path: Path) -> np.ndarray:
    """RGB uint8 of a decoded image; an alpha channel is composited over white glass, with a warning
    naming the file and the share of (partly) transparent pixels when there are any."""
    if _has_alpha(img):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        share = float((alpha[..., 0] < 1).mean())
        if share > 0:
            warnings.warn(f"{path}: the image has an alpha channel and {100 * share:.1f}% of its pixels are "
                          "(partly) transparent; composited over white (glass)", DataWarning, stacklevel=3)
        return np.clip(np.round(rgba[..., :3] * alpha + 255.0 * (1 - alpha)), 0, 255).astype(np.uint8)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file into an RGB uint8 array.

    Parameters
    ----------
    path
        Image file (JPEG, PNG, TIFF: anything PIL reads). Grey-scale or
        palette images are converted to RGB; an alpha channel (RGBA) is
        composited over white, the colour of glass, with a
        :class:`~stlib.errors.DataWarning` when any pixel is transparent.

    Returns
    -------
    ``(H, W, 3)`` uint8 array, rows first (``image[y, x]``).

    Raises
    ------
    DataError
        The file is missing, not an image, corrupt or truncated (PIL's
        ``LOAD_TRUNCATED_IMAGES`` is forced off, so a cut-off JPEG fails
        instead of silently loading grey pixels), or larger than
        :data:`MAX_IMAGE_PIXELS`.
    """
    p = Path(path)
    _check_file(p)
    with pil_limits():
        try:
            with Image.open(p) as img:
                img.load()
                arr = _to_rgb(img, p)
        except Image.DecompressionBombError as e:
            raise DataError(p, f"image too large to decode safely ({e})") from e
        except Image.UnidentifiedImageError as e:
            raise DataError(p, "not a readable image file (unknown format or corrupt header)") from e
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise DataError(p, f"corrupt or truncated image: {e}") from e
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - PIL guarantees RGB
        raise DataError(p, f"decoded image has shape {arr.shape}, expected (H, W, 3)")
    return arr


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Height and width of an image, from its header only (no pixel decoding).

    Parameters
    ----------
    path
        Image file.

    Returns
    -------
    ``(h, w)`` in pixels.

    Raises
    ------
    DataError
        The file is missing or its header is not a readable image.
    """
    h, w, _ = _header(Path(path))
    return h, w


def _header(p: Path) -> tuple[int, int, str | None]:
    """Height, width and, when the image has an alpha channel, its mode, from the header only."""
    _check_file(p)
    with pil_limits():
        try:
            with Image.open(p) as img:
                w, h = img.size
                alpha = img.mode if _has_alpha(img) else None
        except Image.UnidentifiedImageError as e:
            raise DataError(p, "not a readable image file (unknown format or corrupt header)") from e
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise DataError(p, f"cannot read image header: {e}") from e
    return int(h), int(w), alpha


def image_um_per_px(path: str | os.PathLike[str]) -> tuple[float, str] | None:
    """The resolution an image file declares, in micrometres per pixel, and where it was read; or ``None``.

    Read from the header only: an Aperio ``MPP = <um/px>`` in a TIFF's ImageDescription, else the
    TIFF resolution tags when their unit is the centimetre, or the inch at more than
    :data:`MIN_DECLARED_PPI` pixels per inch (a microscope's; 72, 96 or 300 dpi are a screen's or
    a printer's defaults and say nothing of the tissue). A PNG's ``pHYs`` (pixels per metre) and a
    JPEG's density (JFIF, else EXIF) count by the same rule: above :data:`MIN_DECLARED_PPI`.

    Parameters
    ----------
    path
        Image file.

    Returns
    -------
    ``(um_per_px, source)`` or ``None`` when the file declares no usable resolution.
    """
    import re

    p = Path(path)
    _check_file(p)
    with pil_limits():
        try:
            with Image.open(p) as img:
                tags = dict(getattr(img, "tag_v2", {}) or {})
                fmt, info = img.format, dict(img.info)
        except Image.UnidentifiedImageError as e:
            raise DataError(p, "not a readable image file (unknown format or corrupt header)") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(p, f"cannot read image header: {e}") from e
    if fmt in ("PNG", "JPEG", "MPO"):  # PIL gives their density in pixels per inch
        ppi = float((info.get("dpi") or (0,))[0] or 0)
        if not (np.isfinite(ppi) and ppi > MIN_DECLARED_PPI):
            return None
        where = ("PNG pHYs" if fmt == "PNG" else "JPEG JFIF density" if info.get("jfif_unit") in (1, 2)
                 else "JPEG EXIF resolution")
        return 25400.0 / ppi, f"the image's metadata ({where}, {ppi:.0f} px/inch)"
    desc = str(tags.get(270, ""))
    m = re.search(r"MPP\s*=\s*([0-9.]+)", desc)
    if m and float(m.group(1)) > 0:
        return float(m.group(1)), "the image's metadata (Aperio MPP)"
    xres, unit = tags.get(282), tags.get(296, 2)
    if xres is None or float(xres) <= 0:
        return None
    per = {3: 1e4, 2: 25400.0}.get(int(unit))
    if per is None or (int(unit) == 2 and float(xres) <= MIN_DECLARED_PPI):
        return None
    return per / float(xres), f"the image's metadata (TIFF resolution, {'cm' if int(unit) == 3 else 'inch'})"


def check_jpeg(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of a JPEG from its header, after checking the file is complete.

    Reads only the header and the last bytes: a missing end-of-image marker (``FF D9``)
    means a truncated download. Full decoding is left to the image module. An image (any format)
    with an alpha channel gets a :class:`~stlib.errors.DataWarning` naming it: the channel is
    dropped when the image is decoded, transparent pixels composited over white
    (:func:`read_image`).

    Parameters
    ----------
    path
        Image file.

    Returns
    -------
    ``(h, w)`` in pixels.

    Raises
    ------
    DataError
        The file is missing, its header is not a readable image, or a JPEG lacks its end-of-image marker.
    """
    p = Path(path)
    h, w, alpha = _header(p)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(2)
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if head == b"\xff\xd8" and b"\xff\xd9" not in tail:
        raise DataError(p, "truncated JPEG: no end-of-image marker (FF D9) at the end of the file")
    if alpha is not None:
        warnings.warn(f"{p}: the image has an alpha channel (mode {alpha}), which is dropped when it is decoded: "
                      "transparent pixels become white (glass)", DataWarning, stacklevel=2)
    return h, w


def read_thumbnail(path: str | os.PathLike[str], max_size: int, *,
                   resample: str = "bilinear") -> tuple[np.ndarray, float]:
    """An image decoded at reduced size: JPEG draft mode (decoding at 1/2, 1/4 or 1/8 scale),
    then a resize to at most ``max_size`` px on its longest side; a smaller image is not enlarged.
    An alpha channel is composited over white, as :func:`read_image` does.

    Parameters
    ----------
    path
        Image file.
    max_size
        Longest side of the copy in pixels.
    resample
        PIL's resampling filter for the resize: ``"bilinear"`` (masks) or ``"lanczos"`` (figures).

    Returns
    -------
    tuple
        The RGB uint8 copy and its scale (copy pixels per image pixel, 1.0 when not reduced).

    Raises
    ------
    DataError
        The file is missing, or not a readable image.
    """
    filters = {"bilinear": Image.Resampling.BILINEAR, "lanczos": Image.Resampling.LANCZOS}
    if resample not in filters:
        raise ValueError(f"resample must be one of {sorted(filters)}, got {resample!r}")
    try:
        with pil_limits(), Image.open(path) as im:
            w, h = im.size
            scale = min(1.0, max_size / max(w, h))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            im.draft("RGB", size)
            if _has_alpha(im):  # as read_image: transparent pixels are white glass
                rgba = im.convert("RGBA")
                rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
            else:
                rgb = im.convert("RGB")
            thumb = np.asarray(rgb.resize(size, filters[resample]), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(path, "missing image file") from None
    except (Image.UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(path, f"corrupt or truncated image ({exc})") from None
    return thumb, float(size[0] / w)


def add_hires_image(adata: ad.AnnData, section: str, max_size: int = 2000) -> float:
    """Decode a section's H&E at reduced size into ``uns["spatial"][section]["images"]["hires"]``.

    Uses :func:`read_thumbnail` (JPEG draft mode, then a Lanczos resize), so a ~10,000 px image
    costs a fraction of its full decode. Sets ``scalefactors["tissue_hires_scalef"]`` (hires
    pixels per full-resolution pixel), the squidpy convention; returns it.

    Parameters
    ----------
    adata
        Data read by :mod:`stlib.io`; ``uns["spatial"][section]`` is modified in place.
    section
        Section id, a key of ``uns["spatial"]``; its image is ``metadata["image_path"]``.
    max_size
        Longest side of the copy in pixels; a smaller image is not enlarged.

    Returns
    -------
    float
        ``tissue_hires_scalef`` (1.0 when the image is not reduced).
    """
    meta = adata.uns["spatial"][section]
    img, scale = read_thumbnail(meta["metadata"]["image_path"], max_size, resample="lanczos")
    # an empty "images" mapping does not survive every h5ad round trip: create it when absent
    meta.setdefault("images", {})["hires"] = img
    meta.setdefault("scalefactors", {})["tissue_hires_scalef"] = scale
    return scale
