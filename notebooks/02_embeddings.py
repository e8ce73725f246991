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
# # 2. Image and graph embeddings
#
# **Overview.** Every spot gets three 32-dimensional embeddings:
#
# 1. **image**: a window centred on the spot through an ImageNet CNN without its classifier
#    (global average pooling), then PCA to 32 fitted on the train spots. The report cut 224 x 224
#    px from images at ~0.69 um/px: 155 um, the 100 um spot and a rim of tissue. The book keeps
#    that physical size: at each section's resolution (from the manifest, or measured from the
#    200 um spot pitch; after chapter 1's common resolution, the um/px printed below) the window
#    is 45 px here, resampled to the network's 224 px input, so that sections scanned at other
#    resolutions are seen at the same scale;
# 2. **KNN-pooled image**: the same CNN features averaged over the spot's 15 nearest spots of
#    its section (the spot included), then PCA to 32 fitted on train;
# 3. **graph**: the 15-nearest-spot connectivity graph of each section (squidpy), then a
#    truncated SVD to 32 components, per section.
#
# The report calls the neighbours of 2 and 3 "KNN", and a reader takes them to be the nearest
# spots on the slide. In the authors' code they are the nearest spots in **expression**: each
# section's `scanpy.pp.neighbors` graph on its own normalised expression (14 neighbours, the spot
# left out), whose UMAP connectivities also give the SVD. Those features carry every spot's
# measured expression, the test spots' included: a leak. The sound protocol uses the slide's
# nearest spots; `protocol="paper"` uses the authors' expression graph.
#
# **Prerequisites.** Chapter 1. Running time: 1-2 minutes for MobileNetV2 on 2 cores (cold),
# seconds with the feature cache.
#
# **Writes.** `embeddings.h5ad`: the spots' `obsm["X_cnn"]`, `["X_img_pca"]`,
# `["X_img_knn_pca"]`, `["X_graph_svd"]` and the spatial graph, without genes; every later
# chapter joins them to its targets on load (`store.load_targets`).

# %% tags=["parameters", "hide-input"]
backbone = "mobilenet_v2"  # the paper used "resnet50"; see the deviations page
weights = "imagenet"  # "none": random weights (tests only)
window = 224  # the network's input (px)
window_um = 154.6  # the window on the slide: the report's 224 px at 0.69 um/px; None: 224 px of any image
n_comps = 32
n_neighbors = 15
seed = 0
protocol = "sound"  # "paper": expression-kNN neighbours, as the authors' code
results_dir = "results/default"
cache_dir = "cache/features"
scheduler = None  # a dask.distributed scheduler address, e.g. "tcp://127.0.0.1:8786"

# %% tags=["hide-input"]
import anndata as ad
import numpy as np
import pandas as pd
from myst_nb import glue

from stlib import get, im, pl
from stlib.book import store
from stlib.book import protocol as protocols

out = store.resolve(results_dir)
proto = protocols.as_protocol(protocol)
store.write_config(out, {"backbone": backbone, "weights": weights, "window": window, "window_um": window_um})
targets = store.load_targets(out, embeddings=False)
w = None if str(weights).lower() == "none" else weights

# %% [markdown]
# ## CNN features
#
# Each section's image is decoded once, all its windows are cut, and the sections run in
# parallel with Dask. Features are cached per section, keyed by the image checksum, the
# backbone, its weights and the window, so a rerun reads them back.

# %% tags=["hide-input"]
im.cnn_features(targets, backbone=backbone, weights=w, size=window, window_um=window_um,
                cache_dir=store.resolve(cache_dir), scheduler=scheduler, progress=False)
info = targets.uns["cnn_features"]
print(f"{backbone} ({weights}): {info['n_features']} features per spot")
if window_um is not None:
    print(f"a {window_um:g} um window, resized to {window} px; per section (um/px, window px):")
    print("  " + "; ".join(f"{s} {im.section_um_per_px(targets, s):.3f}, {px}" for s, px in info["window_px"].items()))
print("windows padded at the image border, per section:", ", ".join(f"{s} {n}" for s, n in info["n_padded"].items()))

# %% [markdown]
# What the CNN sees: a few windows of the first training section.

# %% tags=["hide-input"]
fig = pl.window_gallery(targets, section=get.sections(targets, get.split_mask(targets, "train"))[0], n=6, size=window, seed=seed,
                        window_um=window_um)

# %% [markdown]
# ## PCA on train, KNN pooling, neighbourhood graph

# %% tags=["hide-input"]
data = ad.read_h5ad(out / "data.h5ad") if proto.neighbors == "expression" else None
protocols.build_features(targets, proto, data=data, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
print(f"neighbours for pooling and the graph SVD: {targets.uns['neighbors_for_features']}"
      + (f" ({targets.uns['expression']['leak']})" if proto.neighbors == "expression" else ""))
ev = pd.DataFrame({
    "image PCA": np.cumsum(targets.uns["X_img_pca"]["explained_variance_ratio"]),
    "KNN-pooled PCA": np.cumsum(targets.uns["X_img_knn_pca"]["explained_variance_ratio"]),
}, index=np.arange(1, n_comps + 1))
print("variance explained by 32 components (train):", ", ".join(f"{k} {v:.0%}" for k, v in ev.iloc[-1].items()))
glue("ev_image", f"{ev.iloc[-1]['image PCA']:.0%}", display=False)
glue("ev_knn", f"{ev.iloc[-1]['KNN-pooled PCA']:.0%}", display=False)

# %% tags=["hide-input"]
fig = pl.embeddings_overview(targets, ev)

# %% [markdown]
# Where the valid and test spots fall relative to train (orange and green against blue) shows
# the domain shift between patients: each is another tumour, another staining and scan (for A,
# the web app's images). Any region that only valid or test spots occupy is one the models never
# saw during fitting.
#
# The graph SVD is computed per section: its components describe the position of a spot in
# its own section's graph (roughly, smooth spatial modes) and are **not aligned across
# sections**: component 3 of one section has no reason to mean what component 3 of another
# means. We keep the paper's design and discuss it on the deviations page.

# %% tags=["hide-input"]
store.write_embeddings(targets, out)
for k in ("X_cnn", "X_img_pca", "X_img_knn_pca", "X_graph_svd"):
    print(f"obsm[{k!r}]: {targets.obsm[k].shape[0]} spots x {targets.obsm[k].shape[1]}")

# %% [markdown]
# ## Summary
#
# - Three embeddings of 32 dimensions per spot, PCA fitted on train only: the 32 components keep
#   {glue:text}`ev_image` of the image features' variance on the train spots
#   ({glue:text}`ev_knn` of the KNN-pooled features').
# - Next: [count models](03_glm).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "02_embeddings")
