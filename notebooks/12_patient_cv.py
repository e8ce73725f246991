# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12. Which patient is held out: patient-level cross-validation
#
# **Overview.** Every score so far tests on one patient (on `her2st-demo`, one shallow section of
# patient B) after training on another. Which patient is held out is a choice too. Here every
# patient in turn is the test set and all the others train (leave one patient out; on data sets
# with many patients `n_folds` groups them into fewer folds). Each fold runs the recipe from the
# start on its own train spots: the gene rule, the target, the HEST probe's scaler, PCA and
# penalty, the depth-only reference. The probe chooses its penalty by cross-validation inside
# train (over the train sections, or over spatial blocks when a fold trains on a single
# section), so it needs no valid split; the report's models do, and a fold that trains on one
# patient has none to give without taking spots from the test patient, so they are not refitted
# here (`stlib.book.cv`).
#
# **Prerequisites.** Chapters 1 and 2 (`data.h5ad`, `embeddings.h5ad`). Running time: a few
# minutes.
#
# **Writes.** `tables/patient_cv.csv`, `tables/patient_cv_folds.csv`.

# %% tags=["parameters", "hide-input"]
results_dir = "results/default"
seed = 0
n_boot = 1000  # bootstrap replicates of the intervals
n_folds = None  # None: one fold per patient; an int: that many folds of whole patients

# %% tags=["hide-input"]
import anndata as ad
from myst_nb import glue

from stlib import pl
from stlib.book import cv, scoring, store

out = store.resolve(results_dir)
config = store.read_config(out)
data = ad.read_h5ad(out / "data.h5ad")
features = store.load_embeddings(out)
folds = cv.leave_one_patient_out(data) if n_folds is None else cv.patient_kfold(data, n_folds)
print(f"{len(folds)} folds; gene rule {config['gene_rule']!r}, target {config['target_transform']!r}")

# %%
scores, records = cv.cross_validate(data, features, folds, n_genes=config["n_genes"], gene_rule=config["gene_rule"],
                                    transform=config["target_transform"], n_boot=n_boot, seed=seed)
(out / "tables").mkdir(exist_ok=True)
scores.to_csv(out / "tables" / "patient_cv.csv")
records.to_csv(out / "tables" / "patient_cv_folds.csv")
records

# %% [markdown]
# Test scores of each fold, pooled over its test spots, with 95% bootstrap intervals (spots
# resampled within sections, sections resampled where a fold tests on several) and the fraction
# of the fold's noise ceiling (chapter 11):

# %%
per_fold = cv.table(scores)
per_fold

# %%
fig = pl.cv_folds(scores)

# %% [markdown]
# The mean over folds (each fold weighs the same, whatever its number of spots):

# %%
summary = cv.summary(scores)
scoring.show(summary)

# %% tags=["remove-input"]
def _pcc(fold: str, model: str) -> str:
    return f"{fold}: " + scoring.with_interval(*scores.loc[(fold, model), ["pcc", "pcc_lo", "pcc_hi"]])


glue("probe_by_fold", "; ".join(_pcc(f.name, "knn_hest_probe") for f in folds), display=False)
glue("depth_by_fold", "; ".join(_pcc(f.name, "depth_only") for f in folds), display=False)
glue("n_common_genes", str(int(records["genes chosen by every fold"].iloc[0])), display=False)
glue("folds_text", "; ".join(f"{f} (train {records.loc[f, 'train sections']})" for f in records.index),
     display=False)

# %% [markdown]
# ## What this shows
#
# - The folds: {glue:text}`folds_text`. The KNN-pooled probe's test PCC per fold is
#   {glue:text}`probe_by_fold`; the depth-only oracle's, {glue:text}`depth_by_fold`. One held-out
#   patient is one draw: the number the other chapters report depends on which patient it is,
#   and on how many sections, and how deep, the train patients bring.
# - Only {glue:text}`n_common_genes` of each fold's 250 genes are chosen by every fold: the gene
#   rule, fitted on the train patients, picks different genes when other patients train, so two
#   folds score different genes, and a model's score partly measures which genes the train
#   patients made it predict.
# - Next: [deviations from the paper](../deviations.md).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "12_patient_cv")
