"""Backpropagation on one digit, shown: every quantity of the backward pass in the seeds' names.

Training computes the backward pass millions of times and shows none of it. This module runs it
once, on one example (or a few) and its label, with the same code that training runs, and keeps
every number on the way, so that a learner (``digitnet explain``, the page's backward view) can
read the seeds' equations filled in:

- :func:`backward_pass`: the cost ``C``, the targets ``Y``, the output error ``dZᴸ`` and, for each
  dense layer ``l``, ``Aˡ⁻¹``, ``Zˡ``, ``Aˡ``, ``g'(Zˡ)``, ``dAˡ``, ``dZˡ``, ``dWˡ``, ``dbˡ``,
  ``dAˡ⁻¹``, and how many units ``g'`` switched off (seeds 000-002; seed 004 §5-§6).
- :func:`gradient_check`: finite differences against those gradients, in float64 (seed 004's
  derivatives checked numerically, as ``digitnet gradcheck`` does for random data).
- :func:`take_steps`: the update ``θ := θ - α dθ`` (seed 004 §7) on a copy of the network, with
  the prediction, the cost and the accuracy on 1,000 official test digits before and after.
- :func:`copy_network`: a network copied with its weights, in float32 or float64.

One backward pass, never a second implementation: the forward pass is the network's own
``layer.forward(A, training=True)`` calls in the network's order (what
:meth:`~digitnet.network.Network.forward` does, written out so that each layer's output is kept),
the output gradient is the network's :meth:`~digitnet.network.Network.output_gradient`, and the
backward pass hands it to each layer's own ``backward`` from the last layer to the first, as
training does (:meth:`~digitnet.network.Network.backward`). ``dW`` and ``db`` are read from
the dense layers, where ``backward`` leaves them. Tests check every quantity against the network's
own ``backward`` and against PyTorch autograd.

Dropout: a network trained with dropout is explained as it reads digits, at inference, where
dropout passes its input through unchanged. The passes here run on an *inference view* of the
network: the same layer objects in the same order with the dropout layers left out
(:func:`inference_view`), so no unit is dropped and every number is reproducible.

All arrays returned are copies (the layers' buffers are reused by the next pass), in the model's
dtype, one example per column as the seeds write ``X`` (784 x m).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitnet.activations import (
    Activation,
    LeakyReLU,
    Sigmoid,
    Softmax,
    get_activation,
    log_softmax,
)
from digitnet.costs import get_cost
from digitnet.errors import ConfigError, ShapeError
from digitnet.layers import Dense, Dropout, Layer
from digitnet.network import Network

#: the largest learning rate a teaching step accepts (the sigmoid-mse preset trains with α = 3)
MAX_ALPHA = 100.0
#: the most steps :func:`take_steps` takes in one call ("step until it reads N" stops there)
MAX_STEPS = 1000
#: the accuracy sample: every ``SAMPLE_STRIDE``-th digit of the official MNIST test set
#: (the embedded copy: digits 0, 10, 20, ..., 9990), 1,000 digits
SAMPLE_STRIDE = 10
#: the finite-difference step of :func:`gradient_check` (float64: error of order h² ≈ 1e-12)
H = 1e-6
#: entries of each ``W`` checked by :func:`gradient_check`: half the largest ``|dW|``, half random
SAMPLE_W = 24
#: entries of each ``b`` checked (all of them when the layer has fewer units)
SAMPLE_B = 12
#: a gradient whose relative error is below this is right (as ``digitnet gradcheck`` says)
GOOD = 1e-6
#: ``g'(Z)`` below this fraction of ``g'``'s peak counts as saturated (a unit passing < 1 %)
SATURATED = 0.01


# -- the network: a copy, and the view that the passes run on ---------------------------------
def _copy_layer(layer: Layer, dtype: np.dtype) -> Layer:
    if isinstance(layer, Dense):
        return Dense(layer.W.astype(dtype, copy=True), layer.b.astype(dtype, copy=True))
    if isinstance(layer, Dropout):
        return Dropout(layer.p)
    if isinstance(layer, Activation):
        options = {k: v for k, v in layer.config().items() if k != "kind"}
        return get_activation(layer.kind, **options)
    raise ConfigError(f"explain cannot copy a layer of kind {layer.kind!r} ({layer!r}).")


def copy_network(net: Network, dtype: Any = None) -> Network:
    """A new network with the same layers, cost and weights as ``net`` (copied, not shared).

    ``dtype``: ``np.float32`` or ``np.float64`` (default: ``net``'s own). Nothing of ``net`` is
    shared or changed: steps on the copy never reach ``net`` (nor the file it came from).
    Dropout layers are copied with the same ``p`` and a fresh random generator.
    """
    dt = np.dtype(dtype) if dtype is not None else net.dtype
    if dt not in (np.float32, np.float64):
        raise ConfigError(f"The dtype must be float32 or float64; got {dtype!r}.")
    cost_options = {k: v for k, v in net.cost.config().items() if k != "kind"}
    cost = get_cost(net.cost.kind, **cost_options)
    return Network([_copy_layer(layer, dt) for layer in net.layers], cost, dtype=dt)


def inference_view(net: Network) -> Network:
    """``net`` as it reads digits: its own layer objects, in order, with dropout left out.

    At inference a dropout layer passes its input through unchanged, so leaving it out of the
    pass is the same function; running the view with ``training=True`` then keeps what each
    layer's ``backward`` needs without dropping any unit. The view shares the layers (their
    weights and buffers) with ``net``: it is not a copy.
    """
    if not any(isinstance(layer, Dropout) for layer in net.layers):
        return net
    layers = [layer for layer in net.layers if not isinstance(layer, Dropout)]
    return Network(layers, net.cost, dtype=net.dtype)


# -- input checks ------------------------------------------------------------------------------
def _columns(net: Network, X: Any) -> np.ndarray:
    """``X`` as ``(n_inputs, m)`` columns in the network's dtype: a column, a vector, or for a
    784-input network a ``(28, 28)`` image read row by row (as MNIST stores its pixels)."""
    X = np.asarray(X)
    n = net.n_inputs
    if X.ndim == 2 and X.shape == (28, 28) and n == 784:
        X = X.reshape(784, 1)
    elif X.ndim == 1 and X.shape[0] == n:
        X = X.reshape(n, 1)
    if X.ndim != 2 or X.shape[0] != n or X.shape[1] < 1:
        raise ShapeError(
            f"X must be ({n}, m), one example per column (or one example as ({n},)); "
            f"got shape {X.shape}.",
            "for images as rows (m, 784), pass X.T",
        )
    if not np.isfinite(X).all():
        raise ShapeError("X holds NaN or infinite values.")
    return np.ascontiguousarray(X, dtype=net.dtype)


def _labels(net: Network, y: Any, m: int) -> np.ndarray:
    """Integer labels ``(m,)``, each in ``0 .. n_outputs - 1``."""
    arr = np.atleast_1d(np.asarray(y))
    n = net.n_outputs
    ok = arr.ndim == 1 and arr.shape[0] == m and arr.dtype.kind in "iu"
    if ok:
        ok = bool(((arr >= 0) & (arr < n)).all())
    if not ok:
        raise ConfigError(
            f"The label must be {'a digit' if m == 1 else f'{m} digits'} from 0 to {n - 1}; "
            f"got {y!r}.",
            "one integer label per example (per column of X)",
        )
    return arr.astype(np.int64)


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float, if it is a positive finite number at most :data:`MAX_ALPHA`."""
    try:
        a = math.nan if isinstance(alpha, bool) else float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not (math.isfinite(a) and 0.0 < a <= MAX_ALPHA):
        raise ConfigError(
            f"The learning rate α must be a positive number at most {MAX_ALPHA:g}; got {alpha!r}.",
            "α = 0.01 to 0.1 moves a trained network visibly in a few steps",
        )
    return a


