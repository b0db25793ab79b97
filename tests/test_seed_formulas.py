"""The seeds' closed-form formulas, written out in plain NumPy, against the generic layer stack.

Seeds 000-002 give the two-layer (and seed 000 the three-layer) ReLU + softmax network with its
backpropagation spelled out matrix by matrix; seeds 003-004 give the sigmoid + MSE chain rule.
Each test below copies those formulas as the seeds write them, then checks that
``Network.from_spec`` + ``Network.backward`` + ``GradientDescent`` compute the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.activations import ReLU, Softmax
from digitnet.network import Network
from digitnet.optim import GradientDescent

RTOL = 1e-12
ATOL = 1e-15
ALPHA = 0.1


def close(actual, desired, rtol=RTOL, atol=ATOL, name=""):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=name)


def mnist_like(rng, m):
    """``X`` (784 x m) of pixels scaled to [0, 1], and labels ``y`` (m,) with every digit."""
    X = rng.integers(0, 256, (784, m)) / 255.0
    y = np.arange(m) % 10
    rng.shuffle(y)
    return X, y


def one_hot_seed(y):
    """Seeds 000-002: "y is matrix representing the labels through one-hot encoding" (10 x m)."""
    Y = np.zeros((y.size, 10))
    Y[np.arange(y.size), y] = 1
    return Y.T


# the seeds' g and g' for the hidden layers, and their softmax (no max-shift, as the tutorials)
def relu(Z):
    return np.maximum(Z, 0)


def relu_prime(Z):
    return Z > 0


def softmax(Z):
    return np.exp(Z) / np.sum(np.exp(Z), axis=0, keepdims=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def params_copy(net):
    return {name: theta.copy() for name, theta, _ in net.parameters()}


def grads_copy(net):
    return {name: dtheta.copy() for name, _, dtheta in net.parameters()}


# -- seeds 001 and 002: 784-10-10, ReLU then softmax -----------------------------------------


def seed_two_layer_step(P, X, Y, alpha):
    """One iteration exactly as seeds 001-002 write it; returns the cache, grads, new params."""
    W1, b1, W2, b2 = P["W1"], P["b1"], P["W2"], P["b2"]
    m = X.shape[1]
    # forward
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = softmax(Z2)
    # backward; "Σ" sums over the m examples (columns): db is (10 x 1), seed 001's shape summary
    dZ2 = A2 - Y
    dW2 = 1 / m * dZ2 @ A1.T
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = W2.T @ dZ2 * relu_prime(Z1)
    dW1 = 1 / m * dZ1 @ X.T
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    # update
    new = {
        "W1": W1 - alpha * dW1,
        "b1": b1 - alpha * db1,
        "W2": W2 - alpha * dW2,
        "b2": b2 - alpha * db2,
    }
    cache = {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return cache, grads, new


def two_layer_net(seed):
    net = Network.from_spec(
        "784-10-10",
        activation="relu",
        cost="cross_entropy",
        init="uniform",  # seeds 001-002: np.random.rand(10, 784) - 0.5, and the same for b
        dtype=np.float64,
        seed=seed,
    )
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "ReLU", "Dense", "Softmax"]
    return net


def test_seed_001_002_two_layer_forward_backward_and_update():
    rng = np.random.default_rng(1)
    net = two_layer_net(seed=1)
    X, y = mnist_like(rng, 64)
    Y = one_hot_seed(y)
    np.testing.assert_array_equal(net.targets(y), Y)
    P = params_copy(net)
    for name, shape in {"W1": (10, 784), "b1": (10, 1), "W2": (10, 10), "b2": (10, 1)}.items():
        assert P[name].shape == shape  # seed 001's variable and shape summary
        assert np.all(np.abs(P[name]) <= 0.5) and np.any(P[name] != 0)

    cache, seed_grads, seed_new = seed_two_layer_step(P, X, Y, ALPHA)

    A2 = net.forward(X, training=True)
    close(A2, cache["A2"], name="A2")
    relu_layer, softmax_layer = net.layers[1], net.layers[3]
    assert isinstance(relu_layer, ReLU) and isinstance(softmax_layer, Softmax)
    close(relu_layer.A, cache["A1"], name="A1")
    close(softmax_layer.Z, cache["Z2"], name="Z2")
    # the seeds' cost for this A2 (cross-entropy, whose gradient through softmax is A2 - Y)
    cost = net.cost_value(A2, Y, net.log_output())
    assert cost == pytest.approx(-np.sum(Y * np.log(cache["A2"])) / X.shape[1], rel=RTOL)

    net.backward(A2, Y)
    grads = grads_copy(net)
    for name in ("W2", "b2", "W1", "b1"):
        assert grads[name].shape == P[name].shape
        close(grads[name], seed_grads[name], name=f"d{name}")

    GradientDescent(ALPHA).step(net.parameters())
    for name, theta, _ in net.parameters():
        close(theta, seed_new[name], name=f"{name} after one step")
        # exactly θ - α dθ with the library's own dθ, bit for bit
        np.testing.assert_array_equal(theta, P[name] - ALPHA * grads[name])


def test_seed_001_002_gradient_descent_loop_is_full_batch_fit():
    """Seeds 001-002 loop ``iterations`` times over the whole set: ``fit(batch_size=None)``."""
    rng = np.random.default_rng(2)
    net = two_layer_net(seed=2)
    X, y = mnist_like(rng, 40)
    Y = one_hot_seed(y)
    P = params_copy(net)
    for _ in range(4):
        _, _, P = seed_two_layer_step(P, X, Y, ALPHA)
    history = net.fit(X, y, epochs=4, batch_size=None, optimizer="gd", learning_rate=ALPHA)
    assert len(history) == 4
    for name, theta, _ in net.parameters():
        close(theta, P[name], rtol=1e-10, atol=1e-13, name=f"{name} after 4 iterations")


# -- seed 000: 784-16-16-10 ------------------------------------------------------------------


def test_seed_000_three_layer_784_16_16_10():
    rng = np.random.default_rng(0)
    net = Network.from_spec(
        "784-16-16-10",
        activation="relu",
        cost="cross_entropy",
        init="uniform",
        dtype=np.float64,
        seed=0,
    )
    X, y = mnist_like(rng, 32)
    Y = one_hot_seed(y)
    P = params_copy(net)
    W1, b1, W2, b2, W3, b3 = (P[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    assert W1.shape == (16, 784) and W2.shape == (16, 16) and W3.shape == (10, 16)
    m = X.shape[1]

    # forward: A0 = X, Z = W·A + b, ReLU twice, softmax at the output
    A0 = X
    Z1 = W1 @ A0 + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = softmax(Z3)
    # backward, the seed's two-layer recipe one layer deeper
    dZ3 = A3 - Y
    dW3 = 1 / m * dZ3 @ A2.T
    db3 = 1 / m * np.sum(dZ3, axis=1, keepdims=True)
    dZ2 = W3.T @ dZ3 * relu_prime(Z2)
    dW2 = 1 / m * dZ2 @ A1.T
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = W2.T @ dZ2 * relu_prime(Z1)
    dW1 = 1 / m * dZ1 @ A0.T
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    seed_grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}

    A = net.forward(X, training=True)
    close(A, A3, name="A3")
    net.backward(A, Y)
    grads = grads_copy(net)
    assert np.count_nonzero(dW1) > 0  # some signal reaches the first layer
    for name, g in seed_grads.items():
        close(grads[name], g, name=f"d{name}")

    GradientDescent(ALPHA).step(net.parameters())
    for name, theta, _ in net.parameters():
        close(theta, P[name] - ALPHA * seed_grads[name], name=f"{name} after one step")


# -- seeds 003 and 004: sigmoid and MSE ------------------------------------------------------
#
# The MSE of both seeds is C = 1/n Σ_i (ŷ_i - y_i)² over the n outputs; digitnet averages it over
# the m examples too. Its derivative is ∂C/∂ŷ = 2/n (ŷ - y). Seed 003 writes ∂L/∂ŷ = ŷ - y and
# seed 004 §8 writes ∂C/∂Y = 2(Y - Ŷ): both drop constant factors (seed 004 drops the 1/n, seed
# 003 the 2/n), which the learning rate absorbs. The checks below put the 2/n back, explicitly.
# (Seed 004 names the network's output Y and the target Ŷ, the other way round from seed 003.)


@pytest.mark.parametrize("m", [1, 6])  # m = 1: the seed's single column vector x
def test_seed_003_sigmoid_mse_chain_rule(m):
    rng = np.random.default_rng(3 + m)
    # seed 003: two input nodes to four nodes, sigmoid, then MSE
    net = Network.from_spec("2-4", output="sigmoid", cost="mse", dtype=np.float64, seed=3)
    layer = net.dense_layers[0]
    layer.b += rng.normal(0.0, 0.5, layer.b.shape)
    W, b = layer.W.copy(), layer.b.copy()
    x = rng.normal(0.0, 1.0, (2, m))
    y = rng.uniform(0.0, 1.0, (4, m))
    n = 4

    z = W @ x + b  # z = Wx + b
    y_hat = sigmoid(z)  # a = σ(z)
    # ∂C/∂W = (ŷ - y) · σ(z)(1 - σ(z)) · xᵀ, with MSE's 2/n restored, averaged over m
    delta = 2 / n * (y_hat - y) * sigmoid(z) * (1 - sigmoid(z))
    dW = delta @ x.T / m
    db = delta.sum(axis=1, keepdims=True) / m  # ∂z/∂b = 1

    A = net.forward(x, training=True)
    close(A, y_hat, name="ŷ")
    assert net.cost_value(A, y) == pytest.approx(np.mean((y_hat - y) ** 2), rel=RTOL)
    net.backward(A, y)
    close(layer.dW, dW, name="dW")
    close(layer.db, db, name="db")
    if m == 1:  # one example: the seed's outer product (ŷ - y)σ'(z) xᵀ, times 2/n
        close(layer.dW, np.outer(2 / n * (y_hat - y) * y_hat * (1 - y_hat), x), name="outer")

    GradientDescent(ALPHA).step(net.parameters())
    close(layer.W, W - ALPHA * dW, name="W after one step")
    close(layer.b, b - ALPHA * db, name="b after one step")


@pytest.mark.parametrize("m", [1, 5])
def test_seed_004_example_network(m):
    """Seed 004 §8: Dense (layer 0), sigmoid (layer 1), Dense (layer 2), MSE on the output."""
    rng = np.random.default_rng(40 + m)
    net = Network.from_spec(
        "2-3-2", activation="sigmoid", output="identity", cost="mse", dtype=np.float64, seed=4
    )
    assert [type(layer).__name__ for layer in net.layers] == [
        "Dense",
        "Sigmoid",
        "Dense",
        "Identity",
    ]
    for layer in net.dense_layers:
        layer.b += rng.normal(0.0, 0.5, layer.b.shape)
    P = params_copy(net)
    W0, B0, W2, B2 = P["W1"], P["b1"], P["W2"], P["b2"]  # the seed's layers 0 and 2
    X0 = rng.normal(0.0, 1.0, (2, m))
    Y_hat = rng.normal(0.0, 1.0, (2, m))  # seed 004's Ŷ: the target
    n = 2

    # forward, in the seed's names: Y⁽ᴸ⁾ = X⁽ᴸ⁺¹⁾
    Y0 = W0 @ X0 + B0
    X1 = Y0
    Y1 = sigmoid(X1)
    X2 = Y1
    Y2 = W2 @ X2 + B2  # the network's output
    # backward (§5, §6, §8); ∂C/∂Y⁽²⁾ = 2(Y - Ŷ) with the MSE's 1/n put back
    dC_dY2 = 2 / n * (Y2 - Y_hat)
    dC_dW2 = dC_dY2 @ X2.T / m
    dC_dB2 = dC_dY2.sum(axis=1, keepdims=True) / m
    dC_dY1 = W2.T @ dC_dY2  # = ∂C/∂X⁽²⁾ (per example)
    dC_dX1 = dC_dY1 * (sigmoid(X1) * (1 - sigmoid(X1)))  # ⊙ σ'(X⁽¹⁾)
    dC_dY0 = dC_dX1
    dC_dW0 = dC_dY0 @ X0.T / m
    # (seed 004's final line writes a stray X⁽⁰⁾ᵀ into the bias update: ∂C/∂B⁽⁰⁾ = ∂C/∂Y⁽⁰⁾)
    dC_dB0 = dC_dY0.sum(axis=1, keepdims=True) / m

    A = net.forward(X0, training=True)
    close(A, Y2, name="Y(2)")
    assert net.cost_value(A, Y_hat) == pytest.approx(np.mean((Y2 - Y_hat) ** 2), rel=RTOL)
    net.backward(A, Y_hat)
    grads = grads_copy(net)
    close(grads["W2"], dC_dW2, name="dC/dW(2)")
    close(grads["b2"], dC_dB2, name="dC/dB(2)")
    close(grads["W1"], dC_dW0, name="dC/dW(0)")
    close(grads["b1"], dC_dB0, name="dC/dB(0)")

    # §7: θ := θ - α ∂C/∂θ
    GradientDescent(ALPHA).step(net.parameters())
    new = params_copy(net)
    close(new["W2"], W2 - ALPHA * dC_dW2, name="W(2) after one step")
    close(new["b2"], B2 - ALPHA * dC_dB2, name="B(2) after one step")
    close(new["W1"], W0 - ALPHA * dC_dW0, name="W(0) after one step")
    close(new["b1"], B0 - ALPHA * dC_dB0, name="B(0) after one step")
