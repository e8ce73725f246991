"""The report's claims: loading, judging by paired intervals, and the reading of Table I."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stlib.book import protocol, tables, verdict
from stlib.errors import DataError
from stlib.tl.uncertainty import Bootstrap


def _boot(reps: dict[str, np.ndarray], stat: str = "pcc") -> Bootstrap:
    r = pd.DataFrame(reps)
    return Bootstrap(point=pd.DataFrame({stat: r.mean()}), replicates={stat: r}, level=0.95, n_boot=len(r), seed=0)


def _claims(tmp_path, body: str):
    p = tmp_path / "claims.yaml"
    p.write_text(body)
    return verdict.load_claims(p)


CLAIMS = """
claims:
  - id: a_beats_b
    label: A beats B
    where: V.A
    quote: "A is better"
    reading: A above B on valid and test
    chapter: 03_glm
    comparisons:
      - {better: a, worse: b, split: valid}
      - {better: a, worse: b, split: test, central: true}
  - id: a_lower_error
    label: A has the lower error
    where: V.E
    quote: "A errs less"
    reading: A's MSE below C's
    chapter: 04_linear
    comparisons:
      - {better: a, worse: c, split: valid, stat: mse}
"""


def test_shipped_claims_load_and_name_known_models():
    claims = verdict.load_claims()
    assert len(claims) >= 6
    models = verdict.claim_models(claims)
    assert "mlp" in models and "gnn_paper" in models and "poisson" in models
    for c in claims:
        assert c.quote and c.reading and c.chapter[:2].isdigit()


def test_judge_replicated_reversed_not_replicated(tmp_path):
    claims = _claims(tmp_path, CLAIMS)
    rng = np.random.default_rng(0)
    n = 400
    valid = _boot({"a": 0.3 + 0.01 * rng.standard_normal(n), "b": 0.1 + 0.01 * rng.standard_normal(n)})
    test = _boot({"a": 0.1 + 0.05 * rng.standard_normal(n), "b": 0.1 + 0.05 * rng.standard_normal(n)})
    err = _boot({"a": 0.5 + 0.01 * rng.standard_normal(n), "c": 0.2 + 0.01 * rng.standard_normal(n)}, stat="mse")
    boots = {("valid", "target"): valid, ("test", "target"): test, ("valid", "errors"): err}
    j = verdict.judge(claims, boots)
    assert list(j["outcome"]) == ["replicated", "not replicated", "reversed"]
    assert list(j["central"]) == [False, True, True]  # a one-comparison claim: its comparison is central
    # lower is better for mse: A (0.5) above C (0.2) is a difference of -0.3 in the claimed direction
    assert j.loc[2, "claimed difference"] == pytest.approx(-0.3, abs=0.01)
    v = verdict.verdicts(j)
    assert v["a_beats_b"] == "not replicated" and v["a_lower_error"] == "reversed"
    assert verdict.verdict_sentence(j, "a_lower_error") == "reversed (0 of 1 comparisons replicated, 1 reversed (central))"


def test_a_claim_is_reversed_only_when_a_central_comparison_is(tmp_path):
    claims = _claims(tmp_path, CLAIMS)[:1]  # valid: not central, test: central
    rng = np.random.default_rng(2)
    n = 300
    up = {"a": 0.3 + 0.01 * rng.standard_normal(n), "b": 0.1 + 0.01 * rng.standard_normal(n)}
    down = {"a": 0.1 + 0.01 * rng.standard_normal(n), "b": 0.3 + 0.01 * rng.standard_normal(n)}
    j = verdict.judge(claims, {("valid", "target"): _boot(down), ("test", "target"): _boot(up)})
    assert list(j["outcome"]) == ["reversed", "replicated"]
    assert verdict.verdicts(j)["a_beats_b"] == "not replicated"  # only a side comparison reversed
    assert verdict.verdict_sentence(j, "a_beats_b").endswith("1 reversed (not central))")
    j = verdict.judge(claims, {("valid", "target"): _boot(up), ("test", "target"): _boot(down)})
    assert verdict.verdicts(j)["a_beats_b"] == "reversed"


def test_a_claim_of_several_comparisons_must_name_its_central_one(tmp_path):
    body = CLAIMS.replace("split: test, central: true}", "split: test}")
    with pytest.raises(DataError, match="central"):
        _claims(tmp_path, body)


def test_all_comparisons_must_hold(tmp_path):
    claims = _claims(tmp_path, CLAIMS)[:1]
    n = 200
    rng = np.random.default_rng(1)
    b = {"a": 0.3 + 0.01 * rng.standard_normal(n), "b": 0.1 + 0.01 * rng.standard_normal(n)}
    j = verdict.judge(claims, {("valid", "target"): _boot(b), ("test", "target"): _boot(b)})
    assert verdict.verdicts(j)["a_beats_b"] == "replicated"


def test_judge_needs_both_models_in_one_bootstrap(tmp_path):
    claims = _claims(tmp_path, CLAIMS)[:1]
    only_a = _boot({"a": np.zeros(10)})
    with pytest.raises(KeyError, match="no bootstrap of the valid split holds both"):
        verdict.judge(claims, {("valid", "target"): only_a, ("test", "target"): only_a})


@pytest.mark.parametrize("body, problem", [
    ("claims: [{id: x}]", "not a valid claims file"),
    ("claims:\n  - {id: x, label: l, where: w, quote: q, reading: r, chapter: 03_x, comparisons: []}", "no comparisons"),
    ("claims:\n  - {id: x, label: l, where: w, quote: q, reading: r, chapter: 03_x,"
     " comparisons: [{better: a, worse: a, split: valid}]}", "unusable comparisons"),
    ("claims:\n  - {id: x, label: l, where: w, quote: q, reading: r, chapter: 03_x,"
     " comparisons: [{better: a, worse: b, split: valid, stat: auc}]}", "unusable comparisons"),
    ("claims: [", "not a valid claims file"),
])
def test_bad_claims_file_names_file_and_problem(tmp_path, body, problem):
    with pytest.raises(DataError, match=problem) as e:
        _claims(tmp_path, body)
    assert "claims.yaml" in str(e.value)


def test_missing_claims_file(tmp_path):
    with pytest.raises(DataError, match="missing file"):
        verdict.load_claims(tmp_path / "nope.yaml")


def test_against_report_reads_printed_table():
    claims = verdict.load_claims()
    r = verdict.against_report(claims, tables.paper_table(), protocol.TABLE_MODELS)
    # the report prints MLP above the GNN on valid and test, and GLMs other than a-priori NB are not in it
    assert r["mlp_beats_gnn"] == "consistent"
    assert r["poisson_poor"] == "not in Table I"
    flipped = tables.paper_table().copy()
    flipped.loc[("Simple Neural Network", "Test"), "PCC"] = -1.0
    assert verdict.against_report(claims, flipped, protocol.TABLE_MODELS)["mlp_beats_gnn"] == "inconsistent"


def test_seed_agreement_counts_the_seeds_that_keep_the_outcome():
    by_seed = pd.DataFrame({"mean over seeds": ["replicated", "not replicated"],
                            "seed 0": ["replicated", "reversed"], "seed 1": ["not replicated", "not replicated"]},
                           index=pd.Index(["c1", "c2"], name="claim"))
    agree = verdict.seed_agreement(by_seed)
    assert agree.loc["c1", "seeds agreeing"] == "1 of 2" and agree.loc["c1", "other outcomes"] == "seed 1: not replicated"
    assert agree.loc["c2", "seeds agreeing"] == "1 of 2" and agree.loc["c2", "other outcomes"] == "seed 0: reversed"
    assert list(agree.index) == ["c1", "c2"] and agree.index.name == "claim"
    with pytest.raises(KeyError, match="no column"):
        verdict.seed_agreement(by_seed.drop(columns="mean over seeds"))


def test_readable_comparisons_name_claims_and_models():
    claims = verdict.load_claims()
    c = next(c for c in claims if c.id == "knn_nb_better_valid")
    t = pd.DataFrame({"x": [1]}, index=pd.MultiIndex.from_tuples(
        [("knn_nb_better_valid", "knn_nb_apriori > nb_apriori (PCC, valid)")], names=["claim", "comparison"]))
    out = verdict.readable_comparisons(t, claims)
    assert out.index[0] == (c.label, "NB GLM, a-priori alpha, KNN-pooled > NB GLM, a-priori alpha (PCC, valid)")
    assert list(t.index)[0][0] == "knn_nb_better_valid"  # the input is left as it is
    t2 = pd.DataFrame({"x": [1]}, index=pd.MultiIndex.from_tuples([("mlp_beats_gnn", "mlp_lr0.001 > gnn_paper (PCC, test)")],
                                                                  names=["claim", "comparison"]))
    assert verdict.readable_comparisons(t2, claims).index[0][1] == "network (lr 1e-3, authors') > GNN, report's configuration (PCC, test)"
