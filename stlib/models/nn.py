"""The paper's "Simple Neural Network": a small fully connected Keras network.

Input (image PCA 32 + graph SVD 32 = 64 features in the paper) -> Dense(64, relu) ->
Dense(64, relu) -> Dropout(0.5) -> Dense(64, relu) -> Dropout(0.5) -> Dense(n_genes, linear),
trained with Adam on the MSE (metric MAE), early stopping on the validation loss, one model
per learning rate, the learning rate with the lowest validation loss kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from stlib.errors import DataError
from stlib.models._base import ModelResult
from stlib.models._keras import check_matrix, import_keras, label_history, loss_key, predict, set_seed, train


def _architecture(n_features: int, hidden: int, dropout: float, n_genes: int) -> list[str]:
    return [
        f"input({n_features})", f"dense({hidden}, relu)", f"dense({hidden}, relu)", f"dropout({dropout})",
        f"dense({hidden}, relu)", f"dropout({dropout})", f"dense({n_genes}, linear)",
    ]


def build_mlp(n_features: int, n_genes: int, *, hidden: int = 64, dropout: float = 0.5, lr: float = 1e-3) -> Any:
    """Build and compile the paper's MLP (Adam(lr), loss MSE, metric MAE); weights follow the current seed."""
    _, keras = import_keras()
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        layers.Dense(hidden, activation="relu"),
        layers.Dense(hidden, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(hidden, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(n_genes, activation="linear"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse", metrics=["mae"])
    return model


def fit_mlp(
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
) -> ModelResult:
    """Fit the paper's simple neural network, one model per learning rate, keep the best.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features; must hold ``"train"`` and ``"valid"``.
        Every split in ``X`` gets predictions. Features are standardised with a
        ``StandardScaler`` fit on ``X["train"]`` only.
    Y_train, Y_valid
        ``(n_spots, n_genes)`` targets of the train and valid spots (no test targets are ever passed).
    learning_rates
        Adam learning rates tried; each gets its own model, built from the same seed.
    epochs, patience, min_delta
        At most ``epochs`` passes; early stopping on ``val_loss`` (patience ``patience``, improvement
        larger than ``min_delta``) with the best weights restored (see :func:`stlib.models._keras.train`).
    batch_size, dropout, hidden
        Mini-batch size, dropout rate (fraction dropped), width of the three hidden layers.
    seed
        Seed set (with op determinism) before building each model, and seed of the epoch shuffling:
        reruns give identical predictions, and each learning rate's model does not depend on the others.
    genes
        Gene names (only used to check the number of target columns).
    name
        Name of the returned :class:`ModelResult`.

    Returns
    -------
    ModelResult
        ``predictions``: split -> ``(n_spots, n_genes)`` from the model with the lowest best valid
        loss (ties -> the smaller learning rate). ``history``: tidy ``lr, epoch, loss, val_loss, mae,
        val_mae``. ``settings``: ``lr`` (chosen), ``best_epoch``/``best_val_loss``/``epochs_run``/
        ``stopped_early`` per learning rate (lists aligned with ``learning_rates``), ``architecture``, ``seed``, ...
    """
    for split in ("train", "valid"):
        if split not in X:
            raise DataError("fit_mlp", f"X has no {split!r} split (got {sorted(X)})")
    if not learning_rates:
        raise DataError("fit_mlp", "learning_rates is empty")
    Xs = {s: check_matrix(v, f"X[{s!r}]") for s, v in X.items()}
    n_features = Xs["train"].shape[1]
    for s, v in Xs.items():
        check_matrix(v, f"X[{s!r}]", n_cols=n_features)
    Ytr = check_matrix(Y_train, "Y_train", n_rows=Xs["train"].shape[0])
    n_genes = Ytr.shape[1]
    Yva = check_matrix(Y_valid, "Y_valid", n_rows=Xs["valid"].shape[0], n_cols=n_genes)
    if genes is not None and len(genes) != n_genes:
        raise DataError("fit_mlp", f"{len(genes)} gene names for {n_genes} target columns")

    scaler = StandardScaler().fit(Xs["train"])
    Z = {s: scaler.transform(v).astype(np.float32) for s, v in Xs.items()}
    ytr, yva = Ytr.astype(np.float32), Yva.astype(np.float32)

    lrs = [float(lr) for lr in learning_rates]
    summaries: list[dict[str, Any]] = []
    histories: list[pd.DataFrame] = []
    best_i, best_model = -1, None
    for i, lr in enumerate(lrs):
        set_seed(seed)
        model = build_mlp(n_features, n_genes, hidden=hidden, dropout=dropout, lr=lr)
        hist, summary = train(model, Z["train"], ytr, Z["valid"], yva, epochs=epochs, batch_size=batch_size,
                              patience=patience, min_delta=min_delta, seed=seed)
        summaries.append(summary)
        histories.append(label_history(hist, lr=lr))
        key, best_key = loss_key(summary["best_val_loss"]), loss_key(summaries[best_i]["best_val_loss"])
        if best_i < 0 or key < best_key or (key == best_key and lr < lrs[best_i]):
            best_i, best_model = i, model
    assert best_model is not None
    predictions = {s: predict(best_model, z, n_genes) for s, z in Z.items()}
    settings: dict[str, Any] = {
        "lr": lrs[best_i],
        "learning_rates": lrs,
        **{key: [sm[key] for sm in summaries] for key in ("best_epoch", "best_val_loss", "epochs_run", "stopped_early")},
        "architecture": _architecture(n_features, hidden, dropout, n_genes),
        "optimizer": "adam", "loss": "mse", "batch_size": int(batch_size), "max_epochs": int(epochs),
        "patience": int(patience), "min_delta": float(min_delta), "feature_scaling": "standardised on train",
        "seed": int(seed),
    }
    return ModelResult(name=name, predictions=predictions, settings=settings,
                       history=pd.concat(histories, ignore_index=True))
