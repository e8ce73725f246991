"""Controls for chapter 9: what do the correlations of Table I measure?

Two questions, each answered by refitting a compact set of models with one thing changed:

- **Sequencing depth**: the same genes-and-models recipe under each target transform
  (``paper``, the authors' code; ``log1p``, the report's sentence; ``normalize_log1p``),
  with the depth-only reference.
- **What the CNN knows**: the same recipe on features from a network with random weights
  instead of ImageNet weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from stlib import get, metrics, pp
from stlib.book import protocol, scoring, store
from stlib.models import inputs
from stlib.models import ModelResult
from stlib.tl import uncertainty

FEATURE_KEYS = ("X_cnn", "X_img_pca", "X_cnn_knn", "X_img_knn_pca", "X_graph_svd")


def targets_with_features(data: ad.AnnData, feats: ad.AnnData, transform: str, n_genes: int = 250) -> ad.AnnData:
    """Targets for ``transform`` (genes chosen on train), with the embeddings of ``feats`` attached."""
    if not data.obs_names.equals(feats.obs_names):
        raise ValueError("data and features hold different spots")
    d = data.copy()
    genes = pp.select_genes(d, n_genes, transform=transform, fit_on="train")
    t = pp.make_targets(d, genes, transform=transform)
    return store.join_embeddings(t, feats, obsm=FEATURE_KEYS, obsp=(), uns=())


def compact_models(targets: ad.AnnData, model_cache: str | None = None) -> list[ModelResult]:
    """Ridge and Lasso on single-spot and KNN-pooled features, plus the depth-only reference."""
    from stlib.models.reference import reference_models

    names = tuple(inputs.model_name(kind, feats) for feats in ("single", "knn") for kind in ("ridge", "lasso"))
    out = list(protocol.fit_table_models(targets, "sound", models=names, model_cache=model_cache).values())
    out.append(reference_models(targets)[1])
    return out


def score(targets: ad.AnnData, results: Sequence[ModelResult], label: str, n_boot: int = 0,
          seed: int = 0) -> pd.DataFrame:
    """Mean PCC over genes per model and split (pooled), tagged with ``label``.

    With ``n_boot > 0`` also the noise ceiling of the targets, the fraction of it each model
    reaches and bootstrap intervals (:func:`stlib.book.scoring.interval_table`).
    """
    from stlib.book.scoring import interval_extras, mean_scores, scored_from_results

    scored = scored_from_results(list(results))
    extras = interval_extras(targets, scored, n_boot=n_boot, seed=seed)
    return pd.DataFrame([{"control": label, "model": row.model, "split": row.split, "pearson": float(row.pearson),
                          "n_genes_correlated": int(row.n_genes_correlated), **extras.get((row.model, row.split), {})}
                         for row in mean_scores(targets, scored).itertuples()])


def per_gene_pcc(targets: ad.AnnData, result: ModelResult, split: str = "test") -> pd.Series:
    """Per-gene Pearson of one model on one split."""
    Y = get.split_arrays(targets, ["X"])
    return metrics.per_gene_metrics(Y[split], result.predictions[split], list(targets.var_names))["pearson"]


def fraction_table(table: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Models x controls: ``"fraction of ceiling [95% CI]"`` on one split (from :func:`score` with ``n_boot``)."""
    from stlib._format import with_interval

    sub = table[table["split"] == split].reset_index(drop=True)
    sub["cell"] = with_interval(sub["fraction"], sub["fraction_lo"], sub["fraction_hi"], 2)
    w = sub.pivot(index="model", columns="control", values="cell")
    ceil = sub.groupby("control", sort=False)["ceiling"].first()
    w.loc["(noise ceiling, mean PCC)"] = [f"{ceil[c]:.2f}" for c in w.columns]
    return w


