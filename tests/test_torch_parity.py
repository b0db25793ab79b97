"""PyTorch parity, in float64: gradients of whole networks and the optimisers' updates.

PyTorch is an independent implementation of the same mathematics: its autograd gives
``∂C/∂W`` and ``∂C/∂b`` of the mean cost, which is exactly what ``Network.backward`` leaves in
``dW`` and ``db`` (see :mod:`digitnet.layers`). ``W`` is ``(n_out, n_in)`` like
``torch.nn.Linear.weight``; ``b`` is ``(n_out, 1)``, a column broadcast over the examples.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from gradutil import HIDDEN_ACTIVATIONS, make_data  # noqa: E402

from digitnet.activations import (  # noqa: E402
    Arctan,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from digitnet.layers import Dense, Dropout  # noqa: E402
from digitnet.network import Network, Parameter  # noqa: E402
from digitnet.optim import Adam, GradientDescent, Momentum, get_optimizer  # noqa: E402

M = 7
SPEC = "6-5-4-3"
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


def build(activation, cost, output, smoothing=0.0, dropout=0.0, seed=0):
    rng = np.random.default_rng(500 + seed)
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
    for layer in net.dense_layers:  # non-zero biases
        layer.b += rng.normal(0.0, 0.2, layer.b.shape)
    X, y = make_data(rng, net.n_inputs, net.n_outputs, M)
    return net, X, y


def assert_grads_match(net, grads, label):
    params = net.parameters()
    assert [name for name, _, _ in params] == list(grads)
    for name, theta, dtheta in params:
        assert dtheta.shape == theta.shape == grads[name].shape, f"{label} {name}: shape"
        assert np.linalg.norm(grads[name]) > 0, f"{label} {name}: zero torch gradient"
        np.testing.assert_allclose(
            dtheta, grads[name], rtol=RTOL, atol=ATOL, err_msg=f"{label} {name}"
        )


COST_CASES = [
    pytest.param("cross_entropy", "softmax", 0.0, id="ce-softmax"),
    pytest.param("cross_entropy", "softmax", 0.1, id="ce-softmax-smooth0.1"),
    pytest.param("mse", "sigmoid", 0.0, id="mse-sigmoid"),
    pytest.param("mse", "identity", 0.0, id="mse-identity"),
]


@pytest.mark.parametrize(("cost", "output", "smoothing"), COST_CASES)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_network_gradients_match_torch(activation, cost, output, smoothing):
    net, X, y = build(activation, cost, output, smoothing)
    Y = net.targets(y)
    A = net.forward(X, training=True)
    value = net.cost_value(A, Y, net.log_output())
    A = A.copy()
    net.backward(A, Y)
    t_cost, t_out, grads = torch_cost_and_grads(net, X, y, smoothing)
    np.testing.assert_allclose(A, t_out, rtol=1e-12, atol=1e-14)
    assert value == pytest.approx(t_cost, rel=1e-12)
    assert_grads_match(net, grads, f"{activation}/{cost}/{output}/ε={smoothing}")
    # inference gives the same output as training mode
    np.testing.assert_allclose(net.predict_proba(X), t_out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cost", "output", "smoothing"), COST_CASES[::2])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_dropout_network_gradients_match_torch(activation, cost, output, smoothing):
    p = 0.4
    net, X, y = build(activation, cost, output, smoothing, dropout=p, seed=7)
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
        masks[id(layer)] = t64(kept / (1.0 - p))  # rebuilt from the kept units only
    net.backward(A, Y)
    t_cost, t_out, grads = torch_cost_and_grads(net, X, y, smoothing, masks)
    np.testing.assert_allclose(A, t_out, rtol=1e-12, atol=1e-14)
    assert value == pytest.approx(t_cost, rel=1e-12)
    assert_grads_match(net, grads, f"dropout {activation}/{cost}/{output}")


# -- optimisers -------------------------------------------------------------------------------

SHAPES = {"W1": (4, 3), "b1": (4, 1), "W2": (2, 4), "b2": (2, 1)}
WEIGHTS = {"W1", "W2"}  # weight decay applies to these, never to the biases
STEPS = 5


def torch_optimizer(kind, params_w, params_b, lr, weight_decay, **kw):
    groups = [
        {"params": params_w, "weight_decay": weight_decay},
        {"params": params_b, "weight_decay": 0.0},  # digitnet decays W* only, never b*
    ]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, **kw)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, **kw)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **kw)
    raise ValueError(kind)


OPTIMIZER_CASES = [
    pytest.param(lambda: GradientDescent(0.1), ("sgd", 0.1, 0.0, {}), id="gd"),
    pytest.param(
        lambda: GradientDescent(0.1, weight_decay=0.05), ("sgd", 0.1, 0.05, {}), id="gd-wd"
    ),
    pytest.param(
        lambda: Momentum(0.1, momentum=0.9), ("sgd", 0.1, 0.0, {"momentum": 0.9}), id="momentum"
    ),
    pytest.param(
        lambda: Momentum(0.1, momentum=0.8, weight_decay=0.05),
        ("sgd", 0.1, 0.05, {"momentum": 0.8}),
        id="momentum-wd",
    ),
    pytest.param(
        lambda: Momentum(0.1, momentum=0.9, nesterov=True),
        ("sgd", 0.1, 0.0, {"momentum": 0.9, "nesterov": True}),
        id="nesterov",
    ),
    pytest.param(
        lambda: Momentum(0.1, momentum=0.7, nesterov=True, weight_decay=0.05),
        ("sgd", 0.1, 0.05, {"momentum": 0.7, "nesterov": True}),
        id="nesterov-wd",
    ),
    pytest.param(
        lambda: get_optimizer("nesterov", 0.05, momentum=0.9),
        ("sgd", 0.05, 0.0, {"momentum": 0.9, "nesterov": True}),
        id="get_optimizer-nesterov",
    ),
    pytest.param(lambda: Adam(0.01), ("adam", 0.01, 0.0, {}), id="adam"),
    pytest.param(
        lambda: Adam(0.02, beta1=0.8, beta2=0.99, eps=1e-6),
        ("adam", 0.02, 0.0, {"betas": (0.8, 0.99), "eps": 1e-6}),
        id="adam-betas",
    ),
    pytest.param(lambda: Adam(0.01, weight_decay=0.1), ("adamw", 0.01, 0.1, {}), id="adamw"),
]


@pytest.mark.parametrize(("make_opt", "torch_spec"), OPTIMIZER_CASES)
def test_optimizer_matches_torch(make_opt, torch_spec):
    rng = np.random.default_rng(900)
    kind, lr, weight_decay, kw = torch_spec
    ours = {name: rng.normal(0.0, 1.0, shape) for name, shape in SHAPES.items()}
    start = {name: theta.copy() for name, theta in ours.items()}
    theirs = {name: t64(theta, requires_grad=True) for name, theta in ours.items()}
    opt = make_opt()
    topt = torch_optimizer(
        kind,
        [p for name, p in theirs.items() if name in WEIGHTS],
        [p for name, p in theirs.items() if name not in WEIGHTS],
        lr,
        weight_decay,
        **kw,
    )
    for step in range(1, STEPS + 1):
        grads = {name: rng.normal(0.0, 1.0, shape) for name, shape in SHAPES.items()}
        opt.step([Parameter(name, ours[name], grads[name], name in WEIGHTS) for name in SHAPES])
        for name, p in theirs.items():
            p.grad = t64(grads[name])
        topt.step()
        for name in SHAPES:
            np.testing.assert_allclose(
                ours[name],
                theirs[name].detach().numpy(),
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{name} after step {step}",
            )
    assert opt.t == STEPS
    for name in SHAPES:  # the parameters did move
        assert not np.allclose(ours[name], start[name])
