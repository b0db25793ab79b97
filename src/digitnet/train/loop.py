"""The training loop: shuffle, cut into mini-batches, forward, backward, step; repeat.

One step is the seeds' whole recipe on a batch of ``m`` examples: forward pass, backpropagation,
then ``θ := θ - α dθ`` (or another optimiser's rule). The loop reports through callbacks and never
prints.

Why the data are held as rows: the seeds put examples in the columns of ``X`` (784 x m), and the
network sees exactly that. But gathering random columns of a C-ordered (784, m) array touches
every cache line of it; so the loop holds ``Xᵀ`` (m, 784) with each example contiguous, gathers a
batch's rows into a reused buffer, and hands the network the buffer's transpose: a (784, batch)
view, no copy, which BLAS reads as a transposed operand for free.

The loop's whole state is explicit, in a :class:`Trainer`: the network's parameters, the
optimiser's slots and step count, the epoch and the next batch of it, the epoch's order, the
running sums, the history, and the state of every random generator (the order, the augmentation,
the dropout masks). :meth:`Trainer.state` returns it and :meth:`Trainer.restore` puts it back, so
a run stopped after any mini-batch (``should_stop``) and resumed from that state ends with the
same weights and history, bit for bit, as a run that was never stopped.
"""

from __future__ import annotations

import copy
import difflib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from digitnet.errors import ConfigError, DivergenceError, ShapeError
from digitnet.layers import Dropout
from digitnet.optim import Optimizer, Schedule, get_optimizer
from digitnet.train import fused
from digitnet.train.threads import BlasThreads, largest_product

#: one dict per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds, lr
History = list[dict[str, Any]]
Callback = Callable[[dict[str, Any]], Any]
#: ``on_batch(k, n_batches, batch_loss)`` after the k-th mini-batch (1-based) of an epoch
BatchCallback = Callable[[int, int, float], Any]
#: ``augment(rows, rng, out=...)``: distorted copies of a batch's rows (see data.augment)
Augment = Callable[..., np.ndarray]

#: the version of the dictionary :meth:`Trainer.state` returns
STATE_VERSION = 1


@dataclass
class FitOptions:
    """How to train: every setting of :func:`fit` and :class:`Trainer`, in one place.

    ``epochs``, ``batch_size`` (``None``: the whole training set, full-batch gradient descent as
    in the seeds), the optimiser (a name or an :class:`~digitnet.optim.Optimizer`) with its
    ``learning_rate`` (the seeds' α) and ``optimizer_options`` (``momentum``, ``weight_decay``,
    ...: :func:`~digitnet.optim.get_optimizer` refuses those it does not take), the learning-rate
    ``schedule``, ``validation_data`` ``(X_val, y_val)``, the random ``seed`` or generator
    ``rng`` of the epochs' order, ``callbacks`` after each epoch, ``augment``, ``sample``,
    ``on_batch``, ``should_stop``, ``early_stopping``, ``outliers`` and ``outlier_share`` (see
    :class:`Trainer`). ``fused``: take the fused step of :mod:`digitnet.train.fused` where it
    applies (plain gradient descent); ``False`` runs the plain path of docs/math.md always.

    ``fit(net, X, y, epochs=5)`` and ``fit(net, X, y, FitOptions(epochs=5))`` are the same call:
    :meth:`build` makes the options from keywords, and keywords that are not settings go to the
    optimiser, as ``fit`` always took them.
    """

    epochs: int = 10
    batch_size: int | None = 128
    optimizer: str | Optimizer = "adam"
    learning_rate: float = 1e-3
    schedule: Schedule | None = None
    validation_data: tuple[np.ndarray, np.ndarray] | None = None
    seed: int | None = None
    rng: np.random.Generator | None = None
    callbacks: Iterable[Callback] = ()
    augment: Augment | None = None
    sample: np.ndarray | None = None
    on_batch: Iterable[BatchCallback] = ()
    should_stop: Callable[[], bool] | None = None
    early_stopping: int | None = None
    outliers: np.ndarray | None = None
    outlier_share: float = 0.0
    fused: bool = True
    optimizer_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, options: FitOptions | None = None, **keywords: Any) -> FitOptions:
        """``options`` (or the defaults) with ``keywords`` changed; keywords that are not
        settings are the optimiser's (``momentum=0.9``), added to ``optimizer_options``."""
        if options is not None and not isinstance(options, cls):
            raise ConfigError(
                f"The settings of a fit come as keywords or as one FitOptions; got "
                f"{type(options).__name__} {options!r:.40}.",
                "name the setting: fit(net, X, y, epochs=5), or pass FitOptions(epochs=5)",
            )
        base = options if options is not None else cls()
        if not keywords:
            return base
        settings = {f.name for f in fields(cls)}
        own = {k: v for k, v in keywords.items() if k in settings}
        extra = {k: v for k, v in keywords.items() if k not in settings}
        for name in extra:  # a misspelt setting would otherwise be blamed on the optimiser
            close = difflib.get_close_matches(name, sorted(settings), n=1, cutoff=0.8)
            if close:
                raise ConfigError(
                    f"fit has no setting {name!r}; did you mean {close[0]!r}?",
                    f"the settings are {', '.join(f.name for f in fields(cls))}, and the "
                    "optimiser's options (momentum, weight_decay, ...)",
                )
        if extra:
            own["optimizer_options"] = {**own.get("optimizer_options", base.optimizer_options)}
            own["optimizer_options"].update(extra)
        return replace(base, **own)


