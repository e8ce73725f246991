"""The chapters' readings: what decides a sentence lives in stlib.book.readings and is tested here."""

import anndata as ad
import pytest
import numpy as np
import pandas as pd

from stlib.book import readings, tables
from stlib.models import ModelResult


def test_top_genes_reading_picks_the_best_image_model_and_reads_the_classes():
    idx = pd.MultiIndex.from_product([["ridge", "mlp", "depth_only"], ["valid", "test"]], names=["model", "split"])
    iv = pd.DataFrame({"fraction": [0.1, 0.2, 0.3, 0.4, 0.9, 0.9]}, index=idx)
    genes = ["HLA-DRA", "CD74", "COL1A1", "KRT19", "ERBB2", "ADIPOQ"]
    per_gene = pd.DataFrame({"ridge": [0.5, 0.4, 0.3, 0.2, 0.1, 0.0], "mlp": [0.6, 0.5, 0.1, 0.1, 0.1, 0.1],
                             "depth_only": [0.1, 0.4, 0.0, 0.0, 0.0, 0.0]}, index=genes)
    top_model, top, shares, out = readings.top_genes_reading(iv, per_gene, split="test", n_top=2)
    assert top_model == "mlp" and out["top_model"] == "network (lr on valid)"  # depth_only is a reference, never "the best"
    assert list(top.index) == ["HLA-DRA", "CD74"] and out["top_genes"] == "HLA-DRA (0.60), CD74 (0.50)"
    assert out["n_beyond_depth"] == "1" and out["beyond_depth_genes"] == "HLA-DRA"  # CD74: 0.4 >= 0.5 * 0.5
    assert out["top_immune"] == "2" and out["immune_reading"] == readings.IMMUNE_OVER
    assert out["erbb2_in"] == "is" and out["n_all_genes"] == "6"
    assert list(out)[:3] == ["top_model", "top_genes", "top_immune"]


def _variant_table(rows):
    cols = ["valid pcc", "pcc", "pcc_lo", "pcc_hi", "fraction", "fraction_lo", "fraction_hi", "gain",
            "vs probe", "vs probe lo", "vs probe hi"]
    return pd.DataFrame(rows, columns=["model", *cols]).set_index("model")


def test_best_variant_is_chosen_on_valid_and_the_best_on_test_only_named():
    tab = _variant_table([
        ["probe", 0.20, 0.10, 0.08, 0.12, 0.30, 0.25, 0.35, False, 0, 0, 0],
        ["+ tta", 0.25, 0.09, 0.07, 0.11, 0.28, 0.22, 0.33, False, -0.01, -0.02, 0.0],
        ["+ context", 0.22, 0.13, 0.11, 0.15, 0.40, 0.35, 0.45, True, 0.03, 0.01, 0.05],
        ["depth_only", 0.90, 0.30, 0.28, 0.32, 0.90, 0.85, 0.95, False, 0.2, 0.1, 0.3],
    ])
    out = readings.best_variant_readings({"paper": tab}, "probe")
    assert out["paper_best"] == "+ tta" and out["paper_top_test"] == "+ context"
    assert out["paper_best_pcc"] == "0.090 [0.070, 0.110]" and out["paper_oracle_fraction"] == "0.90"
    assert out["paper_gains"] == "+ context" and out["paper_n_gains"] == "1"
    assert out["paper_vs_oracle"] == "lies below the oracle's"  # 0.28 [0.22, 0.33] vs [0.85, 0.95]
    near = tab.assign(fraction_lo=tab["fraction_lo"].where(tab.index != "depth_only", 0.3))
    assert readings.best_variant_readings({"paper": near}, "probe")["paper_vs_oracle"] == "overlaps the oracle's"
    assert readings.signed_interval(tab, "+ tta") == "-0.010 [-0.020, +0.000]"


