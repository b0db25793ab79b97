"""Training and inference speed of digitnet against PyTorch on the CPU, and the GEMM floor.

What it measures
----------------
For each architecture (784-128-10 and 784-512-256-10; ReLU hidden layers, softmax output and
cross-entropy; float32), on one 10,000-example MNIST epoch with batch size 128 and plain SGD
(learning rate 0.1):

* **digitnet s/epoch**: wall time of ``net.fit(X, y, epochs=1, batch_size=128, optimizer="sgd",
  learning_rate=0.1)``, where ``X`` (784, m) is the transpose of a C-ordered (m, 784) array, so
  ``fit`` makes no copy of it. It includes everything ``fit`` does per batch (gather, forward,
  loss value, accuracy, backward, update), with the BLAS threads ``fit`` chooses
  (train/threads.py). Plain SGD takes the fused step of train/fused.py, which moves ``W`` inside
  the ``dW`` product instead of writing ``dW`` and reading it back.
* **plain s/epoch**: the same ``fit`` with ``fused=False``: the plain path of docs/math.md
  (forward, cost, backward, ``Optimizer.step``). ``fused/plain`` is what the fused step is worth.
* **torch s/epoch**: a standard PyTorch loop on the same data, ``torch.randperm`` each epoch, one
  ``x[idx]`` per batch, ``nn.Sequential`` + ``nn.CrossEntropyLoss`` + ``torch.optim.SGD``,
  ``zero_grad`` / ``backward`` / ``step``.
* **GEMM floor s/epoch**: only the matrix products one epoch needs, timed with ``np.matmul`` on
  preallocated float32 arrays of the exact shapes and memory layouts digitnet uses: forward
  ``Z = W·A`` for every layer (the first layer's ``A`` is the transpose of a (batch, 784)
  C-array), ``dW = dZ·Aᵀ`` for every layer and ``dA_prev = Wᵀ·dZ`` for all but the first.
  digitnet, which does these same products, cannot train faster than this. The floor's operands
  stay put from batch to batch; digitnet's change every step (a freshly gathered batch, updated
  weights), which with 2 threads also means moving them between the two cores' caches.
* **inference images/s** on the 10,000 test images: ``net.predict(X_test)`` against
  ``model(x).argmax(1)`` under ``torch.no_grad()``. The test accuracy beside it is a sanity
  check of whatever weights the last step left, not a comparison of the two: SGD at a constant
  0.1 on 784-512-256-10 swings from epoch to epoch (digitnet, one fit of 3 epochs after
  another: 0.80-0.95 on the test set, and 0.85-0.997 on the training set itself; with
  PyTorch's initialisation instead of He's, 0.86-0.94).

How it runs
-----------
Everything runs in ONE process, 2 threads each (``torch.set_num_threads(2)``; OpenBLAS limited to 2
threads through threadpoolctl when installed, otherwise through its own C entry point, and
``OPENBLAS_NUM_THREADS=2`` is set before NumPy is imported unless already set). After one warm-up
round, each round times ``--epochs`` back-to-back epochs (default 3; the round's figure is their
median) of every system for every architecture, alternating which system goes first from round to
round, then the inference of each, with a pause of ``--pause`` seconds (default 0.3) before each
timing: a system's idle BLAS or OpenMP threads keep spinning for a while after its last call and
would otherwise slow down the next one (by 10-20%, measured). Before each round the script waits
(at most ``--wait-quiet`` seconds) for an idle second. The CPU time other processes used during the
round is read from ``/proc/stat`` minus this process's own CPU time (``os.times()``, all threads);
a round is *quiet* when others used less than 0.10 of a core over the round and no single timing of
0.15 s or more saw them above 0.5 of a core. Rounds go on until ``--rounds`` quiet rounds were seen
or ``--max-rounds`` were run. This matters: on 2 cores, with one core taken by another process,
2-thread BLAS and OpenMP slow down many-fold (10x and more was seen).

How to read it
--------------
The figures are medians over quiet rounds (over all rounds, with a warning, if none was quiet);
``(paired)`` columns are medians of the per-round ratios, steadier when the machine's speed
drifts (it does, by up to 2x, on a shared host). ``dn/torch`` below 1.0 means digitnet trains
(or infers) faster than PyTorch; ``dn/floor`` is how far digitnet is from the time its matrix
products alone need: 1.0 would be no overhead at all. The project's targets for training are
``dn/torch <= 0.8`` (issue 15) and ``dn/floor <= 1.3``, judged on the paired ratios. Run::

    python bench/bench_train.py [--rounds 5] [--max-rounds 15] [--wait-quiet 15] [--pause 0.3]
                                [--quick] [--json out.json]

With a busy neighbour
---------------------
``--busy`` times ``digitnet train --preset P`` (whole runs where short, a few epochs otherwise:
``BUSY_RUNS``) in a fresh process, on a quiet machine and beside a process that keeps one CPU
busy, each with the BLAS threads digitnet chooses and on one thread (``OPENBLAS_NUM_THREADS=1``),
alternating; ``--compare-src DIR`` adds an older digitnet (its ``src/``) as it ran before::

    python bench/bench_train.py --busy [--rounds 2] [--presets tutorial,default]
                                [--compare-src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

THREADS = 2
_PRESET_OPENBLAS_THREADS = os.environ.get("OPENBLAS_NUM_THREADS")
# Must be set before NumPy loads OpenBLAS; an explicit setting of the caller's is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402

DATA_DIR = Path("/work/shared/datasets/mnist-10k")
ARCHS = ("784-128-10", "784-512-256-10")
BATCH = 128
LR = 0.1
TARGET_TORCH = 0.8  # digitnet's time per epoch, at most this share of PyTorch's (issue 15)
QUIET_CORES = 0.10  # others' CPU use, in cores, under which a round counts as quiet
BURST_CORES = 0.50  # ... and no single timing of >= BURST_MIN_S may see others above this
BURST_MIN_S = 0.15  # shorter timings are too few clock ticks (10 ms) to judge on their own


# -- data --------------------------------------------------------------------------------------
def _read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def _own_loader(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tiny fallback parser: 16-byte IDX header for images, 8 bytes for labels."""

    def rows(name: str) -> np.ndarray:
        raw = _read_idx(folder / name, 16)
        return (raw.reshape(-1, 784).astype(np.float32) / np.float32(255.0)).copy(order="C")

    X = rows("train-images-idx3-ubyte.gz")
    y = _read_idx(folder / "train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    Xt = rows("t10k-images-idx3-ubyte.gz")
    yt = _read_idx(folder / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return X, y, Xt, yt


def load_data(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], str]:
    """``(rows_train, y_train, rows_test, y_test)``: images as C-ordered (m, 784) float32 rows."""
    try:
        from digitnet.data.datasets import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is not None:
        try:
            d = load_dataset(data_dir=folder, dtype=np.float32)
            # X is (784, m), the transpose of C-ordered rows: .T gives those rows back, no copy
            rows_train = np.ascontiguousarray(d.X_train.T)
            rows_test = np.ascontiguousarray(d.X_test.T)
            return (rows_train, np.asarray(d.y_train), rows_test, np.asarray(d.y_test)), (
                "digitnet.data.datasets.load_dataset"
            )
        except Exception as exc:  # a loader still being written: fall back to ours
            print(f"note: load_dataset failed ({exc}); using the script's own IDX parser")
    return _own_loader(folder), "bench's own IDX parser"


# -- the machine -------------------------------------------------------------------------------
def _openblas_ctypes() -> dict[str, Any] | None:
    """Find the OpenBLAS NumPy loaded (from /proc/self/maps); limit and describe it via ctypes."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (
            ("scipy_openblas_", "64_"),
            ("scipy_openblas_", ""),
            ("openblas_", "64_"),
            ("openblas_", ""),
        ):
            try:
                set_threads = getattr(lib, f"{prefix}set_num_threads{suffix}")
                get_threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                corename = getattr(lib, f"{prefix}get_corename{suffix}")
                config = getattr(lib, f"{prefix}get_config{suffix}")
            except AttributeError:
                continue
            set_threads.argtypes = [ctypes.c_int]
            get_threads.restype = ctypes.c_int
            corename.restype = config.restype = ctypes.c_char_p
            set_threads(THREADS)
            return {
                "via": "ctypes",
                "filepath": path,
                "num_threads": get_threads(),
                "architecture": corename().decode(),
                "version": config().decode(),
            }
    return None


def setup_threads() -> tuple[dict[str, Any], Any]:
    """Limit NumPy's BLAS and PyTorch to ``THREADS`` threads; say what BLAS kernel is in use."""
    import torch

    torch.set_num_threads(THREADS)
    info: dict[str, Any] = {
        "OPENBLAS_NUM_THREADS (before this script)": _PRESET_OPENBLAS_THREADS or "(not set)",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "numpy": np.__version__,
    }
    limiter = None
    blas: list[dict[str, Any]] = []
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=THREADS, user_api="blas")
        for p in threadpoolctl.threadpool_info():
            if p.get("user_api") == "blas":
                blas.append(
                    {
                        "via": "threadpoolctl",
                        **{
                            k: p.get(k)
                            for k in (
                                "internal_api",
                                "filepath",
                                "num_threads",
                                "architecture",
                                "version",
                            )
                        },
                    }
                )
    except ImportError:
        found = _openblas_ctypes()
        if found:
            blas.append(found)
    info["numpy BLAS"] = blas or "(could not be inspected: threadpoolctl absent, no OpenBLAS)"
    return info, limiter


