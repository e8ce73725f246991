"""The authors' choices as switches: linear refit and grids, GLM alpha / scaling / count space,
expression neighbours, the protocol ladder and its leak labels."""

from __future__ import annotations

from dataclasses import asdict, replace

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from stlib.tl import features
from stlib.book import protocol, tables
from stlib.errors import DataError
from stlib.models import glm
from stlib.models.linear import PAPER_ALPHAS, fit_linear


def _lin(seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(6, 3)) * [[1], [0.5], [0.1], [0], [0], [2]]
    X = {s: rng.normal(loc=3.0, scale=[1, 2, 5, 10, 20, 0.3], size=(n, 6)) for s, n in (("train", 80), ("valid", 40),
                                                                                         ("test", 30))}
    Y = {s: x @ W + rng.normal(scale=2.0, size=(len(x), 3)) for s, x in X.items()}
    return X, Y


@pytest.mark.parametrize("kind", ["ridge", "lasso"])
def test_refit_equals_gridsearchcv_with_a_predefined_split(kind: str) -> None:
    """The authors' per-gene GridSearchCV (predefined train/valid fold, refit on both), raw features."""
    X, Y = _lin()
    res = fit_linear(X, Y["train"], Y["valid"], kind=kind, alphas=PAPER_ALPHAS[kind], scale=False, refit=True,
                     max_iter=100_000)
    Xtv = np.vstack([X["train"], X["valid"]])
    fold = PredefinedSplit(np.r_[np.full(len(X["train"]), -1), np.zeros(len(X["valid"]))])
    est = Ridge() if kind == "ridge" else Lasso(max_iter=100_000)
    grid = [a for a in PAPER_ALPHAS[kind] if not (kind == "ridge" and a == 0)]  # alpha 0 is OLS here
    compared = 0
    for j in range(3):
        y = np.r_[Y["train"][:, j], Y["valid"][:, j]]
        gs = GridSearchCV(est, {"alpha": grid}, cv=fold).fit(Xtv, y)
        chosen = res.per_gene["alpha"].iloc[j]
        if chosen != 0:
            assert chosen == gs.best_params_["alpha"]
            np.testing.assert_allclose(res.predictions["test"][:, j], gs.predict(X["test"]), rtol=1e-6, atol=1e-6)
            compared += 1
        else:  # alpha 0 is ordinary least squares, refitted on train + valid
            ols = LinearRegression().fit(Xtv, y)
            np.testing.assert_allclose(res.predictions["test"][:, j], ols.predict(X["test"]), rtol=1e-6, atol=1e-6)
    assert compared >= 1
    assert res.settings["refit"] and "in-sample" in res.settings["leaks"][0]


def test_refit_uses_valid_targets_and_no_refit_does_not() -> None:
    X, Y = _lin()
    kw = dict(kind="ridge", alphas=PAPER_ALPHAS["ridge"])
    Yv2 = Y["valid"] + 3.0
    a, b = fit_linear(X, Y["train"], Y["valid"], refit=True, **kw), fit_linear(X, Y["train"], Yv2, refit=True, **kw)
    assert not np.allclose(a.predictions["test"], b.predictions["test"])
    c = fit_linear(X, Y["train"], Y["valid"], **kw)
    assert c.settings["leaks"] == [] and not c.settings["refit"]
    with pytest.raises(DataError, match="refit"):
        fit_linear(X, Y["train"], kind="ols", refit=True)


def test_unscaled_features_change_penalised_fits_only() -> None:
    X, Y = _lin()
    ols = [fit_linear(X, Y["train"], kind="ols", scale=s).predictions["test"] for s in (True, False)]
    np.testing.assert_allclose(ols[0], ols[1], rtol=1e-8, atol=1e-8)
    lasso = [fit_linear(X, Y["train"], Y["valid"], kind="lasso", alphas=(1.0,), scale=s).predictions["test"]
             for s in (True, False)]
    assert not np.allclose(lasso[0], lasso[1])


def test_paper_alpha_is_the_inverse_formula() -> None:
    rng = np.random.default_rng(0)
    c = np.column_stack([rng.negative_binomial(2, 0.2, 300), rng.poisson(3, 300), np.zeros(300)])
    c[0, 2] = 1
    a = glm.apriori_alpha_paper(c)
    m, v = c.mean(0), c.var(0, ddof=1)
    assert a[0] == pytest.approx(m[0] ** 2 / (v[0] - m[0]))
    assert glm.apriori_alpha(c)[0][0] == pytest.approx(1 / a[0])  # the NB2 dispersion is its inverse
    assert (a[1] == 0) or v[1] > m[1]  # under-dispersed genes get 0
    np.testing.assert_array_equal(glm.apriori_alpha_paper(np.array([[1, 1], [1, 1]])), [0.0, 0.0])