# -- the backward pass -------------------------------------------------------------------------
@dataclass
class DenseBackward:
    """One dense layer ``l`` and the activation ``g`` after it, forward and backward.

    Forward: ``Zˡ = Wˡ·Aˡ⁻¹ + bˡ``, ``Aˡ = g(Zˡ)``. Backward (seeds 000-002, seed 004 §5-§6):
    ``dZˡ = dAˡ ⊙ g'(Zˡ)`` (``dAˡ = Wˡ⁺¹ᵀ·dZˡ⁺¹``; at the output, the cost's gradient; for
    softmax with cross-entropy ``dZᴸ = Aᴸ - Y`` directly), ``dWˡ = 1/m dZˡ·Aˡ⁻¹ᵀ``,
    ``dbˡ = 1/m Σ dZˡ``, ``dAˡ⁻¹ = Wˡᵀ·dZˡ``. Arrays are ``(units, m)`` except ``dW`` (the
    shape of ``W``) and ``db`` (``(units, 1)``).
    """

    layer: int  # the seeds' superscript l: 1 for the first dense layer
    activation: str  # g's kind: relu, leaky_relu, sigmoid, tanh, arctan, identity, softmax
    A_prev: np.ndarray  # Aˡ⁻¹ (A⁰ = X)
    Z: np.ndarray  # Zˡ = Wˡ·Aˡ⁻¹ + bˡ
    A: np.ndarray  # Aˡ = g(Zˡ)
    g_prime: np.ndarray | None  # g'(Zˡ), element-wise; None for softmax (not element-wise)
    dA: np.ndarray | None  # dAˡ = ∂ℓ/∂Aˡ per example; None for softmax + cross-entropy
    dZ: np.ndarray  # dZˡ
    dW: np.ndarray  # dWˡ = 1/m dZˡ·Aˡ⁻¹ᵀ
    db: np.ndarray  # dbˡ = 1/m Σ dZˡ
    dA_prev: np.ndarray | None  # dAˡ⁻¹ = Wˡᵀ·dZˡ; None for l = 1 (X is data: nobody needs dA⁰)
    off: np.ndarray  # per example: units that g' switched off (g' = 0; leaky ReLU: Z ≤ 0)
    saturated: np.ndarray  # per example: units with g'(Z) under 1 % of g's steepest slope

    @property
    def units(self) -> int:
        return int(self.Z.shape[0])

    @property
    def W_shape(self) -> tuple[int, int]:
        return (int(self.dW.shape[0]), int(self.dW.shape[1]))


