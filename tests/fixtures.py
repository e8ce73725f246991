"""Generators of tiny data sets in the exact on-disk shapes of the real ones, odd cases included.

- :func:`make_he2020_fixture` -- He et al. 2020 (Mendeley zip layout): ``metadata.csv`` and four
  files per section, with every quirk of DATA-FORMATS.md: BT/BC prefixes that differ between a
  section's files, ``spots_*.csv.gz`` with header ``,X,Y``, count matrices holding array spots that
  are not under tissue, spots under tissue without a count row, Ensembl ids, genes absent from some
  sections, ``*_Coords.tsv.gz`` with CR line endings, 4 header names over 5 columns, non-integer
  coordinates, a missing label and spots without annotation.
- :func:`make_her2st_fixture` -- the HER2ST repository layout (as ``../shared/data/her2st``), with
  ``selected == 0`` rows, a ``motivation.csv`` whose labels hold unquoted commas, cluster
  annotations keyed by pixel position, and pathologist labels for one section.

Both take ``bad=`` to inject one bad input (see ``HE2020_BAD`` / ``HER2ST_BAD``), and return a
record of what was written and what a correct reader must report.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

TOP = "Human breast cancer in situ capturing transcriptomics"

#: Ensembl ids used as genes of the He et al. fixture.
ENSG = [f"ENSG{i:011d}" for i in (3, 5, 419, 457, 460, 938, 971, 1036, 1084, 1167)]
#: Gene symbols used by the HER2ST fixture.
SYMBOLS = ["ERBB2", "CD24", "MGP", "FABP4", "IGKC", "COL1A1", "KRT19", "ACTB", "GAPDH", "MUCL1"]

DEFAULT_PATIENTS = {"BC23287": "HER2_luminal", "BC23567": "HER2_non_luminal", "BC23209": "TNBC"}

HE2020_BAD = (
    "missing_counts",
    "missing_spots",
    "missing_image",
    "truncated_counts_gzip",
    "truncated_spots_gzip",
    "truncated_coords_gzip",
    "corrupt_jpeg",
    "truncated_jpeg",
    "spot_outside_image",
    "duplicate_spot_counts",
    "duplicate_spot_spots",
    "empty_section",
    "bad_spot_ids",
    "short_coords_row",
    "negative_counts",
    "metadata_missing_column",
    "metadata_duplicate_section",
    "metadata_empty_file_name",
)
HER2ST_BAD = (
    "missing_counts",
    "missing_selection",
    "missing_image",
    "truncated_counts_gzip",
    "corrupt_jpeg",
    "truncated_jpeg",
    "spot_outside_image",
    "duplicate_spot_counts",
    "duplicate_spot_selection",
    "empty_section",
    "malformed_motivation",
    "motivation_bad_cluster",
    "motivation_missing_header",
    "unannotated_cluster",
)


@dataclass
class SectionTruth:
    """What a correct reader must produce for one section."""

    section: str
    patient: str
    subtype: str
    kept: list[str]                      # spot ids kept, in spots-file order
    dropped_no_counts: list[str]
    dropped_no_coords: list[str]
    genes: list[str]                     # genes present in this section
    counts: pd.DataFrame                 # kept spots x genes
    pixel: pd.DataFrame                  # kept spots: pixel_x, pixel_y
    tumor: dict[str, bool | None]        # kept spot -> expected tumour flag
    tumor_label: dict[str, str | None]   # kept spot -> expected original label
    files: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fixture:
    """A written fixture data set."""

    root: Path                           # the folder a reader is given
    sections: list[str]
    truth: dict[str, SectionTruth]
    metadata: pd.DataFrame | None = None
    parent: Path | None = None           # He et al.: folder holding the zip's top folder

    @property
    def all_genes(self) -> list[str]:
        return sorted(set().union(*(set(t.genes) for t in self.truth.values())))


# ---- small writers ---------------------------------------------------------------------------
def write_gzip_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(text.encode("utf-8"))


def write_jpeg(path: Path, size: int, centres: np.ndarray, seed: int) -> None:
    """A pink H&E-like JPEG of ``size x size`` px with a darker disc at each spot centre."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = (235.0, 200.0, 215.0)
    img += rng.normal(0, 6, size=img.shape)
    r = 12
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx**2 + yy**2 < r**2
    for cx, cy in centres:
        x0, y0 = int(round(cx)) - r, int(round(cy)) - r
        if x0 < 0 or y0 < 0 or x0 + 2 * r + 1 > size or y0 + 2 * r + 1 > size:
            continue
        img[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1][disc] = (150.0, 80.0, 150.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=75)


