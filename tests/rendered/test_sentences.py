"""Sentences of the book that state a comparison, checked against the tables the run stored.

The numbers in the prose are glued from the executed notebooks; these tests check the words
around them ("beats", "does not", "nearly one colour", "too high at every threshold") against
``results/default/tables`` and the rendered pages, so a rerun that changes a ranking fails here
instead of leaving a sentence that its own numbers contradict.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from stlib.book import verdict

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("STLIB_BOOK_HTML", ROOT / "_build" / "html"))
TABLES = ROOT / "results" / "default" / "tables"


def _stored(name: str, chapter: str) -> pd.DataFrame:
    """A table the run stored, or a failure naming the chapter that writes it."""
    path = TABLES / name
    if not path.is_file():
        pytest.fail(f"{path} missing: run chapter {chapter} (./run pipeline --only {chapter})")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    return _stored("verdict.csv", "13")


def _text(doc: str) -> str:
    page = HTML / f"{doc}.html"
    if not page.is_file():
        pytest.fail(f"{page} missing: build the book first (./run book)")
    return " ".join(BeautifulSoup(page.read_text(), "html.parser").get_text(" ").split())


def _outcomes(j: pd.DataFrame, target: str, claim: str) -> pd.Series:
    sub = j[(j["target"] == target) & (j["claim"] == claim)]
    assert len(sub), f"no comparisons of {claim} under {target}"
    return sub.set_index("comparison")["outcome"]


def test_verdict_page_shows_the_stored_verdicts(judged):
    text = _text("book/notebooks/13_verdict")
    for target in ("paper", "log1p"):
        j = judged[judged["target"] == target]
        for claim in verdict.verdicts(j).index:
            assert verdict.verdict_sentence(j, claim) in text, (target, claim)


def test_ch13_best_linear_models_beat_only_what_the_sentence_says(judged):
    """"neither single-spot Lasso nor KNN Ridge beats every other linear model on valid PCC (Lasso
    beats OLS only; KNN Ridge beats OLS and KNN OLS)"."""
    o = _outcomes(judged, "paper", "best_linear")
    beaten = {m: sorted(c.split(" > ")[1].split(" ")[0] for c in o.index
                        if c.startswith(f"{m} >") and o[c] == "replicated") for m in ("lasso", "knn_ridge")}
    assert beaten == {"lasso": ["ols"], "knn_ridge": ["knn_ols", "ols"]}, beaten
    assert "Lasso beats OLS only; KNN Ridge beats OLS and KNN OLS" in _text("book/notebooks/13_verdict")


def test_ch13_glm_claims_read_as_written(judged):
    """"the a-priori alpha does not detectably help ...; the KNN-pooled features raise the NB model's
    valid PCC but also its valid MSE ...; and Poisson is not detectably worse than NB by PCC"."""
    for claim in ("apriori_best_valid", "poisson_poor"):
        assert not (_outcomes(judged, "paper", claim) == "replicated").any(), claim
    knn = _outcomes(judged, "paper", "knn_nb_better_valid")
    assert knn["knn_nb_apriori > nb_apriori (PCC, valid)"] == "replicated"
    assert knn["knn_nb_apriori < nb_apriori (MSE, valid)"] == "reversed"


def test_ch13_network_against_gnn_reads_the_verdict(judged):
    """The bullet glues the verdict sentence of mlp_beats_gnn under each target and claims only that
    both models score far higher (here: at least twice as high) on raw log1p than on the authors' target."""
    text = _text("book/notebooks/13_verdict")
    for target in ("paper", "log1p"):
        assert verdict.verdict_sentence(judged[judged["target"] == target], "mlp_beats_gnn") in text, target
    row = {t: judged.query(f"target == '{t}' and comparison == 'mlp > gnn_paper (PCC, test)'").iloc[0]
           for t in ("paper", "log1p")}
    for col in ("score (better)", "score (worse)"):
        assert row["log1p"][col] > 2 * row["paper"][col], col


def test_ch07_error_maps_are_an_offset_on_the_authors_target_only():
    text = _text("book/notebooks/07_qualitative")
    m = re.search(r"for the median gene ([0-9.]+) of the squared error is the section-wide offset .*? "
                  r"on the depth-normalised target it is ([0-9.]+)", text)
    assert m, "chapter 7's summary sentence on the error maps not found"
    paper, normalised = float(m.group(1)), float(m.group(2))
    assert paper > 0.5 > normalised  # "nearly one colour" on one target, not on the other
    assert re.search(r"mean error > 0 for (\d+) genes", text)
    n_up = int(re.search(r"mean error > 0 for (\d+) genes", text).group(1))
    n_genes = int(re.search(r"all (\d+) genes: median offset share", text).group(1))
    assert n_up > n_genes / 2  # "the test patient sits lower": most genes are predicted too high


