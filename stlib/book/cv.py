"""Patient-level cross-validation: every patient in turn is the test set.

The book's split tests on one patient. Which patient is held out is itself a choice, so this
module runs the whole recipe once per fold, **leave one patient out**: the held-out patient's
sections are the test set, all other sections train. Everything fitted sees the fold's train
spots only: the gene rule, the HEST probe's scaler, PCA and penalty (cross-validation over the
train sections, or over spatial blocks of the section when a fold trains on a single one), and
the depth-only reference. Scores are pooled over the test spots of the fold, with bootstrap
intervals and the fraction of the noise ceiling (:func:`stlib.book.scoring.interval_table`).

Fold models: the HEST probe on single-spot and on KNN-pooled backbone features, and the two
image-free references (the train mean and the depth-only oracle). The report's models need a
valid split for their choices, which a fold that trains on one patient's sections does not have
without taking spots from the test patient; the probe chooses inside train and so runs on
every fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, pp
from stlib.book import scoring, store
from stlib.errors import DataError
from stlib.models import probe
from stlib.models import ModelResult
from stlib.models.linear import fit_linear

FOLD_MODELS: tuple[str, ...] = ("hest_probe", "knn_hest_probe", "depth_only", "train_mean")

__all__ = ["FOLD_MODELS", "Fold", "cross_validate", "fit_and_score", "leave_one_patient_out", "mean_over_folds", "patient_kfold", "run_fold", "spatial_blocks",
           "summary", "table"]


@dataclass(frozen=True)
class Fold:
    """One fold: the held-out patient and the split of every section."""

    name: str
    test_patient: str
    split: dict[str, str]

    def sections(self, which: str) -> list[str]:
        """Sections of ``which`` (``"train"`` or ``"test"``), in the data set's order."""
        return [s for s, v in self.split.items() if v == which]


def leave_one_patient_out(adata: ad.AnnData, patient_key: str = "patient", library_key: str = "section") -> list[Fold]:
    """One fold per patient: that patient's sections test, all others train."""
    pairs = adata.obs[[library_key, patient_key]].astype(str).drop_duplicates()
    patients = list(pd.unique(pairs[patient_key]))
    if len(patients) < 2:
        raise DataError("<adata>", f"patient-level cross-validation needs at least 2 patients, got {patients}")
    sections = list(pd.unique(pairs[library_key]))
    owner = dict(zip(pairs[library_key], pairs[patient_key]))
    return [Fold(name=f"test {p}", test_patient=p,
                 split={s: ("test" if owner[s] == p else "train") for s in sections}) for p in patients]


def patient_kfold(adata: ad.AnnData, n_folds: int, patient_key: str = "patient",
                  library_key: str = "section") -> list[Fold]:
    """``n_folds`` folds of whole patients (scikit-learn's ``GroupKFold`` over the sections,
    grouped by patient): for data sets with many patients, where one fold per patient is too many.
    ``n_folds`` equal to the number of patients is :func:`leave_one_patient_out`."""
    from sklearn.model_selection import GroupKFold

    pairs = adata.obs[[library_key, patient_key]].astype(str).drop_duplicates()
    n_patients = pairs[patient_key].nunique()
    if not 2 <= n_folds <= n_patients:
        raise DataError("n_folds", f"needs 2 <= n_folds <= {n_patients} patients, got {n_folds}")
    folds = []
    for k, (_, test_idx) in enumerate(GroupKFold(n_splits=n_folds).split(pairs, groups=pairs[patient_key])):
        test = set(pairs.iloc[test_idx][library_key])
        patients = sorted(set(pairs.iloc[test_idx][patient_key]))
        folds.append(Fold(name=f"fold {k + 1} (test {', '.join(patients)})", test_patient=", ".join(patients),
                          split={s: ("test" if s in test else "train") for s in pairs[library_key]}))
    return folds


