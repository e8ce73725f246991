"""Readable names of the book's models, for every figure (one mapping)."""

from __future__ import annotations

from collections.abc import Iterable

#: Model id -> the name a figure shows.
MODEL_LABELS: dict[str, str] = {
    "depth_only": "depth only (measured counts)",
    "train_mean": "train mean",
    "hest_probe": "HEST probe",
    "knn_hest_probe": "HEST probe, KNN-pooled",
    "ols": "OLS",
    "lasso": "Lasso",
    "ridge": "Ridge",
    "knn_ols": "OLS, KNN-pooled",
    "knn_lasso": "Lasso, KNN-pooled",
    "knn_ridge": "Ridge, KNN-pooled",
    "poisson": "Poisson GLM",
    "nb_alpha1": "NB GLM, alpha 1",
    "nb_apriori": "NB GLM, a-priori alpha",
    "knn_poisson": "Poisson GLM, KNN-pooled",
    "knn_nb_alpha1": "NB GLM, alpha 1, KNN-pooled",
    "knn_nb_apriori": "NB GLM, a-priori alpha, KNN-pooled",
    "mlp": "network (lr on valid)",
    "mlp_lr0.001": "network (lr 1e-3, authors')",
    "gnn_paper": "GNN, report's configuration",
    "gnn": "GraphSAGE GNN (settings on valid)",
    "gnn_authors": "authors' GNN code",
}


def model_label(model: str) -> str:
    """The readable name of a model id (:data:`MODEL_LABELS`); an unknown id is returned as is.

    Parameters
    ----------
    model
        A model id of the book (e.g. ``"knn_ridge"``).

    Returns
    -------
    str
        Its name in figures.
    """
    return MODEL_LABELS.get(model, model)


def model_labels(models: Iterable[str]) -> list[str]:
    """:func:`model_label` of each model, in order.

    Parameters
    ----------
    models
        Model ids.

    Returns
    -------
    list of str
        Their names in figures.
    """
    return [model_label(m) for m in models]


#: Target transform (``uns["target"]["transform"]``) -> the name a colour bar shows.
TARGET_LABELS: dict[str, str] = {
    "paper": "log-normalised\n(authors')",
    "log1p": "log1p of counts",
    "normalize_log1p": "log1p of counts per 10,000",
}


def target_label(adata) -> str:
    """The readable name of the target an AnnData holds (:data:`TARGET_LABELS`), for colour bars.

    Parameters
    ----------
    adata
        Targets with ``uns["target"]["transform"]`` (chapter 1's); without it, ``"target"``.

    Returns
    -------
    str
        The transform's name in figures (an unknown transform's id as is).
    """
    transform = (adata.uns.get("target") or {}).get("transform")
    return "target" if transform is None else TARGET_LABELS.get(str(transform), str(transform))