def truncate_file(path: Path, keep: float = 0.5) -> None:
    """Keep the first ``keep`` fraction of a file's bytes (a broken download)."""
    raw = path.read_bytes()
    path.write_bytes(raw[: max(1, int(len(raw) * keep))])


def corrupt_file(path: Path) -> None:
    """Replace a file by bytes that are no image, table or gzip."""
    path.write_bytes(b"this is not the file you are looking for\n" * 20)


def _grid(n_grid: tuple[int, int]) -> list[tuple[int, int]]:
    return [(x, y) for y in range(3, 3 + n_grid[1]) for x in range(2, 2 + n_grid[0])]


def _pixels(x: int, y: int, pitch: float, rng: np.random.Generator) -> tuple[float, float]:
    return (
        round(40.0 + (x - 2) * pitch + float(rng.uniform(-3, 3)), 2),
        round(40.0 + (y - 3) * pitch + float(rng.uniform(-3, 3)), 2),
    )


# ---- He et al. 2020 ----------------------------------------------------------------------------
def make_he2020_fixture(
    tmp_path: Path,
    *,
    patients: dict[str, str] | None = None,
    replicates: tuple[str, ...] = ("C1", "D1"),
    n_grid: tuple[int, int] = (6, 6),
    image_px: int = 400,
    seed: int = 0,
    bad: str | None = None,
    bad_section: int = 0,
) -> Fixture:
    """Write a tiny He et al. 2020 data set under ``tmp_path/he2020/<TOP>/``.

    Each section: a ``n_grid`` array (default 36 positions, 60 px pitch) of which 4 are not under
    tissue; 1-2 spots under tissue lack a count row; 6 count rows are array spots off the tissue
    (x = 1 or x = 2 + n_grid[0]); 1-2 genes of the pool are absent. The first patient's image and
    spots files use the ``BT`` prefix, its count and annotation files ``BC``.

    Parameters
    ----------
    bad
        One of :data:`HE2020_BAD`, applied to section number ``bad_section``.
    """
    if bad is not None and bad not in HE2020_BAD:
        raise ValueError(f"unknown bad input {bad!r}; choose from {HE2020_BAD}")
    patients = dict(patients or DEFAULT_PATIENTS)
    rng = np.random.default_rng(seed)
    parent = Path(tmp_path) / "he2020"
    root = parent / TOP
    root.mkdir(parents=True, exist_ok=True)
    pitch = (image_px - 80) / max(n_grid)
    rows = []
    truth: dict[str, SectionTruth] = {}
    sec_no = 0
    for p_no, (patient, subtype) in enumerate(patients.items()):
        num = patient[2:]
        for rep in replicates:
            section = f"{patient}_{rep}"
            pre_img = "BT" if p_no == 0 else "BC"
            names = {
                "histology_image": f"HE_{pre_img}{num}_{rep}.jpg",
                "spot_coordinates": f"spots_{pre_img}{num}_{rep}.csv.gz",
                "count_matrix": f"BC{num}_{rep}_stdata.tsv.gz",
                "tumor_annotation": f"BC{num}_{rep}_Coords.tsv.gz",
            }
            grid = _grid(n_grid)
            order = rng.permutation(len(grid))
            off_tissue = {grid[i] for i in order[:4]}
            under = [g for g in grid if g not in off_tissue]
            n_nocount = 1 + sec_no % 2
            no_counts = [under[i] for i in sorted(rng.choice(len(under), n_nocount, replace=False))]
            with_counts = [g for g in under if g not in no_counts]
            side = [(1, 3 + k) for k in range(3)] + [(2 + n_grid[0], 3 + k) for k in range(3)]
            count_spots = with_counts + side
            absent = {ENSG[sec_no % len(ENSG)], ENSG[(sec_no + 3) % len(ENSG)]} if sec_no % 3 != 2 else {ENSG[7]}
            genes = [g for g in ENSG if g not in absent]
            ids = [f"{x}x{y}" for x, y in count_spots]
            mat = rng.poisson(3.0, size=(len(ids), len(genes))).astype(int)
            counts = pd.DataFrame(mat, index=ids, columns=genes)
            counts = counts.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))  # row order differs
            pix = {g: _pixels(g[0], g[1], pitch, rng) for g in under}
            spots = pd.DataFrame(
                {"X": [pix[g][0] for g in under], "Y": [pix[g][1] for g in under]},
                index=[f"{x}x{y}" for x, y in under],
            )
            # tumour annotation: all spots under tissue but 2, one with an empty label, one extra row
            labels: dict[str, str | None] = {}
            ann_lines = ["xcoord\tycoord\tlab\ttumor"]  # 4 names over 5 data columns
            skip = {under[i] for i in rng.choice(len(under), 2, replace=False)}
            empty_label = [g for g in with_counts if g not in skip][3]
            for k, (x, y) in enumerate(under + [side[0]]):
                if (x, y) in skip:
                    continue
                fx = x + float(rng.choice([-0.3, -0.04, 0.0, 0.04, 0.3]))
                fy = y + float(rng.choice([-0.3, -0.04, 0.0, 0.04, 0.3]))
                lab = "" if (x, y) == empty_label else str(rng.choice(["tumor", "non"]))
                xs = f"{fx:.2f}" if fx != x else str(x)
                ys = f"{fy:.2f}" if fy != y else str(y)
                ann_lines.append(f"{rep}_{xs}_{ys}\t{xs}\t{ys}\tL{1 + k % 3}\t{lab}")
                labels[f"{x}x{y}"] = lab or None
            kept = [f"{x}x{y}" for x, y in with_counts]
            write_gzip_text(root / names["spot_coordinates"], spots.to_csv())
            write_gzip_text(root / names["count_matrix"], counts.to_csv(sep="\t"))
            write_gzip_text(root / names["tumor_annotation"], "\r".join(ann_lines) + "\r")
            write_jpeg(root / names["histology_image"], image_px, spots.to_numpy(), seed + sec_no)
            t = {k: {"tumor": True, "non": False}.get(labels.get(k) or "", None) for k in kept}
            truth[section] = SectionTruth(
                section=section,
                patient=patient,
                subtype=subtype,
                kept=kept,
                dropped_no_counts=[f"{x}x{y}" for x, y in no_counts],
                dropped_no_coords=sorted(f"{x}x{y}" for x, y in side),
                genes=genes,
                counts=counts.loc[kept],
                pixel=spots.loc[kept].rename(columns={"X": "pixel_x", "Y": "pixel_y"}),
                tumor=t,
                tumor_label={k: labels.get(k) for k in kept},
                files={k: root / v for k, v in names.items()},
                extra={"annotation_unmatched": sum(k not in kept for k in labels), "replicate": rep},
            )
            rows.append({"patient": patient, "replicate": rep, "type": subtype, **{
                "count_matrix": names["count_matrix"],
                "histology_image": names["histology_image"],
                "spot_coordinates": names["spot_coordinates"],
                "tumor_annotation": names["tumor_annotation"],
            }})
            sec_no += 1
    meta = pd.DataFrame(rows)[
        ["patient", "replicate", "type", "count_matrix", "histology_image", "spot_coordinates", "tumor_annotation"]
    ]
    meta.to_csv(root / "metadata.csv", index=False)
    fx = Fixture(root=root, sections=list(truth), truth=truth, metadata=meta, parent=parent)
    if bad is not None:
        _he2020_bad(fx, bad, fx.sections[bad_section])
    return fx