def test_beyond_readings_say_where_valid_comes_from():
    tab = _variant_table([
        ["probe", 0.20, 0.10, 0.08, 0.12, 0.30, 0.25, 0.35, False, 0, 0, 0],
        ["+ tta", 0.25, 0.09, 0.07, 0.11, 0.28, 0.22, 0.33, False, -0.01, -0.02, 0.0],
        ["+ context", 0.22, 0.13, 0.11, 0.15, 0.40, 0.35, 0.45, True, 0.03, 0.01, 0.05],
        ["fine-tuned CNN", 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, False, 0.001, -0.01, 0.012],
    ])
    results = {"paper": [ModelResult("+ smoothing", {}, settings={"smoothing": {"weight": 0.5}})]}
    obs = pd.DataFrame({"split": ["train", "train", "valid", "test"], "section": ["C1", "C2", "C3", "B1"],
                        "patient": ["C", "C", "C", "B"]}, index=list("abcd"))
    targets = ad.AnnData(np.zeros((4, 1), np.float32), obs=obs)
    abl = pd.DataFrame({"vs chosen": [0.0, -0.02], "vs chosen lo": [0.0, -0.03], "vs chosen hi": [0.0, -0.01]},
                       index=["chosen", "full rank (ridge)"])
    parts = [ModelResult("chosen", {}, settings={"rank": 8, "alpha": 100.0})]
    record = pd.DataFrame({"vs recipe": [0.0, 0.02], "vs recipe lo": [0.0, 0.01], "vs recipe hi": [0.0, 0.03],
                           "better than the recipe": [False, True], "seconds": [10.0, 30.0]},
                          index=["recipe", "convnext"])
    out = readings.beyond_readings({"paper": tab}, results, targets, abl, parts, record, "probe")
    assert out["paper_valid_only"] == "+ tta" and out["paper_smooth_weight"] == "0.5"
    assert out["train_where"] == "2 spots of 2 sections of 1 patient"
    assert out["valid_where"] == "1 spots of 1 section of 1 patient, all of them train patients"
    assert out["valid_reading"].startswith("Valid shares its patients with train")
    assert out["abl_full"] == "-0.020 [-0.030, -0.010]" and out["abl_full_reading"].startswith("the projection onto")
    assert out["larger_reading"] == "better than the recipe: convnext"
    assert list(out)[-1] == "abl_full_reading"


def test_leak_flags_are_read_from_a_table_or_a_column():
    t = pd.DataFrame({"leaks / bugs": ["none", "a; b", "b", None]})
    assert tables.leak_flags(t) == ["a", "b"] == tables.leak_flags(t["leaks / bugs"])


def _iv(rows):
    idx = pd.MultiIndex.from_tuples([(m, s) for m, s, _ in rows], names=["model", "split"])
    return pd.DataFrame({"fraction": [f for _, _, f in rows], "space": "target"}, index=idx)


def test_the_quoted_model_is_chosen_on_valid_never_on_test():
    iv = _iv([("ridge", "valid", 0.30), ("ridge", "test", 0.10), ("mlp", "valid", 0.20), ("mlp", "test", 0.50),
              ("depth_only", "valid", 0.90), ("depth_only", "test", 0.90)])
    assert readings.chosen_image_model(iv, "valid") == "ridge"  # mlp is better on test: not looked at
    with pytest.raises(ValueError, match="never on test"):
        readings.chosen_image_model(iv, "test")
    iv.loc[("ridge", "valid"), "space"] = "counts"  # scored on counts: not comparable, not chosen
    assert readings.chosen_image_model(iv, "valid") == "mlp"
    per_gene = pd.DataFrame({"ridge": [0.5, 0.1], "mlp": [0.1, 0.6], "depth_only": [0.0, 0.0]}, index=["A", "B"])
    assert readings.top_genes_reading(iv, per_gene, split="test", n_top=1)[0] == "mlp"


def test_choosing_with_no_candidate_says_so():
    iv = _iv([("depth_only", "valid", 0.9), ("depth_only", "test", 0.9)])
    with pytest.raises(ValueError, match="no image model"):
        readings.chosen_image_model(iv, "valid")


def test_compartment_reading_quotes_each_compartment():
    idx = pd.MultiIndex.from_product([["all", "tumour", "non-tumour"], ["lasso", "depth_only"]],
                                     names=["compartment", "model"])
    by_comp = pd.DataFrame({"spots": [20, 20, 5, 5, 15, 15], "median counts": [600.0] * 2 + [9000.0] * 2 + [300.0] * 2,
                            "pcc": [0.1, 0.05, 0.2, 0.0, 0.05, 0.01], "pcc_lo": [0.0] * 6, "pcc_hi": [0.3] * 6,
                            "ceiling": [0.3] * 6}, index=idx)
    by_comp.attrs.update({"sections": ["B4"], "annotation": "pathologist"})
    by_section = pd.DataFrame({"section": ["B4", "C1", "C2"], "median_total": [600.0, 8000.0, 8500.0]})
    out = readings.compartment_reading(by_comp, by_section, "lasso")
    assert out["comp_split_median"] == "600" and out["comp_other_median_min"] == "8,000"
    assert out["comp_tumour_spots"] == "5" and out["comp_tumour_median"] == "9,000"
    assert out["comp_tumour_model"] == "0.20 [0.00, 0.30]" and out["comp_tumour_reference"].startswith("0.00 ")
    assert out["comp_deep_vs_others"].startswith("deeper")
    assert out["comp_unannotated_spots"] == "n/a"  # fewer than 3 spots: not scored, said so
    by_comp.loc[("tumour", "lasso"), "median counts"] = 8200.0
    by_comp.loc[("tumour", "depth_only"), "median counts"] = 8200.0
    assert readings.compartment_reading(by_comp, by_section, "lasso")["comp_deep_vs_others"].startswith("not")
    table = tables.compartment_table(by_comp, ["lasso", "depth_only"])
    assert list(table.index) == ["all", "tumour", "non-tumour"] and table.loc["tumour", "median counts"] == "8,200"


