"""The HEST-Benchmark linear probe on frozen CNN features.

HEST-Benchmark (Jaume et al., 2024) scores a foundation model by a ridge regression on its
frozen patch embeddings: features standardised, reduced by PCA to 256 components fitted on the
training data, then ridge. Here the penalty is chosen by cross-validation **on the train
sections only**, grouped by section (each fold holds out whole sections: one section per fold up
to :data:`MAX_FOLDS` train sections, then :data:`MAX_FOLDS` folds of several sections, so that
the cost grows with the spots, not with their square), so neither the valid nor the test spots
take part in any choice; every step of the pipeline (scaler, PCA, ridge) is refitted inside each
fold. The chosen penalty is then refitted on all train spots.

The probe works on the full backbone features (``obsm["X_cnn"]``, 1280 dimensions for
MobileNetV2; ``obsm["X_cnn_knn"]`` for the KNN-pooled ones), not on the 32 PCA components of
the report's models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_features, check_matrix, gene_index

#: Log-spaced ridge penalties, 10^-1 ... 10^6 every half decade.
PROBE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-1, 6, 15))
N_COMPONENTS = 256
#: At most this many cross-validation folds (scikit-learn's ``GroupKFold`` default): with more train
#: sections, each fold holds out several whole sections. Leave-one-section-out on the 38 train
#: sections of He et al. would refit the scaler, the PCA and every ridge 38 times.
MAX_FOLDS = 5

__all__ = ["MAX_FOLDS", "N_COMPONENTS", "PROBE_ALPHAS", "fit_probe", "grouped_cv_mse"]


def _reduce(X_train: np.ndarray, n_components: int, seed: int) -> tuple[StandardScaler, PCA]:
    scaler = StandardScaler().fit(X_train)
    k = min(n_components, X_train.shape[0] - 1, X_train.shape[1])
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(scaler.transform(X_train))
    return scaler, pca


def _ridge_path(Z: np.ndarray, Y: np.ndarray, Zeval: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """Predictions ``(n_alpha, n_eval, n_genes)`` of ridge (intercept fitted) for every penalty."""
    out = np.empty((len(alphas), Zeval.shape[0], Y.shape[1]))
    for k, a in enumerate(alphas):
        out[k] = Ridge(alpha=a).fit(Z, Y).predict(Zeval).reshape(len(Zeval), -1)
    return out


def grouped_cv_mse(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alphas: Sequence[float], *,
                   n_components: int = N_COMPONENTS, seed: int = 0, max_folds: int = MAX_FOLDS) -> np.ndarray:
    """Cross-validated MSE ``(n_alpha, n_genes)``, folds of whole groups (sections; one per fold
    up to ``max_folds`` groups, else ``max_folds`` folds), every step refitted on each fold's
    training part; the MSE is pooled over all held-out spots.

    Parameters
    ----------
    X
        ``(n_spots, n_features)`` features.
    Y
        ``(n_spots, n_genes)`` targets.
    groups
        ``(n_spots,)`` group (section) of each spot; at least two groups.
    alphas
        Ridge penalties, one row of the output each.
    n_components
        PCA components (capped by the spots and features of each fold's training part).
    seed
        Seed of the PCA.
    max_folds
        The most folds (:data:`MAX_FOLDS`).

    Returns
    -------
    numpy.ndarray
        ``(n_alpha, n_genes)`` mean squared error over all spots, each predicted by the fold that
        held it out.
    """
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DataError("groups", f"grouped cross-validation needs at least 2 train sections, got {n_groups}")
    sse = np.zeros((len(alphas), Y.shape[1]))
    for fit_idx, held_idx in GroupKFold(n_splits=min(n_groups, int(max_folds))).split(X, Y, groups):
        scaler, pca = _reduce(X[fit_idx], n_components, seed)
        Z, Zh = (pca.transform(scaler.transform(X[i])) for i in (fit_idx, held_idx))
        sse += ((_ridge_path(Z, Y[fit_idx], Zh, alphas) - Y[held_idx][None]) ** 2).sum(axis=1)
    return sse / X.shape[0]


def fit_probe(
    X: Mapping[str, np.ndarray],
    Y_train: np.ndarray,
    groups_train: Sequence[str] | np.ndarray,
    *,
    alphas: Sequence[float] = PROBE_ALPHAS,
    n_components: int = N_COMPONENTS,
    per_gene: bool = True,
    genes: Sequence[str] | None = None,
    name: str = "hest_probe",
    seed: int = 0,
) -> ModelResult:
    """Fit the probe on the train spots and predict every split of ``X``.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` backbone features; needs ``"train"``.
    Y_train
        ``(n_train, n_genes)`` train targets (valid and test targets are never used).
    groups_train
        Section of each train spot: the cross-validation folds.
    alphas
        Ridge penalty grid (default :data:`PROBE_ALPHAS`).
    n_components
        PCA components (256 in HEST; capped by the number of train spots and features).
    per_gene
        Choose the penalty per gene (default); ``False`` chooses one penalty for all genes
        (lowest mean CV MSE), as HEST's fixed-penalty probe does in spirit.
    genes
        Gene names (index of ``per_gene``); default ``"0", "1", ...``.
    name
        Name of the returned result.
    seed
        Seed of the PCA.

    Returns
    -------
    ModelResult
        ``predictions`` for every split of ``X``; ``per_gene`` with the chosen ``alpha`` and
        ``cv_mse_<alpha>`` for every penalty; ``settings`` with the grid, the PCA's components and
        explained variance, and the number of genes per chosen penalty. Ties go to the larger penalty.
    """
    X = check_features(X)
    Xtr = X["train"]
    Ytr = check_matrix(Y_train, "Y_train", n_rows=Xtr.shape[0])
    groups = np.asarray(groups_train).astype(str)
    if groups.shape != (Xtr.shape[0],):
        raise DataError("groups_train", f"{groups.shape[0]} groups for {Xtr.shape[0]} train spots")
    grid = tuple(sorted(float(a) for a in alphas))
    if not grid or grid[0] <= 0:
        raise DataError("alphas", f"ridge penalties must be > 0, got {grid}")
    index = gene_index(genes, Ytr.shape[1])

    cv = grouped_cv_mse(Xtr, Ytr, groups, grid, n_components=n_components, seed=seed)
    if per_gene:  # ties -> the larger penalty (argmin over the reversed grid)
        chosen = len(grid) - 1 - np.argmin(cv[::-1], axis=0)
    else:
        chosen = np.full(Ytr.shape[1], len(grid) - 1 - int(np.argmin(cv.mean(axis=1)[::-1])))
    scaler, pca = _reduce(Xtr, n_components, seed)
    Z = {s: pca.transform(scaler.transform(np.asarray(a, dtype=np.float64))) for s, a in X.items()}
    preds = {s: np.zeros((z.shape[0], Ytr.shape[1])) for s, z in Z.items()}
    for k in np.unique(chosen):
        g = np.flatnonzero(chosen == k)
        model = Ridge(alpha=grid[k]).fit(Z["train"], Ytr[:, g])
        for s, z in Z.items():
            preds[s][:, g] = model.predict(z).reshape(len(z), -1)
    per_gene_df = pd.DataFrame({"alpha": np.asarray(grid)[chosen]}, index=index)
    for k, a in enumerate(grid):
        per_gene_df[f"cv_mse_{a:g}"] = cv[k]
    settings: dict[str, Any] = {
        "recipe": "HEST-Benchmark probe: StandardScaler + PCA fitted on train, ridge",
        "n_components": int(pca.n_components_),
        "explained_variance": float(pca.explained_variance_ratio_.sum()),
        "alphas": list(grid),
        "selection": (f"penalty chosen {'per gene' if per_gene else 'for all genes'} by {len(np.unique(groups))}-fold "
                      "cross-validation on the train sections grouped by section (scaler and PCA refitted in "
                      "each fold; ties -> larger penalty), then refitted on all train spots"),
        "n_genes_per_alpha": {f"{a:g}": int((chosen == k).sum()) for k, a in enumerate(grid)},
        "n_features": int(Xtr.shape[1]),
        "leaks": [],
    }
    return ModelResult(name=name, predictions=preds, settings=settings, per_gene=per_gene_df)
