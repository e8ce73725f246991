"""Readers, the data-set registry, fetching, splits and images.

- :mod:`stlib.io.registry`: manifests (``data/datasets/*.yaml``) -> :class:`Dataset`;
- :mod:`stlib.io.fetch`: the files of a data set from a mirror, the cache or the origin;
- :mod:`stlib.io.splits`: split files, and fresh stratified patient splits;
- :mod:`stlib.io.design`: what a split can run: the chapters' split rules, checked up front;
- :mod:`stlib.io.her2st`, :mod:`stlib.io.he2020`: the readers, each with its folder layout;
- :mod:`stlib.io.spots`, :mod:`stlib.io.visium`: your own sections (a manifest naming every file;
  Space Ranger outputs through squidpy);
- :mod:`stlib.io.hest`: HEST-1k samples (``st/<id>.h5ad``, pyramidal ``wsis/<id>.tif``, ``metadata/<id>.json``);
- :mod:`stlib.io.her2st_app`: HER2ST sections read from the web app's views (patient A);
- :mod:`stlib.io.register`: tissue masks, spots on tissue, registering spots to the tissue;
- :mod:`stlib.io.rdata`: a small reader of R's saveRDS files (the app's ``dims.list``);
- :mod:`stlib.io.images`: every H&E image opened, one PIL policy;
- :mod:`stlib.io.paper`: the report's facts shipped in ``data/``.
"""

from __future__ import annotations

from stlib.io._common import check_spots_in_image, section_geometry
from stlib.io.design import check_design, resolution_table
from stlib.io.he2020 import read_he2020, read_metadata, write_he2020_split
from stlib.io.her2st import parse_motivation, read_her2st, read_her2st_section
from stlib.io.images import add_hires_image, read_image
from stlib.io.paper import paper_gene_ids, read_paper_genes, read_paper_table1
from stlib.io.register import register_spots, tissue_mask
from stlib.io.registry import Dataset, available_datasets, load_dataset
from stlib.io.splits import read_split, stratified_patient_split

__all__ = [
    "Dataset",
    "add_hires_image",
    "available_datasets",
    "check_design",
    "check_spots_in_image",
    "load_dataset",
    "paper_gene_ids",
    "parse_motivation",
    "read_he2020",
    "read_her2st",
    "read_her2st_section",
    "read_image",
    "read_metadata",
    "read_paper_genes",
    "read_paper_table1",
    "read_split",
    "register_spots",
    "resolution_table",
    "section_geometry",
    "stratified_patient_split",
    "tissue_mask",
    "write_he2020_split",
]
