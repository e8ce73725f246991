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
# **Overview.** The report's four figures, redone to show what their captions describe:
# (1) mean expression per Leiden cluster, truth beside several models, and the error of the
# cluster means over all genes; (2) the tumour genes of the truth and each model's own tumour
# genes, with their overlap; (3) maps over the histology (H&E, truth, prediction, error) on the
# authors' target and on a depth-normalised one; (4) measured counts against the counts the
# KNN negative-binomial model predicts. What the report's own figures showed is on the
# [deviations](../deviations.md) page.
#
# **Prerequisites.** Chapters 1-6. Running time: about a minute.

# %% tags=["parameters", "hide-input"]
results_dir = "results/default"
gene = "TSPAN6"  # the paper's Fig. 1 gene
models = ["knn_nb_apriori", "knn_ridge", "mlp", "gnn"]
split = "test"
map_genes = ["ERBB2", "CD24", "SCGB2A2"]
map_model = "knn_ridge"  # the report's Fig. 3 model
n_top_de = 10
de_split = "valid"  # Fig. 2's split, as in the report (its pathologist-annotated sections when it has any)
count_model = "knn_nb_apriori"
model_cache = "cache/models"
seed = 0

# %% tags=["hide-input"]
import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd

from IPython.display import display
from myst_nb import glue

from stlib import get, pl
from stlib.book import ladder, protocol, qualitative, scoring, store
from stlib.io import add_hires_image
from stlib.models import reference

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
out = store.resolve(results_dir)
scoring.use_run_intervals(out)  # the run's rule for constant predictions (chapter 1)
targets = store.load_targets(out, embeddings=False)
preds = store.load_predictions(out, models)
mask = get.split_mask(targets, split)
sections = list(pd.unique(targets.obs.loc[mask, "section"].astype(str)))
section = sections[0]
print(f"split {split}: sections {sections}; maps show section {section}")

# %% [markdown]
# ## Fig. 1: expression per Leiden cluster
#
# The clusters are the per-section Leiden clusters of chapter 1 (computed on the measured
# expression of all genes). Panel (a) is one gene: the report showed TSPAN6, which is not among
# its own 250 genes; when the gene is not among this run's target genes we say so and show the
# first target gene instead. The report's "prediction" in that panel was the mean over all 250
# predicted genes; panel (b) is the comparison it meant, done gene by gene: per cluster, the
# difference between the predicted and the true cluster mean, averaged over all target genes.

# %% tags=["hide-input"]
if gene not in targets.var_names:
    print(f"{gene} is not among the {targets.n_vars} target genes of this run; using {targets.var_names[0]} instead")
    gene = str(targets.var_names[0])
sec_mask = get.section_mask(targets, section)
means = qualitative.cluster_means(targets, preds, gene, mask=sec_mask)
errors = qualitative.cluster_errors(targets, preds, mask=sec_mask)
errors.attrs["n_genes"] = targets.n_vars
missing = [m for m in preds if means[m].isna().all()]
if missing:
    print(f"no prediction of {gene} from {missing}: the GLM fit of this gene did not converge (chapter 3), "
          "so it is missing rather than replaced by zeros")
fig = pl.cluster_figure(means, errors, gene, section)

# %% [markdown]
# Mean over clusters of panel (b), and the same for a model that predicts every spot as the
# train mean of each gene (the `train_mean` reference of chapter 8, fitted here): a cluster-mean
# error near that reference means the model does not separate the clusters; one below it can
# come from a smaller offset over the whole section as well as from separating them.

# %% tags=["hide-input"]
train_mean = reference.reference_models(targets)[0]
train_mean_X = get.full_predictions(targets, train_mean.predictions)
ref = qualitative.cluster_errors(targets, {"train_mean": ad.AnnData(X=train_mean_X)}, mask=sec_mask)
summary = pd.concat([errors.drop(columns="n_spots"), ref.drop(columns="n_spots")], axis=1)
cluster_err = summary.mean().rename("mean over clusters")
glue("cluster_err_models", "; ".join(f"{pl.model_label(m)} {v:.2f}" for m, v in cluster_err.drop("train_mean").items()), display=False)
glue("cluster_err_ref", f"{cluster_err['train_mean']:.2f}", display=False)
scoring.readable_models(cluster_err.to_frame().T.round(3))

