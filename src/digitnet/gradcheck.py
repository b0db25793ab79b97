"""Gradient checking: backpropagation compared with finite differences.

For a parameter entry ``θ_k`` the central difference ``(C(θ_k + h) - C(θ_k - h)) / 2h`` approaches
``∂C/∂θ_k`` with an error of order ``h²``; in float64 with ``h = 1e-6`` a correct backward pass
agrees to about 1e-8 relative error, a wrong one is off by order 1. The relative error reported is
``‖dθ_backprop - dθ_numeric‖ / (‖dθ_backprop‖ + ‖dθ_numeric‖)`` over the entries checked.

This is the tool to reach for when a network is stuck at 10 %: if the gradients are right, the
problem is elsewhere (learning rate, initialisation, data scaling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitnet.network import Network

#: below this relative error a gradient is right; above ``SUSPECT`` it is wrong
GOOD = 1e-6
SUSPECT = 1e-4


@dataclass
class GradCheck:
    parameter: str  # W1, b1, ...
    shape: tuple[int, ...]
    checked: int  # how many entries were compared
    relative_error: float

    @property
    def verdict(self) -> str:
        if self.relative_error < GOOD:
            return "ok"
        return "suspect" if self.relative_error < SUSPECT else "WRONG"


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / (‖a‖ + ‖b‖)``, 0 when both are 0."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if denom == 0.0 else float(np.linalg.norm(a - b)) / denom


def _cost(net: Network, X: np.ndarray, Y: np.ndarray) -> float:
    A = net.forward(X, training=True)
    return net.cost_value(A, Y, net.log_output())


def check_network(
    net: Network,
    X: np.ndarray,
    y: np.ndarray,
    *,
    h: float = 1e-6,
    max_entries: int = 200,
    rng: np.random.Generator | None = None,
) -> list[GradCheck]:
    """Compare every ``dW``, ``db`` of ``net`` on ``(X, y)`` with central differences.

    Use a float64 network and no dropout (or a dropout layer whose ``rng`` is reset between
    passes). Parameters with more than ``max_entries`` entries are checked on a random sample.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    X = np.asarray(X, dtype=net.dtype)
    Y = net.targets(np.asarray(y), out=np.empty((net.n_outputs, X.shape[1]), dtype=net.dtype))
    A = net.forward(X, training=True)
    net.backward(A, Y)
    results = []
    for name, theta, dtheta in net.parameters():
        analytic = dtheta.copy()
        flat = theta.reshape(-1)
        if flat.size <= max_entries:
            entries = np.arange(flat.size)
        else:
            entries = rng.choice(flat.size, size=max_entries, replace=False)
        numeric = np.empty(entries.size)
        for i, k in enumerate(entries):
            old = flat[k]
            flat[k] = old + h
            c_plus = _cost(net, X, Y)
            flat[k] = old - h
            c_minus = _cost(net, X, Y)
            flat[k] = old
            numeric[i] = (c_plus - c_minus) / (2 * h)
        err = relative_error(analytic.reshape(-1)[entries], numeric)
        results.append(GradCheck(name, theta.shape, int(entries.size), err))
    net.release()
    return results


def gradcheck(
    spec: str = "784-16-16-10",
    activation: str = "relu",
    loss: str = "ce",
    *,
    m: int = 8,
    seed: int = 0,
    max_entries: int = 200,
) -> list[GradCheck]:
    """Build a float64 network from a spec and check it on a small random batch."""
    rng = np.random.default_rng(seed)
    net = Network.from_spec(spec, activation=activation, cost=loss, dtype=np.float64, rng=rng)
    X = rng.random((net.n_inputs, m))
    y = rng.integers(0, net.n_outputs, m)
    return check_network(net, X, y, max_entries=max_entries, rng=rng)
