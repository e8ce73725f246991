"""A trained image-to-expression model, saved to one folder and loaded back.

The model predicts the target genes of a spot from its H&E alone: CNN features of a physical
window (:mod:`stlib.im`), PCA to 32 fitted on train, the same features averaged over the spot's
nearest spots and PCA 32 (the sound protocol's image features), standardised, then one ridge
regression for all genes whose penalty is chosen on valid (the lowest mean squared error over
genes, by default). Nothing is fitted on test.

A saved model is a folder::

    model.json    format version, genes, backbone and its weights' sha256, window (um), the
                  training resolution and spot geometry, the penalty, the target, library
                  versions, the hashes of the inputs (images, split file), scores on valid
    arrays.npz    PCA means and components, scaler, ridge coefficients (no pickle)

:func:`load_model` refuses a folder whose format version, arrays or genes do not match
(:class:`ModelError`), and :meth:`ImageModel.check_backbone` a backbone whose weights differ
from the ones the model was trained on.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stlib._utils import sha256_file
from stlib.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: Version of the folder layout; a model of another version is refused.
FORMAT_VERSION = 1
MODEL_FILE, ARRAYS_FILE = "model.json", "arrays.npz"
ARRAY_KEYS = ("img_mean", "img_components", "knn_mean", "knn_components", "scale_mean", "scale_std",
              "coef", "intercept")
DEFAULT_ALPHAS = tuple(10.0 ** k for k in range(0, 8))


class ModelError(DataError):
    """A saved model that cannot be used: another format version, a different backbone or
    weights, genes that do not match, missing or damaged files.

    Parameters
    ----------
    where
        The model folder or file (or ``"model"``) the problem is in.
    problem
        What is wrong, in plain words.
    """


def genes_digest(genes: list[str]) -> str:
    """sha256 of the gene ids in order (the model's output columns).

    Parameters
    ----------
    genes
        Gene ids, in the model's column order.

    Returns
    -------
    str
        Hexadecimal sha256 of the ids joined by newlines.
    """
    return hashlib.sha256("\n".join(genes).encode()).hexdigest()


@dataclass
class ImageModel:
    """A fitted model: its description (``meta``, written to ``model.json``) and its arrays.

    Parameters
    ----------
    meta
        The description made by :func:`fit_image_model`: ``genes``, ``backbone``, ``weights``,
        ``weights_sha256``, ``input_size``, ``window_um``, ``n_neighbors``, ``spot_pitch_um``,
        the penalty, valid scores, versions and input hashes; plus ``path`` once loaded
        (:func:`load_model`).
    arrays
        The fitted arrays keyed by :data:`ARRAY_KEYS`: means and components of the image PCA and of
        the pooled-image PCA, the standardisation's means and standard deviations, and the ridge
        ``coef`` (``(2 * n_comps, n_genes)``) and ``intercept`` (``(n_genes,)``).
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def genes(self) -> list[str]:
        return list(self.meta["genes"])

    @property
    def window_um(self) -> float:
        return float(self.meta["window_um"])

    def transform(self, cnn: np.ndarray, pooled: np.ndarray) -> np.ndarray:
        """Model inputs (standardised image and pooled-image PCA) from raw CNN features.

        Parameters
        ----------
        cnn
            ``(n, d)`` raw CNN features of the spots' windows.
        pooled
            ``(n, d)`` the same features averaged over each spot's nearest spots
            (:func:`stlib.tl.features.knn_pool`).

        Returns
        -------
        numpy.ndarray
            ``(n, 2 * n_comps)``: the image PCA then the pooled-image PCA, standardised with the
            training spots' means and standard deviations.
        """
        a = self.arrays
        z = np.hstack([(cnn - a["img_mean"]) @ a["img_components"].T, (pooled - a["knn_mean"]) @ a["knn_components"].T])
        return (z - a["scale_mean"]) / a["scale_std"]

    def predict(self, cnn: np.ndarray, pooled: np.ndarray) -> np.ndarray:
        """``(n, n_genes)`` predicted targets from raw and KNN-pooled CNN features.

        Parameters
        ----------
        cnn, pooled
            ``(n, d)`` raw and KNN-pooled CNN features, as in :meth:`transform`; ``d`` must be the
            number of features the model was fitted on.

        Returns
        -------
        numpy.ndarray
            ``(n, n_genes)`` float32 predicted targets, columns in the order of ``genes``.

        Raises
        ------
        ModelError
            Features that are not 2-D or have another number of columns (another backbone?).
        """
        d = self.arrays["img_mean"].shape[0]
        for name, f in (("CNN features", cnn), ("pooled CNN features", pooled)):
            if f.ndim != 2 or f.shape[1] != d:
                raise ModelError(self.meta.get("path", "model"),
                                 f"{name} have shape {f.shape}; the model takes {d} features per spot "
                                 f"({self.meta['backbone']}): another backbone?")
        return (self.transform(cnn, pooled) @ self.arrays["coef"] + self.arrays["intercept"]).astype(np.float32)

    def best_genes(self, n: int = 3) -> list[str]:
        """The ``n`` genes best predicted on valid (Pearson), for default maps.

        Parameters
        ----------
        n
            Number of genes.

        Returns
        -------
        list of str
            Gene ids by decreasing valid Pearson correlation (genes without one last, ties in model
            order); the model's first ``n`` genes when no per-gene scores are recorded.
        """
        r = np.array([-np.inf if v is None else v for v in self.meta.get("valid_pearson_per_gene", [])] or
                     [0.0] * len(self.genes), dtype=float)
        return [self.genes[i] for i in np.argsort(-r, kind="stable")[:n]]

    def check_backbone(self, backbone: str, weights_sha256: str | None) -> None:
        """Refuse a backbone (name, weights file checksum) other than the model's.

        Parameters
        ----------
        backbone
            Name of the backbone that will embed the images (e.g. ``"mobilenet_v2"``).
        weights_sha256
            sha256 of its weights file (``None``: none); compared only when the model recorded one.

        Raises
        ------
        ModelError
            Another backbone, or weights of another checksum.
        """
        want, want_sha = self.meta["backbone"], self.meta.get("weights_sha256")
        where = self.meta.get("path", "model")
        if backbone != want:
            raise ModelError(where, f"the model was trained on {want} features, not {backbone}")
        if want_sha and weights_sha256 != want_sha:
            raise ModelError(where, f"the {backbone} weights differ from the model's (sha256 {str(weights_sha256)[:12]} "
                                    f"vs {want_sha[:12]}): the features would not be the ones it was trained on")


def fit_image_model(
    targets: AnnData,
    *,
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
    n_comps: int | None = None,
    n_neighbors: int | None = None,
    select_on: str = "mse",
    seed: int = 0,
) -> tuple[ImageModel, dict[str, Any]]:
    """Fit the image-only model on the train spots of ``targets``, the penalty chosen on valid.

    Reads ``obsm["X_cnn"]`` (chapter 2's raw CNN features), ``obsm["spatial"]``,
    ``obs["section", "split"]``, ``X`` (the targets) and ``uns["cnn_features"]`` (backbone,
    window). The penalty minimises the valid mean squared error over genes (``select_on="mse"``,
    RidgeCV's criterion) or maximises the valid mean Pearson (``"pearson"``). Pearson ignores
    the predictions' scale, so it can keep rising as the penalty shrinks every prediction to
    the gene's mean; MSE keeps predictions on the target's scale, which maps need.
    ``n_comps`` and ``n_neighbors`` default to the run's own (``uns["X_img_pca"]["n_comps"]``,
    ``uns["X_cnn_knn"]["n_neighbors"]``; 32 and 15 when absent).
    Returns the model and ``{"grid": valid Pearson and MSE per penalty}``.

    Parameters
    ----------
    targets
        A run's targets with the fields above, train and valid spots in ``obs["split"]`` and a
        physical window (``uns["cnn_features"]["window_um"]``); not modified (a copy is used).
    alphas
        Ridge penalties tried.
    n_comps
        Components of each of the two PCAs (default: the run's, else 32).
    n_neighbors
        Spots averaged per spot for the pooled features (default: the run's, else 15).
    select_on
        ``"mse"`` (default) or ``"pearson"``: the valid criterion that picks the penalty.
    seed
        ``random_state`` of the PCAs, recorded in the model.

    Returns
    -------
    model : ImageModel
        The fitted model, for :func:`save_model`.
    info : dict
        ``{"grid": DataFrame}``: per penalty, ``alpha``, ``valid pearson``, ``valid mse`` and
        ``chosen``.

    Raises
    ------
    ValueError
        Unknown ``select_on``.
    DataError
        No CNN features, coordinates, split or train / valid spots; train sections of different spot
        geometries; CNN features cut in pixels (``window_um`` missing).
    """
    if select_on not in ("mse", "pearson"):
        raise ValueError(f"select_on must be 'mse' or 'pearson', got {select_on!r}")
    import pandas as pd
    from sklearn.linear_model import Ridge

    from stlib import get
    from stlib.tl import features
    from stlib.metrics import per_gene_metrics

    for key in ("X_cnn", "spatial"):
        if key not in targets.obsm:
            raise DataError("targets", f"no obsm[{key!r}]: run chapter 2 (stlib.im.cnn_features) first")
    if "split" not in targets.obs:
        raise DataError("targets", "no obs['split']: the image model is fitted on train, its penalty chosen on valid")
    missing = [s for s in ("train", "valid") if s not in get.split_masks(targets)]
    if missing:
        raise DataError("targets", f"no {' and no '.join(missing)} spots: the image model is fitted on train, its "
                                   "penalty chosen on valid (see the data set's split file)")
    n_comps = int(n_comps or targets.uns.get("X_img_pca", {}).get("n_comps", 32))
    n_neighbors = int(n_neighbors or targets.uns.get("X_cnn_knn", {}).get("n_neighbors", 15))
    a = targets.copy()
    features.pca_fit_transform(a, "X_cnn", n_comps=n_comps, fit_on="train", key_added="X_img_pca", seed=seed)
    features.knn_pool(a, "X_cnn", n_neighbors=n_neighbors, key_added="X_cnn_knn")
    features.pca_fit_transform(a, "X_cnn_knn", n_comps=n_comps, fit_on="train", key_added="X_img_knn_pca", seed=seed)
    Z = np.hstack([a.obsm["X_img_pca"], a.obsm["X_img_knn_pca"]]).astype(np.float64)
    masks = get.split_masks(a)
    Y = np.asarray(a.X.toarray() if hasattr(a.X, "toarray") else a.X, dtype=np.float64)
    mu, sd = Z[masks["train"]].mean(0), Z[masks["train"]].std(0)
    sd[sd == 0] = 1.0
    Zs = (Z - mu) / sd
    rows = []
    for alpha in alphas:
        r = Ridge(alpha=alpha).fit(Zs[masks["train"]], Y[masks["train"]])
        m = per_gene_metrics(Y[masks["valid"]], r.predict(Zs[masks["valid"]]))
        rows.append({"alpha": alpha, "valid pearson": float(np.nanmean(m["pearson"])),
                     "valid mse": float(np.nanmean(m["mse"]))})
    grid = pd.DataFrame(rows)
    best = float(grid.loc[grid["valid mse"].idxmin() if select_on == "mse" else grid["valid pearson"].idxmax(), "alpha"])
    grid["chosen"] = grid["alpha"] == best
    ridge = Ridge(alpha=best).fit(Zs[masks["train"]], Y[masks["train"]])
    per_gene = per_gene_metrics(Y[masks["valid"]], ridge.predict(Zs[masks["valid"]]))["pearson"].to_numpy()
    info = dict(a.uns.get("cnn_features", {}))
    spatial = a.uns.get("spatial", {})
    train_secs = [str(s) for s in get.sections(a, masks["train"])]
    ums = [spatial[s]["metadata"].get("um_per_px") for s in train_secs if s in spatial]
    geo = {(float(spatial[s]["metadata"].get("spot_pitch_um", 200.0)),
            float(spatial[s]["metadata"].get("spot_diameter_um", 100.0))) for s in train_secs if s in spatial}
    if len(geo) > 1:
        raise DataError("targets", f"the train sections have different spot geometries {sorted(geo)}: one model "
                                   "predicts spots of one size and pitch")
    pitch_um, diameter_um = geo.pop() if geo else (200.0, 100.0)
    genes = [str(g) for g in a.var_names]
    from stlib.im import weights_file

    wfile = weights_file(str(info.get("backbone", "mobilenet_v2")), info.get("weights"))
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "ridge on image PCA + KNN-pooled image PCA",
        "genes": genes,
        "genes_sha256": genes_digest(genes),
        "target": dict(a.uns.get("target", {})) or "the run's targets (targets.h5ad X)",
        "backbone": str(info.get("backbone", "mobilenet_v2")),
        "weights": str(info.get("weights", "imagenet")),
        "weights_sha256": sha256_file(wfile) if wfile is not None and Path(wfile).is_file() else None,
        "input_size": int(info.get("size", 224)),
        "window_um": info.get("window_um"),
        "um_per_px_train": float(np.median([u for u in ums if u is not None])) if any(u is not None for u in ums) else None,
        "spot_pitch_um": pitch_um,
        "spot_diameter_um": diameter_um,
        "n_comps": int(n_comps),
        "n_neighbors": int(n_neighbors),
        "alpha": best,
        "alphas": [float(x) for x in alphas],
        "alpha_chosen_on": f"valid mean {select_on}",
        "valid_pearson": float(grid.loc[grid["chosen"], "valid pearson"].iloc[0]),
        "valid_pearson_per_gene": [None if not np.isfinite(v) else round(float(v), 4) for v in per_gene],
        "fitted_on": {"train_sections": train_secs, "n_train_spots": int(masks["train"].sum()),
                      "penalty_chosen_on": [str(s) for s in get.sections(a, masks["valid"])]},
        "inputs": {"dataset": dict(a.uns.get("dataset", {})),
                   "images_sha256": {s: spatial[s]["metadata"].get("image_sha256") for s in train_secs if s in spatial}},
        "versions": _versions(),
        "seed": int(seed),
    }
    if meta["window_um"] is None:
        raise DataError("targets", "the CNN features were cut in pixels (window_um=None): a saved model needs a "
                                   "physical window to embed images of other resolutions; rerun chapter 2 with window_um")
    arrays = {
        "img_mean": a.uns["X_img_pca"]["mean"].astype(np.float64),
        "img_components": a.uns["X_img_pca"]["components"].astype(np.float64),
        "knn_mean": a.uns["X_img_knn_pca"]["mean"].astype(np.float64),
        "knn_components": a.uns["X_img_knn_pca"]["components"].astype(np.float64),
        "scale_mean": mu, "scale_std": sd,
        "coef": ridge.coef_.T.astype(np.float64), "intercept": np.atleast_1d(ridge.intercept_).astype(np.float64),
    }
    return ImageModel(meta, arrays), {"grid": grid}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("stlib", "numpy", "scikit-learn", "tensorflow-cpu", "keras", "anndata", "scanpy", "pillow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def save_model(model: ImageModel, folder: str | Path) -> Path:
    """Write ``model.json`` and ``arrays.npz`` into ``folder`` (created); return the folder.

    Parameters
    ----------
    model
        The model to write; ``model.json`` gets its ``meta`` without ``path`` and with the arrays'
        sha256 (``arrays_sha256``).
    folder
        The destination, created with its parents if missing; the two files are overwritten.

    Returns
    -------
    pathlib.Path
        ``folder``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in model.meta.items() if k != "path"}
    np.savez(out / ARRAYS_FILE, **{k: model.arrays[k] for k in ARRAY_KEYS})
    meta["arrays_sha256"] = sha256_file(out / ARRAYS_FILE)
    (out / MODEL_FILE).write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return out


def load_model(folder: str | Path, *, genes: list[str] | None = None) -> ImageModel:
    """Read a saved model, checked: format version, file integrity, arrays against genes.

    ``genes``: when given, the model must predict exactly these gene ids, in this order.

    Parameters
    ----------
    folder
        A folder written by :func:`save_model`.
    genes
        When given, the gene ids the model must predict, in this order.

    Returns
    -------
    ImageModel
        The model, with ``meta["path"]`` set to ``folder``.

    Raises
    ------
    ModelError
        A missing file, not a model description, another format version, arrays that differ from
        the recorded checksum or are incomplete, or gene ids that do not match the coefficients or
        ``genes``.
    """
    where = Path(folder)
    mfile, afile = where / MODEL_FILE, where / ARRAYS_FILE
    for f in (mfile, afile):
        if not f.is_file():
            raise ModelError(f, "missing file: is this a folder written by stlib.predictor.save_model?")
    try:
        meta = json.loads(mfile.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(mfile, f"not a model description ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(mfile, "not a model description (a JSON object is expected)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(mfile, f"format version {version!r}; this stlib reads version {FORMAT_VERSION}")
    if meta.get("arrays_sha256") and sha256_file(afile) != meta["arrays_sha256"]:
        raise ModelError(afile, "checksum mismatch: the arrays are not the ones saved with model.json")
    try:
        with np.load(afile, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ARRAY_KEYS}
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(afile, f"damaged or incomplete arrays ({exc})") from None
    g = list(meta.get("genes", []))
    if genes_digest(g) != meta.get("genes_sha256") or arrays["coef"].shape[1] != len(g):
        raise ModelError(mfile, f"the gene ids ({len(g)}) do not match the coefficients "
                                f"({arrays['coef'].shape[1]} columns)")
    if genes is not None and list(genes) != g:
        diff = sorted(set(genes) ^ set(g))[:5]
        raise ModelError(mfile, f"the model predicts other genes than asked ({len(g)} vs {len(genes)}; e.g. {diff})"
                         if diff else "the model predicts the same genes in another order")
    meta["path"] = str(where)
    return ImageModel(meta, arrays)


def describe(model: ImageModel) -> dict[str, Any]:
    """The model's description without the gene list (for printing).

    Parameters
    ----------
    model
        A fitted or loaded model.

    Returns
    -------
    dict
        A copy of ``meta`` without ``genes`` and ``path`` (``valid_pearson_per_gene`` is kept).
    """
    return {k: v for k, v in asdict(model)["meta"].items() if k not in ("genes", "path")}
