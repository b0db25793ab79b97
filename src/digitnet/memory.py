"""How much memory this machine has free, and what a network of given sizes will take.

Used to refuse, before allocating, what cannot fit: a data file whose header declares more than
the machine has, layers of a hundred million units, a gradient check of a hundred million
examples. The estimate is said in the refusal, with what is available.
"""

from __future__ import annotations

import itertools
import os

__all__ = ["available_bytes", "human_bytes", "training_bytes"]


def available_bytes() -> int | None:
    """Memory available to a new allocation without swapping (Linux's ``MemAvailable``, or
    the free physical pages elsewhere); ``None`` when the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    """``n`` bytes in words: ``1.2 GB``, ``340 MB``, ``12 kB``."""
    if n >= 1e15:
        return "more than a petabyte"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{int(n)} bytes"


def training_bytes(
    sizes: list[int], batch: int, *, itemsize: int = 4, slots: int = 2, examples: int = 0
) -> int:
    """An estimate of what training a dense network of layer ``sizes`` takes, in bytes.

    Parameters ``W, b`` and their gradients ``dW, db`` (twice the parameters), ``slots`` more
    copies for the optimiser (Adam's ``m`` and ``v``: 2; momentum: 1; SGD: 0), one more for
    the best epoch's weights; and for a mini-batch of ``batch`` examples, each layer's ``Z``,
    ``A`` and ``dZ`` (three arrays of ``n x batch``), plus ``examples`` columns of input (the
    data, when the caller does not count them itself).
    """
    params = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    activations = 3 * sum(sizes) * batch
    return itemsize * (params * (3 + slots) + activations + examples * sizes[0])
