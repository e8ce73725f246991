"""A small data set in the own-sections layout (``reader: spots``), with its manifest and split.

Four sections of three patients on a 200 um pitch at 2 um/px (a 100 px pitch; the book's
155 um window is 77 px here, resampled to the network's 224): train S1, S2 (patient P1),
valid S3 (P2), test S4 (P3). Each image is white glass with a stained, textured tissue
region under the spots, so that tissue detection has something to find. S4's resolution is
not in the manifest (estimated from the spot pitch). Per section one listed spot has
``in_tissue = 0`` and one an empty ``in_tissue``; S1 has an annotations file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

UM_PER_PX = 2.0
PITCH_PX = 100.0
SECTIONS = {"S1": ("P1", "A", "train"), "S2": ("P1", "A", "train"), "S3": ("P2", "B", "valid"),
            "S4": ("P3", "A", "test")}
GENES = [f"G{i:02d}" for i in range(30)]
BAD = ("nan_coordinate", "text_coordinate", "spot_outside", "missing_image", "checksum", "no_common_spots",
       "all_out_of_tissue", "corrupt_counts", "missing_patient")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tissue_image(path: Path, size: tuple[int, int], xy: np.ndarray, seed: int, *, margin: float = 60.0) -> None:
    """White glass, and a pink-purple textured region covering the spots (plus ``margin`` px)."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.full((h, w, 3), 245.0, dtype=np.float32) + rng.normal(0, 2, size=(h, w, 3))
    x0, y0 = xy.min(0) - margin
    x1, y1 = xy.max(0) + margin
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
    tex = rng.normal(0, 18, size=(h, w))
    nuclei = rng.random((h, w)) < 0.02
    img[inside] = np.c_[200 + tex[inside], 120 + tex[inside], 180 + tex[inside]]
    img[inside & nuclei] = (90.0, 50.0, 140.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=85)


def make_spots_fixture(tmp_path: Path, *, seed: int = 0, n_grid: tuple[int, int] = (8, 7),
                       bad: str | None = None, bad_section: str = "S1") -> Path:
    """Write the data set under ``tmp_path/own/``; return the manifest's path."""
    if bad is not None and bad not in BAD:
        raise ValueError(f"unknown bad input {bad!r}; choose from {BAD}")
    rng = np.random.default_rng(seed)
    root = Path(tmp_path) / "own"
    root.mkdir(parents=True, exist_ok=True)
    sections: dict[str, dict] = {}
    split_rows = []
    for k, (sec, (patient, group, split)) in enumerate(SECTIONS.items()):
        nx, ny = n_grid
        ax, ay = np.meshgrid(np.arange(nx), np.arange(ny))
        ax, ay = ax.ravel(), ay.ravel()
        xy = np.c_[150 + ax * PITCH_PX + rng.normal(0, 1.5, ax.size), 150 + ay * PITCH_PX + rng.normal(0, 1.5, ay.size)]
        ids = [f"{a}x{b}" for a, b in zip(ax, ay)]
        flag = np.ones(len(ids), dtype=object)
        flag[0], flag[1] = 0, ""
        size = (int(xy[:, 0].max() + 150), int(xy[:, 1].max() + 150))
        # counts: depth varies by spot, a few genes follow the image's row (a spatial pattern)
        lam = rng.gamma(2.0, 2.0, size=len(GENES))[None, :] * rng.uniform(0.5, 1.5, size=(len(ids), 1))
        lam[:, :5] *= (1 + ay[:, None] / ny)
        counts = pd.DataFrame(rng.poisson(lam), index=ids, columns=GENES)
        counts = counts.drop(index=ids[2])  # a listed spot without counts
        spots = pd.DataFrame({"spot_id": ids, "pixel_x": xy[:, 0].round(2), "pixel_y": xy[:, 1].round(2),
                              "array_x": ax, "array_y": ay, "in_tissue": flag})
        folder = root / sec
        folder.mkdir(exist_ok=True)
        entry = {"patient": patient, "group": group, "counts": f"{sec}/counts.tsv.gz", "spots": f"{sec}/spots.csv",
                 "image": f"{sec}/he.jpg"}
        if sec != "S4":
            entry["um_per_px"] = UM_PER_PX
        if bad == "missing_patient" and sec == bad_section:
            del entry["patient"]
        if bad == "nan_coordinate" and sec == bad_section:
            spots.loc[5, "pixel_x"] = np.nan
        if bad == "text_coordinate" and sec == bad_section:
            spots["pixel_y"] = spots["pixel_y"].astype(object)
            spots.loc[6, "pixel_y"] = "n/a"
        if bad == "spot_outside" and sec == bad_section:
            spots.loc[7, "pixel_x"] = size[0] + 50
        if bad == "no_common_spots" and sec == bad_section:
            counts.index = [f"{i}_other" for i in counts.index]
        if bad == "all_out_of_tissue" and sec == bad_section:
            spots["in_tissue"] = 0
        counts.to_csv(folder / "counts.tsv.gz", sep="\t")
        if bad == "corrupt_counts" and sec == bad_section:
            raw = (folder / "counts.tsv.gz").read_bytes()
            (folder / "counts.tsv.gz").write_bytes(raw[: len(raw) // 2])
        spots.to_csv(folder / "spots.csv", index=False)
        tissue_image(folder / "he.jpg", size, xy, seed + k)
        if sec == "S1":
            labels = pd.DataFrame({"spot_id": ids[:20], "label": ["invasive cancer", "stroma", "undetermined",
                                                                   "fat"] * 5})
            labels.to_csv(folder / "labels.csv", index=False)
            entry["annotations"] = f"{sec}/labels.csv"
        if bad == "missing_image" and sec == bad_section:
            (folder / "he.jpg").unlink()
        sections[sec] = entry
        split_rows.append({"section": sec, "patient": patient, "split": split})
    pd.DataFrame(split_rows).to_csv(root / "split.tsv", sep="\t", index=False)
    files = {}
    for entry in sections.values():
        for key in ("counts", "spots", "image", "annotations"):
            if key in entry and (root / entry[key]).is_file():
                files[entry[key]] = _sha(root / entry[key])
    if bad == "checksum":
        files[sections[bad_section]["counts"]] = "0" * 64
    manifest = {
        "name": "own-fixture", "reader": "spots", "origin": "local",
        "description": "a test data set in the own-sections layout",
        "geometry": {"spot_diameter_um": 100, "spot_pitch_um": 200},
        "tumor_labels": ["invasive cancer", "cancer in situ"], "unknown_labels": ["undetermined"],
        "split": "split.tsv", "split_policy": {"allow_train_valid_patient_overlap": False},
        "sections": sections, "files": files,
    }
    path = root / "own.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
