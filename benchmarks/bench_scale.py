"""How the pipeline scales with the number of sections: 6, 12, 24, 68 (the He et al. size).

Builds data sets of N sections from copies of the six real demo sections (own-sections layout,
``reader: spots``): copy ``k`` of section ``S`` is section ``S_k`` of patient ``<P>_k``, with the
same image, counts and tumour annotation but every spot centre moved by ``k`` pixels, so that the CNN really runs on
every copy (the feature cache is keyed by the centres) and every stage does real work on real
images and counts. Copies keep their original's split (train / valid / test).

Each chapter runs in its own process (``stlib.book.run --out``); the table gives wall time and peak
memory (the largest resident set of one process: the chapter's kernel or a worker of it) per chapter and size, and the growth
exponent per chapter (slope of log time against log sections; the spots grow in proportion). A size whose run would pass
``--budget`` minutes is not run: its times are extrapolated from the growth between the two largest
measured sizes (``stlib.book.scale.extrapolate``) and marked.

    python benchmarks/bench_scale.py [--sizes 6 12 24 68] [--only 01 02 03 04 05 06 07 08 09] [--budget 60]
        [--record book/records/scale.csv] [--param CHAPTER NAME VALUE ...]

``--record`` writes the long table (one row per size and chapter, measured or extrapolated), the
three slowest cells of every measured chapter and size (``<record>_cells.csv``: where the time
goes, from ``stlib.book.run --timings``) and a JSON record (commit the run started from, command, date,
cores, machine, totals).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Chapter parameters of the benchmark runs: the GNN in the paper's configuration (issue 12; its
#: hyper-parameter grid stays a parameter of chapter 6). Every other parameter is the book's default.
CHAPTER_PARAMS: dict[str, dict[str, object]] = {"06": {"grid": {}}}
CHILD = ("import resource, sys\nfrom stlib.book.run import main\nrc = main(sys.argv[1:])\n"
         "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.exit(rc)")


def build(n_sections: int, out: Path, source: str = "her2st-demo") -> Path:
    """Write an N-section data set of shifted copies of ``source``; return its manifest."""
    import numpy as np
    import pandas as pd
    import yaml

    import stlib as st

    data = st.io.load_dataset(source).read(progress=False)
    secs = list(data.obs["section"].cat.categories)
    out.mkdir(parents=True, exist_ok=True)
    sections, split = {}, []
    for i in range(n_sections):
        k, j = divmod(i, len(secs))
        sec = secs[j]
        part = data[data.obs["section"] == sec]
        meta = part.uns["spatial"][sec]["metadata"]
        new, patient = f"{sec}_{k}", f"{part.obs['patient'].iloc[0]}_{k}"
        folder = out / new
        folder.mkdir(exist_ok=True)
        counts = pd.DataFrame(part.X.toarray(), index=part.obs["spot_id"].to_numpy(), columns=part.var_names)
        counts.to_csv(folder / "counts.tsv.gz", sep="\t")
        xy = np.asarray(part.obsm["spatial"]) + k  # a shift of k pixels: new windows, new cache keys
        pd.DataFrame({"spot_id": part.obs["spot_id"].to_numpy(), "pixel_x": xy[:, 0], "pixel_y": xy[:, 1]}).to_csv(
            folder / "spots.csv", index=False)
        tumor = part.obs["tumor"].astype("boolean")  # the demo's tumour annotation, as labels
        labels = np.where(tumor.isna().to_numpy(), "undetermined",
                          np.where(tumor.fillna(False).to_numpy(dtype=bool), "tumour", "non-tumour"))
        pd.DataFrame({"spot_id": part.obs["spot_id"].to_numpy(), "label": labels}).to_csv(
            folder / "labels.csv", index=False)
        img = folder / Path(meta["image_path"]).name
        if not img.exists():
            img.symlink_to(Path(meta["image_path"]).resolve())
        sections[new] = {"patient": patient, "group": str(part.obs["subtype"].iloc[0]), "counts": f"{new}/counts.tsv.gz",
                         "spots": f"{new}/spots.csv", "image": f"{new}/{img.name}", "annotations": f"{new}/labels.csv",
                         "um_per_px": meta["um_per_px"]}
        split.append({"section": new, "patient": patient, "split": str(part.obs["split"].iloc[0])})
    pd.DataFrame(split).to_csv(out / "split.tsv", sep="\t", index=False)
    manifest = {"name": f"scale-{n_sections}", "reader": "spots", "origin": "local", "split": "split.tsv",
                "tumor_labels": ["tumour"], "unknown_labels": ["undetermined"],
                "split_policy": {"allow_train_valid_patient_overlap": True,
                                 "reason": "copies of the demo, whose train and valid share patient C"},
                "sections": sections}
    path = out / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def run_chapter(chapter: str, manifest: Path, out: Path, params: dict[str, dict[str, object]]) -> tuple[float, float]:
    """Run one chapter in a fresh process with its ``params[chapter]``; its wall seconds and peak GiB."""
    cmd = [sys.executable, "-c", CHILD, "--out", str(out), "--dataset", str(manifest), "--only", chapter,
           "--no-progress", "--timings", "-p", "cache_dir", str(out / "cache" / "features"),
           "-p", "model_cache", str(out / "cache" / "models")]
    for name, value in params.get(chapter, {}).items():
        cmd += ["-p", name, value if isinstance(value, str) else repr(value)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"chapter {chapter} failed on {manifest}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    kib = max(int(x.split()[1]) for x in r.stdout.splitlines() if x.startswith("PEAK_KIB"))
    return wall, kib / 2**20


def chapter_top_cells(chapter: str, out: Path, n: int = 3) -> list[dict[str, object]]:
    """The chapter's ``n`` slowest cells of the run just made (``stlib.book.run --timings``)."""
    import pandas as pd

    found = sorted((out / "notebooks").glob(f"{chapter}_*.timings.csv"))
    if not found:
        return []
    t = pd.read_csv(found[-1]).sort_values("seconds", ascending=False).head(n)
    return [{"chapter": chapter, "cell": int(r.cell), "seconds": float(r.seconds), "source": str(r.source)}
            for r in t.itertuples()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[6, 12, 24, 68])
    p.add_argument("--only", nargs="*", default=["01", "02", "03", "04", "05", "06", "07", "08", "09"])
    p.add_argument("--budget", type=float, default=60.0, help="minutes a size may take before it is extrapolated")
    p.add_argument("--work", default=str(ROOT / "runs" / "bench-scale"))
    p.add_argument("--record", default=None, help="write the table here (CSV) with a JSON record beside it")
    p.add_argument("--note", default=None, help="a note kept in the JSON record (e.g. how the sizes were run)")
    p.add_argument("--param", nargs=3, action="append", default=[], metavar=("CHAPTER", "NAME", "VALUE"),
                   help="one more chapter parameter for every size (as stlib.book.run -p NAME VALUE), e.g. "
                        "--param 06 seeds '[0]'; kept in the record. Use another --work for other parameters")
    p.add_argument("--fresh", action="store_true", help="forget the sizes measured by earlier runs in --work")
    p.add_argument("--resume", action="store_true",
                   help="keep the chapters of --sizes already measured in --work (same data and results) and run "
                        "the rest; they find the caches the earlier chapters left, as in one run, and also what an "
                        "interrupted attempt at them left: delete <work>/n<N>/run/cache first to measure them cold")
    a = p.parse_args()

    import pandas as pd

    from stlib.book import scale

    params = {ch: dict(v) for ch, v in CHAPTER_PARAMS.items()}
    for ch, name, value in a.param:
        if ch not in a.only:
            p.error(f"--param {ch} {name}: chapter {ch} is not among --only {' '.join(a.only)}")
        params.setdefault(ch, {})[name] = value
    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip() or "unknown"  # the code that runs
    started = time.time()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    store = work / "rows.csv"  # measured rows of earlier invocations: sizes can be run one at a time
    cells_store = work / "cells.csv"  # the slowest cells of each measured chapter: where the time goes
    rows, cells = [], []
    if cells_store.is_file() and not a.fresh:
        cells = pd.read_csv(cells_store, dtype={"chapter": str}).to_dict("records")
    if store.is_file() and not a.fresh:
        old = pd.read_csv(store, dtype={"chapter": str})
        keep = ~old["sections"].isin(a.sizes) | a.resume  # --resume: go on with a size's missing chapters
        old = old[old["measured"] & old["chapter"].isin(a.only) & keep]
        rows = old.to_dict("records")
    for n in sorted(a.sizes):
        done = [r for r in rows if r["measured"] and r["sections"] < n]
        sizes = sorted({r["sections"] for r in done})
        predicted = {}
        if len(sizes) >= 2:  # extrapolate every chapter from the sizes measured so far (stlib.book.scale)
            predicted = scale.extrapolate(pd.DataFrame(done), n).reindex(a.only).to_dict()
        complete = {r["chapter"] for r in rows if r["measured"] and r["sections"] == n} >= set(a.only)
        if predicted and sum(predicted.values()) / 60 > a.budget and not complete:  # measured rows are kept
            for ch in a.only:
                rows.append({"sections": n, "chapter": ch, "seconds": round(predicted[ch], 1), "peak GiB": float("nan"),
                             "measured": False})
            print(f"{n} sections: predicted {sum(predicted.values()) / 60:.0f} min > budget; extrapolated", flush=True)
            continue
        if predicted and not complete:
            print(f"{n} sections: predicted {sum(predicted.values()) / 60:.0f} min, within the budget: running", flush=True)
        out = work / f"n{n}"
        have = {r["chapter"] for r in rows if r["measured"] and r["sections"] == n}
        manifest = out / "data" / "manifest.yaml"
        if not (have and manifest.is_file() and a.resume):
            rows = [r for r in rows if r["sections"] != n]
            cells = [c for c in cells if c["sections"] != n]
            have = set()
            shutil.rmtree(out, ignore_errors=True)
            manifest = build(n, out / "data")
        for ch in a.only:
            if ch in have:
                continue
            wall, peak = run_chapter(ch, manifest, out / "run", params)
            rows.append({"sections": n, "chapter": ch, "seconds": round(wall, 1), "peak GiB": round(peak, 2),
                         "measured": True})
            slow = chapter_top_cells(ch, out / "run")
            cells = [c for c in cells if not (c["sections"] == n and c["chapter"] == ch)]
            cells += [{"sections": n, **c} for c in slow]
            print(f"{n} sections, chapter {ch}: {wall:.0f} s, peak {peak:.2f} GiB; slowest cells: "
                  + ", ".join(f"{c['cell']} {c['seconds']:.0f} s" for c in slow), flush=True)
            pd.DataFrame(rows).to_csv(store, index=False)
            pd.DataFrame(cells, columns=["sections", "chapter", "cell", "seconds", "source"]).to_csv(
                cells_store, index=False)
    table = pd.DataFrame(rows)
    exps = scale.growth(table)["exponent"].dropna()
    print(scale.wide(table).to_string())
    print("peak GiB:", scale.peaks(table).to_dict())
    print("where the time goes at the largest size:")
    print(scale.where_time_goes(table).to_string())
    print("extrapolated sizes:", sorted(set(table.loc[~table["measured"], "sections"])) or "none")
    if a.record:
        path = Path(a.record)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.sort_values(["sections", "chapter"]).to_csv(path, index=False)
        cells_path = path.with_name(path.stem + "_cells.csv")  # where the time goes, per chapter and size
        kept = pd.DataFrame(cells, columns=["sections", "chapter", "cell", "seconds", "source"])
        kept[kept["sections"].isin(a.sizes)].to_csv(cells_path, index=False)
        record = {"command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]), "commit": commit,
                  "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
                  "machine": platform.processor() or platform.machine(), "budget_minutes": a.budget,
                  "chapter_params": params, "growth_exponents": {k: round(float(v), 3) for k, v in exps.items()},
                  "total_minutes": {int(k): float(v) for k, v in (table.groupby("sections")["seconds"].sum() / 60)
                                    .round(1).items()},
                  "extrapolated_sizes": [int(x) for x in sorted(set(table.loc[~table["measured"], "sections"]))],
                  "measured_minutes": round(float(table.loc[table["measured"], "seconds"].sum()) / 60, 1),
                  "minutes_this_invocation": round((time.time() - started) / 60, 1)}
        if a.note:
            record["note"] = a.note
        path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path}, {cells_path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
