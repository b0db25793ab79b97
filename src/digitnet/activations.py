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
    """A parameter-free layer applying ``g`` element-wise (softmax: column-wise)."""

    kind: ClassVar[str] = "activation"

    def _out(self, name: str, like: np.ndarray, training: bool) -> np.ndarray | None:
        """The reused output buffer in training; ``None`` (NumPy allocates) at inference."""
        return self._buffer(name, like.shape, like.dtype) if training else None

    def _dZ(self, dA: np.ndarray) -> np.ndarray:
        return self._buffer("dZ", dA.shape, dA.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """``A = max(0, Z)``; ``g'(Z) = 1`` where ``Z > 0``, else 0 (seed 004 §3, seeds 000-002).

    Keeps ``A``: ``A > 0`` exactly where ``Z > 0``.
    """

    kind = "relu"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        if not training:
            return np.maximum(Z, 0)
        # In training, against a reused array of zeros rather than the scalar 0: NumPy's SIMD
        # loop takes two arrays, not an array and a scalar (3-4x faster on a 128 x 128 batch).
        zeros = self._buffers.get("0")
        if zeros is None or zeros.shape != Z.shape or zeros.dtype != Z.dtype:
            zeros = self._buffers["0"] = np.zeros_like(Z)
        A = np.maximum(Z, zeros, out=self._buffer("A", Z.shape, Z.dtype))  # A = max(0, Z)
        self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        g = np.greater(self.A, 0, out=self._buffer("A>0", dA.shape, np.dtype(bool)))  # g'(Z)
        return np.multiply(dA, g, out=self._dZ(dA))  # dZ = dA ⊙ g'(Z)


class LeakyReLU(Activation):
    """``A = Z`` where ``Z > 0``, else ``slope·Z``; ``g'(Z) = 1`` or ``slope``.

    Keeps ``A``: for ``0 < slope``, ``A > 0`` exactly where ``Z > 0``.
    """

    kind = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < slope < 1.0:
            raise ConfigError(f"The slope of LeakyReLU must be in (0, 1); got {slope!r}.")
        self.slope = float(slope)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "slope": self.slope}

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        # for 0 < slope < 1, max(Z, slope·Z) is Z when Z > 0 and slope·Z otherwise
        A = np.multiply(Z, self.slope, out=self._out("A", Z, training))
        np.maximum(Z, A, out=A)
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        dZ = np.multiply(dA, self.slope, out=self._dZ(dA))
        np.copyto(dZ, dA, where=self.A > 0)  # dZ = dA ⊙ g'(Z), g' = 1 or slope
        return dZ


class Sigmoid(Activation):
    """``A = σ(Z) = 1 / (1 + e^(-Z))``; ``g'(Z) = σ(Z)(1 - σ(Z)) = A(1 - A)`` (seed 003).

    Computed as ``(1 + tanh(Z/2)) / 2``, the same function, which never overflows (``e^(-Z)``
    does for ``Z < -88`` in float32). Keeps ``A``.
    """

    kind = "sigmoid"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.multiply(Z, 0.5, out=self._out("A", Z, training))
        np.tanh(A, out=A)
        A += 1.0
        A *= 0.5
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        dZ = np.subtract(1.0, self.A, out=self._dZ(dA))  # 1 - A
        dZ *= self.A  # g'(Z) = A(1 - A)
        dZ *= dA  # dZ = dA ⊙ g'(Z)
        return dZ


class Tanh(Activation):
    """``A = tanh(Z)``; ``g'(Z) = 1 - A²``. Keeps ``A``."""

    kind = "tanh"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        A = np.tanh(Z, out=self._out("A", Z, training))
        if training:
            self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        dZ = np.multiply(self.A, self.A, out=self._dZ(dA))
        np.subtract(1.0, dZ, out=dZ)  # g'(Z) = 1 - A²
        dZ *= dA
        return dZ


class Arctan(Activation):
    """``A = arctan(Z)``; ``g'(Z) = 1 / (1 + Z²)`` (seed 004 §3). Keeps ``Z``."""

    kind = "arctan"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            self.Z = Z
        return np.arctan(Z, out=self._out("A", Z, training))

    def backward(self, dA: np.ndarray) -> np.ndarray:
        dZ = np.multiply(self.Z, self.Z, out=self._dZ(dA))
        dZ += 1.0
        np.divide(dA, dZ, out=dZ)  # dZ = dA ⊙ 1/(1 + Z²)
        return dZ


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
    :meth:`log_A`, the exact log-probabilities the cross-entropy cost reads.

    Its own backward, ``dZ = A ⊙ (dA - Σ_k dA_k A_k)``, is what the chain rule gives for any cost;
    with cross-entropy the network skips it and uses the fused ``dZ = A - Y`` of the seeds
    (:meth:`digitnet.costs.CrossEntropy.dZ`).
    """

    kind = "softmax"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        Z_max = Z.max(axis=0, keepdims=True)
        A = np.subtract(Z, Z_max, out=self._out("A", Z, training))
        np.exp(A, out=A)
        total = A.sum(axis=0, keepdims=True)  # Σ_k e^(Z_k - max Z), one number per column
        A /= total
        if training:
            self.A = A
            self.Z = Z
            # log A = Z - max Z - log Σ_k e^(Z_k - max Z): what the cost needs of the output
            self.Z_max, self.total = Z_max, total
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        A = self.A
        dZ = np.multiply(dA, A, out=self._dZ(dA))
        s = dZ.sum(axis=0, keepdims=True)  # Σ_k dA_k A_k, one number per column
        np.subtract(dA, s, out=dZ)
        dZ *= A  # dZ = A ⊙ (dA - Σ_k dA_k A_k)
        return dZ


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
