"""References without the image: what a metric gives for free.

- ``train_mean``: every spot predicted as its gene's train mean (no correlation at all);
- ``depth_only``: each gene regressed on the spot's log total count (sequencing depth alone).
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from stlib import get
from stlib.models._base import ModelResult


#: References and image-free models, never "the best image model".
REFERENCE_MODELS = ("depth_only", "train_mean")


def reference_models(targets: ad.AnnData) -> list[ModelResult]:
    """Two image-free references: the train mean, and a depth-only linear model per gene.

    ``depth_only`` regresses each gene's target on ``log(total_counts)`` of the spot (fitted
    on train, no penalty); it measures how much of a metric sequencing depth alone explains.

    Parameters
    ----------
    targets
        Targets in ``X``, with ``obs["split"]`` (train and valid needed) and
        ``obs["total_counts"]`` (positive: its log is the depth feature).

    Returns
    -------
    list of ModelResult
        ``[train_mean, depth_only]``, each with ``predictions`` for every split that has spots;
        ``depth_only`` is a :func:`~stlib.models.linear.fit_linear` fit (``kind="ols"``).
    """
    from stlib.models.linear import fit_linear

    Y = get.split_arrays(targets, ["X"])
    mean = Y["train"].mean(axis=0)
    train_mean = ModelResult(
        name="train_mean",
        predictions={s: np.tile(mean, (len(a), 1)) for s, a in Y.items()},
        settings={"rule": "the train mean of each gene, for every spot"},
    )
    logdepth = {s: np.log(a) for s, a in get.split_arrays_obs(targets, "total_counts").items()}
    depth = fit_linear(logdepth, Y["train"], Y["valid"], kind="ols", genes=list(targets.var_names), name="depth_only")
    depth.settings["features"] = "log total counts of the spot (all genes)"
    return [train_mean, depth]
