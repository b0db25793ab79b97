"""The layer contract, and the dense (fully connected) layer ``Z = W·A_prev + b``.

Every layer has a ``forward`` and, right under it, a ``backward``, as seed 004 builds its network
(§5-§6, §8): dense and activation layers, each differentiated on its own and chained.
``forward`` keeps in ``self`` what ``backward`` needs and says so; ``backward`` takes the gradient
with respect to the layer's output and returns the gradient with respect to its input, leaving
the parameter gradients (``dW``, ``db``) beside the parameters (``W``, ``b``) so that an
optimiser can treat every layer alike. No layer moves its own parameters: ``θ := θ - α dθ`` is
the optimiser's (:mod:`digitnet.optim`).

A note on the factor ``1/m``, kept exactly where the seeds keep it. The cost is the mean over the
batch, ``C = 1/m Σ_j ℓ_j``. The gradients that flow backwards (``dA``, ``dZ``) are, as in seeds
000-002, the per-example gradients ``∂ℓ_j/∂Z[:, j]`` stacked as columns (``dZ² = A² - Y``, no
``1/m``); the ``1/m`` appears only when the parameter gradients are formed, ``dW = 1/m dZ·A_prevᵀ``
and ``db = 1/m Σ dZ``. So ``dW`` and ``db`` are exactly ``∂C/∂W`` and ``∂C/∂b``, and ``dA_prev``
is ``m · ∂C/∂A_prev``.

This is the plain path: the one docs/math.md walks through, and the one training runs for every
optimiser but plain gradient descent, whose step :mod:`digitnet.train.fused` folds into the ``dW``
product (tested against this path). (Other fused steps, such as the cost from the labels, were
measured at under 10 % of an epoch and left out.)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from digitnet.errors import ConfigError, ShapeError


class Layer:
    """One step of the network, ``A = layer(A_prev)``, on a batch whose examples are columns.

    The contract a new layer implements (seed 004 §5-§6: each layer differentiated on its own):

    - :meth:`forward` ``(A_prev, training) -> A``: ``A_prev`` is ``(n_in, m)``, ``A`` is
      ``(output_size(n_in), m)``. With ``training=True`` it keeps in ``self`` what
      :meth:`backward` will need (and says what in its docstring); at inference it keeps nothing,
      so that several threads may share one network.
    - :meth:`backward` ``(dA) -> dA_prev``: ``dA`` is the gradient of the cost with respect to
      the ``A`` of the last training forward pass, per example (columns, no ``1/m``); it returns
      the same for ``A_prev``, of ``A_prev``'s shape. A layer with parameters leaves their
      gradients beside them (:class:`Dense`: ``dW`` beside ``W``, ``db`` beside ``b``) and never
      changes the parameters themselves.
    - :meth:`output_size` and :meth:`config`: the shape bookkeeping and what a model file needs
      to rebuild the layer.
    """

    #: the name used in specs, registries and model files
    kind: ClassVar[str] = "layer"
    #: the attributes ``forward(..., training=True)`` keeps for ``backward`` (see release)
    kept: ClassVar[tuple[str, ...]] = ()

    def output_size(self, n_in: int) -> int:
        """The number of rows of the output for ``n_in`` input rows (activations keep it)."""
        return n_in

    def config(self) -> dict[str, Any]:
        """What a model file needs to rebuild this layer (its parameters aside)."""
        return {"kind": self.kind}

    def release(self) -> None:
        """Forget the values ``forward`` kept for ``backward`` (their memory can then go)."""
        for name in self.kept:
            setattr(self, name, None)

    # -- the two passes ----------------------------------------------------------------------
    def forward(self, A_prev: np.ndarray, training: bool = False) -> np.ndarray:
        """``A = layer(A_prev)``: ``(n_in, m)`` -> ``(n_out, m)``, one example per column."""
        raise NotImplementedError

    def backward(self, dA: np.ndarray) -> np.ndarray | None:
        """``dA`` (the cost's gradient at ``A``, per example) -> ``dA_prev``, same shapes."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Dense(Layer):
    r"""A fully connected layer: ``Z = W·A_prev + b``.

    The forward pass of seeds 000-002 (``Z¹ = W¹·A⁰ + b¹``) and seed 004 §2 (``Y = WX + B``).
    Every output neuron is a weighted sum of every input neuron plus its own bias.

    Shape:
        - ``A_prev``: ``(n_in, m)``, one example per column, as the seeds write ``X`` (784 x m).
        - ``W``: ``(n_out, n_in)``, row ``i`` holds the weights into output neuron ``i``
          (seed 004's ``w_mn``; the same layout as ``torch.nn.Linear.weight``).
        - ``b``: ``(n_out, 1)``, broadcast over the ``m`` columns.
        - ``Z``: ``(n_out, m)``.

    Backward (seed 004 §5, seeds 000-002):
        ``dW = 1/m dZ·A_prevᵀ``,  ``db = 1/m Σ dZ`` (over the columns),  ``dA_prev = Wᵀ·dZ``.

    ``forward`` keeps ``A_prev`` (a reference, not a copy): ``dW`` needs it. ``dW`` and ``db``
    are written in place, so the arrays :meth:`digitnet.network.Network.parameters` hands the
    optimiser stay the ones backward fills.
    """

    kind = "dense"
    kept = ("A_prev",)

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        W = np.asarray(W)
        b = np.asarray(b, dtype=W.dtype)
        if W.ndim != 2:
            raise ShapeError(f"W must be a 2-D array (n_out, n_in); got shape {W.shape}.")
        if b.shape == (W.shape[0],):
            b = b.reshape(-1, 1)
        if b.shape != (W.shape[0], 1):
            raise ShapeError(
                f"b must have shape ({W.shape[0]}, 1) to match W of shape {W.shape}; got {b.shape}."
            )
        self.W = np.ascontiguousarray(W)
        self.b = np.ascontiguousarray(b)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        #: seed 004 §8: "no need to compute ∂C/∂X⁽⁰⁾" for the first layer, whose input is the
        #: data; the network sets this to False there and backward returns None
        self.needs_input_grad = True
        self.A_prev: np.ndarray | None = None

    def astype(self, dtype: np.dtype) -> None:
        """Hold ``W``, ``b`` (and zeroed ``dW``, ``db``) in ``dtype``."""
        self.W, self.b = self.W.astype(dtype), self.b.astype(dtype)
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def output_size(self, n_in: int) -> int:
        if n_in != self.n_in:
            raise ShapeError(f"Dense layer expects {self.n_in} inputs; it was given {n_in}.")
        return self.n_out

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_in": self.n_in, "n_out": self.n_out}

    def forward(self, A_prev: np.ndarray, training: bool = False) -> np.ndarray:
        if A_prev.ndim != 2 or A_prev.shape[0] != self.n_in:
            raise ShapeError(
                f"Dense layer with W of shape {self.W.shape} expects A_prev of shape "
                f"({self.n_in}, m); got {A_prev.shape}.",
                "examples are the columns of X, as in the seeds (784 x m)",
            )
        if training:
            self.A_prev = A_prev
        Z = self.W @ A_prev
        Z += self.b  # Z = W·A_prev + b, b broadcast over the m columns
        return Z

    def backward(self, dZ: np.ndarray) -> np.ndarray | None:
        if self.A_prev is None:
            raise RuntimeError("backward() needs a forward(..., training=True) first.")
        m = dZ.shape[1]
        dZ_m = dZ * (1.0 / m)  # the 1/m of dW and db, once (dZ is smaller than dW for m < n_in)
        np.matmul(dZ_m, self.A_prev.T, out=self.dW)  # dW = 1/m dZ·A_prevᵀ
        np.sum(dZ_m, axis=1, keepdims=True, out=self.db)  # db = 1/m Σ dZ, over the columns
        if not self.needs_input_grad:
            return None
        return self.W.T @ dZ  # dA_prev = Wᵀ·dZ (seed 004 §5: ∂C/∂X = Wᵀ ∂C/∂Y)

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out})"


