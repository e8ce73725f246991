"""The paper's "Simple Neural Network": a small fully connected Keras network.

As the authors' code built it (simple_neural_network notebook): input (image PCA 32 + graph
SVD 32 = 64 features) -> Dense(64, relu) -> Dropout(0.5) -> Dense(64, relu) -> Dropout(0.5)
-> Dense(n_genes, linear): **two** hidden layers, trained with Adam on the MSE (metric MAE),
batch 32, early stopping on the validation loss (patience 30, min delta 1e-8, best weights
restored). The authors set the learning rate to 1e-3 by hand; :func:`fit_mlp_per_lr` fits one
model per learning rate and :func:`choose_lr` keeps the one with the lowest validation loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_features, check_matrix, gene_index
from stlib._compat import FLOAT, import_tf
from stlib.models._keras import label_history, loss_key, predict, set_seed, train


PAPER_LR: float = 1e-3
"""The learning rate the authors set by hand."""


def _architecture(n_features: int, hidden: int, dropout: float, n_genes: int) -> list[str]:
    return [
        f"input({n_features})", f"dense({hidden}, relu)", f"dropout({dropout})",
        f"dense({hidden}, relu)", f"dropout({dropout})", f"dense({n_genes}, linear)",
    ]


def build_mlp(n_features: int, n_genes: int, *, hidden: int = 64, dropout: float = 0.5, lr: float = 1e-3) -> Any:
    """Build and compile the authors' MLP (two hidden layers; Adam(lr), loss MSE, metric MAE).

    Weights follow the current seed.

    Parameters
    ----------
    n_features
        Width of the input.
    n_genes
        Width of the linear output layer (one unit per gene).
    hidden
        Units of each of the two hidden ReLU layers.
    dropout
        Dropout rate after each hidden layer (fraction dropped).
    lr
        Adam learning rate.

    Returns
    -------
    keras.Sequential
        The compiled, untrained model.
    """
    _, keras = import_tf()
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        layers.Dense(hidden, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(hidden, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(n_genes, activation="linear"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse", metrics=["mae"])
    return model


def fit_mlp_per_lr(
    X: dict[str, np.ndarray],
    Y_train: np.ndarray,
    Y_valid: np.ndarray,
    *,
    learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    epochs: int = 1000,
    patience: int = 30,
    min_delta: float = 1e-8,
    batch_size: int = 32,
    dropout: float = 0.5,
    hidden: int = 64,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    name: str = "mlp",
    scale: bool = True,
) -> dict[float, ModelResult]:
    """Fit the authors' simple neural network once per learning rate; return every fit.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features; must hold ``"train"`` and ``"valid"``.
        Every split in ``X`` gets predictions.
    Y_train, Y_valid
        ``(n_spots, n_genes)`` targets of the train and valid spots (no test targets are ever passed).
    learning_rates
        Adam learning rates tried; each gets its own model, built from the same seed.
    epochs, patience, min_delta
        At most ``epochs`` passes; early stopping on ``val_loss`` (patience ``patience``, improvement
        larger than ``min_delta``) with the best weights restored (see :func:`stlib.models._keras.train`).
    scale
        Standardise features on train (default); ``False``: raw features (the authors' code).
    batch_size, dropout, hidden
        Mini-batch size, dropout rate (fraction dropped), width of the two hidden layers.
    seed
        Seed set (with op determinism) before building each model, and seed of the epoch shuffling:
        reruns give identical predictions, and each learning rate's model does not depend on the others.
    genes
        Gene names (only used to check the number of target columns).
    name
        Name of the returned :class:`ModelResult`.

    Returns
    -------
    dict
        learning rate -> :class:`ModelResult` (named ``name``) with ``predictions`` for every split of
        ``X``, ``history`` (tidy ``lr, epoch, loss, val_loss, mae, val_mae``) and ``settings``
        (``lr``, ``best_epoch``, ``best_val_loss``, ``epochs_run``, ``stopped_early``, ``architecture``, ...).
    """
    Xs = check_features(X, need=("train", "valid"))
    if not learning_rates:
        raise DataError("fit_mlp", "learning_rates is empty")
    n_features = Xs["train"].shape[1]
    Ytr = check_matrix(Y_train, "Y_train", n_rows=Xs["train"].shape[0])
    n_genes = Ytr.shape[1]
    Yva = check_matrix(Y_valid, "Y_valid", n_rows=Xs["valid"].shape[0], n_cols=n_genes)
    if genes is not None:
        gene_index(genes, n_genes)

    if scale:
        scaler = StandardScaler().fit(Xs["train"])
        Z = {s: scaler.transform(v).astype(FLOAT) for s, v in Xs.items()}
    else:
        Z = {s: v.astype(FLOAT) for s, v in Xs.items()}
    ytr, yva = Ytr.astype(FLOAT), Yva.astype(FLOAT)

    out: dict[float, ModelResult] = {}
    for lr in [float(lr) for lr in learning_rates]:
        set_seed(seed)
        model = build_mlp(n_features, n_genes, hidden=hidden, dropout=dropout, lr=lr)
        hist, summary = train(model, Z["train"], ytr, Z["valid"], yva, epochs=epochs, batch_size=batch_size,
                              patience=patience, min_delta=min_delta, seed=seed)
        settings: dict[str, Any] = {
            "lr": lr, **summary,
            "architecture": _architecture(n_features, hidden, dropout, n_genes),
            "optimizer": "adam", "loss": "mse", "batch_size": int(batch_size), "max_epochs": int(epochs),
            "patience": int(patience), "min_delta": float(min_delta),
            "feature_scaling": "standardised on train" if scale else "none (the authors' code)",
            "seed": int(seed),
        }
        out[lr] = ModelResult(name=name, predictions={s: predict(model, z, n_genes) for s, z in Z.items()},
                              settings=settings, history=label_history(hist, lr=lr))
    return out


def choose_lr(fits: dict[float, ModelResult], name: str = "mlp") -> ModelResult:
    """The fit with the lowest best valid loss (ties -> the smaller learning rate).

    Its ``settings`` gain ``learning_rates`` and, per learning rate (lists aligned with it),
    ``best_epoch``, ``best_val_loss``, ``epochs_run`` and ``stopped_early``; ``history``
    holds every learning rate's curve.

    Parameters
    ----------
    fits
        Learning rate -> fit, as :func:`fit_mlp_per_lr` returns them (each with
        ``settings["best_val_loss"]``, ``best_epoch``, ``epochs_run``, ``stopped_early`` and a
        ``history``); a non-finite best valid loss ranks last.
    name
        Name of the returned result.

    Returns
    -------
    ModelResult
        The chosen fit's ``predictions``, its ``settings`` (``lr`` the chosen rate, plus the lists
        above and ``lr_rule``) and the ``history`` of every learning rate, concatenated.
    """
    if not fits:
        raise DataError("choose_lr", "no fit to choose from")
    lrs = sorted(fits)
    best = min(lrs, key=lambda lr: (loss_key(fits[lr].settings["best_val_loss"]), lr))
    chosen = fits[best]
    settings = {**chosen.settings, "lr": best, "learning_rates": lrs,
                **{k: [fits[lr].settings[k] for lr in lrs] for k in ("best_epoch", "best_val_loss", "epochs_run",
                                                                     "stopped_early")},
                "lr_rule": ("chosen on valid (lowest best valid loss)" if len(lrs) > 1 else
                            "fixed: the only learning rate given")}
    return ModelResult(name=name, predictions=chosen.predictions, settings=settings,
                       history=pd.concat([fits[lr].history for lr in lrs], ignore_index=True))


def fit_mlp(
    X: dict[str, np.ndarray],
    Y_train: np.ndarray,
    Y_valid: np.ndarray,
    *,
    learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    name: str = "mlp",
    **kwargs: Any,
) -> ModelResult:
    """:func:`fit_mlp_per_lr` then :func:`choose_lr`: the learning rate is chosen on valid.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features; must hold ``"train"`` and ``"valid"``.
    Y_train, Y_valid
        ``(n_spots, n_genes)`` targets of the train and valid spots.
    learning_rates
        Adam learning rates tried, one model each.
    name
        Name of the returned result.
    **kwargs
        The other keyword arguments of :func:`fit_mlp_per_lr` (``epochs``, ``patience``,
        ``batch_size``, ``dropout``, ``hidden``, ``seed``, ``scale``, ...).

    Returns
    -------
    ModelResult
        The fit of the chosen learning rate, as :func:`choose_lr` returns it.
    """
    return choose_lr(fit_mlp_per_lr(X, Y_train, Y_valid, learning_rates=learning_rates, name=name, **kwargs), name=name)
