"""Expression predicted from an H&E image alone, with a saved model (:mod:`stlib.predictor`).

Given an image (and optionally spot centres), :func:`predict_image` returns an AnnData in
scanpy / squidpy conventions: predicted targets in ``X``, spot centres in ``obsm["spatial"]``,
the image (downscaled) and scale factors in ``uns["spatial"][library_id]``, and what was done
in ``uns["prediction"]``. Without spot centres the spots are a square grid at the model's
spot pitch over the tissue found in the image (:func:`tissue_grid`).

The image's resolution (micrometres per pixel) decides how many pixels the model's physical
window is: given by the user, else measured from the given spots' pitch, else read from the
image's metadata (a TIFF's Aperio ``MPP`` or resolution tags, a PNG's ``pHYs`` or a JPEG's dpi; a
density of 1,000 px per inch or less is a screen's default and does not count:
:func:`stlib.io.images.image_um_per_px`), else refused, as ``stlib predict`` refuses. Only
``um_per_px="training"`` assumes the training images' resolution, and says so in
``uns["prediction"]["um_per_px_source"]``. Bad input gets its own message: no
tissue in the image, an image far smaller than its resolution implies, spots outside the image,
a resolution far from the model's, a backbone whose weights differ from the model's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from stlib._utils import sha256_file
from stlib.errors import DataError
from stlib.io._common import MAX_RESOLUTION_RATIO
from stlib.predictor._model import ImageModel, ModelError

#: Thumbnail side (px) on which tissue is detected.
TISSUE_THUMB = 1024
#: H&E's hues in degrees, hematoxylin's blue-purple through eosin's pink to red (the range wraps
#: through 0): stained tissue on the HER2ST sections lies within 215-30 degrees.
HE_HUES = (215.0, 30.0)
#: A pixel more saturated than this with a hue outside :data:`HE_HUES` is ink (a green, blue-green,
#: yellow or orange pen mark), not stain.
INK_MIN_SATURATION = 0.2
#: Hematoxylin's bluest hues (degrees), shared with blue pens: a pixel there more saturated than
#: :data:`BLUE_INK_MIN_SATURATION` is blue ink (stain on the HER2ST thumbnails stays below 0.75).
BLUE_HUES = (215.0, 245.0)
#: See :data:`BLUE_HUES`.
BLUE_INK_MIN_SATURATION = 0.8
#: A pixel whose brightness (HSV value, 0-1) is at most this is a dark stroke (black pen) or a dark
#: background, not stain: the darkest tissue on the HER2ST thumbnails is about 0.25.
DARK_MAX = 0.2
#: Share of an image's pixels painted black (:data:`stlib.io.register.BLACK_MAX`) above which the
#: image has a painted background, and a component touching the top and right edges is taken for
#: an annotation thumbnail pasted there (the HER2ST web app's images) rather than tissue.
PAINTED_BACKGROUND = 0.05


def _tissue_mask(image_path: str | Path, max_size: int) -> tuple[np.ndarray, float, dict[str, Any]]:
    """:func:`tissue_mask` and what it removed (see there)."""
    from PIL import Image
    from skimage import filters, morphology

    from stlib.io import register
    from stlib.io.images import read_thumbnail

    path = Path(image_path)
    rgb, scale = read_thumbnail(path, max_size)
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.float64) / 255.0
    hue, sat, val = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    r = max(1, round(min(sat.shape) / 200))
    # background: black paint, white glass reaching the border, and (on an image with a painted
    # background) the annotation thumbnail in the top-right corner: stlib.io.register's mask
    black_share = float((rgb.max(axis=2) <= register.BLACK_MAX).mean())
    region, rinfo = register.tissue_mask(rgb, where=str(path))
    inset = rinfo["inset_bbox"] if black_share >= PAINTED_BACKGROUND else None
    if rinfo["inset_bbox"] is not None:
        x0, y0, x1, y1 = rinfo["inset_bbox"]
    if rinfo["inset_bbox"] is not None and inset is None:  # no painted background: that corner piece is tissue
        fg = (rgb.max(axis=2) > register.BLACK_MAX) & (rgb.min(axis=2) < register.WHITE_MIN)
        region[y0:y1, x0:x1] |= fg[y0:y1, x0:x1]
    elif inset is not None:  # the thumbnail's box, with its frame and the blur of the downsampling
        region[max(0, y0 - r):y1 + r, max(0, x0 - r):x1 + r] = False
    # pen: a strongly saturated hue outside H&E's, or a very dark stroke (not the blurred edge of a
    # painted background); widened over its own blurred edge
    lo, hi = HE_HUES
    stain_hue = (hue >= lo) | (hue <= hi) if lo > hi else (hue >= lo) & (hue <= hi)
    dark = (val <= DARK_MAX) & ~morphology.dilation(rgb.max(axis=2) <= register.BLACK_MAX, morphology.disk(r))
    blue = (hue >= BLUE_HUES[0]) & (hue < BLUE_HUES[1]) & (sat > BLUE_INK_MIN_SATURATION)
    ink = ((sat > INK_MIN_SATURATION) & ~stain_hue) | blue | dark
    ink = morphology.dilation(morphology.opening(ink, morphology.disk(1)), morphology.disk(r))
    candidates = region & ~ink
    info: dict[str, Any] = {"inset_bbox": None if inset is None else [round(v / scale) for v in inset],
                            "ink_fraction": float((ink & region).mean()),
                            "background_fraction": float(1 - region.mean())}
    # Li's threshold of the saturation over all but the ink: glass and background pull it down
    s = sat[~ink]
    if s.size == 0 or float(s.max() - s.min()) < 0.05:
        return np.zeros(sat.shape, dtype=bool), scale, info
    thr = max(float(filters.threshold_li(s)), 0.05)
    mask = (sat > thr) & candidates
    mask = morphology.opening(morphology.closing(mask, morphology.disk(r)), morphology.disk(r))
    mask &= candidates  # closing must not bridge a pen stroke or reach into the background
    mask = morphology.remove_small_objects(mask, max_size=max(1, int(0.001 * mask.size)))
    return mask, scale, info


def tissue_mask(image_path: str | Path, *, max_size: int = TISSUE_THUMB) -> tuple[np.ndarray, float]:
    """Tissue (True) vs glass, background, thumbnail and pen ink on a thumbnail of an H&E image.

    H&E stains tissue pink to purple; the glass around it is white or grey (low saturation).
    Li's minimum cross-entropy threshold (scikit-image) of the HSV saturation keeps the pale stroma
    and fat that Otsu's drops: on the five train and valid sections of ``her2st-demo`` it puts
    98-100% of the spots the lab marked as under tissue on the mask, Otsu's 97-98%, for a similar
    area. The mask is closed and opened with a disc and specks smaller than 0.1% of the thumbnail
    are removed. What is not tissue is removed first, whatever its saturation:

    - background: black paint and white glass reaching the border, as
      :func:`stlib.io.register.tissue_mask` finds them (a grey or bright frame is low in saturation
      and falls below the threshold);
    - on an image with a painted black background (more than :data:`PAINTED_BACKGROUND` of it), the
      annotation thumbnail pasted into the top-right corner (the HER2ST web app's images): the
      component :func:`stlib.io.register.tissue_mask` finds touching the top and right edges;
    - pen ink: a pixel more saturated than :data:`INK_MIN_SATURATION` with a hue outside H&E's
      (:data:`HE_HUES`: green, blue-green, yellow, orange), a pure blue beyond
      :data:`BLUE_INK_MIN_SATURATION`, or a very dark one (value at most :data:`DARK_MAX`: black
      pen), widened over the stroke's blurred edge; the ink is also left out of the threshold.

    Returns the mask and the thumbnail pixels per full-resolution pixel.

    Parameters
    ----------
    image_path
        The H&E image file.
    max_size
        Longest side of the thumbnail, px (a smaller image is not enlarged).

    Returns
    -------
    mask : numpy.ndarray
        Boolean ``(height, width)`` of the thumbnail, True on tissue; all False when the saturation
        is nearly uniform (range below 0.05).
    scale : float
        Thumbnail pixels per full-resolution pixel.

    Raises
    ------
    DataError
        A missing, corrupt or truncated image.
    """
    mask, scale, _ = _tissue_mask(image_path, max_size)
    return mask, scale


def tissue_grid(
    image_path: str | Path, *, um_per_px: float, pitch_um: float = 200.0, min_spots: int = 4
) -> tuple[np.ndarray, pd.Index, dict[str, Any]]:
    """Spot centres on a square grid at ``pitch_um`` over the tissue of an image.

    Returns the ``(n, 2)`` full-resolution centres (x, y), their ids ``"<col>x<row>"`` and a
    report (grid size, spots kept, tissue fraction). Raises :class:`DataError` for an image
    smaller than ``min_spots`` spot pitches allow, or without tissue.

    Parameters
    ----------
    image_path
        The full-resolution H&E image.
    um_per_px
        The image's resolution, micrometres per pixel.
    pitch_um
        Grid pitch in micrometres (the model's spot pitch).
    min_spots
        Fewest grid positions the image must have room for.

    Returns
    -------
    xy : numpy.ndarray
        ``(n, 2)`` centres (x, y) in full-resolution pixels of the grid points on tissue, row by row
        (the grid starts half a pitch from the image's top-left corner).
    ids : pandas.Index
        Their ids ``"<col>x<row>"`` (grid column and row).
    report : dict
        ``grid`` (columns, rows), ``pitch_px``, ``n_grid`` (grid points), ``n_tissue`` (points kept),
        ``tissue_fraction`` (share of the thumbnail on tissue), ``inset_bbox`` (the annotation
        thumbnail left out, ``[x0, y0, x1, y1]`` in full-resolution pixels, or ``None``) and
        ``ink_fraction`` (share of the thumbnail taken for pen ink); see :func:`tissue_mask`.

    Raises
    ------
    DataError
        An image less than two pitches on a side or with room for fewer than ``min_spots`` spots,
        or no grid point on tissue.
    """
    from stlib.io.images import image_size

    path = Path(image_path)
    h, w = image_size(path)
    pitch = pitch_um / um_per_px
    if min(h, w) < 2 * pitch or (w // pitch) * (h // pitch) < min_spots:
        raise DataError(path, f"the image is {w} x {h} px: at {um_per_px:g} um/px that is {w * um_per_px / 1000:.2f} x "
                              f"{h * um_per_px / 1000:.2f} mm, room for fewer than {min_spots} spots at a {pitch_um:g} um "
                              "pitch. Far smaller than a section: a downsampled image? Give its resolution (um_per_px)")
    mask, s, minfo = _tissue_mask(path, TISSUE_THUMB)
    cols = np.arange(pitch / 2, w, pitch)
    rows = np.arange(pitch / 2, h, pitch)
    gx, gy = np.meshgrid(np.arange(len(cols)), np.arange(len(rows)))
    xy = np.c_[cols[gx.ravel()], rows[gy.ravel()]]
    mx = np.clip((xy[:, 0] * s).astype(int), 0, mask.shape[1] - 1)
    my = np.clip((xy[:, 1] * s).astype(int), 0, mask.shape[0] - 1)
    keep = mask[my, mx]
    report = {"grid": [int(len(cols)), int(len(rows))], "pitch_px": float(pitch), "n_grid": int(len(xy)),
              "n_tissue": int(keep.sum()), "tissue_fraction": float(mask.mean()), "inset_bbox": minfo["inset_bbox"],
              "ink_fraction": round(minfo["ink_fraction"], 4)}
    if keep.sum() == 0:
        raise DataError(path, f"no tissue detected: none of the {len(xy)} grid points lies on stained tissue "
                              f"({100 * mask.mean():.1f}% of the image looks like tissue). A blank or non-H&E image?")
    ids = pd.Index([f"{a}x{b}" for a, b in zip(gx.ravel()[keep], gy.ravel()[keep])])
    return xy[keep], ids, report


def read_spots(path: str | Path) -> tuple[np.ndarray, pd.Index, dict[str, Any]]:
    """Spot centres from a spots file (``spot_id, pixel_x, pixel_y`` [, ``in_tissue``]; CSV or TSV)
    and what was dropped (``in_tissue`` 0, or empty / not 0 or 1), counted.

    Parameters
    ----------
    path
        The spots file, CSV or TSV: ``spot_id, pixel_x, pixel_y`` [, ``in_tissue``], or a legacy-ST
        spot table.

    Returns
    -------
    xy : numpy.ndarray
        ``(n, 2)`` float64 centres (``pixel_x``, ``pixel_y``) of the spots kept.
    ids : pandas.Index
        Their ``spot_id``.
    report : dict
        ``n_rows`` (spots in the file), ``dropped_not_in_tissue`` and ``dropped_selected_missing``.
    """
    from stlib.io.spots import read_spot_table

    df, not_in, no_flag = read_spot_table(Path(path))
    report = {"n_rows": int(len(df) + len(not_in) + len(no_flag)), "dropped_not_in_tissue": len(not_in),
              "dropped_selected_missing": len(no_flag)}
    return df[["pixel_x", "pixel_y"]].to_numpy(dtype=np.float64), df.index, report


#: ``um_per_px`` keyword value that assumes the image is at the training images' resolution.
TRAINING_RESOLUTION = "training"


def resolve_resolution(model: ImageModel, um_per_px: float | str | None, spots_xy: np.ndarray | None,
                       where: str | Path, spot_pitch_um: float | None = None, *,
                       image_path: str | Path | None = None) -> tuple[float, str]:
    """The image's um/px and where it came from; refuses one far from the model's training images.

    From given spots it is measured with ``spot_pitch_um`` (the spots' centre-to-centre distance;
    default the model's): a Visium file (100 um) measured as legacy ST (200 um) would be off by 2x.
    A given ``um_per_px`` with spots is checked against their pitch: beyond
    :data:`~stlib.io._common.UM_PER_PX_TOLERANCE` apart is a :class:`DataError` with both values.
    Without either, the resolution the image file declares (:func:`stlib.io.images.image_um_per_px`);
    an image that declares none is a :class:`DataError` naming it, unless ``um_per_px="training"``
    asks for the training images' resolution.

    Parameters
    ----------
    model
        The model (its ``meta["um_per_px_train"]`` and ``meta["spot_pitch_um"]`` are read).
    um_per_px
        The resolution given by the user; ``"training"`` (:data:`TRAINING_RESOLUTION`): assume the
        model's training images' resolution; or ``None``: measured from the spots, else read from
        the image's metadata.
    spots_xy
        ``(n, 2)`` spot centres in full-resolution pixels, or ``None``; at least two are needed to
        measure or check the resolution.
    where
        The file (or name) in error messages.
    spot_pitch_um
        Centre-to-centre distance of the spots in micrometres (default: the model's).
    image_path
        The image, whose metadata is read when neither ``um_per_px`` nor two spots are given.

    Returns
    -------
    um_per_px : float
        The resolution.
    source : str
        Where it came from: ``"given"``, ``"measured from the spots' <pitch> um pitch"``, the image's
        metadata (e.g. ``"the image's metadata (Aperio MPP)"``) or
        ``"assumed: the training images' resolution (um_per_px='training')"``.

    Raises
    ------
    DataError
        No way to know the resolution (no ``um_per_px``, no spots, an image that declares none), a
        non-positive or non-finite one, or a given one that does not match the spots' pitch.
    ModelError
        A resolution more than :data:`MAX_RESOLUTION_RATIO` times finer or coarser than the training
        images'.
    """
    from stlib.io import section_geometry

    from stlib.io.images import image_um_per_px

    train = model.meta.get("um_per_px_train")
    train_txt = "unknown" if train is None else f"{float(train):.3g}"
    if isinstance(um_per_px, str):
        if um_per_px != TRAINING_RESOLUTION:
            raise DataError(where, f"um_per_px must be a number (micrometres per pixel) or {TRAINING_RESOLUTION!r}, "
                                   f"got {um_per_px!r}")
        if train is None:
            raise DataError(where, f"um_per_px={TRAINING_RESOLUTION!r}: the model records no training resolution "
                                   "(um_per_px_train); give um_per_px")
        um, source = float(train), f"assumed: the training images' resolution (um_per_px={TRAINING_RESOLUTION!r})"
    elif um_per_px is not None:
        um, source = float(um_per_px), "given"
        if spots_xy is not None and len(spots_xy) >= 2 and np.isfinite(um) and um > 0:
            pitch = float(spot_pitch_um or model.meta["spot_pitch_um"])
            section_geometry(spots_xy, um_per_px=um, spot_pitch_um=pitch, where=where)
    elif spots_xy is not None and len(spots_xy) >= 2:
        pitch = float(spot_pitch_um or model.meta["spot_pitch_um"])
        um = section_geometry(spots_xy, spot_pitch_um=pitch, where=where)["um_per_px"]
        source = f"measured from the spots' {pitch:g} um pitch"
    elif image_path is not None and (declared := image_um_per_px(image_path)) is not None:
        um, source = declared
    else:
        raise DataError(image_path if image_path is not None else where,
                        "the image's resolution is unknown: without spots give um_per_px (micrometres per pixel; "
                        f"the model was trained on images at {train_txt} um/px); the image declares none. "
                        f"um_per_px={TRAINING_RESOLUTION!r} assumes the training images' resolution")
    if not np.isfinite(um) or um <= 0:
        raise DataError(where, f"um_per_px must be a positive number, got {um!r}")
    if train is not None and not (1 / MAX_RESOLUTION_RATIO <= um / train <= MAX_RESOLUTION_RATIO):
        raise ModelError(where, f"model/image mismatch: the image is at {um:g} um/px ({source}), the model was trained on "
                                f"images at {train:.3g} um/px; a factor {um / train:.2g} is beyond "
                                f"{MAX_RESOLUTION_RATIO:g}x. Check um_per_px (micrometres per pixel)")
    return um, source


def predict_image(
    model: ImageModel,
    image_path: str | Path,
    *,
    spots: str | Path | np.ndarray | None = None,
    spot_ids: list[str] | pd.Index | None = None,
    um_per_px: float | str | None = None,
    spot_pitch_um: float | None = None,
    library_id: str | None = None,
    batch_size: int = 32,
    progress: bool = True,
    hires_size: int = 2000,
) -> ad.AnnData:
    """Predict the model's genes at each spot of an H&E image.

    Parameters
    ----------
    model
        From :func:`stlib.predictor.load_model`.
    image_path
        The full-resolution H&E.
    spots
        A spots file, an ``(n, 2)`` array of centres (x, y) in full-resolution pixels, or
        ``None``: a grid at the model's spot pitch over the tissue (:func:`tissue_grid`).
    um_per_px
        The image's resolution in micrometres per pixel. ``None``: measured from the given spots'
        pitch, else read from the image's metadata (a TIFF's Aperio ``MPP`` or resolution tags, a PNG's
        ``pHYs``, a JPEG's dpi: :func:`stlib.io.images.image_um_per_px`); without spots, an image that
        declares none is a :class:`DataError`, as in
        ``stlib predict``. ``"training"`` assumes the model's training images' resolution (the old
        default), and ``uns["prediction"]["um_per_px_source"]`` says so.
    spot_pitch_um
        Centre-to-centre distance of the given spots (default: the model's, 200 um for legacy
        ST; 100 for Visium), used to measure the resolution when ``um_per_px`` is not given.
    progress
        A tqdm bar over the batches of windows.

    Returns
    -------
    AnnData: ``X`` predicted targets (float32), ``obs["section", "spot_id"]``,
    ``obsm["spatial"]``, ``obsm["X_cnn"]``, ``uns["spatial"][library_id]`` (``images["hires"]``,
    ``scalefactors``, ``metadata``) and ``uns["prediction"]``.
    """
    from tqdm.auto import tqdm

    from stlib import im
    from stlib.tl import features
    from stlib.io import check_spots_in_image
    from stlib.io.images import add_hires_image, image_size, read_image

    t0 = time.perf_counter()
    path = Path(image_path)
    lib = library_id or path.stem
    xy: np.ndarray | None
    spots_report: dict[str, Any] = {}
    if isinstance(spots, (str, Path)):
        xy, ids, spots_report = read_spots(spots)
        where_spots: str | Path = spots
    elif spots is not None:
        xy = np.asarray(spots, dtype=np.float64)
        ids = pd.Index([str(i) for i in (spot_ids if spot_ids is not None else range(len(xy)))])
        where_spots = "spots"
    else:
        xy, ids, where_spots = None, pd.Index([]), path
    um, um_source = resolve_resolution(model, um_per_px, xy, where_spots, spot_pitch_um, image_path=path)
    grid_report: dict[str, Any] | None = None
    if xy is None:
        xy, ids, grid_report = tissue_grid(path, um_per_px=um, pitch_um=model.meta["spot_pitch_um"])
    h, w = image_size(path)
    check_spots_in_image(xy, (h, w), where_spots, ids)
    weights = model.meta["weights"]
    if str(weights).startswith(("file:", "sha:")):
        raise ModelError(model.meta.get("path", "model"), f"the model's features came from a weights file ({weights}) "
                                                          "that cannot be rebuilt by name; embed with that file")
    net, preprocess = im.get_backbone(model.meta["backbone"], None if weights == "none" else weights)  # may download
    wfile = im.weights_file(model.meta["backbone"], None if weights == "none" else weights)
    if wfile is not None and not wfile.is_file():
        raise DataError(wfile, "missing weights file: set KERAS_HOME to a Keras cache holding it")
    model.check_backbone(model.meta["backbone"], sha256_file(wfile) if wfile is not None else None)
    win = im.window_px(model.window_um, um, where=str(path))
    image = read_image(path)
    feats = []
    starts = range(0, len(xy), batch_size)
    for start in tqdm(starts, desc=f"predict {path.name}", unit="batch", disable=not progress):
        wins, _ = im.extract_windows(image, xy[start:start + batch_size], win, where=str(path))
        feats.append(im.embed_windows(im.resample_windows(wins, model.meta["input_size"]), net, preprocess,
                                      batch_size=batch_size))
    del image
    cnn = np.vstack(feats)
    out = ad.AnnData(X=np.zeros((len(xy), len(model.genes)), dtype=np.float32),
                     obs=pd.DataFrame({"section": pd.Categorical([lib] * len(xy)), "spot_id": list(ids)},
                                      index=[f"{lib}_{i}" for i in ids]),
                     var=pd.DataFrame(index=pd.Index(model.genes)))
    out.obsm["spatial"] = np.asarray(xy, dtype=np.float64)
    out.obsm["X_cnn"] = cnn
    features.knn_pool(out, "X_cnn", n_neighbors=min(int(model.meta["n_neighbors"]), len(xy)), key_added="X_cnn_knn")
    out.X = model.predict(cnn.astype(np.float64), np.asarray(out.obsm["X_cnn_knn"], dtype=np.float64))
    out.uns["spatial"] = {lib: {"images": {}, "scalefactors": {
        "spot_diameter_fullres": float(model.meta["spot_diameter_um"]) / um, "tissue_hires_scalef": 1.0},
        "metadata": {"image_path": str(path), "image_sha256": sha256_file(path), "image_shape": [int(h), int(w)],
                     "um_per_px": um, "um_per_px_source": um_source}}}
    add_hires_image(out, lib, max_size=hires_size)
    out.uns["prediction"] = {
        "model": model.meta.get("path", ""), "target": model.meta.get("target"), "backbone": model.meta["backbone"],
        "window_um": model.window_um, "window_px": int(win), "um_per_px": um, "um_per_px_source": um_source,
        "spots": "tissue grid" if grid_report else str(where_spots), "grid": grid_report or {},
        "spots_file": spots_report,
        "n_spots": int(len(xy)), "seconds": round(time.perf_counter() - t0, 1),
    }
    return out


def write_maps(pred: ad.AnnData, genes: list[str], folder: str | Path, *, dpi: int = 110) -> list[Path]:
    """One PNG per gene: the predicted value of each spot over the H&E (:func:`stlib.pl.prediction_map`).

    Parameters
    ----------
    pred
        A prediction (:func:`predict_image`).
    genes
        Genes to draw (``var_names`` of ``pred``).
    folder
        Output folder, created if missing.
    dpi
        Resolution of the PNGs.

    Returns
    -------
    list of pathlib.Path
        The files written, ``<folder>/<gene>.png``, in the order of ``genes``.

    Raises
    ------
    DataError
        A gene that ``pred`` does not hold.
    """
    import matplotlib.pyplot as plt

    from stlib import pl

    missing = [g for g in genes if g not in pred.var_names]
    if missing:
        raise DataError("genes", f"the model does not predict {missing[:5]}; e.g. {list(pred.var_names[:5])}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for g in genes:
        fig = pl.prediction_map(pred, [g])
        f = out / f"{g}.png"
        fig.savefig(f, dpi=dpi)
        plt.close(fig)
        files.append(f)
    return files


def match_spots(pred: ad.AnnData, spots_xy: np.ndarray, *, max_distance: float | None = None) -> np.ndarray:
    """For each of ``spots_xy`` (full-resolution x, y), the row of ``pred`` nearest to it, or -1
    when none lies within ``max_distance`` pixels (default: half the diagonal of a grid square,
    0.71 of the prediction's spot pitch).

    Parameters
    ----------
    pred
        A prediction (:func:`predict_image`) with ``obsm["spatial"]``.
    spots_xy
        ``(m, 2)`` centres (x, y) in full-resolution pixels.
    max_distance
        Largest distance for a match, in pixels. Default: ``sqrt(1/2)`` times the grid's pitch
        (``uns["prediction"]["grid"]["pitch_px"]``) or, for a prediction at given spots, times a
        200 um pitch at the image's ``um_per_px``.

    Returns
    -------
    numpy.ndarray
        ``(m,)`` integer rows of ``pred``, ``-1`` where none lies within ``max_distance``.
    """
    from sklearn.neighbors import NearestNeighbors

    info = pred.uns.get("prediction", {})
    if max_distance is None:
        pitch = info.get("grid", {}).get("pitch_px")
        if pitch is None:
            meta = next(iter(pred.uns["spatial"].values()))["metadata"]
            pitch = 200.0 / float(meta["um_per_px"])
        max_distance = float(np.sqrt(0.5)) * float(pitch)
    d, i = NearestNeighbors(n_neighbors=1).fit(np.asarray(pred.obsm["spatial"])).kneighbors(np.asarray(spots_xy))
    return np.where(d[:, 0] <= max_distance, i[:, 0], -1)
