"""Benchmark CNN feature extraction against the machine's matmul speed.

For each backbone (ResNet50 with random weights, MobileNetV2 with ImageNet
weights when the Keras cache has them) it prints patches/second on random
224 x 224 patches through :func:`stlib.im.embed_windows`, the model's FLOPs per
patch (counted from its convolution and dense layers: 2 FLOP per
multiply-accumulate; batch-norm, activations and additions are left out),
the CNN's achieved GFLOP/s and its ratio to a float32 4096 x 4096 matmul
with numpy and with TensorFlow.

Run ``python benchmarks/bench_cnn.py`` to benchmark with oneDNN off and on
(two subprocesses, ``TF_ENABLE_ONEDNN_OPTS=0`` and ``=1``; the variable must be
set before TensorFlow is imported), or ``--onednn 0`` / ``--onednn 1`` for one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
PUBLISHED_GMAC = {"resnet50": 4.1, "mobilenet_v2": 0.3}
REPO = Path(__file__).resolve().parents[1]


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one forward pass of one image (conv + dense layers)."""
    import keras

    macs = 0
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
            continue
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            macs += h * w * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            macs += h * w * kh * kw * cin * cout // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            macs += cin * cout
    return int(macs)


def best_of(fn: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_gflops() -> tuple[float, float]:
    import numpy as np
    import tensorflow as tf

    n = 4096
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    flop = 2 * n**3
    a @ a  # warm up
    t_np = best_of(lambda: a @ a)
    ta = tf.constant(a)
    tf.linalg.matmul(ta, ta).numpy()
    t_tf = best_of(lambda: tf.linalg.matmul(ta, ta).numpy())
    return flop / t_np / 1e9, flop / t_tf / 1e9


def mobilenet_weights() -> str | None:
    """"imagenet" if Keras will find the cached weights file, else None."""
    home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()  # as keras resolves it
    return "imagenet" if (home / "models" / MOBILENET_FILE).is_file() else None


def child(onednn: int, n_patches: int, batch_size: int) -> dict[str, Any]:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = str(onednn)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    sys.path.insert(0, str(REPO))
    from stlib import im

    np_gflops, tf_gflops = matmul_gflops()
    patches = np.random.default_rng(0).integers(0, 256, size=(n_patches, 224, 224, 3), dtype=np.uint8)
    rows = []
    for name, weights in (("resnet50", None), ("mobilenet_v2", mobilenet_weights())):
        model, preprocess = im.get_backbone(name, weights)
        macs = count_macs(model)
        im.embed_windows(patches[:batch_size], model, preprocess, batch_size)  # warm up / trace
        t = best_of(lambda m=model, p=preprocess: im.embed_windows(patches, m, p, batch_size), repeats=1)
        rate = n_patches / t
        gflops = rate * 2 * macs / 1e9
        rows.append(
            {
                "backbone": name,
                "weights": str(weights),
                "patches_per_s": rate,
                "gmac_per_patch": macs / 1e9,
                "published_gmac": PUBLISHED_GMAC[name],
                "cnn_gflops": gflops,
                "ratio_np": gflops / np_gflops,
                "ratio_tf": gflops / tf_gflops,
            }
        )
        del model
    return {"onednn": onednn, "np_matmul_gflops": np_gflops, "tf_matmul_gflops": tf_gflops, "rows": rows}


def print_table(results: list[dict[str, Any]], n_patches: int, batch_size: int) -> None:
    print(f"\nCNN feature extraction: {n_patches} random 224x224 patches, batch {batch_size}, {os.cpu_count()} CPU(s)")
    print("FLOPs counted from the model's conv/dense layers (2 FLOP per MAC); published GMAC for comparison.\n")
    for r in results:
        print(
            f"oneDNN={r['onednn']}: float32 4096x4096 matmul  numpy {r['np_matmul_gflops']:7.1f} GFLOP/s"
            f"   tf {r['tf_matmul_gflops']:7.1f} GFLOP/s"
        )
    head = (
        f"{'oneDNN':>6} {'backbone':<13} {'weights':<9} {'patch/s':>8} {'GMAC/patch':>10} {'published':>9}"
        f" {'CNN GFLOP/s':>11} {'/np matmul':>10} {'/tf matmul':>10}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        for row in r["rows"]:
            print(
                f"{r['onednn']:>6} {row['backbone']:<13} {row['weights']:<9} {row['patches_per_s']:8.1f}"
                f" {row['gmac_per_patch']:10.2f} {row['published_gmac']:9.1f} {row['cnn_gflops']:11.1f}"
                f" {row['ratio_np']:10.2f} {row['ratio_tf']:10.2f}"
            )


def keras_home_env() -> dict[str, str]:
    """Environment for the children: point KERAS_HOME at a copy of shared weights if needed."""
    env = dict(os.environ)
    home = Path(env.get("KERAS_HOME", "~/.keras")).expanduser()
    if (home / "models" / MOBILENET_FILE).is_file():
        return env
    shared = REPO.parent / "shared" / "weights" / "keras" / "models" / MOBILENET_FILE
    if shared.is_file():
        tmp = Path(tempfile.mkdtemp(prefix="keras_home_"))
        (tmp / "models").mkdir()
        shutil.copy(shared, tmp / "models" / MOBILENET_FILE)
        env["KERAS_HOME"] = str(tmp)
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onednn", type=int, choices=(0, 1), help="run once with this setting (default: both)")
    ap.add_argument("--n-patches", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = ap.parse_args(argv)

    if args.onednn is not None:
        os.environ.update(keras_home_env())
        result = child(args.onednn, args.n_patches, args.batch_size)
        if args.json:
            print(json.dumps(result))
        else:
            print_table([result], args.n_patches, args.batch_size)
        return 0

    env = keras_home_env()
    results = []
    for flag in (0, 1):
        cmd = [sys.executable, __file__, "--onednn", str(flag), "--json"]
        cmd += ["--n-patches", str(args.n_patches), "--batch-size", str(args.batch_size)]
        print(f"running: TF_ENABLE_ONEDNN_OPTS={flag} ...", flush=True)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_table(results, args.n_patches, args.batch_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
