"""Shared helpers for the gradient, PyTorch-parity and seed-formula tests.

Plain functions, no fixtures: the test modules import them with ``from gradutil import ...``
(pytest puts ``tests/`` on ``sys.path`` because it has no ``__init__.py``).

Conventions (see the docstring of :mod:`digitnet.layers`): the gradients that flow backwards are
per-example, so a layer's returned ``dA_prev`` is ``m · ∂C/∂A_prev`` for the mean cost ``C``,
while ``dW`` and ``db`` are exactly ``∂C/∂W`` and ``∂C/∂b``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from digitnet.activations import LeakyReLU, ReLU
from digitnet.layers import Dense, Dropout, Layer
from digitnet.network import Network

#: examples per batch, and the small network every whole-network test builds
M = 7
SPEC = "6-5-4-3"

#: central-difference step and the largest accepted relative error, both for float64
H = 1e-6
TOL = 1e-6

#: the hidden activations every whole-network test runs over
HIDDEN_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "arctan", "identity")

#: the seed reset into every Dropout layer before a forward pass, so that the mask is fixed
DROPOUT_SEED = 0


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / (‖a‖ + ‖b‖)`` over the whole array; 0 when both are 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = float(np.linalg.norm(a - b))
    den = float(np.linalg.norm(a) + np.linalg.norm(b))
    return num / max(den, np.finfo(np.float64).tiny)


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, name: str, tol: float = TOL):
    """Same shape, and a relative error below ``tol``."""
    analytic = np.asarray(analytic)
    assert analytic.shape == numeric.shape, (
        f"{name}: shape {analytic.shape} != numerical {numeric.shape}"
    )
    assert np.all(np.isfinite(analytic)), f"{name}: non-finite analytic gradient"
    err = rel_error(analytic, numeric)
    assert err < tol, (
        f"{name}: relative error {err:.3e} >= {tol:g}\nanalytic:\n{analytic}\nnumerical:\n{numeric}"
    )


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = H) -> np.ndarray:
    """``∂f/∂x`` by central differences, perturbing ``x`` in place (and restoring it).

    ``f`` takes no argument: it reads ``x`` (or an array that holds it) itself, which is how a
    network's ``W`` and ``b`` are perturbed where they live.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = float(x[i])
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0, margin: float = 1e-2
) -> np.ndarray:
    """Normal draws with ``|x| >= margin``: no ReLU kink within reach of the FD step."""
    x = rng.normal(0.0, scale, shape)
    small = np.abs(x) < margin
    x[small] = np.where(x[small] < 0, -margin, margin) * (1.0 + rng.random(int(small.sum())))
    return x


def reset_dropout(net_or_layers: Network | list[Layer], seed: int = DROPOUT_SEED) -> None:
    """Give every Dropout layer a fresh generator with ``seed``: the next mask is fixed."""
    layers = net_or_layers.layers if isinstance(net_or_layers, Network) else net_or_layers
    for layer in layers:
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(seed)


def softmax_ref(Z: np.ndarray) -> np.ndarray:
    """Column-wise softmax, written out here rather than taken from the library."""
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def log_softmax_ref(Z: np.ndarray) -> np.ndarray:
    shifted = Z - Z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def one_hot(y: np.ndarray, n: int, smoothing: float = 0.0) -> np.ndarray:
    """``(n, m)`` one-hot columns, optionally label-smoothed to ``(1-ε)Y + ε/n``."""
    Y = np.zeros((n, y.shape[0]))
    Y[y, np.arange(y.shape[0])] = 1.0
    return (1.0 - smoothing) * Y + smoothing / n


def reference_cost(net: Network, X: np.ndarray, Y: np.ndarray) -> float:
    """The network's mean cost computed here, independently of :mod:`digitnet.costs`.

    The layers are run one by one (Dropout layers in training mode with a reset generator, so
    with the fixed mask; every other layer at inference). Cross-entropy is taken from the
    log-softmax of the last layer's input, MSE is ``mean((A - Y)²)`` over all elements.
    """
    reset_dropout(net)
    A = X
    for layer in net.layers[:-1]:
        A = layer.forward(A, training=isinstance(layer, Dropout))
    m = X.shape[1]
    if net.cost.kind == "cross_entropy":
        return float(-np.sum(Y * log_softmax_ref(A)) / m)
    A = net.layers[-1].forward(A)
    return float(np.mean((A - Y) ** 2))