def paired_difference(targets: ad.AnnData, a: Sequence[ModelResult], b: Sequence[ModelResult],
                      labels: tuple[str, str], split: str = "test", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model name present in both ``a`` and ``b``: PCC of each and the paired bootstrap
    interval of the difference (``a - b``) on ``split``; "different" only if it excludes 0."""
    from stlib.book.scoring import interval_table, scored_from_results

    names = sorted({r.name for r in a} & {r.name for r in b} - {"depth_only"})
    scored = {**{f"{n} | {labels[0]}": v for n, v in scored_from_results(list(a)).items() if n in names},
              **{f"{n} | {labels[1]}": v for n, v in scored_from_results(list(b)).items() if n in names}}
    _, boots = interval_table(targets, scored, splits=(split,), n_boot=n_boot, seed=seed)
    bs = boots[(split, "target")]
    rows = []
    for n in names:
        d = bs.difference(f"{n} | {labels[0]}", f"{n} | {labels[1]}")
        rows.append({"model": n, f"PCC, {labels[0]}": bs.point.loc[f"{n} | {labels[0]}", "pcc"],
                     f"PCC, {labels[1]}": bs.point.loc[f"{n} | {labels[1]}", "pcc"],
                     "difference": d["difference"], "95% interval": f"[{d['lo']:+.3f}, {d['hi']:+.3f}]",
                     "verdict": "different" if d["excludes_zero"] else "not distinguishable"})
    return scoring.show(pd.DataFrame(rows).set_index("model"))


def partial_pearson(y: np.ndarray, p: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per column, the Pearson correlation of ``y`` and ``p`` with ``z`` partialled out: both are
    replaced by their residuals from an ordinary least-squares line on ``z`` over the same rows.

    A prediction that is (up to float32 rounding) a linear function of ``z`` has no residual and
    gives NaN, as a constant prediction does in :mod:`stlib.metrics`.
    """
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    Z = np.column_stack([np.ones(len(z)), np.asarray(z, dtype=np.float64)])
    ry = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    rp = p - Z @ np.linalg.lstsq(Z, p, rcond=None)[0]
    sy, sp_ = ry.std(axis=0), rp.std(axis=0)
    # no residual: a constant, or what is left of a line in z after float32 rounding (files hold float32)
    flat = ((sy <= 1e-3 * y.std(axis=0)) | (sp_ <= 1e-3 * p.std(axis=0)) | (p.std(axis=0) == 0) | (y.std(axis=0) == 0)
            | ~np.isfinite(p).all(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((ry - ry.mean(0)) * (rp - rp.mean(0))).mean(axis=0) / (sy * sp_)
    return np.where(flat, np.nan, np.clip(r, -1.0, 1.0))


def depth_partial(targets: ad.AnnData, predictions: dict[str, ad.AnnData], splits: Sequence[str] = ("valid", "test"),
                  *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model and split: the mean over genes of the plain PCC and of the PCC with the spots'
    log total counts partialled out (:func:`partial_pearson`; pooled over the split's spots;
    models scored in the target's space only), the latter with its 95% interval.

    Both means follow the run's interval rule (:func:`stlib.book.scoring.interval_rule`): a gene
    with nothing left of it once depth is removed (a constant, or a prediction that is a line in
    depth) counts as 0 under the book's rule, or is left out under the report's. Models stored
    with several seeds are the mean over their seeds (:func:`stlib.book.scoring.scored_from_files`).
    The interval resamples the residuals as the rule says (blocks of neighbouring spots, seeds
    with the spots); the line in depth is fitted once on all of the split's spots, not in each
    replicate.

    Returns
    -------
    pandas.DataFrame
        Indexed by model; columns ``(measure, split)`` with the measures ``PCC``,
        ``PCC, depth removed``, ``lo``, ``hi`` (its interval) and ``genes with a partial PCC``.
    """
    rule = scoring.interval_rule()
    Y = get.split_arrays(targets, ["X"])
    logd = {s: np.log(a[:, 0]) for s, a in get.split_arrays_obs(targets, "total_counts").items()}
    genes = list(targets.var_names)
    scored = {m: v for m, v in scoring.scored_from_files(predictions).items() if v[1] == "target"}
    rows = []
    for s in splits:
        names = [m for m, (P, _) in scored.items() if s in P]
        if not names:
            continue
        mask = get.split_mask(targets, s)
        y = np.asarray(Y[s], dtype=np.float64)
        Z = np.column_stack([np.ones(len(y)), logd[s]])
        ry = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
        resid, plain, n_part = {}, {}, {}
        for m in names:
            fits = uncertainty.seed_stack(m, scored[m][0][s], y.shape)
            parts = []
            for k, f in enumerate(fits):
                has_partial = np.isfinite(partial_pearson(y, f, logd[s]))
                if k == 0:
                    n_part[m] = int(has_partial.sum())
                r = f - Z @ np.linalg.lstsq(Z, f, rcond=None)[0]
                r[:, ~has_partial] = 0.0  # nothing beyond depth: a constant
                parts.append(r)
            resid[m] = np.stack(parts) if len(parts) > 1 else parts[0]
            plain[m] = float(np.mean([metrics.evaluate({s: y}, {s: f}, genes, constant=rule.constant).loc[s, "pearson"]
                                      for f in fits]))
        bs = scoring.rule_bootstrap(ry, resid, coords=(np.asarray(targets.obsm["spatial"], dtype=np.float64)[mask]
                                                       if "spatial" in targets.obsm else None),
                                    sections=targets.obs.loc[mask, "section"].astype(str).to_numpy(),
                                    n_boot=n_boot, seed=seed)
        iv = bs.interval("pcc")
        for m in names:
            rows.append({"model": m, "split": s, "PCC": plain[m], "PCC, depth removed": iv.loc[m, "pcc"],
                         "lo": iv.loc[m, "pcc_lo"], "hi": iv.loc[m, "pcc_hi"], "genes with a partial PCC": n_part[m]})
    out = pd.DataFrame(rows).pivot(index="model", columns="split")
    return out.reindex(columns=[(m, s) for m in ("PCC", "PCC, depth removed", "lo", "hi", "genes with a partial PCC")
                                for s in splits if (m, s) in out.columns])


def depth_from_image(targets: ad.AnnData, reps: Sequence[str] = ("X_cnn", "X_cnn_knn"), seed: int = 0) -> pd.DataFrame:
    """How well the image features predict each spot's log total counts: the HEST probe
    (:func:`stlib.models.probe.fit_probe`, fitted on train, penalty by CV over the train
    sections) from each representation to log depth; PCC and R2 per split."""
    from stlib.models import probe

    logd = {s: np.log(a) for s, a in get.split_arrays_obs(targets, "total_counts").items()}
    train = get.split_mask(targets, "train")
    groups = targets.obs.loc[train, "section"].astype(str).to_numpy()
    rows = []
    for rep in reps:
        X = get.split_arrays(targets, [rep])
        res = probe.fit_probe(X, logd["train"], groups, name=f"log depth from {rep}", seed=seed)
        for s, p in res.predictions.items():
            y = logd[s][:, 0]
            rows.append({"features": rep, "split": s, "PCC": float(np.corrcoef(y, p[:, 0])[0, 1]),
                         "R2": float(1 - ((y - p[:, 0]) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
                         "penalty": float(res.per_gene["alpha"].iloc[0])})
    return pd.DataFrame(rows).set_index(["features", "split"])
