"""The training loop: repeatability, memory, divergence, input checks, and inference."""

from __future__ import annotations

import threading
import tracemalloc
import warnings

import numpy as np
import pytest

from digitnet import Network
from digitnet.errors import ConfigError, DivergenceError, ShapeError
from digitnet.optim import GradientDescent, Momentum, Schedule
from digitnet.train.loop import Trainer


def _toy(rng, m=600, n=784):
    rows = rng.random((m, n), dtype=np.float32)
    y = rng.integers(0, 10, m)
    return rows.T, y  # (784, m), examples contiguous in memory


def test_same_seed_same_run_bit_for_bit(rng):
    X, y = _toy(rng)
    runs = []
    for _ in range(2):
        net = Network.from_spec("784-32-16-10", dropout=0.2, seed=7)
        hist = net.fit(X, y, epochs=2, batch_size=50, optimizer="adam", seed=7)
        runs.append((net, hist))
    (a, ha), (b, hb) = runs
    for (_, p, _), (_, q, _) in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p, q)
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]
    other = Network.from_spec("784-32-16-10", dropout=0.2, seed=8)
    assert not np.array_equal(other.parameters()[0][1], a.parameters()[0][1])


def test_history_records(rng):
    X, y = _toy(rng, m=300)
    net = Network.from_spec("784-16-10", seed=0)
    hist = net.fit(X, y, epochs=3, batch_size=64, validation_data=(X[:, :50], y[:50]))
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for h in hist:
        assert 0 <= h["accuracy"] <= 1 and 0 <= h["val_accuracy"] <= 1
        assert h["loss"] > 0 and h["val_loss"] > 0 and h["seconds"] > 0
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_an_epoch_copies_no_dataset(rng):
    """Mini-batches are gathered into reused buffers: no per-epoch copy of X."""
    X, y = _toy(rng, m=8000)
    dataset_bytes = X.nbytes  # 25 MB
    net = Network.from_spec("784-64-10", seed=0)
    net.fit(X, y, epochs=1, batch_size=128)  # warm the buffers
    tracemalloc.start()
    try:
        net.fit(X, y, epochs=3, batch_size=128)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * dataset_bytes, f"peak {peak} bytes for a {dataset_bytes}-byte dataset"