def hidden_preactivations(net: Network, X: np.ndarray) -> list[np.ndarray]:
    """``Zˡ`` of every Dense layer but the last (the inputs of the hidden activations)."""
    reset_dropout(net)
    out = []
    A = X
    dense = net.dense_layers
    for layer in net.layers:
        A = layer.forward(A, training=isinstance(layer, Dropout))
        if isinstance(layer, Dense) and layer is not dense[-1]:
            out.append(A.copy())
    return out


def backprop(net: Network, X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    """One training forward and ``Network.backward``; copies of every ``dθ`` by name."""
    reset_dropout(net)
    A = net.forward(X, training=True)
    net.backward(A, Y)
    return {name: d.copy() for name, _, d in net.parameters()}


def make_data(
    rng: np.random.Generator, n_in: int, n_out: int, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X`` ``(n_in, m)`` and integer labels ``y`` ``(m,)`` with every class present."""
    X = rng.normal(0.0, 1.0, (n_in, m))
    y = np.arange(m) % n_out
    rng.shuffle(y)
    return X, y


def lone_layer_gradients(layer, A, rng, reset=None):
    """``(analytic dA_prev, m·∂f/∂A_prev)`` for ``f = 1/m Σ R ⊙ layer.forward(A)``.

    ``reset`` (if given) is called before every forward pass: it fixes a dropout mask.
    """
    reset = reset or (lambda: None)
    m = A.shape[1]
    reset()
    R = rng.normal(0.0, 1.0, layer.forward(A, training=True).shape)

    def f() -> float:
        reset()
        return float(np.sum(R * layer.forward(A, training=True)) / m)

    numeric = m * numerical_gradient(f, A)
    reset()
    layer.forward(A, training=True)
    analytic = layer.backward(R.copy())
    return np.array(analytic, copy=True), numeric, f, R


def kinked(rng, shape):
    # ReLU-like layers: keep |Z| > 1e-3 so the FD step never crosses the kink at 0
    return away_from_zero(rng, shape, scale=1.0, margin=1e-2)


def smooth(rng, shape):
    return rng.normal(0.0, 2.0, shape)


#: (cost, output, label smoothing) of the whole-network tests
COST_CASES = [
    pytest.param("cross_entropy", "softmax", 0.0, id="ce-softmax"),
    pytest.param("cross_entropy", "softmax", 0.1, id="ce-softmax-smooth0.1"),
    pytest.param("mse", "sigmoid", 0.0, id="mse-sigmoid"),
    pytest.param("mse", "identity", 0.0, id="mse-identity"),
    pytest.param("mse", "softmax", 0.0, id="mse-softmax"),
]


def small_network(activation, cost, output, smoothing, dropout, seed, rng, bias_sd):
    """The SPEC network in float64 with non-zero biases (He/Glorot start them at 0), and a
    batch of M examples for it: ``(net, X, y)``."""
    net = Network.from_spec(
        SPEC,
        activation=activation,
        output=output,
        cost=cost,
        label_smoothing=smoothing,
        dropout=dropout,
        dtype=np.float64,
        seed=seed,
    )
    for layer in net.dense_layers:
        layer.b += rng.normal(0.0, bias_sd, layer.b.shape)
    X, y = make_data(rng, net.n_inputs, net.n_outputs, M)
    return net, X, y


def build_network(activation, cost, output, smoothing=0.0, dropout=0.0, seed=0):
    rng = np.random.default_rng(1000 + seed)
    net, X, y = small_network(activation, cost, output, smoothing, dropout, seed, rng, 0.1)
    Y = net.targets(y)
    np.testing.assert_allclose(Y, one_hot(y, net.n_outputs, smoothing), rtol=0, atol=1e-15)
    return net, X, Y


def check_network_gradients(net, X, Y, label):
    if any(isinstance(layer, (ReLU, LeakyReLU)) for layer in net.layers):
        # no hidden pre-activation within reach of the FD step (else pick another seed)
        assert min(np.min(np.abs(Z)) for Z in hidden_preactivations(net, X)) > 1e-4
    analytic = backprop(net, X, Y)
    assert set(analytic) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    for name, theta, _ in net.parameters():
        numeric = numerical_gradient(lambda: reference_cost(net, X, Y), theta)
        assert np.linalg.norm(numeric) > 1e-8, f"{label} {name}: vanishing gradient, no test"
        assert_grad_close(analytic[name], numeric, f"{label} {name}")


def strict_float_errors():
    """Every NumPy floating-point error raises, and every warning is an error.

    Underflow is the exception: ``e^(-2000)`` rounding to 0 is the correct float answer (NumPy
    ignores underflow by default), and softmax at logits of ±1000 must produce it.
    """
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")
