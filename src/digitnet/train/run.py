"""A whole training run from a :class:`~digitnet.presets.TrainConfig`: data in, metrics out.

This is what ``digitnet train`` calls: split a validation set off the training data, build the
network, fit it, measure it on the test set, and gather the figures into the ``metrics.json``
contract (``test_accuracy``, ``train_accuracy``, ``dataset``, ``n_train``, ``config``, ``seconds``,
``history``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitnet.data.augment import get_augmenter
from digitnet.data.datasets import Dataset
from digitnet.errors import ConfigError
from digitnet.network import Network, parse_spec
from digitnet.optim import Schedule
from digitnet.presets import TrainConfig
from digitnet.train.loop import Callback, History, fit


@dataclass
class RunResult:
    network: Network
    history: History
    metrics: dict[str, Any]


def build_network(config: TrainConfig, rng: np.random.Generator) -> Network:
    return Network.from_spec(
        config.layers,
        activation=config.activation,
        output=config.output,
        cost=config.loss,
        init=config.init,
        dropout=config.dropout,
        input_dropout=config.input_dropout,
        label_smoothing=config.label_smoothing,
        rng=rng,
        dtype=config.dtype,
    )


def _evaluate_subset(net: Network, data: Dataset, idx: np.ndarray) -> tuple[float, float]:
    """``(cost, accuracy)`` on the training columns ``idx``, gathered a chunk at a time."""
    rows, total, correct = data.X_train.T, 0.0, 0.0
    for chunk in np.array_split(idx, max(1, idx.size // 8192)):
        cost, acc = net.evaluate(rows[chunk].T, data.y_train[chunk])
        total += cost * chunk.size
        correct += acc * chunk.size
    return total / idx.size, correct / idx.size


def run(config: TrainConfig, data: Dataset, callbacks: list[Callback] | None = None) -> RunResult:
    """Train a network as ``config`` says on ``data`` and measure it on the test set."""
    sizes = parse_spec(config.layers)
    n_pixels, n_classes = data.X_train.shape[0], len(data.classes)
    if sizes[0] != n_pixels or sizes[-1] != n_classes:
        raise ConfigError(
            f"The layers {config.layers} take {sizes[0]} inputs to {sizes[-1]} outputs, but the "
            f"data have {n_pixels} pixels per image and {n_classes} classes.",
            f"start the spec with {n_pixels} and end it with {n_classes}, such as "
            f"{n_pixels}-128-{n_classes}",
        )
    t0 = time.perf_counter()
    # Independent streams from one seed: the split, the initial weights and dropout, the order.
    split_rng, net_rng, order_rng = np.random.default_rng(config.seed).spawn(3)
    train_idx, val_idx = data.validation_indices(config.validation_fraction, split_rng)
    rows = data.X_train.T
    val = (rows[val_idx].T, data.y_train[val_idx]) if val_idx.size else None
    net = build_network(config, net_rng)
    history = fit(
        net,
        data.X_train,
        data.y_train,
        sample=train_idx,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        schedule=Schedule(config.schedule, warmup_epochs=config.warmup_epochs),
        validation_data=val,
        rng=order_rng,
        callbacks=callbacks or (),
        augment=None if config.augment == "none" else get_augmenter(config.augment),
    )
    train_seconds = time.perf_counter() - t0
    net.release()
    train_loss, train_accuracy = _evaluate_subset(net, data, train_idx)
    test_loss, test_accuracy = net.evaluate(data.X_test, data.y_test)
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "train_accuracy": train_accuracy,
        "train_loss": train_loss,
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "dataset": data.name,
        "data_source": data.source,
        "n_train": int(train_idx.size),
        "n_validation": 0 if val is None else int(val[0].shape[1]),
        "n_test": data.n_test,
        "n_parameters": net.n_parameters,
        "config": config.to_dict(),
        "seconds": train_seconds,
        "history": history,
    }
    return RunResult(net, history, metrics)
