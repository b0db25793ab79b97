"""Hand-edited checkpoints are refused when they are loaded, in one line naming the field,
instead of crashing ``--resume`` (or the run an epoch later). Issue 13: 7 of 49 edits crashed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import safetensors.numpy

from digitnet.data.datasets import Dataset
from digitnet.errors import ModelFileError
from digitnet.train.checkpoint import METADATA_KEY, checkpoint_bytes, from_bytes
from digitnet.train.config import TrainConfig
from digitnet.train.run import prepare

CONFIG = TrainConfig(
    layers="784-8-10",
    epochs=3,
    batch_size=50,
    dropout=0.1,
    early_stopping=2,
    validation_fraction=0.2,
    seed=3,
)


@pytest.fixture(scope="module")
def blob() -> bytes:
    rng = np.random.default_rng(0)
    X = rng.random((784, 300), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    data = Dataset("toy", "memory:toy", X[:, :250], y[:250], X[:, 250:], y[250:])
    training = prepare(CONFIG.replace(epochs=2), data)
    training.train()
    return checkpoint_bytes(training.trainer, CONFIG.replace(epochs=2))


def edited(data: bytes, edit) -> bytes:
    n = int.from_bytes(data[:8], "little")
    doc = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][METADATA_KEY])
    edit(doc)
    tensors = dict(safetensors.numpy.load(data))
    return safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(doc)})


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


EDITS = {
    "rng-state-minus-5": (_set("rng", "order", "state", "state", -5), "PCG64 generator can have"),
    "dropout-rng-inc-2**129": (
        lambda doc: doc["rng"]["dropout"][0]["state"].update(inc=2**129),
        "rng.dropout\\[0\\]' is not a state",
    ),
    "rng-unknown-kind": (_set("rng", "order", "bit_generator", "Nope"), "not a NumPy generator"),
    "stopped-early-no-best": (
        lambda doc: doc["early_stopping"].update(
            stopped_early=True, best_epoch=None, best_val_loss=None
        ),
        "stopped_early' is true but no best epoch",
    ),
    "best-epoch-in-the-future": (_set("early_stopping", "best_epoch", 9), "only 2 epochs are done"),
    "nan-loss-sum": (_set("loss_sum", math.nan), "not valid JSON"),
    "negative-loss-sum": (_set("loss_sum", -1.0), "field 'loss_sum' is -1.0"),
    "seed-minus-1": (_set("config", "seed", -1), "config.seed is -1; expected a non-negative"),
    "epochs-zero": (_set("config", "epochs", 0), "config.epochs is 0"),
    "lr-negative": (_set("config", "learning_rate", -0.1), "config.learning_rate is -0.1"),
    "dropout-one": (_set("config", "dropout", 1.0), "config.dropout is 1.0"),
    "correct-above-m": (_set("correct", 10**6), "field 'correct' is 1000000"),
    "accuracy-above-1": (
        lambda doc: doc["history"][0].update(accuracy=7.0),
        r"history\[0\].accuracy is 7.0",
    ),
}


@pytest.mark.parametrize(("edit", "message"), EDITS.values(), ids=EDITS.keys())
def test_hand_edited_checkpoints_are_refused_on_load(blob, edit, message):
    bad = edited(blob, edit)
    with pytest.raises(ModelFileError, match=message) as err:
        from_bytes(bad, "run/checkpoint.safetensors")
    assert err.value.message.startswith("run/checkpoint.safetensors: ")
    assert "\n" not in err.value.message


def test_the_unedited_checkpoint_still_loads_and_resumes(blob):
    ckpt = from_bytes(blob)
    assert ckpt.epochs_done == 2 and ckpt.config.seed == 3
    rng = np.random.default_rng(0)
    X = rng.random((784, 300), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    data = Dataset("toy", "memory:toy", X[:, :250], y[:250], X[:, 250:], y[250:])
    training = prepare(CONFIG, data)
    training.trainer.restore(ckpt.state)
    training.train()
    assert training.trainer.epochs_done == 3
