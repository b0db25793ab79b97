"""Train every preset on real MNIST and report its test accuracy and wall time, per seed.

    python bench/bench_presets.py [--presets default,best] [--seeds 0,1,2] [--json FILE]

Trains on ../shared/datasets/mnist-10k (MNIST's first 10,000 training digits, read in place) and
measures on the official 10,000 test digits: the standard for every accuracy figure digitnet
quotes. Seconds are wall time of the whole run (split, training, evaluation); the machine's load
average is printed beside them, since a busy neighbour slows 2-thread BLAS many times over.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST_10K = ROOT.parent / "shared" / "datasets" / "mnist-10k"


def main(argv: list[str] | None = None) -> int:
    from digitnet.data.datasets import load_folder
    from digitnet.presets import PRESETS, get_preset
    from digitnet.train.run import run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not (MNIST_10K / "train-images-idx3-ubyte.gz").is_file():
        print(f"skipped: real MNIST not found at {MNIST_10K}")
        return 0
    data = load_folder(MNIST_10K, name="mnist-10k")
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    print(f"{'preset':<12} {'seed':>4} {'test acc':>9} {'seconds':>8} {'load avg':>8}")
    for name in args.presets.split(","):
        rows = []
        for seed in seeds:
            load_before = os.getloadavg()[0]
            t0 = time.perf_counter()
            metrics = run(get_preset(name).replace(seed=seed), data).metrics
            seconds = time.perf_counter() - t0
            load = max(load_before, os.getloadavg()[0])
            rows.append(
                {
                    "seed": seed,
                    "test_accuracy": metrics["test_accuracy"],
                    "seconds": seconds,
                    "load_average": load,
                }
            )
            print(
                f"{name:<12} {seed:>4} {100 * metrics['test_accuracy']:8.2f}% {seconds:8.1f} "
                f"{load:8.2f}",
                flush=True,
            )
        accs = [r["test_accuracy"] for r in rows]
        print(
            f"{name:<12} {'all':>4} {100 * min(accs):.2f}-{100 * max(accs):.2f}% "
            f"(mean {100 * statistics.mean(accs):.2f}%)"
        )
        results[name] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
