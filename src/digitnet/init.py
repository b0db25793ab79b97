"""Weight initialisation: how ``W`` and ``b`` of a dense layer start.

- ``he``: ``W ~ N(0, 2/n_in)``, for ReLU layers (He et al. 2015); ``b = 0``.
- ``glorot`` (Xavier): ``W ~ U(±sqrt(6/(n_in + n_out)))``, for sigmoid/tanh (Glorot & Bengio 2010).
- ``lecun``: ``W ~ N(0, 1/n_in)`` (LeCun et al. 1998).
- ``uniform``: ``W, b ~ U(-0.5, 0.5)``, what the tutorials' code behind seeds 001-002 does
  (``np.random.rand(10, 784) - 0.5``).

All draw from the ``np.random.Generator`` passed in, never NumPy's global state, so a seed makes a
run repeatable bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digitnet.errors import ConfigError

#: The contract of an initialiser: ``init(rng, n_in, n_out) -> (W, b)`` with ``W`` of shape
#: ``(n_out, n_in)`` and ``b`` of shape ``(n_out, 1)`` (a dense layer's, as the seeds write them:
#: seed 001's ``W¹`` is 10 x 784, ``b¹`` 10 x 1), float64, drawn from ``rng`` only. The network
#: casts them to its dtype. Register a new one in :data:`INITIALISERS` to name it.
Initialiser = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


def he(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``W ~ N(0, 2/n_in)``, ``b = 0``: keeps ``Var(Z)`` from layer to layer through ReLU, which
    zeroes half its inputs (He et al. 2015)."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in)), np.zeros((n_out, 1))


def glorot(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``W ~ U(±√(6/(n_in + n_out)))``, ``b = 0``: keeps the variance of both the forward ``Z``
    and the backward ``dA`` for sigmoid- and tanh-like layers (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_out, n_in)), np.zeros((n_out, 1))


def lecun(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``W ~ N(0, 1/n_in)``, ``b = 0``: ``Var(Z) ≈ Var(A_prev)`` (LeCun et al. 1998)."""
    return rng.normal(0.0, np.sqrt(1.0 / n_in), (n_out, n_in)), np.zeros((n_out, 1))


def uniform(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``W, b ~ U(-0.5, 0.5)``: the tutorials' ``np.random.rand(10, 784) - 0.5`` (seeds 001-002)."""
    return rng.uniform(-0.5, 0.5, (n_out, n_in)), rng.uniform(-0.5, 0.5, (n_out, 1))


INITIALISERS: dict[str, Initialiser] = {
    "he": he,
    "glorot": glorot,
    "xavier": glorot,
    "lecun": lecun,
    "uniform": uniform,
}


def get_initialiser(name: str) -> Initialiser:
    """An initialiser by name (``he``, ``glorot``/``xavier``, ``lecun``, ``uniform``)."""
    key = str(name).lower()
    if key not in INITIALISERS:
        raise ConfigError(
            f"The initialiser must be one of {', '.join(sorted(INITIALISERS))}; got {name!r}."
        )
    return INITIALISERS[key]
