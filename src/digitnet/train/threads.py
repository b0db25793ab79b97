"""How many BLAS threads training uses: as many as its products are worth and the cores are free.

Why this exists: OpenBLAS's worker threads spin-wait for their next product. When another
process keeps one of two cores busy, a 2-thread product waits for a thread that has no core,
and training slows down many times over (``digitnet train --preset tutorial``: 32-50 s with a
busy neighbour, against 7.6-8.9 s on one thread). One thread never suffers that; two threads are
worth having only on large products and free cores. So, while training runs:

- **by the size of the products**: a training whose largest product per step has fewer than
  :data:`SMALL_PRODUCT` multiply-adds stays on one thread (a second thread only adds its
  start-up and hand-over to such products);
- **by the cores actually free**: the CPUs this process may run on (``os.sched_getaffinity``),
  less what other processes used of them, read from ``/proc/stat`` between checks (every
  :data:`CHECK_S` seconds of training; the first after :data:`FIRST_CHECK_S`): a CPU counts as
  taken when others kept it :data:`TAKEN` busy or more. A training with large products starts
  on every thread BLAS has (a quiet machine is the common case, and a short run, such as one
  epoch of 784-128-10 in 0.05 s, is over before the first look: starting on one thread made it
  twice as slow) and keeps as many as CPUs are free at each look (with a busy neighbour, one
  from the first look on: the spinning costs at most those first :data:`FIRST_CHECK_S`);
- never more than BLAS was allowed when it loaded (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``:
  an explicit limit of the user's is kept), and back to that number when training ends.

Without ``/proc/stat`` (not Linux) or without a BLAS threadpoolctl can control, nothing changes.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

#: below this many multiply-adds in its largest product, a training step stays on one thread
SMALL_PRODUCT = 4_000_000
#: seconds of training between two looks at the other processes' use of the CPUs
CHECK_S = 1.0
#: ... and before the first look (the most a busy neighbour can cost a training)
FIRST_CHECK_S = 0.25
#: the share of a CPU that others must keep busy for it to count as taken
TAKEN = 0.3


def _cpu_busy(cpus: set[int]) -> float | None:
    """Busy seconds so far of the CPUs ``cpus``, from /proc/stat (None where unreadable)."""
    try:
        with open("/proc/stat") as f:
            lines = [ln for ln in f if ln.startswith("cpu") and ln[3:4].isdigit()]
    except OSError:
        return None
    ticks = 0
    for ln in lines:
        name, *fields = ln.split()
        if int(name[3:]) in cpus:
            values = [int(v) for v in fields[:8]]
            ticks += sum(values) - values[3] - values[4]  # all but idle and iowait
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def numpy_blas() -> list[Any]:
    """threadpoolctl's controllers of the BLAS NumPy uses (not, say, PyTorch's own)."""
    try:
        import numpy as np
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    roots = (str(Path(np.__file__).parent), str(Path(np.__file__).parent) + ".libs")
    mine = [lib for lib in libs if str(lib.filepath).startswith(roots)]
    return mine or libs


def choose(n_cpus: int, others: float, most: int) -> int:
    """Threads for ``n_cpus`` CPUs of which others keep ``others`` CPUs' worth busy, at most
    ``most``: one per CPU not taken (a CPU is taken from :data:`TAKEN` of it on), at least one."""
    taken = math.ceil(others - TAKEN) if others > TAKEN else 0
    return max(1, min(most, n_cpus - taken))


def largest_product(net: Any, batch_size: int) -> int:
    """Multiply-adds of the largest matrix product in one training step of ``net``."""
    return max((layer.W.size * batch_size for layer in getattr(net, "dense_layers", [])), default=0)


class BlasThreads:
    """Chooses the BLAS threads of a training, between its mini-batches (see the module doc).

    Use as a context around the training loop and call :meth:`check` after each mini-batch;
    :attr:`threads` is the number in use.
    """

    def __init__(self, product: int) -> None:
        self.product = product
        self.libs: list[Any] = []
        self.original: list[int] = []
        self.threads = 1
        self.most = 1
        try:
            self.cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpus = set(range(os.cpu_count() or 1))

    def __enter__(self) -> BlasThreads:
        self.libs = numpy_blas()
        self.original = [lib.get_num_threads() or 1 for lib in self.libs]
        self.most = min([*self.original, len(self.cpus)]) if self.libs else 1
        self.threads = min(self.original, default=1)  # what BLAS has now
        if self.most > 1 and self.product >= SMALL_PRODUCT:
            self._set(self.most)  # large products start on every thread (see the module doc)
            self._mark()
            self.next_check = time.perf_counter() + FIRST_CHECK_S
        else:
            self._set(1)  # small products: one thread (or nothing to control), no more looks
            self.next_check = math.inf
        return self

    def __exit__(self, *exc: Any) -> None:
        for lib, n in zip(self.libs, self.original, strict=True):
            lib.set_num_threads(n)

    def _set(self, n: int) -> None:
        if n != self.threads:
            for lib in self.libs:
                lib.set_num_threads(n)
        self.threads = n

    def _mark(self) -> None:
        self.mark = (time.perf_counter(), _cpu_busy(self.cpus), _own_cpu())

    def others(self) -> float | None:
        """CPUs' worth of work other processes did on our CPUs since the last look."""
        t0, busy0, own0 = self.mark
        self._mark()
        t1, busy1, own1 = self.mark
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return max((busy1 - busy0) - (own1 - own0), 0.0) / (t1 - t0)

    def check(self) -> None:
        """Between mini-batches: every CHECK_S seconds, as many threads as CPUs are free."""
        if time.perf_counter() < self.next_check:
            return
        self.next_check = time.perf_counter() + CHECK_S
        others = self.others()
        if others is None:
            self.next_check = math.inf  # /proc/stat unreadable: stay on one thread
            return
        self._set(choose(len(self.cpus), others, self.most))
