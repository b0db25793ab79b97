"""train/fused.py: each fused training step against the plain path it stands for.

The plain path is forward, the cost, backward (dW, db) and ``Optimizer.step``; the fused step
groups the same products differently, so the two agree to float rounding, never bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitnet import Network
from digitnet.activations import ReLU, Softmax
from digitnet.layers import Dense
from digitnet.optim import GradientDescent, Momentum, Schedule
from digitnet.train.fused import SoftmaxCrossEntropySGD, fused_step_for
from digitnet.train.loop import Trainer


def _toy(rng, m=200, n=784):
    rows = rng.random((m, n), dtype=np.float32)
    return rows.T, rng.integers(0, 10, m)


def _train(net, X, y, *, fused, epochs=2, **kwargs):
    """Train with the fused step (as fit does when it applies) or on the plain path."""
    trainer = Trainer(net, X, y, epochs=epochs, batch_size=kwargs.pop("batch_size", 40), **kwargs)
    assert trainer.fused_step is not None  # every case here is one the fused step applies to
    if not fused:
        trainer.fused_step = None
    return trainer, trainer.train()


def _assert_same_training(a, b, ha, hb, rtol):
    for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol * 1e-3, err_msg=name)
    np.testing.assert_allclose([h["loss"] for h in ha], [h["loss"] for h in hb], rtol=rtol)
    assert [h["accuracy"] for h in ha] == [h["accuracy"] for h in hb]


@pytest.mark.parametrize(
    "spec_kwargs, fit_kwargs",
    [
        ({}, {}),
        ({"dropout": 0.2, "input_dropout": 0.1}, {}),
        ({}, {"schedule": Schedule("cosine", warmup_epochs=1)}),
        ({"activation": "tanh"}, {"batch_size": None}),
        ({"activation": "sigmoid"}, {}),
    ],
    ids=["relu", "dropout", "schedule", "tanh-full-batch", "sigmoid"],
)
def test_fused_sgd_gives_the_weights_of_the_plain_path(rng, spec_kwargs, fit_kwargs):
    """Cross-entropy from the labels, θ moved inside backpropagation: as the plain path."""
    X, y = _toy(rng)
    nets = [Network.from_spec("784-24-12-10", seed=4, dtype="float64", **spec_kwargs) for _ in "ab"]
    (ta, ha), (tb, hb) = (
        _train(net, X, y, fused=fused, optimizer="sgd", learning_rate=0.3, seed=9, **fit_kwargs)
        for net, fused in zip(nets, (True, False), strict=True)
    )
    assert ta.opt.t == tb.opt.t > 0
    _assert_same_training(*nets, ha, hb, rtol=1e-10)
    start = Network.from_spec("784-24-12-10", seed=4, dtype="float64", **spec_kwargs)
    assert not np.allclose(start.parameters()[0].theta, nets[0].parameters()[0].theta)


def test_fused_sgd_in_float32_stays_close(rng):
    X, y = _toy(rng, m=300)
    nets = [Network.from_spec("784-32-10", seed=1) for _ in "ab"]
    (_, ha), (_, hb) = (
        _train(net, X, y, fused=fused, optimizer="sgd", learning_rate=0.1, seed=2, epochs=3)
        for net, fused in zip(nets, (True, False), strict=True)
    )
    for (name, p, _), (_, q, _) in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose([h["loss"] for h in ha], [h["loss"] for h in hb], rtol=1e-5)


def test_the_fused_step_is_taken_only_where_it_applies(rng):
    X, y = _toy(rng, m=20)

    def fused(spec_kwargs=None, **kwargs):
        net = Network.from_spec("784-8-10", seed=0, **(spec_kwargs or {}))
        return Trainer(net, X, y, epochs=1, learning_rate=0.1, **kwargs).fused_step is not None

    assert fused(optimizer="sgd") and fused(optimizer="gd") and fused(optimizer=GradientDescent(1))
    assert not fused(optimizer="sgd", weight_decay=1e-3)
    assert not fused(optimizer=Momentum(0.1))
    assert not fused(optimizer="nesterov")
    assert not fused(optimizer="adam")
    assert not fused({"label_smoothing": 0.1}, optimizer="sgd")
    assert not fused({"cost": "mse"}, optimizer="sgd")


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cost_and_dZ_from_labels_match_the_one_hot_forms(rng, scale):
    """C and dZᴸ = Aᴸ - Y from the labels equal the plain forms on Y, even at logits of ±1000."""
    net = Network.from_spec("784-16-10", seed=0, dtype="float64")
    net.dense_layers[-1].W *= scale
    X, y = _toy(rng, m=30)
    X = X.astype(np.float64)
    A = net.forward(X, training=True)
    Y = net.targets(y)
    cost_ref, dZ_ref = net.cost_value(A, Y, net.log_output()), net.output_gradient(A, Y)
    step = fused_step_for(net, GradientDescent(0.1))
    cost, A_fused = step.forward_cost(X, y)
    assert np.isfinite(cost)
    assert cost == pytest.approx(cost_ref, rel=1e-12)
    np.testing.assert_allclose(A_fused, A, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(step.dZ, dZ_ref, rtol=1e-12, atol=1e-15)


def test_dense_sgd_is_backward_then_a_gradient_step(rng):
    """One dense layer: α/m dA_prev with W before its step, then θ := θ - α dθ."""
    W, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 1))
    A_prev, dZ = rng.normal(size=(7, 11)), rng.normal(size=(5, 11))
    ref = Dense(W.copy(), b.copy())
    ref.forward(A_prev, training=True)
    dA_ref = ref.backward(dZ)
    layers = [Dense(rng.normal(size=(7, 3)), np.zeros(7)), ReLU(), Dense(W.copy(), b.copy())]
    net = Network([*layers, Softmax()])
    step = SoftmaxCrossEntropySGD(net)
    fast = net.layers[2]
    dA_fast = step.dense_sgd(2, fast, A_prev, 0.3 / 11 * dZ)  # takes α/m dZ, gives α/m dA_prev
    np.testing.assert_allclose(dA_fast, 0.3 / 11 * dA_ref, rtol=1e-13)
    np.testing.assert_allclose(fast.W, W - 0.3 * ref.dW, rtol=1e-13)
    np.testing.assert_allclose(fast.b, b - 0.3 * ref.db, rtol=1e-13)
    np.testing.assert_allclose(ref.dW, dZ @ A_prev.T / 11, rtol=1e-13)


def test_fused_sgd_resumes_bit_for_bit(rng):
    """Stopped mid-epoch and resumed from its state, the fused step ends as an unbroken run."""
    X, y = _toy(rng, m=240)
    kwargs = dict(epochs=2, batch_size=32, optimizer="sgd", learning_rate=0.2, seed=8)
    ref = Network.from_spec("784-32-10", dropout=0.2, seed=3)
    ref_hist = Trainer(ref, X, y, **kwargs).train()
    calls = iter(range(100))
    net = Network.from_spec("784-32-10", dropout=0.2, seed=3)
    first = Trainer(net, X, y, should_stop=lambda: next(calls) == 4, **kwargs)
    first.train()
    assert (first.epochs_done, first.k) == (0, 5)
    net2 = Network.from_spec("784-32-10", dropout=0.2, seed=77)
    again = Trainer(net2, X, y, **kwargs)
    assert again.fused_step is not None  # the fused step, as in the reference
    again.restore(first.state())
    hist = again.train()
    assert [h["loss"] for h in hist] == [h["loss"] for h in ref_hist]
    for (_, p, _), (_, q, _) in zip(ref.parameters(), net2.parameters(), strict=True):
        assert np.array_equal(p, q)
