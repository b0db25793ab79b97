"""Outlier Exposure: the generated non-digits (data/outliers.py) and training with them
(``--outliers``: a uniform target for each, not counted in the loss or accuracy reported).

That a network trained with them says "not sure" for hand-drawn letters is tested on the default
preset's model, in tests/test_imaging.py (``test_what_is_not_a_digit_is_not_sure``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from digitnet.data.datasets import load_embedded
from digitnet.data.outliers import FAMILIES, digit_likeness, draw, make_outliers
from digitnet.errors import ConfigError, ShapeError
from digitnet.network import Network
from digitnet.presets import get_preset
from digitnet.train.loop import Trainer
from digitnet.train.run import prepare


@pytest.fixture(scope="module")
def mnist():
    return load_embedded()


def test_the_same_generator_draws_the_same_shapes():
    a = make_outliers(60, np.random.default_rng(3))
    b = make_outliers(60, np.random.default_rng(3))
    c = make_outliers(60, np.random.default_rng(4))
    assert a.shape == (60, 784) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_shape_is_made_as_mnist_makes_a_digit(family, mnist):
    """28x28 in [0, 1], the ink's longest side 19-20 pixels, its centre of mass at (14, 14)."""
    rng = np.random.default_rng(1)
    rows = mnist.X_train.T
    for _ in range(20):
        img = draw(rng, family, rows, mnist.y_train)
        assert img.shape == (28, 28) and img.dtype == np.float32
        assert img.min() >= 0.0 and img.max() <= 1.0 and img.max() > 0.5
        ink = img > 0
        rows_, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        height, width = rows_[-1] - rows_[0] + 1, cols[-1] - cols[0] + 1
        assert max(height, width) in (19, 20) and min(height, width) <= 20
        w = img.astype(np.float64)
        cy = w.sum(axis=1) @ np.arange(28) / w.sum()
        cx = w.sum(axis=0) @ np.arange(28) / w.sum()
        assert abs(cy - 14) <= 0.5 + 1e-9 and abs(cx - 14) <= 0.5 + 1e-9, (family, cy, cx)


def test_no_shape_kept_is_nearer_a_digit_than_digits_are_to_each_other(mnist):
    """Drawn without the check, few shapes come near a real digit; with it, none does."""
    digits = mnist.X_train.T
    free = make_outliers(400, np.random.default_rng(0))
    near, limit = digit_likeness(free, digits)
    assert np.mean(near < limit) < 0.03  # by construction, almost none
    kept = make_outliers(400, np.random.default_rng(0), digits, mnist.y_train)
    near, limit = digit_likeness(kept, digits)
    assert (near >= limit).all()
    # the check has teeth: real digits (other than those measured against) are mostly under it
    test_near, _ = digit_likeness(mnist.X_test[:, :400].T, digits)
    assert np.mean(test_near < limit) > 0.2


def _spy(net: Network, seen: list) -> None:
    """Record the output A and targets Y of every training step, as backpropagation gets them."""
    original = net.output_gradient

    def output_gradient(A, Y):
        seen.append((A.copy(), Y.copy()))
        return original(A, Y)

    net.output_gradient = output_gradient