def _rewrite_gz_table(path: Path, sep: str, edit) -> None:
    df = pd.read_csv(path, sep=sep, index_col=0)
    write_gzip_text(path, edit(df).to_csv(sep=sep))


def _he2020_bad(fx: Fixture, bad: str, section: str) -> None:
    t = fx.truth[section]
    f = t.files
    meta_path = fx.root / "metadata.csv"
    if bad == "missing_counts":
        f["count_matrix"].unlink()
    elif bad == "missing_spots":
        f["spot_coordinates"].unlink()
    elif bad == "missing_image":
        f["histology_image"].unlink()
    elif bad == "truncated_counts_gzip":
        truncate_file(f["count_matrix"], 0.6)
    elif bad == "truncated_spots_gzip":
        truncate_file(f["spot_coordinates"], 0.6)
    elif bad == "truncated_coords_gzip":
        truncate_file(f["tumor_annotation"], 0.6)
    elif bad == "corrupt_jpeg":
        corrupt_file(f["histology_image"])
    elif bad == "truncated_jpeg":
        truncate_file(f["histology_image"], 0.7)
    elif bad == "spot_outside_image":
        def edit(df: pd.DataFrame) -> pd.DataFrame:
            df.loc[t.kept[0], "X"] = 10_000.0
            return df
        _rewrite_gz_table(f["spot_coordinates"], ",", edit)
    elif bad == "duplicate_spot_counts":
        _rewrite_gz_table(f["count_matrix"], "\t", lambda df: pd.concat([df, df.loc[[t.kept[0]]]]))
    elif bad == "duplicate_spot_spots":
        _rewrite_gz_table(f["spot_coordinates"], ",", lambda df: pd.concat([df, df.loc[[t.kept[1]]]]))
    elif bad == "empty_section":
        _rewrite_gz_table(f["count_matrix"], "\t", lambda df: df.drop(index=t.kept))
    elif bad == "bad_spot_ids":
        def edit(df: pd.DataFrame) -> pd.DataFrame:
            df.index = [f"spot{i}" for i in range(len(df))]
            return df
        _rewrite_gz_table(f["count_matrix"], "\t", edit)
    elif bad == "short_coords_row":
        text = gzip.decompress(f["tumor_annotation"].read_bytes()).decode()
        write_gzip_text(f["tumor_annotation"], text + "C1_3_4\t3\t4\r")
    elif bad == "negative_counts":
        def edit(df: pd.DataFrame) -> pd.DataFrame:
            df.iloc[df.index.get_loc(t.kept[0]), 0] = -2
            return df
        _rewrite_gz_table(f["count_matrix"], "\t", edit)
    elif bad == "metadata_missing_column":
        fx.metadata.drop(columns=["spot_coordinates"]).to_csv(meta_path, index=False)
    elif bad == "metadata_duplicate_section":
        pd.concat([fx.metadata, fx.metadata.iloc[[0]]]).to_csv(meta_path, index=False)
    elif bad == "metadata_empty_file_name":
        m = fx.metadata.copy()
        m.loc[m.index[0], "count_matrix"] = ""
        m.to_csv(meta_path, index=False)
    else:  # pragma: no cover - guarded above
        raise ValueError(bad)


