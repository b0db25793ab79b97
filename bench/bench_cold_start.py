"""Cold-start time of the command line: ``digitnet --help`` and predicting one image.

    python bench/bench_cold_start.py [--runs 10]

Each command runs ``--runs`` times (after one untimed warm-up run) as a fresh process, as a
user starts it: through ``python -m digitnet`` and through the installed ``digitnet`` console
script. Prints the minimum, median and maximum wall time against the targets (``--help`` under
0.3 s, ``predict`` under 0.6 s), the median CPU time (user + system: it depends far less on other
processes than wall time does), the machine's load average (on a shared 2-core machine a busy
neighbour slows every start), which heavy modules each command imports, and, for predict, the
imports that take the most time (``python -X importtime``).

The model is an untrained 784-512-256-10 network (its weights do not change the time) saved with
``save_model``; the image is the first test digit as a PNG. Exit status 1 if a command imports a
module it must not (plotting, torch, the downloader); a time over its target is reported, not
failed, since it depends on the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"help": 0.3, "predict": 0.6}
#: modules that no command here may import
FORBIDDEN = ("matplotlib", "torch", "pooch", "tqdm", "requests", "pandas", "IPython")
#: heavy modules that are reported when imported (top-level packages)
HEAVY = ("numpy", "scipy", "PIL", "cv2", "safetensors", "platformdirs", *FORBIDDEN)
#: what each command needs
NEEDED = {"help": (), "predict": ("numpy", "PIL", "cv2", "safetensors")}

_PROBE = """\
import json, runpy, sys
out, sys.argv = sys.argv[1], ["digitnet", *sys.argv[2:]]
try:
    runpy.run_module("digitnet", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
names = sorted(m for m in sys.modules if not m.startswith("_"))
with open(out, "w") as fh:
    json.dump(names, fh)
"""


def make_inputs(folder: Path) -> tuple[Path, Path]:
    import numpy as np
    from PIL import Image

    from digitnet.data.datasets import load_embedded
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    model = folder / "model.safetensors"
    save_model(model, Network.from_spec("784-512-256-10", seed=0))
    digit = load_embedded().X_test[:, 0].reshape(28, 28)
    image = folder / "digit.png"
    Image.fromarray(np.rint(digit * 255).astype(np.uint8)).save(image)
    return model, image


def console_script() -> Path | None:
    """The ``digitnet`` script installed beside this interpreter (not a version manager's shim,
    which adds its own start-up), else the one on PATH."""
    beside = Path(sys.executable).parent / "digitnet"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("digitnet")
    return Path(found) if found else None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_runs(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (user + system) of each run. CPU time hardly depends on the
    neighbours; wall time is what the user waits."""
    subprocess.run(argv, capture_output=True, check=True)  # warm-up: the file cache
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        wall.append(time.perf_counter() - t0)
        cpu.append(_children_cpu() - c0)
    return wall, cpu


def imported(args: list[str], folder: Path) -> set[str]:
    out = folder / "modules.json"
    subprocess.run([sys.executable, "-c", _PROBE, str(out), *args], capture_output=True, check=True)
    return set(json.loads(out.read_text()))


def slowest_imports(args: list[str], n: int = 8) -> list[tuple[float, str]]:
    """The ``n`` top-level imports with the largest cumulative time, in seconds."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "digitnet", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith(" ") and not name.startswith("  "):  # depth 0: one space after "|"
            try:
                # a package can show up as the first of its private modules to finish
                rows.append((int(cumulative) / 1e6, name.strip().split("._")[0]))
            except ValueError:  # the header line
                continue
    return sorted(rows, reverse=True)[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command")
    args = parser.parse_args(argv)

    script = console_script()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="digitnet-bench-") as tmp:
        folder = Path(tmp)
        model, image = make_inputs(folder)
        commands = {
            "help": ["--help"],
            "predict": ["predict", str(model), str(image)],
        }
        print(
            f"cold start, {args.runs} runs each after a warm-up; Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} {load_before[1]:.2f} "
            f"{load_before[2]:.2f}"
        )
        print(f"{'wall seconds':<44} {'min':>6} {'median':>7} {'max':>6}  {'cpu':>5}  target")
        failed = False
        for kind, cmd_args in commands.items():
            launchers = [([sys.executable, "-m", "digitnet"], "python -m digitnet")]
            if script is not None:
                launchers.append(([str(script)], "digitnet"))
            for launcher, label in launchers:
                seconds, cpu = time_runs([*launcher, *cmd_args], args.runs)
                median = statistics.median(seconds)
                shown = f"{label} {' '.join(cmd_args[:1])}" + (
                    " MODEL IMAGE" if kind == "predict" else ""
                )
                verdict = "ok" if median < TARGETS[kind] else "OVER"
                print(
                    f"{shown:<44} {min(seconds):6.3f} {median:7.3f} {max(seconds):6.3f}  "
                    f"{statistics.median(cpu):5.3f}  < {TARGETS[kind]} s: {verdict}"
                )
        load_after = os.getloadavg()
        print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        if script is None:
            print("(no digitnet console script found; install the package to time it)")

        print("\nheavy modules imported (from sys.modules after the command ran):")
        for kind, cmd_args in commands.items():
            modules = imported(cmd_args, folder)
            tops = {m.split(".")[0] for m in modules}
            present = [m for m in HEAVY if m in tops]
            bad = [m for m in present if m in FORBIDDEN]
            unneeded = [m for m in present if m not in NEEDED[kind] and m not in FORBIDDEN]
            print(f"  {kind:<8} {', '.join(present) or 'none'}")
            if bad:
                print(f"  {kind:<8} MUST NOT import: {', '.join(bad)}")
                failed = True
            if unneeded:
                print(f"  {kind:<8} imports what it does not need: {', '.join(unneeded)}")

        print("\nslowest top-level imports of predict (python -X importtime, one run):")
        for seconds, name in slowest_imports(commands["predict"]):
            print(f"  {seconds:6.3f} s  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
