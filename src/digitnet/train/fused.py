"""Fused training steps: the plain path's arithmetic in fewer passes over memory, where it pays.

The plain path (docs/math.md, :meth:`digitnet.network.Network.backpropagate` then
:meth:`digitnet.optim.Optimizer.step`) does a gradient-descent step in two separate moves, as
the seeds write it: backpropagation fills ``dW = 1/m dZ·A_prevᵀ`` (a matrix product written to
memory), then the optimiser reads ``dW`` back and moves ``W := W - α dW`` (two more passes over
arrays as large as ``W``). That is right, and it is what a reader should see. But a matrix
product can add into its output: BLAS's GEMM computes ``C := β·C + a·A·B``. So one call,

    ``W := (1 - αλ)·W - (α/m)·dZ·A_prevᵀ``        (a = -α/m, β = 1 - αλ, C = W)

is the same step, weight decay λ included (``θ := θ - α(dθ + λθ)`` of :class:`GradientDescent`),
with ``dW`` never written, read or stored: the update happens inside the product, tile by tile,
while the tile is in cache, and on every BLAS thread (NumPy's element-wise passes run on one).
``db`` is a sum of 10 to 1024 numbers, folded the same way: ``b := b - (α/m) Σ dZ``.

**What it fuses**: for each dense layer, backpropagation's ``dW``, ``db`` and gradient descent's
update of ``W`` and ``b``. **What it keeps**: everything else runs the plain code, unchanged: the
forward pass, the cost, ``dZᴸ = Aᴸ - Y``, every activation's and dropout's ``backward``, and
``dA_prev = Wᵀ·dZ``, which is formed *before* ``W`` moves, as in the plain path (every gradient is
of the same ``W`` the forward pass used).

**Why it stays**: ``python bench/bench_train.py`` prints the epoch with and without it (the
``plain`` rows). On this project's 2-core machine (4 runs of 5 quiet rounds, paired ratios),
digitnet's epoch was 0.51-0.66 of PyTorch's on 784-128-10 and 0.68-0.74 on 784-512-256-10 with
it, and 0.57-1.05 and 0.80-0.93 on the plain path: without it the project's target (at most 0.8)
is not met. Alternating the two in one process (12 rounds), a fused epoch of 784-512-256-10 takes
0.84-0.85 of a plain one; a step alone (forward, backward, update on one batch of 128), 0.71-0.84
on 784-512-256-10 and 0.68-0.90 on 784-128-10.

**When it applies**: the optimiser is exactly :class:`~digitnet.optim.GradientDescent` (``gd``,
``sgd``: momentum and Adam need ``dW`` itself), every layer with parameters is a
:class:`~digitnet.layers.Dense`, the network's dtype is float32 or float64, and NumPy's BLAS
exposes a Fortran GEMM that passed a small self-test against ``np.matmul``
(:func:`blas_gemm`). Otherwise training runs the plain path; ``fit(..., fused=False)`` asks for
the plain path always. A layer of fewer than :data:`FUSE_FROM` weights (784-10-10's second
layer, say) takes the plain step inside the fused one: its ``backward``, then the optimiser's
update, since there the call into BLAS costs more than it saves.

The two paths are tested against each other (``tests/test_fused.py``): the same weights after a
step and after whole runs, to float rounding (they add the same products in another order).

After a fused step ``dW`` and ``db`` are not filled: nothing in training reads them (the
gradient checks, the page and ``explain`` run the plain ``backward``).
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from digitnet.layers import Dense
from digitnet.optim import GradientDescent, Optimizer

#: weights in a layer from which the fused step pays: below, the call into BLAS through ctypes
#: (about 6 µs more than NumPy's own) costs more than the passes over ``W`` it saves
FUSE_FROM = 4096

#: gemm(W, dZ, A_prev, a, beta): W := beta·W + a·dZ·A_prevᵀ, in place (see :func:`blas_gemm`)
Gemm = Callable[[np.ndarray, np.ndarray, np.ndarray, float, float], None]

_LETTER = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
_CTYPE = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


def _gemm_symbols(lib: Any, letter: str) -> list[str]:
    """Names NumPy's BLAS may give its Fortran GEMM: plain (``sgemm_``), or with the prefix and
    suffix of the wheels' bundled OpenBLAS (``scipy_sgemm_64_``), as threadpoolctl finds them."""
    prefixes = dict.fromkeys([getattr(lib, "_symbol_prefix", "") or "", "", "scipy_"])
    suffixes = dict.fromkeys([getattr(lib, "_symbol_suffix", "") or "", "", "64_", "_64"])
    return [f"{p}{letter}gemm_{s}" for p in prefixes for s in suffixes]


