"""A real HER2ST section written in 10x Visium's Space Ranger layout, for the ``visium`` reader.

From ``../shared/data/her2st`` (C2 by default): its counts (the ``n_genes`` genes with the most
counts) as ``outs/filtered_feature_bc_matrix.h5`` in 10x's HDF5 format (written with h5py: neither
anndata nor scanpy writes that format), its spot table as ``outs/spatial/tissue_positions.csv``
(Space Ranger 2+, with a header; ``in_tissue`` = ``selected``), ``scalefactors_json.json`` and the
hires / lowres PNGs, and the H&E downscaled by ``scale`` as the "full-resolution" image the user
gives. Barcodes are ``"<x>x<y>-1"``. Legacy-ST geometry (100 um spots, 200 um pitch), so the
manifest declares it instead of Visium's default.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "her2st"


def write_10x_h5(path: Path, counts: pd.DataFrame, *, library_id: str, gene_ids: list[str] | None = None) -> None:
    """``counts`` (barcodes x genes) as a Cell Ranger / Space Ranger v3 ``*_feature_bc_matrix.h5``."""
    X = sp.csc_matrix(counts.to_numpy().T.astype(np.int32))  # features x barcodes, column-compressed
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["library_ids"] = np.array([library_id], dtype="S")
        f.attrs["chemistry_description"] = np.bytes_("Spatial 3' v1 (written from legacy ST)")
        f.attrs["software_version"] = np.bytes_("stlib test fixture")
        m = f.create_group("matrix")
        m.create_dataset("barcodes", data=np.array(counts.index, dtype="S"))
        m.create_dataset("data", data=X.data)
        m.create_dataset("indices", data=X.indices.astype(np.int64))
        m.create_dataset("indptr", data=X.indptr.astype(np.int64))
        m.create_dataset("shape", data=np.array(X.shape, dtype=np.int32))
        feats = m.create_group("features")
        ids = gene_ids or [f"FAKE{i:05d}" for i in range(counts.shape[1])]
        feats.create_dataset("id", data=np.array(ids, dtype="S"))
        feats.create_dataset("name", data=np.array(counts.columns, dtype="S"))
        feats.create_dataset("feature_type", data=np.array(["Gene Expression"] * counts.shape[1], dtype="S"))
        feats.create_dataset("genome", data=np.array(["GRCh38"] * counts.shape[1], dtype="S"))
        feats.create_dataset("_all_tag_keys", data=np.array(["genome"], dtype="S"))


def make_visium_fixture(tmp_path: Path, *, section: str = "C2", scale: float = 0.25, n_genes: int = 300,
                        duplicate_symbol: bool = False) -> tuple[Path, dict]:
    """Write ``tmp_path/visium/`` (one section, its manifest ``visium.yaml``); return the manifest and
    what was written (``um_per_px``, ``scale``, ``genes``, ``xy`` of the kept spots, ``n_selected``)."""
    patient = section[0]
    counts = pd.read_csv(SHARED / "data" / "ST-cnts" / f"{section}.tsv.gz", sep="\t", index_col=0)
    sel = pd.read_csv(SHARED / "data" / "ST-spotfiles" / f"{section}_selection.tsv", sep="\t")
    img_src = next((SHARED / "data" / "ST-imgs" / patient / section).glob("*.jpg"))
    genes = list(counts.sum(axis=0).sort_values(ascending=False, kind="stable").index[:n_genes])
    counts = counts[genes]
    if duplicate_symbol:
        counts.columns = [*genes[:-1], genes[0]]  # two genes named alike, as in Space Ranger's references
    root = Path(tmp_path) / "visium"
    outs = root / section / "outs"
    (outs / "spatial").mkdir(parents=True, exist_ok=True)
    from stlib.io.images import pil_limits

    with pil_limits(), Image.open(img_src) as im:
        w, h = im.size
        size = (round(w * scale), round(h * scale))
        im.draft("RGB", size)
        img = im.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    sx, sy = size[0] / w, size[1] / h
    full = root / section / f"{section}_full.jpg"
    img.save(full, quality=90)
    hires_f, lowres_f = 1000 / max(size), 300 / max(size)
    img.resize((round(size[0] * hires_f), round(size[1] * hires_f))).save(outs / "spatial" / "tissue_hires_image.png")
    img.resize((round(size[0] * lowres_f), round(size[1] * lowres_f))).save(outs / "spatial" / "tissue_lowres_image.png")
    ids = [f"{x}x{y}" for x, y in zip(sel["x"], sel["y"])]
    px, py = sel["pixel_x"].to_numpy(float) * sx, sel["pixel_y"].to_numpy(float) * sy
    pos = pd.DataFrame({"barcode": [f"{i}-1" for i in ids], "in_tissue": sel["selected"].astype(int),
                        "array_row": sel["y"], "array_col": sel["x"], "pxl_row_in_fullres": np.round(py, 3),
                        "pxl_col_in_fullres": np.round(px, 3)})
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    counts.index = [f"{i}-1" for i in counts.index]
    counts = counts[counts.index.isin(pos["barcode"])]  # a Space Ranger matrix holds the array's barcodes only
    write_10x_h5(outs / "filtered_feature_bc_matrix.h5", counts, library_id=section)
    from sklearn.neighbors import NearestNeighbors

    xy = np.c_[px, py][sel["selected"].to_numpy() == 1]
    d, _ = NearestNeighbors(n_neighbors=2).fit(xy).kneighbors(xy)
    um = 200.0 / float(np.median(d[:, 1]))
    (outs / "spatial" / "scalefactors_json.json").write_text(json.dumps({
        "spot_diameter_fullres": 100.0 / um, "fiducial_diameter_fullres": 150.0 / um,
        "tissue_hires_scalef": hires_f, "tissue_lowres_scalef": lowres_f}))
    split = pd.DataFrame({"section": [section], "patient": [patient], "split": ["test"]})
    split.to_csv(root / "split.tsv", sep="\t", index=False)
    manifest = {"name": "visium-fixture", "reader": "visium", "origin": "local",
                "geometry": {"spot_diameter_um": 100, "spot_pitch_um": 200}, "split": "split.tsv",
                "sections": {section: {"patient": patient, "group": "HER2+", "folder": f"{section}/outs",
                                       "image": f"{section}/{section}_full.jpg"}}}
    path = root / "visium.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path, {"um_per_px": um, "scale": (sx, sy), "genes": list(counts.columns), "n_selected": int(sel["selected"].sum())}
