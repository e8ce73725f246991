"""A coarse cell-type reading of gene names, for the per-gene chapter.

Each gene gets at most one class by its symbol (exact names and prefixes of well-known markers
of breast tissue and tumours). The list is short and hand-made: it says which kind of signal a
gene carries (antigen presentation and immunoglobulins, extracellular matrix, epithelium,
adipocytes), not a cell type annotation of the spots.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: Class -> exact symbols and prefixes (a prefix ends with ``*``).
MARKERS: dict[str, tuple[str, ...]] = {
    "immune": ("HLA-*", "CD74", "CD68", "CD14", "CD163", "C1Q*", "IGK*", "IGL*", "IGH*", "JCHAIN", "MZB1", "PTPRC",
               "LYZ", "TYROBP", "FCER1G", "FCGR*", "CXCL*", "CCL*", "CD52", "CD3*", "CD8*", "MS4A*", "LAPTM5", "AIF1"),
    "stromal": ("COL*", "FN1", "SPARC", "DCN", "LUM", "POSTN", "MMP*", "TIMP*", "AEBP1", "COMP", "IGFBP7", "BGN",
                "VIM", "MGP", "FBLN*", "THBS*", "CTSK", "ACTA2", "MYL9", "TAGLN", "EMILIN1", "HSPG2", "ENG", "A2M"),
    "epithelial / tumour": ("KRT*", "EPCAM", "CEACAM*", "TACSTD2", "ERBB2", "GRB7", "MUC*", "SCGB*", "AGR*",
                            "CLDN*", "ESR1", "PGR", "TFF*", "MUCL1", "CD24", "S100A*"),
    "adipose": ("ADIPOQ", "FABP4", "PLIN*", "LPL", "CFD", "SCD", "CIDE*", "LEP", "ADH1B", "G0S2"),
}


def _matches(gene: str, pattern: str) -> bool:
    return gene.startswith(pattern[:-1]) if pattern.endswith("*") else gene == pattern


def gene_class(genes: Iterable[str]) -> pd.Series:
    """Each gene's class from :data:`MARKERS` (``"other"`` when none matches), indexed by gene."""
    genes = list(genes)
    out = []
    for g in genes:
        cls = next((c for c, pats in MARKERS.items() if any(_matches(g, p) for p in pats)), "other")
        out.append(cls)
    return pd.Series(out, index=pd.Index(genes, name="gene"), name="class")


def class_shares(top: Iterable[str], everything: Iterable[str]) -> pd.DataFrame:
    """Genes per class among ``top`` and among ``everything`` (counts and shares)."""
    a, b = gene_class(top).value_counts(), gene_class(everything).value_counts()
    out = pd.DataFrame({"top genes": a, "all genes": b}).fillna(0).astype(int)
    out["share of top"] = (out["top genes"] / out["top genes"].sum()).round(2)
    out["share of all"] = (out["all genes"] / out["all genes"].sum()).round(2)
    order = [c for c in (*MARKERS, "other") if c in out.index]
    return out.loc[order]