def _fortran_gemm(dll: ctypes.CDLL, name: str, dtype: np.dtype) -> Gemm:
    """``W := beta·W + a·dZ·A_prevᵀ`` through the Fortran ``?gemm_`` entry ``name`` of ``dll``.

    Fortran is column-major: the C-ordered ``W`` (n_out, n_in) is, to Fortran, ``Wᵀ``
    (n_in x n_out); so the call computes ``Wᵀ := beta·Wᵀ + a·A_prev·dZᵀ``. Every argument goes
    by reference, and the integers as 64-bit: an ILP64 BLAS reads all 8 bytes, an LP64 one the
    low 4 of them, which on a little-endian machine are the same number (so the one call is
    right for both; :func:`blas_gemm` refuses big-endian machines).
    """
    real = _CTYPE[dtype]
    p_int, p_real = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(real)
    fn = getattr(dll, name)
    fn.restype = None
    fn.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, p_int, p_int, p_int,  # transa, transb, M, N, K
        p_real, ctypes.c_void_p, p_int, ctypes.c_void_p, p_int,  # alpha, A, lda, B, ldb
        p_real, ctypes.c_void_p, p_int,  # beta, C, ldc
        ctypes.c_size_t, ctypes.c_size_t,  # gfortran's hidden lengths of the two characters
    ]  # fmt: skip
    byref = ctypes.byref

    @functools.lru_cache(maxsize=64)
    def ref(n: int) -> Any:  # the same few sizes every step: one c_int64 each, made once
        return byref(ctypes.c_int64(n))

    def fortran(X: np.ndarray) -> tuple[np.ndarray, bool, int]:
        """``X`` (p, q) in memory Fortran can read: (the array, whether Fortran sees ``Xᵀ``,
        its leading dimension). F-ordered, Fortran sees ``X`` (ld p); C-ordered, ``Xᵀ`` (ld q)."""
        if not (X.flags.f_contiguous or X.flags.c_contiguous) or X.dtype != dtype:
            X = np.ascontiguousarray(X, dtype=dtype)
        if X.flags.f_contiguous:
            return X, False, max(X.shape[0], 1)
        return X, True, max(X.shape[1], 1)

    def gemm(W: np.ndarray, dZ: np.ndarray, A_prev: np.ndarray, a: float, beta: float) -> None:
        n_out, n_in = W.shape
        m = dZ.shape[1]
        if not _in_place(W, dtype):
            raise ValueError("W must be a writeable C-ordered array of the gemm's dtype")
        if dZ.shape != (n_out, m) or A_prev.shape != (n_in, m):  # BLAS would read past them
            raise ValueError(f"W {W.shape}, dZ {dZ.shape} and A_prev {A_prev.shape} do not fit")
        # Wᵀ (n_in x n_out) := beta·Wᵀ + a·op(A)·op(B), with op(A) = A_prev (n_in x m) and
        # op(B) = dZᵀ (m x n_out): transpose whichever operand Fortran sees the wrong way round
        A, a_flipped, lda = fortran(A_prev)  # Fortran must read A_prev itself
        B, b_flipped, ldb = fortran(dZ)  # ... and dZᵀ, which a C-ordered dZ already is to it
        fn(
            b"T" if a_flipped else b"N", b"N" if b_flipped else b"T",
            ref(n_in), ref(n_out), ref(m),
            byref(real(a)), A.ctypes.data, ref(lda), B.ctypes.data, ref(ldb),
            byref(real(beta)), W.ctypes.data, ref(max(n_in, 1)),
            1, 1,
        )  # fmt: skip

    return gemm


def _passes_self_test(gemm: Gemm, dtype: np.dtype) -> bool:
    """The gemm agrees with ``np.matmul`` on small odd shapes, in every operand order used."""
    rng = np.random.default_rng(0)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for (n_out, n_in, m), dZ_order, A_order in itertools.product(
        ((3, 5, 7), (10, 17, 4), (4, 6, 1)), "CF", "CF"
    ):
        W0 = rng.standard_normal((n_out, n_in)).astype(dtype)
        dZ = rng.standard_normal((n_out, m)).astype(dtype, order=dZ_order)
        A = rng.standard_normal((n_in, m)).astype(dtype, order=A_order)
        W = W0.copy()
        gemm(W, dZ, A, -0.5, 0.75)
        want = 0.75 * W0.astype(np.float64) - 0.5 * (dZ.astype(np.float64) @ A.T)
        if not np.allclose(W, want, rtol=tol, atol=tol):
            return False
    return True