# ---- HER2ST ------------------------------------------------------------------------------------
#: motivation.csv of the fixture: unquoted commas in 'annotated as' and in 'based on'.
MOTIVATION = (
    "patient,cluster,annotated as,based on,ref1,ref2\n"
    "B,0,cancer 1,Marker genes include :  ERBB2, CD24 and enriched for pathways related to cell cycle,"
    "https://www.proteinatlas.org/ENSG00000141736-ERBB2/pathology,\n"
    "B,1,immune : APC, B-cell, T-cell,Marker genes include :  HLA-D* genes and enriched for immune response,,\n"
    "B,2,unknown,,,\n"
    "C,0,adipose,Marker genes include :  FABP4, ADH1B,https://www.proteinatlas.org/ENSG00000170323-FABP4/tissue,\n"
    "C,1,cancer in situ : immune rich,Marker genes include :  SCGB2A2, MGP, ERBB2,,\n"
    "C,2,immune : B/plasma cells,Marker genes include : IGHA1, IGKC, IGLC2,,\n"
)
MOTIVATION_TUMOR = {("B", 0): True, ("B", 1): False, ("B", 2): None, ("C", 0): False, ("C", 1): True, ("C", 2): False}
MOTIVATION_LABEL = {
    ("B", 0): "cancer 1",
    ("B", 1): "immune : APC, B-cell, T-cell",
    ("B", 2): "unknown",
    ("C", 0): "adipose",
    ("C", 1): "cancer in situ : immune rich",
    ("C", 2): "immune : B/plasma cells",
}
PATHOLOGIST = ["invasive cancer", "cancer in situ", "connective tissue", "immune infiltrate", "adipose tissue", "undetermined"]
PATHOLOGIST_TUMOR = {"invasive cancer": True, "cancer in situ": True, "undetermined": None}