def test_divergence_raises_once_with_advice(rng):
    X, y = _toy(rng, m=200)
    net = Network.from_spec("784-32-10", activation="identity", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a screen of RuntimeWarnings either
        with pytest.raises(DivergenceError, match="diverged with learning rate 1e\\+06") as e:
            net.fit(X, y, epochs=5, batch_size=50, optimizer="sgd", learning_rate=1e6)
    assert "smaller learning rate" in e.value.hint


def test_mse_sigmoid_diverging_is_caught(rng):
    X, y = _toy(rng, m=200)
    net = Network.from_spec(
        "784-32-10", activation="identity", cost="mse", output="identity", seed=0
    )
    with pytest.raises(DivergenceError):
        net.fit(X, y, epochs=5, batch_size=50, optimizer="sgd", learning_rate=1e5)


@pytest.mark.parametrize(
    "X_shape, y_len, match",
    [((10, 784), 10, "X must have shape \\(784, m\\)"), ((784, 10), 9, "one label per column")],
)
def test_fit_checks_shapes(X_shape, y_len, match):
    net = Network.from_spec("784-8-10", seed=0)
    with pytest.raises(ShapeError, match=match):
        net.fit(np.zeros(X_shape, np.float32), np.zeros(y_len, int), epochs=1)


def test_fit_checks_labels():
    net = Network.from_spec("784-8-10", seed=0)
    with pytest.raises(ShapeError, match="Labels must be integers in \\[0, 9\\]"):
        net.fit(np.zeros((784, 4), np.float32), np.array([0, 1, 2, 10]), epochs=1)


def test_bad_components_list_the_valid_ones():
    with pytest.raises(ConfigError, match="one of arctan, identity, leaky_relu"):
        Network.from_spec("784-8-10", activation="swish")
    with pytest.raises(ConfigError, match="cost must be one of"):
        Network.from_spec("784-8-10", cost="hinge")
    with pytest.raises(ConfigError, match="softmax output"):
        Network.from_spec("784-8-10", output="sigmoid", cost="ce")
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        Network.from_spec("784-8-10").fit(
            np.zeros((784, 2), np.float32), np.zeros(2, int), optimizer="rmsprop"
        )
    with pytest.raises(ConfigError, match="label_smoothing applies to the cross-entropy"):
        Network.from_spec("784-8-10", cost="mse", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="schedule must be one of"):
        Schedule("linear")


def test_float64_on_request(rng):
    X, y = _toy(rng, m=100)
    net = Network.from_spec("784-8-10", seed=0, dtype="float64")
    net.fit(X, y, epochs=1, batch_size=32)
    assert all(p.dtype == np.float64 for _, p, _ in net.parameters())
    assert net.predict_proba(X).dtype == np.float64


def test_full_batch_is_plain_gradient_descent(rng):
    """batch_size=None: each epoch is one step on all examples, in their own order."""
    X, y = _toy(rng, m=64)
    a = Network.from_spec("784-8-10", seed=0, dtype="float64")
    b = Network.from_spec("784-8-10", seed=0, dtype="float64")
    a.fit(X, y, epochs=3, batch_size=None, optimizer="gd", learning_rate=0.1)
    for _ in range(3):  # three steps by hand
        Y = b.targets(y)
        A = b.forward(X.astype(np.float64), training=True)
        b.backward(A, Y)
        for _, theta, dtheta in b.parameters():
            theta -= 0.1 * dtheta
    for (_, p, _), (_, q, _) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)


def test_schedules():
    cos = Schedule("cosine", warmup_epochs=1)
    assert cos.factor(0.5, 10) == pytest.approx(0.5)
    assert cos.factor(0.0, 10) == 0.0
    assert cos.factor(1, 10) == pytest.approx(1.0)
    assert cos.factor(5.5, 10) == pytest.approx(0.5)
    assert cos.factor(10, 10) == pytest.approx(0.0, abs=1e-12)
    step = Schedule("step", step_epochs=2, gamma=0.5)
    assert [step.factor(e, 10) for e in (0, 1.9, 2, 4.5)] == [1, 1, 0.5, 0.25]


def test_predict(rng):
    X, _ = _toy(rng, m=50)
    net = Network.from_spec("784-8-10", seed=0)
    P = net.predict_proba(X, batch_size=16)
    assert P.shape == (10, 50)
    np.testing.assert_allclose(P.sum(axis=0), 1, rtol=1e-5)
    np.testing.assert_array_equal(net.predict(X), P.argmax(axis=0))
    with pytest.raises(ShapeError, match=r"pass X\.T"):
        net.predict(X.T)


def test_inference_is_thread_safe(rng):
    """Four threads predicting at once each get what the same call gets alone.

    Each thread's answer is compared with the same call (same columns, same shape) made before
    the threads start, never with a slice of a larger product: OpenBLAS may round ``W @ X[:, 1:]``
    and the matching columns of ``W @ X`` one step apart (it picks kernels by shape and CPU).
    """
    X, _ = _toy(rng, m=64)
    net = Network.from_spec("784-64-10", seed=0)
    inputs = [np.ascontiguousarray(X[:, i:]) for i in range(4)]
    alone = [net.predict_proba(x) for x in inputs]
    errors = []

    def worker(i):
        for _ in range(20):
            if not np.array_equal(net.predict_proba(inputs[i]), alone[i]):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("batch_size", [32, None])