def test_same_numbers_uses_a_float32_tolerance():
    idx = pd.MultiIndex.from_product([["lasso", "ridge"], ["Valid", "Test"]])
    a = pd.Series([0.1, 0.2, np.nan, 0.4], index=idx)
    assert tables.FLOAT32_TOL == pytest.approx(100 * np.finfo(np.float32).eps)
    close = a + 4e-7
    r = tables.same_numbers(a, close)
    assert r["same"] and r["max_abs_diff"] == pytest.approx(4e-7) and r["n"] == 4
    assert not tables.same_numbers(a, a + 1e-3)["same"]
    assert not tables.same_numbers(a, a.fillna(0.3))["same"]  # NaN against a number is a difference
    assert not tables.same_numbers(a, a.iloc[:3])["same"]  # a missing entry too


def test_depth_comparison_chooses_on_valid_and_reads_test():
    from stlib.tl.uncertainty import Bootstrap

    rows = [("ridge", "valid", 0.30), ("ridge", "test", 0.05), ("mlp", "valid", 0.10), ("mlp", "test", 0.09),
            ("depth_only", "valid", 0.2), ("depth_only", "test", 0.06)]
    long = pd.DataFrame({"pearson": [v for *_, v in rows]},
                        index=pd.MultiIndex.from_tuples([(m, "pooled", s) for m, s, _ in rows],
                                                        names=["model", "aggregation", "split"]))
    c = tables.depth_comparison(long)
    assert c["model"] == "ridge" and c["pcc"] == 0.05 and c["n_below"] == 1  # mlp is better on test: not chosen
    with pytest.raises(ValueError, match="never on test"):
        tables.depth_comparison(long, choose_on="test")
    rng = np.random.default_rng(0)
    reps = pd.DataFrame({"ridge": 0.05 + 0.01 * rng.standard_normal(500), "mlp": 0.09 + 0.01 * rng.standard_normal(500),
                         "depth_only": 0.06 + 0.01 * rng.standard_normal(500)})
    point = pd.DataFrame({"pcc": [0.05, 0.09, 0.06], "fraction": [0.2, 0.3, 0.25]}, index=["ridge", "mlp", "depth_only"])
    test = Bootstrap(point=point, replicates={"pcc": reps, "fraction": reps * 4}, level=0.95, n_boot=500, seed=0)
    valid = Bootstrap(point=point.assign(fraction=[0.5, 0.1, 0.4]), replicates={"pcc": reps, "fraction": reps},
                      level=0.95, n_boot=500, seed=0)
    c = tables.depth_comparison(long, boots={("test", "target"): test, ("valid", "target"): valid})
    assert c["model"] == "ridge" and c["chosen_by"] == "fraction of the noise ceiling"  # valid's fraction
    assert c["diff"] == pytest.approx(-0.01) and c["fraction_diff"] == pytest.approx(-0.05)
    assert c["call"] == "not distinguishable" and c["relation"] == "not distinguishable from"
    far = Bootstrap(point=point, replicates={"pcc": reps.assign(depth_only=reps["depth_only"] + 0.2),
                                             "fraction": reps * 4}, level=0.95, n_boot=500, seed=0)
    far.point.loc["depth_only", "pcc"] = 0.26
    c_far = tables.depth_comparison(long, boots={("test", "target"): far, ("valid", "target"): valid})
    assert c_far["call"] == "different" and c_far["relation"] == "below" and c_far["depth_pcc"] == 0.26
    text = tables.depth_sentence(long, boots={("test", "target"): test, ("valid", "target"): valid})
    assert "chosen on valid by its fraction of the noise ceiling (Ridge, 0.050)" in " ".join(text.split())  # by its name
    valid.point.loc["mlp", "fraction"] = 0.9  # the fraction on valid decides, not the PCC
    assert tables.depth_comparison(long, boots={("test", "target"): test, ("valid", "target"): valid})["model"] == "mlp"


def test_design_line_counts_patients_sections_and_spots():
    obs = pd.DataFrame({"patient": list("CCCB"), "section": ["C1", "C1", "C2", "B1"],
                        "split": ["train", "train", "valid", "test"]}, index=list("abcd"))
    line = readings.design_line(ad.AnnData(np.zeros((4, 1), np.float32), obs=obs))
    assert line == ("2 patients, 3 sections, 4 spots: train 2 spots of 1 section of 1 patient (C); "
                    "valid 1 spots of 1 section of 1 patient (C); test 1 spots of 1 section of 1 patient (B)")