# %% tags=["hide-input"]
add_hires_image(targets, section)
expr = qualitative.expression_adata(targets, targets.X, sec_mask)
expr.obs["tumour (annotation)"] = (expr.obs["tumor"].astype("string").map({"True": "tumour", "False": "non-tumour"})
                                   .fillna("unknown").astype("category"))
colours = {"tumour": pl.COMPARTMENT_COLORS["tumour"], "non-tumour": pl.COMPARTMENT_COLORS["non-tumour"],
           "unknown": pl.COMPARTMENT_COLORS["unannotated"]}  # chapter 11's colours
expr.uns["tumour (annotation)_colors"] = [colours[c] for c in expr.obs["tumour (annotation)"].cat.categories]
# this section's clusters only, in distinct colours (the data set's palette repeats greys and reds)
expr.obs["leiden"] = expr.obs["leiden"].astype("category").cat.remove_unused_categories()
expr.uns["leiden_colors"] = [mpl.colors.to_hex(c)
                             for c in mpl.colormaps["tab10" if len(expr.obs["leiden"].cat.categories) <= 10 else "tab20"].colors]
expr.uns["leiden_colors"] = expr.uns["leiden_colors"][:len(expr.obs["leiden"].cat.categories)]
print(f"tumour annotation of {section}: {expr.obs['tumor_source'].iloc[0]}")
fig = pl.spatial_panels(expr, ["leiden", "tumour (annotation)"], section=section,
                        titles=[f"Leiden clusters, {section}", "tumour annotation"], crop_margin=0.03)
pl.as_image(fig, format="jpeg")  # mostly H&E: stored as JPEG

# %% [markdown]
# ## Fig. 2: the tumour genes of the truth and of each model
#
# Differential expression (Wilcoxon, `scanpy.tl.rank_genes_groups`) of tumour against
# non-tumour spots, run separately on the measured expression and on each model's prediction,
# as the report did ("there is no overlap in DEG identities"). The report drew it on a valid
# section with the pathologist's tumour column; so does this figure: valid is patient A, and A1
# is its one section annotated by a pathologist (invasive cancer and cancer in situ against the
# rest; A2's labels are expression clusters, so A2 is left out). Each column's own top genes
# carry a dot; the colour is the z-score of every shown gene in every expression, so a
# truth gene that a model ranks lower still shows whether the model moves it the right way.
# Unannotated spots are left out.

# %% tags=["hide-input"]
de_mask, de_note = qualitative.de_spots(targets, de_split)
print(de_note)
truth = qualitative.expression_adata(targets, targets.X, de_mask)
qualitative.tumor_de(truth, n_top=n_top_de)
print(f"annotation: {truth.obs['tumor_source'].iloc[0]}; spots: "
      f"{truth.obs['tumor_group'].value_counts().to_dict()}, left out (no annotation): "
      f"{truth.uns['tumor_de']['n_left_out_unannotated']}")
scores = qualitative.de_scores(targets, {"truth": targets.X, **{n: p.X for n, p in preds.items()}}, de_mask)
tops = qualitative.top_genes(scores, n_top_de)
overlap = {m: len(set(tops[m]) & set(tops["truth"])) for m in preds}
same_sign = {m: float((np.sign(scores.loc[tops["truth"], m]) == np.sign(scores.loc[tops["truth"], "truth"])).mean())
             for m in preds}
print(f"top-{n_top_de} tumour genes shared with the truth: {overlap}")
glue("n_top_de", str(n_top_de), display=False)
print("share of the truth's top genes each model moves the same way:", {m: round(v, 2) for m, v in same_sign.items()})
glue("de_overlap", "; ".join(f"{pl.model_label(m)} {k}" for m, k in overlap.items()), display=False)
glue("de_same_sign", "; ".join(f"{pl.model_label(m)} {v:.0%}" for m, v in same_sign.items()), display=False)
fig = pl.de_heatmap(scores, tops)