@dataclass
class BackwardPass:
    """Every quantity of one backward pass (see :func:`backward_pass`)."""

    X: np.ndarray  # A⁰ = X, (n_inputs, m)
    y: np.ndarray  # the labels, (m,)
    Y: np.ndarray  # the targets, (n_outputs, m): one-hot, label-smoothed if the cost says so
    label_smoothing: float  # ε: Y = (1 - ε)·one-hot + ε/n (0 when the cost has none)
    cost: str  # "cross_entropy" or "mse"
    C: float  # the cost of these examples, as training computes it (mean over the m columns)
    output: str  # the output layer's g: "softmax", "sigmoid", ...
    output_equation: str  # how dZᴸ was formed, in the seeds' notation
    fused: bool  # softmax + cross-entropy: dZᴸ = Aᴸ - Y, without dAᴸ
    layers: list[DenseBackward]  # l = 1 .. L

    @property
    def m(self) -> int:
        return int(self.X.shape[1])

    @property
    def A(self) -> np.ndarray:
        """Aᴸ, the network's output."""
        return self.layers[-1].A

    @property
    def dZ_out(self) -> np.ndarray:
        """dZᴸ, the output error."""
        return self.layers[-1].dZ

    @property
    def prediction(self) -> np.ndarray:
        """argmax Aᴸ per example."""
        return self.A.argmax(axis=0)

    @property
    def dtype(self) -> str:
        return self.X.dtype.name


def _g_peak(layer: Activation) -> float:
    """The largest value ``g'`` takes (σ' peaks at 1/4)."""
    return 0.25 if isinstance(layer, Sigmoid) else 1.0


def _forward_kept(view: Network, X: np.ndarray) -> list[np.ndarray]:
    """:meth:`Network.forward` with ``training=True``, each layer's output kept (copied).

    The same ``layer.forward(A, training=True)`` calls in the same order as ``Network.forward``
    makes: the layers keep what their ``backward`` needs, exactly as in training.
    """
    outputs = []
    A = X
    for layer in view.layers:
        A = layer.forward(A, training=True)
        outputs.append(A.copy())  # the layer's buffer is reused by its next pass
    return outputs


