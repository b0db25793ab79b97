"""The network: layers in order, a cost at the end, and the two passes through them.

Forward (seeds 000-002): ``A⁰ = X``, then for each layer ``Zˡ = Wˡ·Aˡ⁻¹ + bˡ`` and ``Aˡ = g(Zˡ)``.
Backward (seed 004 §5-§6): start from the cost's gradient at the output and hand each layer the
gradient with respect to its output, from the last layer to the first. With softmax and
cross-entropy the first step is the seeds' fused ``dZᴸ = Aᴸ - Y``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from digitnet.activations import Softmax, get_activation, log_softmax
from digitnet.costs import Cost, CrossEntropy, get_cost
from digitnet.errors import ConfigError, ShapeError
from digitnet.init import get_initialiser
from digitnet.layers import Dense, Dropout, Layer

if TYPE_CHECKING:
    from digitnet.train.loop import History


def parse_spec(spec: str | Sequence[int]) -> list[int]:
    """``"784-16-16-10"`` -> ``[784, 16, 16, 10]``: the neurons of each layer, input first."""
    if isinstance(spec, str):
        parts = spec.replace(",", "-").replace("x", "-").split("-")
        try:
            sizes = [int(p) for p in parts if p.strip()]
        except ValueError:
            raise ConfigError(
                f"The layer spec must be sizes joined by '-', such as '784-16-16-10'; got {spec!r}."
            ) from None
    else:
        sizes = [int(s) for s in spec]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ConfigError(
            f"The layer spec needs at least an input and an output size, all positive, such as "
            f"'784-16-16-10'; got {spec!r}."
        )
    return sizes


def seed_name(symbol: str, layer: int) -> str:
    """The seeds' name of a quantity of dense layer ``layer`` (counted from 1, as seeds 000-002).

    ``seed_name("W", 1)`` is ``"W1"``; ``"b"``, ``"Z"``, ``"A"``, ``"dW"``, ``"db"``, ``"dZ"`` alike
    (``A0`` is the input ``X``). The one place these names are made: parameters, model files,
    checkpoints, the page and the terminal all name layers through it.
    """
    return f"{symbol}{layer}"


class Parameter(tuple[str, np.ndarray, np.ndarray]):
    """A parameter of the network: the tuple ``(name, θ, dθ)``, and whether it is a weight.

    ``name`` is the seeds' name (``W1``, ``b1``, ...); ``theta`` the array the optimiser moves;
    ``dtheta`` the array backward fills; ``is_weight`` is True for a weight matrix ``W`` (weight
    decay applies to it) and False for a bias ``b``.
    """

    is_weight: bool

    def __new__(cls, name: str, theta: np.ndarray, dtheta: np.ndarray, is_weight: bool):
        self = super().__new__(cls, (name, theta, dtheta))
        self.is_weight = bool(is_weight)
        return self

    @property
    def name(self) -> str:
        return self[0]

    @property
    def theta(self) -> np.ndarray:
        return self[1]

    @property
    def dtheta(self) -> np.ndarray:
        return self[2]


_DEFAULT_INIT = {"relu": "he", "leaky_relu": "he", "identity": "glorot"}


#: the floating-point types a network computes in
DTYPES = ("float32", "float64")


def _resolve_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in DTYPES:
        raise ConfigError(f"The dtype must be float32 or float64; got {dtype!r}.")
    return dt


class Network:
    """A stack of layers, each with its own forward and backward (seed 004), and a cost.

    Build one from a spec string::

        net = Network.from_spec("784-16-16-10", activation="relu", cost="cross_entropy", seed=0)

    or from layers you choose::

        net = Network([Dense(W1, b1), ReLU(), Dense(W2, b2), Softmax()], cost="cross_entropy")

    Inputs are ``(784, m)``: one example per column, as in the seeds. ``predict_proba`` returns
    ``(10, m)`` probabilities; ``predict`` the ``m`` digits.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        cost: str | Cost = "cross_entropy",
        *,
        dtype: Any = None,
    ) -> None:
        layers = list(layers)
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        if not dense:
            raise ConfigError("A network needs at least one Dense layer.")
        self.dtype = _resolve_dtype(dtype if dtype is not None else dense[0].W.dtype)
        for layer in dense:
            if layer.W.dtype != self.dtype:
                layer.astype(self.dtype)
        n = self.n_inputs = dense[0].n_in
        for layer in layers:
            n = layer.output_size(n)
        self.n_outputs = n
        self.layers = layers
        self.cost = get_cost(cost)
        if isinstance(self.cost, CrossEntropy) and not isinstance(layers[-1], Softmax):
            raise ConfigError(
                "Cross-entropy needs a softmax output layer (its A must be probabilities); "
                f"the last layer is {layers[-1]!r}.",
                "use output='softmax', or the mse cost for other outputs",
            )
        # The first dense layer's input is the data: nobody needs dA⁰ = W¹ᵀ·dZ¹.
        first_dense = next(i for i, layer in enumerate(layers) if isinstance(layer, Dense))
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense):
                layer.needs_input_grad = i != first_dense
        # Softmax + cross-entropy: backpropagation starts at dZᴸ = Aᴸ - Y (seeds 000-002).
        self.fused = isinstance(self.cost, CrossEntropy) and isinstance(layers[-1], Softmax)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_spec(
        cls,
        spec: str | Sequence[int],
        *,
        activation: str = "relu",
        output: str | None = None,
        cost: str | Cost = "cross_entropy",
        init: str | None = None,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        label_smoothing: float = 0.0,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ) -> Network:
        """A network ``Dense, g, Dense, g, ..., Dense, output`` from sizes like ``784-16-16-10``.

        ``activation`` is the hidden layers' ``g``; ``output`` defaults to softmax for
        cross-entropy and sigmoid for MSE; ``init`` defaults to He for ReLU-like hidden layers
        and Glorot otherwise; ``dropout`` > 0 adds inverted dropout after each hidden layer, and
        ``input_dropout`` > 0 on the pixels (Srivastava et al. 2014 use 0.2 on the input, 0.5 on
        hidden units).
        """
        sizes = parse_spec(spec)
        cost_obj = get_cost(cost)
        if label_smoothing:
            if not isinstance(cost, str) or not isinstance(cost_obj, CrossEntropy):
                raise ConfigError(
                    f"label_smoothing applies to the cross-entropy cost given by name; "
                    f"got cost={cost!r}.",
                    "use cost='cross_entropy', or CrossEntropy(label_smoothing=...) itself",
                )
            cost_obj = CrossEntropy(label_smoothing)
        if output is None:
            output = "softmax" if isinstance(cost_obj, CrossEntropy) else "sigmoid"
        hidden_kind = get_activation(activation).kind
        init_fn = get_initialiser(init or _DEFAULT_INIT.get(hidden_kind, "glorot"))
        dt = _resolve_dtype(dtype)
        if rng is None:
            rng = np.random.default_rng(seed)
        init_rng, dropout_rng = rng.spawn(2)
        layers: list[Layer] = []
        if input_dropout:
            layers.append(Dropout(input_dropout, dropout_rng))
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            W, b = init_fn(init_rng, n_in, n_out)
            layers.append(Dense(W.astype(dt), b.astype(dt)))
            if i < len(sizes) - 2:
                layers.append(get_activation(activation))
                if dropout:
                    layers.append(Dropout(dropout, dropout_rng))
            else:
                layers.append(get_activation(output))
        return cls(layers, cost_obj, dtype=dt)

    # -- introspection -----------------------------------------------------------------------
    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def parameters(self) -> list[Parameter]:
        """Every parameter with its gradient, named as in the seeds: W1, b1, W2, b2, ...

        Each unpacks as ``(name, θ, dθ)``; ``dθ`` is the array backward fills in place.
        """
        out = []
        for l_index, layer in enumerate(self.dense_layers, start=1):
            out.append(Parameter(seed_name("W", l_index), layer.W, layer.dW, is_weight=True))
            out.append(Parameter(seed_name("b", l_index), layer.b, layer.db, is_weight=False))
        return out

    @property
    def n_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.parameters())

    def architecture(self) -> list[dict[str, Any]]:
        """The layers as plain dictionaries (what a model file records)."""
        return [layer.config() for layer in self.layers]

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], cost={self.cost!r}, dtype={self.dtype.name})"

    # -- the passes --------------------------------------------------------------------------
    def check_input(self, X: np.ndarray) -> np.ndarray:
        """``X`` as this network takes it: ``(n_inputs, m)`` in its dtype; else a ShapeError."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.n_inputs:
            raise ShapeError(
                f"X must have shape ({self.n_inputs}, m), one example per column; got {X.shape}.",
                "for images as rows (m, 784), pass X.T",
            )
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        return X

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """``A⁰ = X``; ``Aˡ = layer(Aˡ⁻¹)`` for each layer; returns the output ``Aᴸ``.

        With ``training=True`` the layers keep what ``backward`` needs and reuse their buffers
        (the returned array is one of them: copy it to keep it past the next step).
        """
        A = X
        for layer in self.layers:
            A = layer.forward(A, training)
        return A

    def backward(self, A: np.ndarray, Y: np.ndarray) -> None:
        """Fill every layer's ``dW``, ``db`` from the output ``A`` of the last forward pass."""
        self.backpropagate(self.output_gradient(A, Y))

    def output_gradient(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Where backpropagation starts: ``dZᴸ = Aᴸ - Y`` when fused, else ``∂ℓ/∂Aᴸ``."""
        if self.fused:
            return self.cost.dZ(A, Y)  # dZᴸ = Aᴸ - Y (seeds 000-002)
        return self.cost.gradient(A, Y)  # ∂ℓ/∂Aᴸ per example

    def backpropagate(self, grad: np.ndarray) -> None:
        """Hand ``grad`` (from :meth:`output_gradient`) back through the layers, last first.

        With softmax and cross-entropy ``grad`` is already ``dZᴸ``, so the softmax layer's own
        backward is skipped. Each layer's ``backward`` turns the gradient at its output into the
        gradient at its input (seed 004 §5: ``∂C/∂X⁽ᴸ⁾ = ∂C/∂Y⁽ᴸ⁻¹⁾``) and leaves ``dW``, ``db``
        beside ``W``, ``b``; the first dense layer returns None (nobody needs ``dA⁰``).
        """
        for layer in self.backward_layers():
            grad = layer.backward(grad)
            if grad is None:  # the first dense layer: dA⁰ is not needed
                break

    def backward_layers(self) -> list[Layer]:
        """The layers backpropagation goes through, last first: all of them, but softmax when
        its gradient is already in ``dZᴸ = Aᴸ - Y`` (:attr:`fused`)."""
        rest = self.layers[:-1] if self.fused else self.layers
        return rest[::-1]

    def log_output(self) -> np.ndarray | None:
        """``log Aᴸ`` from the last training forward pass, exactly, when the output is softmax."""
        last = self.layers[-1]
        return last.log_A() if isinstance(last, Softmax) else None

    def cost_value(self, A: np.ndarray, Y: np.ndarray, log_A: np.ndarray | None = None) -> float:
        return self.cost.value(A, Y, log_A)

    def targets(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The target matrix ``Y`` (one-hot columns, label-smoothed where the cost says), in the
        network's dtype (a float64 ``Y`` would make ``A - Y`` and every gradient float64)."""
        y = np.asarray(y)
        if out is None:
            out = np.empty((self.n_outputs, y.shape[0]), dtype=self.dtype)
        return self.cost.targets(y, self.n_outputs, out)

    # -- inference ---------------------------------------------------------------------------
    def _chunks(self, X: np.ndarray, batch_size: int):
        m = X.shape[1]
        for start in range(0, m, batch_size):
            yield start, X[:, start : start + batch_size]

    def predict_proba(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """The output ``Aᴸ`` for each column of ``X``: ``(n_outputs, m)``, in chunks of columns.

        Inference allocates its own arrays and keeps no state, so it is safe from several threads.
        """
        X = self.check_input(X)
        out = np.empty((self.n_outputs, X.shape[1]), dtype=self.dtype)
        with np.errstate(over="ignore", under="ignore"):
            for start, Xc in self._chunks(X, batch_size):
                out[:, start : start + Xc.shape[1]] = self.forward(Xc)
        return out

    def predict(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """The predicted class of each column of ``X``: ``argmax Aᴸ`` (``(m,)`` integers)."""
        return self.predict_proba(X, batch_size).argmax(axis=0)

    def evaluate(self, X: np.ndarray, y: np.ndarray, batch_size: int = 8192) -> tuple[float, float]:
        """``(cost, accuracy)`` on labelled data, at inference (no dropout)."""
        X = self.check_input(X)
        y = np.asarray(y)
        total, correct = 0.0, 0
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for start, Xc in self._chunks(X, batch_size):
                Z = self._output_logits(Xc)
                A = self.layers[-1].forward(Z)
                yc = y[start : start + Xc.shape[1]]
                Y = self.targets(yc, out=np.empty_like(A))
                log_A = log_softmax(Z) if self.fused else None
                total += self.cost.value(A, Y, log_A) * Xc.shape[1]
                correct += int(np.count_nonzero(A.argmax(axis=0) == yc))
        m = X.shape[1]
        return total / m, correct / m

    def _output_logits(self, X: np.ndarray) -> np.ndarray:
        """The input of the last layer (for softmax: the logits ``Zᴸ``), at inference."""
        A = X
        for layer in self.layers[:-1]:
            A = layer.forward(A)
        return A

    # -- training ----------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, options: Any = None, **kwargs: Any) -> History:
        """Train on ``X`` (``(784, m)``) and labels ``y``, with a
        :class:`~digitnet.train.loop.FitOptions` or its settings as keywords (``epochs=5``);
        see :func:`digitnet.train.fit`."""
        from digitnet.train.loop import fit

        return fit(self, X, y, options, **kwargs)

    def release(self) -> None:
        """Free the training buffers of every layer."""
        for layer in self.layers:
            layer.release()
