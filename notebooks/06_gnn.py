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
# # 6. A graph neural network over the spots
#
# **Overview.** Nodes are spots, edges join each spot to its 15 nearest spots in the same
# section, node inputs are the KNN-pooled image PCA 32. Two layers
# h' = FFN(concat(h, mean of the neighbours' h)) with batch normalisation and dropout, then a
# linear output for the 250 genes (GraphSAGE with a mean aggregator over the full
# neighbourhood). We fit the paper's configuration (Nadam, learning rate 1e-3, dropout 0.8,
# hidden 32) and a small grid, chosen on the valid loss; early stopping patience 15. The paper's
# configuration keeps the report's limit of 100 epochs; the grid's configurations may run to
# `gnn_grid_epochs`, so that one still improving at 100 is not cut short, and where the choice
# sits at the edge of the hidden sizes or learning rates tried, the grid is extended one step
# further (`gnn_extend_edges` rounds).
#
# **What a batch of 128 means on a graph.** 128 target spots, each with its full two-hop
# neighbourhood (which may include spots outside the batch); the loss is the MSE over the 128
# targets only.
#
# **The authors' network is another one.** Their code adapts the Keras example "node
# classification with graph neural networks": feed-forward blocks (batch normalisation,
# dropout, dense GELU), two graph convolutions that **sum** their neighbours' messages with edge
# weights divided by the sum over all edges, concatenation, L2 normalisation and skip
# connections, the node id as an extra input feature, and edges from the mutual pairs of each
# section's *expression* kNN graph. It is fitted here too (`gnn_authors`, on the slide's
# neighbours and with features standardised on train under the sound protocol), each split
# predicted on its own graph. Their code gave
# the model only the train graph, so its valid and test "predictions" were read off train
# nodes: a bug whose effect chapter 10 shows.
#
# **Prerequisites.** Chapter 2. Running time: a few minutes.
#
# **Writes.** `predictions/gnn_paper.h5ad` (Table I's GNN: the GraphSAGE with the paper's
# configuration, or under `protocol="paper"` the authors' network), `predictions/gnn.h5ad`
# (configuration chosen on valid) and `predictions/gnn_authors.h5ad`.

# %% tags=["parameters", "hide-input"]
protocol = "sound"  # "paper": Table I's GNN is the authors' network on the expression graph
results_dir = "results/default"
seed = 0
grid = {"hidden": [32, 64], "lr": [1e-3, 1e-2], "dropout": [0.2, 0.5, 0.8], "optimizer": ["nadam"]}
gnn_epochs = 100
gnn_grid_epochs = 400  # epoch limit of the grid's configurations (early stopping ends most sooner)
gnn_extend_edges = 2  # rounds of extending the grid past a choice at its edge
authors_gnn_epochs = 100
seeds = [0, 1, 2, 3, 4]  # seed spread of the networks: each is refitted with every seed
seed_spread = ["gnn_paper", "gnn", "gnn_authors"]  # the networks refitted with each seed; the authors' network
# costs (spots)^2 per epoch by design: leave it out of the spread on large data sets (chapter 16)
model_cache = "cache/models"  # joblib cache of fitted models; None to always refit
n_jobs = 2  # worker processes: the grid's configurations and the seeds are fitted side by side (same results)

# %% tags=["hide-input"]
from dataclasses import replace

import pandas as pd
from myst_nb import glue

from stlib import pl
from stlib.book import scoring, store
from stlib.book import protocol as protocols
from stlib.models import gnn, inputs

out = store.resolve(results_dir)
scoring.use_run_intervals(out)  # the run's rule for constant predictions (chapter 1)
proto = protocols.as_protocol(protocol)
targets = store.load_targets(out)
graphs = inputs.section_graphs(targets, "X_img_knn_pca", k=15)
print({s: [g.section for g in gs] for s, gs in graphs.items()})

# %% tags=["hide-input"]
paper, best = inputs.cached(gnn.fit_gnn_paper_and_best, model_cache)(
    graphs, grid=grid, epochs=gnn_epochs, seed=seed, genes=list(targets.var_names), names=("gnn_paper", "gnn"),
    grid_epochs=gnn_grid_epochs, extend_edges=gnn_extend_edges, n_jobs=n_jobs)
store.save_predictions(protocols.label(best, proto), targets, out)
print("paper configuration:", gnn.PAPER_CONFIG)
print("chosen on valid:    ", best.settings["chosen"])

# %% [markdown]
# Best valid loss of every configuration of the grid (the report's configuration is one of them,
# here with the grid's epoch limit):

# %% tags=["hide-input"]
configs = pd.DataFrame(best.settings["configs"]).set_index("id")
print(f"{int(configs['still_improving'].sum())} of {len(configs)} configurations still improving at their epoch limit;",
      f"grid extended by {len(best.settings['extended'])} configuration(s) in {int(configs['round'].max())} round(s) "
      f"(of {best.settings['extension_rounds']} tried)")
limits = sorted(configs["max_epochs"].unique())
print("epoch limit:", ", ".join(map(str, limits)), "| round 0 is the grid, later rounds its extensions",
      *(f"| {c}: {configs[c].iloc[0]}" for c in ("optimizer",) if c in configs and configs[c].nunique() == 1))
varied = [c for c in ("optimizer",) if c in configs and configs[c].nunique() > 1]  # shown only when it varies
shown = configs[["hidden", "lr", "dropout", *varied, "best_val_loss", "best_epoch", "epochs_run", "round"]].round(4).rename(
    columns={"best_val_loss": "best valid loss", "best_epoch": "best epoch", "epochs_run": "epochs run"})
