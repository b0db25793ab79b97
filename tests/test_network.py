"""network.py: whole networks against finite differences and PyTorch autograd; inference.

Every hidden activation with every cost and output (and with dropout), in float64: each ``dW``,
``db`` that ``Network.backward`` leaves must be ``∂C/∂θ`` of the mean cost, as central
differences and torch's autograd give it.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradutil import (
    COST_CASES,
    HIDDEN_ACTIVATIONS,
    backprop,
    build_network,
    check_network_gradients,
    reference_cost,
    reset_dropout,
)

from digitnet.errors import ConfigError
from digitnet.layers import Dropout
from digitnet.network import Network, seed_name


def _toy(rng, m=600, n=784):
    rows = rng.random((m, n), dtype=np.float32)
    return rows.T, rng.integers(0, 10, m)


# -- gradients against finite differences -----------------------------------------------------


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


# -- gradients against PyTorch autograd -------------------------------------------------------

#: the whole-network cases torch also computes (its MSE through softmax is the same autograd)
TORCH_COST_CASES = COST_CASES[:4]


@pytest.mark.parametrize(("cost", "output", "smoothing"), TORCH_COST_CASES)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_network_gradients_match_torch(activation, cost, output, smoothing):
    tu = pytest.importorskip("torchutil")  # needs torch
    net, X, y = tu.build_case(activation, cost, output, smoothing)
    Y = net.targets(y)
    A = net.forward(X, training=True)
    value = net.cost_value(A, Y, net.log_output())
    A = A.copy()
    net.backward(A, Y)
    t_cost, t_out, grads = tu.torch_cost_and_grads(net, X, y, smoothing)
    np.testing.assert_allclose(A, t_out, rtol=1e-12, atol=1e-14)
    assert value == pytest.approx(t_cost, rel=1e-12)
    tu.assert_grads_match(net, grads, f"{activation}/{cost}/{output}/ε={smoothing}")
    # inference gives the same output as training mode
    np.testing.assert_allclose(net.predict_proba(X), t_out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cost", "output", "smoothing"), TORCH_COST_CASES[::2])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_dropout_network_gradients_match_torch(activation, cost, output, smoothing):
    tu = pytest.importorskip("torchutil")  # needs torch
    p = 0.4
    net, X, y = tu.build_case(activation, cost, output, smoothing, dropout=p, seed=7)
    dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
    assert len(dropouts) == 2
    Y = net.targets(y)
    A = net.forward(X, training=True)
    value = net.cost_value(A, Y, net.log_output())
    A = A.copy()
    masks = {}
    for layer in dropouts:
        kept = layer.mask != 0
        assert 0 < np.count_nonzero(kept) < kept.size  # some units dropped, some kept
        np.testing.assert_array_equal(layer.mask[kept], 1.0 / (1.0 - p))  # inverted dropout
        masks[id(layer)] = tu.t64(kept / (1.0 - p))  # rebuilt from the kept units only
    net.backward(A, Y)
    t_cost, t_out, grads = tu.torch_cost_and_grads(net, X, y, smoothing, masks)
    np.testing.assert_allclose(A, t_out, rtol=1e-12, atol=1e-14)
    assert value == pytest.approx(t_cost, rel=1e-12)
    tu.assert_grads_match(net, grads, f"dropout {activation}/{cost}/{output}")


# -- names, construction, inference -----------------------------------------------------------


def test_parameters_carry_the_seeds_names():
    net = Network.from_spec("784-16-16-10", seed=0)
    params = net.parameters()
    assert [p.name for p in params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert [p.is_weight for p in params] == [True, False] * 3
    assert seed_name("Z", 2) == "Z2" and seed_name("dW", 1) == "dW1"
    _, theta, dtheta = params[0]  # a parameter unpacks as (name, θ, dθ)
    assert theta is net.dense_layers[0].W and dtheta is net.dense_layers[0].dW
    assert theta.shape == (16, 784) and params[1].theta.shape == (16, 1)


def test_bad_components_list_the_valid_ones():
    with pytest.raises(ConfigError, match="one of arctan, identity, leaky_relu"):
        Network.from_spec("784-8-10", activation="swish")
    with pytest.raises(ConfigError, match="cost must be one of"):
        Network.from_spec("784-8-10", cost="hinge")
    with pytest.raises(ConfigError, match="softmax output"):
        Network.from_spec("784-8-10", output="sigmoid", cost="ce")
    with pytest.raises(ConfigError, match="label_smoothing applies to the cross-entropy"):
        Network.from_spec("784-8-10", cost="mse", label_smoothing=0.1)


def test_float64_on_request(rng):
    X, y = _toy(rng, m=100)
    net = Network.from_spec("784-8-10", seed=0, dtype="float64")
    net.fit(X, y, epochs=1, batch_size=32)
    assert all(p.dtype == np.float64 for _, p, _ in net.parameters())
    assert net.predict_proba(X).dtype == np.float64


@pytest.mark.parametrize(
    "name, W_std, b_zero",
    [
        ("he", np.sqrt(2 / 400), True),
        ("lecun", np.sqrt(1 / 400), True),
        ("glorot", np.sqrt(2 / 500), True),
        ("uniform", np.sqrt(1 / 12), False),
    ],
)
def test_initialisers_shapes_and_spread(name, W_std, b_zero):
    """init(rng, n_in, n_out) -> W (n_out, n_in), b (n_out, 1), with the documented spread."""
    from digitnet.init import get_initialiser

    W, b = get_initialiser(name)(np.random.default_rng(0), 400, 100)
    assert W.shape == (100, 400) and b.shape == (100, 1)
    assert W.std() == pytest.approx(W_std, rel=0.03)
    assert (not b.any()) == b_zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_targets_and_gradients_stay_in_the_networks_dtype(dtype):
    """``net.backward(A, net.targets(y))`` on a float32 network stays float32 throughout: a
    float64 Y would turn dZ = A - Y into float64, and every product then leaves BLAS's float32
    kernels for NumPy's slow mixed-type loops."""
    net = Network.from_spec("6-5-3", dtype=dtype, seed=0, label_smoothing=0.1)
    Y = net.targets(np.array([0, 2, 1, 2]))
    assert Y.dtype == dtype and Y.shape == (3, 4)
    np.testing.assert_allclose(Y.sum(axis=0), 1.0, rtol=1e-6)
    A = net.forward(np.ones((6, 4), dtype=dtype), training=True)
    grad = net.output_gradient(A, Y)
    assert grad.dtype == dtype
