"""A whole training run from a :class:`~digitnet.train.config.TrainConfig`: data in, metrics out.

This is what ``digitnet train`` calls: split a validation set off the training data, build the
network, fit it, measure it on the test set, and gather the figures into the ``metrics.json``
contract (``test_accuracy``, ``train_accuracy``, ``dataset``, ``n_train``, ``config``, ``seconds``,
``history``).

:func:`run` does it in one call. :func:`prepare` does the first half and returns a
:class:`TrainingRun`, whose :class:`~digitnet.train.loop.Trainer` can be stopped, checkpointed
and restored (everything random comes from ``config.seed``, so a run prepared again from the same
config and data is the same run), and whose :meth:`TrainingRun.finish` measures the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.data.augment import get_augmenter
from digitnet.data.datasets import Dataset
from digitnet.errors import ConfigError, DataError, DivergenceError
from digitnet.memory import check_training
from digitnet.metrics import confident_threshold
from digitnet.network import Network, parse_spec
from digitnet.optim import Schedule, optimizer_options
from digitnet.train.config import TrainConfig
from digitnet.train.divergence import DivergenceWatch, with_advice
from digitnet.train.loop import BatchCallback, Callback, FitOptions, History, Trainer


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


def build_schedule(config: TrainConfig) -> Schedule:
    return Schedule(
        config.schedule,
        warmup_epochs=config.warmup_epochs,
        step_epochs=config.step_epochs,
        gamma=config.gamma,
        min_factor=config.min_factor,
    )


def _evaluate_subset(net: Network, data: Dataset, idx: np.ndarray) -> tuple[float, float]:
    """``(cost, accuracy)`` on the training columns ``idx``, gathered a chunk at a time."""
    rows, total, correct = data.X_train.T, 0.0, 0.0
    for chunk in np.array_split(idx, max(1, idx.size // 8192)):
        cost, acc = net.evaluate(rows[chunk].T, data.y_train[chunk])
        total += cost * chunk.size
        correct += acc * chunk.size
    return total / idx.size, correct / idx.size


# -- which data ------------------------------------------------------------------------------
def dataset_identity(data: Dataset) -> dict[str, Any]:
    """What a run records about its data: name, source, sizes and a fingerprint of the content.

    The fingerprint is a SHA-256 of the training labels and of every ``m // 1000``-th training
    image (as float32): cheap, and different for any other dataset or order of the examples.
    """
    rows = data.X_train.T
    step = max(1, data.n_train // 1000)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.y_train, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(rows[::step], dtype="<f4").tobytes())
    return {
        **data.describe(),
        "classes": list(data.classes),
        "fingerprint": h.hexdigest()[:32],
    }


def check_same_dataset(recorded: Mapping[str, Any], data: Dataset) -> None:
    """Refuse (:class:`DataError`) data other than the ones a run recorded.

    A folder of IDX files may have moved (its name is its path): then the content decides.
    """
    here = dataset_identity(data)
    for field in ("n_train", "fingerprint"):
        if recorded.get(field) != here[field]:
            raise DataError(
                f"The data are not the ones the run trained on: {field} is {here[field]!r} "
                f"here but the run recorded {recorded.get(field)!r} (dataset "
                f"{recorded.get('name')!r} from {recorded.get('source')!r}).",
                "give the run's data with --dataset or --data-dir",
            )
    moved_folder = recorded.get("name") == recorded.get("source") and here["name"] == here["source"]
    if recorded.get("name") != here["name"] and not moved_folder:
        raise DataError(
            f"The data are not the ones the run trained on: the dataset is {here['name']!r} "
            f"but the run recorded {recorded.get('name')!r}.",
            "give the run's data with --dataset or --data-dir",
        )


# -- a run -----------------------------------------------------------------------------------
@dataclass
class TrainingRun:
    """A prepared run: the config, the data, the split, and the trainer that holds the rest."""

    config: TrainConfig
    data: Dataset
    trainer: Trainer
    train_idx: np.ndarray
    val_idx: np.ndarray
    watch: DivergenceWatch | None = None

    @property
    def network(self) -> Network:
        return self.trainer.net

    def train(self) -> History:
        """Train (or carry on training) until done or stopped; see :meth:`Trainer.train`."""
        callbacks = self.trainer.callbacks
        if self.watch is not None and self.watch.epoch in callbacks:
            callbacks.remove(self.watch.epoch)  # last: its warning after the epoch's own line
            callbacks.append(self.watch.epoch)
        try:
            return self.trainer.train()
        except DivergenceError as exc:  # a NaN cost: the advice of divergence.suggest_lr
            alpha, config = self.trainer.base_alpha, self.config
            raise with_advice(exc, alpha, config.optimizer, config.loss) from None

    def finish(self) -> RunResult:
        """The weights to keep (the best epoch's, with early stopping), measured on the data."""
        trainer, data, config = self.trainer, self.data, self.config
        restored = trainer.restore_best()
        net = trainer.net
        net.release()
        history = trainer.history
        train_loss, train_accuracy = _evaluate_subset(net, data, self.train_idx)
        test_loss, test_accuracy = net.evaluate(data.X_test, data.y_test)
        # where predict says "not sure": calibrated on all the test digits (predictor.py)
        threshold = confident_threshold(net.predict_proba(data.X_test))
        kept = history[trainer.best_epoch - 1] if restored else history[-1] if history else None
        metrics = {
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "confident_threshold": threshold,
            "train_accuracy": train_accuracy,
            "train_loss": train_loss,
            "val_accuracy": kept["val_accuracy"] if kept else None,
            "val_loss": kept["val_loss"] if kept else None,
            "dataset": data.name,
            "data_source": data.source,
            "n_train": int(self.train_idx.size),
            "n_validation": int(self.val_idx.size),
            "n_test": data.n_test,
            "n_parameters": net.n_parameters,
            "epochs_trained": trainer.epochs_done,
            "early_stopping": trainer.early_stopping,
            "stopped_early": trainer.stopped_early,
            "best_epoch": trainer.best_epoch,
            "config": config.to_dict(),
            "seconds": trainer.seconds,
            "history": history,
        }
        return RunResult(net, history, metrics)


def prepare(
    config: TrainConfig,
    data: Dataset,
    *,
    callbacks: Iterable[Callback] = (),
    on_batch: Iterable[BatchCallback] = (),
    should_stop: Callable[[], bool] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> TrainingRun:
    """Split, build and set up the trainer as ``config`` says; nothing is trained yet.

    The trainer is watched for divergence (:class:`~digitnet.train.divergence.DivergenceWatch`):
    a cost that explodes stops it, an accuracy stuck at chance is handed to ``on_warning``.
    """
    sizes = parse_spec(config.layers)
    check_training(config, data.n_train)  # before allocating: refuse what cannot fit
    n_pixels, n_classes = data.X_train.shape[0], len(data.classes)
    if sizes[0] != n_pixels or sizes[-1] != n_classes:
        raise ConfigError(
            f"The layers {config.layers} take {sizes[0]} inputs to {sizes[-1]} outputs, but the "
            f"data have {n_pixels} pixels per image and {n_classes} classes.",
            f"start the spec with {n_pixels} and end it with {n_classes}, such as "
            f"{n_pixels}-128-{n_classes}",
        )
    # Independent streams from one seed: the split, the initial weights and dropout, the order,
    # the outliers (a fourth child leaves the first three as they were without it).
    split_rng, net_rng, order_rng, outlier_rng = np.random.default_rng(config.seed).spawn(4)
    train_idx, val_idx = data.validation_indices(config.validation_fraction, split_rng)
    if config.early_stopping is not None and val_idx.size == 0:
        raise ConfigError(
            "Early stopping watches the validation loss, but the validation set is empty "
            f"(validation fraction {config.validation_fraction:g} of {data.n_train} examples).",
            "hold out a validation set, such as --validation 0.05",
        )
    rows = data.X_train.T
    val = (rows[val_idx].T, data.y_train[val_idx]) if val_idx.size else None
    net = build_network(config, net_rng)
    options = FitOptions(
        sample=train_idx,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        optimizer_options={"weight_decay": config.weight_decay, **_momentum(config)},
        schedule=build_schedule(config),
        validation_data=val,
        rng=order_rng,
        callbacks=callbacks,
        on_batch=on_batch,
        should_stop=should_stop,
        early_stopping=config.early_stopping,
        augment=None if config.augment == "none" else get_augmenter(config.augment),
        outliers=_outliers(config, data, train_idx, outlier_rng),
        outlier_share=config.outliers,
    )
    trainer = Trainer(net, data.X_train, data.y_train, options)
    watch = DivergenceWatch(trainer, config.optimizer, len(data.classes), on_warning, config.loss)
    trainer.on_batch.append(watch.batch)
    trainer.callbacks.append(watch.epoch)
    return TrainingRun(config, data, trainer, train_idx, val_idx, watch)


#: how many non-digits a run with outliers draws before training (each batch takes the next ones)
OUTLIER_POOL = 2048
#: the pools drawn so far in this process, by what decides them (seed, digits): drawing one
#: takes about 2 s, and a sweep of runs (or the tests) trains many times from the same seed and
#: data. At most a few are kept, 6 MB each; they are read-only (trainers share them).
_POOLS: dict[tuple[Any, ...], np.ndarray] = {}
_POOLS_KEPT = 4


def _outliers(
    config: TrainConfig, data: Dataset, train_idx: np.ndarray, rng: np.random.Generator
) -> np.ndarray | None:
    """The pool of generated non-digits for Outlier Exposure (``config.outliers``), or None.

    Made for digits: refused for other data (the shapes are not "none of the classes" of, say,
    clothes) and for the mean squared error (its sigmoid outputs are not a distribution, and
    "not sure" reads a softmax). Shapes close to a training digit are drawn again.
    """
    if not config.outliers:
        return None
    if not 0 < config.outliers <= 4:  # (a batch of 128 digits then carries up to 512 more)
        raise ConfigError(
            f"--outliers is the number of generated non-digits per digit of a batch, from 0 to "
            f"4; got {config.outliers:g}.",
            "the default preset's is 0.5: half as many non-digits as digits",
        )
    if list(data.classes) != [str(d) for d in range(10)] or data.X_train.shape[0] != 784:
        raise ConfigError(
            f"--outliers draws non-digits, for the 10 digits of 28x28 images; the dataset "
            f"{data.name} has classes {', '.join(map(str, data.classes))}.",
            "drop --outliers, or give --outliers 0",
        )
    if config.loss != "ce":
        raise ConfigError(
            "--outliers teaches a uniform softmax to non-digits: it needs --loss ce.",
            "drop --outliers, or give --outliers 0",
        )
    from digitnet.data.outliers import make_outliers

    # the digits a shape must not come near: at most 10,000 of the training set (all of the
    # embedded digits; every 6th of MNIST's 60,000), so that the check's memory stays bounded
    reference = train_idx[:: max(1, -(-train_idx.size // 10_000))]
    key = (
        OUTLIER_POOL,
        config.seed,
        dataset_identity(data)["fingerprint"],
        hashlib.sha256(np.ascontiguousarray(reference, dtype="<i8").tobytes()).hexdigest(),
    )
    pool = _POOLS.get(key)
    if pool is None:
        pool = make_outliers(OUTLIER_POOL, rng, data.X_train.T[reference])
        pool.flags.writeable = False
        if len(_POOLS) >= _POOLS_KEPT:
            del _POOLS[next(iter(_POOLS))]  # the oldest
        _POOLS[key] = pool
    return pool


def _momentum(config: TrainConfig) -> dict[str, float]:
    """``momentum`` for the optimisers that take it (get_optimizer refuses it for the others)."""
    takes = "momentum" in optimizer_options(config.optimizer)
    return {"momentum": config.momentum} if takes else {}


def run(config: TrainConfig, data: Dataset, callbacks: list[Callback] | None = None) -> RunResult:
    """Train a network as ``config`` says on ``data`` and measure it on the test set."""
    training = prepare(config, data, callbacks=callbacks or ())
    training.train()
    return training.finish()


# -- pictures --------------------------------------------------------------------------------
#: the pictures :func:`write_pictures` draws into a run folder
PICTURES = ("learning_curves.png", "confusion_matrix.png", "weights.png", "mistakes.png")


def write_pictures(folder: str | Path, result: RunResult, data: Dataset) -> list[Path] | None:
    """Draw the run's pictures into ``folder`` with :mod:`digitnet.reports`.

    ``learning_curves.png`` (the history), ``confusion_matrix.png`` (on the test set),
    ``weights.png`` (the first layer's weights as images) and ``mistakes.png`` (the test digits
    the network got wrong most confidently). Returns the paths written, or ``None`` when
    matplotlib (a dependency, so only in a broken installation) cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401  (reports imports it only to draw: ask for it here)
    except ImportError:
        return None
    from digitnet import metrics, reports

    folder = Path(folder)
    net = result.network
    paths = [folder / name for name in PICTURES]
    note = reports.training_note(result.metrics.get("config"))
    reports.plot_learning_curves(result.history, paths[0], note=note)
    P = net.predict_proba(data.X_test)
    y_pred = P.argmax(axis=0)
    cm = metrics.confusion_matrix(data.y_test, y_pred, n_classes=len(data.classes))
    reports.plot_confusion_matrix(cm, paths[1], classes=data.classes)
    reports.plot_weights(net.dense_layers[0].W, paths[2])
    idx = np.asarray(metrics.most_confident_mistakes(P, data.y_test, k=25), dtype=np.intp)
    images = data.X_test[:, idx]  # (784, k): one image per column
    reports.plot_mistakes(
        images, data.y_test[idx], y_pred[idx], P[y_pred[idx], idx], paths[3], classes=data.classes
    )
    return paths