shown.index = pd.Index([", ".join(w for w, on in (("report's", i == gnn.config_id(gnn.PAPER_CONFIG)),
                                                  ("chosen", i == best.settings["chosen_id"]),
                                                  ("still improving", bool(configs.loc[i, "still_improving"]))) if on)
                        for i in configs.index], name="")
shown

# %% tags=["hide-input"]
fig = pl.config_losses(best.history, highlight=gnn.config_id(gnn.PAPER_CONFIG),
                        title="valid loss of each configuration (red: the paper's)")

# %% [markdown]
# ## The authors' network

# %% tags=["hide-input"]
authors_proto = replace(proto, gnn="authors") if proto.gnn == "sage" else proto
authors = protocols.fit_gnn(targets, authors_proto, model_cache=model_cache, seed=seed, epochs=authors_gnn_epochs,
                            name="gnn_authors")
store.save_predictions(protocols.label(authors, proto), targets, out)
print(f"edges: mutual pairs of obsp[{protocols.edges_key(authors_proto)!r}];",
      f"stopped at epoch {authors.settings['epochs_run']} (best {authors.settings['best_epoch']})")
if proto.gnn != "sage":  # the paper protocol: Table I's GNN is the authors' network
    paper = protocols.fit_gnn(targets, proto, model_cache=model_cache, seed=seed, epochs=authors_gnn_epochs,
                              name="gnn_paper")
_ = store.save_predictions(protocols.label(paper, proto), targets, out)

# %% tags=["hide-input"]
scoring.readable_models(scoring.fit_summary([paper, best, authors], targets))

# %% [markdown]
# ## How much does the seed move them?
#
# Table I's GNN, the GNN whose configuration was chosen on valid (`gnn`, its configuration kept,
# its epoch limit that of the grid) and the authors' network, each refitted with every seed of
# `seeds` (same data): the mean PCC per split over the seeds, its standard deviation and range.
# The fits are stored with each network's predictions: from chapter 8 on, each network is scored
# as the mean over these seeds, each interval drawing the seeds with the spots, and a choice among
# models (chapter 11's) rests on that mean, not on one lucky fit. The configuration itself was
# chosen with seed {glue:text}`run_seed`.

# %% tags=["hide-input"]
chosen_limit = int(configs.loc[best.settings["chosen_id"], "max_epochs"])  # the grid's epoch limit for it
spread_models = {"gnn_paper": (proto, gnn_epochs if proto.gnn == "sage" else authors_gnn_epochs),
                 "gnn": (replace(proto, gnn="sage"), chosen_limit, best.settings["chosen"]),
                 "gnn_authors": (authors_proto, authors_gnn_epochs)}
if unknown := sorted(set(seed_spread) - set(spread_models)):
    raise ValueError(f"seed_spread: {unknown} not among {sorted(spread_models)}")
by_seed = protocols.fit_gnn_seeds(targets, {k: v for k, v in spread_models.items() if k in seed_spread}, seeds,
                                  model_cache=model_cache, n_jobs=n_jobs)
spreads = {name: scoring.seed_spread(fits, targets) for name, fits in by_seed.items()}
for name, (_, spread) in spreads.items():
    store.write_table(spread, out, f"seeds_{name}")
for name, fits in by_seed.items():
    if len(fits) > 1:  # chapters 8 on score the network as the mean over these fits
        store.save_seed_predictions(name, {s: protocols.label(r, proto) for s, r in fits.items()}, targets, out)
scoring.show(pd.concat({name: per_seed for name, (per_seed, _) in spreads.items()}, names=["model"]))

# %% tags=["hide-input"]
scoring.show(pd.concat({name: spread for name, (_, spread) in spreads.items()}, names=["model"]))

# %% tags=["remove-input"]
glue("first_seed", str(seeds[0]), display=False)
glue("run_seed", str(seed), display=False)
for name, (per_seed, spread) in spreads.items():
    t = spread.loc["test"]
    glue(f"{name}_seed_test", f"{t['mean']:.3f} (sd {t['sd']:.3f}, {t['min']:.3f} to {t['max']:.3f})", display=False)
    glue(f"{name}_seed0_test", f"{per_seed.loc[seeds[0], 'test']:.3f}", display=False)
    v = spread.loc["valid"]
    glue(f"{name}_seed_valid", f"{v['mean']:.3f} (sd {v['sd']:.3f})", display=False)
    glue(f"{name}_seed0_valid", f"{per_seed.loc[seeds[0], 'valid']:.3f}", display=False)

# %% [markdown]
# Over the seeds, Table I's GNN reaches a test PCC of {glue:text}`gnn_paper_seed_test`, the GNN
# chosen on valid {glue:text}`gnn_seed_test` (valid {glue:text}`gnn_seed_valid`, against
# {glue:text}`gnn_seed0_valid` for the fit with seed {glue:text}`first_seed` whose valid loss chose
# it) and the authors' network {glue:text}`gnn_authors_seed_test`. Where the seed moves a network's
# score as much as the spots' sampling does, one fit's score, or its rank among the models, is not
# a property of the network: hence the later chapters' mean over seeds.

# %% [markdown]
# ## Summary
#
# - The GNN sees each spot's two-hop neighbourhood; its configuration is chosen on valid.
# - Over the seeds, Table I's GNN reaches a test PCC of {glue:text}`gnn_paper_seed_test`, the GNN
#   chosen on valid {glue:text}`gnn_seed_test` and the authors' network
#   {glue:text}`gnn_authors_seed_test`; the later chapters score each as the mean over the seeds.
# - Next: [qualitative results](07_qualitative).

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "06_gnn")
