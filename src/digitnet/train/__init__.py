"""Training: the loop that turns data and a network into a trained network.

``fit``, ``FitOptions`` and ``History`` (from :mod:`digitnet.train.loop`) load on first use, so
that importing :mod:`digitnet.train.config` (the training configuration, which ``digitnet train
--help`` reads for the presets' values) does not import NumPy and the math.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FitOptions", "History", "fit"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from digitnet.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'digitnet.train' has no attribute {name!r}")
