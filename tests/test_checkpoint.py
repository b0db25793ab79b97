"""Checkpoints and the explicit training state, at the library level.

A run stopped after any mini-batch (``should_stop``) and resumed from its checkpoint ends with
the same weights and history, bit for bit, as a run never stopped: with dropout, input dropout,
augmentation, a schedule and early stopping on, so that every random generator and every piece
of state is exercised. Checkpoints round-trip exactly, and damaged, foreign or mismatched ones
are refused with messages naming the problem. Early stopping keeps the best epoch's weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from digitnet import Network
from digitnet.data.datasets import Dataset
from digitnet.errors import ConfigError, DataError, ModelFileError
from digitnet.modelfile import save_model
from digitnet.train import checkpoint as ckpt_mod
from digitnet.train.checkpoint import (
    METADATA_KEY,
    checkpoint_bytes,
    config_from_dict,
    from_bytes,
    load_checkpoint,
    save_checkpoint,
)
from digitnet.train.config import TrainConfig
from digitnet.train.loop import Trainer, dropout_generators, fit
from digitnet.train.run import (
    build_schedule,
    check_same_dataset,
    dataset_identity,
    prepare,
    run,
)


# -- helpers ----------------------------------------------------------------------------------
def toy_dataset(m: int = 600, seed: int = 0, name: str = "toy") -> Dataset:
    """Random 28x28 'images' with learnable labels: a class-dependent blob plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, m + 200)
    rows = 0.3 * rng.random((m + 200, 784), dtype=np.float32)
    for c in range(10):
        rows[labels == c, c * 70 : c * 70 + 60] += 0.6
    X = np.ascontiguousarray(np.clip(rows, 0, 1)).T
    return Dataset(name, f"memory:{name}", X[:, :m], labels[:m], X[:, m:], labels[m:])


CONFIG = TrainConfig(
    layers="784-32-16-10",
    optimizer="adam",
    learning_rate=3e-3,
    weight_decay=1e-4,
    dropout=0.2,
    input_dropout=0.1,
    label_smoothing=0.05,
    epochs=3,
    batch_size=32,
    schedule="cosine",
    warmup_epochs=0.5,
    min_factor=0.1,
    augment="both",
    early_stopping=50,  # never triggers here, but keeps (and checkpoints) the best weights
    validation_fraction=0.1,
    seed=11,
)


def weights(net: Network) -> list[np.ndarray]:
    return [p.copy() for _, p, _ in net.parameters()]


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def stop_after(batches: int):
    """A should_stop that says stop after the given number of mini-batches (counted by it)."""
    count = [0]

    def should_stop() -> bool:
        count[0] += 1
        return count[0] == batches

    return should_stop


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for p, q in zip(weights(a.net), weights(b.net), strict=True):
        assert np.array_equal(p, q)
    assert without_seconds(a.history) == without_seconds(b.history)
    assert a.opt.t == b.opt.t and a.opt.state.keys() == b.opt.state.keys()
    for name in a.opt.state:
        for slot in a.opt.state[name]:
            assert np.array_equal(a.opt.state[name][slot], b.opt.state[name][slot])
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert a.aug_rng.bit_generator.state == b.aug_rng.bit_generator.state
    assert [g.bit_generator.state for g in a.dropout_rngs] == [
        g.bit_generator.state for g in b.dropout_rngs
    ]
    assert (a.best_epoch, a.best_val_loss) == (b.best_epoch, b.best_val_loss)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return toy_dataset()


@pytest.fixture(scope="module")
def reference(data):
    training = prepare(CONFIG, data)
    training.train()
    return training


def rewrite_bytes(data: bytes, mutate) -> bytes:
    """Tamper with checkpoint bytes: ``mutate(doc, tensors)``, then a valid safetensors file."""
    n = int.from_bytes(data[:8], "little")
    doc = json.loads(json.loads(data[8 : 8 + n])["__metadata__"][METADATA_KEY])
    tensors = dict(safetensors.numpy.load(data))
    mutate(doc, tensors)
    return safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(doc)})


# -- resume = never stopped -------------------------------------------------------------------
def test_the_toy_run_exercises_every_generator(reference):
    t = reference.trainer
    assert t.n_batches == 17 and t.m % t.batch_size  # a short last batch too
    assert t.aug_rng is not None and len(t.dropout_rngs) == 1
    assert t.best_parameters is not None and t.finished
    assert t.history[-1]["loss"] < t.history[0]["loss"]