class Dropout(Layer):
    """Inverted dropout for hidden layers (Srivastava et al. 2014).

    In training each unit is kept with probability ``1 - p`` and scaled by ``1/(1 - p)`` so that
    the expected activation is unchanged: ``A = A_prev ⊙ M``, ``M = Bernoulli(1 - p) / (1 - p)``;
    at inference it passes ``A_prev`` through untouched. ``forward`` keeps the scaled mask ``M``:
    ``backward`` is ``dA_prev = dA ⊙ M``.
    """

    kind = "dropout"
    kept = ("mask",)

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"The dropout probability p must be in [0, 1); got {p!r}.")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "p": self.p}

    def forward(self, A_prev: np.ndarray, training: bool = False) -> np.ndarray:
        if not training:
            return A_prev  # inference keeps no state: the mask stays for a pending backward
        if self.p == 0.0:
            self.mask = None
            return A_prev
        # uniform draws in A_prev's dtype, kept where >= p, scaled by 1/(1 - p)
        keep = self.rng.random(A_prev.shape, dtype=A_prev.dtype) >= self.p
        self.mask = keep.astype(A_prev.dtype) * (1.0 / (1.0 - self.p))
        return A_prev * self.mask  # A = A_prev ⊙ M

    def backward(self, dA: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return dA
        return dA * self.mask  # dA_prev = dA ⊙ M

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
