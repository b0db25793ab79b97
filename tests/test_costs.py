"""costs.py: cross-entropy and MSE, their per-example gradients, dZ = A - Y, and stability.

Checked against finite differences and PyTorch; and at logits of ±1000, where a careless
implementation takes log 0 or overflows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradutil import (
    M,
    assert_grad_close,
    log_softmax_ref,
    numerical_gradient,
    one_hot,
    softmax_ref,
    strict_float_errors,
)

from digitnet.activations import Sigmoid, Softmax, log_softmax
from digitnet.costs import COSTS, CrossEntropy, MeanSquaredError, get_cost
from digitnet.errors import ConfigError
from digitnet.layers import Dense
from digitnet.network import Network


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


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_costs_match_torch(smoothing):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(70)
    Z = rng.normal(0.0, 3.0, (10, M))
    y = rng.integers(0, 10, M)
    ce = CrossEntropy(label_smoothing=smoothing)
    value = ce.value(softmax_ref(Z), ce.targets(y, 10), log_softmax(Z))
    reference = F.cross_entropy(torch.tensor(Z.T), torch.tensor(y), label_smoothing=smoothing)
    assert value == pytest.approx(float(reference), rel=1e-12)
    A, Y = rng.random((10, M)), one_hot(y, 10)
    # torch's mse_loss is the mean over all n·m entries: C = 1/m Σ_j 1/n Σ_i (A_ij - Y_ij)²
    mse = F.mse_loss(torch.tensor(A), torch.tensor(Y))
    assert MeanSquaredError().value(A, Y) == pytest.approx(float(mse), rel=1e-12)


def test_cost_names():
    assert isinstance(get_cost("ce"), CrossEntropy)
    assert isinstance(get_cost("MSE"), MeanSquaredError)
    assert set(COSTS) == {"cross_entropy", "ce", "mse"}
    with pytest.raises(ConfigError, match="cost must be one of"):
        get_cost("hinge")
    with pytest.raises(ConfigError, match="label_smoothing"):
        CrossEntropy(label_smoothing=1.0)


# -- numerical stability ----------------------------------------------------------------------


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
    with warnings.catch_warnings(), strict_float_errors():
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
    with warnings.catch_warnings(), strict_float_errors():
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
