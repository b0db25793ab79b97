"""Optimisers and learning-rate schedules: how ``θ`` moves once ``dθ`` is known.

Every optimiser is a rule ``θ := θ - α · (something made of dθ)``; the plain one is seed 004 §7's
gradient descent ``θ := θ - α dθ``. This module is the one home of that update: no layer and no
backward pass moves a parameter. Optimisers keep their state (velocities, moments) by parameter
name (``W1``, ``b1``, ...) so that it can be saved and resumed, and they work on any layer's
parameters alike. Updates are in place with reused scratch arrays: no temporaries per step. The
scratch is not state: only the :attr:`Optimizer.slots` are saved (none for gradient descent, the
velocity for momentum, the two moments for Adam).

Weight decay λ applies to weights ``W`` only, never biases: as an L2 penalty ``λ/2 ‖W‖²`` added to
the cost (so ``dW + λW``) for gradient descent and momentum, and decoupled for Adam (AdamW,
Loshchilov & Hutter 2019: ``W := W - αλW``), where adding it to the gradient would be rescaled away.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from digitnet.errors import ConfigError

if TYPE_CHECKING:
    from digitnet.network import Parameter


class Optimizer:
    """Base: holds ``alpha`` (the learning rate α), weight decay λ and per-parameter state.

    The contract a new optimiser implements is :meth:`update`; :meth:`step` calls it once per
    parameter after each backward pass, and :attr:`t` counts the steps. What it keeps from step
    to step (a velocity, moments) it declares in :attr:`slots` and gets from :meth:`_slot`: that
    is what a checkpoint saves and restores. Scratch arrays come from :meth:`_work`.
    """

    kind: ClassVar[str] = "optimizer"
    #: the state kept per parameter between steps (saved in checkpoints), e.g. Adam's m and v
    slots: ClassVar[tuple[str, ...]] = ()

    def __init__(self, alpha: float, weight_decay: float = 0.0) -> None:
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ConfigError(f"The learning rate must be a positive number; got {alpha!r}.")
        if weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0; got {weight_decay!r}.")
        self.alpha = float(alpha)
        self.weight_decay = float(weight_decay)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0  # steps taken
        self._scratch: dict[str, np.ndarray] = {}

    def _slot(self, name: str, slot: str, like: np.ndarray) -> np.ndarray:
        """Parameter ``name``'s state ``slot`` (one of :attr:`slots`), zeros at first."""
        if slot not in self.slots:  # undeclared, it would not survive a checkpoint's restore
            raise TypeError(f"{type(self).__name__} keeps a slot {slot!r} not in its slots")
        s = self.state.setdefault(name, {})
        arr = s.get(slot)
        if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
            arr = s[slot] = np.zeros_like(like)
        return arr

    def _work(self, name: str, like: np.ndarray) -> np.ndarray:
        """A scratch array for parameter ``name``'s update, reused from step to step; not state
        (its values mean nothing between steps, so it is never saved)."""
        arr = self._scratch.get(name)
        if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
            arr = self._scratch[name] = np.empty_like(like)
        return arr

    def step(self, parameters: Iterable[Parameter]) -> None:
        """Move every parameter once, from the gradients the backward pass left beside them.

        Weight decay λ applies to weights only (``parameter.is_weight``), never to biases.
        """
        self.t += 1
        for p in parameters:
            self.update(p.name, p.theta, p.dtheta, self.weight_decay if p.is_weight else 0.0)

    def update(self, name: str, theta: np.ndarray, dtheta: np.ndarray, lam: float) -> None:
        """Move ``theta`` in place, one step, from its gradient ``dtheta`` (same shape).

        ``name`` (``W1``, ``b1``, ...) keys the optimiser's state for this parameter
        (:meth:`_slot`); ``lam`` is the weight decay λ that applies to it (0 for a bias);
        ``self.alpha`` is this step's learning rate and ``self.t`` the steps taken, this one
        included. Seed 004 §7's rule is ``θ := θ - α dθ`` (:class:`GradientDescent`).
        """
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha": self.alpha, "weight_decay": self.weight_decay}


class GradientDescent(Optimizer):
    """``θ := θ - α dθ`` (seed 004 §7; seeds 000-002's ``W¹ := W¹ - α dW¹`` and the rest).

    Full-batch when the batch is the whole training set (the seeds), stochastic otherwise.
    """

    kind = "gd"

    def update(self, name: str, theta: np.ndarray, dtheta: np.ndarray, lam: float) -> None:
        step = self._work(name, theta)
        if lam:
            theta *= 1.0 - self.alpha * lam  # θ - α(dθ + λθ) = θ(1 - αλ) - α dθ
        np.multiply(dtheta, self.alpha, out=step)
        theta -= step  # θ := θ - α dθ