# %% [markdown]
# ## Fig. 3: expression over the histology
#
# The test section's H&E, then truth, prediction and error (prediction - truth) of chosen genes
# for KNN Ridge (the report's Fig. 3 model), on the authors' target. Truth and prediction of a
# gene share one colour scale, the bar beside the prediction.

# %% tags=["hide-input"]
genes_shown = [g for g in map_genes if g in targets.var_names] or list(targets.var_names[:3])
if [g for g in map_genes if g not in targets.var_names]:
    print(f"not among this run's target genes: {[g for g in map_genes if g not in targets.var_names]}; "
          f"maps show {genes_shown}" + (" (the first target genes)" if not set(map_genes) & set(genes_shown) else ""))
fig = pl.he_image(expr, section)
pl.as_image(fig, format="jpeg")  # mostly H&E: stored as JPEG


# %% tags=["hide-input"]
p_map = store.load_predictions(out, [map_model])[map_model]
fig = pl.truth_prediction_maps(targets, p_map.X, genes_shown, section=section, spatial=expr.uns["spatial"],
                               model=map_model, value_label="log-normalised (authors')")
pl.as_image(fig, format="jpeg")  # mostly H&E: stored as JPEG

# %% [markdown]
# The error maps are almost one colour: the model predicts each gene too high (or too low)
# everywhere in this section. That is an offset between patients, not a spatial pattern: the
# share of each gene's squared error that is its mean offset over the section:

# %% tags=["hide-input"]
off = qualitative.offset_share(np.asarray(targets.X)[sec_mask], np.asarray(p_map.X)[sec_mask])
off.index = targets.var_names
print(off.loc[genes_shown].round(3).to_string())
print(f"all {targets.n_vars} genes: median offset share {off['offset share'].median():.2f}, "
      f"mean error > 0 for {int((off['mean error'] > 0).sum())} genes")
glue("offset_share_median", f"{off['offset share'].median():.2f}", display=False)

# %% [markdown]
# The same maps on a depth-normalised target: every spot scaled to 10,000 counts before `log1p`
# (`normalize_log1p`, chapter 9), genes and KNN Ridge refitted on it (sound protocol). The
# authors' target scales each section to its own median depth, so a section with a low median
# sits lower everywhere; on a fixed total it does not.

# %% tags=["hide-input"]
dn = ladder.prepare(ad.read_h5ad(out / "data.h5ad"), store.load_embeddings(out), protocol.as_protocol("sound"),
                    n_genes=targets.n_vars, transform="normalize_log1p", seed=seed)
fit = protocol.fit_table_models(dn, "sound", models=(map_model,), model_cache=model_cache, seed=seed)[map_model]
dn_genes = [g for g in genes_shown if g in dn.var_names]
print(f"genes shown that the depth-normalised selection also keeps: {dn_genes}")
fig = pl.truth_prediction_maps(dn, get.full_predictions(dn, fit.predictions), dn_genes, section=section,
                               spatial=expr.uns["spatial"], model=map_model, value_label="log1p of counts per 10,000")
display(pl.as_image(fig, format="jpeg"))  # mostly H&E: stored as JPEG
dn_sec = get.section_mask(dn, section)
dn_off = qualitative.offset_share(np.asarray(dn.X)[dn_sec], get.full_predictions(dn, fit.predictions)[dn_sec])
print(f"depth-normalised target, all {dn.n_vars} genes: median offset share {dn_off['offset share'].median():.2f}")
glue("offset_share_median_dn", f"{dn_off['offset share'].median():.2f}", display=False)

# %% [markdown]
# ## Fig. 4: measured and predicted counts
#
# The KNN negative-binomial GLM predicts a mean count for each spot and gene; the histogram
# puts those means beside the measured counts of the same pairs (unit-wide bins, so each bar
# of the measured counts is one integer). The report's Fig. 4 compared two different
# quantities (per-gene sums against per-spot totals; see the deviations page).

