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
# The authors' code differs in four ways, all run by `protocol="paper"` (chapter 10 measures
# each): its "a priori" alpha is m^2 / (v - m), the *inverse* of the NB2 dispersion; features
# are not scaled; fits that do not converge are kept; and the GLMs are scored on raw counts
# against the predicted mean, which is where Table I's MSE of 128 and 588 and R2 of -46 and
# -191 come from. Here (sound protocol) the log size factor is the GLM's offset and predictions
# are scored in the target's space, like every other model.
#
# **Prerequisites.** Chapter 2 (`embeddings.h5ad`). Running time: 1-2 minutes on the default data set.
#
# **Writes.** `predictions/{poisson,nb_alpha1,nb_apriori,knn_*}.h5ad`.

# %% tags=["parameters", "hide-input"]
protocol = "sound"  # "paper": the authors' alpha, no scaling, count-space scores
results_dir = "results/default"
n_jobs = 2
scheduler = None  # a dask.distributed scheduler address: the per-gene GLMs run on that cluster
maxiter = 100
model_cache = "cache/models"  # joblib cache of fitted models; None to always refit

# %% tags=["hide-input"]
import pandas as pd
from myst_nb import glue

from stlib import get, pl
from stlib.book import scoring, store
from stlib.book import protocol as protocols
from stlib.models import glm, inputs

out = store.resolve(results_dir)
scoring.use_run_intervals(out)  # the run's rule for constant predictions (chapter 1)
proto = protocols.as_protocol(protocol)
targets = store.load_targets(out)
counts = get.counts_by_split(targets)
kwargs = protocols.glm_kwargs(proto, targets)
print(targets.uns["target"]["description"])
print("GLM offset:", "log size factors" if kwargs["offset"] else "none", "| scored in", kwargs["score_space"],
      "space | features", "standardised on train" if proto.scale else "raw")

# %% [markdown]
# One GLM per gene, genes in parallel. A fit that fails or does not converge is counted; under
# the sound protocol its predictions are missing (NaN), never zeros.

# %% tags=["hide-input"]
names = [inputs.model_name(family, features) for features in ("single", "knn") for family in glm.FAMILIES]
results = list(protocols.fit_table_models(targets, proto, models=tuple(names), model_cache=model_cache,
                                          n_jobs=n_jobs, glm_maxiter=maxiter, scheduler=scheduler).values())
for res in results:
    store.save_predictions(res, targets, out)

status = pd.DataFrame({r.name: r.per_gene["status"].value_counts() for r in results}).fillna(0).astype(int).T
scoring.readable_models(status)

# %% [markdown]
# The a-priori alpha of each gene (train counts only): the NB2 dispersion (v - m) / m^2, and
# the authors' m^2 / (v - m), its inverse. Genes whose variance is below their mean get the lower
# clip (the authors: alpha 0, a Poisson model); the counts printed below say how many genes are
# clipped.

# %% tags=["hide-input"]
c = counts["train"]
moments, paper_alpha = glm.apriori_alpha(c)[1], glm.apriori_alpha_paper(c)
fig = pl.dispersion_histogram(moments, paper_alpha)
s = next(r for r in results if r.name == "nb_apriori").settings
print(s["alpha_rule"])
print("genes whose alpha was", ", ".join(f"{k.removeprefix('n_alpha_').replace('_', ' ')}: {s[k]}" for k in s
                                        if k.startswith("n_alpha")))

# %% [markdown]
# Mean over the 250 genes of the Pearson correlation and the MSE (pooled over the spots of each
# split; the full table is in chapter 8):

# %% tags=["hide-input"]
summary = scoring.fit_summary(results, targets)
scoring.readable_models(summary)

# %% tags=["remove-input"]
best = summary["valid PCC"].idxmax()  # read on valid (patient A); test is read in chapter 8
glue("best_glm", pl.model_label(best), display=False)
glue("best_glm_valid", f"{summary.loc[best, 'valid PCC']:.3f}", display=False)
glue("glm_valid_range", f"{summary['valid PCC'].min():.3f} to {summary['valid PCC'].max():.3f}", display=False)

# %% [markdown]
# ## Summary
#
# - Six GLM variants, predictions written in the shared format (target space and counts). Their
#   mean valid PCC ranges from {glue:text}`glm_valid_range`; the highest is that of
#   {glue:text}`best_glm` ({glue:text}`best_glm_valid`), a valid score only: chapter 8 puts
#   every model on test with intervals.
# - Next: [linear models](04_linear).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "03_glm")