def make_her2st_fixture(
    tmp_path: Path,
    *,
    sections: tuple[str, ...] = ("B1", "B2", "C1"),
    pathologist_sections: tuple[str, ...] = ("B1",),
    n_grid: tuple[int, int] = (6, 6),
    image_px: int = 400,
    seed: int = 0,
    bad: str | None = None,
    bad_section: int = 0,
) -> Fixture:
    """Write a tiny HER2ST data set under ``tmp_path/her2st/`` (same layout as upstream).

    Each section: a ``n_grid`` array in the selection file of which 4 rows have ``selected == 0``
    (their count rows exist: dropped as 'no coordinates'), one selected spot has no count row,
    one gene is absent; clusters label all selected spots but 3. ``pathologist_sections`` also get
    ``data/ST-pat/lbl/<SEC>_labeled_coordinates.tsv`` with non-integer ``x, y``.

    Parameters
    ----------
    bad
        One of :data:`HER2ST_BAD`, applied to section number ``bad_section``.
    """
    if bad is not None and bad not in HER2ST_BAD:
        raise ValueError(f"unknown bad input {bad!r}; choose from {HER2ST_BAD}")
    rng = np.random.default_rng(seed)
    root = Path(tmp_path) / "her2st"
    pitch = (image_px - 80) / max(n_grid)
    truth: dict[str, SectionTruth] = {}
    for s_no, section in enumerate(sections):
        patient = section[0]
        grid = _grid(n_grid)
        order = rng.permutation(len(grid))
        unselected = {grid[i] for i in order[:4]}
        selected = [g for g in grid if g not in unselected]
        no_count = selected[int(rng.integers(len(selected)))]
        genes = [g for i, g in enumerate(SYMBOLS) if i != s_no % len(SYMBOLS)]
        count_spots = [g for g in grid if g != no_count]
        ids = [f"{x}x{y}" for x, y in count_spots]
        counts = pd.DataFrame(rng.poisson(2.0, size=(len(ids), len(genes))), index=ids, columns=genes)
        sel_rows = []
        pix = {}
        for x, y in grid:
            px, py = _pixels(x, y, pitch, rng)
            pix[(x, y)] = (px, py)
            sel_rows.append({
                "x": x, "y": y, "new_x": round(x + rng.uniform(-0.15, 0.15), 3),
                "new_y": round(y + rng.uniform(-0.15, 0.15), 3), "pixel_x": px, "pixel_y": py,
                "selected": 0 if (x, y) in unselected else 1,
            })
        sel = pd.DataFrame(sel_rows)
        paths = {
            "counts": root / "data" / "ST-cnts" / f"{section}.tsv.gz",
            "selection": root / "data" / "ST-spotfiles" / f"{section}_selection.tsv",
            "image": root / "data" / "ST-imgs" / patient / section / f"{5714 + s_no}_HE_BT_{section}.jpg",
            "clusters": root / "res" / "ST-cluster" / "lbl" / f"{section}-cluster-annotation.tsv.gz",
        }
        write_gzip_text(paths["counts"], counts.to_csv(sep="\t"))
        paths["selection"].parent.mkdir(parents=True, exist_ok=True)
        sel.to_csv(paths["selection"], sep="\t", index=False)
        write_jpeg(paths["image"], image_px, np.array([pix[g] for g in selected]), seed + s_no)
        # expression clusters, keyed by pixel position (as upstream), 3 selected spots unclustered
        unclustered = {selected[i] for i in rng.choice(len(selected), 3, replace=False)}
        cl_rows = []
        cluster_of: dict[tuple[int, int], int] = {}
        for x, y in selected:
            if (x, y) in unclustered:
                continue
            c = int(rng.integers(3))
            cluster_of[(x, y)] = c
            px, py = pix[(x, y)]
            cl_rows.append({"": f"{px}x{py}", "patient_id": patient, "ids": section, "label": c, "x": x, "y": y,
                            "pixel_x": px, "pixel_y": py, "warped_x": round(px * 0.9, 2), "warped_y": round(py * 0.9, 2)})
        write_gzip_text(paths["clusters"], pd.DataFrame(cl_rows).to_csv(sep="\t", index=False))
        kept = [f"{x}x{y}" for x, y in selected if (x, y) != no_count]
        tumor: dict[str, bool | None] = {}
        tlabel: dict[str, str | None] = {}
        source = "clusters"
        if section in pathologist_sections:
            source = "pathologist"
            paths["pathologist"] = root / "data" / "ST-pat" / "lbl" / f"{section}_labeled_coordinates.tsv"
            lab_rows = []
            unlabelled = selected[0]
            for k, (x, y) in enumerate(selected):
                if (x, y) == unlabelled:
                    continue
                lab = PATHOLOGIST[k % len(PATHOLOGIST)]
                px, py = pix[(x, y)]
                lab_rows.append({"Row.names": f"{round(px)}x{round(py)}", "x": round(x + rng.uniform(-0.2, 0.2), 3),
                                 "y": round(y + rng.uniform(-0.2, 0.2), 3), "pixel_x": px, "pixel_y": py, "label": lab})
                tlabel[f"{x}x{y}"] = lab
            paths["pathologist"].parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(lab_rows).to_csv(paths["pathologist"], sep="\t", index=False)
            for k in kept:
                lab = tlabel.get(k)
                tumor[k] = None if lab is None else PATHOLOGIST_TUMOR.get(lab, False)
            tlabel = {k: tlabel.get(k) for k in kept}
        else:
            for k in kept:
                x, y = (int(v) for v in k.split("x"))
                c = cluster_of.get((x, y))
                tumor[k] = None if c is None else MOTIVATION_TUMOR[(patient, c)]
                tlabel[k] = None if c is None else MOTIVATION_LABEL[(patient, c)]
        truth[section] = SectionTruth(
            section=section,
            patient=patient,
            subtype="HER2+",
            kept=kept,
            dropped_no_counts=[f"{no_count[0]}x{no_count[1]}"],
            dropped_no_coords=sorted(f"{x}x{y}" for x, y in unselected),
            genes=genes,
            counts=counts.loc[kept],
            pixel=pd.DataFrame({"pixel_x": [pix[tuple(map(int, k.split('x')))][0] for k in kept],
                                "pixel_y": [pix[tuple(map(int, k.split('x')))][1] for k in kept]}, index=kept),
            tumor=tumor,
            tumor_label=tlabel,
            files=paths,
            extra={"source": source, "cluster_of": {f"{x}x{y}": c for (x, y), c in cluster_of.items()}},
        )
    mot = root / "res" / "ST-cluster" / "motivation.csv"
    mot.write_text(MOTIVATION)
    fx = Fixture(root=root, sections=list(truth), truth=truth)
    if bad is not None:
        _her2st_bad(fx, bad, fx.sections[bad_section])
    return fx