def test_training_on_a_sample_equals_training_on_its_copy(rng, batch_size):
    """fit(..., sample=idx) trains on columns idx without copying them, and means exactly that."""
    X, y = _toy(rng, m=300)
    idx = np.sort(rng.choice(300, size=200, replace=False))
    a = Network.from_spec("784-16-10", seed=3)
    b = Network.from_spec("784-16-10", seed=3)
    ha = a.fit(X, y, sample=idx, epochs=2, batch_size=batch_size, seed=5)
    hb = b.fit(np.ascontiguousarray(X.T[idx]).T, y[idx], epochs=2, batch_size=batch_size, seed=5)
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]
    for (_, p, _), (_, q, _) in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p, q)
    with pytest.raises(ShapeError, match="column indices"):
        a.fit(X, y, sample=np.array([0, 300]), epochs=1)


# -- the fast paths: the same training as the general path, to float rounding -----------------
def _train(net, X, y, *, fast, epochs=2, **kwargs):
    """Train with the trainer's fast paths on (as fit does) or off (the general path)."""
    trainer = Trainer(net, X, y, epochs=epochs, batch_size=kwargs.pop("batch_size", 40), **kwargs)
    if not fast:
        trainer.from_labels = trainer.sgd_in_backward = False
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
    ],
    ids=["plain", "dropout", "schedule", "full-batch"],
)
def test_sgd_fast_path_gives_the_weights_of_the_general_path(rng, spec_kwargs, fit_kwargs):
    """Plain SGD: θ moved inside Dense.backward_sgd, Y never built; as backward + step on Y."""
    X, y = _toy(rng, m=200)
    nets = [Network.from_spec("784-24-12-10", seed=4, dtype="float64", **spec_kwargs) for _ in "ab"]
    runs = [
        _train(net, X, y, fast=fast, optimizer="sgd", learning_rate=0.3, seed=9, **fit_kwargs)
        for net, fast in zip(nets, (True, False), strict=True)
    ]
    (ta, ha), (tb, hb) = runs
    assert (ta.from_labels, ta.sgd_in_backward) == (True, True)
    assert ta.opt.t == tb.opt.t > 0
    _assert_same_training(*nets, ha, hb, rtol=1e-10)
    start = Network.from_spec("784-24-12-10", seed=4, dtype="float64", **spec_kwargs)
    assert not np.allclose(start.parameters()[0][1], nets[0].parameters()[0][1])  # it trained


