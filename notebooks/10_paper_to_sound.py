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
# # 10. From the paper's code to a sound protocol
#
# **Overview.** The report's Table I was produced by the authors' notebooks, and those made
# choices the report does not state: genes chosen on all sections, "KNN" neighbours and the
# adjacency graph taken from each spot's own *expression*, raw unscaled features, penalties
# refitted on train + valid, an "a priori" alpha that is the inverse of a dispersion, negative
# binomial models scored on raw counts, and a GNN whose valid and test predictions were read off
# train nodes. This chapter starts from their protocol (`protocol="paper"` plus that bug) and
# changes **one choice per step** until it reaches this book's sound protocol, refitting the six
# Table I models at every step. The first row is the report's printed values.
#
# Every step uses the authors' target (each section normalised to its median total count, then
# `log1p`) and their gene rule; what a step changes is in its name. Leaks are named in the last
# table. All numbers are pooled over the spots of a split and averaged over all 250 genes, a
# constant prediction counting as PCC 0 (as in chapter 8's Table I; only the report's own row
# keeps its convention); NB rows are scored on raw counts until the step that moves them to the
# target's space.
#
# **Prerequisites.** Chapters 1-2 (`data.h5ad`, `embeddings.h5ad`). Running time: several
# minutes (fits are memoised, so a step refits only what its change touches).

# %% tags=["parameters", "hide-input"]
results_dir = "results/default"
seed = 0
n_genes = 250
mlp_epochs = 1000
gnn_epochs = 100
authors_gnn_epochs = 100
model_cache = "cache/models"
n_jobs = 2
n_boot = 1000  # bootstrap replicates of the intervals

# %% tags=["hide-input"]
import anndata as ad
import pandas as pd

from myst_nb import glue

from stlib import pl
from stlib.book import ladder, protocol, scoring, store, tables

out = store.resolve(results_dir)
print("intervals:", scoring.use_run_intervals(out).describe())  # the rule chapter 8 chose and stored
config = store.read_config(out)
data = ad.read_h5ad(out / "data.h5ad")
feats = store.load_embeddings(out)
print(f"data set {config['dataset']}; backbone {config['backbone']} ({config['weights']}); "
      f"{len(protocol.LADDER)} steps")

# %% [markdown]
# ## The steps
#
# Each row is a protocol; a step changes the one choice its name gives, the rest as in the row
# above.

# %% tags=["hide-input"]
steps = pd.DataFrame([{"step": label, **{k: v for k, v in p.as_dict().items() if k != "name"}}
                      for label, p in protocol.LADDER]).set_index("step")
steps

# %% tags=["hide-input"]
long = ladder.run_ladder(data, feats, n_genes=n_genes, seed=seed, model_cache=model_cache, mlp_epochs=mlp_epochs,
                         gnn_epochs=gnn_epochs, authors_gnn_epochs=authors_gnn_epochs, n_jobs=n_jobs,
                         n_boot=n_boot)
store.write_table(long, out, "ladder", index=False)

# %% [markdown]
# ## Mean PCC over genes, valid and test
#
# The report's row, then each step. Read down a column to see which choice moved that model's
# number.

# %% tags=["hide-input"]
paper = tables.paper_table()
pcc = ladder.step_table(long, "pearson", paper=paper)
scoring.show(pcc, 3)

# %% [markdown]
# Every metric of every step (the MSE as well: NB rows on raw counts, as the report's, until
# the GLM step, in the target's space after) is in the full table:

# %% tags=["remove-input"]
store.download(out, "ladder")

# %% [markdown]
# The same numbers as lines, each with its 95% interval (chapter 8's rule): a line that moves by
# less than its bars at a step was not clearly moved by that step.

# %% tags=["hide-input"]
bounds = [ladder.step_table(long, c) for c in ("pcc_lo", "pcc_hi")] if "pcc_lo" in long else [None, None]
fig = pl.ladder_lines(pcc.drop(index=pcc.index[0]), *bounds)

# %% [markdown]
# ## Against the noise ceiling, with intervals
#
# Test PCC as a fraction of the test section's noise ceiling (chapter 11) at the ladder's two
# ends, with 95% intervals of chapter 8's rule (blocks of neighbouring test spots, BCa); every
# step between is in the full table below. NB rows scored on raw counts are compared with the
# ceiling of raw counts, the others with that of the target. These are intervals of each row,
# not of the change between two rows: where the two ends' intervals do not overlap, the ladder
# clearly moved that model; where they overlap, this table cannot tell.

# %% tags=["hide-input"]
fractions = ladder.step_intervals(long, "fraction", split="test")
store.write_table(fractions, out, "ladder_fractions")
ladder.end_intervals(long, "fraction", split="test")

# %% tags=["remove-input"]
store.download(out, "ladder_fractions")

# %% [markdown]
# ## Which step moved what
#
# For each step, the largest change of valid and of test PCC over the six models (the step minus
# the row above):

