"""Readers and the data-set registry."""

from __future__ import annotations

from stlib.io.he2020 import make_he2020_split, read_he2020, read_metadata, write_he2020_split
from stlib.io.her2st import parse_motivation, read_her2st, read_her2st_section
from stlib.io.paper import paper_gene_ids, read_paper_genes, read_paper_table1
from stlib.io.registry import Dataset, available_datasets, load_dataset, read_split

__all__ = [
    "Dataset",
    "available_datasets",
    "load_dataset",
    "make_he2020_split",
    "paper_gene_ids",
    "read_paper_genes",
    "read_paper_table1",
    "read_he2020",
    "read_metadata",
    "write_he2020_split",
    "parse_motivation",
    "read_her2st",
    "read_her2st_section",
    "read_split",
]
