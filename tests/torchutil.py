"""PyTorch counterparts of digitnet's layers and costs, in float64, for the parity tests.

PyTorch is an independent implementation of the same mathematics: its autograd gives
``∂C/∂W`` and ``∂C/∂b`` of the mean cost, which is exactly what ``Network.backward`` leaves in
``dW`` and ``db`` (see :mod:`digitnet.layers`). ``W`` is ``(n_out, n_in)`` like
``torch.nn.Linear.weight``; ``b`` is ``(n_out, 1)``, a column broadcast over the examples.
Import it after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradutil import small_network

from digitnet.activations import Arctan, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from digitnet.layers import Dense, Dropout

F = torch.nn.functional
RTOL, ATOL = 1e-9, 1e-12


def t64(a: np.ndarray, requires_grad: bool = False):
    return torch.tensor(
        np.array(a, dtype=np.float64), dtype=torch.float64, requires_grad=requires_grad
    )


def torch_apply(layer, A, params, masks):
    """The torch counterpart of one digitnet layer."""
    if isinstance(layer, Dense):
        W, b = params[id(layer)]
        return W @ A + b
    if isinstance(layer, Dropout):
        return A * masks[id(layer)]
    if isinstance(layer, LeakyReLU):
        return F.leaky_relu(A, negative_slope=layer.slope)
    table = {
        ReLU: torch.relu,
        Sigmoid: torch.sigmoid,
        Tanh: torch.tanh,
        Arctan: torch.atan,
        Identity: lambda x: x,
        Softmax: lambda x: torch.softmax(x, dim=0),
    }
    return table[type(layer)](A)


def torch_cost_and_grads(net, X, y, smoothing=0.0, masks=None):
    """The mean cost and ``{name: ∂C/∂θ}`` by torch autograd, with the network's weights."""
    masks = masks or {}
    params, named = {}, {}
    for i, layer in enumerate(net.dense_layers, start=1):
        W, b = t64(layer.W, True), t64(layer.b, True)
        params[id(layer)] = (W, b)
        named[f"W{i}"], named[f"b{i}"] = W, b
    A = t64(X)
    for layer in net.layers[:-1]:
        A = torch_apply(layer, A, params, masks)
    n = net.n_outputs
    y_t = torch.as_tensor(y, dtype=torch.long)
    if net.cost.kind == "cross_entropy":
        # C = -1/m Σ_j Σ_i Y_ij log softmax(Z)_ij, with Y = (1 - ε)·one-hot + ε/n
        Y = (1.0 - smoothing) * F.one_hot(y_t, n).T.to(torch.float64) + smoothing / n
        cost = -(Y * torch.log_softmax(A, dim=0)).sum() / A.shape[1]
        reference = F.cross_entropy(A.T, y_t, label_smoothing=smoothing)
        torch.testing.assert_close(cost, reference, rtol=1e-12, atol=1e-12)
        out = torch.softmax(A, dim=0)
    else:
        Y = F.one_hot(y_t, n).T.to(torch.float64)
        out = torch_apply(net.layers[-1], A, params, masks)
        cost = ((out - Y) ** 2).mean()  # mean over all n·m elements
    cost.backward()
    grads = {name: p.grad.numpy() for name, p in named.items()}
    return float(cost.detach()), out.detach().numpy(), grads


def build_case(activation, cost, output, smoothing=0.0, dropout=0.0, seed=0):
    rng = np.random.default_rng(500 + seed)
    return small_network(activation, cost, output, smoothing, dropout, seed, rng, 0.2)


def assert_grads_match(net, grads, label):
    params = net.parameters()
    assert [name for name, _, _ in params] == list(grads)
    for name, theta, dtheta in params:
        assert dtheta.shape == theta.shape == grads[name].shape, f"{label} {name}: shape"
        assert np.linalg.norm(grads[name]) > 0, f"{label} {name}: zero torch gradient"
        np.testing.assert_allclose(
            dtheta, grads[name], rtol=RTOL, atol=ATOL, err_msg=f"{label} {name}"
        )


#: (cost, output, label smoothing) of the parity tests
COST_CASES = [
    pytest.param("cross_entropy", "softmax", 0.0, id="ce-softmax"),
    pytest.param("cross_entropy", "softmax", 0.1, id="ce-softmax-smooth0.1"),
    pytest.param("mse", "sigmoid", 0.0, id="mse-sigmoid"),
    pytest.param("mse", "identity", 0.0, id="mse-identity"),
]