def _proc_stat() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / hz, steal / hz


class LoadMeter:
    """Other processes' CPU use over an interval: machine busy time minus this process's own."""

    def start(self) -> tuple[float, tuple[float, float] | None, float]:
        t = os.times()
        return time.perf_counter(), _proc_stat(), t.user + t.system

    def since(self, start: tuple[float, tuple[float, float] | None, float]) -> dict[str, Any]:
        wall0, stat0, own0 = start
        wall, stat, own1 = self.start()
        dt = max(wall - wall0, 1e-9)
        own = (own1 - own0) / dt
        if stat0 is None or stat is None:
            return {"wall": dt, "own_cores": own, "others_cores": None, "steal_cores": None}
        busy = (stat[0] - stat0[0]) / dt
        return {
            "wall": dt,
            "own_cores": own,
            "others_cores": max(busy - own, 0.0),
            "steal_cores": (stat[1] - stat0[1]) / dt,
        }


def wait_for_quiet(limit_s: float) -> float:
    """Wait (at most ``limit_s``) for a second in which the machine is idle; the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        a = _proc_stat()
        time.sleep(1.0)
        b = _proc_stat()
        if a is None or b is None or b[0] - a[0] < QUIET_CORES:
            break
    return time.perf_counter() - t0


# -- the three systems -------------------------------------------------------------------------
class DigitnetRunner:
    def __init__(self, spec: str, X: np.ndarray, y: np.ndarray, fused: bool = True) -> None:
        import digitnet

        self.net = digitnet.Network.from_spec(spec, seed=0)
        self.X, self.y = X, y
        self.fused = fused  # False: the plain path of docs/math.md, backward then Optimizer.step
        self.epochs_run = 0
        self.last: dict[str, Any] = {}

    def epochs(self, n: int) -> list[float]:
        """Seconds of each of ``n`` back-to-back epochs of one ``fit`` call."""
        self.epochs_run += 1
        stamps = [time.perf_counter()]
        history = self.net.fit(
            self.X,
            self.y,
            epochs=n,
            batch_size=BATCH,
            optimizer="sgd",
            learning_rate=LR,
            seed=self.epochs_run,
            fused=self.fused,
            callbacks=[lambda _record: stamps.append(time.perf_counter())],
        )
        self.last = history[-1]
        return [b - a for a, b in itertools.pairwise(stamps)]

    def infer(self, X_test: np.ndarray) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        pred = self.net.predict(X_test)
        return time.perf_counter() - t0, pred


class TorchRunner:
    def __init__(self, spec: str, rows: np.ndarray, y: np.ndarray) -> None:
        import torch
        from torch import nn

        self.torch = torch
        sizes = [int(s) for s in spec.split("-")]
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x = torch.from_numpy(rows)  # (m, 784) float32, shares the memory
        self.y = torch.from_numpy(y.astype(np.int64))

    def epochs(self, n: int) -> list[float]:
        return [self.epoch() for _ in range(n)]

    def epoch(self) -> float:
        torch, model, opt, loss_fn, x, y = (
            self.torch,
            self.model,
            self.opt,
            self.loss_fn,
            self.x,
            self.y,
        )
        t0 = time.perf_counter()
        model.train()
        m = x.shape[0]
        perm = torch.randperm(m)
        for k in range(0, m, BATCH):
            idx = perm[k : k + BATCH]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    def infer(self, x_test: Any) -> tuple[float, np.ndarray]:
        torch = self.torch
        self.model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            pred = self.model(x_test).argmax(1)
        dt = time.perf_counter() - t0
        return dt, pred.numpy()


class GemmFloor:
    """One epoch's matrix products alone, on preallocated arrays laid out as digitnet's."""

    def __init__(self, spec: str, m: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        sizes = [int(s) for s in spec.split("-")]
        f32 = np.float32

        def rand(*shape: int) -> np.ndarray:
            return rng.standard_normal(shape, dtype=f32) * f32(0.05)

        self.batches = [BATCH] * (m // BATCH) + ([m % BATCH] if m % BATCH else [])
        self.W = [rand(n_out, n_in) for n_in, n_out in itertools.pairwise(sizes)]
        self.bufs: dict[int, dict[str, list[np.ndarray]]] = {}
        for n in set(self.batches):
            rows = rng.random((n, sizes[0]), dtype=f32)  # the gathered batch, C-ordered rows
            acts = [rows.T] + [rng.random((s, n), dtype=f32) for s in sizes[1:-1]]
            self.bufs[n] = {
                "A": acts,  # the input of each layer: (n_in, n)
                "Z": [np.empty((s, n), dtype=f32) for s in sizes[1:]],
                "dZ": [rand(s, n) for s in sizes[1:]],
                "dA": [np.empty((s, n), dtype=f32) for s in sizes[:-1]],
            }
        self.dW = [np.empty_like(W) for W in self.W]

    def epochs(self, n: int, parts: dict[str, float] | None = None) -> list[float]:
        """Seconds of each of ``n`` epochs; ``parts`` gets the mean seconds of each product."""
        times, sums = [], {}
        for _ in range(n):
            p: dict[str, float] = {}
            times.append(self.epoch(p))
            for k, v in p.items():
                sums[k] = sums.get(k, 0.0) + v
        if parts is not None:
            parts.update({k: v / n for k, v in sums.items()})
        return times

    def epoch(self, parts: dict[str, float] | None = None) -> float:
        W, dW = self.W, self.dW
        clock = time.perf_counter
        t_fwd = t_dw = t_da = 0.0
        t0 = clock()
        for n in self.batches:
            b = self.bufs[n]
            A, Z, dZ, dA = b["A"], b["Z"], b["dZ"], b["dA"]
            ta = clock()
            for li in range(len(W)):
                np.matmul(W[li], A[li], out=Z[li])  # Z = W·A_prev
            tb = clock()
            for li in reversed(range(len(W))):
                np.matmul(dZ[li], A[li].T, out=dW[li])  # dW = dZ·A_prevᵀ
                if li:
                    tc = clock()
                    np.matmul(W[li].T, dZ[li], out=dA[li])  # dA_prev = Wᵀ·dZ
                    t_da += clock() - tc
            t_fwd += tb - ta
            t_dw += clock() - tb
        total = clock() - t0
        if parts is not None:
            parts["forward W·A"] = t_fwd
            parts["dA_prev = Wᵀ·dZ"] = t_da
            parts["dW = dZ·Aᵀ"] = t_dw - t_da
        return total


# -- a busy neighbour (--busy) -----------------------------------------------------------------
#: ``digitnet train`` arguments per preset for --busy: whole runs where they are short, else a
#: few epochs (the per-step work, which is what the threads change, is the same)
BUSY_RUNS = {
    "tutorial": [],
    "seed-16-16": ["--epochs", "3"],
    "sigmoid-mse": ["--epochs", "2"],
    "default": ["--epochs", "1"],
    "best": ["--epochs", "1"],
}


def _neighbour(cpu: int) -> Any:
    """A process that keeps CPU ``cpu`` busy (a pure-Python loop pinned to it)."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )


