"""The fused step (digitnet/train/fused.py) against the plain path of docs/math.md.

The plain path is ``net.backpropagate(grad)`` then ``opt.step(net.parameters())``; the fused step
must leave the same parameters (to float rounding: it adds the same products in another order),
count the step, and stand aside wherever it does not apply.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from gradutil import make_data

from digitnet.network import Network
from digitnet.optim import GradientDescent, get_optimizer
from digitnet.train import fused
from digitnet.train.loop import Trainer

RNG = np.random.default_rng(20261202)


def _gemm(dtype):
    gemm = fused.blas_gemm(dtype)
    if gemm is None:  # pragma: no cover - every NumPy wheel for x86-64 bundles OpenBLAS
        pytest.skip(f"NumPy's BLAS exposes no Fortran gemm for {np.dtype(dtype).name} here")
    return gemm


def test_numpy_blas_gemm_is_found_where_numpy_bundles_openblas():
    from digitnet.train.threads import numpy_blas

    if not any(lib.internal_api == "openblas" for lib in numpy_blas()):
        pytest.skip("NumPy here is not built with OpenBLAS")
    assert fused.blas_gemm(np.float32) is not None
    assert fused.blas_gemm(np.float64) is not None
    assert fused.blas_gemm(np.int64) is None  # no integer GEMM: the plain path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dZ_order", ["C", "F", "strided"])
@pytest.mark.parametrize("A_order", ["C", "F", "strided"])
def test_gemm_is_W_times_beta_plus_a_dZ_A_prev_transposed(dtype, dZ_order, A_order):
    gemm = _gemm(dtype)
    n_out, n_in, m = 37, 53, 29

    def operand(shape, order):
        if order == "strided":  # every other column of a wider array: neither C nor F ordered
            return RNG.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
        return RNG.standard_normal(shape).astype(dtype, order=order)

    W = RNG.standard_normal((n_out, n_in)).astype(dtype)
    dZ, A = operand((n_out, m), dZ_order), operand((n_in, m), A_order)
    want = 0.9 * W.astype(np.float64) - 0.01 * (dZ.astype(np.float64) @ A.T.astype(np.float64))
    before_dZ, before_A = dZ.copy(), A.copy()
    gemm(W, dZ, A, -0.01, 0.9)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(W, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(dZ, before_dZ)  # the operands are read, never written
    np.testing.assert_array_equal(A, before_A)


def test_gemm_refuses_a_W_it_cannot_write_in_place():
    gemm = _gemm(np.float32)
    W = np.zeros((4, 3), dtype=np.float32, order="F")
    with pytest.raises(ValueError, match="C-ordered"):
        gemm(W, np.ones((4, 2), np.float32), np.ones((3, 2), np.float32), 1.0, 1.0)


def test_the_self_test_rejects_a_gemm_that_is_wrong():
    right = _gemm(np.float64)
    assert fused._passes_self_test(right, np.dtype(np.float64))

    def forgets_beta(W, dZ, A, a, beta):
        right(W, dZ, A, a, 1.0)

    def swaps_operands(W, dZ, A, a, beta):  # reads A_prev the wrong way round
        W *= beta
        W += a * (dZ @ np.ascontiguousarray(A).reshape(A.shape[::-1]))

    assert not fused._passes_self_test(forgets_beta, np.dtype(np.float64))
    assert not fused._passes_self_test(swaps_operands, np.dtype(np.float64))


def _pair(spec, dtype, **kw):
    net = Network.from_spec(spec, dtype=dtype, seed=3, **kw)
    for layer in net.dense_layers:  # biases away from 0, so that their update shows
        layer.b += RNG.normal(0.0, 0.1, layer.b.shape).astype(dtype)
    return net, copy.deepcopy(net)


CASES = {
    "relu softmax ce": dict(spec="9-7-5-4", kw={}),
    "sigmoid mse (unfused output)": dict(
        spec="9-7-5-4", kw=dict(activation="sigmoid", output="sigmoid", cost="mse")
    ),
    "dropout, label smoothing": dict(spec="9-8-4", kw=dict(dropout=0.3, label_smoothing=0.1)),
    "one layer": dict(spec="9-4", kw={}),
    "a large layer fused, a small one plain": dict(spec="90-50-6", kw={}),
}


@pytest.fixture(params=["every layer fused", "small layers plain"])
def fuse_from(request, monkeypatch):
    """Every dense layer through the fused GEMM, or only those of FUSE_FROM weights or more (the
    small networks here have none: all take the plain update inside the fused step)."""
    if request.param == "every layer fused":
        monkeypatch.setattr(fused, "FUSE_FROM", 0)
    return fused.FUSE_FROM


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_one_fused_step_moves_the_parameters_as_the_plain_path(
    case, dtype, weight_decay, fuse_from
):
    _gemm(dtype)
    plain_net, fused_net = _pair(CASES[case]["spec"], dtype, **CASES[case]["kw"])
    X, y = make_data(RNG, plain_net.n_inputs, plain_net.n_outputs, 11)
    X = X.astype(dtype)
    moved = {}
    for net, use_fused in ((plain_net, False), (fused_net, True)):
        opt = get_optimizer("sgd", 0.3, weight_decay=weight_decay)
        for layer in net.layers:  # the same dropout masks in both
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(7)
        A = net.forward(X, training=True)
        grad = net.output_gradient(A, net.targets(y))
        if use_fused:
            step = fused.sgd_step(net, opt)
            assert step is not None
            step(grad)
        else:
            net.backpropagate(grad)
            opt.step(net.parameters())
        assert opt.t == 1
        moved[use_fused] = {name: theta.copy() for name, theta, _ in net.parameters()}
    tol = 2e-6 if dtype == np.float32 else 1e-14
    assert moved[True].keys() == moved[False].keys()
    for name, theta in moved[False].items():
        np.testing.assert_allclose(moved[True][name], theta, rtol=tol, atol=tol, err_msg=name)


def test_a_fused_training_ends_where_the_plain_one_does(fuse_from):
    """Whole runs, float64: 3 epochs of 20 mini-batches, a schedule, weight decay, dropout."""
    from digitnet.optim import Schedule

    X, y = make_data(RNG, 20, 5, 600)
    results = {}
    for use_fused in (False, True):
        net = Network.from_spec("20-16-12-5", dtype=np.float64, seed=1, dropout=0.1)
        trainer = Trainer(
            net, X, y, epochs=3, batch_size=32, optimizer="sgd", learning_rate=0.2,
            weight_decay=1e-3, schedule=Schedule("cosine", warmup_epochs=0.5), seed=4,
            fused=use_fused,
        )  # fmt: skip
        assert (trainer._fused_step is not None) == use_fused
        history = trainer.train()
        results[use_fused] = (dict((n, t.copy()) for n, t, _ in net.parameters()), history)
        assert trainer.opt.t == 3 * 19
    (plain, h_plain), (fast, h_fast) = results[False], results[True]
    for name in plain:
        np.testing.assert_allclose(fast[name], plain[name], rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(
        [h["loss"] for h in h_fast], [h["loss"] for h in h_plain], rtol=1e-10
    )
    assert h_plain[-1]["loss"] < h_plain[0]["loss"]  # it learned something worth comparing


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "adam"])
def test_other_optimisers_take_the_plain_path(optimizer):
    net = Network.from_spec("6-5-3", seed=0)
    assert fused.sgd_step(net, get_optimizer(optimizer, 0.1)) is None

    class Clipped(GradientDescent):  # a subclass may change the rule: not fused either
        pass

    assert fused.sgd_step(net, Clipped(0.1)) is None
    X, y = make_data(RNG, 6, 3, 40)
    assert Trainer(net, X, y, epochs=1, optimizer=optimizer)._fused_step is None
    assert Trainer(net, X, y, epochs=1, optimizer="sgd")._fused_step is not None


def test_a_weight_matrix_gemm_cannot_write_in_place_takes_the_plain_step(monkeypatch):
    """A W set by hand as a Fortran-ordered array (a transposed copy): that layer's update is
    the plain one, and the step still matches the plain path."""
    monkeypatch.setattr(fused, "FUSE_FROM", 0)
    X, y = make_data(RNG, 9, 4, 11)
    nets = _pair("9-7-4", np.float64)
    for net in nets:
        net.dense_layers[0].W = np.asfortranarray(net.dense_layers[0].W)
    moved = []
    for net, use_fused in zip(nets, (False, True), strict=True):
        opt = get_optimizer("sgd", 0.3)
        A = net.forward(X, training=True)
        grad = net.output_gradient(A, net.targets(y))
        if use_fused:
            fused.sgd_step(net, opt)(grad)
        else:
            net.backpropagate(grad)
            opt.step(net.parameters())
        moved.append([theta.copy() for _, theta, _ in net.parameters()])
    for plain_theta, fused_theta in zip(*moved, strict=True):
        np.testing.assert_allclose(fused_theta, plain_theta, rtol=1e-13, atol=1e-14)