@pytest.mark.parametrize(
    "stops",
    [
        [17],  # exactly at the end of epoch 1: between epochs
        [20],  # mid-epoch 2
        [5],  # mid-epoch 1, before any epoch ended
        [1, 16, 3, 14],  # again and again: batch 1, end of epoch 1, mid 2, mid 3
    ],
    ids=["between-epochs", "mid-epoch", "first-epoch", "many-times"],
)
def test_resume_is_bit_identical(data, reference, stops, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    training = prepare(CONFIG, data, should_stop=stop_after(stops[0]))
    training.train()
    for i, _ in enumerate(stops):
        assert not training.trainer.finished
        save_checkpoint(path, training.trainer, CONFIG, dataset=dataset_identity(data))
        ckpt = load_checkpoint(path)
        assert ckpt.config == CONFIG
        nxt = stops[i + 1] if i + 1 < len(stops) else None
        training = prepare(ckpt.config, data, should_stop=stop_after(nxt) if nxt else None)
        training.trainer.restore(ckpt.state)
        training.train()
    assert training.trainer.finished
    assert_same_state(training.trainer, reference.trainer)
    a, b = training.finish(), prepare(CONFIG, data)
    b.train()
    b = b.finish()
    for p, q in zip(weights(a.network), weights(b.network), strict=True):
        assert np.array_equal(p, q)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]


def test_stopping_returns_after_that_batch_with_state_intact(data):
    training = prepare(CONFIG, data, should_stop=stop_after(20))
    training.train()
    t = training.trainer
    assert (t.epochs_done, t.k, len(t.history)) == (1, 3, 1)
    assert t.order is not None and sorted(t.order) == sorted(training.train_idx)
    assert t.opt.t == 20 and not t.finished
    state = t.state()
    assert state["order"] is not None and state["k"] == 3
    t.should_stop = None
    t.train()  # the same trainer carries on, as a resumed one would
    assert t.finished and t.epochs_done == 3


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov"])
def test_resume_with_other_optimisers_and_fit(optimizer):
    """fit(...) directly, with optimisers whose slots differ from Adam's."""
    d = toy_dataset(m=300, seed=4)
    kwargs = dict(epochs=3, batch_size=40, optimizer=optimizer, learning_rate=0.05, seed=2)
    ref = Network.from_spec("784-16-10", dropout=0.3, seed=1)
    ref_hist = fit(ref, d.X_train, d.y_train, **kwargs)
    net = Network.from_spec("784-16-10", dropout=0.3, seed=1)
    trainer = Trainer(net, d.X_train, d.y_train, should_stop=stop_after(13), **kwargs)
    trainer.train()
    blob = checkpoint_bytes(trainer, TrainConfig(layers="784-16-10", optimizer=optimizer))
    net2 = Network.from_spec("784-16-10", dropout=0.3, seed=99)  # other weights, other rng
    again = Trainer(net2, d.X_train, d.y_train, **kwargs)
    again.restore(from_bytes(blob).state)
    hist = again.train()
    assert without_seconds(hist) == without_seconds(ref_hist)
    for p, q in zip(weights(ref), weights(net2), strict=True):
        assert np.array_equal(p, q)


def test_full_batch_resumes_between_epochs():
    d = toy_dataset(m=100, seed=5)
    kwargs = dict(epochs=4, batch_size=None, optimizer="gd", learning_rate=0.5)
    ref = Network.from_spec("784-8-10", seed=0)
    fit(ref, d.X_train, d.y_train, **kwargs)
    net = Network.from_spec("784-8-10", seed=0)
    t = Trainer(net, d.X_train, d.y_train, should_stop=stop_after(2), **kwargs)
    t.train()
    assert (t.epochs_done, t.k, t.n_batches) == (2, 0, 1)
    net2 = Network.from_spec("784-8-10", seed=0)
    t2 = Trainer(net2, d.X_train, d.y_train, **kwargs)
    t2.restore(t.state())
    t2.train()
    for p, q in zip(weights(ref), weights(net2), strict=True):
        assert np.array_equal(p, q)


def test_resume_with_a_larger_total_continues(data, reference):
    """--epochs N on resume: N is the new total; the first epochs are those of the old total."""
    t = prepare(CONFIG, data, should_stop=stop_after(17))
    t.train()
    longer = prepare(CONFIG.replace(epochs=5), data)
    longer.trainer.restore(t.trainer.state())
    longer.train()
    assert longer.trainer.epochs_done == 5 and len(longer.trainer.history) == 5
    assert without_seconds(longer.trainer.history[:1]) == without_seconds(
        reference.trainer.history[:1]
    )
    shorter = prepare(CONFIG.replace(epochs=1), data)
    t2 = prepare(CONFIG, data, should_stop=stop_after(20))
    t2.train()
    with pytest.raises(ConfigError, match="at epoch 2, beyond the 1 epochs asked"):
        shorter.trainer.restore(t2.trainer.state())


