"""Per-gene generalised linear models of raw counts (statsmodels).

One GLM per gene: ``counts ~ 1 + standardised features (+ offset)``, with a Poisson or a
negative-binomial (NB2, log link) family. Features are standardised with a
:class:`~sklearn.preprocessing.StandardScaler` fitted on the train features only; test
targets are never seen, and test features only enter through prediction.

Prediction spaces
-----------------
``ModelResult.counts[split]``
    The predicted mean ``mu = exp(eta)`` with ``eta = X beta (+ offset[split])``.
``ModelResult.predictions[split]``
    Target space. Without an offset: ``log1p(mu)``. With an offset (log size factors):
    ``log1p(exp(X beta))``, the rate at the reference size (offset 0), which is the space
    of ``normalize_total`` + ``log1p`` targets.

Failures are never silent: a gene whose fit raises, returns non-finite parameters, does
not converge, or emits a convergence / perfect-separation warning gets NaN predictions
and a ``status`` of ``"failed"`` or ``"not_converged"`` in ``per_gene``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from joblib import Parallel, delayed
from sklearn.preprocessing import StandardScaler
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from stlib.errors import DataError
from stlib.models._base import ModelResult, check_features, check_matrix, gene_index
from stlib._parallel import joblib_backend

FAMILIES: tuple[str, ...] = ("poisson", "nb_alpha1", "nb_apriori")
ALPHA_MIN: float = 1e-8
"""Lower clip of the a-priori NB dispersion (under-dispersed genes: ``v < m``)."""
ALPHA_MAX: float = 100.0
"""Upper clip of the a-priori NB dispersion (rare genes with a few large counts, where
``(v - m) / m**2`` explodes; 100 already means ``Var = mu + 100 mu**2``)."""
ETA_MAX: float = 20.0
"""Upper clip of the linear predictor before ``exp`` (``exp(20) ~ 5e8`` counts, far above any
spot's library size); guards against overflow on extrapolated features."""

APRIORI_RULES: tuple[str, ...] = ("moments", "paper")
"""``"moments"``: the NB2 dispersion ``(v - m) / m**2``; ``"paper"``: the authors' ``m**2 / (v - m)``
(0 when ``v <= m``), the inverse of the NB2 dispersion, passed to statsmodels as if it were one."""

__all__ = ["ALPHA_MAX", "ALPHA_MIN", "APRIORI_RULES", "ETA_MAX", "FAMILIES", "apriori_alpha", "apriori_alpha_paper",
           "fit_glm"]


def apriori_alpha(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NB2 moment estimate of the dispersion per gene, ``alpha = (v - m) / m**2``.

    ``m`` and ``v`` are the mean and the sample variance (``ddof=1``) of each column.

    Parameters
    ----------
    counts
        ``(n_spots, n_genes)`` raw counts (the train spots).

    Returns
    -------
    ``(alpha_raw, alpha)``: the raw estimate (NaN for an all-zero gene) and the estimate
    clipped to ``[ALPHA_MIN, ALPHA_MAX]`` (NaN stays NaN).
    """
    c = np.asarray(counts, dtype=np.float64)
    m = c.mean(axis=0)
    v = c.var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(m > 0, (v - m) / m**2, np.nan)
    return raw, np.clip(raw, ALPHA_MIN, ALPHA_MAX)


def apriori_alpha_paper(counts: np.ndarray) -> np.ndarray:
    """The authors' "a priori" alpha per gene: ``m**2 / (v - m)`` if ``v > m`` else 0.

    ``m`` mean, ``v`` sample variance (``ddof=1``) of each column, exactly as their
    ``estimate_alpha_from_data`` (linear_nb_models / knn_nb_models notebooks). This is the
    *inverse* of the NB2 dispersion that statsmodels' ``NegativeBinomial(alpha=...)`` expects.

    Parameters
    ----------
    counts
        ``(n_spots, n_genes)`` raw counts (the train spots).

    Returns
    -------
    numpy.ndarray
        ``(n_genes,)`` float64, unclipped; 0 for a gene whose variance does not exceed its mean
        (an all-zero gene included).
    """
    c = np.asarray(counts, dtype=np.float64)
    m = c.mean(axis=0)
    v = c.var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > m, m**2 / (v - m), 0.0)


def _fit_one(
    y: np.ndarray, design: np.ndarray, offset: np.ndarray | None, family: str, alpha: float, maxiter: int,
    keep_unconverged: bool = False,
) -> tuple[np.ndarray, str, str, int]:
    """Fit one gene; returns ``(params, status, message, n_iter)``; params NaN unless ok
    (or, with ``keep_unconverged``, unless the fit failed outright)."""
    nan = np.full(design.shape[1], np.nan)
    if not np.any(y > 0):
        return nan, "failed", "all train counts are zero: the MLE of the intercept is -inf", 0
    fam = sm.families.Poisson() if family == "poisson" else sm.families.NegativeBinomial(alpha=alpha)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(y, design, family=fam, offset=offset).fit(maxiter=maxiter)
        except Exception as exc:  # noqa: BLE001 - any statsmodels/numpy failure is reported per gene
            return nan, "failed", f"{type(exc).__name__}: {exc}", 0
    n_iter = int(res.fit_history.get("iteration", 0))
    params = np.asarray(res.params, dtype=np.float64)
    if not np.all(np.isfinite(params)):
        return nan, "failed", "non-finite parameters", n_iter
    msg = "; ".join(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    bad = any(issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning)) for w in caught)
    if not res.converged:
        msg = "; ".join(filter(None, [f"IRLS did not converge in {maxiter} iterations", msg]))
    if not res.converged or bad:
        return (params if keep_unconverged else nan), "not_converged", msg, n_iter
    return params, "ok", msg, n_iter


def fit_glm(
    X: Mapping[str, np.ndarray],
    counts_train: np.ndarray,
    *,
    family: str,
    offset: Mapping[str, np.ndarray] | None = None,
    genes: Sequence[str] | None = None,
    n_jobs: int = 1,
    scheduler: Any = None,
    maxiter: int = 100,
    name: str | None = None,
    scale: bool = True,
    apriori: str = "moments",
    keep_unconverged: bool = False,
    score_space: str = "target",
) -> ModelResult:
    """Fit one GLM per gene on the train counts and predict every split.

    Parameters
    ----------
    X
        Split -> ``(n_spots, n_features)`` features; must hold ``"train"``.
    counts_train
        ``(n_train, n_genes)`` raw integer counts of the train spots.
    family
        ``"poisson"``; ``"nb_alpha1"`` (NB2 with ``alpha = 1``); ``"nb_apriori"`` (NB2 with
        ``alpha`` fixed per gene a priori by :func:`apriori_alpha` on the train counts,
        clipped to ``[ALPHA_MIN, ALPHA_MAX]``).
    offset
        Optional split -> ``(n_spots,)`` log size factors, used as the GLM offset in the
        fit and in prediction; then needed for every split of ``X``.
    genes
        Gene names (index of ``per_gene``); default ``"0", "1", ...``.
    n_jobs
        Genes are fitted in parallel with joblib; results do not depend on ``n_jobs``.
    scheduler
        A dask.distributed scheduler address or ``Client``: the genes are fitted on that
        cluster's workers (:func:`stlib._parallel.joblib_backend`); results are the same.
    maxiter
        IRLS iteration limit.
    name
        Model name; default ``family``.
    scale
        Standardise features on train (default); ``False``: raw features (the authors).
    apriori
        For ``"nb_apriori"``: ``"moments"`` (NB2 dispersion, clipped) or ``"paper"`` (the
        authors' inverse formula, :func:`apriori_alpha_paper`, unclipped).
    keep_unconverged
        Keep the parameters of fits that did not converge (the authors kept every fit);
        by default their predictions are NaN.
    score_space
        ``"target"`` (default) or ``"counts"`` (the authors scored GLMs on raw counts against the
        predicted mean); recorded in ``settings["score_space"]`` for the tables.

    Returns
    -------
    :class:`ModelResult` with ``predictions`` (target space, see module docstring),
    ``counts`` (predicted mean), ``per_gene`` (``status`` in ``ok / not_converged / failed``,
    ``message`` (why, and any warning statsmodels emitted), ``alpha``, ``alpha_raw``, ``n_iter``, ``n_eta_clipped``, and the coefficients
    ``coef_<j>`` on the standardised features, ``coef_0`` being the intercept) and ``settings``.
    Genes that are not ``ok`` have NaN predictions.
    """
    if family not in FAMILIES:
        raise DataError("family", f"unknown family {family!r}; expected one of {FAMILIES}")
    X = check_features(X)
    Xtr = X["train"]
    y = check_matrix(counts_train, "counts_train", n_rows=Xtr.shape[0])
    if not (np.all(y >= 0) and np.all(y == np.round(y))):
        raise DataError("counts_train", "counts must be finite non-negative integers (raw counts)")
    if offset is not None:
        missing = [s for s in X if s not in offset]
        if missing:
            raise DataError("offset", f"no offset for split(s) {missing}")
        for s in X:
            if np.shape(offset[s]) != (np.shape(X[s])[0],):
                raise DataError(f"offset[{s!r}]", f"shape {np.shape(offset[s])}, expected ({np.shape(X[s])[0]},)")
    n_genes = y.shape[1]
    index = gene_index(genes, n_genes)

    if apriori not in APRIORI_RULES:
        raise DataError("apriori", f"unknown a-priori rule {apriori!r}; expected one of {APRIORI_RULES}")
    if score_space not in ("target", "counts"):
        raise DataError("score_space", f"expected 'target' or 'counts', got {score_space!r}")
    if scale:
        scaler = StandardScaler().fit(Xtr)
        design = {s: sm.add_constant(scaler.transform(np.asarray(a, dtype=np.float64)), has_constant="add")
                  for s, a in X.items()}
    else:
        design = {s: sm.add_constant(np.asarray(a, dtype=np.float64), has_constant="add") for s, a in X.items()}
    off = {s: np.asarray(offset[s], dtype=np.float64) for s in X} if offset is not None else None

    if family == "nb_apriori" and apriori == "paper":
        alpha_raw = alpha = apriori_alpha_paper(y)
    elif family == "nb_apriori":
        alpha_raw, alpha = apriori_alpha(y)
    else:
        alpha_raw = alpha = np.full(n_genes, 1.0 if family == "nb_alpha1" else np.nan)

    with joblib_backend(scheduler) as jobs:
        fits = Parallel(n_jobs=jobs or n_jobs)(
            delayed(_fit_one)(y[:, j], design["train"], None if off is None else off["train"], family, alpha[j],
                              maxiter, keep_unconverged)
            for j in range(n_genes)
        )
    params = np.vstack([f[0] for f in fits])  # (n_genes, 1 + n_features), NaN rows unless ok
    status = np.array([f[1] for f in fits], dtype=object)
    if not keep_unconverged:
        params[status != "ok"] = np.nan

    predictions: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    n_clipped = np.zeros(n_genes, dtype=int)
    for s, d in design.items():
        eta = d @ params.T  # without offset
        eta_full = eta if off is None else eta + off[s][:, None]
        n_clipped += (eta > ETA_MAX).sum(axis=0) + (0 if off is None else (eta_full > ETA_MAX).sum(axis=0))
        counts[s] = np.exp(np.minimum(eta_full, ETA_MAX))
        predictions[s] = np.log1p(counts[s] if off is None else np.exp(np.minimum(eta, ETA_MAX)))

    per_gene = pd.DataFrame(
        {
            "status": status,
            "message": [f[2] for f in fits],
            "alpha": alpha,
            "alpha_raw": alpha_raw,
            "n_iter": [f[3] for f in fits],
            "n_eta_clipped": n_clipped,
        },
        index=index,
    )
    per_gene = per_gene.join(pd.DataFrame(params, index=index, columns=[f"coef_{k}" for k in range(params.shape[1])]))

    alpha_rule = {
        "poisson": "none (Poisson)",
        "nb_alpha1": "fixed alpha = 1 for every gene",
        "nb_apriori": (
            "per gene, NB2 moment estimator alpha = (v - m) / m^2 on the train counts "
            f"(m mean, v variance with ddof=1), clipped to [{ALPHA_MIN:g}, {ALPHA_MAX:g}]"
            if apriori == "moments" else
            "per gene, the authors' alpha = m^2 / (v - m) (0 if v <= m) on the train counts (m mean, v variance "
            "with ddof=1): the inverse of the NB2 dispersion, unclipped"
        ),
    }[family]
    settings: dict[str, Any] = {
        "family": family,
        "link": "log",
        "alpha_rule": alpha_rule,
        "n_genes": n_genes,
        "n_features": int(Xtr.shape[1]),
        "n_ok": int((status == "ok").sum()),
        "n_not_converged": int((status == "not_converged").sum()),
        "n_failed": int((status == "failed").sum()),
        "maxiter": int(maxiter),
        "offset": "log size factors as GLM offset (fit and predict)" if off is not None else "none",
        "predictions": (
            "log1p(exp(X beta)): rate at reference size (offset 0)" if off is not None else "log1p(mu)"
        ),
        "scaler": "StandardScaler fitted on train features only; intercept added" if scale else
                  "none: raw features (the authors' code); intercept added",
        "apriori": apriori,
        "keep_unconverged": bool(keep_unconverged),
        "score_space": score_space,
        "eta_max": ETA_MAX,
        "n_genes_eta_clipped": int((n_clipped > 0).sum()),
    }
    if family == "nb_apriori" and apriori == "moments":
        settings.update(
            alpha_min=ALPHA_MIN,
            alpha_max=ALPHA_MAX,
            n_alpha_clipped_low=int(np.sum(alpha_raw < ALPHA_MIN)),
            n_alpha_clipped_high=int(np.sum(alpha_raw > ALPHA_MAX)),
            n_alpha_undefined=int(np.isnan(alpha_raw).sum()),
        )
    return ModelResult(name=name or family, predictions=predictions, settings=settings, per_gene=per_gene, counts=counts)
