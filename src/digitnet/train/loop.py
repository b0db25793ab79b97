"""The training loop: shuffle, cut into mini-batches, forward, backward, step; repeat.

One step is the seeds' whole recipe on a batch of ``m`` examples: forward pass, backpropagation,
then ``θ := θ - α dθ`` (or another optimiser's rule). The loop reports through callbacks and never
prints.

Why the data are held as rows: the seeds put examples in the columns of ``X`` (784 x m), and the
network sees exactly that. But gathering random columns of a C-ordered (784, m) array touches
every cache line of it; so the loop holds ``Xᵀ`` (m, 784) with each example contiguous, gathers a
batch's rows into a reused buffer, and hands the network the buffer's transpose: a (784, batch)
view, no copy, which BLAS reads as a transposed operand for free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from digitnet.errors import DivergenceError, ShapeError
from digitnet.optim import Optimizer, Schedule, get_optimizer

#: one dict per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds, lr
History = list[dict[str, Any]]
Callback = Callable[[dict[str, Any]], Any]
#: ``augment(rows, rng, out=...)``: distorted copies of a batch's rows (see data.augment)
Augment = Callable[..., np.ndarray]


def fit(
    net: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int | None = 128,
    optimizer: str | Optimizer = "adam",
    learning_rate: float = 1e-3,
    schedule: Schedule | None = None,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    callbacks: Iterable[Callback] = (),
    augment: Augment | None = None,
    sample: np.ndarray | None = None,
    **optimizer_kwargs: Any,
) -> History:
    """Train ``net`` on ``X`` (``(784, m)``, one example per column) and labels ``y`` (``(m,)``).

    ``batch_size=None`` (or ``>= m``) is full-batch gradient descent, as in the seeds. Each epoch
    visits every example once in a fresh random order drawn from ``rng`` (or ``seed``). After
    every epoch each callback gets that epoch's record, which is also appended to the returned
    history: ``epoch``, ``loss`` and ``accuracy`` (running means over the epoch's batches, with
    dropout on), ``val_loss`` and ``val_accuracy`` (on ``validation_data``, at inference; ``None``
    without it), ``seconds``, ``lr``.

    ``sample``, when given, holds the indices of the columns of ``X`` to train on (for example
    all but a validation set): batches are gathered from them, with no copy of the subset.

    ``augment``, when given, distorts every batch afresh after it is gathered (for example a
    :class:`digitnet.data.augment.Augmenter`), from its own random stream.

    Raises :class:`~digitnet.errors.DivergenceError` as soon as the cost is NaN or infinite.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != net.n_inputs:
        raise ShapeError(
            f"X must have shape ({net.n_inputs}, m), one example per column; got {X.shape}.",
            "for images as rows (m, 784), pass X.T",
        )
    if y.shape != (X.shape[1],):
        raise ShapeError(
            f"y must hold one label per column of X, shape ({X.shape[1]},); got {y.shape}."
        )
    if sample is not None:
        sample = np.asarray(sample, dtype=np.intp)
        if sample.ndim != 1 or (sample.size and not 0 <= sample.min() <= sample.max() < y.size):
            raise ShapeError(f"sample must hold column indices of X in [0, {y.size}).")
    m = X.shape[1] if sample is None else sample.size
    if m == 0:
        raise ShapeError("There are no training examples (X has 0 columns).")
    labels = y if sample is None else y[sample]
    if labels.min() < 0 or labels.max() >= net.n_outputs:
        raise ShapeError(
            f"Labels must be integers in [0, {net.n_outputs - 1}]; "
            f"got values from {labels.min()} to {labels.max()}."
        )
    if epochs < 0:
        raise ShapeError(f"epochs must be >= 0; got {epochs}.")
    y = y.astype(np.intp, copy=False)
    rng = rng if rng is not None else np.random.default_rng(seed)
    opt = get_optimizer(optimizer, learning_rate, **optimizer_kwargs)
    base_alpha = opt.alpha
    schedule = schedule or Schedule()
    callbacks = list(callbacks)

    bs = m if batch_size is None or batch_size >= m else int(batch_size)
    if bs < 1:
        raise ShapeError(f"batch_size must be a positive integer or None; got {batch_size}.")
    full_batch = bs == m and augment is None  # augmenting needs a gathered copy to distort
    aug_rng = rng.spawn(1)[0] if augment is not None else None
    # Held once as rows (m, 784), C-ordered: free when X is the transpose of such an array.
    XT = np.ascontiguousarray(X.T, dtype=net.dtype)
    if full_batch and sample is not None:  # one step on the subset each epoch: gather it once
        XT, y, sample = XT[sample], y[sample], None
    pool = np.arange(m) if sample is None else sample  # the columns an epoch visits
    n_batches = math.ceil(m / bs)
    parameters = net.parameters()
    history: History = []
    batch_rows: dict[int, np.ndarray] = {}
    Y_bufs: dict[int, np.ndarray] = {}

    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            order = None if full_batch else pool[rng.permutation(m)] if bs < m else pool
            loss_sum, correct = 0.0, 0
            for k in range(n_batches):
                opt.alpha = base_alpha * schedule.factor(epoch - 1 + (k + 0.5) / n_batches, epochs)
                if full_batch:
                    A0, yb = XT.T, y
                else:
                    idx = order[k * bs : (k + 1) * bs]
                    n = idx.shape[0]
                    rows = batch_rows.get(n)
                    if rows is None:
                        rows = batch_rows[n] = np.empty((n, XT.shape[1]), dtype=net.dtype)
                    np.take(XT, idx, axis=0, out=rows)
                    if augment is not None:
                        augment(rows, aug_rng, out=rows)
                    A0, yb = rows.T, y[idx]  # A⁰ = X for this batch, (784, n)
                n = yb.shape[0]
                Yb = Y_bufs.get(n)
                if Yb is None:
                    Yb = Y_bufs[n] = np.empty((net.n_outputs, n), dtype=net.dtype)
                Y = net.targets(yb, out=Yb)
                A = net.forward(A0, training=True)
                batch_loss = net.cost_value(A, Y, net.log_output())
                if not math.isfinite(batch_loss):
                    raise DivergenceError(
                        f"The cost became {batch_loss} at epoch {epoch}, batch {k + 1}: training "
                        f"diverged with learning rate {base_alpha:g}.",
                        f"try a smaller learning rate, such as {base_alpha / 10:g}",
                    )
                loss_sum += batch_loss * n
                correct += int(np.count_nonzero(A.argmax(axis=0) == yb))
                net.backward(A, Y)
                opt.step(parameters)
            seconds = time.perf_counter() - t0
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": loss_sum / m,
                "accuracy": correct / m,
                "val_loss": None,
                "val_accuracy": None,
                "seconds": seconds,
                "lr": opt.alpha,
            }
            if validation_data is not None:
                record["val_loss"], record["val_accuracy"] = net.evaluate(*validation_data)
            history.append(record)
            for cb in callbacks:
                cb(record)
    return history