def backward_pass(net: Network, X: Any, y: Any) -> BackwardPass:
    """Run the forward and backward pass of training on ``X`` with labels ``y``; keep it all.

    ``X``: one example as ``(784,)``, ``(784, 1)`` or a ``(28, 28)`` image, or a few as
    ``(784, m)`` columns (pixels in [0, 1]); ``y``: the label (an int) or labels ``(m,)``.
    Runs in ``net``'s dtype on its :func:`inference_view` (no dropout); the forward pass, the
    cost, its output gradient and every layer's ``backward`` are the network's own (see the
    module's docstring). ``net``'s weights are untouched; its training buffers and its dense
    layers' ``dW``, ``db`` are overwritten (as a training step would), so give each thread its
    own network (:func:`copy_network`).

    Returns a :class:`BackwardPass`: ``C``, ``Y`` (label-smoothed if the model's cost is:
    ``label_smoothing`` says by how much), ``output_equation``, and ``layers[l - 1]`` for each
    dense layer ``l`` (a :class:`DenseBackward`: ``A_prev``, ``Z``, ``A``, ``g_prime``, ``dA``,
    ``dZ``, ``dW``, ``db``, ``dA_prev``, ``off``, ``saturated``). ``layers[-1].dZ`` is the output
    error ``dZᴸ``: ``Aᴸ - Y`` for softmax with cross-entropy, ``2/n (Aᴸ - Y) ⊙ σ'(Zᴸ)`` for a
    sigmoid output with MSE.
    """
    view = inference_view(net)
    X = _columns(view, X)
    m = X.shape[1]
    y = _labels(view, y, m)
    layers = view.layers
    dense_at = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]

    with np.errstate(over="ignore", under="ignore"):
        outputs = _forward_kept(view, X)  # outputs[i] is layer i's output
        A_L = outputs[-1]
        Y = view.targets(y, out=np.empty((view.n_outputs, m), dtype=view.dtype))
        C = float(view.cost.value(A_L, Y, view.log_output()))
        fused = bool(getattr(view, "fused", False))
        grad = view.output_gradient(A_L, Y)  # dZᴸ = Aᴸ - Y when fused, else ∂ℓ/∂Aᴸ
        # What each layer receives on the way back, as Network.backward hands it on.
        received: dict[int, np.ndarray] = {}
        grads: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        returned: dict[int, np.ndarray | None] = {}
        rest = layers[:-1] if fused else layers
        if fused:
            received[len(layers) - 1] = None  # type: ignore[assignment]  # softmax: skipped
            returned[len(layers) - 1] = grad.copy()  # dZᴸ = Aᴸ - Y, straight to the dense layer
        for i in range(len(rest) - 1, -1, -1):
            layer = rest[i]
            received[i] = grad.copy()
            grad = layer.backward(grad)
            if isinstance(layer, Dense):
                grads[i] = (layer.dW.copy(), layer.db.copy())
            returned[i] = None if grad is None else grad.copy()
            if grad is None:  # the first dense layer: dA⁰ is not needed, as in training
                break
        # g'(Z) of each element-wise activation: its own backward of a matrix of ones
        g_primes: dict[int, np.ndarray | None] = {}
        for i in dense_at:
            act = layers[i + 1] if i + 1 < len(layers) else None
            if act is None or isinstance(act, Softmax) or not isinstance(act, Activation):
                g_primes[i + 1] = None
            else:
                g_primes[i + 1] = act.backward(np.ones_like(outputs[i + 1])).copy()

    result_layers: list[DenseBackward] = []
    for l_index, i in enumerate(dense_at, start=1):
        j = i + 1  # the activation after dense layer i
        act = layers[j] if j < len(layers) else None
        if act is None or not isinstance(act, Activation):
            raise ConfigError(
                f"explain needs an activation after every dense layer; layer {i} is followed by "
                f"{act!r}."
            )
        g_prime = g_primes[j]
        if g_prime is None:
            off = np.zeros(m, dtype=np.int64)
            sat = np.zeros(m, dtype=np.int64)
        else:
            if isinstance(act, LeakyReLU):
                off = np.count_nonzero(outputs[i] <= 0, axis=0)  # on the slope side: Z ≤ 0
            else:
                off = np.count_nonzero(g_prime == 0, axis=0)
            sat = np.count_nonzero(g_prime < SATURATED * _g_peak(act), axis=0)
        dW, db = grads[i]
        result_layers.append(
            DenseBackward(
                layer=l_index,
                activation=act.kind,
                A_prev=X.copy() if i == dense_at[0] else outputs[i - 1],
                Z=outputs[i],
                A=outputs[j],
                g_prime=g_prime,
                dA=received.get(j),
                dZ=returned[j],  # type: ignore[arg-type]
                dW=dW,
                db=db,
                dA_prev=returned[i],
                off=np.asarray(off, dtype=np.int64),
                saturated=np.asarray(sat, dtype=np.int64),
            )
        )
    out_kind = layers[-1].kind
    if fused:
        equation = "dZᴸ = Aᴸ - Y"
    elif out_kind == "softmax":
        dA = f"2/{view.n_outputs} (Aᴸ - Y)" if view.cost.kind == "mse" else "∂ℓ/∂Aᴸ"
        equation = f"dZᴸ = Aᴸ ⊙ (dAᴸ - Σₖ dAᴸₖ Aᴸₖ), dAᴸ = {dA}"
    else:
        n = view.n_outputs
        g = "σ'" if out_kind == "sigmoid" else "g'"
        dA = f"2/{n} (Aᴸ - Y)" if view.cost.kind == "mse" else "∂ℓ/∂Aᴸ"
        equation = f"dZᴸ = {dA} ⊙ {g}(Zᴸ)" if out_kind != "identity" else f"dZᴸ = {dA}"
    return BackwardPass(
        X=X.copy(),
        y=y,
        Y=Y.copy(),
        label_smoothing=float(getattr(view.cost, "label_smoothing", 0.0)),
        cost=view.cost.kind,
        C=C,
        output=out_kind,
        output_equation=equation,
        fused=fused,
        layers=result_layers,
    )


