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
# # 3. Count models: Poisson and negative-binomial GLMs
#
# **Overview.** One generalised linear model per gene on the raw counts (statsmodels), with
# the embeddings of chapter 2 as covariates: Poisson; negative binomial (NB2) with dispersion
# alpha = 1; negative binomial with alpha estimated *a priori* per gene from the train counts'
# mean m and variance v, alpha = (v - m) / m^2. Each on single-spot and on KNN-pooled image
# features (with the graph features).
#
# **Prerequisites.** Chapter 2 (`features.h5ad`). Running time: 1-2 minutes on `her2st-demo`.
#
# **Writes.** `predictions/{poisson,nb_alpha1,nb_apriori,knn_*}.h5ad`.

# %% tags=["parameters"]
results_dir = "results/default"
n_jobs = 2
maxiter = 100
model_cache = "cache/models"  # joblib cache of fitted models; None to always refit

# %%
import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stlib import pipeline, store
from stlib.models import glm

out = store.resolve(results_dir)
targets = ad.read_h5ad(out / "features.h5ad")
counts = store.counts_by_split(targets)
offset = pipeline.glm_offsets(targets)
print(targets.uns["target"]["description"])
print("GLM offset:", "log size factors (normalize_log1p target)" if offset else "none (raw log1p target)")

# %% [markdown]
# Features are standardised on the train spots; one GLM per gene, genes in parallel. A fit that
# fails or does not converge is counted and its predictions are missing (NaN), never zeros.

# %%
results = []
for features in ("single", "knn"):
    X, _, _ = pipeline.inputs(targets, features)
    for family in glm.FAMILIES:
        name = pipeline.model_name(family, features)
        res = pipeline.cached(glm.fit_glm, model_cache)(X, counts["train"], family=family, offset=offset, genes=list(targets.var_names),
                          n_jobs=n_jobs, maxiter=maxiter, name=name)
        store.save_predictions(res, targets, out)
        results.append(res)

status = pd.DataFrame({r.name: r.per_gene["status"].value_counts() for r in results}).fillna(0).astype(int).T
status

# %% [markdown]
# The a-priori dispersion of each gene (train counts only). Genes whose variance is below
# their mean get the lower clip; the estimator is unstable for rare genes, hence the upper clip.

# %%
alphas = next(r for r in results if r.name == "nb_apriori").per_gene
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.hist(np.log10(alphas["alpha"].dropna()), bins=40, color="grey")
ax.set_xlabel("log10 alpha (a priori, train)")
ax.set_ylabel("genes")
s = next(r for r in results if r.name == "nb_apriori").settings
print({k: s[k] for k in s if k.startswith("n_alpha")})

# %% [markdown]
# Mean over the 250 genes of the Pearson correlation and the MSE in target space (pooled over
# the spots of each split; the full table is in chapter 8):

# %%
pipeline.fit_summary(results, targets)

# %% [markdown]
# ## Summary
#
# - Six GLM variants, predictions written in the shared format (target space and counts).
# - Next: [linear models](04_linear).