def dropout_generators(net: Any) -> list[np.random.Generator]:
    """The distinct random generators of the network's dropout layers, in layer order.

    :meth:`Network.from_spec` gives all its dropout layers one shared generator; a network built
    by hand may give each its own.
    """
    gens: list[np.random.Generator] = []
    for layer in getattr(net, "layers", ()):
        if isinstance(layer, Dropout) and not any(layer.rng is g for g in gens):
            gens.append(layer.rng)
    return gens


def _is_int(value: Any) -> bool:
    """An integer (NumPy's too), not a bool and not a float that happens to be whole."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _set_rng_state(gen: np.random.Generator, state: Any, what: str) -> None:
    kind = type(gen.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        got = state.get("bit_generator") if isinstance(state, dict) else state
        raise ConfigError(f"The saved state of the {what} generator is for {got!r}, not {kind}.")
    try:
        gen.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"The saved state of the {what} generator is invalid ({exc}).") from None


class Trainer:
    """Mini-batch training of ``net`` with every piece of its state in the open.

    Takes the arguments of :func:`fit` (which is ``Trainer(...).train()``): a
    :class:`FitOptions`, or its settings as keywords. Of those settings:

    - ``on_batch``: callables ``on_batch(k, n_batches, batch_loss)`` after each mini-batch (``k``
      counts from 1 within the epoch): for progress bars.
    - ``should_stop``: a callable asked after each mini-batch; when it returns true, :meth:`train`
      returns at once, with the state intact (the epoch is finished first when that batch was
      its last). Calling :meth:`train` again, or :meth:`restore` on a new trainer and then
      :meth:`train`, carries on exactly where it stopped.
    - ``early_stopping``: a patience in epochs. Training ends when the validation loss has not
      improved for that many epochs; :meth:`restore_best` (which :func:`fit` calls) puts back
      the weights of the epoch with the lowest validation loss. Needs ``validation_data``.
    - ``outliers``, ``outlier_share``: Outlier Exposure (Hendrycks et al. 2019). ``outliers``
      holds examples of none of the classes as rows ``(N, n_inputs)`` (for digits,
      :func:`digitnet.data.outliers.make_outliers`); each mini-batch of ``n`` examples carries
      ``round(outlier_share * n)`` of them besides, in turn through the pool, augmented like the
      examples, with the uniform target ``1/n_classes`` in every row of ``Y``: the network
      learns to spread its probability over the classes for what is none of them. The reported
      loss and accuracy are the examples' alone.

    The attributes :attr:`epochs_done`, :attr:`k` (mini-batches done in the current epoch),
    :attr:`n_batches` and :attr:`history` say where training is.
    """

    def __init__(
        self,
        net: Any,
        X: np.ndarray,
        y: np.ndarray,
        options: FitOptions | None = None,
        **keywords: Any,
    ) -> None:
        o = FitOptions.build(options, **keywords)
        X, y = np.asarray(X), np.asarray(y)
        sample = self._check_data(net, X, y, o.sample)
        m = X.shape[1] if sample is None else sample.size
        self._check_settings(o)
        self.net = net
        self.epochs = int(o.epochs)
        self.validation_data = o.validation_data
        self.callbacks = list(o.callbacks)
        self.on_batch = list(o.on_batch)
        self.should_stop = o.should_stop
        self.early_stopping = None if o.early_stopping is None else int(o.early_stopping)
        self.augment = o.augment
        self.outliers, self.outlier_share = self._check_outliers(net, o)
        self.rng = o.rng if o.rng is not None else np.random.default_rng(o.seed)
        self.opt = get_optimizer(o.optimizer, o.learning_rate, **o.optimizer_options)
        self.base_alpha = self.opt.alpha
        self.schedule = o.schedule or Schedule()
        # backward and θ := θ - α dθ in one pass per layer, where that applies (train/fused.py)
        self._fused_step = fused.sgd_step(net, self.opt) if o.fused else None
        self._hold_data(X, y, m, o.batch_size, sample)
        self._start()

    @staticmethod
    def _check_data(
        net: Any, X: np.ndarray, y: np.ndarray, sample: np.ndarray | None
    ) -> np.ndarray | None:
        """Refuse data the network cannot train on; ``sample`` as an index array (or None)."""
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
        return sample

    @staticmethod
    def _check_outliers(net: Any, o: FitOptions) -> tuple[np.ndarray | None, float]:
        """The outlier pool as C-ordered rows of the network's dtype, and its share."""
        share = o.outlier_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 4:
            raise ConfigError(
                f"outlier_share is the number of outliers per example of a batch, from 0 to 4; "
                f"got {share!r}."
            )
        if o.outliers is None or share == 0:
            return None, 0.0
        pool = np.ascontiguousarray(o.outliers, dtype=net.dtype)
        if pool.ndim != 2 or pool.shape[0] == 0 or pool.shape[1] != net.n_inputs:
            raise ShapeError(
                f"outliers must be rows (N, {net.n_inputs}), one example per row; "
                f"got {np.shape(o.outliers)}."
            )
        return pool, float(share)

    @staticmethod
    def _check_settings(o: FitOptions) -> None:
        """Refuse settings that cannot train: epochs, batch size, early stopping's patience."""
        if not _is_int(o.epochs) or o.epochs < 0:
            raise ConfigError(f"epochs must be an integer >= 0; got {o.epochs!r}.")
        if o.batch_size is not None and (not _is_int(o.batch_size) or o.batch_size < 1):
            raise ConfigError(
                f"batch_size must be a positive integer or None; got {o.batch_size!r}."
            )
        if o.early_stopping is None:
            return
        patience = o.early_stopping
        if isinstance(patience, bool) or int(patience) != patience or patience < 1:
            raise ConfigError(
                f"early_stopping is a patience in epochs, a positive integer; got {patience!r}."
            )
        if o.validation_data is None:
            raise ConfigError(
                "Early stopping watches the validation loss, but there is no validation set.",
                "hold out a validation set (a validation fraction above 0)",
            )

    def _hold_data(
        self, X: np.ndarray, y: np.ndarray, m: int, batch_size: int | None, sample: Any
    ) -> None:
        """Hold the examples as rows, the batch size and the random streams of the batches."""
        net = self.net
        self.m = m
        self.batch_size = m if batch_size is None or batch_size >= m else int(batch_size)
        bs = self.batch_size
        # augmenting (and adding outliers) needs a gathered copy to distort
        self.full_batch = bs == m and self.augment is None and self.outliers is None
        self.aug_rng = self.rng.spawn(1)[0] if self.augment is not None else None
        self.dropout_rngs = dropout_generators(net)
        y = y.astype(np.intp, copy=False)
        # Held once as rows (m, 784), C-ordered: free when X is the transpose of such an array.
        XT = np.ascontiguousarray(X.T, dtype=net.dtype)
        if self.full_batch and sample is not None:  # one step on the subset: gather it once
            XT, y, sample = XT[sample], y[sample], None
        self.XT, self.y = XT, y
        self.pool = np.arange(m) if sample is None else sample  # the columns an epoch visits
        self.n_batches = math.ceil(m / bs)
        self.parameters = net.parameters()
        self._batch_rows: dict[int, np.ndarray] = {}
        self._Y_bufs: dict[int, np.ndarray] = {}
        self._y_order: np.ndarray | None = None  # the labels in the epoch's order

    def _start(self) -> None:
        """Where training is: nothing done yet (:meth:`restore` puts a saved state instead)."""
        self.epochs_done = 0
        self.k = 0  # mini-batches done in the current epoch (0: the epoch has not started)
        self.order: np.ndarray | None = None  # the current epoch's order of columns
        self.loss_sum = 0.0
        self.correct = 0
        self.elapsed = 0.0  # seconds spent on the current epoch's batches so far
        self.history: History = []
        # early stopping
        self.best_val_loss: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.best_parameters: dict[str, np.ndarray] | None = None

    # -- progress ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """True when every epoch is done or early stopping has ended training."""
        return self.stopped_early or (self.k == 0 and self.epochs_done >= self.epochs)

    @property
    def seconds(self) -> float:
        """Seconds of training so far, over all epochs (and all sessions of a resumed run)."""
        return sum(h["seconds"] for h in self.history) + self.elapsed

    # -- the loop ----------------------------------------------------------------------------
    def train(self) -> History:
        """Train until every epoch is done, early stopping ends it, or ``should_stop()`` says so.

        Returns the history (one record per finished epoch, as :func:`fit` describes).
        Raises :class:`~digitnet.errors.DivergenceError` as soon as the cost is NaN or infinite.
        """
        if self.k == 0 and self.epochs_done > self.epochs:
            raise ConfigError(
                f"{self.epochs_done} epochs are done already, more than the {self.epochs} asked."
            )
        # BLAS threads by the size of the products and the CPUs free (train/threads.py)
        threads = BlasThreads(largest_product(self.net, self.batch_size))
        with threads, np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            self._threads = threads
            while not self.finished:
                if self._run_batches():
                    return self.history
                self._end_epoch()
                if self.should_stop is not None and self.should_stop():
                    break
        return self.history

    def _run_batches(self) -> bool:
        """The rest of the current epoch's mini-batches; True when stopped part-way."""
        if self.k == 0:
            if self.full_batch:
                self.order = None  # one step on all the examples, as they are
            elif self.batch_size < self.m:
                self.order = self.pool[self.rng.permutation(self.m)]  # a fresh order each epoch
            else:
                self.order = self.pool  # one batch (to augment): no order to draw
            self.loss_sum, self.correct, self.elapsed = 0.0, 0, 0.0
        # the labels in the epoch's order, once: a batch's labels are then a slice, not a gather
        self._y_order = None if self.order is None else self.y[self.order]
        t0 = time.perf_counter()
        try:
            n_batches = self.n_batches
            while self.k < n_batches:
                batch_loss = self._step(self.k)
                self.k += 1
                self._threads.check()
                for cb in self.on_batch:
                    cb(self.k, n_batches, batch_loss)
                if self.k < n_batches and self.should_stop is not None and self.should_stop():
                    return True
        finally:
            self.elapsed += time.perf_counter() - t0
        return False

    def _step(self, k: int) -> float:
        """Mini-batch ``k`` of the current epoch: forward, backward, one optimiser step."""
        net, opt, epoch = self.net, self.opt, self.epochs_done + 1
        n_batches, bs = self.n_batches, self.batch_size
        opt.alpha = self.base_alpha * self.schedule.factor(
            epoch - 1 + (k + 0.5) / n_batches, self.epochs
        )
        n_out = 0
        if self.full_batch:
            A0, yb = self.XT.T, self.y
        else:
            idx = self.order[k * bs : (k + 1) * bs]
            n = idx.shape[0]
            n_out = 0 if self.outliers is None else round(self.outlier_share * n)
            rows = self._batch_rows.get(n)
            if rows is None:
                shape = (n + n_out, self.XT.shape[1])
                rows = self._batch_rows[n] = np.empty(shape, dtype=net.dtype)
            # mode="clip": the indices come from a permutation, so they are in range, and NumPy
            # then writes straight into `rows` instead of through a bounds-checked buffer
            np.take(self.XT, idx, axis=0, out=rows[:n], mode="clip")
            if n_out:
                self._take_outliers(rows[n:], epoch, k)
            if self.augment is not None:
                self.augment(rows, self.aug_rng, out=rows)
            A0, yb = rows.T, self._y_order[k * bs : (k + 1) * bs]  # A⁰ = X for this batch
        A = net.forward(A0, training=True)  # forward: Aᴸ of the batch,
        n = yb.shape[0]
        Y = self._Y_bufs.get(n)
        if Y is None:
            Y = self._Y_bufs[n] = np.empty((net.n_outputs, n + n_out), dtype=net.dtype)
        net.targets(yb, out=Y[:, :n])
        if n_out:
            # Outlier Exposure: a non-example's target is the uniform distribution 1/n_classes.
            # Cross-entropy takes any target distribution, and its dZ = A - Y is unchanged.
            Y[:, n:] = 1.0 / net.n_outputs
        A_ex, Y_ex, log_A = A, Y, net.log_output()
        if n_out:  # the loss and accuracy reported are the examples' alone
            A_ex, Y_ex = A[:, :n], Y[:, :n]
            log_A = None if log_A is None else log_A[:, :n]
        batch_loss = net.cost_value(A_ex, Y_ex, log_A)  # the cost C,
        self._check_finite(batch_loss, epoch, k)
        grad = net.output_gradient(A, Y)  # dZᴸ = Aᴸ - Y (or ∂ℓ/∂Aᴸ),
        if self._fused_step is None:
            net.backpropagate(grad)  # backward: dW, db of every layer,
            opt.step(self.parameters)  # and θ := θ - α dθ (or another optimiser's rule)
        else:
            self._fused_step(grad)  # the same two, fused (train/fused.py)
        self.loss_sum += batch_loss * n
        self.correct += int(np.count_nonzero(A_ex.argmax(axis=0) == yb))
        return batch_loss

    def _take_outliers(self, out: np.ndarray, epoch: int, k: int) -> None:
        """The outliers of batch ``k`` of ``epoch`` into ``out``: the next ones in the pool.

        Where they come from depends only on the batch's place in training, not on any random
        state, so a resumed run takes the same ones as a run never stopped.
        """
        pool = self.outliers
        n_out, size = out.shape[0], pool.shape[0]
        start = (((epoch - 1) * self.n_batches + k) * n_out) % size
        np.take(pool, np.arange(start, start + n_out) % size, axis=0, out=out)

    def _check_finite(self, batch_loss: float, epoch: int, k: int) -> None:
        if not math.isfinite(batch_loss):
            raise DivergenceError(
                f"The cost became {batch_loss} at epoch {epoch}, batch {k + 1}: training "
                f"diverged with learning rate {self.base_alpha:g}.",
                f"try a smaller learning rate, such as {self.base_alpha / 10:g}",
            )

    def _end_epoch(self) -> None:
        m = self.m
        record: dict[str, Any] = {
            "epoch": self.epochs_done + 1,
            "loss": self.loss_sum / m,
            "accuracy": self.correct / m,
            "val_loss": None,
            "val_accuracy": None,
            "seconds": self.elapsed,
            "lr": self.opt.alpha,
        }
        if self.validation_data is not None:
            record["val_loss"], record["val_accuracy"] = self.net.evaluate(*self.validation_data)
        self.history.append(record)
        self.epochs_done += 1
        self.k, self.order = 0, None
        self.loss_sum, self.correct, self.elapsed = 0.0, 0, 0.0
        if self.early_stopping is not None:
            self._watch(record)
        for cb in self.callbacks:
            cb(record)

    def _watch(self, record: dict[str, Any]) -> None:
        """Early stopping's bookkeeping after an epoch: the best epoch and its weights."""
        val_loss = record["val_loss"]
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.bad_epochs = val_loss, record["epoch"], 0
            if self.best_parameters is None:
                self.best_parameters = {name: p.copy() for name, p, _ in self.parameters}
            else:
                for name, p, _ in self.parameters:
                    np.copyto(self.best_parameters[name], p)
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.early_stopping:
                self.stopped_early = True

    def restore_best(self) -> bool:
        """Put back the weights of the epoch with the lowest validation loss (early stopping).

        Returns True when it did (early stopping on, at least one epoch done).
        """
        if self.best_parameters is None:
            return False
        for name, p, _ in self.parameters:
            np.copyto(p, self.best_parameters[name])
        return True

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to carry on exactly from here, as plain values and arrays.

        Arrays are copies: ``parameters`` (``W1``, ``b1``, ...), ``optimizer["slots"]``
        (per parameter, per slot), ``order`` (the current epoch's column order, only when it
        is part-way: ``k > 0``) and ``early_stopping["best_parameters"]``. Everything else is
        JSON: counters, running sums, the history, and the random generators' states
        (``bit_generator.state`` dicts).
        """
        opt = self.opt
        return {
            "version": STATE_VERSION,
            "epochs": self.epochs,
            "epochs_done": self.epochs_done,
            "k": self.k,
            "n_batches": self.n_batches,
            "batch_size": self.batch_size,
            "m": self.m,
            "loss_sum": float(self.loss_sum),
            "correct": int(self.correct),
            "elapsed": float(self.elapsed),
            "history": copy.deepcopy(self.history),
            "order": None if self.k == 0 or self.order is None else self.order.copy(),
            "rng": {
                "order": self.rng.bit_generator.state,
                "augment": None if self.aug_rng is None else self.aug_rng.bit_generator.state,
                "dropout": [g.bit_generator.state for g in self.dropout_rngs],
            },
            "optimizer": {
                "kind": opt.kind,
                "config": opt.config(),
                "base_alpha": self.base_alpha,
                "t": int(opt.t),
                "slots": {
                    name: {slot: arr.copy() for slot, arr in slots.items()}
                    for name, slots in opt.state.items()
                },
            },
            "parameters": {name: p.copy() for name, p, _ in self.parameters},
            "early_stopping": {
                "patience": self.early_stopping,
                "best_val_loss": self.best_val_loss,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early,
                "best_parameters": (
                    None
                    if self.best_parameters is None
                    else {name: p.copy() for name, p in self.best_parameters.items()}
                ),
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Carry on from ``state`` (from :meth:`state` of a trainer set up the same way).

        The trainer must be built as the saved one was (network, data, batch size, optimiser and
        its settings, augmentation); ``epochs`` may differ (a new total). Raises
        :class:`~digitnet.errors.ConfigError` naming the first field that does not fit; on an
        error nothing has been changed.

        ``state`` itself is taken as well formed: :meth:`state` makes it so, and a checkpoint's
        is validated field by field when it is loaded
        (:func:`digitnet.train.checkpoint.load_checkpoint`). Here it is only checked against
        this training.
        """
        self._check_progress(state)
        self._check_weights(state)
        self._check_optimizer(state["optimizer"])
        self._set_generators(state["rng"])  # last among the checks: setting one validates it
        self._apply(state)

    @staticmethod
    def _unfit(field: str, got: Any, want: Any) -> ConfigError:
        return ConfigError(
            f"The saved training state does not fit this training: field {field!r} is "
            f"{got!r} but here it is {want!r}."
        )

    def _check_progress(self, state: dict[str, Any]) -> None:
        """The version, the data's size and batches, the epochs, and the current order."""
        if state.get("version") != STATE_VERSION:
            raise self._unfit("version", state.get("version"), STATE_VERSION)
        for field_name, want in (
            ("m", self.m),
            ("batch_size", self.batch_size),
            ("n_batches", self.n_batches),
        ):
            if state[field_name] != want:
                raise self._unfit(field_name, state[field_name], want)
        at = state["epochs_done"] + (state["k"] > 0)
        if at > self.epochs:
            raise ConfigError(
                f"The saved training state is at epoch {at}, beyond the {self.epochs} epochs "
                "asked.",
                f"ask for at least {at} epochs",
            )
        order = state.get("order")
        if state["k"] > 0:
            if not isinstance(order, np.ndarray) or order.shape != (self.m,):
                raise self._unfit("order", getattr(order, "shape", order), (self.m,))
            if not np.array_equal(np.sort(order), np.sort(self.pool)):
                raise ConfigError(
                    "The saved training state's field 'order' is not an order of this "
                    "training set's examples."
                )

    def _check_arrays(self, field: str, arrays: Any) -> None:
        """``arrays`` (name -> array) has exactly this network's parameters' names, shapes
        and dtypes."""
        names = [name for name, _, _ in self.parameters]
        if not isinstance(arrays, dict) or sorted(arrays) != sorted(names):
            raise self._unfit(field, sorted(arrays) if isinstance(arrays, dict) else arrays, names)
        for name, p, _ in self.parameters:
            if arrays[name].shape != p.shape or arrays[name].dtype != p.dtype:
                raise self._unfit(
                    f"{field}.{name}",
                    f"{arrays[name].dtype} {arrays[name].shape}",
                    f"{p.dtype} {p.shape}",
                )

    def _check_weights(self, state: dict[str, Any]) -> None:
        """The parameters, and the best epoch's, fit this network."""
        self._check_arrays("parameters", state.get("parameters"))
        best = state["early_stopping"].get("best_parameters")
        if best is not None:
            self._check_arrays("early_stopping.best_parameters", best)

    def _check_optimizer(self, ostate: dict[str, Any]) -> None:
        """The optimiser is the same kind with the same settings, its slots fit the network."""
        if ostate.get("kind") != self.opt.kind:
            raise self._unfit("optimizer.kind", ostate.get("kind"), self.opt.kind)
        if ostate.get("base_alpha") != self.base_alpha:
            raise self._unfit("optimizer.base_alpha", ostate.get("base_alpha"), self.base_alpha)
        saved_conf = {k_: v for k_, v in (ostate.get("config") or {}).items() if k_ != "alpha"}
        here_conf = {k_: v for k_, v in self.opt.config().items() if k_ != "alpha"}
        if saved_conf != here_conf:
            raise self._unfit("optimizer.config", saved_conf, here_conf)
        shapes = {name: p for name, p, _ in self.parameters}
        for name, by_slot in (ostate.get("slots") or {}).items():
            if name not in shapes:
                raise self._unfit("optimizer.slots", name, list(shapes))
            for slot, arr in by_slot.items():
                if arr.shape != shapes[name].shape or arr.dtype != shapes[name].dtype:
                    raise self._unfit(
                        f"optimizer.slots.{name}.{slot}",
                        f"{arr.dtype} {arr.shape}",
                        f"{shapes[name].dtype} {shapes[name].shape}",
                    )

    def _set_generators(self, rngs: dict[str, Any]) -> None:
        """Set every random generator from ``rngs``, or (on an error) none of them."""
        if (rngs.get("augment") is None) != (self.aug_rng is None):
            raise self._unfit(
                "rng.augment",
                "absent" if rngs.get("augment") is None else "present",
                "absent (no augmentation)" if self.aug_rng is None else "present (augmentation)",
            )
        dropout = rngs.get("dropout")
        if not isinstance(dropout, list) or len(dropout) != len(self.dropout_rngs):
            raise self._unfit(
                "rng.dropout",
                f"{len(dropout) if isinstance(dropout, list) else dropout} generators",
                f"{len(self.dropout_rngs)} generators",
            )
        saved_rng = [
            (self.rng, rngs.get("order"), "order"),
            *(
                [(self.aug_rng, rngs["augment"], "augmentation")]
                if self.aug_rng is not None
                else []
            ),
            *((g, s, "dropout") for g, s in zip(self.dropout_rngs, dropout, strict=True)),
        ]
        before = [g.bit_generator.state for g, _, _ in saved_rng]
        try:
            for g, s, what in saved_rng:
                _set_rng_state(g, s, what)
        except ConfigError:
            for (g, _, _), s in zip(saved_rng, before, strict=True):
                g.bit_generator.state = s
            raise

    def _apply(self, state: dict[str, Any]) -> None:
        """Take over the checked ``state``: weights, optimiser, progress, early stopping."""
        for name, p, _ in self.parameters:
            np.copyto(p, state["parameters"][name])
        ostate = state["optimizer"]
        # the optimiser's own slots only: checkpoints written before this rule also saved the
        # updates' scratch arrays ("step", "g", "s"), whose values mean nothing between steps
        self.opt.state = {
            name: {
                slot: np.array(arr, copy=True)
                for slot, arr in by_slot.items()
                if slot in self.opt.slots
            }
            for name, by_slot in (ostate.get("slots") or {}).items()
        }
        self.opt.t = ostate["t"]
        self.opt.alpha = float((ostate.get("config") or {}).get("alpha", self.base_alpha))
        self.epochs_done, self.k = state["epochs_done"], state["k"]
        order = state.get("order")
        self.order = np.array(order, dtype=self.pool.dtype, copy=True) if self.k > 0 else None
        self.loss_sum = float(state.get("loss_sum", 0.0))
        self.correct = int(state.get("correct", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.history = copy.deepcopy(state["history"])
        es = state["early_stopping"]
        best = es.get("best_parameters")
        self.best_val_loss = es.get("best_val_loss")
        self.best_epoch = es.get("best_epoch")
        self.bad_epochs = int(es.get("bad_epochs") or 0)
        self.stopped_early = bool(es.get("stopped_early", False))
        self.best_parameters = (
            None if best is None else {name: np.array(a, copy=True) for name, a in best.items()}
        )


def fit(
    net: Any,
    X: np.ndarray,
    y: np.ndarray,
    options: FitOptions | None = None,
    **keywords: Any,
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

    ``early_stopping=N`` ends training when the validation loss has not improved for ``N``
    epochs and leaves ``net`` with the weights of the best epoch. ``on_batch`` and
    ``should_stop``: see :class:`Trainer`, which keeps the state of the loop (for checkpoints).

    The settings come as keywords (``fit(net, X, y, epochs=5, batch_size=32)``), or as one
    :class:`FitOptions` (``fit(net, X, y, options)``), or both (the keywords change the options).

    Raises :class:`~digitnet.errors.DivergenceError` as soon as the cost is NaN or infinite.
    """
    trainer = Trainer(net, X, y, FitOptions.build(options, **keywords))
    history = trainer.train()
    if trainer.finished:
        trainer.restore_best()
    return history
