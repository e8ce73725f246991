"""Preprocessing: quality summary, target genes, targets, Leiden clusters per section.

Functions read and write AnnData in scanpy conventions; nothing is fitted on anything but
the spots of the splits named in ``fit_on`` (train by default).

Target transforms (``transform=``)
----------------------------------
``"paper"`` (default)
    What the authors' code did: each **section** is scaled with
    :func:`scanpy.pp.normalize_total` to that section's median total count (over all genes),
    then :func:`scanpy.pp.log1p`. The report's text ("X = log(X + 1)") leaves the
    normalisation out.
``"log1p"``
    :func:`scanpy.pp.log1p` of the raw counts: what the report's sentence says, not what its
    code did. Sequencing depth drives every gene's value.
``"normalize_log1p"``
    Every spot scaled to the same fixed total (``target_sum``, 10,000) over all genes, then
    ``log1p``: the same within a section as ``"paper"`` up to a per-section constant.

Gene rules (``rule=``)
----------------------
``"paper"`` (default)
    The authors' procedure on the ``fit_on`` spots: genes present in every fitted section's
    count file; the concatenated spots ``normalize_total`` + ``log1p``; 1,000 Seurat-flavour
    highly variable genes; genes named ``*__ambiguous*`` dropped; then the ``n_top`` with the
    highest mean. The authors fitted it on all sections (test included): ``fit_on="all"``
    reproduces that and is labelled as a leak.
``"book"``
    This book's earlier rule: the ``n_mean`` genes with the highest mean of the target, then
    the ``n_top`` most variable among them.
``"mean"``
    The field's rule (ST-Net, He et al. 2020, and the HER2ST benchmarks after it): the ``n_top``
    genes with the highest mean of the target on the ``fit_on`` spots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from stlib import get
from stlib._leaks import RECORDS
from stlib._utils import SPLITS, dense
from stlib.errors import DataError

Transform = Literal["paper", "log1p", "normalize_log1p"]
TRANSFORMS: tuple[str, ...] = ("paper", "log1p", "normalize_log1p")
DEFAULT_TRANSFORM = "paper"
GENE_RULES: tuple[str, ...] = ("paper", "book", "mean")
DEFAULT_GENE_RULE = "paper"
TARGET_SUM = 1e4

TRANSFORM_DESCRIPTIONS: dict[str, str] = {
    "paper": "per section, normalize_total to the section's median total count (all genes), then log1p "
             "(the authors' code)",
    "log1p": "log1p of raw counts (the report's sentence, not its code)",
    "normalize_log1p": "normalize_total to {target_sum:g} counts per spot (all genes), then log1p",
}

GENE_RULE_TEXT: dict[str, str] = {
    "book": (
        "On the {fit_on} spots only, take the {n_mean} genes with the highest mean of the target "
        "({transform}), then among them the {n_top} with the highest variance of the target; ties are broken "
        "by gene id. Genes detected in fewer than {min_spots} {fit_on} spots are never candidates."
    ),
    "mean": (
        "The field's rule (ST-Net and the HER2ST benchmarks) on the {fit_on} spots only: the {n_top} genes with "
        "the highest mean of the target ({transform}); ties are broken by gene id. Genes detected in fewer than "
        "{min_spots} {fit_on} spots are never candidates."
    ),
    "paper": (
        "The authors' rule on the {fit_on} spots: genes present in the count file of every {fit_on} section; "
        "the spots concatenated, normalize_total (to their median total) and log1p; the {n_hvg} most variable "
        "genes (scanpy highly_variable_genes, Seurat flavour); genes named '__ambiguous' dropped; then the "
        "{n_top} with the highest mean (ties broken by gene id)."
    ),
}


#: :func:`section_summary`'s columns in one table per question: which spots were kept, how deep and
#: how large each section is, how its spots are annotated.
SECTION_SUMMARY_PARTS: dict[str, list[str]] = {
    "spots": ["patient", "split", "spots listed", "spots kept", "dropped: no counts", "dropped: no coords",
              "dropped: not selected"],
    "depth and size": ["genes", "genes detected", "median counts/spot", "image (w x h px)"],
    "annotation": ["tumour", "non-tumour", "unknown", "not annotated"],
}


def section_summary(adata: ad.AnnData) -> pd.DataFrame:
    """One row per section: spots, dropped spots, genes detected, counts, annotation, image size.

    Reads ``X`` (raw counts), ``obs["section", "patient", "split", "tumor", "tumor_label"]``,
    ``uns["load_report"]`` and ``uns["spatial"][section]["metadata"]["image_shape"]``.

    Parameters
    ----------
    adata
        Spots read by :mod:`stlib.io`, raw counts in ``X``. ``obs["section"]`` and each section's
        ``image_shape`` are required; without the other keys the columns are empty, zero or
        computed from ``X``.

    Returns
    -------
    DataFrame
        Indexed by section (in the order of ``obs["section"]``'s categories), with columns
        ``patient``, ``split``, ``spots listed``, ``spots kept``, ``dropped: no counts``,
        ``dropped: no coords``, ``dropped: not selected``, ``genes`` (in the section's count file),
        ``genes detected`` (in the section's spots), ``median counts/spot``, ``tumour``,
        ``non-tumour``, ``unknown`` (a label that is neither), ``not annotated`` and
        ``image (w x h px)`` (:data:`SECTION_SUMMARY_PARTS` groups them by question).
    """
    rows = []
    report = adata.uns.get("load_report", {})
    for sec in adata.obs["section"].cat.categories if hasattr(adata.obs["section"], "cat") else adata.obs["section"].unique():
        mask = get.section_mask(adata, str(sec))
        X = adata.X[mask]
        totals = np.asarray(X.sum(axis=1)).ravel()
        detected = int((np.asarray((X > 0).sum(axis=0)).ravel() > 0).sum())
        obs = adata.obs.loc[mask]
        rep = report.get(sec, {})
        h, w = adata.uns["spatial"][sec]["metadata"]["image_shape"]
        tumor = obs["tumor"] if "tumor" in obs else pd.Series(pd.NA, index=obs.index, dtype="boolean")
        label = obs["tumor_label"] if "tumor_label" in obs else pd.Series(None, index=obs.index)
        rows.append(
            {
                "section": sec,
                "patient": str(obs["patient"].iloc[0]) if "patient" in obs else "",
                "split": str(obs["split"].iloc[0]) if "split" in obs else "",
                "spots listed": rep.get("n_spots_listed", int(mask.sum())),
                "spots kept": int(mask.sum()),
                "dropped: no counts": len(rep.get("dropped_no_counts", [])),
                "dropped: no coords": len(rep.get("dropped_no_coords", [])),
                "dropped: not selected": len(rep.get("dropped_not_in_tissue", [])) + len(rep.get("dropped_selected_missing", [])),
                "genes": rep.get("n_genes_file", adata.n_vars),
                "genes detected": detected,
                "median counts/spot": float(np.median(totals)),
                "tumour": int((tumor == True).sum()),  # noqa: E712  (nullable boolean)
                "non-tumour": int((tumor == False).sum()),  # noqa: E712
                "unknown": int((tumor.isna() & label.notna()).sum()),
                "not annotated": int((tumor.isna() & label.isna()).sum()),
                "image (w x h px)": f"{w:,} x {h:,}",
            }
        )
    return pd.DataFrame(rows).set_index("section")


def _check_transform(transform: str) -> None:
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown target transform {transform!r}; use one of {TRANSFORMS}")


def size_factors(
    adata: ad.AnnData, transform: str = DEFAULT_TRANSFORM, *, library_key: str = "section", target_sum: float = TARGET_SUM
) -> np.ndarray:
    """Per spot, the factor its counts are divided by before ``log1p`` (1 for ``"log1p"``).

    ``"paper"``: total counts / median total count of the spot's section (what
    :func:`scanpy.pp.normalize_total` with ``target_sum=None`` does on one section);
    ``"normalize_log1p"``: total counts / ``target_sum``. Totals are over all genes of ``X``.

    Parameters
    ----------
    adata
        Spots with raw counts in ``X``.
    transform
        ``"paper"``, ``"log1p"`` or ``"normalize_log1p"`` (:data:`TRANSFORMS`, module docstring).
    library_key
        ``obs`` column naming each spot's section (used by ``"paper"`` only).
    target_sum
        Counts per spot after normalisation (used by ``"normalize_log1p"`` only).

    Returns
    -------
    ndarray
        ``(n_obs,)`` float64 factors. A spot with zero total counts is a
        :class:`~stlib.errors.DataError` (except for ``"log1p"``).
    """
    _check_transform(transform)
    totals = np.asarray(adata.X.sum(axis=1)).ravel().astype(np.float64)
    if transform == "log1p":
        return np.ones_like(totals)
    if (totals <= 0).any():
        raise DataError("<adata>", f"{int((totals <= 0).sum())} spot(s) with zero total counts cannot be normalised")
    if transform == "normalize_log1p":
        return totals / target_sum
    sections = adata.obs[library_key].astype(str).to_numpy()
    out = np.empty_like(totals)
    for sec in pd.unique(sections):
        m = sections == sec
        out[m] = totals[m] / np.median(totals[m])
    return out


def _normalized_log1p(X: sp.spmatrix | np.ndarray, factors: np.ndarray) -> sp.csr_matrix:
    """``log1p(X / factors[:, None])`` as a sparse float64 matrix (zeros stay zeros)."""
    Xs = sp.csr_matrix(X, dtype=np.float64)
    Xs = sp.csr_matrix(sp.diags(1.0 / factors) @ Xs)
    Xs.data = np.log1p(Xs.data)
    return Xs


def _sparse_mean_var(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    mean = np.asarray(X.mean(axis=0)).ravel()
    sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
    var = (sq - mean**2) * n / max(n - 1, 1)
    return mean, np.maximum(var, 0.0)


def _fit_splits(fit_on: str | Sequence[str]) -> list[str]:
    if isinstance(fit_on, str):
        return list(SPLITS) if fit_on == "all" else [fit_on]
    return list(fit_on)


def genes_in_all_sections(adata: ad.AnnData, sections: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``var_names``: genes present in the count file of every section given.

    Uses ``varm["in_section"]`` (written by the readers: which genes each section's file
    holds); without it every gene counts as present (data built in memory).

    Parameters
    ----------
    adata
        Data read by :mod:`stlib.io` (``varm["in_section"]``: genes x sections, boolean).
    sections
        Section ids; each must be a column of ``varm["in_section"]`` when it exists (else a
        :class:`~stlib.errors.DataError`).

    Returns
    -------
    ndarray
        ``(n_vars,)`` boolean, True for a gene present in the count file of every section given.
    """
    if "in_section" not in adata.varm:
        return np.ones(adata.n_vars, dtype=bool)
    pres = adata.varm["in_section"]
    pres = pres if isinstance(pres, pd.DataFrame) else pd.DataFrame(pres, index=adata.var_names)
    missing = [s for s in sections if s not in pres.columns]
    if missing:
        raise DataError("varm['in_section']", f"no gene list for section(s) {missing}")
    return pres[list(sections)].to_numpy(dtype=bool).all(axis=1)


def select_genes(
    adata: ad.AnnData,
    n_top: int = 250,
    *,
    rule: str = DEFAULT_GENE_RULE,
    n_mean: int = 1000,
    n_hvg: int = 1000,
    transform: str = DEFAULT_TRANSFORM,
    fit_on: str | Sequence[str] = "train",
    split_key: str = "split",
    library_key: str = "section",
    min_spots: int = 10,
    target_sum: float = TARGET_SUM,
) -> list[str]:
    """Choose the target genes on the ``fit_on`` spots only (see the module docstring for the rules).

    ``fit_on`` is a split name, a list of them, or ``"all"`` (every split: the authors' choice,
    a leak of valid and test expression into the gene choice, recorded in
    ``uns["gene_selection"]["leak"]``).

    Writes ``var["sel_mean"]``, ``var["sel_var"]``, ``var["target_gene"]`` (and, for the
    paper rule, ``var["highly_variable"]``, ``var["dispersions_norm"]``) and
    ``uns["gene_selection"]``. Returns the chosen genes: by decreasing mean (paper rule) or
    decreasing variance (book rule) or decreasing mean (mean rule).

    Parameters
    ----------
    adata
        Spots with raw counts in ``X`` and ``obs[split_key]``; ``var`` and ``uns`` are written in
        place.
    n_top
        Number of genes to choose.
    rule
        ``"paper"`` (default), ``"book"`` or ``"mean"`` (:data:`GENE_RULES`, module docstring).
    n_mean
        Book rule: the candidates with the highest mean of the target, among which the ``n_top``
        most variable are chosen.
    n_hvg
        Paper rule: the number of Seurat-flavour highly variable genes
        (:func:`scanpy.pp.highly_variable_genes` ``n_top_genes``).
    transform
        Book and mean rules: the target transform the genes are ranked on (:data:`TRANSFORMS`). The
        paper rule normalises the fitted spots itself (``normalize_total`` to their median, ``log1p``).
    fit_on
        A split name, a list of them, or ``"all"``: the spots the genes are chosen on.
    split_key
        ``obs`` column holding each spot's split.
    library_key
        ``obs`` column naming each spot's section (the per-section size factors of ``"paper"``
        targets; the paper rule's sections whose gene lists are intersected).
    min_spots
        Book and mean rules: a gene detected (count > 0) in fewer ``fit_on`` spots is never a
        candidate.
    target_sum
        Counts per spot for ``transform="normalize_log1p"``.

    Returns
    -------
    list of str
        The ``n_top`` chosen genes (``var_names``), in the order above. Fewer candidates than
        ``n_top`` is a :class:`~stlib.errors.DataError`.
    """
    if rule not in GENE_RULES:
        raise ValueError(f"unknown gene rule {rule!r}; use one of {GENE_RULES}")
    _check_transform(transform)
    fit = _fit_splits(fit_on)
    mask = get.split_mask(adata, fit, split_key)
    if not mask.any():
        raise DataError("<adata>", f"no spot in split(s) {fit} to select genes on")
    genes = adata.var_names.to_numpy().astype(str)
    sub = adata[mask]
    info: dict = {}
    if rule in ("book", "mean"):
        Xf = sp.csr_matrix(sub.X)
        n_detected = np.asarray((Xf > 0).sum(axis=0)).ravel()
        T = _normalized_log1p(Xf, size_factors(sub, transform, library_key=library_key, target_sum=target_sum))
        mean, var = _sparse_mean_var(T)
        cand = np.flatnonzero(n_detected >= min_spots)
        if len(cand) < n_top:
            raise DataError("<adata>", f"only {len(cand)} genes detected in >= {min_spots} {fit} spots; need {n_top}")
        if rule == "mean":
            chosen = cand[np.lexsort((genes[cand], -mean[cand]))[:n_top]]
        else:
            order = np.lexsort((genes[cand], -mean[cand]))[:n_mean]
            top_mean = cand[order]
            order2 = np.lexsort((genes[top_mean], -var[top_mean]))[:n_top]
            chosen = top_mean[order2]
        text = GENE_RULE_TEXT[rule].format(fit_on="+".join(fit), n_mean=n_mean, transform=transform, n_top=n_top,
                                           min_spots=min_spots)
    else:
        sections = list(pd.unique(sub.obs[library_key].astype(str)))
        common = genes_in_all_sections(adata, sections)
        work = ad.AnnData(X=sp.csr_matrix(sub.X[:, common], dtype=np.float32),
                          var=pd.DataFrame(index=genes[common]))
        work.obs_names = sub.obs_names.copy()
        # totals over the common genes, as the authors' concatenated table held only those
        sc.pp.normalize_total(work)
        sc.pp.log1p(work)
        sc.pp.highly_variable_genes(work, n_top_genes=n_hvg, flavor="seurat")
        ambiguous = np.array(["__ambiguous" in g for g in genes[common]], dtype=bool)
        hv = work.var["highly_variable"].to_numpy() & ~ambiguous
        mean_c, var_c = _sparse_mean_var(sp.csr_matrix(work.X, dtype=np.float64))
        idx_common = np.flatnonzero(common)
        cand = idx_common[hv]
        if len(cand) < n_top:
            raise DataError("<adata>", f"only {len(cand)} highly variable genes on {fit}; need {n_top}")
        order = np.lexsort((genes[cand], -mean_c[hv]))[:n_top]
        chosen = cand[order]
        mean = np.full(adata.n_vars, np.nan)
        var = np.full(adata.n_vars, np.nan)
        mean[idx_common], var[idx_common] = mean_c, var_c
        adata.var["highly_variable"] = False
        adata.var.iloc[idx_common[work.var["highly_variable"].to_numpy()],
                       adata.var.columns.get_loc("highly_variable")] = True
        disp = np.full(adata.n_vars, np.nan)
        disp[idx_common] = work.var["dispersions_norm"].to_numpy(dtype=np.float64)
        adata.var["dispersions_norm"] = disp
        info = {"n_common_genes": int(common.sum()), "n_hvg": int(n_hvg),
                "n_ambiguous_dropped": int(work.var["highly_variable"].sum() - hv.sum())}
        text = GENE_RULE_TEXT["paper"].format(fit_on="+".join(fit), n_hvg=n_hvg, n_top=n_top)
    adata.var["sel_mean"] = mean
    adata.var["sel_var"] = var
    adata.var["target_gene"] = False
    adata.var.iloc[chosen, adata.var.columns.get_loc("target_gene")] = True
    adata.uns["gene_selection"] = {
        "rule": text,
        "rule_name": rule,
        "fit_on": fit,
        "leak": RECORDS["genes"] if "test" in fit else "",
        "n_top": n_top,
        "n_mean": n_mean,
        "min_spots": min_spots,
        "transform": transform,
        "n_fit_spots": int(mask.sum()),
        "genes": [str(g) for g in genes[chosen]],
        **info,
    }
    return [str(g) for g in genes[chosen]]


def gene_set(adata: ad.AnnData, genes: Sequence[str], *, name: str) -> list[str]:
    """A fixed gene list (e.g. the authors' 250 Ensembl ids) checked against the data.

    Records ``uns["gene_selection"]`` with ``rule_name = name``; raises a :class:`DataError`
    naming how many of the genes the data lack (e.g. the authors' Ensembl ids on a data set
    whose genes are symbols).

    Parameters
    ----------
    adata
        The data; ``var["target_gene"]`` and ``uns["gene_selection"]`` are written in place.
    genes
        Gene names as in ``var_names``; every one must be present.
    name
        Name of the list, recorded as ``uns["gene_selection"]["rule_name"]``.

    Returns
    -------
    list of str
        ``genes``, in the given order.
    """
    present = [g for g in genes if g in adata.var_names]
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise DataError(
            "<adata>",
            f"gene set {name!r}: {len(missing)} of its {len(genes)} genes are not in the data "
            f"(e.g. {missing[:3]}; the data's genes look like {list(adata.var_names[:3])})",
        )
    adata.var["target_gene"] = adata.var_names.isin(present)
    adata.uns["gene_selection"] = {"rule": f"the fixed gene list {name!r} ({len(present)} genes)", "rule_name": name,
                                   "fit_on": [], "leak": "", "genes": list(present)}
    return list(present)


def make_targets(
    adata: ad.AnnData,
    genes: Sequence[str],
    *,
    transform: str = DEFAULT_TRANSFORM,
    target_sum: float = TARGET_SUM,
    library_key: str = "section",
) -> ad.AnnData:
    """The modelling AnnData: the chosen genes, targets in ``X``, raw counts in a layer.

    ``transform`` is one of :data:`TRANSFORMS` (module docstring). ``"paper"`` runs
    :func:`scanpy.pp.normalize_total` (``target_sum=None``: the section's median) and
    :func:`scanpy.pp.log1p` on each section separately, over all genes, as the authors did.

    Returns a new AnnData with ``X`` = target (float32), ``layers["counts"]`` (raw),
    ``obs["total_counts"]`` (over all genes), ``obs["log_size_factor"]`` = log of the factor
    each spot was divided by (:func:`size_factors`; the GLM offset for normalised targets, 0
    for ``"log1p"``) and ``uns["target"]``.

    Parameters
    ----------
    adata
        Spots with raw counts in ``X`` (every spot with a positive total) and ``obs[library_key]``.
    genes
        The target genes (e.g. from :func:`select_genes`); each must be in ``var_names``.
    transform
        ``"paper"`` (default), ``"log1p"`` or ``"normalize_log1p"``.
    target_sum
        Counts per spot for ``"normalize_log1p"`` (recorded in ``uns["target"]`` for it only).
    library_key
        ``obs`` column naming each spot's section (the ``"paper"`` transform's per-section median).

    Returns
    -------
    AnnData
        The spots of ``adata`` in their order and the ``genes`` in the given order, as above; the
        other ``uns`` entries of ``adata`` are carried over (except ``log1p``).
    """
    _check_transform(transform)
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise DataError("<adata>", f"{len(missing)} target gene(s) not in the data, e.g. {missing[:3]}")
    totals = np.asarray(adata.X.sum(axis=1)).ravel().astype(np.float64)
    if (totals <= 0).any():
        raise DataError("<adata>", f"{int((totals <= 0).sum())} spot(s) with zero total counts")
    if transform == "paper":
        parts = []
        for sec in pd.unique(adata.obs[library_key].astype(str)):
            part = adata[get.section_mask(adata, str(sec), library_key)].copy()
            part.layers["counts"] = part.X.copy()
            part.X = part.X.astype(np.float32)
            sc.pp.normalize_total(part)
            sc.pp.log1p(part)
            parts.append(part[:, list(genes)].copy())
        out = ad.concat(parts, merge="same")
        out = out[adata.obs_names].copy()
    else:
        full = adata.copy()
        full.layers["counts"] = full.X.copy()
        full.X = full.X.astype(np.float32)
        if transform == "normalize_log1p":
            sc.pp.normalize_total(full, target_sum=target_sum)
        sc.pp.log1p(full)
        out = full[:, list(genes)].copy()
    out.X = dense(out.X)
    out.obs["total_counts"] = totals
    out.obs["log_size_factor"] = np.log(size_factors(adata, transform, library_key=library_key, target_sum=target_sum))
    for key, value in adata.uns.items():
        if key != "log1p":
            out.uns[key] = value
    out.uns["target"] = {
        "transform": transform,
        "target_sum": float(target_sum) if transform == "normalize_log1p" else None,
        "description": TRANSFORM_DESCRIPTIONS[transform].format(target_sum=target_sum),
    }
    out.uns.pop("log1p", None)
    return out


def leiden_per_section(
    adata: ad.AnnData,
    *,
    resolution: float = 1.0,
    n_pcs: int = 15,
    n_neighbors: int = 15,
    library_key: str = "section",
    key_added: str = "leiden",
    seed: int = 0,
) -> None:
    """Leiden clusters computed separately in each section, on all genes.

    Per section: ``normalize_total`` -> ``log1p`` -> PCA (``n_pcs``) -> kNN graph (Gaussian kernel; avoids umap/numba start-up) -> Leiden
    (igraph flavour, seeded). Writes ``obs[key_added]`` as ``"<section>-<cluster>"``
    (categorical) and ``obs[key_added + "_local"]`` (the cluster number within the section).

    Parameters
    ----------
    adata
        Spots with raw counts in ``X``; ``obs`` is written in place. Each section uses the genes
        detected in its spots.
    resolution
        Leiden resolution (:func:`scanpy.tl.leiden`); higher gives more clusters.
    n_pcs
        Principal components per section (fewer when a section has fewer spots or genes).
    n_neighbors
        Neighbours per spot in the kNN graph.
    library_key
        ``obs`` column naming each spot's section.
    key_added
        ``obs`` column for the labels (and ``key_added + "_local"``).
    seed
        Random state of the PCA, the graph and Leiden.
    """
    labels = pd.Series(index=adata.obs_names, dtype=object)
    for sec in pd.unique(adata.obs[library_key]):
        sub = adata[get.section_mask(adata, str(sec), library_key)].copy()
        sub = sub[:, np.asarray((sub.X > 0).sum(axis=0)).ravel() > 0].copy()
        sub.X = sub.X.astype(np.float32)
        sc.pp.normalize_total(sub)
        sc.pp.log1p(sub)
        sc.pp.pca(sub, n_comps=min(n_pcs, sub.n_obs - 1, sub.n_vars - 1), random_state=seed)
        sc.pp.neighbors(sub, n_neighbors=n_neighbors, method="gauss", random_state=seed)
        sc.tl.leiden(sub, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
        labels.loc[sub.obs_names] = sub.obs["leiden"].astype(str).to_numpy()
    adata.obs[key_added + "_local"] = pd.Categorical(labels.to_numpy())
    adata.obs[key_added] = pd.Categorical([f"{s}-{c}" for s, c in zip(adata.obs[library_key], labels)])
