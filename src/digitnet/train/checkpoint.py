"""Checkpoints: the whole state of a training run in one file, to resume it exactly.

A checkpoint is a safetensors file (see :mod:`digitnet.modelfile` for the format), by convention
``checkpoint.safetensors`` in the run folder. Its tensors:

- ``param/W1``, ``param/b1``, ...: the network's parameters, as digitnet holds them (``W`` is
  ``(n_out, n_in)``, ``b`` the column ``(n_out, 1)``);
- ``opt/W1/m``, ``opt/W1/v``, ...: the optimiser's slots for each parameter;
- ``order``: the current epoch's order of training columns (int64), when the epoch is part-way;
- ``best/W1``, ...: the best epoch's parameters so far, with early stopping.

The header's metadata holds one key, ``"digitnet-checkpoint"``, a JSON document::

    {"format": "digitnet-checkpoint", "format_version": 1, "digitnet_version": "0.1.0",
     "config": {...the TrainConfig...}, "dataset": {"name", "source", "n_train", ...},
     "epochs": 6, "epochs_done": 2, "k": 117, "n_batches": 594, "batch_size": 16, "m": 9500,
     "loss_sum": ..., "correct": ..., "elapsed": ..., "history": [...],
     "rng": {"order": {...}, "augment": {...} or null, "dropout": [{...}]},
     "optimizer": {"kind": "adam", "config": {...}, "base_alpha": 0.001, "t": 1305,
                   "slots": {"W1": ["m", "v"], ...}},
     "early_stopping": {"patience", "best_val_loss", "best_epoch", "bad_epochs",
                        "stopped_early", "has_best"}}

The random generators' states are NumPy's ``bit_generator.state`` dictionaries (PCG64's 128-bit
integers are plain JSON integers). :func:`save_checkpoint` writes atomically (a temporary file,
flushed to disk, renamed over the old checkpoint): an interruption or a kill part-way leaves the
previous checkpoint whole. :func:`load_checkpoint` checks every field and tensor and refuses a
damaged or foreign file with a :class:`~digitnet.errors.ModelFileError` naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from digitnet._version import __version__
from digitnet.errors import ConfigError, ModelFileError
from digitnet.files import (
    HeaderError,
    RefusedFileError,
    load_tensors,
    read_safetensors,
    split_header,
    strict_json,
    write_atomic,
)
from digitnet.network import parse_spec, seed_name
from digitnet.train.config import TrainConfig

#: the document's ``"format"``
FORMAT = "digitnet-checkpoint"
#: the newest ``"format_version"`` this digitnet writes and reads
FORMAT_VERSION = 1
#: the safetensors metadata key that holds the document
METADATA_KEY = "digitnet-checkpoint"
#: a checkpoint's file name in a run folder
FILENAME = "checkpoint.safetensors"

_HINT = "a checkpoint is the checkpoint.safetensors that 'digitnet train' writes in a run folder"
#: the trainer's state fields that the document holds as they are (plain JSON values)
PLAIN_STATE = (
    "version", "epochs", "epochs_done", "k", "n_batches", "batch_size", "m", "loss_sum",
    "correct", "elapsed", "history", "rng",
)  # fmt: skip


@dataclass
class Checkpoint:
    """A loaded checkpoint: the run's ``config``, the ``dataset`` it trained on (as recorded),
    the trainer ``state`` (for :meth:`digitnet.train.loop.Trainer.restore`), the JSON ``doc``."""

    config: TrainConfig
    dataset: dict[str, Any] | None
    state: dict[str, Any]
    doc: dict[str, Any]

    @property
    def epochs_done(self) -> int:
        return int(self.state["epochs_done"])

    @property
    def k(self) -> int:
        return int(self.state["k"])


class _CheckError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


# -- the configuration as JSON ----------------------------------------------------------------
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "None": (type(None),),
}


def config_from_dict(values: Any, where: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from its :meth:`~TrainConfig.to_dict`, every field type-checked.

    Fields missing from ``values`` take their defaults (configs written before a field
    existed). Unknown fields and wrong types raise a :class:`ConfigError` naming the field.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where} is {values!r}, not an object of settings.")
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where} has unknown setting(s) {', '.join(map(repr, unknown))}.",
            "it was written by a newer digitnet, or edited",
        )
    for name, value in values.items():
        allowed: tuple[type, ...] = ()
        for part in str(known[name].type).split("|"):
            allowed += _TYPES.get(part.strip(), (object,))
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            raise ConfigError(
                f"{where}.{name} is {value!r}; expected a value of type {known[name].type}."
            )
        _check_value(name, value, where)
    return TrainConfig(**values)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


#: the numeric settings' ranges: a hand-edited or damaged config is refused, not trained on
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: 0 <= v < 2**63, "a non-negative integer"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v is None or v >= 1, "null (full batch) or an integer >= 1"),
    "learning_rate": (lambda v: _finite(v) and v > 0, "a positive number"),
    "momentum": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "dropout": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "input_dropout": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "label_smoothing": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "outliers": (lambda v: _finite(v) and 0 <= v <= 4, "a number from 0 to 4"),
    "validation_fraction": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "warmup_epochs": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "step_epochs": (lambda v: _finite(v) and v > 0, "a positive number"),
    "gamma": (lambda v: _finite(v) and v > 0, "a positive number"),
    "min_factor": (lambda v: _finite(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "early_stopping": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
}


def _check_value(name: str, value: Any, where: str) -> None:
    check = _RANGES.get(name)
    if check is not None and not check[0](value):
        raise ConfigError(f"{where}.{name} is {value!r}; expected {check[1]}.")


# -- writing ----------------------------------------------------------------------------------
def _json_value(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"a {type(obj).__name__} is not a JSON value")


def checkpoint_bytes(
    trainer: Any, config: TrainConfig, *, dataset: Mapping[str, Any] | None = None
) -> bytes:
    """The bytes of a checkpoint of ``trainer`` (a :class:`~digitnet.train.loop.Trainer`)."""
    state = trainer.state()
    tensors: dict[str, np.ndarray] = {}
    for name, arr in state["parameters"].items():
        tensors[f"param/{name}"] = np.ascontiguousarray(arr)
    opt = dict(state["optimizer"])
    slots = opt.pop("slots")
    opt["slots"] = {name: sorted(by_slot) for name, by_slot in slots.items()}
    for name, by_slot in slots.items():
        for slot, arr in by_slot.items():
            tensors[f"opt/{name}/{slot}"] = np.ascontiguousarray(arr)
    if state["order"] is not None:
        tensors["order"] = np.ascontiguousarray(state["order"], dtype="<i8")
    es = dict(state["early_stopping"])
    best = es.pop("best_parameters")
    es["has_best"] = best is not None
    for name, arr in (best or {}).items():
        tensors[f"best/{name}"] = np.ascontiguousarray(arr)
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "digitnet_version": __version__,
        "config": config.to_dict(),
        "dataset": None if dataset is None else dict(dataset),
        **{key: state[key] for key in PLAIN_STATE},
        "optimizer": opt,
        "early_stopping": es,
    }
    try:
        text = json.dumps(doc, default=_json_value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"The training state cannot be stored as JSON ({exc}).") from None
    return safetensors.numpy.save(tensors, metadata={METADATA_KEY: text})


def save_checkpoint(
    path: str | os.PathLike[str],
    trainer: Any,
    config: TrainConfig,
    *,
    dataset: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint of ``trainer`` (trained as ``config`` says) to ``path``, atomically.

    ``dataset``: what the run trains on (name, source, n_train, a fingerprint), recorded so
    that a resumed run can check it has the same data. The bytes go to a temporary file in the
    same folder, are flushed to disk and renamed over ``path``: an interruption part-way leaves
    the previous checkpoint (or none), never half of one.
    """
    data = checkpoint_bytes(trainer, config, dataset=dataset)
    path = Path(path)
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ModelFileError(
            f"{path}: cannot write the checkpoint ({exc.strerror or exc}).",
            "check that the folder exists and is writable",
        ) from None


