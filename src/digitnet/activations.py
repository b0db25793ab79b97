"""Activation layers: ``A = g(Z)`` element-wise, with ``dZ = dA ⊙ g'(Z)`` right under it.

Seed 004 §3 introduces ReLU, sigmoid and arctan as layers of their own, with no parameters, and
§6 gives their backward pass: ``∂C/∂X = ∂C/∂Y ⊙ f'(X)``. Seeds 000-002 write the same step as
``dZ¹ = W²ᵀ·dZ² ⊙ g'(Z¹)``: the ``W²ᵀ·dZ²`` part is the dense layer's ``dA_prev``, and the
``⊙ g'(Z¹)`` part is here.

Each class says what its forward keeps for its backward: ReLU, sigmoid, tanh and softmax keep
their output ``A`` (their derivative is a function of ``A``), arctan keeps its input ``Z``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from digitnet.errors import ConfigError
from digitnet.layers import Layer


class Activation(Layer):
    """A parameter-free layer applying ``g`` element-wise (softmax: column-wise).

    ``forward`` is ``A = g(Z)``; ``backward`` is ``dZ = dA ⊙ g'(Z)`` (seed 004 §6), with ``g'``
    written from what ``forward`` kept.
    """

    kind: ClassVar[str] = "activation"


class ReLU(Activation):
    """``A = max(0, Z)``; ``g'(Z) = 1`` where ``Z > 0``, else 0 (seed 004 §3, seeds 000-002).

    Keeps ``A``: ``A > 0`` exactly where ``Z > 0``.
    """

    kind = "relu"
    kept = ("A",)

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.maximum(Z, 0)  # A = max(0, Z)
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return dA * (self.A > 0)  # dZ = dA ⊙ g'(Z), g'(Z) = 1 where Z > 0


class LeakyReLU(Activation):
    """``A = Z`` where ``Z > 0``, else ``slope·Z``; ``g'(Z) = 1`` or ``slope``.

    Keeps ``A``: for ``0 < slope``, ``A > 0`` exactly where ``Z > 0``.
    """

    kind = "leaky_relu"
    kept = ("A",)

    def __init__(self, slope: float = 0.01) -> None:
        if not 0.0 < slope < 1.0:
            raise ConfigError(f"The slope of LeakyReLU must be in (0, 1); got {slope!r}.")
        self.slope = float(slope)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "slope": self.slope}

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        # for 0 < slope < 1, max(Z, slope·Z) is Z when Z > 0 and slope·Z otherwise
        A = np.maximum(Z, self.slope * Z)
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return np.where(self.A > 0, dA, self.slope * dA)  # dZ = dA ⊙ g'(Z), g' = 1 or slope


class Sigmoid(Activation):
    """``A = σ(Z) = 1 / (1 + e^(-Z))``; ``g'(Z) = σ(Z)(1 - σ(Z)) = A(1 - A)`` (seed 003).

    Computed as ``(1 + tanh(Z/2)) / 2``, the same function, which never overflows (``e^(-Z)``
    does for ``Z < -88`` in float32). Keeps ``A``.
    """

    kind = "sigmoid"
    kept = ("A",)

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.tanh(Z * 0.5)
        A += 1.0
        A *= 0.5  # σ(Z) = (1 + tanh(Z/2)) / 2
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return dA * self.A * (1.0 - self.A)  # dZ = dA ⊙ A(1 - A)


class Tanh(Activation):
    """``A = tanh(Z)``; ``g'(Z) = 1 - A²``. Keeps ``A``."""

    kind = "tanh"
    kept = ("A",)

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.tanh(Z)
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return dA * (1.0 - self.A * self.A)  # dZ = dA ⊙ (1 - A²)


class Arctan(Activation):
    """``A = arctan(Z)``; ``g'(Z) = 1 / (1 + Z²)`` (seed 004 §3). Keeps ``Z``."""

    kind = "arctan"
    kept = ("Z",)

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            self.Z = Z
        return np.arctan(Z)

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return dA / (1.0 + self.Z * self.Z)  # dZ = dA ⊙ 1/(1 + Z²)


class Identity(Activation):
    """``A = Z``; ``g'(Z) = 1``. A linear output (regression, or MSE on raw scores)."""

    kind = "identity"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        return Z

    def backward(self, dA: np.ndarray) -> np.ndarray:
        return dA


class Softmax(Activation):
    """``A_i = e^(Z_i) / Σ_k e^(Z_k)`` down each column: the ten class probabilities.

    Seeds 000-002 put it on the output layer. Computed as ``e^(Z - max Z)`` so that logits of
    ±1000 neither overflow nor lose the answer. Keeps ``A`` for the backward pass and ``Z`` for
    :meth:`log_A`, the exact log-probabilities the cross-entropy cost is valued from.

    Its own backward, ``dZ = A ⊙ (dA - Σ_k dA_k A_k)``, is what the chain rule gives for any cost;
    with cross-entropy the network skips it and starts from the fused ``dZ = A - Y`` of the seeds
    (:meth:`digitnet.costs.CrossEntropy.dZ`).
    """

    kind = "softmax"
    kept = ("A", "Z")

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.exp(Z - Z.max(axis=0, keepdims=True))
        A /= A.sum(axis=0, keepdims=True)  # A_i = e^(Z_i - max Z) / Σ_k e^(Z_k - max Z)
        if training:
            self.A, self.Z = A, Z
        return A

    def log_A(self) -> np.ndarray:
        """``log A`` of the last training forward pass, exactly (never ``log 0``)."""
        return log_softmax(self.Z)

    def backward(self, dA: np.ndarray) -> np.ndarray:
        A = self.A
        s = (dA * A).sum(axis=0, keepdims=True)  # Σ_k dA_k A_k, one number per column
        return A * (dA - s)  # dZ = A ⊙ (dA - Σ_k dA_k A_k)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """``log softmax(Z)`` down each column, exactly: ``Z - max Z - log Σ e^(Z - max Z)``."""
    shifted = Z - Z.max(axis=0, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return shifted


#: activation name -> class; the command line, presets and model files use these names
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.kind: cls for cls in (ReLU, LeakyReLU, Sigmoid, Tanh, Arctan, Identity, Softmax)
}


def get_activation(name: str | Activation, **kwargs: Any) -> Activation:
    """An activation layer by name (``"relu"``, ``"sigmoid"``, ...), or the layer given."""
    if isinstance(name, Activation):
        return name
    key = str(name).lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ConfigError(
            f"The activation must be one of {', '.join(sorted(ACTIVATIONS))}; got {name!r}."
        )
    return ACTIVATIONS[key](**kwargs)
