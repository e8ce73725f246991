"""Downscaled H&E images for figures (the full-resolution image is never held for plotting)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np

from stlib.errors import DataError


def add_hires_image(adata: ad.AnnData, section: str, max_size: int = 2000) -> float:
    """Decode a section's H&E at reduced size into ``uns["spatial"][section]["images"]["hires"]``.

    Uses JPEG draft mode (decoding at 1/2, 1/4 or 1/8 scale) and then a resize, so a
    ~10,000 px image costs a fraction of its full decode. Sets
    ``scalefactors["tissue_hires_scalef"]`` (hires pixels per full-resolution pixel), the
    squidpy convention; returns it.
    """
    from PIL import Image, UnidentifiedImageError

    meta = adata.uns["spatial"][section]
    path = meta["metadata"]["image_path"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                scale = min(1.0, max_size / max(w, h))
                target = (max(1, round(w * scale)), max(1, round(h * scale)))
                im.draft("RGB", target)
                img = im.convert("RGB").resize(target, Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise DataError(path, "missing image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(path, f"corrupt or truncated image ({exc})") from None
    meta["images"]["hires"] = np.asarray(img)
    meta["scalefactors"]["tissue_hires_scalef"] = float(target[0] / w)
    return float(target[0] / w)