def spatial_blocks(coords: np.ndarray, n_blocks: int = 4) -> np.ndarray:
    """Contiguous blocks of a section: equal-count bands along its longer axis (labels ``b0`` ...)."""
    c = np.asarray(coords, dtype=float)
    if c.ndim != 2 or len(c) < n_blocks:
        raise DataError("coords", f"need at least {n_blocks} spots with 2-D coordinates, got shape {c.shape}")
    axis = int(np.argmax(np.ptp(c, axis=0)))
    rank = np.argsort(np.argsort(c[:, axis], kind="stable"), kind="stable")
    return np.array([f"b{i}" for i in (rank * n_blocks // len(c))])


def _cv_groups(train: ad.AnnData, library_key: str, n_blocks: int) -> tuple[np.ndarray, str]:
    secs = train.obs[library_key].astype(str).to_numpy()
    if len(np.unique(secs)) >= 2:
        return secs, "sections"
    return spatial_blocks(train.obsm["spatial"], n_blocks), f"{n_blocks} spatial blocks of the one train section"


def fit_and_score(
    adata: ad.AnnData,
    features: ad.AnnData,
    split: dict[str, str],
    *,
    score_on: Sequence[str] = ("test",),
    n_genes: int = 250,
    gene_rule: str = "paper",
    transform: str = "paper",
    n_boot: int = 1000,
    seed: int = 0,
    n_blocks: int = 4,
    library_key: str = "section",
) -> tuple[pd.DataFrame, dict[tuple[str, str], object], dict[str, object]]:
    """Fit the fold models on the ``"train"`` sections of ``split`` and score them on ``score_on``.

    Parameters
    ----------
    adata
        All sections, raw counts in ``X`` (chapter 1's ``data.h5ad``).
    features
        Any AnnData over the same spots with ``obsm["X_cnn"]``, ``obsm["X_cnn_knn"]`` and
        ``obsm["spatial"]`` (chapter 2's ``embeddings.h5ad``); the features depend on no fit.
    split
        Section -> ``"train"``, ``"valid"`` or ``"test"``; sections not named are left out.
    score_on
        The parts scored (each must hold spots).
    n_genes, gene_rule, transform
        The genes (:func:`stlib.pp.select_genes`, fitted on train) and the target.
    n_boot, seed
        Bootstrap replicates of the intervals and their seed (the same spots are drawn for every
        call with the same sections and seed, so two calls can be compared pair by pair).
    n_blocks
        Spatial blocks of the probe's cross-validation when train is a single section.
    library_key
        ``obs`` column of the sections.

    Returns
    -------
    scores
        :func:`stlib.book.scoring.interval_table` rows indexed by (model, split).
    boots
        The bootstrap replicates, keyed by (split, space).
    record
        What was fitted on: sections, spots, genes, the probe's CV groups.
    """
    missing = [k for k in ("X_cnn", "X_cnn_knn", "spatial") if k not in features.obsm]
    if missing:
        raise DataError("features", f"lacks obsm {missing}")
    unknown = sorted(set(split.values()) - {"train", "valid", "test"})
    if unknown:
        raise DataError("split", f"parts must be train, valid or test, got {unknown}")
    data = adata[get.section_mask(adata, list(split), library_key)].copy()
    data.obs["split"] = pd.Categorical(data.obs[library_key].astype(str).map(split),
                                       categories=["train", "valid", "test"])
    for part in ("train", *score_on):
        if not get.split_mask(data, part).any():
            raise DataError("split", f"no spots in {part!r} (sections: {split})")
    absent = data.obs_names.difference(features.obs_names)
    if len(absent):
        raise DataError("features", f"{len(absent)} spots of the data have no features, e.g. {list(absent[:3])}")
    genes = pp.select_genes(data, n_genes, rule=gene_rule, transform=transform, fit_on="train")
    targets = pp.make_targets(data, genes, transform=transform)
    store.join_embeddings(targets, features, obsm=("X_cnn", "X_cnn_knn"), obsp=(), uns=())
    train = get.split_mask(targets, "train")
    groups, group_kind = _cv_groups(targets[train], library_key, n_blocks)
    Y = get.split_arrays(targets, ["X"])
    results: list[ModelResult] = []
    for rep, name in (("X_cnn", "hest_probe"), ("X_cnn_knn", "knn_hest_probe")):
        X = get.split_arrays(targets, [rep])
        results.append(probe.fit_probe(X, Y["train"], groups, genes=genes, name=name, seed=seed))
    logdepth = {s: np.log(a) for s, a in get.split_arrays_obs(targets, "total_counts").items()}
    results.append(fit_linear(logdepth, Y["train"], kind="ols", genes=genes, name="depth_only"))
    mean = Y["train"].mean(axis=0)
    results.append(ModelResult("train_mean", {s: np.tile(mean, (len(y), 1)) for s, y in Y.items()}))
    iv, boots = scoring.interval_table(targets, scoring.scored_from_results(results), splits=tuple(score_on),
                                       n_boot=n_boot, seed=seed)
    secs = lambda part: ", ".join(s for s, v in split.items() if v == part)  # noqa: E731
    record = {"train sections": secs("train"), **{f"{p} sections": secs(p) for p in score_on},
              "train spots": int(train.sum()),
              **{f"{p} spots": int(get.split_mask(targets, p).sum()) for p in score_on},
              "probe CV over": group_kind, "genes": list(genes)}
    return iv, boots, record


def run_fold(adata: ad.AnnData, features: ad.AnnData, fold: Fold, *, return_boots: bool = False, **kwargs):
    """Fit and score the fold models on one fold (:func:`fit_and_score` with the fold's split;
    ``kwargs``: its ``n_genes``, ``gene_rule``, ``transform``, ``n_boot``, ``seed``, ``n_blocks``,
    ``library_key``).

    Returns the fold's test scores (:func:`stlib.book.scoring.interval_table` rows, one per model)
    and a record of what the fold fitted on (sections, genes, groups of the probe's CV); with
    ``return_boots`` also the test bootstrap (:class:`stlib.tl.uncertainty.Bootstrap`).
    """
    iv, boots, rec = fit_and_score(adata, features, fold.split, score_on=("test",), **kwargs)
    iv = iv.xs("test", level="split")
    record = {"fold": fold.name, "train sections": rec["train sections"], "test sections": rec["test sections"],
              "train spots": rec["train spots"], "test spots": rec["test spots"], "probe CV over": rec["probe CV over"],
              "genes chosen by every fold": None, "genes": rec["genes"]}
    if return_boots:
        return iv, record, boots[("test", "target")]
    return iv, record


def cross_validate(adata: ad.AnnData, features: ad.AnnData, folds: Sequence[Fold], *, return_boots: bool = False,
                   **kwargs):
    """:func:`run_fold` on every fold: scores indexed by (fold, model), and one record per fold
    (with the number of its genes that every fold chose); with ``return_boots`` also each fold's
    test bootstrap, keyed by fold name (for :func:`mean_over_folds`)."""
    scores, records, boots = [], [], {}
    for fold in folds:
        iv, rec, bs = run_fold(adata, features, fold, return_boots=True, **kwargs)
        scores.append(iv.assign(fold=fold.name).set_index("fold", append=True).reorder_levels(["fold", "model"]))
        records.append(rec)
        boots[fold.name] = bs
    common = set.intersection(*(set(r["genes"]) for r in records))
    for r in records:
        r["genes chosen by every fold"] = len(common)
        r["genes"] = len(r["genes"])
    out = pd.concat(scores), pd.DataFrame(records).set_index("fold")
    return (*out, boots) if return_boots else out


def mean_over_folds(boots: dict[str, object], stat: str = "pcc", level: float = 0.95) -> pd.DataFrame:
    """Per model: the mean of ``stat`` over the folds (each fold weighs the same) with an interval
    from the folds' bootstrap replicates (replicate ``b`` of the mean is the mean of every fold's
    replicate ``b``; the folds' spots are resampled independently), by the folds' own method: a
    BCa interval when the folds' are BCa, its jackknife the union of the folds' (leaving one unit
    of fold ``f`` out moves only fold ``f``'s term of the mean). A percentile interval of the mean
    would inherit the folds' bias: a fold whose estimate lies far below its replicates (a skewed
    statistic) would put the mean's interval above the mean.

    The interval carries the sampling of spots within the patients that were held out; it does
    not carry the choice of patients (with three patients, the spread over folds, shown beside
    it, is the only view of that).

    Parameters
    ----------
    boots
        Each fold's :class:`stlib.tl.uncertainty.Bootstrap` (the same models and replicates).
    stat
        The statistic.
    level
        Coverage.

    Returns
    -------
    pandas.DataFrame
        Per model: ``folds``, the mean, its interval (``<stat>_lo``, ``<stat>_hi``), the smallest
        and largest fold value.

    Raises
    ------
    DataError
        Without folds.
    """
    from stlib.tl.uncertainty import interval_from_replicates

    if not boots:
        raise DataError("boots", "no folds")
    bs = list(boots.values())
    reps = [b.replicates[stat] for b in bs]
    points = [b.point[stat] for b in bs]
    k = len(reps)
    n = min(len(r) for r in reps)
    models = list(points[0].index)
    mean_rep = sum(r[models].iloc[:n].reset_index(drop=True) for r in reps) / k
    point = sum(p[models] for p in points) / k
    methods = {getattr(b, "method", "percentile") for b in bs}
    method = methods.pop() if len(methods) == 1 else "percentile"
    jacks = [getattr(b, "jackknife", {}).get(stat) for b in bs]
    if method == "bca" and any(j is None for j in jacks):
        method = "percentile"
    lo, hi = {}, {}
    for m in models:
        jk = None
        if method == "bca":  # the mean with one unit of fold f left out: fold f's term moves, the others stay
            jk = np.concatenate([point[m] + (np.asarray(j[m], np.float64) - float(p[m])) / k
                                 for j, p in zip(jacks, points)])
        lo[m], hi[m] = interval_from_replicates(float(point[m]), mean_rep[m].to_numpy(), level=level,
                                                method=method, jackknife=jk)
    per_fold = pd.concat(points, axis=1)
    return pd.DataFrame({"folds": k, stat: point, f"{stat}_lo": pd.Series(lo), f"{stat}_hi": pd.Series(hi),
                         f"min {stat}": per_fold.min(axis=1), f"max {stat}": per_fold.max(axis=1)}, index=models)


def table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per fold and model: test PCC and fraction of the ceiling with their intervals, the ceiling."""
    out = pd.DataFrame({
        "PCC [95% CI]": scoring.with_interval(scores["pcc"], scores["pcc_lo"], scores["pcc_hi"]),
        "fraction of ceiling [95% CI]": scoring.with_interval(scores["fraction"], scores["fraction_lo"],
                                                             scores["fraction_hi"]),
        "ceiling": scores["ceiling"].round(3),
    }, index=scores.index)
    return out


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean, smallest and largest test PCC and fraction of the ceiling over the folds."""
    g = scores.groupby(level="model", sort=False)
    out = pd.DataFrame({"folds": g.size(), "mean PCC": g["pcc"].mean(), "min PCC": g["pcc"].min(),
                        "max PCC": g["pcc"].max(), "mean fraction": g["fraction"].mean(),
                        "min fraction": g["fraction"].min(), "max fraction": g["fraction"].max()})
    return out