def test_outliers_get_a_uniform_target_and_are_not_counted(mnist):
    X, y = mnist.X_train[:, :300], mnist.y_train[:300]
    pool = make_outliers(50, np.random.default_rng(0))
    net = Network.from_spec("784-32-10", label_smoothing=0.1, seed=0)
    seen: list = []
    _spy(net, seen)
    history = Trainer(
        net, X, y, epochs=2, batch_size=64, seed=0, outliers=pool, outlier_share=0.5
    ).train()
    assert len(seen) == 2 * 5  # 300 digits in batches of 64: 5 a epoch
    correct, losses, pool_rows = [0, 0], [0.0, 0.0], 0
    for step, (A, Y) in enumerate(seen):
        n = Y.shape[1] - round(0.5 * (64 if step % 5 < 4 else 300 - 4 * 64))
        assert Y.shape[1] == n + round(0.5 * n)
        assert np.allclose(Y[:, n:], 0.1)  # the outliers' target: 1/10 for every digit
        assert np.allclose(Y[:, :n].sum(axis=0), 1) and np.allclose(Y[:, :n].max(axis=0), 0.91)
        labels = Y[:, :n].argmax(axis=0)
        correct[step // 5] += int((A[:, :n].argmax(axis=0) == labels).sum())
        losses[step // 5] += float(-(Y[:, :n] * np.log(A[:, :n])).sum())
        pool_rows += Y.shape[1] - n
    for epoch in range(2):  # the history's figures are the digits' alone
        assert history[epoch]["accuracy"] == correct[epoch] / 300
        assert history[epoch]["loss"] == pytest.approx(losses[epoch] / 300, rel=1e-4)
    assert pool_rows > pool.shape[0]  # the pool was gone through and started again


def test_outliers_are_taken_in_turn_so_a_resumed_run_is_the_same_run(mnist):
    X, y = mnist.X_train[:, :256], mnist.y_train[:256]
    pool = make_outliers(40, np.random.default_rng(0))

    def trainer(**kw):
        net = Network.from_spec("784-16-10", seed=0)
        return Trainer(
            net, X, y, epochs=2, batch_size=64, seed=0, outliers=pool, outlier_share=0.25, **kw
        )

    whole = trainer()
    whole.train()
    calls = iter(range(100))
    first = trainer(should_stop=lambda: next(calls) == 2)
    first.train()
    assert first.epochs_done == 0 and first.k == 3
    second = trainer()
    second.restore(first.state())
    second.train()
    for (name, p, _), (_, q, _) in zip(whole.parameters, second.parameters, strict=True):
        assert np.array_equal(p, q), name
    assert whole.history[-1]["loss"] == second.history[-1]["loss"]


def test_bad_outlier_settings_are_refused(mnist):
    X, y = mnist.X_train[:, :100], mnist.y_train[:100]
    net = Network.from_spec("784-16-10", seed=0)
    with pytest.raises(ShapeError, match=r"outliers must be rows \(N, 784\)"):
        Trainer(net, X, y, outliers=np.zeros((5, 28, 28)), outlier_share=0.5)
    with pytest.raises(ConfigError, match="outlier_share"):
        Trainer(net, X, y, outliers=np.zeros((5, 784)), outlier_share=-1)
    config = get_preset("seed-16-16").replace(epochs=1, outliers=0.5, loss="mse", output="sigmoid")
    with pytest.raises(ConfigError, match="needs --loss ce"):
        prepare(config, mnist)
    letters = dataclasses.replace(mnist, classes=list("ABCDEFGHIJ"))
    with pytest.raises(ConfigError, match="for the 10 digits"):
        prepare(get_preset("seed-16-16").replace(epochs=1, outliers=0.5), letters)


def test_the_presets_outliers_give_way_to_mse_and_to_clothes_with_a_note():
    from digitnet import cli
    from digitnet.commands.train import _config_from_args

    parser = cli.build_parser()
    notes: list[str] = []
    config = _config_from_args(parser.parse_args(["train", "--loss", "mse"]), notes)
    assert config.outliers == 0.0
    assert "--loss mse: no generated non-digits (the default preset's --outliers 0.5" in notes[1]
    notes = []
    args = parser.parse_args(["train", "--dataset", "fashion-mnist"])
    assert _config_from_args(args, notes).outliers == 0.0
    assert notes == [
        "--dataset fashion-mnist: no generated non-digits (the default preset's --outliers 0.5 "
        "is for digits)"
    ]
    assert _config_from_args(parser.parse_args(["train"]), notes).outliers == 0.5


def test_outliers_asked_for_with_mse_are_an_error_with_a_hint(capsys, tmp_path):
    from digitnet import cli

    argv = ["train", "--loss", "mse", "--outliers", "0.5", "--layers", "784-16-10", "--epochs", "1"]
    status = cli.main([*argv, "--offline", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.splitlines()
    assert status != 0
    assert (
        err[-2] == "error: --outliers teaches a uniform softmax to non-digits: it needs --loss ce."
    )
    assert err[-1] == "hint: drop --outliers, or give --outliers 0"


def test_a_pool_is_drawn_once_per_seed_and_data(mnist):
    """Runs from the same seed and data share one read-only pool; another seed draws another."""
    from digitnet.train import run as run_module

    config = get_preset("seed-16-16").replace(epochs=1, outliers=0.5)
    first = prepare(config, mnist).trainer.outliers
    again = prepare(config, mnist).trainer.outliers
    other = prepare(config.replace(seed=1), mnist).trainer.outliers
    assert first.shape == (run_module.OUTLIER_POOL, 784) and not first.flags.writeable
    assert again is first
    assert not np.array_equal(other, first)
    assert len(run_module._POOLS) <= run_module._POOLS_KEPT
