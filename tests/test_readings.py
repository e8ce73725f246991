"""The chapters' readings: what decides a sentence lives in stlib.book.readings and is tested here."""

import anndata as ad
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
    assert top_model == "mlp" and out["top_model"] == "mlp"  # depth_only is a reference, never "the best"
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