def most_affected_unit(bp: BackwardPass, example: int = 0) -> int:
    """The unit of the first layer whose row of ``dW¹`` moves most: the largest ``|dZ¹|``.

    Row ``u`` of ``dW¹`` is ``1/m Σ_j dZ¹[u, j]·X[:, j]``: for one example, the drawing scaled
    by that unit's ``dZ¹`` (the seeds' ``dW¹ = 1/m dZ¹·Xᵀ``).
    """
    return int(np.argmax(np.abs(bp.layers[0].dZ[:, example])))


# -- the gradient check ------------------------------------------------------------------------
@dataclass
class ParamCheck:
    """Backpropagation against central differences on some entries of one parameter."""

    name: str  # W1, b1, W2, ...
    shape: tuple[int, ...]
    indices: np.ndarray  # the flat indices checked (into θ.reshape(-1))
    backprop: np.ndarray  # dθ at those entries, from backward_pass
    numeric: np.ndarray  # (C(θ + h) - C(θ - h)) / 2h at those entries
    relative_error: float  # ‖backprop - numeric‖ / (‖backprop‖ + ‖numeric‖)


@dataclass
class LayerCheck:
    layer: int  # l
    W: ParamCheck
    b: ParamCheck

    @property
    def relative_error(self) -> float:
        """The larger of the two parameters' relative errors."""
        return max(self.W.relative_error, self.b.relative_error)


@dataclass
class GradientCheck:
    """The result of :func:`gradient_check`."""

    h: float
    layers: list[LayerCheck]  # l = 1 .. L: a sample of Wˡ and bˡ
    unit: int  # the hidden unit whose whole row of dW¹ was checked
    row: ParamCheck  # that row: backprop and numeric, n_inputs entries each
    evaluations: int  # how many costs were computed
    seconds: float

    @property
    def max_relative_error(self) -> float:
        return max([c.relative_error for c in self.layers] + [self.row.relative_error])

    @property
    def ok(self) -> bool:
        return self.max_relative_error < GOOD


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / (‖a‖ + ‖b‖)``, 0 when both are 0 (as :mod:`digitnet.gradcheck` reports)."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if denom == 0.0 else float(np.linalg.norm(a - b)) / denom


