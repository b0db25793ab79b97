"""Cost functions: the value ``C`` above, its gradient right under it.

Both costs are means over the ``m`` examples of a batch, ``C = 1/m Σ_j ℓ_j``. Following the seeds,
``gradient`` returns the per-example gradients ``∂ℓ_j/∂A[:, j]`` as columns; the ``1/m`` is applied
once, in the dense layer's ``dW`` and ``db`` (see :mod:`digitnet.layers`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from digitnet.errors import ConfigError


class Cost:
    """A cost ``C(A, Y)`` of the network's output ``A`` against targets ``Y``, both ``(n, m)``.

    The contract a new cost implements:

    - :meth:`value` ``(A, Y) -> C``: the mean over the ``m`` columns (examples) of the
      per-example cost ``ℓ_j``, a Python float.
    - :meth:`gradient` ``(A, Y) -> dA``: ``∂ℓ_j/∂A[:, j]`` per example, stacked as the columns of
      an ``(n, m)`` array, **without** the ``1/m`` (the dense layers apply it once, in ``dW``
      and ``db``). This is where backpropagation starts (:meth:`Network.output_gradient`).
    - :meth:`targets`: the ``Y`` it compares against, from integer labels (one-hot by default).
    """

    kind: ClassVar[str] = "cost"

    def targets(self, y: np.ndarray, n_classes: int, out: np.ndarray | None = None) -> np.ndarray:
        """The target matrix ``Y`` (n_classes x m) for integer labels ``y``: one-hot columns."""
        m = y.shape[0]
        Y = np.zeros((n_classes, m)) if out is None else out
        Y.fill(0.0)
        Y[y, np.arange(m)] = 1.0
        return Y

    def value(self, A: np.ndarray, Y: np.ndarray, log_A: np.ndarray | None = None) -> float:
        """``C = 1/m Σ_j ℓ_j`` for outputs ``A`` and targets ``Y``, both ``(n, m)``.

        ``log_A``, when the caller has it exactly (from the logits), is ``log A``; costs that
        do not take logarithms ignore it.
        """
        raise NotImplementedError

    def gradient(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``dA = ∂ℓ_j/∂A[:, j]`` for each column ``j``: ``(n, m)``, no ``1/m``."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropy(Cost):
    r"""``C = -1/m Σ_j Σ_i Y_ij log A_ij``, paired with softmax.

    Seeds 000-002 never write the cost itself, only its gradient ``dZ² = A² - Y``; cross-entropy
    on a softmax output is the cost whose gradient that is.

    Its gradient through softmax collapses to the seeds' ``dZ = A - Y`` (:meth:`dZ`); the network
    uses that fused form whenever the output layer is softmax. ``label_smoothing`` ε replaces the
    one-hot targets by ``(1 - ε)·Y + ε/n`` (Szegedy et al. 2016); ``dZ = A - Y`` still holds.

    Numerically stable: with the softmax's input ``Z`` at hand the value is computed from the
    exact ``log softmax(Z)``, so logits of ±1000 give the right (large, finite) cost and never
    ``log(0)``.
    """

    kind = "cross_entropy"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "label_smoothing": self.label_smoothing}

    def targets(self, y: np.ndarray, n_classes: int, out: np.ndarray | None = None) -> np.ndarray:
        Y = super().targets(y, n_classes, out)
        if self.label_smoothing:
            eps = self.label_smoothing
            Y *= 1.0 - eps
            Y += eps / n_classes
        return Y

    def value(self, A: np.ndarray, Y: np.ndarray, log_A: np.ndarray | None = None) -> float:
        if log_A is None:
            # without the logits, clip: log of the smallest positive number, never log(0)
            log_A = np.log(np.maximum(A, np.finfo(A.dtype).tiny))
        m = A.shape[1]
        # Σ over classes then examples, in float64 so a large batch sums without drift
        return float(-np.einsum("ij,ij->", Y, log_A, dtype=np.float64) / m)

    def gradient(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``∂ℓ/∂A = -Y / A`` per example (the unfused form; see :meth:`dZ`)."""
        return -Y / np.maximum(A, np.finfo(A.dtype).tiny)

    @staticmethod
    def dZ(A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``dZ = A - Y``: cross-entropy and softmax differentiated together (seeds 000-002)."""
        return A - Y


class MeanSquaredError(Cost):
    r"""``C = 1/m Σ_j 1/n Σ_i (A_ij - Y_ij)²``, the MSE of seeds 003 and 004.

    Per example it is seed 003's ``1/n Σ_i (y_i - ŷ_i)²`` over the ``n`` outputs, and its gradient
    is ``∂ℓ/∂A = 2/n (A - Y)``. Seed 004 §8 writes ``∂C/∂Y = 2(Y - Ŷ)``: it drops the ``1/n`` (a
    constant factor the learning rate absorbs) and names the symbols the other way round (its
    ``Y`` is the network's output, its ``Ŷ`` the target); it is the same gradient up to ``1/n``.
    """

    kind = "mse"

    def value(self, A: np.ndarray, Y: np.ndarray, log_A: np.ndarray | None = None) -> float:
        n, m = A.shape
        diff = A - Y
        return float(np.einsum("ij,ij->", diff, diff, dtype=np.float64) / (n * m))

    def gradient(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return (2.0 / A.shape[0]) * (A - Y)  # ∂ℓ/∂A = 2/n (A - Y)


#: cost name -> class, with the short names the command line accepts
COSTS: dict[str, type[Cost]] = {
    "cross_entropy": CrossEntropy,
    "ce": CrossEntropy,
    "mse": MeanSquaredError,
}


def get_cost(name: str | Cost, **kwargs: Any) -> Cost:
    """A cost by name (``"cross_entropy"``/``"ce"`` or ``"mse"``), or the cost given."""
    if isinstance(name, Cost):
        return name
    key = str(name).lower().replace("-", "_")
    if key not in COSTS:
        raise ConfigError(f"The cost must be one of {', '.join(sorted(COSTS))}; got {name!r}.")
    return COSTS[key](**kwargs)