# -- the checkpoint file ----------------------------------------------------------------------
def test_checkpoint_round_trip_is_exact(data, tmp_path):
    training = prepare(CONFIG, data, should_stop=stop_after(20))
    training.train()
    state = training.trainer.state()
    path = tmp_path / "checkpoint.safetensors"
    identity = dataset_identity(data)
    save_checkpoint(path, training.trainer, CONFIG, dataset=identity)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.safetensors"]  # no temporary left
    ckpt = load_checkpoint(path)
    assert ckpt.config == CONFIG and ckpt.dataset == identity
    assert (ckpt.epochs_done, ckpt.k) == (1, 3)
    loaded = ckpt.state
    for key in state:
        if key in ("parameters", "optimizer", "early_stopping", "order"):
            continue
        assert loaded[key] == state[key], key
    assert np.array_equal(loaded["order"], state["order"])
    for name, p in state["parameters"].items():
        assert (
            np.array_equal(loaded["parameters"][name], p)
            and loaded["parameters"][name].dtype == p.dtype
        )
    for name, slots in state["optimizer"]["slots"].items():
        for slot, arr in slots.items():
            assert np.array_equal(loaded["optimizer"]["slots"][name][slot], arr)
    assert {k: v for k, v in loaded["optimizer"].items() if k != "slots"} == {
        k: v for k, v in state["optimizer"].items() if k != "slots"
    }
    best = state["early_stopping"]["best_parameters"]
    for name, p in best.items():
        assert np.array_equal(loaded["early_stopping"]["best_parameters"][name], p)
    # the JSON document: what the format promises, readable without digitnet
    n = int.from_bytes(path.read_bytes()[:8], "little")
    doc = json.loads(json.loads(path.read_bytes()[8 : 8 + n])["__metadata__"][METADATA_KEY])
    assert doc["format"] == "digitnet-checkpoint" and doc["format_version"] == 1
    assert doc["epochs_done"] == 1 and doc["k"] == 3 and doc["optimizer"]["kind"] == "adam"
    assert doc["rng"]["order"]["bit_generator"] == "PCG64"
    names = set(safetensors.numpy.load_file(path))
    assert {"param/W1", "param/b3", "opt/W1/m", "opt/b2/v", "order", "best/W2"} <= names


def test_an_interrupted_save_leaves_the_previous_checkpoint(data, tmp_path, monkeypatch):
    training = prepare(CONFIG, data, should_stop=stop_after(5))
    training.train()
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, training.trainer, CONFIG)
    before = path.read_bytes()
    training.trainer.should_stop = stop_after(3)
    training.train()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("digitnet.data.idx.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, training.trainer, CONFIG)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.safetensors"]
    assert load_checkpoint(path).k == 5


@pytest.fixture(scope="module")
def blob(data) -> bytes:
    training = prepare(CONFIG, data, should_stop=stop_after(20))
    training.train()
    return checkpoint_bytes(training.trainer, CONFIG, dataset=dataset_identity(data))


def _set(key, value):
    def mutate(doc, tensors):
        doc[key] = value

    return mutate


def _drop(key):
    def mutate(doc, tensors):
        del doc[key]

    return mutate


def _tensor(name, value):
    def mutate(doc, tensors):
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value

    return mutate


def _config(**changes):
    def mutate(doc, tensors):
        doc["config"].update(changes)

    return mutate


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_set("format", "digitnet-model"), "field 'format' is 'digitnet-model'"),
        (_set("format_version", 2), "field 'format_version' is 2: written by a newer digitnet"),
        (_drop("k"), "field 'k' is missing"),
        (_set("k", 17), r"field 'k' is 17; expected an integer in \[0, 17\)"),
        (_set("epochs_done", 2), "field 'history' has 1 records but field 'epochs_done' is 2"),
        (_set("loss_sum", "much"), "field 'loss_sum' is 'much'; expected a number"),
        (_set("rng", {"order": 5, "dropout": []}), "field 'rng.order' is 5"),
        (_config(layers="784-48-16-10"), r"tensor 'param/W1' is float32 \(32, 784\); expected"),
        (_config(layers="784-64-10"), "names parameter 'W3', which the layers 784-64-10 do not"),
        (_config(dtype="float64"), "tensor 'param/W1' is float32 .*expected float64"),
        (_config(colour="blue"), "config has unknown setting\\(s\\) 'colour'"),
        (_config(epochs="three"), "config.epochs is 'three'; expected a value of type int"),
        (_tensor("opt/W1/m", None), "tensor 'opt/W1/m' is missing"),
        (_tensor("order", None), "tensor 'order' is missing"),
        (_tensor("extra", np.zeros(3, np.float32)), "unexpected tensor\\(s\\) 'extra'"),
        (
            _tensor("param/b1", np.zeros((32,), np.float32)),
            "tensor 'param/b1' is float32 \\(32,\\)",
        ),
        (
            _tensor("param/W2", np.full((16, 32), np.nan, np.float32)),
            "tensor 'param/W2' holds NaN",
        ),
    ],
)
def test_damaged_checkpoints_are_refused_naming_the_field(blob, mutate, message):
    bad = rewrite_bytes(blob, mutate)
    with pytest.raises(ModelFileError, match=message):
        from_bytes(bad, "run/checkpoint.safetensors")
    with pytest.raises(ModelFileError, match=r"^run/checkpoint\.safetensors: "):
        from_bytes(bad, "run/checkpoint.safetensors")


