"""The coarse gene classes of the per-gene chapter."""

from __future__ import annotations

from stlib.book import markers


def test_gene_class_by_symbol_and_prefix() -> None:
    c = markers.gene_class(["HLA-DRA", "CD74", "COL1A1", "KRT8", "ERBB2", "ADIPOQ", "GAPDH", "CD740"])
    assert c.tolist() == ["immune", "immune", "stromal", "epithelial / tumour", "epithelial / tumour", "adipose",
                          "other", "other"]  # CD740 is not CD74: exact names stay exact


def test_class_shares_counts_and_orders() -> None:
    t = markers.class_shares(["HLA-DRA", "IGKC", "GAPDH"], ["HLA-DRA", "IGKC", "GAPDH", "COL1A1", "ACTB"])
    assert list(t.index) == ["immune", "stromal", "other"]
    assert t.loc["immune", "top genes"] == 2 and t.loc["other", "all genes"] == 2
    assert t["share of top"].sum() == 1.0 and t.loc["stromal", "top genes"] == 0
