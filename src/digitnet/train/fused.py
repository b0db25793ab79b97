"""Fused training steps: the plain path's arithmetic, reordered and merged for speed.

The plain path is what docs/math.md walks through: ``Network.forward`` (each layer's
``forward``), the cost, ``Network.backpropagate`` (each layer's ``backward`` leaving ``dW``,
``db``), then ``Optimizer.step`` (``θ := θ - α dθ``). It is the reference; every step here is
tested against it (tests/test_fused.py: the same weights after training, within float
rounding, never bit for bit: the products are grouped differently).

One fused step lives here, :class:`SoftmaxCrossEntropySGD`, for the commonest training: a
network ending in softmax with cross-entropy on one-hot targets (no label smoothing), trained by
plain gradient descent (no momentum, no weight decay). What it fuses, and why each is kept
(bench/bench_train.py ``--tricks`` measures each against the plain path; kept are those worth
about 10 % of an epoch or more on one of its two networks):

1. **Cross-entropy from the labels.** ``C = -1/m Σ_j log A[y_j, j]`` and ``dZᴸ = Aᴸ - Y`` read
   the integer labels: no one-hot ``Y`` is built, filled and read, and the log-softmax reuses
   the column maxima and sums the softmax just computed (``-log A[y, j] = log Σ_k e^(Z_k - max)
   + max - Z[y, j]``).
2. **The gradient-descent step inside backpropagation.** Every gradient below the output is
   linear in ``dZᴸ``, so ``α/m`` is put on ``dZᴸ`` once: each dense layer then receives
   ``α/m dZ`` and its products give the steps ``α dW = α/m dZ·A_prevᵀ`` and ``α db`` directly,
   subtracted from ``W`` and ``b`` at once (``dA_prev = Wᵀ·(α/m dZ)`` is formed first, with
   ``W`` before its step). No pass over ``dZ`` for the ``1/m``, none over ``dθ`` for the ``α``,
   and ``dW`` is never stored.
3. **Reused arrays.** Every ``Z``, ``A``, ``dZ`` and ``dA_prev`` is written with ``out=`` into
   arrays kept from step to step, so a step allocates nothing; ReLU compares against a kept
   array of zeros (NumPy's SIMD loop for two arrays, several times faster than against the
   scalar 0 on a 128 x 128 batch), and ``db``'s sum over the columns is a product with a column
   of ones (BLAS sums the rows of a C-ordered array faster than ``np.sum(axis=1)``).

Layers other than :class:`~digitnet.layers.Dense` and :class:`~digitnet.activations.ReLU`
(another activation, dropout) run their own ``forward`` and ``backward``: those are linear in
the gradient too, so they pass ``α/m dZ`` on unchanged in meaning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitnet.activations import ReLU, Softmax
from digitnet.costs import CrossEntropy
from digitnet.layers import Dense, Layer
from digitnet.optim import GradientDescent, Optimizer


def fused_step_for(net: Any, opt: Optimizer) -> SoftmaxCrossEntropySGD | None:
    """The fused step that trains ``net`` with ``opt`` exactly as the plain path would, or None."""
    if SoftmaxCrossEntropySGD.applies(net, opt):
        return SoftmaxCrossEntropySGD(net)
    return None


class SoftmaxCrossEntropySGD:
    """Forward, cross-entropy, backward and ``θ := θ - α dθ`` of one mini-batch, fused.

    For a network whose last layer is softmax with the cross-entropy cost on one-hot targets,
    trained by plain gradient descent; see the module docstring for what is fused and why.
    :meth:`forward_cost` then :meth:`backward_sgd` leave the network's parameters where the plain
    path's ``forward``, ``backward`` and ``GradientDescent.step`` would, up to float rounding.
    """

    @staticmethod
    def applies(net: Any, opt: Optimizer) -> bool:
        cost = getattr(net, "cost", None)
        layers = getattr(net, "layers", [])
        return (
            type(opt) is GradientDescent
            and not opt.weight_decay
            and isinstance(cost, CrossEntropy)
            and not cost.label_smoothing
            and bool(layers)
            and isinstance(layers[-1], Softmax)
        )

    def __init__(self, net: Any) -> None:
        self.net = net
        self.layers: list[Layer] = list(net.layers[:-1])  # the softmax is fused into the cost
        self.first_dense = next(i for i, ly in enumerate(self.layers) if isinstance(ly, Dense))
        self._bufs: dict[tuple[Any, ...], np.ndarray] = {}
        self.inputs: list[np.ndarray] = []  # each layer's input, then Zᴸ (forward_cost)
        self.dZ: np.ndarray | None = None  # dZᴸ = Aᴸ - Y (forward_cost)

    def _buf(self, key: tuple[Any, ...], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An array kept from step to step under ``key`` (trick 3)."""
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[key] = np.empty(shape, dtype=dtype)
        return buf

    def _const(self, key: str, shape: tuple[int, ...], dtype: Any, value: float) -> np.ndarray:
        buf = self._bufs.get((key,))
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[(key,)] = np.full(shape, value, dtype=dtype)
        return buf

    # -- the step: forward_cost, then (once the cost is known to be finite) backward_sgd ----
    def forward_cost(self, A0: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The forward pass on the batch ``A0`` (``(n_in, m)``) with labels ``y``: ``(C, Aᴸ)``.

        ``Aᴸ`` (the softmax output) is a kept array: read it before the next step. Keeps every
        layer's input and ``dZᴸ`` for :meth:`backward_sgd`.
        """
        self.inputs = self.forward(A0)
        C, A, self.dZ = self.output(self.inputs[-1], y)
        return C, A

    def backward_sgd(self, alpha: float) -> None:
        """Backpropagation with ``θ := θ - α dθ`` for every dense layer on the way."""
        grad = self.dZ
        grad *= alpha / grad.shape[1]  # α/m on dZᴸ once (trick 2)
        inputs = self.inputs
        for i in range(len(self.layers) - 1, self.first_dense - 1, -1):
            layer, A_prev = self.layers[i], inputs[i]
            if isinstance(layer, Dense):
                grad = self.dense_sgd(i, layer, A_prev, grad)
            elif isinstance(layer, ReLU):
                mask = np.greater(inputs[i + 1], 0, out=self._buf(("A>0", i), grad.shape, bool))
                grad = np.multiply(grad, mask, out=self._buf(("dZ", i), grad.shape, grad.dtype))
            else:
                grad = layer.backward(grad)

    def forward(self, A0: np.ndarray) -> list[np.ndarray]:
        """Every layer's input, then the softmax's input ``Zᴸ``: ``[A⁰, ..., Zᴸ]``."""
        inputs = [A0]
        A = A0
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                Z = self._buf(("Z", i), (layer.n_out, A.shape[1]), A.dtype)
                np.matmul(layer.W, A, out=Z)
                Z += layer.b  # Z = W·A_prev + b
                A = Z
            elif isinstance(layer, ReLU):
                zeros = self._const(f"0/{A.shape}", A.shape, A.dtype, 0.0)
                A = np.maximum(A, zeros, out=self._buf(("A", i), A.shape, A.dtype))  # max(0, Z)
            else:
                A = layer.forward(A, training=True)
            inputs.append(A)
        return inputs

    def output(self, Z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Softmax, the cross-entropy and ``dZᴸ = Aᴸ - Y``, from the labels (trick 1)."""
        m = Z.shape[1]
        cols = self._bufs.get(("cols",))
        if cols is None or cols.shape[0] != m:
            cols = self._bufs[("cols",)] = np.arange(m)
        Z_max = Z.max(axis=0, keepdims=True)
        A = np.subtract(Z, Z_max, out=self._buf(("A", "out"), Z.shape, Z.dtype))
        np.exp(A, out=A)
        total = A.sum(axis=0, keepdims=True)  # Σ_k e^(Z_k - max Z), one per column
        A /= total  # softmax
        # -log A[y_j, j] = log Σ_k e^(Z_k - max Z) + max Z - Z[y_j, j]
        nll = np.log(total)
        nll += Z_max
        nll -= Z[y, cols]
        C = float(nll.sum(dtype=np.float64) / m)
        dZ = self._buf(("dZ", "out"), Z.shape, Z.dtype)
        np.copyto(dZ, A)
        dZ[y, cols] -= 1.0  # dZᴸ = Aᴸ - Y: A less 1 at each column's true class
        return C, A, dZ

    def dense_sgd(
        self, i: int, layer: Dense, A_prev: np.ndarray, dZ_a: np.ndarray
    ) -> np.ndarray | None:
        """``α/m dA_prev``, then ``W -= α/m dZ·A_prevᵀ`` and ``b -= α/m Σ dZ`` (trick 2)."""
        m = dZ_a.shape[1]
        dA_prev = None
        if i != self.first_dense:  # nobody needs dA⁰
            out = self._buf(("dA", i), (layer.n_in, m), dZ_a.dtype)
            dA_prev = np.matmul(layer.W.T, dZ_a, out=out)  # with W before its step
        step_W = self._buf(("αdW", i), layer.W.shape, dZ_a.dtype)
        layer.W -= np.matmul(dZ_a, A_prev.T, out=step_W)  # W := W - α dW
        ones = self._const(f"1/{m}", (m, 1), dZ_a.dtype, 1.0)
        step_b = self._buf(("αdb", i), layer.b.shape, dZ_a.dtype)
        layer.b -= np.matmul(dZ_a, ones, out=step_b)  # b := b - α db (trick 3: Σ as a product)
        return dA_prev
