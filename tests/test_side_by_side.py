"""Networks fitted side by side on worker processes give the fits made one by one in this process,
bit for bit: the ladder's networks, the GNN's seed spread, the MLP's learning rates and seeds.
(Their own module, so that pytest-xdist puts these slow tests on another worker than test_protocol.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from stlib.book import protocol
from tests.test_protocol import _modelling_targets, _sections


def test_ladder_with_its_networks_on_a_worker_equals_in_process() -> None:
    """The ladder's networks trained on a worker process beside the other fits give the same long table."""
    from stlib.book import ladder

    a = _sections(g=80)
    steps = protocol.LADDER[8:11]  # the authors' GNN, then the MLP's valid-chosen rate, then the GraphSAGE
    kw = dict(n_genes=10, models=("lasso", "mlp", "gnn_paper"), mlp_epochs=5, mlp_learning_rates=(1e-3, 1e-2),
              gnn_epochs=5, authors_gnn_epochs=5, n_jobs=1, progress=None, n_comps=4, n_neighbors=6)
    here = ladder.run_ladder(a, a.copy(), steps, background=False, **kw)
    there = ladder.run_ladder(a, a.copy(), steps, background=True, **kw)
    assert len(here) == 3 * 3 * 3 and set(here["model"]) == {"lasso", "mlp", "gnn_paper"}
    pd.testing.assert_frame_equal(here, there)


def test_gnn_seeds_side_by_side_equal_one_by_one() -> None:
    t = _modelling_targets("sound")
    models = {"gnn_paper": ("sound", 3), "gnn_authors": (replace(protocol.as_protocol("sound"), gnn="authors"), 3)}
    both = protocol.fit_gnn_seeds(t, models, [0, 1], n_jobs=2)
    assert list(both) == ["gnn_paper", "gnn_authors"] and all(list(v) == [0, 1] for v in both.values())
    for name, (p, epochs) in models.items():
        for s in (0, 1):
            alone = protocol.fit_gnn(t, p, seed=s, epochs=epochs, name=name)
            for split, pred in alone.predictions.items():
                np.testing.assert_array_equal(pred, both[name][s].predictions[split])
    assert not np.array_equal(both["gnn_paper"][0].predictions["test"], both["gnn_paper"][1].predictions["test"])


def test_mlp_learning_rates_and_seeds_side_by_side_equal_one_by_one() -> None:
    from stlib.models import inputs, nn

    t = _modelling_targets("sound")
    lrs = (1e-3, 1e-2)
    both = protocol.fit_mlp(t, "sound", learning_rates=lrs, epochs=4, n_jobs=2)
    assert sorted(both) == sorted(lrs)
    X, Ytr, Yva = inputs.arrays(t, "single")
    for lr in lrs:
        alone = nn.fit_mlp_per_lr(X, Ytr, Yva, learning_rates=(lr,), epochs=4, seed=0, genes=list(t.var_names))[lr]
        for split, pred in alone.predictions.items():
            np.testing.assert_array_equal(pred, both[lr].predictions[split])
    seeds = protocol.fit_mlp_seeds(t, "sound", lr=1e-3, seeds=[0, 1], epochs=4, n_jobs=2)
    assert list(seeds) == [0, 1] and seeds[0].settings["lr"] == 1e-3
    np.testing.assert_array_equal(seeds[0].predictions["test"], both[1e-3].predictions["test"])
    one = protocol.mlp_result(protocol.fit_mlp(t, "sound", learning_rates=(1e-3,), epochs=4, seed=1), "sound")
    np.testing.assert_array_equal(seeds[1].predictions["test"], one.predictions["test"])
    assert not np.array_equal(seeds[0].predictions["test"], seeds[1].predictions["test"])


def test_chosen_gnn_refitted_with_its_seed_is_the_grids_fit() -> None:
    """The GNN whose configuration the grid chose, refitted through the seed spread with the grid's
    seed and epoch limit, is the grid's fit bit for bit; another seed gives another fit; a
    configuration is refused for the authors' network and an unknown key is refused."""
    from stlib.errors import DataError
    from stlib.models import gnn, inputs

    t = _modelling_targets("sound")
    graphs = inputs.section_graphs(t, "X_img_knn_pca", k=15)
    _, chosen = gnn.fit_gnn_paper_and_best(graphs, grid={"hidden": [16], "dropout": [0.2]}, epochs=3, grid_epochs=4,
                                           seed=0, genes=list(t.var_names))
    limit = next(c["max_epochs"] for c in chosen.settings["configs"] if c["id"] == chosen.settings["chosen_id"])
    models = {"gnn": ("sound", limit, chosen.settings["chosen"]), "gnn_paper": ("sound", 3)}
    refits = protocol.fit_gnn_seeds(t, models, [0, 1], n_jobs=2)
    for split, pred in chosen.predictions.items():
        np.testing.assert_array_equal(pred, refits["gnn"][0].predictions[split])
    assert refits["gnn"][0].settings["config"] == chosen.settings["config"]
    assert not np.array_equal(refits["gnn"][0].predictions["test"], refits["gnn"][1].predictions["test"])
    try:
        protocol.fit_gnn(t, replace(protocol.as_protocol("sound"), gnn="authors"), config={"hidden": 16}, epochs=2)
    except ValueError as exc:
        assert "only fitted for the GraphSAGE" in str(exc)
    else:
        raise AssertionError("a configuration for the authors' network must be refused")
    try:
        gnn.fit_gnn_config(graphs, {"width": 3}, epochs=2)
    except DataError as exc:
        assert "unknown keys ['width']" in str(exc)
    else:
        raise AssertionError("an unknown configuration key must be refused")