def test_truncated_empty_and_foreign_files_are_refused(blob, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    with pytest.raises(ModelFileError, match="no such file"):
        load_checkpoint(path)
    for data, message in [
        (b"", "too short"),
        (blob[: len(blob) // 2], "truncated"),
        (blob[:200], "truncated: the header should be"),
        (blob + b"\0" * 16, "unreadable"),
        (os.urandom(4096), "not a checkpoint"),
        (b"\x80\x04K\x01.", "too short"),
    ]:
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match=message):
            load_checkpoint(path)
    save_model(path, Network.from_spec("784-8-10", seed=0))
    with pytest.raises(ModelFileError, match="a digitnet model file, not a checkpoint"):
        load_checkpoint(path)
    with pytest.raises(ModelFileError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_checkpoints_of_another_training_are_refused(data, blob):
    state = from_bytes(blob).state
    for change, field in [
        ({"batch_size": 64}, "batch_size"),
        ({"optimizer": "momentum"}, "optimizer.kind"),
        ({"learning_rate": 1e-2}, "optimizer.base_alpha"),
        ({"weight_decay": 0.0}, "optimizer.config"),
        ({"augment": "none"}, "rng.augment"),
        ({"dropout": 0.0, "input_dropout": 0.0}, "rng.dropout"),
        ({"layers": "784-32-10"}, "parameters"),
        ({"validation_fraction": 0.2}, "m"),
    ]:
        other = prepare(CONFIG.replace(**change), data)
        before = weights(other.network)
        rng_before = other.trainer.rng.bit_generator.state
        with pytest.raises(ConfigError, match=f"field '{field}' is .* but here it is"):
            other.trainer.restore(state)
        # nothing was changed by the refused restore
        for p, q in zip(before, weights(other.network), strict=True):
            assert np.array_equal(p, q)
        assert other.trainer.rng.bit_generator.state == rng_before
        assert other.trainer.epochs_done == 0 and other.trainer.history == []


def test_a_wrong_generator_state_changes_nothing(data, blob):
    state = from_bytes(blob).state
    state["rng"]["dropout"] = [{"bit_generator": "MT19937", "state": {}}]
    other = prepare(CONFIG, data)
    before = [other.trainer.rng.bit_generator.state, other.trainer.aug_rng.bit_generator.state]
    with pytest.raises(ConfigError, match="dropout generator is for 'MT19937', not PCG64"):
        other.trainer.restore(state)
    after = [other.trainer.rng.bit_generator.state, other.trainer.aug_rng.bit_generator.state]
    assert after == before


def test_config_from_dict_checks_every_field():
    assert config_from_dict(CONFIG.to_dict()) == CONFIG
    old = {k: v for k, v in CONFIG.to_dict().items() if k not in ("gamma", "early_stopping")}
    assert config_from_dict(old).gamma == 0.1  # fields added later take their defaults
    with pytest.raises(ConfigError, match=r"config\.batch_size is 'big'"):
        config_from_dict({**CONFIG.to_dict(), "batch_size": "big"})
    with pytest.raises(ConfigError, match=r"config\.dropout is True"):
        config_from_dict({**CONFIG.to_dict(), "dropout": True})
    assert config_from_dict({**CONFIG.to_dict(), "batch_size": None}).batch_size is None


def test_dataset_identity_and_check(data):
    same = toy_dataset()
    check_same_dataset(dataset_identity(data), same)
    other = toy_dataset(seed=1)
    with pytest.raises(DataError, match="fingerprint is"):
        check_same_dataset(dataset_identity(data), other)
    fewer = toy_dataset(m=500)
    with pytest.raises(DataError, match="n_train is 500 here but the run recorded 600"):
        check_same_dataset(dataset_identity(data), fewer)
    renamed = dataclasses.replace(same, name="other", source="memory:other")
    with pytest.raises(DataError, match="the dataset is 'other' but the run recorded 'toy'"):
        check_same_dataset(dataset_identity(data), renamed)
    # a folder that moved (name = its path) is the same data if the content is
    a = dataclasses.replace(same, name="/old/mnist", source="/old/mnist")
    b = dataclasses.replace(same, name="/new/mnist", source="/new/mnist")
    check_same_dataset(dataset_identity(a), b)


# -- early stopping, schedules ----------------------------------------------------------------
def test_early_stopping_keeps_the_best_epochs_weights():
    """Random labels: training memorises them and the validation loss rises after a while."""
    rng = np.random.default_rng(0)
    X = rng.random((784, 300), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    net = Network.from_spec("784-64-10", seed=0)
    snapshots = []
    trainer = Trainer(
        net,
        X[:, :200],
        y[:200],
        epochs=60,
        batch_size=20,
        learning_rate=3e-3,
        validation_data=(X[:, 200:], y[200:]),
        early_stopping=3,
        seed=0,
        callbacks=[lambda record: snapshots.append(weights(net))],
    )
    history = trainer.train()
    val = [h["val_loss"] for h in history]
    best = int(np.argmin(val)) + 1
    assert trainer.stopped_early and trainer.finished
    assert trainer.best_epoch == best and len(history) == best + 3 < 60
    assert val[-1] > val[best - 1]
    assert not all(
        np.array_equal(p, q) for p, q in zip(weights(net), snapshots[best - 1], strict=True)
    )
    assert trainer.restore_best()
    for p, q in zip(weights(net), snapshots[best - 1], strict=True):
        assert np.array_equal(p, q)
    # fit does the same, and restores the best weights itself
    net2 = Network.from_spec("784-64-10", seed=0)
    hist2 = fit(
        net2,
        X[:, :200],
        y[:200],
        epochs=60,
        batch_size=20,
        learning_rate=3e-3,
        validation_data=(X[:, 200:], y[200:]),
        early_stopping=3,
        seed=0,
    )
    assert len(hist2) == len(history)
    for p, q in zip(weights(net2), snapshots[best - 1], strict=True):
        assert np.array_equal(p, q)


def test_early_stopping_in_a_run_records_the_best_epoch():
    d = toy_dataset(m=300, seed=7)
    d.y_train[:] = np.random.default_rng(1).integers(0, 10, 300)  # noise: it overfits
    config = TrainConfig(
        layers="784-64-10", epochs=40, batch_size=20, learning_rate=3e-3, early_stopping=2
    )
    result = run(config, d)
    m = result.metrics
    assert m["stopped_early"] is True and m["early_stopping"] == 2
    assert m["epochs_trained"] == m["best_epoch"] + 2 == len(m["history"])
    assert m["val_accuracy"] == m["history"][m["best_epoch"] - 1]["val_accuracy"]
    with pytest.raises(ConfigError, match="validation set is empty"):
        prepare(config.replace(validation_fraction=0.0), d)
    with pytest.raises(ConfigError, match="no validation set"):
        Trainer(Network.from_spec("784-8-10"), d.X_train, d.y_train, early_stopping=2)


def test_schedule_settings_reach_the_learning_rate():
    config = TrainConfig(schedule="step", step_epochs=1, gamma=0.5, learning_rate=0.1)
    s = build_schedule(config)
    assert (s.kind, s.step_epochs, s.gamma) == ("step", 1, 0.5)
    d = toy_dataset(m=200, seed=3)
    result = run(config.replace(layers="784-8-10", epochs=3, batch_size=50), d)
    assert [h["lr"] for h in result.history] == pytest.approx([0.1, 0.05, 0.025])
    cos = build_schedule(TrainConfig(schedule="cosine", min_factor=0.2, warmup_epochs=2))
    assert cos.factor(1, 10) == pytest.approx(0.5) and cos.factor(10, 10) == pytest.approx(0.2)


def test_dropout_generators_are_found_once():
    net = Network.from_spec("784-16-16-10", dropout=0.5, input_dropout=0.1, seed=0)
    gens = dropout_generators(net)
    assert len(gens) == 1 and all(
        layer.rng is gens[0] for layer in net.layers if hasattr(layer, "rng")
    )
    assert dropout_generators(Network.from_spec("784-8-10")) == []


def test_the_checkpoint_module_reads_what_it_writes_with_the_right_key():
    assert ckpt_mod.METADATA_KEY != "digitnet"  # never mistaken for a model file
    assert Path(ckpt_mod.FILENAME).suffix == ".safetensors"
