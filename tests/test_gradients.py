"""Finite-difference gradient checks, in float64, for every layer, both costs and whole networks.

The per-example convention of :mod:`digitnet.layers` is what is checked: for a lone layer the
scalar objective is ``f = 1/m Σ R ⊙ layer.forward(A)`` with a fixed random ``R`` (so the upstream
per-example gradient is ``R``), and the returned ``dA_prev`` must equal ``m · ∂f/∂A_prev``; the
parameter gradients ``dW``, ``db`` must equal ``∂f/∂W``, ``∂f/∂b`` exactly (no factor ``m``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradutil import (
    HIDDEN_ACTIVATIONS,
    assert_grad_close,
    away_from_zero,
    backprop,
    hidden_preactivations,
    log_softmax_ref,
    make_data,
    numerical_gradient,
    one_hot,
    reference_cost,
    reset_dropout,
    softmax_ref,
)

from digitnet.activations import (
    Arctan,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    log_softmax,
)
from digitnet.costs import CrossEntropy, MeanSquaredError
from digitnet.layers import Dense, Dropout
from digitnet.network import Network

M = 7  # examples per batch
SPEC = "6-5-4-3"


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


# -- Dense ------------------------------------------------------------------------------------


def test_dense_gradients_dW_db_dA_prev():
    rng = np.random.default_rng(10)
    n_in, n_out = 6, 4
    layer = Dense(rng.normal(0, 0.5, (n_out, n_in)), rng.normal(0, 0.5, (n_out, 1)))
    A = rng.normal(0.0, 1.0, (n_in, M))

    dA_prev, numeric_dA, f, _ = lone_layer_gradients(layer, A, rng)
    dW, db = layer.dW.copy(), layer.db.copy()
    assert_grad_close(dA_prev, numeric_dA, "Dense dA_prev (= m·∂f/∂A_prev)")
    # dW, db are exactly ∂f/∂W, ∂f/∂b: the 1/m is inside them
    assert_grad_close(dW, numerical_gradient(f, layer.W), "Dense dW")
    assert_grad_close(db, numerical_gradient(f, layer.b), "Dense db")
    assert dW.shape == (n_out, n_in)
    assert db.shape == (n_out, 1)


def test_dense_first_layer_skips_dA_prev_but_keeps_dW_db():
    rng = np.random.default_rng(11)
    layer = Dense(rng.normal(0, 0.5, (3, 5)), rng.normal(0, 0.5, (3, 1)))
    A = rng.normal(0.0, 1.0, (5, M))
    R = rng.normal(0.0, 1.0, (3, M))

    def f() -> float:
        return float(np.sum(R * layer.forward(A, training=True)) / M)

    layer.needs_input_grad = False
    layer.forward(A, training=True)
    assert layer.backward(R) is None
    assert_grad_close(layer.dW, numerical_gradient(f, layer.W), "Dense dW (no dA_prev)")
    assert_grad_close(layer.db, numerical_gradient(f, layer.b), "Dense db (no dA_prev)")


# -- activations ------------------------------------------------------------------------------


def _kinked(rng, shape):
    # ReLU-like layers: keep |Z| > 1e-3 so the FD step never crosses the kink at 0
    return away_from_zero(rng, shape, scale=1.0, margin=1e-2)


def _smooth(rng, shape):
    return rng.normal(0.0, 2.0, shape)


ACTIVATION_CASES = [
    pytest.param(ReLU, _kinked, id="relu"),
    pytest.param(LeakyReLU, _kinked, id="leaky_relu"),
    pytest.param(lambda: LeakyReLU(slope=0.3), _kinked, id="leaky_relu_0.3"),
    pytest.param(Sigmoid, _smooth, id="sigmoid"),
    pytest.param(Tanh, _smooth, id="tanh"),
    pytest.param(Arctan, _smooth, id="arctan"),
    pytest.param(Identity, _smooth, id="identity"),
    pytest.param(Softmax, _smooth, id="softmax"),
]


@pytest.mark.parametrize(("make_layer", "make_input"), ACTIVATION_CASES)
def test_activation_gradient(make_layer, make_input):
    rng = np.random.default_rng(20)
    layer = make_layer()
    Z = make_input(rng, (4, M))
    if isinstance(layer, (ReLU, LeakyReLU)):
        assert np.min(np.abs(Z)) > 1e-3
        assert (Z > 0).any() and (Z < 0).any()  # both branches of the kink are exercised
    dZ, numeric, _, _ = lone_layer_gradients(layer, Z, rng)
    assert_grad_close(dZ, numeric, f"{type(layer).__name__} dZ (= m·∂f/∂Z)")


# -- dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_gradient_with_fixed_mask(p):
    rng = np.random.default_rng(30)
    layer = Dropout(p)
    A = rng.normal(0.0, 1.0, (8, M))

    def reset():
        layer.rng = np.random.default_rng(0)

    dA_prev, numeric, _, _ = lone_layer_gradients(layer, A, rng, reset=reset)
    mask = layer.mask
    # the check means something only if some units are dropped and some kept
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    np.testing.assert_array_equal(np.unique(mask), [0.0, 1.0 / (1.0 - p)])
    assert_grad_close(dA_prev, numeric, f"Dropout(p={p}) dA_prev")


# -- costs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 10])
def test_mse_gradient_is_per_example(n):
    rng = np.random.default_rng(40 + n)
    cost = MeanSquaredError()
    A = rng.normal(0.0, 1.0, (n, M))
    Y = one_hot(rng.integers(0, n, M), n)

    def f() -> float:
        return cost.value(A, Y)

    assert f() == pytest.approx(np.mean((A - Y) ** 2), rel=1e-12)
    grad = cost.gradient(A, Y)
    assert_grad_close(grad, M * numerical_gradient(f, A), "MSE gradient (= m·∂C/∂A)")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_gradient_is_per_example(smoothing):
    rng = np.random.default_rng(50)
    cost = CrossEntropy(label_smoothing=smoothing)
    n = 4
    A = softmax_ref(rng.normal(0.0, 1.0, (n, M)))  # positive entries, as the cost needs
    Y = cost.targets(rng.integers(0, n, M), n)

    def f() -> float:
        return cost.value(A, Y)

    assert f() == pytest.approx(-np.sum(Y * np.log(A)) / M, rel=1e-12)
    grad = cost.gradient(A, Y)
    assert_grad_close(grad, M * numerical_gradient(f, A), "CrossEntropy gradient (= m·∂C/∂A)")


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_fused_dZ_through_softmax(smoothing):
    rng = np.random.default_rng(60)
    cost = CrossEntropy(label_smoothing=smoothing)
    n = 5
    Z = rng.normal(0.0, 2.0, (n, M))
    y = rng.integers(0, n, M)
    Y = cost.targets(y, n)
    np.testing.assert_allclose(Y, one_hot(y, n, smoothing), rtol=0, atol=1e-15)

    def f() -> float:
        return cost.value(softmax_ref(Z), Y, log_softmax_ref(Z))

    A = Softmax().forward(Z.copy())
    dZ = cost.dZ(A, Y)
    assert_grad_close(dZ, M * numerical_gradient(f, Z), "CrossEntropy.dZ (= m·∂C/∂Z)")
    # the unfused chain (cost gradient, then softmax's own backward) gives the same dZ
    softmax = Softmax()
    softmax.forward(Z.copy(), training=True)
    chained = softmax.backward(cost.gradient(A, Y))
    np.testing.assert_allclose(chained, dZ, rtol=1e-9, atol=1e-12)
    # and the library's log-softmax is the exact one
    np.testing.assert_allclose(log_softmax(Z), log_softmax_ref(Z), rtol=1e-13, atol=1e-13)


# -- whole networks ---------------------------------------------------------------------------

COST_CASES = [
    pytest.param("cross_entropy", "softmax", 0.0, id="ce-softmax"),
    pytest.param("cross_entropy", "softmax", 0.1, id="ce-softmax-smooth0.1"),
    pytest.param("mse", "sigmoid", 0.0, id="mse-sigmoid"),
    pytest.param("mse", "identity", 0.0, id="mse-identity"),
    pytest.param("mse", "softmax", 0.0, id="mse-softmax"),
]


def build_network(activation, cost, output, smoothing=0.0, dropout=0.0, seed=0):
    rng = np.random.default_rng(1000 + seed)
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
    for layer in net.dense_layers:  # non-zero biases (He/Glorot start them at 0)
        layer.b += rng.normal(0.0, 0.1, layer.b.shape)
    X, y = make_data(rng, net.n_inputs, net.n_outputs, M)
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


@pytest.mark.parametrize(("cost", "output", "smoothing"), COST_CASES)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_network_gradients(activation, cost, output, smoothing):
    net, X, Y = build_network(activation, cost, output, smoothing)
    check_network_gradients(net, X, Y, f"{activation}/{cost}/{output}")


@pytest.mark.parametrize(("cost", "output", "smoothing"), COST_CASES[::2])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_network_gradients_with_dropout(activation, cost, output, smoothing):
    net, X, Y = build_network(activation, cost, output, smoothing, dropout=0.3, seed=3)
    assert sum(isinstance(layer, Dropout) for layer in net.layers) == 2
    check_network_gradients(net, X, Y, f"dropout {activation}/{cost}/{output}")


def test_inference_between_forward_and_backward_keeps_the_dropout_mask():
    """``predict_proba`` "keeps no state" (its docstring): a prediction made between a training
    forward pass and ``backward`` must not change the gradients. Dense, ReLU and Softmax keep
    their training values through inference; Dropout must keep its mask too.
    """
    net, X, Y = build_network("relu", "cross_entropy", "softmax", dropout=0.5, seed=5)
    expected = backprop(net, X, Y)

    reset_dropout(net)
    A = net.forward(X, training=True)
    net.predict_proba(X)  # e.g. logging the batch's predictions, or another thread predicting
    net.backward(A, Y)
    for name, _, dtheta in net.parameters():
        np.testing.assert_allclose(dtheta, expected[name], rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize(("cost", "output", "smoothing"), COST_CASES)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_network_cost_value_matches_reference(activation, cost, output, smoothing):
    net, X, Y = build_network(activation, cost, output, smoothing)
    A = net.forward(X, training=True)
    value = net.cost_value(A, Y, net.log_output())
    assert value == pytest.approx(reference_cost(net, X, Y), rel=1e-12)


# -- numerical stability ----------------------------------------------------------------------


def _strict():
    """Every NumPy floating-point error raises, and every warning is an error.

    Underflow is the exception: ``e^(-2000)`` rounding to 0 is the correct float answer (NumPy
    ignores underflow by default), and softmax at logits of ±1000 must produce it.
    """
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stable_at_logits_of_1000(dtype):
    # logits Z = W·x + b = (1000, -1000, 0) for x = 1 and their negatives for x = -1
    W = np.array([[1000.0], [-1000.0], [0.0]], dtype=dtype)
    net = Network([Dense(W, np.zeros((3, 1), dtype=dtype)), Softmax()], "cross_entropy")
    X = np.array([[1.0, -1.0, 1.0]], dtype=dtype)
    y = np.array([1, 1, 0])  # confidently wrong, confidently right, confidently right
    Y = net.targets(y).astype(dtype)
    Z64 = (W.astype(np.float64) @ X.astype(np.float64)).astype(np.float64)
    per_example = -log_softmax_ref(Z64)[y, np.arange(3)]
    assert per_example[0] == pytest.approx(2000.0, rel=1e-12)  # log-sum-exp 1000 minus -1000
    expected = float(per_example.mean())
    with warnings.catch_warnings(), _strict():
        warnings.simplefilter("error")
        A = net.forward(X, training=True)
        value = net.cost_value(A, Y, net.log_output())
        clipped = net.cost_value(A, Y)  # without the logits: clipped at log(tiny), still finite
        net.backward(A, Y)
        eval_cost, eval_acc = net.evaluate(X, y)
        wrong_only = Network(
            [Dense(W, np.zeros((3, 1), dtype=dtype)), Softmax()], "cross_entropy"
        ).evaluate(X[:, :1], y[:1])[0]
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)
    assert eval_cost == pytest.approx(expected, rel=1e-6)
    assert wrong_only == pytest.approx(2000.0, rel=1e-6)
    assert eval_acc == pytest.approx(2 / 3)
    assert np.isfinite(clipped) and clipped > 0
    dW, db = net.dense_layers[0].dW, net.dense_layers[0].db
    assert np.all(np.isfinite(dW)) and np.all(np.isfinite(db))
    dZ = softmax_ref(Z64) - Y.astype(np.float64)
    np.testing.assert_allclose(dW, dZ @ X.T.astype(np.float64) / 3, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, dZ.mean(axis=1, keepdims=True), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse_with_sigmoid_stable_at_1000(dtype):
    W = np.array([[1000.0], [-1000.0]], dtype=dtype)
    net = Network([Dense(W, np.zeros((2, 1), dtype=dtype)), Sigmoid()], "mse")
    X = np.array([[1.0, -1.0]], dtype=dtype)
    y = np.array([1, 1])
    Y = net.targets(y).astype(dtype)
    Z = W.astype(np.float64) @ X.astype(np.float64)
    with np.errstate(under="ignore"):  # the reference σ(z) = e^(-log(1 + e^(-z))), not under test
        A_ref = np.exp(-np.logaddexp(0.0, -Z))
    expected = float(np.mean((A_ref - Y) ** 2))
    assert expected == pytest.approx(0.5)  # column 0 wrong on both outputs, column 1 right
    with warnings.catch_warnings(), _strict():
        warnings.simplefilter("error")
        A = net.forward(X, training=True)
        value = net.cost_value(A, Y, net.log_output())
        net.backward(A, Y)
        eval_cost, _ = net.evaluate(X, y)
    np.testing.assert_array_equal(A, A_ref.astype(dtype))  # exactly 0 and 1, no NaN
    assert value == pytest.approx(expected, rel=1e-12)
    assert eval_cost == pytest.approx(expected, rel=1e-12)
    dW, db = net.dense_layers[0].dW, net.dense_layers[0].db
    assert np.all(np.isfinite(dW)) and np.all(np.isfinite(db))
    # saturated sigmoid: σ'(±1000) = σ(1-σ) is 0 in floating point, so are the gradients
    dZ = 2.0 / 2 * (A_ref - Y) * A_ref * (1.0 - A_ref)
    np.testing.assert_allclose(dW, dZ @ X.T.astype(np.float64) / 2, rtol=0, atol=1e-30)
    np.testing.assert_allclose(db, dZ.mean(axis=1, keepdims=True), rtol=0, atol=1e-30)
