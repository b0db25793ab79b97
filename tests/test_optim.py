"""optim.py: the optimisers' updates against torch.optim, schedules, weight decay, options.

Each optimiser takes a few steps on the same parameters and gradients as its torch.optim
counterpart; weight decay must reach the weights and never the biases.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torchutil import ATOL, RTOL, t64  # noqa: E402

from digitnet.errors import ConfigError  # noqa: E402
from digitnet.network import Network, Parameter  # noqa: E402
from digitnet.optim import (  # noqa: E402
    Adam,
    GradientDescent,
    Momentum,
    Schedule,
    get_optimizer,
    optimizer_options,
)

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


def test_weight_decay_reaches_weights_never_biases():
    net = Network.from_spec("4-3-2", seed=0, dtype="float64")
    for p in net.parameters():
        p.dtheta[...] = 0.0  # no gradient: only the decay moves anything
    before = {name: theta.copy() for name, theta, _ in net.parameters()}
    GradientDescent(0.5, weight_decay=0.2).step(net.parameters())
    for p in net.parameters():
        assert p.is_weight == p.name.startswith("W")
        if p.is_weight:
            np.testing.assert_allclose(p.theta, before[p.name] * (1 - 0.5 * 0.2), rtol=1e-15)
        else:
            np.testing.assert_array_equal(p.theta, before[p.name])


def test_get_optimizer_refuses_unknown_options_with_the_valid_ones():
    with pytest.raises(ConfigError, match="no option 'weight_decy'; its options are weight_decay"):
        get_optimizer("sgd", 0.1, weight_decy=0.5)
    with pytest.raises(ConfigError, match=r"adam optimizer takes no option 'momentum'.*beta1"):
        get_optimizer("adam", 0.1, momentum=0.9)
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        get_optimizer("rmsprop", 0.1)
    assert get_optimizer("nesterov", 0.1, momentum=0.5).nesterov
    assert optimizer_options("momentum") == ("momentum", "nesterov", "weight_decay")
    net = Network.from_spec("784-8-10", seed=0)
    with pytest.raises(ConfigError, match="weight_decy"):  # fit passes the same check
        net.fit(np.zeros((784, 4), np.float32), np.zeros(4, int), weight_decy=0.5)


def test_schedules():
    cos = Schedule("cosine", warmup_epochs=1)
    assert cos.factor(0.5, 10) == pytest.approx(0.5)
    assert cos.factor(0.0, 10) == 0.0
    assert cos.factor(1, 10) == pytest.approx(1.0)
    assert cos.factor(5.5, 10) == pytest.approx(0.5)
    assert cos.factor(10, 10) == pytest.approx(0.0, abs=1e-12)
    step = Schedule("step", step_epochs=2, gamma=0.5)
    assert [step.factor(e, 10) for e in (0, 1.9, 2, 4.5)] == [1, 1, 0.5, 0.25]


@pytest.mark.parametrize(
    ("name", "slots"),
    [("gd", set()), ("momentum", {"v"}), ("nesterov", {"v"}), ("adam", {"m", "v"})],
)
def test_the_state_an_optimiser_saves_is_its_slots_not_its_scratch(name, slots):
    """A checkpoint holds the optimiser's state: velocities and moments, never the arrays an
    update writes its intermediate values to (Adam's state is two copies of the parameters)."""
    from digitnet.train.loop import Trainer

    X, y = np.random.default_rng(0).normal(size=(6, 40)), np.arange(40) % 3
    net = Network.from_spec("6-5-3", seed=0)
    trainer = Trainer(net, X, y, epochs=1, batch_size=8, optimizer=name, fused=False)
    trainer.train()
    saved = trainer.state()["optimizer"]["slots"]
    assert all(set(by_slot) == slots for by_slot in saved.values())
    assert set(saved) == ({"W1", "b1", "W2", "b2"} if slots else set())

    # a state written before this rule, with the scratch arrays, resumes as one without them
    old = trainer.state()
    for pname, theta, _ in net.parameters():
        old["optimizer"]["slots"].setdefault(pname, {})["scratch"] = np.ones_like(theta)
    for state in (trainer.state(), old):
        again = Trainer(Network.from_spec("6-5-3", seed=1), X, y, epochs=2, batch_size=8,
                        optimizer=name, fused=False)  # fmt: skip
        again.restore(state)
        assert all(set(s) == slots for s in again.opt.state.values())
        again.train()
        assert np.isfinite(again.history[-1]["loss"])


def test_an_optimiser_must_declare_the_state_it_keeps():
    from digitnet.optim import Optimizer

    class Forgetful(Optimizer):  # keeps a velocity without declaring it: a restore would drop it
        def update(self, name, theta, dtheta, lam):
            v = self._slot(name, "v", theta)
            v += dtheta
            theta -= self.alpha * v

    net = Network.from_spec("6-5-3", seed=0)
    with pytest.raises(TypeError, match="'v' not in its slots"):
        Forgetful(0.1).step(net.parameters())
