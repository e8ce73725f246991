"""Larger settings of chapter 15's fine-tuned CNN: what they give, and what they cost.

Chapter 15 trains its fine-tuned CNN with settings that fit CI (8 augmented views per train
spot, MobileNetV2 trained from ``block_14_expand``, at most 30 epochs, patience 4). This
script refits it, under the run's gene rule, with each larger setting changed on its own:

- ``views 16``: 16 augmented views of each train spot instead of 8;
- ``from block_12``: two more inverted-residual blocks trained (from ``block_12_expand``);
- ``longer``: at most 60 epochs with patience 8.

Each is scored like chapter 15's variants (test PCC, fraction of the noise ceiling, the paired
bootstrap difference from the recipe with its 95% interval, resampled by the run's stored interval
rule; only an interval above zero is a gain) and timed. The table goes to ``--out`` (CSV) with a JSON record beside it (commit, command,
machine, seconds); chapter 15 shows the stored record. It takes about 20 minutes on two cores::

    python benchmarks/finetune_settings.py --results results/default \\
        --out book/records/finetune_settings.csv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad

import stlib as st
from stlib.book import beyond, scoring, store
from stlib.models import finetune

RECIPE = {"n_views": 8, "first_trainable": "block_14_expand", "epochs": 30, "patience": 4}
SETTINGS = {
    "recipe": {},
    "views 16": {"n_views": 16},
    "from block_12": {"first_trainable": "block_12_expand"},
    "longer (60 epochs, patience 8)": {"epochs": 60, "patience": 8},
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results/default", help="a run's results (chapters 1-2)")
    ap.add_argument("--out", default="book/records/finetune_settings.csv")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    args = ap.parse_args(argv)

    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True,
                            cwd=Path(st.__file__).parent).stdout.strip() or "unknown"  # the code that runs
    out = store.resolve(args.results)
    rule_in_force = scoring.use_run_intervals(out)  # the run's interval rule, as chapter 15 scores
    print("intervals:", rule_in_force.describe(), flush=True)
    targets = store.load_targets(out)
    data = ad.read_h5ad(out / "data.h5ad")
    config = {k: targets.uns["cnn_features"][k] for k in ("backbone", "weights", "window_um")}
    rule = targets.uns.get("gene_selection", {}).get("rule_name", "paper")  # the run's rule (as chapter 15)
    t = beyond.rule_targets(data, targets, [rule])[rule]
    masks = st.get.split_masks(targets)
    Y = st.get.split_arrays(t, ["X"])
    t0 = time.perf_counter()
    windows = st.im.spot_windows(targets, window_um=config["window_um"])
    split_windows = {s: windows[m] for s, m in masks.items()}
    window_seconds = time.perf_counter() - t0
    print(f"windows: {window_seconds:.0f} s", flush=True)

    results, cost, views_cache = [], {}, {}
    for label, change in SETTINGS.items():
        s = {**RECIPE, **change}
        t0 = time.perf_counter()
        key = (s["n_views"], s["first_trainable"])
        if key not in views_cache:
            views_cache.clear()  # one set of views in memory at a time
            views_cache[key] = finetune.prepare_views(split_windows, backbone=config["backbone"],
                                                      weights=config["weights"], first_trainable=s["first_trainable"],
                                                      n_views=s["n_views"], seed=args.seed)
        r = finetune.finetune_cnn(views_cache[key], Y, epochs=s["epochs"], patience=s["patience"],
                                  learning_rate=args.learning_rate, seed=args.seed, name=label)
        cost[label] = window_seconds + time.perf_counter() - t0
        r.settings["setting"] = s
        results.append(r)
        print(f"{label}: best epoch {r.settings['best_epoch']} of {r.settings['epochs_run']}, "
              f"{cost[label]:.0f} s", flush=True)

    table, _ = beyond.variant_table(t, results, cost=cost, reference="recipe", oracle=None, n_boot=args.n_boot,
                                    seed=args.seed)
    table["best epoch"] = [r.settings["best_epoch"] for r in results]
    table["epochs run"] = [r.settings["epochs_run"] for r in results]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path)
    record = {"command": "python benchmarks/finetune_settings.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "commit": commit, "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "gene_rule": rule, "recipe": RECIPE,
              "learning_rate": args.learning_rate, "settings": SETTINGS, "n_boot": args.n_boot, "seed": args.seed,
              "backbone": config["backbone"], "test_sections": st.get.sections(targets, masks["test"]),
              "intervals": rule_in_force.describe()}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(beyond.readable(table, reference="vs probe").to_string())
    print(f"wrote {path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
