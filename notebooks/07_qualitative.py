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
# # 7. Qualitative results: clusters, tumour genes, maps, counts
#
# **Overview.** The paper's four figures, regenerated: (1) mean expression of one gene per
# Leiden cluster, truth beside each model, with the cluster map over the H&E; (2) tumour vs
# non-tumour differential expression on the true and on the predicted expression; (3) maps of
# chosen genes over the histology (truth, prediction, error); (4) predicted vs true counts of
# the KNN negative-binomial model.
#
# **Prerequisites.** Chapters 1-6. Running time: about a minute.

# %% tags=["parameters", "hide-input"]
results_dir = "results/default"
gene = "TSPAN6"  # the paper's Fig. 1 gene
models = ["knn_nb_apriori", "knn_ridge", "mlp", "gnn"]
split = "test"
map_genes = ["ERBB2", "CD24", "SCGB2A2"]
n_top_de = 20
count_model = "knn_nb_apriori"

# %% tags=["hide-input"]
import warnings

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stlib import pl, store, tl
from stlib.io.images import add_hires_image

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
out = store.resolve(results_dir)
targets = ad.read_h5ad(out / "targets.h5ad")
preds = store.load_predictions(out, models)
mask = (targets.obs["split"] == split).to_numpy()
sections = list(pd.unique(targets.obs.loc[mask, "section"].astype(str)))
section = sections[0]
print(f"split {split}: sections {sections}; maps show section {section}")

# %% [markdown]
# ## Fig. 1: one gene per Leiden cluster
#
# The clusters are the per-section Leiden clusters of chapter 1 (computed on the measured
# expression of all genes). The paper showed TSPAN6; a gene that is not among our 250 target
# genes cannot be shown, in which case we say so and take the target gene with the highest
# train variance instead.

# %%
if gene not in targets.var_names:
    print(f"{gene} is not among the {targets.n_vars} target genes of this run; using {targets.var_names[0]} instead")
    gene = str(targets.var_names[0])
means = tl.cluster_means(targets, preds, gene, mask=(targets.obs["section"] == section).to_numpy())
fig = pl.cluster_bars(means, gene, section)
missing = [m for m in preds if means[m].isna().all()]
if missing:
    print(f"no prediction of {gene} from {missing}: the GLM fit of this gene did not converge (chapter 3), "
          "so it is missing rather than replaced by zeros")
means.round(3)

# %%
add_hires_image(targets, section)
expr = tl.expression_adata(targets, targets.X, (targets.obs["section"] == section).to_numpy())
expr.obs["tumour (annotation)"] = expr.obs["tumor"].astype("string").fillna("unknown").astype("category")
fig = pl.spatial_panels(expr, ["leiden", "tumour (annotation)"], section=section,
                        titles=[f"Leiden clusters, {section}", f"tumour annotation ({expr.obs['tumor_source'].iloc[0]})"])

# %% [markdown]
# ## Fig. 2: tumour vs non-tumour genes, truth and prediction
#
# Differential expression (Wilcoxon, `scanpy.tl.rank_genes_groups`) of tumour against
# non-tumour spots of the split, on the measured and on the predicted expression. Unannotated
# spots are left out.

# %%
truth = tl.expression_adata(targets, targets.X, mask)
de_truth = tl.tumor_de(truth, n_top=n_top_de)
print(f"annotation: {truth.obs['tumor_source'].iloc[0]}; spots: "
      f"{truth.obs['tumor_group'].value_counts().to_dict()}, left out (no annotation): "
      f"{truth.uns['tumor_de']['n_left_out_unannotated']}")
overlap = {}
pred_de = {}
for name, p in preds.items():
    e = tl.expression_adata(targets, p.X, mask)
    pred_de[name] = (e, tl.tumor_de(e, n_top=n_top_de))
    overlap[name] = tl.top_overlap(de_truth["names"], pred_de[name][1]["names"])
print(f"top-{n_top_de} tumour genes shared with the truth:", overlap)

# %%
best_model = max(overlap, key=lambda k: (overlap[k], k))
fig = pl.dotplots(truth, pred_de[best_model][0], list(de_truth["names"][:12]), title_pred=f"prediction: {best_model}")

# %% [markdown]
# ## Fig. 3: expression over the histology
#
# Truth, prediction and error (prediction - truth) for chosen genes in the test section, for
# the model with the most tumour genes in common with the truth.

# %%
genes_shown = [g for g in map_genes if g in targets.var_names] or list(targets.var_names[:3])
p = preds[best_model]
e = tl.expression_adata(targets, targets.X, (targets.obs["section"] == section).to_numpy())
sec_mask = (targets.obs["section"] == section).to_numpy()
keys, titles, cmaps, vlims = [], [], [], []
for g in genes_shown:
    j = targets.var_names.get_loc(g)
    t, q = np.asarray(targets.X)[sec_mask, j], np.asarray(p.X)[sec_mask, j]
    e.obs[f"{g} truth"], e.obs[f"{g} pred"], e.obs[f"{g} error"] = t, q, q - t
    lim = float(np.nanmax(np.abs(q - t)))
    lo, hi = float(min(t.min(), np.nanmin(q))), float(max(t.max(), np.nanmax(q)))
    keys += [f"{g} truth", f"{g} pred", f"{g} error"]
    titles += [f"{g}: truth", f"{g}: {best_model}", f"{g}: error"]
    cmaps += ["viridis", "viridis", "RdBu_r"]
    vlims += [(lo, hi), (lo, hi), (-lim, lim)]
fig = pl.spatial_panels(e, keys, section=section, titles=titles, cmaps=cmaps, ncols=3, vlims=vlims)

# %% [markdown]
# ## Fig. 4: predicted vs true counts
#
# The negative-binomial GLM predicts a mean count per spot and gene. Its distribution is much
# narrower than that of the observed counts: a mean cannot reproduce the zeros and the long
# tail of the counts themselves.

# %%
cm = store.load_predictions(out, [count_model])[count_model]
true_counts = targets.layers["counts"][mask]
true_counts = true_counts.toarray() if hasattr(true_counts, "toarray") else np.asarray(true_counts)
pred_counts = np.asarray(cm.layers["counts"])[mask]
fig = pl.count_histogram(true_counts, pred_counts, title=f"{count_model}, {split} split")
print(f"true: mean {true_counts.mean():.2f}, zeros {np.mean(true_counts == 0):.1%}; "
      f"predicted: mean {np.nanmean(pred_counts):.2f}, below 0.5 {np.nanmean(pred_counts < 0.5):.1%}")

# %% [markdown]
# ## Summary
#
# - Cluster means and tumour genes show how much of the spatial structure survives the
#   prediction; the maps show where the errors are.
# - Next: [Table I](08_table).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib import provenance

provenance.show(results_dir, "07_qualitative")