# %% tags=["hide-input"]
body = pcc.drop(index=pcc.index[0])
delta = body.diff().iloc[1:]
moved = pd.DataFrame({
    "largest |change| of valid PCC": delta.xs("Valid", axis=1, level=1).abs().max(axis=1),
    "model (valid)": delta.xs("Valid", axis=1, level=1).abs().idxmax(axis=1),
    "largest |change| of test PCC": delta.xs("Test", axis=1, level=1).abs().max(axis=1),
    "model (test)": delta.xs("Test", axis=1, level=1).abs().idxmax(axis=1),
})
scoring.show(moved, 3)

# %% tags=["remove-input"]
# what the switch from expression to spatial neighbours did, quoted in the reading below
expr, spat = body.loc["genes chosen on train only"], body.loc["spatial neighbours instead of expression"]
change = (spat - expr).unstack()
glue("nb_valid_drop", f"{-change.loc[[m for m in change.index if 'NB' in m], 'Valid'].min():.2f}", display=False)
glue("n_models", str(len(change)), display=False)
std = moved.loc["features standardised on train"]
glue("std_valid", f"{std['model (valid)']}'s valid PCC ({std['largest |change| of valid PCC']:.3f})", display=False)
glue("std_test", f"{std['model (test)']}'s test PCC ({std['largest |change| of test PCC']:.3f})", display=False)
glue("n_test_up", str(int((change["Test"] > 0).sum())), display=False)
down = change.index[change["Test"] < 0]
glue("test_down", ", ".join(f"{m} ({change.loc[m, 'Test']:+.3f})" for m in down) or "none", display=False)

# %% [markdown]
# The last step is the sound protocol: its numbers must be chapter 8's Table I read from the
# same fits (back from the cache), to within float32 rounding (`tables.FLOAT32_TOL`: the
# predictions are stored as float32, and this chapter scores them in memory). Each step fits a
# network once (seed 0), so the comparison is with Table I's seed-0 fits; Table I itself scores
# the networks as the mean over their seeds. The leaks and bugs that each step still carries:

# %% tags=["hide-input"]
one_fit = scoring.metric_table(store.load_targets(out, embeddings=False), store.load_predictions(out), seeds=False)
t1 = tables.table_one(one_fit, aggregation="pooled")["PCC"]
check = tables.same_numbers(body.iloc[-1], t1)
print(f"the last step reproduces chapter 8's Table I (seed-0 fits): {check['same']} ({check['n']} numbers, "
      f"compared to within {check['tol']:.1e})")
flags = long.groupby("step", observed=True)["leaks / bugs"].agg(tables.leak_flags)
for i, (step, f) in enumerate(flags.items()):
    print(f"{i:2d} {step}:")
    print("     " + ("\n     ".join(f) if f else "none"))

# %% [markdown]
# ## Reading the ladder
#
# On this data set (train is patient C, valid patient A, test one section of patient B; the
# early steps' leaks, listed above, let valid or test spots into the fits; intervals in the figure
# and in the fractions' table and its download), reading down the columns of the PCC table (and the
# MSEs of the full table):
#
# - **Where the count models are scored.** On raw counts (the authors, the rows before the GLM
#   step) the NB models have the highest test correlations of the table, and MSEs many times
#   those of the other models, the pattern of the report's NB rows (its MSEs run to the
#   hundreds). Scored in the target's space with a
#   size-factor offset, like every other model, their test correlations fall to a few
#   hundredths.
# - **The refit on train + valid.** It is what made the report's Valid rows of Lasso and KNN
#   Ridge look good: without it, KNN Ridge loses most of its valid correlation, because the
#   valid spots were in its training set.
# - **Expression neighbours.** The KNN features and the adjacency SVD built from each spot's own
#   expression raise the NB models' *valid* correlations: going to the slide's neighbours takes
#   up to {glue:text}`nb_valid_drop` away. On the unseen test patient the slide's neighbours
#   raise the test PCC of {glue:text}`n_test_up` of the {glue:text}`n_models` models; lower:
#   {glue:text}`test_down`. For the two NB models and KNN Ridge, whose valid PCC falls at this
#   step, the test PCC rises: for them the leak flatters the split used for choices, not test.
# - **Scaling and the genes.** Standardising the features moves {glue:text}`std_valid` and
#   {glue:text}`std_test` most (the table of largest changes; a penalty means something else on
#   unscaled columns); choosing the genes on all sections changes which 250 genes are scored, and with
#   them every number.
# - **The MLP's learning rate.** Choosing it on valid instead of the authors' hand-set 1e-3
#   moves the MLP's PCCs by little: valid and test stay near zero under both rates, and the two
#   rows' test intervals overlap.
#
# Fixing the GNN bug (valid and test read off train nodes) moves only the GNN's row; neither
# version of the authors' GNN predicts much on this data.
#
# ## Summary
#
# - The first row is the report; the second runs the authors' code's choices on this book's
#   data; the last is the book's sound protocol: chapter 8's Table I scored with one fit (seed 0)
#   per network, where chapter 8 scores the mean over the seeds.
# - In this run the steps that move the numbers most (the table of largest changes) are the
#   refit on train + valid (on valid), scoring count models on counts and building features from
#   the spots' own expression (on both splits); see the [deviations](../deviations.md) page for
#   each choice.

# %% tags=["remove-input", "nbval-ignore-output"]
from stlib.book import provenance

provenance.show(results_dir, "10_paper_to_sound")
