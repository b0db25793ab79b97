"""The layer contract, and the dense (fully connected) layer ``Z = W·A_prev + b``.

Every layer has a ``forward`` and, right under it, a ``backward``, as seed 004 builds its network
(§5-§6, §8): dense and activation layers, each differentiated on its own and chained.
``forward`` keeps in ``self`` what ``backward`` needs and says so; ``backward`` takes the gradient
with respect to the layer's output and returns the gradient with respect to its input, leaving
the parameter gradients (``dW``, ``db``) beside the parameters (``W``, ``b``) so that an
optimiser can treat every layer alike.

A note on the factor ``1/m``, kept exactly where the seeds keep it. The cost is the mean over the
batch, ``C = 1/m Σ_j ℓ_j``. The gradients that flow backwards (``dA``, ``dZ``) are, as in seeds
000-002, the per-example gradients ``∂ℓ_j/∂Z[:, j]`` stacked as columns (``dZ² = A² - Y``, no
``1/m``); the ``1/m`` appears only when the parameter gradients are formed, ``dW = 1/m dZ·A_prevᵀ``
and ``db = 1/m Σ dZ``. So ``dW`` and ``db`` are exactly ``∂C/∂W`` and ``∂C/∂b``, and ``dA_prev``
is ``m · ∂C/∂A_prev``. The training loop's fast path for plain SGD is the one exception: it puts
that ``1/m``, with the step's ``α``, on the output's ``dZᴸ`` once (:meth:`Dense.backward_sgd`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from digitnet.errors import ShapeError


class Layer:
    """A step of the network: ``A = layer(A_prev)`` on a batch whose examples are columns.

    Subclasses implement ``forward(A_prev, training)`` and ``backward(dA)``. ``params`` and
    ``grads`` map a parameter's short name (``"W"``, ``"b"``) to its array and its gradient;
    parameter-free layers leave both empty.
    """

    #: the name used in specs, registries and model files
    kind: ClassVar[str] = "layer"

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._buffers: dict[str, np.ndarray] = {}

    # -- shape bookkeeping -------------------------------------------------------------------
    def output_size(self, n_in: int) -> int:
        """The number of rows of the output for ``n_in`` input rows (activations keep it)."""
        return n_in

    def config(self) -> dict[str, Any]:
        """What a model file needs to rebuild this layer (its parameters aside)."""
        return {"kind": self.kind}

    # -- buffers -----------------------------------------------------------------------------
    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A scratch array reused from step to step (training allocates nothing per step)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._buffers[name] = buf
        return buf

    def release(self) -> None:
        """Drop the training buffers and the values kept for ``backward``."""
        self._buffers.clear()

    # -- the two passes ----------------------------------------------------------------------
    def forward(self, A_prev: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dA: np.ndarray) -> np.ndarray | None:
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

    ``forward`` keeps ``A_prev`` (a reference, not a copy): ``dW`` needs it.
    """

    kind = "dense"

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
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
        self.params = {"W": self.W, "b": self.b}
        self.grads = {"W": self.dW, "b": self.db}
        #: the first layer's input is the data: no one needs dA⁰, so skip that product
        self.needs_input_grad = True
        self.A_prev: np.ndarray | None = None

    def _ones(self, m: int, dtype: np.dtype) -> np.ndarray:
        ones = self._buffers.get("ones")
        if ones is None or ones.shape != (m, 1) or ones.dtype != dtype:
            ones = self._buffers["ones"] = np.ones((m, 1), dtype=dtype)
        return ones

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
        m = A_prev.shape[1]
        if training:
            self.A_prev = A_prev
            Z = np.matmul(self.W, A_prev, out=self._buffer("Z", (self.n_out, m), self.W.dtype))
        else:
            Z = self.W @ A_prev
        Z += self.b  # Z = W·A_prev + b, b broadcast over the m columns
        return Z

    def backward(self, dZ: np.ndarray) -> np.ndarray | None:
        if self.A_prev is None:
            raise RuntimeError("backward() needs a forward(..., training=True) first.")
        m = dZ.shape[1]
        # The 1/m goes on dZ (n_out x m), a smaller array than dW (n_out x n_in) for a batch
        # of m < n_in examples: one pass over the batch instead of one over the weights.
        dZ_m = np.multiply(dZ, 1.0 / m, out=self._buffer("dZ/m", dZ.shape, dZ.dtype))
        np.matmul(dZ_m, self.A_prev.T, out=self.dW)  # dW = 1/m dZ·A_prevᵀ
        # db = 1/m Σ dZ over the columns, as a product with a column of ones: BLAS sums the
        # rows several times faster than np.sum(axis=1) on a C-ordered array
        np.matmul(dZ_m, self._ones(m, dZ.dtype), out=self.db)
        if not self.needs_input_grad:
            return None
        # dA_prev = Wᵀ·dZ (seed 004 §5: ∂C/∂X = Wᵀ ∂C/∂Y)
        return np.matmul(self.W.T, dZ, out=self._buffer("dA_prev", (self.n_in, m), dZ.dtype))

    def backward_sgd(self, dZ_a: np.ndarray) -> np.ndarray | None:
        """:meth:`backward` and the gradient-descent step ``θ := θ - α dθ`` in one (fast path).

        For plain SGD (no momentum, no weight decay) the training loop hands back ``α/m dZ``
        instead of ``dZ``: the ``1/m`` of ``dW`` and ``db`` and the ``α`` of the step, put once
        on the output's ``dZᴸ`` (every gradient below it is linear in it, so each layer gets its
        own ``α/m dZ`` and returns ``α/m dA_prev``). The products then give the steps ``α dW``
        and ``α db`` themselves and each parameter moves in one pass: no pass over ``dZ`` for
        the ``1/m``, none over ``dθ`` for the ``α``. ``dW`` and ``db`` are left as they were
        (:meth:`backward` fills them).
        """
        if self.A_prev is None:
            raise RuntimeError("backward_sgd() needs a forward(..., training=True) first.")
        m = dZ_a.shape[1]
        dA_prev = None
        if self.needs_input_grad:
            # α/m dA_prev = Wᵀ·(α/m dZ), first: it needs W before the step
            dA_prev = np.matmul(
                self.W.T, dZ_a, out=self._buffer("dA_prev", (self.n_in, m), dZ_a.dtype)
            )
        # W := W - α dW, with α dW = α/m dZ·A_prevᵀ
        self.W -= np.matmul(dZ_a, self.A_prev.T, out=self._buffer("α dW", self.W.shape, dZ_a.dtype))
        step_b = np.matmul(
            dZ_a, self._ones(m, dZ_a.dtype), out=self._buffer("α db", self.b.shape, dZ_a.dtype)
        )
        self.b -= step_b  # b := b - α db, with α db = α/m Σ dZ
        return dA_prev

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out})"


class Dropout(Layer):
    """Inverted dropout for hidden layers (Srivastava et al. 2014).

    In training each unit is kept with probability ``1 - p`` and scaled by ``1/(1 - p)`` so that
    the expected activation is unchanged; at inference it passes ``A`` through untouched.
    ``forward`` keeps the scaled mask: ``backward`` multiplies ``dA`` by the same mask.
    """

    kind = "dropout"

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ShapeError(f"The dropout probability p must be in [0, 1); got {p!r}.")
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
        # one buffer: uniform draws, then in place the kept-or-not test, then the scale
        mask = self._buffer("mask", A_prev.shape, A_prev.dtype)
        self.rng.random(out=mask, dtype=mask.dtype)
        np.greater_equal(mask, self.p, out=mask, casting="unsafe")
        mask *= 1.0 / (1.0 - self.p)
        self.mask = mask
        return np.multiply(A_prev, mask, out=self._buffer("A", A_prev.shape, A_prev.dtype))

    def backward(self, dA: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return dA
        return np.multiply(dA, self.mask, out=self._buffer("dA_prev", dA.shape, dA.dtype))

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
