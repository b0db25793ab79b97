"""The training loop: repeatability, memory, divergence, input checks, and inference."""

from __future__ import annotations

import threading
import tracemalloc
import warnings

import numpy as np
import pytest

from digitnet import Network
from digitnet.errors import DivergenceError, ShapeError


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
    assert not np.array_equal(other.parameters()[0].theta, a.parameters()[0].theta)


def test_one_options_object_or_keywords_train_the_same(rng):
    """fit(net, X, y, FitOptions(...)) is fit(net, X, y, **the same settings): the same run,
    bit for bit (the same products in the same order); keywords change a FitOptions, and those
    that are not settings go to the optimiser, which refuses the ones it does not take."""
    from digitnet.errors import ConfigError
    from digitnet.train.loop import FitOptions, Trainer

    X, y = _toy(rng, m=300)
    settings = {"epochs": 2, "batch_size": 50, "optimizer": "momentum", "learning_rate": 0.05}
    nets = [Network.from_spec("784-16-10", seed=3) for _ in range(3)]
    nets[0].fit(X, y, seed=1, momentum=0.8, **settings)
    nets[1].fit(X, y, FitOptions(seed=1, optimizer_options={"momentum": 0.8}, **settings))
    nets[2].fit(X, y, FitOptions(seed=1, **settings), momentum=0.8)
    for other in nets[1:]:
        for (_, p, _), (_, q, _) in zip(nets[0].parameters(), other.parameters(), strict=True):
            assert np.array_equal(p, q)
    options = FitOptions.build(FitOptions(epochs=3), batch_size=None, weight_decay=0.1)
    assert (options.epochs, options.batch_size, options.optimizer_options) == (
        3,
        None,
        {"weight_decay": 0.1},
    )
    trainer = Trainer(nets[0], X, y, options)
    assert trainer.batch_size == 300 and trainer.epochs == 3 and trainer.n_batches == 1
    with pytest.raises(ConfigError, match="weight_decy"):
        Trainer(nets[0], X, y, FitOptions(optimizer_options={"weight_decy": 0.5}))
    with pytest.raises(ConfigError, match="epochs"):
        Trainer(nets[0], X, y, FitOptions(epochs=-1))
    with pytest.raises(ConfigError, match="fit has no setting 'epochz'; did you mean 'epochs'"):
        nets[0].fit(X, y, epochz=3)
    with pytest.raises(ConfigError, match="as keywords or as one FitOptions"):
        nets[0].fit(X, y, 5)  # a number where the options go: one clear error, with the way


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
