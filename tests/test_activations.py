"""activations.py: every activation's g and g', against finite differences and PyTorch.

For a lone activation the objective is ``f = 1/m Σ R ⊙ g(Z)``: ``backward(R)`` must be
``m · ∂f/∂Z`` (``dZ = dA ⊙ g'(Z)`` per example).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradutil import M, assert_grad_close, kinked, lone_layer_gradients, smooth

from digitnet.activations import (
    ACTIVATIONS,
    Arctan,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
    log_softmax,
)
from digitnet.errors import ConfigError

ACTIVATION_CASES = [
    pytest.param(ReLU, kinked, id="relu"),
    pytest.param(LeakyReLU, kinked, id="leaky_relu"),
    pytest.param(lambda: LeakyReLU(slope=0.3), kinked, id="leaky_relu_0.3"),
    pytest.param(Sigmoid, smooth, id="sigmoid"),
    pytest.param(Tanh, smooth, id="tanh"),
    pytest.param(Arctan, smooth, id="arctan"),
    pytest.param(Identity, smooth, id="identity"),
    pytest.param(Softmax, smooth, id="softmax"),
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


TORCH_FUNCTIONS = {
    "relu": lambda t, Z: t.relu(Z),
    "leaky_relu": lambda t, Z: t.nn.functional.leaky_relu(Z, 0.01),
    "sigmoid": lambda t, Z: t.sigmoid(Z),
    "tanh": lambda t, Z: t.tanh(Z),
    "arctan": lambda t, Z: t.atan(Z),
    "identity": lambda t, Z: Z * 1.0,
    "softmax": lambda t, Z: t.softmax(Z, dim=0),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name):
    """A = g(Z) and dZ = dA ⊙ g'(Z) against torch's autograd of the same function."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    Z = kinked(rng, (5, M)) * 3.0
    dA = rng.normal(size=(5, M))
    layer = get_activation(name)
    A = layer.forward(Z, training=True)
    dZ = layer.backward(dA)
    Zt = torch.tensor(Z, requires_grad=True)
    At = TORCH_FUNCTIONS[name](torch, Zt)
    (At * torch.tensor(dA)).sum().backward()
    np.testing.assert_allclose(A, At.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dZ, Zt.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(layer.forward(Z), A, rtol=0, atol=0)  # inference: the same g


def test_softmax_log_A_is_exact_at_logits_of_1000():
    Z = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.0, 1.0]])
    softmax = Softmax()
    A = softmax.forward(Z, training=True)
    np.testing.assert_allclose(A.sum(axis=0), 1.0)
    assert np.isfinite(softmax.log_A()).all()  # log A of an A that underflowed to 0
    np.testing.assert_allclose(softmax.log_A(), log_softmax(Z))
    assert softmax.log_A()[1, 0] == pytest.approx(-2000.0)


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="one of arctan, identity, leaky_relu"):
        get_activation("swish")
    with pytest.raises(ConfigError, match="slope"):
        LeakyReLU(slope=1.5)
    assert isinstance(get_activation("Leaky-ReLU"), LeakyReLU)
    assert {ReLU, Sigmoid, Tanh, Arctan, Identity} <= set(ACTIVATIONS.values())
