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
# # 1. Data and preprocessing
#
# **Overview.** We load the Spatial Transcriptomics sections of the chosen data set, check them,
# cluster each section, choose the 250 target genes with the authors' rule (on the training
# sections only, unless the `paper` protocol asks for the authors' leak), and build the targets
# that every model of the book predicts: as in the authors' code, each section normalised to its
# median total count, then `log1p`.
#
# **Prerequisites.** The data set is fetched (or verified in a local mirror) by `stlib`; see
# [Data](../data.md). Running time: about a minute on `her2st-abc` (the default: eight sections of
# three patients), more the first time the images are brought to one resolution.
#
# **Writes.** `data.h5ad` (all spots, all genes, raw counts, Leiden clusters) and
# `targets.h5ad` (target genes only) in the run's results folder.

# %% tags=["parameters", "hide-input"]
dataset = "her2st-abc"
resolution = "coarsest"  # every section at the coarsest section's um/px (chapter 12's choice); "native" keeps each
image_dir = "cache/common_resolution"  # where the downsampled images go (shared with chapter 12)
protocol = "sound"  # "paper": the authors' choices, leaks included (see chapter 10)
target_transform = "paper"  # the authors' code; "log1p" (the report's sentence) or "normalize_log1p"
gene_rule = "paper"  # the authors' rule; "book" (mean then variance) or "paper_list" (their 250 Ensembl ids)
n_genes = 250
seed = 0
results_dir = "results/default"

# %% tags=["hide-input"]
import warnings

import numpy as np
import pandas as pd
import scanpy as sc

from IPython.display import display
from myst_nb import glue

import stlib
from stlib import im, pl, pp
from stlib.book import scoring, store
from stlib.book import protocol as protocols
from stlib.io import load_dataset
from stlib.io.paper import paper_gene_ids

warnings.filterwarnings("ignore", category=FutureWarning)
out = store.resolve(results_dir)
proto = protocols.as_protocol(protocol)
store.write_config(out, {"dataset": dataset, "resolution": resolution, "target_transform": target_transform, "gene_rule": gene_rule,
                         "n_genes": n_genes, "seed": seed, "protocol": proto.name,
                         "protocol_choices": proto.as_dict(),
                         # every mean over genes counts a constant prediction as PCC 0 (chapter 8 adds the intervals)
                         "intervals": {"constant": scoring.BOOK_CONSTANT}}, fresh=True)
print(f"stlib {stlib.__version__}, scanpy {sc.__version__}")

# %% [markdown]
# ## The sections
#
# Each section becomes one AnnData in scanpy/squidpy conventions: raw integer counts in `X`,
# spot centres in full-resolution pixels in `obsm["spatial"]`, the image location in
# `uns["spatial"]`. Spots that are listed but have no counts (or the reverse) are dropped and
# counted, never silently.
#
# Patient A's images are the study's web-app views, several times coarser than B's and C's
# scans (chapter 2 prints each section's um per pixel after this step). Chapter 12 measures
# what that costs and chooses, on valid, to bring every section to one resolution: here B and C
# are downsampled to A's (`resolution` parameter; `"native"` keeps each section's own), and A's
# black background is painted white like the glass around B and C
# (`stlib.im.common_resolution`).

# %% tags=["hide-input"]
ds = load_dataset(dataset)
adata = ds.read(progress=False)
if resolution != "native":
    adata = im.common_resolution(adata, resolution, store.resolve(image_dir), background="white")
adata

# %% tags=["hide-input"]
summary = pp.section_summary(adata)
for columns in pp.SECTION_SUMMARY_PARTS.values():  # one table per question
    display(summary[columns])

# %% [markdown]
# The split is by patient and is a data file (`data/splits/`). In the default design
# (`her2st-abc`, eight sections of three patients) each part is its own patient: patient C
# trains, patient A is valid, so that every choice is made on a patient no model was fitted
# on, and patient B is the test, never seen by any fitted step or any choice:

# %% tags=["hide-input"]
split = ds.split()
print(split.to_string(index=False))
if ds.split_policy:
    print("\nSplit policy:", ds.split_policy.get("reason", ""))

