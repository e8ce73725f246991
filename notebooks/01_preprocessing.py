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
# cluster each section, choose the 250 target genes on the training sections only, and build the
# targets that every model of the book predicts.
#
# **Prerequisites.** The data set is fetched (or verified in a local mirror) by `stlib`; see
# [Data](../data.md). Running time: under a minute on `her2st-demo`.
#
# **Writes.** `data.h5ad` (all spots, all genes, raw counts, Leiden clusters) and
# `targets.h5ad` (target genes only) in the run's results folder.

# %% tags=["parameters"]
dataset = "her2st-demo"
target_transform = "log1p"  # the paper's; "normalize_log1p" removes sequencing depth
n_genes = 250
seed = 0
results_dir = "results/default"

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc

import stlib
from stlib import pl, pp, store
from stlib.io import load_dataset

warnings.filterwarnings("ignore", category=FutureWarning)
out = store.resolve(results_dir)
store.write_config(out, {"dataset": dataset, "target_transform": target_transform, "n_genes": n_genes, "seed": seed})
print(f"stlib {stlib.__version__}, scanpy {sc.__version__}")

# %% [markdown]
# ## The sections
#
# Each section becomes one AnnData in scanpy/squidpy conventions: raw integer counts in `X`,
# spot centres in full-resolution pixels in `obsm["spatial"]`, the image location in
# `uns["spatial"]`. Spots that are listed but have no counts (or the reverse) are dropped and
# counted, never silently.

# %%
ds = load_dataset(dataset)
adata = ds.read(progress=False)
adata

# %%
summary = pp.section_summary(adata)
summary

# %% [markdown]
# The split is by patient and is a data file (`data/splits/`). For `her2st-demo`, only two
# patients have public images, so train and valid are different sections of patient C, and the
# test patient B is never seen by any fitted step:

# %%
split = ds.split()
print(split.to_string(index=False))
if ds.split_policy:
    print("\nSplit policy:", ds.split_policy.get("reason", ""))

# %% [markdown]
# Depth differs a lot between sections; keep this in mind when reading correlations on raw
# `log1p` counts:

# %%
fig = pl.qc_overview(adata)

# %% [markdown]
# ## Leiden clusters per section
#
# For the qualitative chapter we cluster each section on all genes (normalise, log1p, PCA,
# kNN graph, Leiden; seeded).

# %%
pp.leiden_per_section(adata, seed=seed)
print(adata.obs.groupby("section", observed=True)["leiden_local"].nunique().to_string())

# %% [markdown]
# ## Target genes
#
# The paper takes the "top 250 genes by variance and mean" without saying how the two are
# combined, and computes them on all sections. We choose on the **train** spots only (no test
# information), with this exact rule:

# %%
genes = pp.select_genes(adata, n_genes, transform=target_transform, fit_on="train")
print(adata.uns["gene_selection"]["rule"])
print(f"\n{len(genes)} genes; the first ten: {', '.join(genes[:10])}")

# %%
targets = pp.make_targets(adata, genes, transform=target_transform)
print(targets.uns["target"]["description"])
targets

# %%
fig = pl.target_overview(targets)

# %%
adata.write_h5ad(out / "data.h5ad")
targets.write_h5ad(out / "targets.h5ad")
print("wrote data.h5ad and targets.h5ad")

# %% [markdown]
# ## Summary
#
# - The sections load with the spot counts of the table above; dropped spots are counted.
# - 250 target genes are chosen on the training spots only; test spots never influence them.
# - Next: [image and graph embeddings](02_embeddings).
