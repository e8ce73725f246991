"""The result type shared by every model of the book."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd



@dataclass
class ModelResult:
    """Predictions and fitted settings of one model.

    Attributes
    ----------
    name
        Short model id, e.g. ``"ridge"``, ``"nb_apriori"``, ``"mlp"``.
    predictions
        Split -> ``(n_spots, n_genes)`` predictions in target space.
    settings
        Fitted / chosen settings, JSON-serialisable.
    per_gene
        Optional per-gene information (chosen penalty, convergence status, ...), index = gene.
    history
        Optional learning curves, tidy (``config, epoch, loss, val_loss, ...``).
    counts
        Optional predictions in count space (GLMs: the fitted mean).
    """

    name: str
    predictions: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    per_gene: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    counts: dict[str, np.ndarray] | None = None
