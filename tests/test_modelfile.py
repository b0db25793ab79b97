"""The model file: one safetensors file, checked on loading, written atomically, read by torch.

Round trips keep predictions bit for bit; every kind of file that is not a sound digitnet model
is refused with a :class:`ModelFileError` naming the problem; an interrupted save leaves the
previous file intact; and the PyTorch lines of ``docs/model-format.md`` are run exactly as they
are written there.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitnet import modelfile
from digitnet.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from digitnet.costs import CrossEntropy
from digitnet.errors import ModelFileError
from digitnet.layers import Dense, Dropout
from digitnet.modelfile import from_bytes, load_model, read_document, save_model, to_bytes
from digitnet.network import Network
from digitnet.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "model-format.md"


# -- helpers ----------------------------------------------------------------------------------
def small_net(**kwargs) -> Network:
    kwargs.setdefault("seed", 0)
    return Network.from_spec("20-8-6-4", **kwargs)


def inputs(n: int, m: int = 33, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, m), dtype=np.float32)


def split_file(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The digitnet document and the tensors of model-file bytes, read without digitnet."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    return json.loads(header["__metadata__"]["digitnet"]), dict(safetensors.numpy.load(data))


def rewrite(path: Path, mutate) -> None:
    """Tamper with a model file: ``mutate(doc, tensors)`` then write a valid safetensors file."""
    doc, tensors = split_file(path.read_bytes())
    mutate(doc, tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"digitnet": json.dumps(doc)}))


def doc_block(marker: str) -> str:
    """The ```python block right after ``<!-- marker ...-->`` in docs/model-format.md."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}\b.*?-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/model-format.md has no python block marked {marker!r}"
    return found.group(1)


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    save_model(path, small_net(dropout=0.2), metadata={"seed": 0})
    return path


# -- round trips ------------------------------------------------------------------------------
ROUND_TRIPS = {
    "relu-softmax-ce": dict(),
    "dropout-and-input-dropout": dict(dropout=0.5, input_dropout=0.2),
    "leaky-relu-label-smoothing": dict(activation="leaky_relu", label_smoothing=0.1),
    "sigmoid-mse": dict(activation="sigmoid", cost="mse"),
    "tanh-identity-mse": dict(activation="tanh", output="identity", cost="mse"),
    "arctan": dict(activation="arctan"),
    "float64": dict(dtype=np.float64, dropout=0.1),
}


@pytest.mark.parametrize("kwargs", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip_keeps_predictions_weights_and_description(tmp_path, kwargs):
    net = small_net(**kwargs)
    path = tmp_path / "model.safetensors"
    meta = {"dataset": {"name": "embedded"}, "metrics": {"test_accuracy": 0.5}, "seed": 7}
    save_model(path, net, metadata=meta)
    loaded, doc = load_model(path)

    X = inputs(20)
    assert loaded.dtype == net.dtype
    assert np.array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert loaded.architecture() == net.architecture()
    assert loaded.cost.config() == net.cost.config()
    for (name, p, _), (name2, q, _) in zip(net.parameters(), loaded.parameters(), strict=True):
        assert name == name2 and p.shape == q.shape and p.dtype == q.dtype
        assert np.array_equal(p, q)
    for key, value in meta.items():
        assert doc[key] == value
    assert doc["format"] == "digitnet-model" and doc["format_version"] == 1
    assert doc["dtype"] == net.dtype.name
    assert doc["architecture"] == net.architecture()


def test_leaky_slope_and_label_smoothing_survive(tmp_path):
    layers = [Dense(np.ones((3, 5)), np.zeros(3)), LeakyReLU(slope=0.3)]
    layers += [Dense(np.ones((2, 3)), np.zeros(2)), Softmax()]
    net = Network(layers, CrossEntropy(label_smoothing=0.2))
    save_model(tmp_path / "m.safetensors", net)
    loaded, doc = load_model(tmp_path / "m.safetensors")
    assert loaded.layers[1].slope == 0.3
    assert loaded.cost.label_smoothing == 0.2
    assert doc["cost"] == {"kind": "cross_entropy", "label_smoothing": 0.2}


def test_hand_built_network_with_consecutive_dense_layers(tmp_path):
    """torch numbering counts every layer but dropout: Dense, Tanh, Dense, Dense, Sigmoid."""
    rng = np.random.default_rng(0)
    layers = [
        Dropout(0.3),
        Dense(rng.normal(size=(6, 9)), rng.normal(size=(6, 1))),
        Tanh(),
        Dense(rng.normal(size=(5, 6)), rng.normal(size=(5, 1))),
        Dense(rng.normal(size=(4, 5)), rng.normal(size=(4, 1))),
        Sigmoid(),
    ]
    net = Network(layers, "mse", dtype=np.float64)
    save_model(tmp_path / "m.safetensors", net)
    loaded, doc = load_model(tmp_path / "m.safetensors")
    assert list(doc["tensors"]) == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "3.weight",
        "3.bias",
    ]
    assert doc["parameters"] == {
        "W1": "0.weight",
        "b1": "0.bias",
        "W2": "2.weight",
        "b2": "2.bias",
        "W3": "3.weight",
        "b3": "3.bias",
    }
    X = inputs(9, seed=3).astype(np.float64)
    assert np.array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_bias_is_stored_flat_and_loaded_as_a_column(model_path):
    net, doc = load_model(model_path)
    _, tensors = split_file(model_path.read_bytes())
    assert tensors["0.bias"].shape == (8,)
    assert doc["tensors"]["0.bias"] == {"shape": [8], "dtype": "float32"}
    assert net.dense_layers[0].b.shape == (8, 1)
    assert np.array_equal(net.dense_layers[0].b.ravel(), tensors["0.bias"])


def test_loaded_network_trains_further(model_path):
    net, _ = load_model(model_path)
    before = net.dense_layers[0].W.copy()
    X, y = inputs(20, m=64), np.random.default_rng(0).integers(0, 4, 64)
    history = net.fit(X, y, epochs=2, batch_size=16, optimizer="adam", learning_rate=1e-2)
    assert len(history) == 2
    assert not np.array_equal(before, net.dense_layers[0].W)


def test_same_network_and_metadata_give_the_same_bytes():
    net = small_net(dropout=0.2)
    assert to_bytes(net, {"seed": 3}) == to_bytes(net, {"seed": 3})
    assert from_bytes(to_bytes(net))[1]["architecture"] == net.architecture()


# -- the document -----------------------------------------------------------------------------
def test_document_fields_and_converted_metadata(tmp_path):
    net = Network.from_spec("784-16-10", seed=0)
    config = TrainConfig(layers="784-16-10", seed=5)
    meta = {
        "config": config,
        "seed": np.int64(5),
        "metrics": {"test_accuracy": np.float64(0.875), "per_class": np.arange(3)},
        "dataset": {"name": "embedded", "path": Path("/data/mnist")},
    }
    save_model(tmp_path / "m.safetensors", net, metadata=meta)
    doc = read_document((tmp_path / "m.safetensors").read_bytes())
    assert doc["config"] == config.to_dict()
    assert doc["seed"] == 5
    assert doc["metrics"] == {"test_accuracy": 0.875, "per_class": [0, 1, 2]}
    assert doc["dataset"]["path"] == "/data/mnist"
    assert doc["digitnet_version"] == modelfile.__version__
    assert doc["preprocessing"]["input"] == (
        "784 pixels, row-major 28x28, scaled to [0,1], white digit on black, MNIST-style centring"
    )
    assert doc["tensors"] == {
        "0.weight": {"shape": [16, 784], "dtype": "float32"},
        "0.bias": {"shape": [16], "dtype": "float32"},
        "2.weight": {"shape": [10, 16], "dtype": "float32"},
        "2.bias": {"shape": [10], "dtype": "float32"},
    }


def test_preprocessing_may_be_replaced_and_defaults_to_input_count():
    doc = from_bytes(to_bytes(small_net()))[1]
    assert doc["preprocessing"] == {"n_inputs": 20}
    doc = from_bytes(to_bytes(small_net(), {"preprocessing": {"input": "20 features"}}))[1]
    assert doc["preprocessing"] == {"input": "20 features"}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"tensors": {}}, r"metadata\['tensors'\] is a field digitnet fills in"),
        ({"format_version": 2}, r"metadata\['format_version'\] is a field digitnet fills in"),
        ({"metrics": {"loss": float("nan")}}, r"metadata\['metrics'\] cannot be stored as JSON"),
        ({"callback": print}, r"metadata\['callback'\] cannot be stored as JSON"),
        ({3: "three"}, r"metadata keys must be strings"),
    ],
)
def test_metadata_that_cannot_be_stored_is_refused_before_writing(tmp_path, metadata, message):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ModelFileError, match=message):
        save_model(path, small_net(), metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_saving_refuses_layers_it_cannot_record_and_bad_paths(tmp_path):
    class Swish(ReLU):
        kind = "swish"

    net = Network([Dense(np.ones((3, 4)), np.zeros(3)), Swish(), Identity()], "mse")
    with pytest.raises(ModelFileError, match=r"layer 1 \(Swish, kind 'swish'\) cannot be saved"):
        save_model(tmp_path / "m.safetensors", net)
    with pytest.raises(ModelFileError, match="needs a digitnet Network"):
        save_model(tmp_path / "m.safetensors", {"W1": np.ones(3)})
    with pytest.raises(ModelFileError, match="cannot write the model file"):
        save_model(tmp_path / "no-such-folder" / "m.safetensors", small_net())
    with pytest.raises(ModelFileError, match="is a folder"):
        save_model(tmp_path, small_net())
    assert list(tmp_path.iterdir()) == []


# -- refusals: files that are not models ------------------------------------------------------
def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"W1": [[1.0]]}))
    return buf.getvalue()


NOT_MODELS = {
    "pickle": (lambda good: pickle.dumps({"W1": np.ones((2, 2))}), r"it is a Python pickle"),
    "pickle-protocol-2": (lambda good: pickle.dumps({"a": 1}, protocol=2), r"Python pickle"),
    "zip": (lambda good: _zip_bytes(), r"it is a zip archive"),
    "random": (lambda good: np.random.default_rng(0).bytes(4096), r"safetensors header"),
    "empty": (lambda good: b"", r"the file is empty"),
    "seven-bytes": (lambda good: good[:7], r"7 bytes, too short"),
    "truncated": (lambda good: good[:-100], r"truncated"),
    "truncated-in-header": (lambda good: good[:60], r"truncated: the header should be"),
    "padded": (lambda good: good + b"\0" * 16, r"truncated or padded"),
    "npy": (lambda good: b"\x93NUMPY\x01\x00" + b" " * 20, r"NumPy \.npy"),
    "json": (lambda good: b'{"W1": [[1.0]]}', r"safetensors header"),
}


@pytest.mark.parametrize(("make", "message"), NOT_MODELS.values(), ids=NOT_MODELS.keys())
def test_files_that_are_not_models_are_refused(model_path, make, message):
    bad = model_path.with_name("bad.safetensors")
    bad.write_bytes(make(model_path.read_bytes()))
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(bad)
    assert str(info.value).startswith(f"{bad}: not a digitnet model file (")
    assert info.value.hint


def test_a_model_whose_header_length_looks_like_a_pickle_still_loads():
    """A header of 0x480 bytes starts the file with 80 04, a pickle's first bytes: still a model."""
    net = Network.from_spec("5-3-2", seed=0)
    pad = next(k for k in range(2000) if to_bytes(net, {"pad": "x" * k})[:2] == b"\x80\x04")
    loaded, doc = from_bytes(to_bytes(net, {"pad": "x" * pad}))
    assert doc["pad"] == "x" * pad
    assert np.array_equal(loaded.predict_proba(np.ones((5, 2))), net.predict_proba(np.ones((5, 2))))


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match=r"model\.safetensors: no such file"):
        load_model(tmp_path / "model.safetensors")
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        load_model(tmp_path)


def test_safetensors_file_without_digitnet_metadata_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    tensors = {"0.weight": np.ones((4, 20), np.float32), "0.bias": np.zeros(4, np.float32)}
    path.write_bytes(safetensors.numpy.save(tensors))
    with pytest.raises(ModelFileError, match="no 'digitnet' metadata"):
        load_model(path)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    with pytest.raises(ModelFileError, match="no 'digitnet' metadata"):
        load_model(path)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"digitnet": "{not json"}))
    with pytest.raises(ModelFileError, match="'digitnet' metadata is not valid JSON"):
        load_model(path)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"digitnet": "[1, 2]"}))
    with pytest.raises(ModelFileError, match="'digitnet' metadata is not a JSON object"):
        load_model(path)


def test_loading_never_unpickles(model_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_model must not unpickle")

    pickled = model_path.with_name("model.pkl")
    pickled.write_bytes(pickle.dumps({"W1": np.ones((2, 2))}))
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    net, _ = load_model(model_path)
    assert net.predict(inputs(20)).shape == (33,)
    with pytest.raises(ModelFileError, match="Python pickle"):
        load_model(pickled)


# -- refusals: tampered headers and tensors ---------------------------------------------------
def _set(path: list, value):
    def mutate(doc, tensors):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _consistent_wider_hidden_layer(doc, tensors):
    """A header that agrees with itself (first hidden layer of 16) but not with the tensors."""
    doc["architecture"][0]["n_out"] = 16
    doc["architecture"][3]["n_in"] = 16
    doc["tensors"]["0.weight"]["shape"] = [16, 20]
    doc["tensors"]["0.bias"]["shape"] = [16]
    doc["tensors"]["2.weight"]["shape"] = [6, 16]


def _drop_tensor(doc, tensors):
    del tensors["2.weight"]


def _extra_tensor(doc, tensors):
    tensors["6.weight"] = np.ones((3, 4), np.float32)


def _unlisted_tensor(doc, tensors):
    del doc["tensors"]["4.bias"]


def _reshaped_tensor(doc, tensors):
    tensors["2.weight"] = np.ones((6, 10), np.float32)


def _float16_tensor(doc, tensors):
    tensors["4.bias"] = tensors["4.bias"].astype(np.float16)


def _nan_tensor(doc, tensors):
    tensors["0.weight"][0, 0] = np.nan


def _sigmoid_output_with_ce(doc, tensors):
    doc["architecture"][-1] = {"kind": "sigmoid"}


TAMPERED = {
    "format_version-99": (
        _set(["format_version"], 99),
        r"field 'format_version' is 99: the file was written by a newer digitnet",
    ),
    "format_version-text": (_set(["format_version"], "1"), r"field 'format_version' is '1'"),
    "format": (_set(["format"], "keras"), r"field 'format' is 'keras'"),
    "dtype": (_set(["dtype"], "int8"), r"field 'dtype' is 'int8'"),
    "no-architecture": (lambda d, t: d.pop("architecture"), r"field 'architecture' is missing"),
    "unknown-activation": (
        _set(["architecture", 1, "kind"], "swish"),
        r"architecture\[1\]\.kind is 'swish': not a layer digitnet knows",
    ),
    "unknown-cost": (_set(["cost", "kind"], "hinge"), r"field 'cost' is \{'kind': 'hinge'"),
    "cost-kind-not-text": (_set(["cost", "kind"], ["ce"]), r"field 'cost' is"),
    "label-smoothing-out-of-range": (
        _set(["cost", "label_smoothing"], 1.5),
        r"field 'cost' .* cannot be built: label_smoothing must be in \[0, 1\)",
    ),
    "unknown-layer-option": (
        _set(["architecture", 1, "slope"], 0.1),
        r"architecture\[1\] \{'kind': 'relu', 'slope': 0.1\} cannot be built",
    ),
    "dropout-p-out-of-range": (
        _set(["architecture", 2, "p"], 1.5),
        r"architecture\[2\] .* cannot be built: The dropout probability p must be in \[0, 1\)",
    ),
    "dense-size-not-integer": (
        _set(["architecture", 0, "n_out"], 8.0),
        r"architecture\[0\]\.n_out is 8\.0; expected a positive integer",
    ),
    "chain-broken": (
        _set(["architecture", 3, "n_in"], 9),
        r"architecture\[3\]\.n_in is 9 but the dense layer before it has n_out 8",
    ),
    "table-shape": (
        _set(["tensors", "2.weight", "shape"], [6, 9]),
        r"tensors\['2\.weight'\]\.shape is \[6, 9\] but architecture\[3\] says \[6, 8\]",
    ),
    "table-dtype": (
        _set(["tensors", "2.bias", "dtype"], "float64"),
        r"tensors\['2\.bias'\]\.dtype is 'float64' but field 'dtype' says 'float32'",
    ),
    "header-disagrees-with-tensors": (
        _consistent_wider_hidden_layer,
        r"tensor '0\.weight' has shape \[8, 20\] but architecture\[0\] says \[16, 20\]",
    ),
    "tensor-shape": (
        _reshaped_tensor,
        r"tensor '2\.weight' has shape \[6, 10\] but architecture\[3\] says \[6, 8\]",
    ),
    "tensor-dtype": (
        _float16_tensor,
        r"tensor '4\.bias' has dtype float16 but field 'dtype' says 'float32'",
    ),
    "missing-tensor": (
        _drop_tensor,
        r"tensor '2\.weight' \(the seeds' W2\) is missing from the file",
    ),
    "extra-tensor": (_extra_tensor, r"the file holds an extra tensor '6\.weight'"),
    "unlisted-tensor": (
        _unlisted_tensor,
        r"tensors\['4\.bias'\] is missing from the document's tensor table",
    ),
    "listed-but-not-in-architecture": (
        _set(["tensors", "9.weight"], {"shape": [1], "dtype": "float32"}),
        r"tensors\['9\.weight'\] is listed in the document but the architecture has no such",
    ),
    "nan-weights": (_nan_tensor, r"tensor '0\.weight' holds NaN or infinite values"),
    "parameters-map": (_set(["parameters", "W1"], "2.weight"), r"field 'parameters' is"),
    "ce-without-softmax": (
        _sigmoid_output_with_ce,
        r"do not make a network: Cross-entropy needs a softmax output layer",
    ),
    "required-fields-missing": (
        lambda d, t: d.clear() or d.update({"format": "digitnet-model", "format_version": 1}),
        r"field 'architecture' is missing",
    ),
}


@pytest.mark.parametrize(("mutate", "message"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_models_are_refused_naming_the_field(model_path, mutate, message):
    rewrite(model_path, mutate)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(model_path)
    assert str(info.value).startswith(f"{model_path}: ")


def test_newer_format_version_says_to_upgrade(model_path):
    rewrite(model_path, _set(["format_version"], 99))
    with pytest.raises(ModelFileError) as info:
        load_model(model_path)
    assert "reads format_version 1" in info.value.message
    assert "upgrade digitnet" in info.value.hint


def test_the_untampered_fixture_loads(model_path):
    rewrite(model_path, lambda doc, tensors: None)
    load_model(model_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_cut_of_a_model_is_refused(data):
    good = to_bytes(Network.from_spec("5-3-2", seed=0))
    cut = data.draw(st.integers(0, len(good) - 1))
    with pytest.raises(ModelFileError):
        from_bytes(good[:cut])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused(data):
    with pytest.raises(ModelFileError):
        from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_changed_byte_is_refused_or_still_a_sound_model(data):
    """Any single-byte change: ModelFileError, or a model that passes every check; no crash."""
    good = to_bytes(Network.from_spec("5-3-2", seed=0))
    n_header = 8 + int.from_bytes(good[:8], "little")
    i = data.draw(st.integers(0, n_header - 1))  # the header: lengths, JSON, the document
    value = data.draw(st.integers(0, 255))
    changed = good[:i] + bytes([value]) + good[i + 1 :]
    try:
        net, _ = from_bytes(changed)
    except ModelFileError:
        return
    assert net.predict_proba(np.ones((net.n_inputs, 2))).shape == (net.n_outputs, 2)


# -- atomic writing ---------------------------------------------------------------------------
class _CrashingFile:
    """A file object that writes the first half of the bytes, then is interrupted (Ctrl-C)."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise KeyboardInterrupt


@pytest.fixture
def crash_mid_write(monkeypatch):
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _CrashingFile(real_fdopen(fd, *a, **k)))


def test_crash_mid_write_leaves_no_file(tmp_path, crash_mid_write):
    path = tmp_path / "model.safetensors"
    with pytest.raises(KeyboardInterrupt):
        save_model(path, small_net())
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_write_keeps_the_previous_model(model_path, crash_mid_write):
    before = model_path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        save_model(model_path, small_net(activation="tanh", seed=9))
    assert list(model_path.parent.iterdir()) == [model_path]
    assert model_path.read_bytes() == before
    _, doc = load_model(model_path)
    assert doc["architecture"][1] == {"kind": "relu"}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_a_hard_kill_mid_write_leaves_the_old_model_and_a_refused_part_file(model_path):
    """A killed process runs no cleanup: the temporary file stays, but never at the path."""
    before = model_path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from digitnet.modelfile import save_model
        from digitnet.network import Network

        real_fdopen = os.fdopen

        class Killed:
            def __init__(self, fh):
                self.fh = fh
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                pass
            def write(self, data):
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        os.fdopen = lambda fd, *a, **k: Killed(real_fdopen(fd, *a, **k))
        save_model({str(model_path)!r}, Network.from_spec("20-30-4", seed=1))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert model_path.read_bytes() == before
    load_model(model_path)
    leftovers = [p for p in model_path.parent.iterdir() if p != model_path]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".model.safetensors.")
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(leftovers[0])


def test_save_replaces_an_existing_model(model_path):
    save_model(model_path, small_net(activation="sigmoid", cost="mse"))
    _, doc = load_model(model_path)
    assert doc["cost"] == {"kind": "mse"}
    assert list(model_path.parent.iterdir()) == [model_path]


# -- PyTorch ----------------------------------------------------------------------------------
def test_digitnet_does_not_import_torch():
    code = "import sys, digitnet.modelfile; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(scope="module")
def trained_default_shape():
    """A 784-512-256-10 ReLU network with dropout, briefly trained on real digits."""
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    net = Network.from_spec("784-512-256-10", dropout=0.2, label_smoothing=0.1, seed=0)
    net.fit(data.X_train[:, :3000], data.y_train[:3000], epochs=1, optimizer="adam")
    return net, data


def test_the_five_documented_lines_load_the_model_into_torch(
    tmp_path, monkeypatch, trained_default_shape
):
    torch = pytest.importorskip("torch")
    net, data = trained_default_shape
    save_model(tmp_path / "model.safetensors", net, metadata={"dataset": data.describe()})
    X = data.X_test[:, :500]

    five_lines = doc_block("five-lines")
    assert len([line for line in five_lines.splitlines() if line.strip()]) == 5
    monkeypatch.chdir(tmp_path)
    namespace = {"images": torch.from_numpy(X.T)}
    with torch.no_grad():
        exec(five_lines, namespace)  # the documented lines, exactly as written there

    probabilities = namespace["probabilities"].numpy()
    expected = net.predict_proba(X).T
    assert namespace["model"][0].weight.shape == (512, 784)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)
    # The same digit read, except where PyTorch's and NumPy's products (which round differently)
    # split a near-tie: there the two likeliest digits are within the tolerance above.
    differ = np.flatnonzero(probabilities.argmax(axis=1) != net.predict(X))
    for j in differ:
        top2 = np.sort(expected[j])[-2:]
        assert top2[1] - top2[0] <= 2e-5
    assert (net.predict(X) == data.y_test[:500]).mean() > 0.8  # real digits, really read


TORCH_RECIPES = {
    "relu-dropout": dict(dropout=0.3, input_dropout=0.1),
    "leaky-relu": dict(activation="leaky_relu"),
    "tanh-mse-sigmoid": dict(activation="tanh", cost="mse"),
    "sigmoid-identity": dict(activation="sigmoid", output="identity", cost="mse"),
    "float64": dict(dtype=np.float64),
}


@pytest.mark.parametrize("kwargs", TORCH_RECIPES.values(), ids=TORCH_RECIPES.keys())
def test_the_documented_recipe_builds_any_architecture_in_torch(tmp_path, kwargs):
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(doc_block("torch-recipe"), namespace)  # defines torch_model(path), as documented
    net = small_net(**kwargs)
    path = tmp_path / "model.safetensors"
    save_model(path, net)
    model = namespace["torch_model"](str(path))
    X = inputs(20).astype(net.dtype)
    with torch.no_grad():
        out = model(torch.from_numpy(X.T)).numpy()
    tol = 1e-12 if net.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, net.predict_proba(X).T, rtol=0, atol=tol)


def test_weights_changed_in_torch_come_back_to_digitnet(tmp_path):
    """The way back documented at the end of docs/model-format.md."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    namespace: dict = {}
    exec(doc_block("torch-recipe"), namespace)
    path = tmp_path / "model.safetensors"
    save_model(path, small_net(), metadata={"seed": 0})
    model = namespace["torch_model"](str(path))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    doc = read_document(path.read_bytes())
    back = tmp_path / "tuned.safetensors"
    save_file(model.state_dict(), str(back), metadata={"digitnet": json.dumps(doc)})
    net, _ = load_model(back)
    X = inputs(20)
    with torch.no_grad():
        expected = model(torch.from_numpy(X.T)).numpy()
    np.testing.assert_allclose(net.predict_proba(X).T, expected, rtol=0, atol=1e-5)
