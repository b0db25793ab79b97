"""The training configuration: everything a training run needs, every default in one place.

A :class:`TrainConfig` is what ``digitnet train`` builds from a preset and its options, what
:func:`digitnet.train.run.run` trains from, and what a run folder's ``config.json`` and a
checkpoint record (read back, field by field type-checked, by
:func:`digitnet.train.checkpoint.config_from_dict`). The named configs are
:data:`digitnet.presets.PRESETS`.

This module imports nothing heavy (no NumPy): ``digitnet train --help`` shows the presets'
values without loading the math.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from digitnet.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. ``learning_rate`` is the seeds' α."""

    layers: str = "784-512-256-10"
    activation: str = "relu"
    output: str | None = None  # softmax for cross-entropy, sigmoid for mse
    loss: str = "ce"
    init: str | None = None  # he for ReLU-like hidden layers, glorot otherwise
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    dropout: float = 0.0
    input_dropout: float = 0.0
    label_smoothing: float = 0.0
    epochs: int = 10
    batch_size: int | None = 128  # None: the whole training set (full-batch gradient descent)
    schedule: str = "constant"  # constant, step, cosine (digitnet.optim.Schedule)
    warmup_epochs: float = 0.0
    step_epochs: float = 10.0  # step: the learning rate is multiplied by gamma every step_epochs
    gamma: float = 0.1
    min_factor: float = 0.0  # cosine: the lowest learning rate, as a fraction of the first
    early_stopping: int | None = None  # patience in epochs on the validation loss; None: off
    augment: str = "none"  # none, affine, elastic, both (digitnet.data.augment)
    # Outlier Exposure: generated non-digits per digit of a batch, taught a uniform answer
    # (digitnet.data.outliers; 0: none)
    outliers: float = 0.0
    validation_fraction: float = 0.05
    seed: int = 0
    dtype: str = "float32"

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; unknown field names are refused."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {', '.join(unknown)}; "
                f"the settings are {', '.join(sorted(known))}."
            )
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["TrainConfig"]
