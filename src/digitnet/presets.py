"""The named presets: training configurations worth a name (data only).

A :class:`~digitnet.train.config.TrainConfig` says everything a training run needs (with every
default); a preset is a named config. The
first three reproduce the seed documents; ``default`` is the most accurate network this project
trains on a 2-core CPU in about two minutes, and what ``digitnet train`` uses when no preset is
named; ``best`` is the most accurate within about ten minutes.

- ``tutorial`` (seeds 001, 002): 784-10-10, ReLU then softmax, cross-entropy, full-batch gradient
  descent; weights and biases from uniform(-0.5, 0.5), α = 0.10 and 500 iterations as in the
  tutorials' code behind those seeds.
- ``seed-16-16`` (seed 000): 784-16-16-10, ReLU, ReLU, softmax. Seed 000 writes plain gradient
  descent updates but no learning rate, batch size or number of steps; we use SGD with Nesterov
  momentum 0.9, α = 0.05, batches of 32, 30 epochs, cosine decay, He init: quick, and it lets the
  small network reach its capacity (``--optimizer gd`` runs the seed's own update).
- ``sigmoid-mse`` (seeds 003, 004): 784-16-16-10 with sigmoid hidden layers and a sigmoid output,
  trained with mean squared error; LeCun init, SGD α = 3, batches of 10 (Nielsen's recipe for a
  sigmoid/MSE network, where the small gradients of σ' call for a large α).
- ``default``: 784-512-256-10 ReLU, Adam with warm-up and cosine decay, dropout 0.2, label
  smoothing 0.1, random affine augmentation, and Outlier Exposure (Hendrycks et al. 2019): each
  batch of 128 digits carries 64 generated non-digits (:mod:`digitnet.data.outliers`) with the
  uniform target 1/10, so that the model spreads its probability over the digits for letters
  and signs and ``predict`` says "not sure" (a model without them reads an A or an H as a 4 at
  40-88 %); 100 epochs (about a minute on 2 cores).
- ``best``: 784-1024-512-10, the same recipe with dropout 0.3, affine and elastic augmentation,
  200 epochs (several minutes).
"""

from __future__ import annotations

from digitnet.errors import ConfigError
from digitnet.train.config import TrainConfig

PRESETS: dict[str, TrainConfig] = {
    "tutorial": TrainConfig(
        layers="784-10-10",
        activation="relu",
        loss="ce",
        init="uniform",
        optimizer="gd",
        learning_rate=0.10,
        epochs=500,
        batch_size=None,
        validation_fraction=0.05,
    ),
    "seed-16-16": TrainConfig(
        layers="784-16-16-10",
        activation="relu",
        loss="ce",
        init="he",
        optimizer="nesterov",
        learning_rate=0.05,
        momentum=0.9,
        epochs=30,
        batch_size=32,
        schedule="cosine",
    ),
    "sigmoid-mse": TrainConfig(
        layers="784-16-16-10",
        activation="sigmoid",
        output="sigmoid",
        loss="mse",
        init="lecun",
        optimizer="sgd",
        learning_rate=3.0,
        epochs=30,
        batch_size=10,
    ),
    "default": TrainConfig(
        layers="784-512-256-10",
        activation="relu",
        loss="ce",
        init="he",
        optimizer="adam",
        learning_rate=1e-3,
        dropout=0.2,
        label_smoothing=0.1,
        epochs=100,
        batch_size=128,
        schedule="cosine",
        warmup_epochs=1.0,
        augment="affine",
        outliers=0.5,
    ),
    "best": TrainConfig(
        layers="784-1024-512-10",
        activation="relu",
        loss="ce",
        init="he",
        optimizer="adam",
        learning_rate=1e-3,
        dropout=0.3,
        label_smoothing=0.1,
        epochs=200,
        batch_size=128,
        schedule="cosine",
        warmup_epochs=1.0,
        augment="both",
        outliers=0.5,
    ),
}


def get_preset(name: str) -> TrainConfig:
    """The config of a named preset; an unknown name lists the valid ones."""
    if name not in PRESETS:
        raise ConfigError(f"There is no preset {name!r}; the presets are {', '.join(PRESETS)}.")
    return PRESETS[name]