class Momentum(GradientDescent):
    """Heavy-ball momentum: ``v := μv + dθ``, ``θ := θ - αv`` (Polyak 1964), as PyTorch's SGD.

    With ``nesterov=True``: ``θ := θ - α(dθ + μv)`` (Sutskever et al. 2013's form).
    """

    kind = "momentum"
    slots = ("v",)

    def __init__(
        self, alpha: float, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        super().__init__(alpha, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1); got {momentum!r}.")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, name: str, theta: np.ndarray, dtheta: np.ndarray, lam: float) -> None:
        v = self._slot(name, "v", theta)
        g = self._work(name, theta)
        mu, alpha = self.momentum, self.alpha
        v *= mu
        v += dtheta  # v := μv + dθ
        if lam:
            np.multiply(theta, lam, out=g)
            v += g  # ... + λθ
        if self.nesterov:
            # θ := θ - α(dθ + λθ + μv), in two in-place steps
            if lam:
                theta *= 1.0 - alpha * lam
            np.multiply(dtheta, alpha, out=g)
            theta -= g
            np.multiply(v, alpha * mu, out=g)
            theta -= g
        else:
            np.multiply(v, alpha, out=g)
            theta -= g  # θ := θ - αv

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with decoupled weight decay (AdamW) when λ > 0.

    ``m := β₁m + (1-β₁)dθ``, ``v := β₂v + (1-β₂)dθ²``,
    ``θ := θ - α · m̂ / (√v̂ + ε)`` with ``m̂ = m/(1-β₁ᵗ)``, ``v̂ = v/(1-β₂ᵗ)``.
    """

    kind = "adam"
    slots = ("m", "v")

    def __init__(
        self,
        alpha: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(alpha, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def update(self, name: str, theta: np.ndarray, dtheta: np.ndarray, lam: float) -> None:
        b1, b2, t = self.beta1, self.beta2, self.t
        m = self._slot(name, "m", theta)
        v = self._slot(name, "v", theta)
        s = self._work(name, theta)
        if lam:
            theta *= 1.0 - self.alpha * lam  # AdamW: θ := θ - αλθ
        m *= b1
        np.multiply(dtheta, 1.0 - b1, out=s)
        m += s  # m := β₁m + (1-β₁)dθ
        v *= b2
        np.multiply(dtheta, dtheta, out=s)
        s *= 1.0 - b2
        v += s  # v := β₂v + (1-β₂)dθ²
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        np.sqrt(v, out=s)
        s *= 1.0 / math.sqrt(bc2)
        s += self.eps  # √v̂ + ε
        np.divide(m, s, out=s)
        s *= self.alpha / bc1  # α m̂ / (√v̂ + ε)
        theta -= s

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "sgd": GradientDescent,
    "momentum": Momentum,
    "nesterov": Momentum,
    "adam": Adam,
}


def optimizer_options(name: str) -> tuple[str, ...]:
    """The keyword arguments optimiser ``name`` takes besides ``alpha`` (e.g. ``momentum``)."""
    cls = OPTIMIZERS[str(name).lower()]
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params if p not in ("self", "alpha"))


def get_optimizer(name: str | Optimizer, alpha: float, **kwargs: Any) -> Optimizer:
    """An optimiser by name, with learning rate ``alpha`` and its own options.

    A keyword the optimiser does not take is refused with the ones it does (a misspelt
    ``weight_decy=0.5`` would otherwise be silently ignored).
    """
    if isinstance(name, Optimizer):
        return name
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ConfigError(
            f"The optimizer must be one of {', '.join(sorted(OPTIMIZERS))}; got {name!r}."
        )
    valid = optimizer_options(key)
    unknown = sorted(k for k in kwargs if k not in valid)
    if unknown:
        raise ConfigError(
            f"The {key} optimizer takes no option {', '.join(map(repr, unknown))}; its options "
            f"are {', '.join(valid)}."
        )
    if key == "nesterov":
        kwargs["nesterov"] = True
    return OPTIMIZERS[key](alpha, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """The learning rate over training, as a factor of the base α.

    ``kind``: ``constant``; ``step`` (×``gamma`` every ``step_epochs``); ``cosine`` (from 1 down
    to ``min_factor`` along a half cosine, Loshchilov & Hutter 2017). ``warmup_epochs`` ramps
    linearly from near 0 up to the schedule first (Goyal et al. 2017).
    """

    kind: str = "constant"
    warmup_epochs: float = 0.0
    step_epochs: float = 10.0
    gamma: float = 0.1
    min_factor: float = 0.0

    KINDS: ClassVar[tuple[str, ...]] = ("constant", "step", "cosine")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ConfigError(
                f"The schedule must be one of {', '.join(self.KINDS)}; got {self.kind!r}."
            )

    def factor(self, progress: float, total_epochs: float) -> float:
        """The multiplier of α at ``progress`` epochs into a run of ``total_epochs``.

        The training loop asks at the middle of each batch (``epoch + (k + 0.5) / n_batches``), so
        the first warm-up step already moves and the last cosine step is near, not at, zero.
        """
        if self.warmup_epochs and progress < self.warmup_epochs:
            return progress / self.warmup_epochs
        if self.kind == "step":
            return self.gamma ** math.floor(progress / self.step_epochs)
        if self.kind == "cosine":
            span = max(total_epochs - self.warmup_epochs, 1e-12)
            frac = min(max((progress - self.warmup_epochs) / span, 0.0), 1.0)
            return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * frac))
        return 1.0
