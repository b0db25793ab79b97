"""A trained network as one file: ``model.safetensors``, weights plus a JSON document.

The file is in the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
little-endian length ``N``, then ``N`` bytes of JSON saying each tensor's name, dtype, shape and
byte offsets, then the raw little-endian numbers. Reading one never runs code (no pickle
anywhere), and other tools read it too: PyTorch loads the weights straight into
``torch.nn.Linear`` layers (see ``docs/model-format.md`` for the five lines).

The header's metadata (a string-to-string map) holds one key, ``"digitnet"``, whose value is a
JSON document::

    {"format": "digitnet-model", "format_version": 1, "digitnet_version": "0.1.0",
     "architecture": [{"kind": "dense", "n_in": 784, "n_out": 512}, {"kind": "relu"}, ...],
     "cost": {"kind": "cross_entropy", "label_smoothing": 0.1},
     "dtype": "float32",
     "preprocessing": {...},
     "tensors": {"0.weight": {"shape": [512, 784], "dtype": "float32"}, ...},
     "parameters": {"W1": "0.weight", "b1": "0.bias", ...},
     ...the caller's own fields: "dataset", "metrics", "config", "seed"...}

Tensor names follow ``torch.nn.Sequential``: the network's layers are numbered from 0 with the
dropout layers left out (dropout only acts in training), and dense layer ``i`` stores
``"i.weight"`` (``W``, ``(n_out, n_in)``) and ``"i.bias"`` (``b``, stored flat as ``(n_out,)``
like ``torch.nn.Linear.bias``; digitnet's own ``b`` is the column ``(n_out, 1)``). So the
seeds' ``W¹, b¹, W², b²`` of a ``Dense, ReLU, Dense, Softmax`` network are ``0.weight,
0.bias, 2.weight, 2.bias``; ``"parameters"`` records that correspondence.

:func:`load_model` trusts nothing: the bytes must be a complete safetensors file, the document
must be one this digitnet reads, and every tensor must have exactly the name, shape and dtype that
the architecture implies. Any mismatch raises :class:`~digitnet.errors.ModelFileError` naming the
field. :func:`save_model` writes through a temporary file and a rename, so an interrupted save
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from digitnet._version import __version__
from digitnet.activations import ACTIVATIONS, get_activation
from digitnet.costs import COSTS, Cost, get_cost
from digitnet.errors import DigitnetError, ModelFileError
from digitnet.files import (
    HeaderError,
    RefusedFileError,
    load_tensors,
    read_safetensors,
    split_header,
    strict_json,
    write_atomic,
)
from digitnet.layers import Dense, Dropout, Layer
from digitnet.network import Network, seed_name

#: the value of the document's ``"format"`` field
FORMAT = "digitnet-model"
#: the newest ``"format_version"`` this digitnet writes and reads
FORMAT_VERSION = 1
#: the safetensors metadata key that holds the JSON document
METADATA_KEY = "digitnet"

#: what a network trained by digitnet on MNIST-style data expects as its input
MNIST_PREPROCESSING: dict[str, Any] = {
    "input": "784 pixels, row-major 28x28, scaled to [0,1], white digit on black, "
    "MNIST-style centring",
    "n_inputs": 784,
    "image_shape": [28, 28],
    "scale": "pixel / 255",
    "layout": "digitnet: one example per column, X of shape (784, m); "
    "torch: one example per row, (m, 784)",
}

#: document fields that digitnet fills in itself; the caller's metadata may not set them
RESERVED_FIELDS = (
    "format",
    "format_version",
    "digitnet_version",
    "architecture",
    "cost",
    "dtype",
    "tensors",
    "parameters",
)

_DTYPES = ("float32", "float64")
_LAYER_KINDS = ("dense", "dropout", *sorted(ACTIVATIONS))
#: bytes a file starts with, for saying what a non-model file is instead
_SIGNATURES = (
    (b"PK\x03\x04", "it is a zip archive (PyTorch .pt/.pth files are zip archives of pickles)"),
    (b"PK\x05\x06", "it is an empty zip archive"),
    (b"\x1f\x8b", "it is gzip-compressed data"),
    (b"\x93NUMPY", "it is a NumPy .npy file"),
    (b"\x89HDF", "it is an HDF5 file (Keras .h5?)"),
)


# -- writing ----------------------------------------------------------------------------------
def tensor_layout(architecture: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The tensors a network of this architecture stores: name -> ``shape``, ``seed_name``, layer.

    Dense layer ``i`` of the ``torch.nn.Sequential`` numbering (every layer but dropout, from 0)
    gives ``"i.weight"`` of shape ``[n_out, n_in]`` and ``"i.bias"`` of shape ``[n_out]``; the
    ``l``-th dense layer is the seeds' ``Wˡ, bˡ``. ``layer`` is the index in ``architecture``.
    The architecture must already be well formed (see :func:`load_model`).
    """
    layout: dict[str, dict[str, Any]] = {}
    torch_index, l_index = 0, 0
    for a_index, layer in enumerate(architecture):
        if layer["kind"] == "dropout":
            continue
        if layer["kind"] == "dense":
            l_index += 1
            n_in, n_out = layer["n_in"], layer["n_out"]
            layout[f"{torch_index}.weight"] = {
                "shape": [n_out, n_in],
                "seed_name": seed_name("W", l_index),
                "layer": a_index,
            }
            layout[f"{torch_index}.bias"] = {
                "shape": [n_out],
                "seed_name": seed_name("b", l_index),
                "layer": a_index,
            }
        torch_index += 1
    return layout


