"""layers.py: Dense and Dropout, each against finite differences and PyTorch autograd.

The per-example convention of :mod:`digitnet.layers` is what is checked: for a lone layer the
scalar objective is ``f = 1/m Σ R ⊙ layer.forward(A)`` with a fixed random ``R`` (so the upstream
per-example gradient is ``R``), and the returned ``dA_prev`` must equal ``m · ∂f/∂A_prev``; the
parameter gradients ``dW``, ``db`` must equal ``∂f/∂W``, ``∂f/∂b`` exactly (no factor ``m``).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradutil import M, assert_grad_close, lone_layer_gradients, numerical_gradient

from digitnet.errors import ConfigError, ShapeError
from digitnet.layers import Dense, Dropout

# -- Dense ------------------------------------------------------------------------------------


def test_dense_gradients_dW_db_dA_prev():
    rng = np.random.default_rng(10)
    n_in, n_out = 6, 4
    layer = Dense(rng.normal(0, 0.5, (n_out, n_in)), rng.normal(0, 0.5, (n_out, 1)))
    A = rng.normal(0.0, 1.0, (n_in, M))

    dA_prev, numeric_dA, f, _ = lone_layer_gradients(layer, A, rng)
    dW, db = layer.dW.copy(), layer.db.copy()
    assert_grad_close(dA_prev, numeric_dA, "Dense dA_prev (= m·∂f/∂A_prev)")
    # dW, db are exactly ∂f/∂W, ∂f/∂b: the 1/m is inside them
    assert_grad_close(dW, numerical_gradient(f, layer.W), "Dense dW")
    assert_grad_close(db, numerical_gradient(f, layer.b), "Dense db")
    assert dW.shape == (n_out, n_in)
    assert db.shape == (n_out, 1)


def test_dense_first_layer_skips_dA_prev_but_keeps_dW_db():
    rng = np.random.default_rng(11)
    layer = Dense(rng.normal(0, 0.5, (3, 5)), rng.normal(0, 0.5, (3, 1)))
    A = rng.normal(0.0, 1.0, (5, M))
    R = rng.normal(0.0, 1.0, (3, M))

    def f() -> float:
        return float(np.sum(R * layer.forward(A, training=True)) / M)

    layer.needs_input_grad = False
    layer.forward(A, training=True)
    assert layer.backward(R) is None
    assert_grad_close(layer.dW, numerical_gradient(f, layer.W), "Dense dW (no dA_prev)")
    assert_grad_close(layer.db, numerical_gradient(f, layer.b), "Dense db (no dA_prev)")


def test_dense_matches_torch_linear():
    """Z = W·A_prev + b and its backward, against torch.nn.functional.linear's autograd."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    W, b, A = rng.normal(size=(4, 6)), rng.normal(size=(4, 1)), rng.normal(size=(6, M))
    R = rng.normal(size=(4, M))  # the upstream per-example gradient
    layer = Dense(W.copy(), b.copy())
    Z = layer.forward(A, training=True)
    dA_prev = layer.backward(R)
    Wt, bt, At = (torch.tensor(v, requires_grad=True) for v in (W, b[:, 0], A.T))
    Zt = torch.nn.functional.linear(At, Wt, bt)  # examples as rows, as torch has them
    ((Zt * torch.tensor(R.T)).sum() / M).backward()
    np.testing.assert_allclose(Z, Zt.detach().numpy().T, rtol=1e-12)
    np.testing.assert_allclose(layer.dW, Wt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.db[:, 0], bt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dA_prev, M * At.grad.numpy().T, rtol=1e-12)  # m·∂f/∂A_prev


def test_dense_refuses_bad_shapes():
    with pytest.raises(ShapeError, match="2-D"):
        Dense(np.zeros(3), np.zeros(3))
    with pytest.raises(ShapeError, match=r"b must have shape \(2, 1\)"):
        Dense(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ShapeError, match="examples are the columns"):
        Dense(np.zeros((2, 3)), np.zeros(2)).forward(np.zeros((4, 3)))
    with pytest.raises(RuntimeError, match="forward"):
        Dense(np.zeros((2, 3)), np.zeros(2)).backward(np.zeros((2, 5)))


# -- Dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_gradient_with_fixed_mask(p):
    rng = np.random.default_rng(30)
    layer = Dropout(p)
    A = rng.normal(0.0, 1.0, (8, M))

    def reset():
        layer.rng = np.random.default_rng(0)

    dA_prev, numeric, _, _ = lone_layer_gradients(layer, A, rng, reset=reset)
    mask = layer.mask
    # the check means something only if some units are dropped and some kept
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    np.testing.assert_array_equal(np.unique(mask), [0.0, 1.0 / (1.0 - p)])
    assert_grad_close(dA_prev, numeric, f"Dropout(p={p}) dA_prev")


def test_dropout_passes_through_at_inference_and_refuses_bad_p():
    A = np.ones((3, 4))
    layer = Dropout(0.5, np.random.default_rng(0))
    assert layer.forward(A) is A  # inference: untouched, no mask drawn
    assert layer.mask is None
    for p in (-0.1, 1.0, 2):
        with pytest.raises(ConfigError, match=r"dropout probability p must be in \[0, 1\)"):
            Dropout(p)
