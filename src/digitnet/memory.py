"""How much memory this machine has free, and what a network of given sizes will take.

Used to refuse, before allocating, what cannot fit: a data file whose header declares more than
the machine has, layers of a hundred million units, a gradient check of a hundred million
examples. The estimate is said in the refusal, with what is available.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

__all__ = [
    "available_bytes",
    "check_fits",
    "check_training",
    "human_bytes",
    "training_parts",
]


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


#: optimiser slots per parameter (Adam's m and v; momentum's velocity)
SLOTS = {"adam": 2, "momentum": 1, "nesterov": 1}


def training_parts(
    sizes: list[int], batch: int, *, itemsize: int = 4, slots: int = 2, examples: int = 0
) -> list[tuple[str, int]]:
    """What training a dense network of layer ``sizes`` takes, part by part, in bytes.

    Parameters ``W, b`` with their gradients ``dW, db``, the best epoch's copy and two
    temporaries of an update (five copies); ``slots`` more for the optimiser (Adam's ``m`` and
    ``v``: 2; momentum: 1; gradient descent: 0); for a mini-batch of ``batch`` examples, each
    layer's ``Z``, ``A`` and ``dZ`` (three ``n x batch`` arrays); and ``examples`` columns of
    input, when the caller holds data it has not loaded yet.
    """
    params = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    parts = [
        (f"{params:,} parameters with their gradients", 5 * params * itemsize),
        ("the optimiser", slots * params * itemsize),
        (f"a batch of {batch:,}", 3 * sum(sizes) * batch * itemsize),
    ]
    if examples:
        parts.append((f"{examples:,} examples", examples * sizes[0] * itemsize))
    return [(name, n) for name, n in parts if n]


def check_fits(what: str, parts: list[tuple[str, int]], hint: str) -> None:
    """Refuse (:class:`~digitnet.errors.ConfigError`, the estimate in the message) what needs
    more memory than this machine has available, before a byte of it is allocated."""
    from digitnet.errors import ConfigError

    total = sum(n for _, n in parts)
    free = available_bytes()
    if free is None or total <= free:
        return
    detail = ", ".join(f"{name}: {human_bytes(n)}" for name, n in parts)
    raise ConfigError(
        f"{what} needs about {human_bytes(total)} of memory ({detail}), more than the "
        f"{human_bytes(free)} available.",
        hint,
    )


def check_training(config: Any, n_train: int) -> None:
    """Refuse a training ``config`` (a :class:`~digitnet.train.config.TrainConfig`) on ``n_train``
    examples that cannot fit in memory: ``--layers 784-100000000-10``, say."""
    from digitnet.network import parse_spec

    sizes = parse_spec(config.layers)
    batch = n_train if config.batch_size is None else min(config.batch_size, n_train)
    itemsize = 8 if config.dtype == "float64" else 4
    parts = training_parts(sizes, batch, itemsize=itemsize, slots=SLOTS.get(config.optimizer, 0))
    hint = "use smaller layers (--layers) or a smaller --batch-size"
    check_fits(
        f"training {config.layers} ({config.dtype}, {config.optimizer})",
        parts,
        hint + (", or --dtype float32" if itemsize == 8 else ""),
    )