def _train_seconds(preset: str, env: dict[str, str], out: Path) -> float:
    import subprocess

    cmd = [sys.executable, "-m", "digitnet", "train", "--preset", preset, *BUSY_RUNS[preset]]
    t0 = time.perf_counter()
    done = subprocess.run(
        [*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=3600
    )
    dt = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return dt


def run_busy(args: argparse.Namespace) -> dict[str, Any]:
    """Each preset's ``digitnet train`` wall time: quiet and beside a busy neighbour, with the
    threads digitnet chooses and on one BLAS thread, alternating; optionally also an older
    digitnet (``--compare-src``) as it ran before the thread choice."""
    import tempfile

    cpus = sorted(os.sched_getaffinity(0))
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if _PRESET_OPENBLAS_THREADS is not None:
        base["OPENBLAS_NUM_THREADS"] = _PRESET_OPENBLAS_THREADS
    conditions: dict[str, dict[str, str]] = {
        "chosen": base,
        "1 thread": {**base, "OPENBLAS_NUM_THREADS": "1"},
    }
    if args.compare_src:
        conditions["before"] = {**base, "PYTHONPATH": args.compare_src}
    presets = args.presets.split(",") if args.presets else list(BUSY_RUNS)
    print("digitnet train beside a busy neighbour, wall seconds (the same run on one thread too)")
    print(f"  CPUs {cpus}; the neighbour is pinned to CPU {cpus[-1]}; runs: {BUSY_RUNS}")
    print(f"  load average before: {os.getloadavg()}")
    times: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for busy in (False, True) if r % 2 == 0 else (True, False):
                neighbour = _neighbour(cpus[-1]) if busy else None
                try:
                    time.sleep(0.5)
                    for preset in presets:
                        names = list(conditions) if r % 2 == 0 else list(conditions)[::-1]
                        for name in names:
                            out = Path(tmp) / f"{preset}-{name}-{busy}-{r}".replace(" ", "_")
                            dt = _train_seconds(preset, conditions[name], out)
                            key = f"{'busy' if busy else 'quiet'}, {name}"
                            times.setdefault(preset, {}).setdefault(key, []).append(dt)
                            print(
                                f"  round {r + 1} {preset:<12} {key:<18} {dt:7.2f} s  "
                                f"(load {os.getloadavg()[0]:.1f})",
                                flush=True,
                            )
                finally:
                    if neighbour is not None:
                        neighbour.kill()
                        neighbour.wait()
    print()
    print(
        f"{'preset':<13}"
        + "".join(f"{k:>18}" for k in times[presets[0]])
        + "   busy: chosen/1 thread"
    )
    summary: dict[str, Any] = {}
    for preset in presets:
        med = {k: statistics.median(v) for k, v in times[preset].items()}
        ratio = med["busy, chosen"] / med["busy, 1 thread"]
        summary[preset] = {**med, "busy_chosen_over_one_thread": ratio}
        verdict = "met" if ratio <= 1.3 else "NOT met"
        print(
            f"{preset:<13}"
            + "".join(f"{v:18.2f}" for v in med.values())
            + f"   {ratio:.2f} ({verdict})"
        )
    print(f"  medians over {args.rounds} rounds; load average after: {os.getloadavg()}")
    return {"summary": summary, "times": times}


# -- the run -----------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.data_dir)
    needed = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        print(f"skipped: the MNIST files are not in {folder} (missing: {', '.join(missing)})")
        sys.exit(0)

    env, _limiter = setup_threads()  # keep the limiter alive for the whole run
    import torch

    (rows, y, rows_test, y_test), loader = load_data(folder)
    X, X_test = rows.T, rows_test.T  # (784, m) views of C-ordered rows: fit copies nothing
    x_test_t = torch.from_numpy(rows_test)
    m, m_test = rows.shape[0], rows_test.shape[0]

    print("digitnet vs PyTorch, CPU training speed")
    print(
        f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}"
    )
    for k, v in env.items():
        if k == "numpy BLAS" and isinstance(v, list):
            for b in v:
                print(
                    f"  numpy BLAS ({b['via']}): {b.get('version')}; kernel in use: "
                    f"{b.get('architecture')}; threads: {b.get('num_threads')}"
                )
                print(f"      {b.get('filepath')}")
        else:
            print(f"  {k}: {v}")
    if env["OPENBLAS_CORETYPE"] != "(not set)":
        print(
            "  WARNING: OPENBLAS_CORETYPE is set in the environment: it forces OpenBLAS's "
            "kernel and may slow NumPy; this script leaves it as it is."
        )
    print(f"  data: {m} training and {m_test} test images from {folder} ({loader})")
    print(
        f"  epoch: {m} examples, batch {BATCH}, SGD lr {LR}, float32; "
        f"{args.rounds} quiet rounds wanted, at most {args.max_rounds}"
    )
    print()

    systems: dict[str, dict[str, Any]] = {}
    for spec in ARCHS:
        systems[spec] = {
            "digitnet": DigitnetRunner(spec, X, y),
            "plain": DigitnetRunner(spec, X, y, fused=False),
            "torch": TorchRunner(spec, rows, y),
            "floor": GemmFloor(spec, m),
        }

    meter = LoadMeter()

    def one_round(r: int) -> dict[str, Any]:
        order = ["digitnet", "torch", "plain", "floor"]
        order = order if r % 2 == 0 else order[::-1]
        out: dict[str, Any] = {
            "train": {},
            "train_epochs": {},
            "infer": {},
            "floor_parts": {},
            "sample_load": {},
        }
        start = meter.start()
        for spec in ARCHS:
            s = systems[spec]
            out["train"][spec] = {}
            out["train_epochs"][spec] = {}
            out["sample_load"][spec] = {}
            for name in order:
                time.sleep(args.pause)  # let the previous system's spinning threads go to sleep
                t = meter.start()
                if name == "floor":
                    parts: dict[str, float] = {}
                    times = s[name].epochs(args.epochs, parts)
                    out["floor_parts"][spec] = parts
                else:
                    times = s[name].epochs(args.epochs)
                out["sample_load"][spec][name] = meter.since(t)["others_cores"]
                out["train_epochs"][spec][name] = times
                out["train"][spec][name] = statistics.median(times)
        for spec in ARCHS:
            s = systems[spec]
            out["infer"][spec] = {"digitnet": [], "torch": []}
            for name in [n for n in order if n in ("digitnet", "torch")]:
                time.sleep(args.pause)
                arg = X_test if name == "digitnet" else x_test_t
                for _ in range(args.infer_reps):
                    dt, pred = s[name].infer(arg)
                    out["infer"][spec][name].append(dt)
                out.setdefault("accuracy", {}).setdefault(spec, {})[name] = float(
                    np.mean(pred == y_test)
                )
        out["load"] = meter.since(start)
        others = out["load"]["others_cores"]
        # a burst of others' work during one long timing spoils it even if the round's mean is low
        bursts = [
            f"{spec} {name} {load:.2f}"
            for spec in ARCHS
            for name, load in out["sample_load"][spec].items()
            if load is not None
            and load > BURST_CORES
            and sum(out["train_epochs"][spec][name]) >= BURST_MIN_S
        ]
        out["bursts"] = bursts
        out["quiet"] = others is not None and others < QUIET_CORES and not bursts
        return out

    one_round(0)  # warm-up: buffers, caches, thread pools; not recorded
    rounds: list[dict[str, Any]] = []
    print("round  waited s  wall s  own cores  others cores  (steal)  quiet")
    while len(rounds) < args.max_rounds:
        waited = wait_for_quiet(args.wait_quiet) if args.wait_quiet > 0 else 0.0
        res = one_round(len(rounds))
        res["waited_s"] = waited
        rounds.append(res)
        ld = res["load"]
        others = "  n/a" if ld["others_cores"] is None else f"{ld['others_cores']:5.2f}"
        steal = "  n/a" if ld["steal_cores"] is None else f"{ld['steal_cores']:5.2f}"
        verdict = "yes" if res["quiet"] else "no"
        if res["bursts"]:
            verdict += f" (burst: {'; '.join(res['bursts'])})"
        print(
            f"{len(rounds):5d}  {waited:8.1f}  {ld['wall']:6.2f}  {ld['own_cores']:9.2f}  "
            f"{others:>12}  ({steal})  {verdict}",
            flush=True,
        )
        if sum(r["quiet"] for r in rounds) >= args.rounds:
            break

    used = [r for r in rounds if r["quiet"]]
    warning = None
    if not used:
        used = rounds
        warning = (
            f"WARNING: no round was quiet (others used >= {QUIET_CORES} of a core, or "
            f"a burst over {BURST_CORES}, in each): the medians below are over all "
            f"{len(rounds)} rounds and are unreliable: with a core taken, 2-thread "
            f"BLAS and OpenMP slow down many-fold."
        )
    others_all = [
        r["load"]["others_cores"] for r in rounds if r["load"]["others_cores"] is not None
    ]
    summary: dict[str, Any] = {"train": {}, "infer": {}}
    for spec in ARCHS:
        t = {
            name: _median([r["train"][spec][name] for r in used])
            for name in ("digitnet", "torch", "plain", "floor")
        }
        paired = _median([r["train"][spec]["digitnet"] / r["train"][spec]["torch"] for r in used])
        paired_plain = _median(
            [r["train"][spec]["digitnet"] / r["train"][spec]["plain"] for r in used]
        )
        paired_plain_torch = _median(
            [r["train"][spec]["plain"] / r["train"][spec]["torch"] for r in used]
        )
        paired_floor = _median(
            [r["train"][spec]["digitnet"] / r["train"][spec]["floor"] for r in used]
        )
        parts = {
            k: _median([r["floor_parts"][spec][k] for r in used])
            for k in used[0]["floor_parts"][spec]
        }
        summary["train"][spec] = {
            "digitnet_s": t["digitnet"],
            "torch_s": t["torch"],
            "floor_s": t["floor"],
            "plain_s": t["plain"],
            "digitnet_over_plain_paired": paired_plain,
            "plain_over_torch_paired": paired_plain_torch,
            "digitnet_over_torch": t["digitnet"] / t["torch"],
            "digitnet_over_torch_paired": paired,
            "digitnet_over_floor": t["digitnet"] / t["floor"],
            "digitnet_over_floor_paired": paired_floor,
            "floor_parts_s": parts,
        }
        inf = {
            name: _median([statistics.median(r["infer"][spec][name]) for r in used])
            for name in ("digitnet", "torch")
        }
        summary["infer"][spec] = {
            "digitnet_s": inf["digitnet"],
            "torch_s": inf["torch"],
            "digitnet_images_per_s": m_test / inf["digitnet"],
            "torch_images_per_s": m_test / inf["torch"],
            "digitnet_over_torch_time": inf["digitnet"] / inf["torch"],
            "test_accuracy": rounds[-1]["accuracy"][spec],
        }

    print()
    print(
        f"load: others used {min(others_all, default=math.nan):.2f}-"
        f"{max(others_all, default=math.nan):.2f} cores over {len(rounds)} rounds "
        f"(median {_median(others_all):.2f}); {sum(r['quiet'] for r in rounds)} quiet "
        f"(< {QUIET_CORES} core); figures are medians over {len(used)} rounds"
    )
    if warning:
        print(warning)
    print()
    print("training, seconds per epoch (10,000 examples, batch 128, SGD)")
    print(
        f"{'architecture':<16}{'digitnet':>10}{'torch':>10}{'dn/torch':>10}"
        f"{'(paired)':>10}{'GEMM floor':>12}{'dn/floor':>10}{'(paired)':>10}"
    )
    for spec in ARCHS:
        s = summary["train"][spec]
        print(
            f"{spec:<16}{s['digitnet_s']:10.4f}{s['torch_s']:10.4f}"
            f"{s['digitnet_over_torch']:10.2f}{s['digitnet_over_torch_paired']:10.2f}"
            f"{s['floor_s']:12.4f}{s['digitnet_over_floor']:10.2f}"
            f"{s['digitnet_over_floor_paired']:10.2f}"
        )
    print("  (paired: the median of the per-round ratios, the systems having run back to back)")
    print()
    print("the fused step (digitnet/train/fused.py) against the plain path of docs/math.md")
    print(f"{'architecture':<16}{'fused':>10}{'plain':>10}{'fused/plain':>13}{'plain/torch':>13}")
    for spec in ARCHS:
        s = summary["train"][spec]
        print(
            f"{spec:<16}{s['digitnet_s']:10.4f}{s['plain_s']:10.4f}"
            f"{s['digitnet_over_plain_paired']:13.2f}{s['plain_over_torch_paired']:13.2f}"
        )
    print("  (paired ratios; the difference is what the fused step saves of an epoch)")
    print()
    print("GEMM floor by product, seconds per epoch")
    for spec in ARCHS:
        parts = summary["train"][spec]["floor_parts_s"]
        print(f"  {spec:<16}" + "  ".join(f"{k}: {v:.4f}" for k, v in parts.items()))
    print()
    print(f"inference on the {m_test} test images (median of {args.infer_reps} per round)")
    print(
        f"{'architecture':<16}{'digitnet img/s':>16}{'torch img/s':>14}{'dn/torch time':>15}"
        f"{'test acc dn/torch':>20}"
    )
    for spec in ARCHS:
        s = summary["infer"][spec]
        acc = s["test_accuracy"]
        print(
            f"{spec:<16}{s['digitnet_images_per_s']:16,.0f}{s['torch_images_per_s']:14,.0f}"
            f"{s['digitnet_over_torch_time']:15.2f}"
            f"{acc['digitnet']:>13.3f}/{acc['torch']:.3f}"
        )
    print()
    for spec in ARCHS:
        s = summary["train"][spec]
        # judged on the paired ratios: each compares timings taken back to back
        r_t, r_f = s["digitnet_over_torch_paired"], s["digitnet_over_floor_paired"]
        ok_t = "met" if r_t <= TARGET_TORCH else "NOT met"
        ok_f = "met" if r_f <= 1.3 else "NOT met"
        print(
            f"target {spec} (paired ratios): dn/torch <= {TARGET_TORCH} {ok_t} ({r_t:.2f}); "
            f"dn/floor <= 1.3 {ok_f} ({r_f:.2f})"
        )

    return {
        "environment": env,
        "data": {"dir": str(folder), "loader": loader, "m_train": m, "m_test": m_test},
        "settings": {
            "batch_size": BATCH,
            "learning_rate": LR,
            "threads": THREADS,
            "quiet_cores": QUIET_CORES,
            "burst_cores": BURST_CORES,
            "wait_quiet_s": args.wait_quiet,
            "pause_s": args.pause,
            "rounds_wanted": args.rounds,
            "epochs_per_round": args.epochs,
            "max_rounds": args.max_rounds,
            "infer_reps": args.infer_reps,
        },
        "warning": warning,
        "summary": summary,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="quiet rounds wanted (default 5)")
    p.add_argument(
        "--max-rounds",
        type=int,
        default=None,
        help="stop after this many rounds, quiet or not (default 3 x --rounds)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="back-to-back epochs of each system per round; a round's figure is their median "
        "(default 3)",
    )
    p.add_argument(
        "--quick", action="store_true", help="2 quiet rounds, at most 4; 2 epochs; 3 inferences"
    )
    p.add_argument(
        "--infer-reps", type=int, default=5, help="inferences of each system per round (default 5)"
    )
    p.add_argument(
        "--data-dir", default=str(DATA_DIR), help=f"the MNIST IDX files (default {DATA_DIR})"
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=15.0,
        metavar="S",
        help="before each round, wait up to S seconds for an idle second "
        "(default 15; 0: never wait)",
    )
    p.add_argument(
        "--pause",
        type=float,
        default=0.3,
        metavar="S",
        help="idle seconds before each timing, so that the previous system's "
        "spinning BLAS/OpenMP threads are asleep (default 0.3)",
    )
    p.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    p.add_argument(
        "--busy",
        action="store_true",
        help="time 'digitnet train --preset P' quiet and beside a process keeping one CPU busy, "
        "with digitnet's choice of BLAS threads and on one thread (--rounds rounds)",
    )
    p.add_argument("--presets", help="--busy: comma-separated presets (default: all)")
    p.add_argument(
        "--compare-src",
        metavar="DIR",
        help="--busy: also time the digitnet whose src/ folder is DIR (PYTHONPATH), such as a "
        "checkout from before the thread choice",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.infer_reps, args.epochs = 2, 3, 2
        args.max_rounds = args.max_rounds or 4
    args.max_rounds = max(args.max_rounds or 3 * args.rounds, args.rounds)
    result = run_busy(args) if args.busy else run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