def test_glm_paper_options_are_recorded_and_counts_space() -> None:
    rng = np.random.default_rng(1)
    X = {s: rng.normal(size=(n, 3)) * [10, 1, 0.1] for s, n in (("train", 150), ("valid", 50), ("test", 40))}
    counts = rng.negative_binomial(3, 0.3, size=(150, 4))
    res = glm.fit_glm(X, counts, family="nb_apriori", apriori="paper", scale=False, keep_unconverged=True,
                      score_space="counts")
    assert res.settings["score_space"] == "counts" and res.settings["apriori"] == "paper"
    np.testing.assert_allclose(res.per_gene["alpha"], glm.apriori_alpha_paper(counts))
    np.testing.assert_allclose(res.predictions["test"], np.log1p(res.counts["test"]))
    sound = glm.fit_glm(X, counts, family="nb_apriori")
    assert sound.settings["score_space"] == "target" and not np.allclose(sound.per_gene["alpha"], res.per_gene["alpha"])
    with pytest.raises(DataError, match="a-priori rule"):
        glm.fit_glm(X, counts, family="nb_apriori", apriori="guess")


def _sections(n_per: tuple[int, ...] = (40, 35, 30), g: int = 60, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n = sum(n_per)
    sec = np.repeat([f"S{i}" for i in range(len(n_per))], n_per)
    split = np.repeat(["train", "valid", "test"], n_per)
    types = rng.integers(0, 3, n)
    rates = rng.gamma(1.0, 3.0, size=(3, g))
    X = rng.poisson(rates[types] * rng.uniform(0.5, 2, size=(n, 1)))
    a = ad.AnnData(X=sp.csr_matrix(X.astype(np.int32)), var=pd.DataFrame(index=[f"g{i}" for i in range(g)]),
                   obs=pd.DataFrame({"section": pd.Categorical(sec), "split": split}, index=[f"s{i}" for i in range(n)]))
    a.obsm["spatial"] = rng.uniform(0, 1000, size=(n, 2))
    a.obsm["X_cnn"] = rng.normal(size=(n, 20)).astype(np.float32)
    return a


def test_expression_neighbors_are_per_section_from_expression_and_labelled_a_leak() -> None:
    a = _sections()
    features.expression_neighbors(a, n_neighbors=8)
    D, C = a.obsp["expression_distances"], a.obsp["expression_connectivities"]
    sec = a.obs["section"].astype(str).to_numpy()
    coo = D.tocoo()
    assert (sec[coo.row] == sec[coo.col]).all()
    assert (np.diff(D.indptr) == 7).all()  # scanpy's kNN: 8 neighbours including the spot itself
    assert "LEAK" in a.uns["expression"]["leak"] and C.nnz > 0
    # the graph follows the spots' expression: neighbours share the expression type far more than chance
    features.knn_pool(a, "X_cnn", key_added="pooled", neighbors_key="expression_distances")
    nb = D[0].indices
    np.testing.assert_allclose(a.obsm["pooled"][0], a.obsm["X_cnn"][nb].mean(0), rtol=1e-5)
    b = a.copy()
    dense = b.X.toarray()
    dense[sec == "S2"] = dense[sec == "S2"][::-1]  # shuffle test expression only
    b.X = sp.csr_matrix(dense)
    features.expression_neighbors(b, n_neighbors=8)
    te = sec == "S2"
    assert (b.obsp["expression_distances"][te][:, te] != a.obsp["expression_distances"][te][:, te]).nnz > 0
    assert (b.obsp["expression_distances"][~te][:, ~te] != a.obsp["expression_distances"][~te][:, ~te]).nnz == 0


def test_expression_neighbors_use_all_genes_whatever_var_holds() -> None:
    """The authors ran PCA on every gene of each section: a `highly_variable` column left in
    `data.var` by gene selection (which scanpy's PCA would otherwise use) changes nothing."""
    a = _sections()
    ref = a.copy()
    features.expression_neighbors(ref, n_neighbors=8)
    flagged = a.copy()
    flagged.var["highly_variable"] = np.arange(a.n_vars) < 10
    features.expression_neighbors(flagged, n_neighbors=8)
    assert (flagged.obsp["expression_distances"] != ref.obsp["expression_distances"]).nnz == 0
    # what scanpy does with the flag (the bug this guards against): a different graph
    import scanpy as sc

    sub = flagged[flagged.obs["section"] == "S0"].copy()
    sub.X = sub.X.astype(np.float32)
    sc.pp.normalize_total(sub)
    sc.pp.log1p(sub)
    sc.pp.pca(sub, random_state=0)
    assert sub.obsm["X_pca"].shape[1] <= 9  # PCA ran on the 10 flagged genes only


def test_knn_pool_over_a_graph_rejects_cross_section_edges() -> None:
    a = _sections()
    G = sp.csr_matrix(([1.0], ([0], [a.n_obs - 1])), shape=(a.n_obs, a.n_obs))
    a.obsp["bad"] = G
    with pytest.raises(DataError, match="different sections"):
        features.knn_pool(a, "X_cnn", neighbors_key="bad")


def test_ladder_walks_from_the_paper_protocol_to_the_sound_one_one_change_at_a_time() -> None:
    steps = [p for _, p in protocol.LADDER]
    assert asdict(replace(steps[-1], name="sound")) == asdict(protocol.PROTOCOLS["sound"])
    assert asdict(replace(steps[1], name="paper")) == asdict(protocol.PROTOCOLS["paper"])
    assert steps[0].gnn == "authors_bug" and steps[0].bugs()
    for a, b in zip(steps, steps[1:]):
        da, db = asdict(a), asdict(b)
        changed = [k for k in da if k != "name" and da[k] != db[k]]
        assert len(changed) == 1, (b.name, changed)
    assert len({s for s, _ in protocol.LADDER}) == len(protocol.LADDER)
    assert protocol.PROTOCOLS["sound"].leaks() == [] and len(protocol.PROTOCOLS["paper"].leaks()) == 3
    with pytest.raises(DataError, match="neighbors"):
        protocol.Protocol(neighbors="telepathy")
    with pytest.raises(DataError, match="unknown protocol"):
        protocol.as_protocol("fast")
    assert tables.PAPER_ROWS is protocol.TABLE_MODELS


def test_build_features_follow_the_protocol() -> None:
    a = _sections()
    s = a.copy()
    protocol.build_features(s, "sound", n_comps=4, n_neighbors=6)
    assert s.uns["neighbors_for_features"] == "spatial" and s.uns["X_graph_svd"]["connectivity_key"] == "spatial_connectivities"
    p = a.copy()
    with pytest.raises(DataError, match="all-gene counts"):
        protocol.build_features(p, "paper", n_comps=4, n_neighbors=6)
    protocol.build_features(p, "paper", data=a, n_comps=4, n_neighbors=6)
    assert p.uns["X_graph_svd"]["connectivity_key"] == "expression_connectivities"
    assert not np.allclose(p.obsm["X_img_knn_pca"], s.obsm["X_img_knn_pca"])
    np.testing.assert_array_equal(p.obsm["X_img_pca"], s.obsm["X_img_pca"])  # single-spot features do not change


def _modelling_targets(proto: str) -> ad.AnnData:
    from stlib import pp

    a = _sections(g=80)
    genes = pp.select_genes(a, 10, n_hvg=30, fit_on=protocol.as_protocol(proto).gene_fit_on)
    t = pp.make_targets(a, genes)
    t.obsm["X_cnn"] = a.obsm["X_cnn"]
    protocol.build_features(t, proto, data=a, n_comps=4, n_neighbors=6)
    return t


def test_fit_table_models_label_leaks_and_scoring_space() -> None:
    models = ("lasso", "knn_ridge", "nb_apriori")
    paper = protocol.fit_table_models(_modelling_targets("paper"), "paper", models=models, n_jobs=1)
    sound = protocol.fit_table_models(_modelling_targets("sound"), "sound", models=models, n_jobs=1)
    assert any("in-sample" in x for x in paper["knn_ridge"].settings["leaks"])
    assert any("expression" in x for x in paper["nb_apriori"].settings["leaks"])
    assert any("test included" in x for x in paper["lasso"].settings["leaks"])
    assert all(r.settings["leaks"] == [] and r.settings["bugs"] == [] for r in sound.values())
    assert paper["nb_apriori"].settings["score_space"] == "counts"
    assert sound["nb_apriori"].settings["score_space"] == "target"
    assert paper["lasso"].settings["alphas"] == sorted(PAPER_ALPHAS["lasso"])


def test_step_table_puts_the_report_first() -> None:
    from stlib.book import ladder

    rows = [{"step": s, "model": m, "split": sp_, "pearson": 0.1 * i, "mse": 1.0}
            for i, s in enumerate(["a", "b"]) for m in protocol.TABLE_MODELS.values() for sp_ in ("valid", "test")]
    long = pd.DataFrame(rows)
    long["step"] = pd.Categorical(long["step"], categories=["a", "b"])
    w = ladder.step_table(long, "pearson", paper=tables.paper_table())
    assert w.index[0].startswith("the report") and list(w.index[1:]) == ["a", "b"]
    assert w.loc[w.index[0], ("Linear Regression Lasso", "Test")] == pytest.approx(0.1243)
    assert w.loc["b", ("KNN Pooled GNN", "Valid")] == pytest.approx(0.1)


def test_end_intervals_are_the_ladders_first_and_last_steps() -> None:
    """The page's narrow table: each Table I row at the first and the last step, with intervals."""
    from stlib.book import ladder

    steps = ["authors", "middle", "sound"]
    rows = [{"step": s, "model": m, "split": "test", "fraction": 0.1 * i + 0.01 * j,
             "fraction_lo": 0.1 * i, "fraction_hi": 0.1 * i + 0.05}
            for i, s in enumerate(steps) for j, m in enumerate(protocol.TABLE_MODELS.values())]
    long = pd.DataFrame(rows)
    long["step"] = pd.Categorical(long["step"], categories=steps)
    ends = ladder.end_intervals(long, "fraction", split="test")
    assert list(ends.columns) == ["step 0: authors", "step 2: sound"]
    assert list(ends.index) == list(protocol.TABLE_MODELS) and ends.index.name == "Table I row"
    assert ends.loc["Linear Regression Lasso", "step 2: sound"] == "0.210 [0.200, 0.250]"
    assert ends.loc["Simple Neural Network", "step 0: authors"] == "0.000 [0.000, 0.050]"