# %% tags=["remove-input"]
totals = pd.Series(np.asarray(adata.X.sum(axis=1)).ravel(), index=adata.obs_names)
med = totals.groupby(adata.obs["section"].astype(str)).median()
test_secs = split.loc[split["split"] == "test", "section"].astype(str)
others = med.drop(index=test_secs)
glue("depth_test", ", ".join(f"{s} {med[s]:,.0f}" for s in test_secs), display=False)
glue("depth_others", f"{others.min():,.0f} to {others.max():,.0f}", display=False)
glue("depth_fold", f"{others.min() / med[test_secs].max():.0f} to {others.max() / med[test_secs].min():.0f}",
     display=False)

# %% [markdown]
# Depth differs a lot between sections: the median total count per spot of the test section
# ({glue:text}`depth_test`) is {glue:text}`depth_fold` times below that of the other sections
# ({glue:text}`depth_others`). The authors' target scales every spot to its **section's** median
# total count: depth differences between the spots of a section are removed, but each section
# keeps its own scale (these medians), so the difference between sections stays in the target:

# %% tags=["hide-input"]
fig = pl.qc_overview(adata)

# %% [markdown]
# The same counts over the tissue, every section on one colour scale. Within a section, depth
# follows the tissue: in the test section B4 the deep spots cover the cellular region at the lower
# left and the shallow ones the sparse stroma and fat that make up most of the section (chapter 11
# scores B4 by its annotated compartments); patient C's sections are deep almost everywhere, patient
# A's in between. Depth is therefore partly visible in the image: chapter 9 measures how well the
# image predicts it, and what image models predict beyond it.

# %% tags=["hide-input"]
fig = pl.counts_maps(adata)

# %% [markdown]
# ## Leiden clusters per section
#
# For the qualitative chapter we cluster each section on all genes (normalise, log1p, PCA,
# kNN graph, Leiden; seeded).

# %% tags=["hide-input"]
pp.leiden_per_section(adata, seed=seed)
print(adata.obs.groupby("section", observed=True)["leiden_local"].nunique().to_string())

# %% [markdown]
# ## Target genes
#
# The report says "top 250 genes by variance and mean". The authors' code (their `top_genes`
# notebook) took the 1,000 Seurat-flavour highly variable genes of all sections concatenated,
# dropped `__ambiguous` genes and kept the 250 with the highest mean, computed on **all**
# sections, test included. The sound protocol runs the same rule on the **train** spots only; the
# `paper` protocol fits it on all sections, and the choice is then labelled as a leak:

# %% tags=["hide-input"]
if gene_rule == "paper_list":
    genes = pp.gene_set(adata, paper_gene_ids(), name="the authors' 250 genes")
else:
    genes = pp.select_genes(adata, n_genes, rule=gene_rule, transform=target_transform, fit_on=proto.gene_fit_on)
sel = adata.uns["gene_selection"]
print(sel["rule"])
print(sel["leak"] or "no leak: only the train spots chose the genes")
print(f"\n{len(genes)} genes; the first ten: {', '.join(genes[:10])}")

# %% [markdown]
# The authors' own 250 genes (`data/paper_genes.tsv`, in their order, with the penalties their
# grid search chose) are Ensembl ids of the He et al. 2020 matrices; `gene_rule="paper_list"`
# uses them on that data set. HER2ST names genes by symbol, so on HER2ST the list cannot
# be used as it is:

# %% tags=["hide-input"]
ids = paper_gene_ids()
print(f"the authors' genes found in {dataset}: {sum(g in adata.var_names for g in ids)} of {len(ids)}")

# %% tags=["hide-input"]
targets = pp.make_targets(adata, genes, transform=target_transform)
print(targets.uns["target"]["description"])
targets

# %% tags=["hide-input"]
fig = pl.target_overview(targets)

# %% tags=["hide-input"]
adata.write_h5ad(out / "data.h5ad")
targets.write_h5ad(out / "targets.h5ad")
print("wrote data.h5ad and targets.h5ad")

# %% [markdown]
# ## Summary
#
# - The sections load with the spot counts of the table above; dropped spots are counted.
# - 250 target genes are chosen by the authors' rule; under the sound protocol on the training
#   spots only, so test spots never influence them.
# - The target is the authors': each section normalised to its median total count, then `log1p`.
# - Next: [image and graph embeddings](02_embeddings).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "01_preprocessing")