def _json_default(obj: Any) -> Any:
    """Turn the values training code produces (NumPy scalars, configs, paths) into JSON ones."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"a {type(obj).__name__} is not a JSON value")


def _check_savable(net: Network) -> None:
    """Refuse layers and costs a model file cannot record (subclasses of digitnet's own)."""
    if not isinstance(net, Network):
        raise ModelFileError(f"save_model needs a digitnet Network; got {type(net).__name__}.")
    for i, layer in enumerate(net.layers):
        known: type[Layer] | None = {"dense": Dense, "dropout": Dropout}.get(layer.kind)
        if known is None:
            known = ACTIVATIONS.get(layer.kind)
        if type(layer) is not known:
            raise ModelFileError(
                f"layer {i} ({type(layer).__name__}, kind {layer.kind!r}) cannot be saved: a "
                f"model file records only digitnet's own layers ({', '.join(_LAYER_KINDS)}).",
            )
    if type(net.cost) is not COSTS.get(net.cost.kind):
        raise ModelFileError(
            f"the cost {type(net.cost).__name__} (kind {net.cost.kind!r}) cannot be saved: a "
            f"model file records only digitnet's own costs ({', '.join(sorted(COSTS))})."
        )


def _portable_name(name: Any) -> Any:
    """A dataset's name without the folder it lay in: ``/home/me/mnist`` becomes ``mnist``."""
    if isinstance(name, str) and ("/" in name or os.sep in name or name.startswith("~")):
        return Path(name.rstrip("/" + os.sep)).name or name
    return name


def _without_paths(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` with no path of the machine that trained the network: the dataset entry
    keeps its name (a folder's own name, not its path), sizes, classes and digests, not where
    it lay (``source``); the metrics keep the dataset's name, not ``data_source``."""
    out = dict(metadata)
    dataset = out.get("dataset")
    if isinstance(dataset, Mapping):
        out["dataset"] = {
            k: _portable_name(v) if k == "name" else v for k, v in dataset.items() if k != "source"
        }
    metrics = out.get("metrics")
    if isinstance(metrics, Mapping):
        out["metrics"] = {
            k: _portable_name(v) if k == "dataset" else v
            for k, v in metrics.items()
            if k != "data_source"
        }
    return out


def model_document(net: Network, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document a model file carries for ``net``, with the caller's ``metadata`` added.

    ``metadata`` holds what digitnet cannot know by itself; by convention ``"dataset"``,
    ``"metrics"``, ``"config"`` (the training config) and ``"seed"``. It may replace
    ``"preprocessing"`` (by default MNIST's, for a 784-input network) but none of the fields
    digitnet fills in (:data:`RESERVED_FIELDS`). Values must be JSON: NumPy scalars and arrays,
    dataclasses and paths are converted; NaN and infinity are refused (strict JSON). No path
    of the training machine is kept: a dataset's ``source`` is left out and a folder's path in
    its name becomes the folder's name (see :func:`_without_paths`).
    """
    _check_savable(net)
    architecture = net.architecture()
    layout = tensor_layout(architecture)
    dtype = net.dtype.name
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "digitnet_version": __version__,
        "architecture": architecture,
        "cost": net.cost.config(),
        "dtype": dtype,
        "preprocessing": (
            dict(MNIST_PREPROCESSING) if net.n_inputs == 784 else {"n_inputs": net.n_inputs}
        ),
        "tensors": {name: {"shape": t["shape"], "dtype": dtype} for name, t in layout.items()},
        "parameters": {t["seed_name"]: name for name, t in layout.items()},
    }
    for key, value in _without_paths(metadata or {}).items():
        if not isinstance(key, str):
            raise ModelFileError(f"metadata keys must be strings; got {key!r}.")
        if key in RESERVED_FIELDS:
            raise ModelFileError(
                f"metadata[{key!r}] is a field digitnet fills in itself and cannot be set.",
                f"the reserved fields are {', '.join(RESERVED_FIELDS)}",
            )
        try:
            doc[key] = json.loads(json.dumps(value, default=_json_default, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(
                f"metadata[{key!r}] cannot be stored as JSON ({exc}).",
                "use numbers, strings, booleans, None, lists and dicts; no NaN or infinity",
            ) from None
    return doc


def to_bytes(net: Network, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of a model file for ``net`` (see :func:`model_document` for ``metadata``).

    The same network and metadata always give the same bytes (no time stamps).
    """
    doc = model_document(net, metadata)
    tensors: dict[str, np.ndarray] = {}
    for name, t in tensor_layout(doc["architecture"]).items():
        layer = net.layers[t["layer"]]
        if name.endswith(".weight"):
            tensors[name] = np.ascontiguousarray(layer.W)  # (n_out, n_in), as torch keeps it
        else:
            tensors[name] = np.ascontiguousarray(layer.b.reshape(-1))  # (n_out,): torch's bias
    return safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(doc)})


def save_model(
    path: str | os.PathLike[str], net: Network, *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write ``net`` to ``path`` as one model file (``model.safetensors`` by convention).

    Atomic: the bytes go to a temporary file in the same folder, are flushed to disk, and the
    temporary file is renamed over ``path``. A crash or Ctrl-C part-way leaves ``path`` as it was
    (absent, or the previous model) and removes the temporary file; only a hard kill can leave a
    ``.model.safetensors.*.part`` file behind, which is not at ``path`` and which
    :func:`load_model` refuses. The folder must exist.

    ``metadata``: the caller's fields of the document, such as ``{"dataset": ..., "metrics":
    ..., "config": ..., "seed": ...}`` (see :func:`model_document`).
    """
    data = to_bytes(net, metadata)
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give the model file's name.")
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ModelFileError(
            f"{path}: cannot write the model file ({exc.strerror or exc}).",
            "check that the folder exists and is writable",
        ) from None


# -- reading ----------------------------------------------------------------------------------
class _CheckError(Exception):
    """A problem found while checking a document; :func:`from_bytes` adds the file's name."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


_NOT_A_MODEL_HINT = "a digitnet model file is a .safetensors file written by digitnet's save_model"


def _not_a_model(why: str) -> _CheckError:
    return _CheckError(f"not a digitnet model file ({why})", _NOT_A_MODEL_HINT)


def _read_header(data: bytes) -> dict[str, Any]:
    """The safetensors header (JSON) of ``data``, or a refusal saying what the bytes are instead."""
    if len(data) == 0:
        raise _not_a_model("the file is empty")
    try:
        return split_header(data)[1]
    except HeaderError as exc:
        if exc.kind not in ("short", "no-header"):
            raise _not_a_model(exc.message) from None
        for magic, what in _SIGNATURES:
            if data.startswith(magic):
                raise _not_a_model(what) from None
        if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
            raise _not_a_model(
                "it is a Python pickle; digitnet never unpickles, unpickling runs code"
            ) from None
        raise _not_a_model(exc.message) from None


def _read_tensors(data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, copied into writable native-order arrays."""
    try:
        loaded = load_tensors(data)
    except HeaderError as exc:
        raise _not_a_model(f"its safetensors data are invalid: {exc.message}") from None
    return {name: np.array(arr, dtype=arr.dtype.newbyteorder("=")) for name, arr in loaded.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_document(doc: Any) -> None:
    """The document's own fields: format, version, dtype, architecture, cost, tensors table."""
    if not isinstance(doc, dict):
        raise _CheckError(f"the '{METADATA_KEY}' metadata is not a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise _CheckError(f"field 'format' is {fmt!r}; a digitnet model says {FORMAT!r}")
    version = doc.get("format_version")
    if not _is_int(version) or version < 1:
        raise _CheckError(f"field 'format_version' is {version!r}; expected a positive integer")
    if version > FORMAT_VERSION:
        raise _CheckError(
            f"field 'format_version' is {version}: the file was written by a newer digitnet "
            f"({doc.get('digitnet_version', 'unknown version')}); this digitnet {__version__} "
            f"reads format_version {FORMAT_VERSION}",
            "upgrade digitnet to load this model",
        )
    for name in ("architecture", "cost", "dtype", "tensors", "parameters"):
        if name not in doc:
            raise _CheckError(f"field {name!r} is missing from the document")
    if doc["dtype"] not in _DTYPES:
        raise _CheckError(
            f"field 'dtype' is {doc['dtype']!r}; expected one of {', '.join(_DTYPES)}"
        )
    _check_architecture(doc["architecture"])
    cost = doc["cost"]
    if (
        not isinstance(cost, dict)
        or not isinstance(cost.get("kind"), str)
        or cost["kind"] not in COSTS
    ):
        raise _CheckError(
            f"field 'cost' is {cost!r}; expected an object whose 'kind' is one of "
            f"{', '.join(sorted(COSTS))}"
        )
    if not isinstance(doc["tensors"], dict):
        raise _CheckError("field 'tensors' is not an object of tensor name -> shape and dtype")


def _check_architecture(architecture: Any) -> None:
    """Each layer well formed and of a known kind; dense sizes chained output to input."""
    if not isinstance(architecture, list) or not architecture:
        raise _CheckError("field 'architecture' is not a non-empty list of layers")
    n_prev = None
    for i, layer in enumerate(architecture):
        where = f"architecture[{i}]"
        if not isinstance(layer, dict) or "kind" not in layer:
            raise _CheckError(f"{where} is {layer!r}; expected an object with a 'kind'")
        kind = layer["kind"]
        if kind not in _LAYER_KINDS:
            raise _CheckError(
                f"{where}.kind is {kind!r}: not a layer digitnet knows ({', '.join(_LAYER_KINDS)})",
                "the file may come from a newer digitnet; upgrade to load it",
            )
        if kind == "dense":
            for size in ("n_in", "n_out"):
                if not _is_int(layer.get(size)) or layer[size] < 1:
                    raise _CheckError(
                        f"{where}.{size} is {layer.get(size)!r}; expected a positive integer"
                    )
            if n_prev is not None and layer["n_in"] != n_prev:
                raise _CheckError(
                    f"{where}.n_in is {layer['n_in']} but the dense layer before it has "
                    f"n_out {n_prev}"
                )
            n_prev = layer["n_out"]
    if n_prev is None:
        raise _CheckError("field 'architecture' has no dense layer")


def _check_tensors(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """File tensors == the architecture's tensors == the document's table, names/shapes/dtypes."""
    layout = tensor_layout(doc["architecture"])
    table = doc["tensors"]
    dtype = doc["dtype"]
    for name in layout:
        if name not in table:
            raise _CheckError(f"tensors[{name!r}] is missing from the document's tensor table")
        if name not in tensors:
            raise _CheckError(
                f"tensor {name!r} (the seeds' {layout[name]['seed_name']}) is missing from the file"
            )
    for name in table:
        if name not in layout:
            raise _CheckError(
                f"tensors[{name!r}] is listed in the document but the architecture has no such "
                f"tensor (it has {', '.join(layout)})"
            )
    for name in tensors:
        if name not in layout:
            raise _CheckError(
                f"the file holds an extra tensor {name!r} that the architecture does not have "
                f"(it has {', '.join(layout)})"
            )
    for name, expected in layout.items():
        entry, arr = table[name], tensors[name]
        shape, arch = list(arr.shape), expected["shape"]
        where = f"architecture[{expected['layer']}]"
        if not isinstance(entry, dict):
            raise _CheckError(f"tensors[{name!r}] is {entry!r}; expected {{'shape', 'dtype'}}")
        if entry.get("shape") != arch:
            raise _CheckError(
                f"tensors[{name!r}].shape is {entry.get('shape')!r} but {where} says {arch}"
            )
        if entry.get("dtype") != dtype:
            raise _CheckError(
                f"tensors[{name!r}].dtype is {entry.get('dtype')!r} but field 'dtype' says "
                f"{dtype!r}"
            )
        if shape != arch:
            raise _CheckError(f"tensor {name!r} has shape {shape} but {where} says {arch}")
        if arr.dtype.name != dtype:
            raise _CheckError(
                f"tensor {name!r} has dtype {arr.dtype.name} but field 'dtype' says {dtype!r}"
            )
        if not np.isfinite(arr).all():
            raise _CheckError(f"tensor {name!r} holds NaN or infinite values")
    seed_names = {t["seed_name"]: name for name, t in layout.items()}
    if doc["parameters"] != seed_names:
        raise _CheckError(
            f"field 'parameters' is {doc['parameters']!r} but the architecture gives {seed_names}"
        )


def _build_layer(i: int, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Layer:
    kind = config["kind"]
    options = {k: v for k, v in config.items() if k != "kind"}
    if kind == "dense":
        return Dense(tensors["weight"], tensors["bias"].reshape(-1, 1))
    if kind == "dropout":
        p = options.pop("p", None)
        if options or not isinstance(p, float | int) or isinstance(p, bool):
            raise _CheckError(f"architecture[{i}] is {config!r}; dropout takes one number 'p'")
        return Dropout(p)
    return get_activation(kind, **options)


def _build_network(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> Network:
    """The network the (checked) document describes, with the file's weights."""
    layout = tensor_layout(doc["architecture"])
    by_layer: dict[int, dict[str, np.ndarray]] = {}
    for name, t in layout.items():
        by_layer.setdefault(t["layer"], {})[name.rsplit(".", 1)[1]] = tensors[name]
    layers: list[Layer] = []
    for i, config in enumerate(doc["architecture"]):
        try:
            layers.append(_build_layer(i, config, by_layer.get(i, {})))
        except (DigitnetError, TypeError, ValueError) as exc:
            raise _CheckError(f"architecture[{i}] {config!r} cannot be built: {exc}") from None
    cost_options = {k: v for k, v in doc["cost"].items() if k != "kind"}
    try:
        cost: Cost = get_cost(doc["cost"]["kind"], **cost_options)
    except (DigitnetError, TypeError, ValueError) as exc:
        raise _CheckError(f"field 'cost' {doc['cost']!r} cannot be built: {exc}") from None
    try:
        return Network(layers, cost, dtype=doc["dtype"])
    except (DigitnetError, TypeError, ValueError) as exc:
        raise _CheckError(f"the architecture and cost do not make a network: {exc}") from None


def _check_outputs(net: Network) -> None:
    """Refuse weights that cannot give finite outputs: huge but finite weights (``3e38``)
    overflow on the first image and would answer every image with a meaningless NaN. The
    network reads a blank image, a full one and a checkerboard (in [0, 1], as pixels are)."""
    n = net.n_inputs
    probes = np.zeros((n, 3), dtype=net.dtype)
    probes[:, 1] = 1.0
    probes[::2, 2] = 1.0
    with np.errstate(all="ignore"):
        out = net.predict_proba(probes)
    if not np.isfinite(out).all():
        raise _CheckError(
            "the weights give outputs that are not finite (NaN or infinity) even on a blank "
            "image: they are too large",
            "the model cannot read anything; train it again, with a smaller learning rate",
        )


def _document(data: bytes) -> dict[str, Any]:
    """The checked digitnet JSON document in the header of model-file bytes."""
    header = _read_header(data)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        raise _CheckError(
            f"a safetensors file, but not a digitnet model: its header has no "
            f"'{METADATA_KEY}' metadata",
            "it was written by another program; digitnet reads the files its save_model writes",
        )
    try:
        doc = strict_json(metadata[METADATA_KEY])
    except (TypeError, ValueError) as exc:
        raise _CheckError(f"the '{METADATA_KEY}' metadata is not valid JSON ({exc})") from None
    _check_document(doc)
    return doc


def from_bytes(data: bytes, name: str = "<bytes>") -> tuple[Network, dict[str, Any]]:
    """``(network, document)`` from the bytes of a model file, after checking everything.

    ``name`` (the file's path) starts every error message.
    """
    try:
        doc = _document(data)
        tensors = _read_tensors(data)
        _check_tensors(doc, tensors)
        net = _build_network(doc, tensors)
        _check_outputs(net)
    except _CheckError as err:
        raise ModelFileError(f"{name}: {err.message}.", err.hint) from None
    return net, doc


def read_document(data: bytes, name: str = "<bytes>") -> dict[str, Any]:
    """The JSON document of model-file bytes, checked, without reading or checking the weights.

    Quick for showing what a model is (its metrics, config, architecture); to use the weights,
    :func:`from_bytes` or :func:`load_model` check them too.
    """
    try:
        return _document(data)
    except _CheckError as err:
        raise ModelFileError(f"{name}: {err.message}.", err.hint) from None


def load_model(path: str | os.PathLike[str]) -> tuple[Network, dict[str, Any]]:
    """Read a model file: ``net, doc = load_model("model.safetensors")``.

    Returns the rebuilt :class:`~digitnet.network.Network` (its layers, cost and dtype as saved,
    ready for ``predict`` or further training; dropout layers get a fresh random generator) and
    the file's JSON document as a dict (``doc["metrics"]``, ``doc["config"]``, ...).

    Refuses, with a :class:`~digitnet.errors.ModelFileError` naming the problem, a file that is
    not a model (a pickle, a zip, random bytes, an empty or truncated file, a safetensors file
    without digitnet's metadata), a document of a newer ``format_version``, and any tensor whose
    name, shape or dtype differs from what the architecture says. Never unpickles.
    """
    path = Path(path)
    try:
        data = read_safetensors(path, "a model file", _check_header)
    except HeaderError as exc:
        refusal = _not_a_model(exc.message)
        raise ModelFileError(f"{path}: {refusal.message}.", refusal.hint) from None
    except RefusedFileError as exc:
        raise ModelFileError(f"{path}: {exc.message}.", exc.hint) from None
    except _CheckError as err:
        raise ModelFileError(f"{path}: {err.message}.", err.hint) from None
    return from_bytes(data, str(path))


def _check_header(header: dict[str, Any]) -> None:
    """The document, checked from the header before the data are read."""
    metadata = header.get("__metadata__")
    if isinstance(metadata, dict) and isinstance(metadata.get(METADATA_KEY), str):
        try:
            doc = strict_json(metadata[METADATA_KEY])
        except ValueError:
            return  # from_bytes says what is wrong, in its own words
        _check_document(doc)


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "MNIST_PREPROCESSING",
    "RESERVED_FIELDS",
    "from_bytes",
    "load_model",
    "model_document",
    "read_document",
    "save_model",
    "tensor_layout",
    "to_bytes",
]
