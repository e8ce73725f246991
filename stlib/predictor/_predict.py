"""Expression predicted from an H&E image alone, with a saved model (:mod:`stlib.predictor`).

Given an image (and optionally spot centres), :func:`predict_image` returns an AnnData in
scanpy / squidpy conventions: predicted targets in ``X``, spot centres in ``obsm["spatial"]``,
the image (downscaled) and scale factors in ``uns["spatial"][library_id]``, and what was done
in ``uns["prediction"]``. Without spot centres the spots are a square grid at the model's
spot pitch over the tissue found in the image (:func:`tissue_grid`).

The image's resolution (micrometres per pixel) decides how many pixels the model's physical
window is: given by the user, else measured from the given spots' pitch, else assumed to be the
training images' (and said so in ``uns["prediction"]``). Bad input gets its own message: no
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


def tissue_mask(image_path: str | Path, *, max_size: int = TISSUE_THUMB) -> tuple[np.ndarray, float]:
    """Tissue (True) vs glass on a thumbnail: Li's threshold of the HSV saturation, smoothed.

    H&E stains tissue pink to purple; the glass around it is white or grey (low saturation).
    Li's minimum cross-entropy threshold (scikit-image) keeps the pale stroma and fat that
    Otsu's drops: on the five train and valid sections of ``her2st-demo`` it puts 98-100% of
    the spots the lab marked as under tissue on the mask, Otsu's 97-98%, for a similar area. The mask is closed and opened with a disc and specks smaller than 0.1% of the
    thumbnail are removed. Returns the mask and the thumbnail pixels per full-resolution pixel.

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
    from PIL import Image
    from skimage import filters, morphology

    from stlib.io.images import pil_limits

    path = Path(image_path)
    try:
        with pil_limits(), Image.open(path) as im:
            w, h = im.size
            scale = min(1.0, max_size / max(w, h))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            im.draft("RGB", size)
            thumb = im.convert("RGB").resize(size, Image.Resampling.BILINEAR).convert("HSV")
    except FileNotFoundError:
        raise DataError(path, "missing image file") from None
    except (Image.UnidentifiedImageError, OSError) as exc:
        raise DataError(path, f"corrupt or truncated image ({exc})") from None
    sat = np.asarray(thumb, dtype=np.float64)[..., 1] / 255.0
    if float(sat.max() - sat.min()) < 0.05:
        return np.zeros(sat.shape, dtype=bool), size[0] / w
    thr = max(float(filters.threshold_li(sat)), 0.05)
    mask = sat > thr
    r = max(1, round(min(sat.shape) / 200))
    mask = morphology.opening(morphology.closing(mask, morphology.disk(r)), morphology.disk(r))
    mask = morphology.remove_small_objects(mask, max_size=max(1, int(0.001 * mask.size)))
    return mask, size[0] / w


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
        ``grid`` (columns, rows), ``pitch_px``, ``n_grid`` (grid points), ``n_tissue`` (points kept)
        and ``tissue_fraction`` (share of the thumbnail on tissue).

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
    mask, s = tissue_mask(path)
    cols = np.arange(pitch / 2, w, pitch)
    rows = np.arange(pitch / 2, h, pitch)
    gx, gy = np.meshgrid(np.arange(len(cols)), np.arange(len(rows)))
    xy = np.c_[cols[gx.ravel()], rows[gy.ravel()]]
    mx = np.clip((xy[:, 0] * s).astype(int), 0, mask.shape[1] - 1)
    my = np.clip((xy[:, 1] * s).astype(int), 0, mask.shape[0] - 1)
    keep = mask[my, mx]
    report = {"grid": [int(len(cols)), int(len(rows))], "pitch_px": float(pitch), "n_grid": int(len(xy)),
              "n_tissue": int(keep.sum()), "tissue_fraction": float(mask.mean())}
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


def resolve_resolution(model: ImageModel, um_per_px: float | None, spots_xy: np.ndarray | None,
                       where: str | Path, spot_pitch_um: float | None = None) -> tuple[float, str]:
    """The image's um/px and where it came from; refuses one far from the model's training images.

    From given spots it is measured with ``spot_pitch_um`` (the spots' centre-to-centre distance;
    default the model's): a Visium file (100 um) measured as legacy ST (200 um) would be off by 2x.
    A given ``um_per_px`` with spots is checked against their pitch: beyond
    :data:`~stlib.io._common.UM_PER_PX_TOLERANCE` apart is a :class:`DataError` with both values.

    Parameters
    ----------
    model
        The model (its ``meta["um_per_px_train"]`` and ``meta["spot_pitch_um"]`` are read).
    um_per_px
        The resolution given by the user, or ``None``.
    spots_xy
        ``(n, 2)`` spot centres in full-resolution pixels, or ``None``; at least two are needed to
        measure or check the resolution.
    where
        The file (or name) in error messages.
    spot_pitch_um
        Centre-to-centre distance of the spots in micrometres (default: the model's).

    Returns
    -------
    um_per_px : float
        The resolution.
    source : str
        Where it came from: ``"given"``, ``"measured from the spots' <pitch> um pitch"`` or
        ``"assumed: the training images' resolution"``.

    Raises
    ------
    DataError
        No way to know the resolution, a non-positive or non-finite one, or a given one that does
        not match the spots' pitch.
    ModelError
        A resolution more than :data:`MAX_RESOLUTION_RATIO` times finer or coarser than the training
        images'.
    """
    from stlib.io import section_geometry

    train = model.meta.get("um_per_px_train")
    if um_per_px is not None:
        um, source = float(um_per_px), "given"
        if spots_xy is not None and len(spots_xy) >= 2 and np.isfinite(um) and um > 0:
            pitch = float(spot_pitch_um or model.meta["spot_pitch_um"])
            section_geometry(spots_xy, um_per_px=um, spot_pitch_um=pitch, where=where)
    elif spots_xy is not None and len(spots_xy) >= 2:
        pitch = float(spot_pitch_um or model.meta["spot_pitch_um"])
        um = section_geometry(spots_xy, spot_pitch_um=pitch, where=where)["um_per_px"]
        source = f"measured from the spots' {pitch:g} um pitch"
    elif train is not None:
        um, source = float(train), "assumed: the training images' resolution"
    else:
        raise DataError(where, "the image's resolution is unknown: give um_per_px")
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
    um_per_px: float | None = None,
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
        The image's resolution; see the module docstring for the default.
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
    um, um_source = resolve_resolution(model, um_per_px, xy, where_spots, spot_pitch_um)
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
