"""Divergence is a clear stop: a cost that explodes ends the run, an accuracy stuck at chance is
said, and both suggest a learning rate that is actually sensible.

A learning rate far too large but not large enough to overflow used to train to the end at
chance accuracy, exit 0, with a full set of pictures: ``--lr 1e6`` with Adam ended at 9.7 % with
a cost of 3e17. :class:`DivergenceWatch` watches each mini-batch's cost: once it is more than
:data:`GROWTH` times the first one (three orders of magnitude: the noise of mini-batches is
a factor of a few), the run stops with a :class:`~digitnet.errors.DivergenceError` saying what
happened. A cost that stays finite and flat while the accuracy stays at chance (a saturated
sigmoid network with ``--lr 1e6``) cannot be told from a slow start in one epoch: after
:data:`PATIENCE` epochs and :data:`MIN_STEPS` steps it is warned about, once.

:func:`suggest_lr` is the learning rate to try: a hundredth of the one that diverged, but never
more than what works for the optimiser (Adam's 0.001, SGD's 0.1): the advice for ``--lr 1e6``
is 0.001, not 100000.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from digitnet.errors import DivergenceError

__all__ = [
    "GROWTH",
    "MIN_STEPS",
    "PATIENCE",
    "DivergenceWatch",
    "TrainingWarning",
    "suggest_lr",
    "usual_lr",
    "with_advice",
]

#: the cost may grow to this many times its first value before the run is stopped
GROWTH = 1000.0
#: epochs at chance accuracy before a warning...
PATIENCE = 2
#: ...and optimiser steps (full-batch gradient descent takes one step an epoch: the tutorial's
#: network is still near chance after two, and at 44 % after fifty)
MIN_STEPS = 50
#: learning rates that work for each optimiser on MNIST-like data (the presets' and the seeds');
#: with the mean squared error (whose gradient is smaller), the seeds' SGD takes 3
USUAL_LR = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "gd": 0.5}
USUAL_LR_MSE = {"sgd": 3.0, "gd": 3.0}


class TrainingWarning(UserWarning):
    """Training goes on, but something looks wrong (an accuracy stuck at chance)."""


def usual_lr(optimizer: str, loss: str = "ce") -> float:
    """The learning rate that works for ``optimizer`` with the cost ``loss`` (ce or mse)."""
    if loss == "mse" and optimizer in USUAL_LR_MSE:
        return USUAL_LR_MSE[optimizer]
    return USUAL_LR.get(optimizer, 1e-3)


def suggest_lr(alpha: float, optimizer: str, loss: str = "ce") -> float:
    """A learning rate to try after ``alpha`` failed: ``alpha / 100``, at most the usual one
    (:func:`usual_lr`)."""
    return min(alpha / 100.0, usual_lr(optimizer, loss))


def _advice(alpha: float, optimizer: str, loss: str = "ce") -> str:
    lr = suggest_lr(alpha, optimizer, loss)
    why = f" (the usual for {optimizer})" if lr == usual_lr(optimizer, loss) else ""
    return f"try a smaller learning rate, such as --lr {lr:g}{why}"


def with_advice(
    error: DivergenceError, alpha: float, optimizer: str, loss: str = "ce"
) -> DivergenceError:
    """``error`` (a non-finite cost) with :func:`suggest_lr`'s advice as its hint."""
    return DivergenceError(error.message, _advice(alpha, optimizer, loss))


class DivergenceWatch:
    """Watches a :class:`~digitnet.train.loop.Trainer`: :meth:`batch` after each mini-batch
    (an ``on_batch`` callback), :meth:`epoch` after each epoch (a ``callbacks`` one).

    ``on_warning`` gets the plateau's one line (by default a :class:`TrainingWarning`).
    """

    def __init__(
        self,
        trainer: Any,
        optimizer: str,
        n_classes: int,
        on_warning: Callable[[str], None] | None = None,
        loss: str = "ce",
    ) -> None:
        self.trainer = trainer
        self.optimizer, self.loss = optimizer, loss
        self.chance = 1.0 / max(n_classes, 1)
        self.on_warning = on_warning
        self.first: float | None = None
        self.warned = False

    def batch(self, k: int, n_batches: int, cost: float) -> None:
        if self.first is None:
            self.first = cost
            return
        if cost > GROWTH * max(self.first, 1e-3):
            t = self.trainer
            raise DivergenceError(
                f"The cost became {cost:.3g} at epoch {t.epochs_done + 1}, batch {k}, up from "
                f"{self.first:.3g} at the start ({cost / max(self.first, 1e-3):.0e} times): "
                f"training diverged with learning rate {t.base_alpha:g}.",
                _advice(t.base_alpha, self.optimizer, self.loss),
            )

    def epoch(self, record: dict[str, Any]) -> None:
        if self.warned or record["epoch"] < PATIENCE or self.trainer.opt.t < MIN_STEPS:
            return
        recent = self.trainer.history[-PATIENCE:]
        if all(r["accuracy"] <= 1.5 * self.chance for r in recent):
            self.warned = True
            alpha = self.trainer.base_alpha
            advice = _advice(alpha, self.optimizer, self.loss)
            text = (
                f"the training accuracy has stayed at chance ({100 * recent[-1]['accuracy']:.1f} "
                f"%, guessing gives {100 * self.chance:.0f} %) for {PATIENCE} epochs with learning "
                f"rate {alpha:g}: the network is not learning; {advice}"
                ", or check the gradients with 'digitnet gradcheck'"
            )
            if self.on_warning is not None:
                self.on_warning(text)
            else:
                warnings.warn(text, TrainingWarning, stacklevel=2)