# %% tags=["hide-input"]
cm = store.load_predictions(out, [count_model])[count_model]
true_counts = targets.layers["counts"][mask]
true_counts = true_counts.toarray() if hasattr(true_counts, "toarray") else np.asarray(true_counts)
pred_counts = np.asarray(cm.layers["counts"])[mask]
fig = pl.count_histogram(true_counts, pred_counts, title=f"{pl.model_label(count_model)}, {split} split: all genes and spots")
tail = qualitative.count_tail(true_counts, pred_counts)
scoring.readable_models((100 * tail).round(1).add_prefix("% of pairs, "))

# %% tags=["remove-input"]
zeros = float(np.mean(true_counts == 0))
below = float(np.nanmean(pred_counts < 0.5))
glue("zeros_measured", f"{zeros:.0%}", display=False)
glue("below_half_pred", f"{below:.0%}", display=False)
over = tail.index[tail["predicted means"] > tail["measured counts"]]
under = tail.index[tail["predicted means"] < tail["measured counts"]]
glue("tail_sentence", ("the predicted means reach each threshold more often than the measured counts at "
                       f"{', '.join(f'{k:g}' for k in over) or 'no threshold'}, less often at "
                       f"{', '.join(f'{k:g}' for k in under) or 'no threshold'}"), display=False)
glue("mean_measured", f"{true_counts.mean():.2f}", display=False)
glue("mean_pred", f"{np.nanmean(pred_counts):.2f}", display=False)
med = targets.obs.groupby("section", observed=True)["total_counts"].median()
train_secs = get.sections(targets, get.split_mask(targets, "train"))
glue("depth_test", f"{med[section]:,.0f}", display=False)
glue("depth_train", f"{med[train_secs].min():,.0f} to {med[train_secs].max():,.0f}", display=False)
glue("depth_ratio", f"{med[train_secs].min() / med[section]:.0f} to {med[train_secs].max() / med[section]:.0f}",
     display=False)
glue("mean_ratio", f"{np.nanmean(pred_counts) / true_counts.mean():.0f}", display=False)

# %% [markdown]
# A mean is not a count: {glue:text}`zeros_measured` of the measured pairs are zero, while
# {glue:text}`below_half_pred` of the predicted means are below 0.5; over all pairs the
# measured mean is {glue:text}`mean_measured` and the predicted {glue:text}`mean_pred`. Read
# against the thresholds of the table, {glue:text}`tail_sentence`.
#
# The predicted means sit far above the measured counts mostly because of the target: the GLM's
# offset is each spot's depth *relative to its section's median* (the authors' normalisation),
# so the model predicts counts at a train section's depth. The test section's median total
# count is {glue:text}`depth_test` against {glue:text}`depth_train` for the train sections
# (chapter 11), a ratio of {glue:text}`depth_ratio`; the predicted mean is
# {glue:text}`mean_ratio` times the measured one.

# %% [markdown]
# ## Summary
#
# - **Clusters (Fig. 1).** Averaged over the clusters of the test section and all genes, the
#   error of the predicted cluster means is, per model, {glue:text}`cluster_err_models`, against
#   {glue:text}`cluster_err_ref` for predicting every spot as the train mean.
# - **Tumour genes (Fig. 2, valid section A1, the pathologist's labels).** Of the truth's top
#   {glue:text}`n_top_de` tumour genes, each model's own top list shares (per model)
#   {glue:text}`de_overlap`. The share of the truth's top genes a model moves in the same
#   direction (tumour up or down) is, per model, {glue:text}`de_same_sign`.
# - **Maps (Fig. 3).** On the authors' target the error maps are nearly one colour: for the
#   median gene {glue:text}`offset_share_median` of the squared error is the section-wide
#   offset (the test patient sits lower than the train patient); on the depth-normalised
#   target it is {glue:text}`offset_share_median_dn`.
# - **Counts (Fig. 4).** {glue:text}`zeros_measured` of the measured counts are zero and
#   {glue:text}`below_half_pred` of the predicted means are below 0.5; the predicted means are
#   too high at every threshold because the authors' target ties each section to its own median
#   depth, which the model cannot know for a new section.
# - Next: [Table I](08_table).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "07_qualitative")