@functools.cache
def blas_gemm(dtype: Any) -> Gemm | None:
    """The in-place ``W := beta·W + a·dZ·A_prevᵀ`` of NumPy's own BLAS for ``dtype``, or None.

    Found through threadpoolctl (the library NumPy loaded, so that the training's choice of BLAS
    threads, :mod:`digitnet.train.threads`, governs it too), under the names that library may
    use, and kept only if it passes :func:`_passes_self_test`. None on a big-endian machine, for
    another dtype, or where no such BLAS is found: training then runs the plain path.
    """
    dtype = np.dtype(dtype)
    if dtype not in _LETTER or sys.byteorder != "little":
        return None
    from digitnet.train.threads import numpy_blas

    for lib in numpy_blas():
        dll = getattr(lib, "dynlib", None)
        try:
            dll = dll if dll is not None else ctypes.CDLL(str(lib.filepath))
        except OSError:
            continue
        for name in _gemm_symbols(lib, _LETTER[dtype]):
            if hasattr(dll, name):
                gemm = _fortran_gemm(dll, name, dtype)
                return gemm if _passes_self_test(gemm, dtype) else None
    return None


def _in_place(W: np.ndarray, dtype: Any) -> bool:
    """Whether GEMM can write ``W`` in place: C-ordered, writeable, of the network's dtype (a
    ``W`` a user set by hand, say a transposed copy, takes the plain step instead)."""
    return bool(W.flags.c_contiguous and W.flags.writeable and W.dtype == dtype)


def sgd_step(net: Any, opt: Optimizer) -> Callable[[np.ndarray], None] | None:
    """The fused backward-and-update step for ``net`` trained by ``opt``, or None.

    The returned ``step(grad)`` takes what :meth:`~digitnet.network.Network.output_gradient`
    returns and does what ``net.backpropagate(grad)`` then ``opt.step(net.parameters())`` do,
    in fewer passes (see the module doc): for each layer, last first, a dense layer forms
    ``dA_prev = Wᵀ·dZ`` and then moves ``W := (1 - αλ)W - (α/m) dZ·A_prevᵀ`` and
    ``b := b - (α/m) Σ dZ`` in place; any other layer runs its own ``backward``. ``opt.alpha``
    (the schedule's α of this step) and ``opt.weight_decay`` are read at each call, and
    ``opt.t`` counts the step, as :meth:`~digitnet.optim.Optimizer.step` does.

    None when it does not apply (see the module doc): the caller runs the plain path.
    """
    if type(opt) is not GradientDescent:  # a subclass may change the rule
        return None
    if not all(isinstance(p, Dense) for p in net.layers if getattr(p, "W", None) is not None):
        return None
    gemm = blas_gemm(net.dtype)
    if gemm is None:
        return None
    layers = net.backward_layers()  # last first
    # a small layer's plain step: its backward, then the optimiser's update of W and b
    params = net.parameters()  # W1, b1, W2, b2, ...: two per dense layer, in order
    plain = {
        id(layer): params[2 * i : 2 * i + 2]
        for i, layer in enumerate(net.dense_layers)
        if layer.W.size < FUSE_FROM or not _in_place(layer.W, net.dtype)
    }

    def step(grad: np.ndarray) -> None:
        alpha, lam = opt.alpha, opt.weight_decay
        for layer in layers:
            if not isinstance(layer, Dense):
                grad = layer.backward(grad)
                continue
            small = plain.get(id(layer))
            if small is not None:
                grad = layer.backward(grad)  # dW, db and dA_prev, as the plain path
                for p in small:
                    opt.update(p.name, p.theta, p.dtheta, lam if p.is_weight else 0.0)
                if grad is None:
                    break
                continue
            dZ, A_prev = grad, layer.A_prev
            if A_prev is None:
                raise RuntimeError("backward() needs a forward(..., training=True) first.")
            a = alpha / dZ.shape[1]  # α/m: the 1/m of dW = 1/m dZ·A_prevᵀ, and the α of the step
            # dA_prev = Wᵀ·dZ, with the W of the forward pass: before W moves
            grad = layer.W.T @ dZ if layer.needs_input_grad else None
            gemm(layer.W, dZ, A_prev, -a, 1.0 - alpha * lam)  # W := (1-αλ)W - α/m dZ·A_prevᵀ
            layer.b -= a * dZ.sum(axis=1, keepdims=True)  # b := b - α/m Σ dZ (no decay on b)
            if grad is None:  # the first dense layer: dA⁰ is not needed
                break
        opt.t += 1

    return step