def _her2st_bad(fx: Fixture, bad: str, section: str) -> None:
    t = fx.truth[section]
    f = t.files
    mot = fx.root / "res" / "ST-cluster" / "motivation.csv"
    if bad == "missing_counts":
        f["counts"].unlink()
    elif bad == "missing_selection":
        f["selection"].unlink()
    elif bad == "missing_image":
        f["image"].unlink()
    elif bad == "truncated_counts_gzip":
        truncate_file(f["counts"], 0.6)
    elif bad == "corrupt_jpeg":
        corrupt_file(f["image"])
    elif bad == "truncated_jpeg":
        truncate_file(f["image"], 0.7)
    elif bad == "spot_outside_image":
        sel = pd.read_csv(f["selection"], sep="\t")
        x, y = (int(v) for v in t.kept[0].split("x"))
        sel.loc[(sel["x"] == x) & (sel["y"] == y), "pixel_y"] = -25.0
        sel.to_csv(f["selection"], sep="\t", index=False)
    elif bad == "duplicate_spot_counts":
        _rewrite_gz_table(f["counts"], "\t", lambda df: pd.concat([df, df.loc[[t.kept[2]]]]))
    elif bad == "duplicate_spot_selection":
        sel = pd.read_csv(f["selection"], sep="\t")
        sel = pd.concat([sel, sel[sel["selected"] == 1].iloc[[0]]])
        sel.to_csv(f["selection"], sep="\t", index=False)
    elif bad == "empty_section":
        _rewrite_gz_table(f["counts"], "\t", lambda df: df.drop(index=t.kept))
    elif bad == "malformed_motivation":
        mot.write_text(MOTIVATION + "C,3\n")
    elif bad == "motivation_bad_cluster":
        mot.write_text(MOTIVATION.replace("B,2,unknown", "B,two,unknown"))
    elif bad == "motivation_missing_header":
        mot.write_text(MOTIVATION.split("\n", 1)[1])
    elif bad == "unannotated_cluster":
        mot.write_text("\n".join(ln for ln in MOTIVATION.split("\n") if not ln.startswith(f"{t.patient},1,")) + "\n")
    else:  # pragma: no cover - guarded above
        raise ValueError(bad)


# ---- manifests for registry tests ----------------------------------------------------------
def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def her2st_manifest_files(fx: Fixture) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of a HER2ST fixture."""
    return {
        str(p.relative_to(fx.root)).replace("\\", "/"): sha256_of(p)
        for p in sorted(fx.root.rglob("*"))
        if p.is_file()
    }


def zip_folder(folder: Path, zpath: Path) -> Path:
    """Zip ``folder`` (itself as the top entry) into ``zpath``."""
    zpath.parent.mkdir(parents=True, exist_ok=True)
    base = shutil.make_archive(str(zpath.with_suffix("")), "zip", root_dir=folder.parent, base_dir=folder.name)
    if Path(base) != zpath:
        Path(base).rename(zpath)
    return zpath