# -- reading ----------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _document(data: bytes) -> dict[str, Any]:
    try:
        _, header = split_header(data)
    except HeaderError as exc:
        if exc.kind == "short":
            raise _CheckError(f"not a checkpoint: {exc.message}", _HINT) from None
        if exc.kind == "no-header":
            raise _CheckError(f"not a checkpoint: {exc.message}", _HINT) from None
        if exc.kind == "truncated":
            raise _CheckError(
                exc.message,
                "the file was cut short; an older checkpoint is not kept, start the run again",
            ) from None
        raise _CheckError(exc.message, _HINT) from None
    return _metadata_document(header)


def _metadata_document(header: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's JSON document, out of its safetensors header."""
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        if isinstance(metadata, dict) and "digitnet" in metadata:
            raise _CheckError(
                "it is a digitnet model file, not a checkpoint",
                "a run folder's checkpoint is checkpoint.safetensors; model.safetensors holds "
                "only the trained weights",
            )
        raise _CheckError(f"not a checkpoint: its header has no '{METADATA_KEY}' metadata", _HINT)
    try:
        doc = strict_json(metadata[METADATA_KEY])
    except (TypeError, ValueError) as exc:
        raise _CheckError(f"the '{METADATA_KEY}' metadata is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _CheckError(f"the '{METADATA_KEY}' metadata is not a JSON object")
    return doc


def _need(doc: dict[str, Any], field: str, check: Any, expected: str) -> Any:
    if field not in doc:
        raise _CheckError(f"field {field!r} is missing")
    value = doc[field]
    if not check(value):
        raise _CheckError(f"field {field!r} is {value!r}; expected {expected}")
    return value


def _check_rng_state(value: Any, field: str) -> None:
    """A generator's saved state, tried on a fresh generator of its kind: NumPy refuses (with
    one of several exception types) a state it cannot hold, such as a negative integer."""
    if not (
        isinstance(value, dict)
        and isinstance(value.get("bit_generator"), str)
        and isinstance(value.get("state"), dict)
    ):
        raise _CheckError(f"field {field!r} is {value!r}; expected a bit_generator.state object")
    kind = getattr(np.random, value["bit_generator"], None)
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise _CheckError(
            f"field '{field}.bit_generator' is {value['bit_generator']!r}; not a NumPy generator"
        )
    try:
        kind().state = value
    except Exception as exc:  # OverflowError, ValueError, TypeError, KeyError...
        raise _CheckError(
            f"field {field!r} is not a state a {value['bit_generator']} generator can have "
            f"({type(exc).__name__}: {exc})"
        ) from None


_RECORD_FIELDS = {
    "epoch": _is_int,
    "loss": _is_number,
    "accuracy": _is_number,
    "val_loss": lambda v: v is None or _is_number(v),
    "val_accuracy": lambda v: v is None or _is_number(v),
    "seconds": _is_number,
    "lr": _is_number,
}


def _check_document(doc: dict[str, Any]) -> TrainConfig:
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise _CheckError(f"field 'format' is {fmt!r}; a checkpoint says {FORMAT!r}", _HINT)
    version = doc.get("format_version")
    if not _is_int(version) or version < 1:
        raise _CheckError(f"field 'format_version' is {version!r}; expected a positive integer")
    if version > FORMAT_VERSION:
        raise _CheckError(
            f"field 'format_version' is {version}: written by a newer digitnet "
            f"({doc.get('digitnet_version', 'unknown version')}); this digitnet {__version__} "
            f"reads format_version {FORMAT_VERSION}",
            "upgrade digitnet to resume this run",
        )
    try:
        config = config_from_dict(doc.get("config"), "config")
    except ConfigError as exc:
        raise _CheckError(exc.message.rstrip("."), exc.hint) from None
    dataset = doc.get("dataset")
    if dataset is not None and not isinstance(dataset, dict):
        raise _CheckError(f"field 'dataset' is {dataset!r}; expected an object or null")
    _need(doc, "version", lambda v: v == 1, "1")
    _need(doc, "epochs", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    done = _need(doc, "epochs_done", lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    n_batches = _need(doc, "n_batches", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    _need(doc, "k", lambda v: _is_int(v) and 0 <= v < n_batches, f"an integer in [0, {n_batches})")
    _need(doc, "batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    _need(doc, "m", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    m = doc["m"]
    _need(doc, "loss_sum", lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a number >= 0")
    _need(doc, "correct", lambda v: _is_int(v) and 0 <= v <= m, f"an integer in [0, {m}]")
    _need(doc, "elapsed", lambda v: _is_number(v) and 0 <= v < math.inf, "a number >= 0")
    history = _need(doc, "history", lambda v: isinstance(v, list), "a list of epoch records")
    if len(history) != done:
        raise _CheckError(
            f"field 'history' has {len(history)} records but field 'epochs_done' is {done}"
        )
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            raise _CheckError(f"history[{i}] is {record!r}; expected an epoch record")
        for key, check in _RECORD_FIELDS.items():
            if key not in record or not check(record[key]):
                raise _CheckError(f"history[{i}].{key} is {record.get(key)!r}, missing or mistyped")
        if record["epoch"] != i + 1:
            raise _CheckError(f"history[{i}].epoch is {record['epoch']}; expected {i + 1}")
        for key in ("accuracy", "val_accuracy"):
            if record[key] is not None and not 0 <= record[key] <= 1:
                raise _CheckError(f"history[{i}].{key} is {record[key]!r}; expected 0 to 1")
    rng = _need(doc, "rng", lambda v: isinstance(v, dict), "an object")
    _check_rng_state(rng.get("order"), "rng.order")
    if rng.get("augment") is not None:
        _check_rng_state(rng["augment"], "rng.augment")
    if not isinstance(rng.get("dropout"), list):
        raise _CheckError(f"field 'rng.dropout' is {rng.get('dropout')!r}; expected a list")
    for i, state in enumerate(rng["dropout"]):
        _check_rng_state(state, f"rng.dropout[{i}]")
    opt = _need(doc, "optimizer", lambda v: isinstance(v, dict), "an object")
    for key, check, expected in (
        ("kind", lambda v: isinstance(v, str), "a string"),
        ("config", lambda v: isinstance(v, dict), "an object"),
        ("base_alpha", lambda v: _is_number(v) and v > 0, "a positive number"),
        ("t", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("slots", lambda v: isinstance(v, dict), "an object"),
    ):
        if key not in opt or not check(opt[key]):
            raise _CheckError(f"field 'optimizer.{key}' is {opt.get(key)!r}; expected {expected}")
    for name, slots in opt["slots"].items():
        if not isinstance(slots, list) or not all(isinstance(s, str) for s in slots):
            raise _CheckError(f"field 'optimizer.slots.{name}' is {slots!r}; expected slot names")
    es = _need(doc, "early_stopping", lambda v: isinstance(v, dict), "an object")
    for key, check, expected in (
        ("patience", lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
        ("best_val_loss", lambda v: v is None or _is_number(v), "null or a number"),
        ("best_epoch", lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer"),
        ("bad_epochs", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("stopped_early", lambda v: isinstance(v, bool), "true or false"),
        ("has_best", lambda v: isinstance(v, bool), "true or false"),
    ):
        if key not in es or not check(es[key]):
            raise _CheckError(
                f"field 'early_stopping.{key}' is {es.get(key)!r}; expected {expected}"
            )
    _check_early_stopping(es, done)
    return config


def _check_early_stopping(es: dict[str, Any], done: int) -> None:
    """The early-stopping fields agree with each other and with the epochs done."""
    best = es["best_epoch"]
    if best is not None and best > done:
        raise _CheckError(
            f"field 'early_stopping.best_epoch' is {best} but only {done} epochs are done"
        )
    if (best is None) != (es["best_val_loss"] is None):
        raise _CheckError(
            "fields 'early_stopping.best_epoch' and 'best_val_loss' must both be set or both "
            f"null; they are {best!r} and {es['best_val_loss']!r}"
        )
    if es["stopped_early"] and (best is None or not es["has_best"] or es["patience"] is None):
        raise _CheckError(
            "field 'early_stopping.stopped_early' is true but no best epoch is recorded "
            "(or early stopping is off)"
        )
    if es["bad_epochs"] > done:
        raise _CheckError(
            f"field 'early_stopping.bad_epochs' is {es['bad_epochs']} but only {done} epochs "
            "are done"
        )


def _expected_tensors(doc: dict[str, Any], config: TrainConfig) -> dict[str, tuple[tuple, str]]:
    """Tensor name -> (shape, dtype) that the document and the config's layers imply."""
    try:
        sizes = parse_spec(config.layers)
    except ConfigError as exc:
        raise _CheckError(f"field 'config.layers': {exc.message}") from None
    dtype = config.dtype
    if dtype not in ("float32", "float64"):
        raise _CheckError(f"field 'config.dtype' is {dtype!r}; expected float32 or float64")
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(len(sizes) - 1):
        shapes[seed_name("W", i + 1)] = (sizes[i + 1], sizes[i])
        shapes[seed_name("b", i + 1)] = (sizes[i + 1], 1)
    expected = {f"param/{name}": (shape, dtype) for name, shape in shapes.items()}
    for name, slots in doc["optimizer"]["slots"].items():
        if name not in shapes:
            raise _CheckError(
                f"field 'optimizer.slots' names parameter {name!r}, which the layers "
                f"{config.layers} do not have"
            )
        for slot in slots:
            expected[f"opt/{name}/{slot}"] = (shapes[name], dtype)
    if doc["k"] > 0:
        expected["order"] = ((doc["m"],), "int64")
    if doc["early_stopping"]["has_best"]:
        for name, shape in shapes.items():
            expected[f"best/{name}"] = (shape, dtype)
    return expected


def from_bytes(data: bytes, name: str = "<bytes>") -> Checkpoint:
    """A :class:`Checkpoint` from a checkpoint file's bytes, after checking everything."""
    try:
        doc = _document(data)
        config = _check_document(doc)
        expected = _expected_tensors(doc, config)
        try:
            loaded = load_tensors(data)
        except HeaderError as exc:
            raise _CheckError(f"its tensors are unreadable ({exc.message})") from None
        for tname, (shape, dtype) in expected.items():
            if tname not in loaded:
                raise _CheckError(f"tensor {tname!r} is missing")
            arr = loaded[tname]
            if arr.shape != shape or arr.dtype.name != dtype:
                raise _CheckError(
                    f"tensor {tname!r} is {arr.dtype.name} {arr.shape}; expected {dtype} {shape}"
                )
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise _CheckError(f"tensor {tname!r} holds NaN or infinite values")
        extra = sorted(set(loaded) - set(expected))
        if extra:
            raise _CheckError(f"the file holds unexpected tensor(s) {', '.join(map(repr, extra))}")
    except _CheckError as err:
        raise ModelFileError(f"{name}: {err.message}.", err.hint) from None
    arrays = {
        tname: np.array(arr, dtype=arr.dtype.newbyteorder("="), copy=True)
        for tname, arr in loaded.items()
    }
    opt = dict(doc["optimizer"])
    opt["slots"] = {
        pname: {slot: arrays[f"opt/{pname}/{slot}"] for slot in slots}
        for pname, slots in doc["optimizer"]["slots"].items()
    }
    params = {
        tname.removeprefix("param/"): arr for tname, arr in arrays.items() if tname[:6] == "param/"
    }
    es = {key: value for key, value in doc["early_stopping"].items() if key != "has_best"}
    es["best_parameters"] = (
        {tname.removeprefix("best/"): a for tname, a in arrays.items() if tname[:5] == "best/"}
        if doc["early_stopping"]["has_best"]
        else None
    )
    state = {key: doc[key] for key in PLAIN_STATE}
    state["order"] = arrays["order"].astype(np.intp) if "order" in arrays else None
    state["optimizer"] = opt
    state["parameters"] = params
    state["early_stopping"] = es
    return Checkpoint(config=config, dataset=doc.get("dataset"), state=state, doc=doc)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint file: ``ckpt = load_checkpoint(run_dir / FILENAME)``.

    Resume with ``trainer.restore(ckpt.state)`` on a trainer set up from ``ckpt.config``.
    Refuses (:class:`~digitnet.errors.ModelFileError`, naming the field or tensor) an empty,
    truncated or foreign file, a model file, a newer format, missing or mistyped fields, and
    tensors whose names, shapes or dtypes do not fit the recorded configuration.
    """
    path = Path(path)
    try:
        data = read_safetensors(path, "a checkpoint file", _check_header)
    except HeaderError as exc:
        raise ModelFileError(f"{path}: its tensors are unreadable ({exc.message}).") from None
    except RefusedFileError as exc:
        raise ModelFileError(f"{path}: {exc.message}.", exc.hint) from None
    except _CheckError as err:
        raise ModelFileError(f"{path}: {err.message}.", err.hint) from None
    return from_bytes(data, str(path))


def _check_header(header: dict[str, Any]) -> None:
    """The document, checked from the header before the data are read."""
    _check_document(_metadata_document(header))


__all__ = [
    "FILENAME",
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "Checkpoint",
    "checkpoint_bytes",
    "config_from_dict",
    "from_bytes",
    "load_checkpoint",
    "save_checkpoint",
]