def test_ch07_predicted_means_too_high_at_every_threshold():
    text = _text("book/notebooks/07_qualitative")
    assert "less often at no threshold" in text


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    return _stored("ladder.csv", "10")


def _pcc(ladder: pd.DataFrame, split: str) -> pd.DataFrame:
    w = ladder[ladder["split"] == split].pivot(index="step", columns="model", values="pearson")
    return w.reindex(list(dict.fromkeys(ladder["step"])))


GLM_STEP = "GLMs: size-factor offset, scored in target space"


def test_ch10_count_models_on_counts_then_in_target_space(ladder):
    """"On raw counts (the rows before the GLM step) the NB models have the highest test
    correlations of the table ... in the target's space their test correlations fall to a few
    hundredths"."""
    test = _pcc(ladder, "test")
    steps = list(test.index)
    before, after = steps[: steps.index(GLM_STEP)], steps[steps.index(GLM_STEP):]
    nb = ["nb_apriori", "knn_nb_apriori"]
    for step in before:
        assert test.loc[step].idxmax() in nb, step
    assert (test.loc[after, nb] < 0.05).all().all()


def test_ch10_refit_made_valid_look_good(ladder):
    """"Without it [the refit on train + valid], KNN Ridge loses most of its valid correlation"."""
    valid = _pcc(ladder, "valid")["knn_ridge"]
    steps = list(valid.index)
    i = steps.index("no refit on train + valid")
    assert valid.iloc[i] < 0.5 * valid.iloc[i - 1]


def test_ch10_gnn_bug_moves_only_the_gnn(ladder):
    for split in ("valid", "test"):
        w = _pcc(ladder, split)
        d = (w.iloc[1] - w.iloc[0]).abs()
        assert (d.drop("gnn_paper") < 1e-9).all(), split


def test_ch10_mlp_learning_rate_moves_little(ladder):
    """"valid and test stay near zero under both rates, and the two rows' test intervals overlap"."""
    step = "MLP: learning rate chosen on valid"
    steps = list(dict.fromkeys(ladder["step"]))
    before = steps[steps.index(step) - 1]
    rows = ladder[(ladder["model"] == "mlp") & ladder["step"].isin([before, step])].set_index(["step", "split"])
    for st in (before, step):
        for split in ("valid", "test"):
            assert abs(rows.loc[(st, split), "pearson"]) < 0.05, (st, split)
    a, b = rows.loc[(before, "test")], rows.loc[(step, "test")]
    assert a["pcc_lo"] <= b["pcc_hi"] and b["pcc_lo"] <= a["pcc_hi"]


def test_ch07_depth_explains_most_of_the_count_gap():
    """"The predicted means sit far above the measured counts mostly because of the target": the
    predicted/measured mean ratio is at least the depth ratio's lower end and at most twice its
    upper end, so the depth ratio accounts for at least half of it."""
    text = _text("book/notebooks/07_qualitative")
    assert "mostly because of the target" in text
    m = re.search(r"a ratio of (\d+) to (\d+) ; the predicted mean is (\d+) times", text)
    assert m, "chapter 7's depth-ratio sentence not found"
    lo, hi, mean_ratio = (int(g) for g in m.groups())
    assert lo <= mean_ratio <= 2 * hi


def test_ch16_states_the_stored_scale_record():
    """The scale chapter's sentence carries the record's total at the largest size, and whether
    that size was measured or extrapolated."""
    from stlib.book import scale

    rows, _, _ = scale.read(ROOT / "book" / "records" / "scale.csv")
    at = rows[rows["sections"] == rows["sections"].max()]
    how = "measured" if at["measured"].all() else "extrapolated"
    text = _text("book/notebooks/16_scale")
    assert f"the chapters take {at['seconds'].sum() / 60:.0f} minutes ( {how} )" in text or \
        f"the chapters take {at['seconds'].sum() / 60:.0f} minutes ({how})" in text


def test_ch16_states_the_light_record_against_the_budget():
    """The sentence on the run without the authors' network in the seed spread carries that
    record's total at its size and says whether it is within the 60-minute budget."""
    from stlib.book import scale

    rows, _, _ = scale.read(ROOT / "book" / "records" / "scale_light.csv")
    n = int(rows["sections"].max())
    total = rows.loc[rows["sections"] == n, "seconds"].sum() / 60
    text = " ".join(_text("book/notebooks/16_scale").split())
    assert f"the {n} sections take {total:.0f} minutes" in text
    verdict = "within the 60-minute budget" if round(total, 1) <= 60 else "minutes over the budget"
    assert verdict in text