def test_sgd_fast_path_in_float32_stays_close(rng):
    X, y = _toy(rng, m=300)
    nets = [Network.from_spec("784-32-10", seed=1) for _ in "ab"]
    (_, ha), (_, hb) = (
        _train(net, X, y, fast=fast, optimizer="sgd", learning_rate=0.1, seed=2, epochs=3)
        for net, fast in zip(nets, (True, False), strict=True)
    )
    for (name, p, _), (_, q, _) in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose([h["loss"] for h in ha], [h["loss"] for h in hb], rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_labels_fast_path_with_other_optimisers(rng, optimizer):
    """Softmax + cross-entropy from the labels (no Y) feeds any optimiser the same gradients."""
    X, y = _toy(rng, m=200)
    nets = [Network.from_spec("784-16-10", seed=2, dtype="float64") for _ in "ab"]
    runs = [
        _train(net, X, y, fast=fast, optimizer=optimizer, learning_rate=0.01, seed=3)
        for net, fast in zip(nets, (True, False), strict=True)
    ]
    (ta, ha), (_, hb) = runs
    assert (ta.from_labels, ta.sgd_in_backward) == (True, False)
    _assert_same_training(*nets, ha, hb, rtol=1e-10)


def test_fast_paths_are_taken_only_where_they_apply(rng):
    X, y = _toy(rng, m=20)

    def paths(spec_kwargs=None, **kwargs):
        net = Network.from_spec("784-8-10", seed=0, **(spec_kwargs or {}))
        t = Trainer(net, X, y, epochs=1, learning_rate=0.1, **kwargs)
        return t.from_labels, t.sgd_in_backward

    assert paths(optimizer="sgd") == (True, True)
    assert paths(optimizer="gd") == (True, True)
    assert paths(optimizer=GradientDescent(0.1)) == (True, True)
    assert paths(optimizer="sgd", weight_decay=1e-3) == (True, False)
    assert paths(optimizer=Momentum(0.1)) == (True, False)
    assert paths(optimizer="nesterov") == (True, False)
    assert paths(optimizer="adam") == (True, False)
    assert paths({"label_smoothing": 0.1}, optimizer="sgd") == (False, True)
    assert paths({"cost": "mse"}, optimizer="sgd") == (False, True)


def test_sgd_fast_path_with_mse_and_label_smoothing(rng):
    """The SGD fast path also takes the general output gradient (MSE, smoothed targets)."""
    X, y = _toy(rng, m=120)
    for spec_kwargs in ({"cost": "mse"}, {"label_smoothing": 0.1}):
        kwargs = {"seed": 5, "dtype": "float64", **spec_kwargs}
        nets = [Network.from_spec("784-16-10", **kwargs) for _ in "ab"]
        (_, ha), (_, hb) = (
            _train(net, X, y, fast=fast, optimizer="sgd", learning_rate=0.5, seed=1)
            for net, fast in zip(nets, (True, False), strict=True)
        )
        _assert_same_training(*nets, ha, hb, rtol=1e-10)


def test_backward_sgd_is_backward_then_a_gradient_step(rng):
    """Dense.backward_sgd: backward's dA_prev (W before the step) and θ := θ - α dθ, scaled."""
    from digitnet.layers import Dense

    W, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 1))
    A_prev, dZ = rng.normal(size=(7, 11)), rng.normal(size=(5, 11))
    ref, fast = Dense(W.copy(), b.copy()), Dense(W.copy(), b.copy())
    for layer in (ref, fast):
        layer.forward(A_prev, training=True)
    dA_ref = ref.backward(dZ).copy()
    dA_fast = fast.backward_sgd(0.3 / 11 * dZ)  # it takes α/m dZ, and gives α/m dA_prev
    np.testing.assert_allclose(dA_fast, 0.3 / 11 * dA_ref, rtol=1e-13)
    np.testing.assert_allclose(fast.W, W - 0.3 * ref.dW, rtol=1e-13)
    np.testing.assert_allclose(fast.b, b - 0.3 * ref.db, rtol=1e-13)
    np.testing.assert_allclose(ref.dW, dZ @ A_prev.T / 11, rtol=1e-13)
    assert not fast.dW.any() and not fast.db.any()  # backward_sgd leaves dW, db alone


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_loss_and_output_gradient_from_labels_match_the_one_hot_forms(rng, scale):
    """C and dZᴸ = Aᴸ - Y from the labels equal the one-hot forms, even at logits of ±1000."""
    net = Network.from_spec("784-16-10", seed=0, dtype="float64")
    net.dense_layers[-1].W *= scale
    X, y = _toy(rng, m=30)
    A = net.forward(X.astype(np.float64), training=True)
    Y = net.targets(y)
    cost_ref, dZ_ref = net.cost_value(A, Y, net.log_output()), net.output_gradient(A, Y).copy()
    cost, dZ = net.loss_and_output_gradient(y)
    assert np.isfinite(cost)
    assert cost == pytest.approx(cost_ref, rel=1e-12)
    np.testing.assert_allclose(dZ, dZ_ref, rtol=1e-12, atol=1e-15)


def test_sgd_fast_path_resumes_bit_for_bit(rng):
    """Stopped mid-epoch and resumed from its state, the fast path ends as an unbroken run."""
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
    assert again.sgd_in_backward and again.from_labels  # the fast paths, as in the reference
    again.restore(first.state())
    hist = again.train()
    assert [h["loss"] for h in hist] == [h["loss"] for h in ref_hist]
    for (_, p, _), (_, q, _) in zip(ref.parameters(), net2.parameters(), strict=True):
        assert np.array_equal(p, q)