def _sample(d: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` flat indices of ``d``: half its largest ``|d|``, the rest at random (sorted)."""
    flat = np.abs(d.reshape(-1))
    if flat.size <= k:
        return np.arange(flat.size)
    chosen = set(np.argpartition(-flat, k // 2)[: k // 2].tolist())
    while len(chosen) < k:
        chosen.add(int(rng.integers(flat.size)))
    return np.array(sorted(chosen), dtype=np.int64)


def gradient_check(
    net: Network,
    X: Any,
    y: Any,
    *,
    unit: int | None = None,
    h: float = H,
    sample_W: int = SAMPLE_W,
    sample_b: int = SAMPLE_B,
    seed: int = 0,
) -> GradientCheck:
    """Check :func:`backward_pass` on ``(X, y)`` against central finite differences, in float64.

    Works on a float64 copy of ``net`` (``net`` itself is untouched). For each dense layer it
    compares ``dWˡ`` on ``sample_W`` entries (half the largest ``|dWˡ|``, half at random) and
    ``dbˡ`` on ``sample_b`` entries, and the whole row ``unit`` of ``dW¹`` (default: the most
    affected unit, :func:`most_affected_unit`), each entry as
    ``(C(θ + h) - C(θ - h)) / 2h``. Each cost is the network's own inference forward pass and
    cost function, run from the perturbed layer on (the layers before it do not change). A
    weight whose input is 0 in every example (a blank pixel; a unit switched off) has a finite
    difference of exactly 0, bit for bit, and is compared with 0 without computing the two costs.

    For 784-512-256-10 on an MNIST digit (about 150 of 784 pixels inked) that is about 450 costs
    (``evaluations``), most of them whole forward passes; see ``seconds``.
    """
    t0 = time.perf_counter()
    net64 = copy_network(inference_view(net), np.float64)
    bp = backward_pass(net64, X, y)
    X64 = bp.X
    Y = bp.Y
    layers = net64.layers
    last = layers[-1]
    dense_at = [i for i, layer in enumerate(layers) if isinstance(layer, Dense)]
    rng = np.random.default_rng(seed)
    n_first = bp.layers[0].units
    if unit is None:
        unit = most_affected_unit(bp)
    if not 0 <= unit < n_first:
        raise ConfigError(f"unit {unit!r}: the first layer has units 0 to {n_first - 1}.")

    # each dense layer's input at inference, for costs that start at a perturbed layer
    inputs = []
    A = X64
    for layer in layers:
        inputs.append(A)
        A = layer.forward(A)
    evaluations = 0

    def cost_from(i: int) -> float:
        nonlocal evaluations
        evaluations += 1
        A = inputs[i]
        for layer in layers[i:-1]:
            A = layer.forward(A)
        A_out = last.forward(A)
        log_A = log_softmax(A) if isinstance(last, Softmax) else None
        return float(net64.cost.value(A_out, Y, log_A))

    def numeric(i: int, theta: np.ndarray, indices: np.ndarray) -> np.ndarray:
        flat = theta.reshape(-1)  # a view: θ is C-contiguous
        out = np.empty(indices.size)
        # A weight whose input is 0 in every example (a blank pixel, a unit ReLU switched off)
        # multiplies 0: C(θ + h) and C(θ - h) are the same number, bit for bit, and the
        # difference is exactly 0 without computing them. Biases have no such input.
        silent = ~inputs[i].any(axis=1) if theta is layers[i].W else None
        n_in = theta.shape[1]
        for n, k in enumerate(indices):
            if silent is not None and silent[k % n_in]:
                out[n] = 0.0
                continue
            old = flat[k]
            flat[k] = old + h
            c_plus = cost_from(i)
            flat[k] = old - h
            c_minus = cost_from(i)
            flat[k] = old
            out[n] = (c_plus - c_minus) / (2 * h)
        return out

    def check(name: str, i: int, theta: np.ndarray, d: np.ndarray, idx: np.ndarray) -> ParamCheck:
        with np.errstate(over="ignore", under="ignore"):
            num = numeric(i, theta, idx)
        back = d.reshape(-1)[idx].astype(np.float64)
        return ParamCheck(name, tuple(theta.shape), idx, back, num, _relative_error(back, num))

    checks = []
    for lb, i in zip(bp.layers, dense_at, strict=True):
        layer = layers[i]
        W_idx = _sample(lb.dW, sample_W, rng)
        b_idx = _sample(lb.db, sample_b, rng)
        checks.append(
            LayerCheck(
                lb.layer,
                check(f"W{lb.layer}", i, layer.W, lb.dW, W_idx),
                check(f"b{lb.layer}", i, layer.b, lb.db, b_idx),
            )
        )
    first = dense_at[0]
    n_in = layers[first].W.shape[1]
    row_idx = unit * n_in + np.arange(n_in)
    row = check(f"W1[{unit}]", first, layers[first].W, bp.layers[0].dW, row_idx)
    row.indices = np.arange(n_in)  # the row's own columns, 0 .. n_inputs - 1
    return GradientCheck(
        h=h,
        layers=checks,
        unit=unit,
        row=row,
        evaluations=evaluations,
        seconds=time.perf_counter() - t0,
    )


# -- the teaching step -------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _official_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The official MNIST test set as shipped with digitnet: ``(10000, 28, 28)`` uint8 images
    and their labels, each file checked against its SHA-256 digest. Read once per process."""
    from digitnet.data import idx
    from digitnet.data.datasets import _embedded_dir, _find
    from digitnet.data.sources import EMBEDDED
    from digitnet.errors import DataError

    arrays = {}
    for role in ("test-images", "test-labels"):
        path = _find(_embedded_dir(), role)
        data = idx.read_bytes(path)
        if idx.sha256_of(data) != EMBEDDED[role]["sha256"]:
            raise DataError(
                f"{path}: its contents do not match the expected SHA-256 digest.",
                "the installed digitnet is damaged: reinstall it",
            )
        arrays[role] = idx.parse(data, str(path))
    images, labels = arrays["test-images"], arrays["test-labels"].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def official_test_digit(k: int) -> tuple[np.ndarray, int]:
    """Digit ``k`` (0-9999) of the official MNIST test set: a ``(28, 28)`` float64 image in
    [0, 1] (pixel / 255, as training reads it) and its label."""
    images, labels = _official_test_set()
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < len(labels):
        raise ConfigError(f"The official test digits are 0 to {len(labels) - 1}; got {k!r}.")
    return images[k].astype(np.float64) / 255.0, int(labels[k])


@functools.lru_cache(maxsize=2)
def accuracy_sample(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: the fixed 1,000 official MNIST test digits the teaching step measures on.

    Every :data:`SAMPLE_STRIDE`-th digit of the official test set (indices 0, 10, ..., 9990),
    read from the embedded copy shipped with digitnet (checked against its SHA-256 digest).
    ``X`` is ``(784, 1000)`` in [0, 1] (pixel / 255); read once per process and dtype.
    Read-only arrays.
    """
    images, labels = _official_test_set()
    images = images[::SAMPLE_STRIDE]
    X = (images.reshape(images.shape[0], -1).astype(np.float64) / 255.0).T.astype(dtype)
    y = labels[::SAMPLE_STRIDE].copy()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _probabilities(A: np.ndarray) -> np.ndarray:
    """Aᴸ as probabilities: softmax already is; other outputs are divided by their sum."""
    P = np.clip(np.nan_to_num(np.asarray(A, dtype=np.float64), nan=0.0, posinf=1.0), 0.0, None)
    total = P.sum(axis=0, keepdims=True)
    return np.where(total > 0, P / np.where(total > 0, total, 1.0), 1.0 / P.shape[0])


@dataclass
class Snapshot:
    """The network on the examples at one moment (inference, no dropout)."""

    prediction: np.ndarray  # (m,) argmax Aᴸ
    A: np.ndarray  # (n_outputs, m) Aᴸ itself
    probabilities: np.ndarray  # (n_outputs, m) Aᴸ normalised to sum to 1 (softmax: Aᴸ)
    C: float  # the cost on the examples, with the model's own cost (label smoothing included)
    accuracy: float | None = None  # on the 1,000 test digits of accuracy_sample()
    sample_cost: float | None = None  # the cost on those 1,000 digits


def snapshot(net: Network, X: Any, y: Any, *, accuracy: bool = False) -> Snapshot:
    """Prediction, ``Aᴸ``, probabilities and cost of ``net`` on ``(X, y)``; with ``accuracy``,
    also the accuracy and cost on the 1,000 test digits of :func:`accuracy_sample`."""
    X = _columns(net, X)
    y = _labels(net, y, X.shape[1])
    with np.errstate(all="ignore"):
        A = net.predict_proba(X)
        C, _ = net.evaluate(X, y)
        snap = Snapshot(A.argmax(axis=0), A.copy(), _probabilities(A), float(C))
        if accuracy:
            Xs, ys = accuracy_sample(net.dtype)
            cost, acc = net.evaluate(Xs, ys)
            snap.accuracy, snap.sample_cost = float(acc), float(cost)
    return snap


@dataclass
class Steps:
    """The result of :func:`take_steps`."""

    net: Network  # the taught copy (the caller's network is untouched)
    alpha: float
    before: Snapshot  # with accuracy
    after: Snapshot  # with accuracy
    history: list[Snapshot] = field(default_factory=list)  # after each step (no accuracy)
    until: int | None = None  # the digit "step until it reads N" aimed at
    reached: bool | None = None  # whether it reads `until` (None without `until`)
    diverged: bool = False  # a weight became NaN or infinite: stepping stopped

    @property
    def steps(self) -> int:
        return len(self.history)


def step(net: Network, X: Any, y: Any, alpha: float) -> BackwardPass:
    """One gradient-descent step ``θ := θ - α dθ`` on ``net`` ITSELF, in place (seed 004 §7).

    The backward pass of :func:`backward_pass` fills every ``dWˡ``, ``dbˡ``; then each dense
    layer moves ``Wˡ := Wˡ - α dWˡ``, ``bˡ := bˡ - α dbˡ`` (what the ``GradientDescent``
    optimiser does). Returns the backward pass the step used. To leave a model alone, step a
    copy: :func:`take_steps` does.
    """
    alpha = check_alpha(alpha)
    bp = backward_pass(net, X, y)
    for layer in net.dense_layers:
        layer.W -= alpha * layer.dW  # Wˡ := Wˡ - α dWˡ
        layer.b -= alpha * layer.db  # bˡ := bˡ - α dbˡ
    return bp


def _finite(net: Network) -> bool:
    return all(
        np.isfinite(layer.W).all() and np.isfinite(layer.b).all() for layer in net.dense_layers
    )


def take_steps(
    net: Network,
    X: Any,
    y: Any,
    alpha: float,
    *,
    steps: int | None = None,
    until: int | None = None,
    accuracy: bool = True,
    before: Snapshot | None = None,
) -> Steps:
    """Gradient-descent steps ``θ := θ - α dθ`` on ``(X, y)``, on a COPY of ``net``.

    Takes ``steps`` steps (default 1); with ``until`` (a digit; ``steps`` then defaults to
    :data:`MAX_STEPS`), stops as soon as every example reads ``until`` ("step until it reads N"),
    or after ``steps`` steps. At most :data:`MAX_STEPS` steps per call; ``alpha`` must be
    positive, finite and at most :data:`MAX_ALPHA`. ``net`` and any file it came from never
    change: the steps move :func:`copy_network` of it, returned as ``Steps.net`` (step it again
    by passing that network back).

    ``before`` and ``after``: prediction, ``Aᴸ``, probabilities and cost on ``(X, y)``, and with
    ``accuracy`` the accuracy on the 1,000 test digits of :func:`accuracy_sample` (one step on
    one digit can cost accuracy elsewhere); ``history``: the snapshot after each step.
    ``before``, when given, is used as the snapshot before the steps instead of measuring it
    again (pass the previous call's ``after`` when stepping on from it: it saves one pass over
    the 1,000 digits).
    """
    alpha = check_alpha(alpha)
    if steps is None:
        steps = 1 if until is None else MAX_STEPS
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer):
        raise ConfigError(f"steps must be an integer; got {steps!r}.")
    if until is not None:
        if isinstance(until, bool) or not isinstance(until, int | np.integer):
            raise ConfigError(f"until must be a digit; got {until!r}.")
        if not 0 <= until < net.n_outputs:
            raise ConfigError(f"until must be a digit from 0 to {net.n_outputs - 1}; got {until}.")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(
            f"steps must be from 1 to {MAX_STEPS}; got {steps}.",
            f"at most {MAX_STEPS} steps in one go",
        )
    taught = copy_network(net)
    X = _columns(taught, X)
    y = _labels(taught, y, X.shape[1])
    if before is None or (accuracy and before.accuracy is None):
        before = snapshot(taught, X, y, accuracy=accuracy)
    result = Steps(net=taught, alpha=alpha, before=before, after=before, until=until)
    if until is not None and (before.prediction == until).all():
        result.reached = True
    else:
        with np.errstate(all="ignore"):
            for _ in range(steps):
                step(taught, X, y, alpha)
                if not _finite(taught):
                    result.diverged = True
                snap = snapshot(taught, X, y)
                result.history.append(snap)
                if result.diverged:
                    break
                if until is not None and (snap.prediction == until).all():
                    break
        if until is not None:
            result.reached = bool((result.history[-1].prediction == until).all())
    taught.release()
    result.after = snapshot(taught, X, y, accuracy=accuracy)
    return result


__all__ = [
    "GOOD",
    "MAX_ALPHA",
    "MAX_STEPS",
    "SAMPLE_STRIDE",
    "BackwardPass",
    "DenseBackward",
    "GradientCheck",
    "LayerCheck",
    "ParamCheck",
    "Snapshot",
    "Steps",
    "accuracy_sample",
    "backward_pass",
    "check_alpha",
    "copy_network",
    "gradient_check",
    "inference_view",
    "most_affected_unit",
    "official_test_digit",
    "snapshot",
    "step",
    "take_steps",
]
