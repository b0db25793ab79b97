"""files.py and the loaders on it: regular files only, header first, strict JSON, finite weights,
no path of the training machine (issue 13's model-file findings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from memutil import peak_mb

from digitnet.errors import ModelFileError
from digitnet.files import (
    MAX_DEPTH,
    RefusedFileError,
    read_regular,
    strict_json,
    write_atomic,
)
from digitnet.modelfile import METADATA_KEY, from_bytes, load_model, save_model, to_bytes
from digitnet.network import Network
from digitnet.train import checkpoint as ckpt_mod
from digitnet.train.checkpoint import checkpoint_bytes, load_checkpoint
from digitnet.train.config import TrainConfig
from digitnet.train.run import prepare

#: documents every reader would misread: refused, in one line, by model files and checkpoints
BAD_JSON = {
    "nan": "NaN",
    "infinity": "-Infinity",
    "overflow": "1e999",
    "lone-surrogate": '"\\ud800"',
    "5000-digit-int": "1" * 5000,
    "deep-nesting": "[" * 100_000 + "]" * 100_000,
}


def _with_document(data: bytes, key: str, extra: str) -> bytes:
    """Safetensors bytes whose document (metadata ``key``) gets one more field, ``extra`` as
    written (not necessarily JSON a strict reader accepts)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = header["__metadata__"][key]
    header["__metadata__"][key] = text[:-1] + ', "x": ' + extra + "}"
    new = json.dumps(header).encode()
    return len(new).to_bytes(8, "little") + new + data[8 + n :]


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return to_bytes(Network.from_spec("784-8-10", seed=0))


@pytest.fixture(scope="module")
def checkpoint_blob() -> bytes:
    rng = np.random.default_rng(0)
    from digitnet.data.datasets import Dataset

    X = rng.random((784, 300), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    data = Dataset("toy", "memory:toy", X[:, :200], y[:200], X[:, 200:], y[200:])
    config = TrainConfig(layers="784-8-10", epochs=1, batch_size=50, seed=1)
    training = prepare(config, data)
    training.train()
    return checkpoint_bytes(training.trainer, config)


# -- regular files only ------------------------------------------------------------------------
def test_dev_zero_is_refused_at_once_in_bounded_memory():
    """/dev/zero given as a model grew without bound: now refused from what it is."""
    grown, out = peak_mb(
        "from digitnet.modelfile import load_model",
        "load_model('/dev/zero')",
        limit_mb=1500,
    )
    assert out.startswith(
        "ModelFileError: /dev/zero: is a character device, not a regular file; a model file "
        "must be a file."
    )
    assert grown < 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_hanging(tmp_path):
    """A FIFO with no writer blocked load_model forever; model files and checkpoints alike."""
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    code = textwrap.dedent(
        f"""
        from digitnet.errors import ModelFileError
        from digitnet.modelfile import load_model
        from digitnet.train.checkpoint import load_checkpoint
        for load in (load_model, load_checkpoint):
            try:
                load({str(fifo)!r})
            except ModelFileError as e:
                print(e.message)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert lines == [
        f"{fifo}: is a named pipe (FIFO), not a regular file; a model file must be a file.",
        f"{fifo}: is a named pipe (FIFO), not a regular file; a checkpoint file must be a file.",
    ], done.stderr


def test_read_regular_says_what_the_file_is(tmp_path):
    with pytest.raises(RefusedFileError, match=r"^no such file$"):
        read_regular(tmp_path / "absent")
    with pytest.raises(RefusedFileError, match=r"^is a folder, not a file$"):
        read_regular(tmp_path)
    (tmp_path / "big").write_bytes(b"x" * 100)
    with pytest.raises(RefusedFileError, match="is 100 bytes, more than the 10"):
        read_regular(tmp_path / "big", limit=10)
    assert read_regular(tmp_path / "big", limit=100) == b"x" * 100


def test_a_header_that_declares_more_data_than_the_file_holds_is_refused_before_reading(
    tmp_path, model_bytes, monkeypatch
):
    """Header first: the data are read only when the file is as long as its header says."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_bytes + b"\0" * 64)
    calls = []
    real = safetensors.numpy.load
    monkeypatch.setattr(safetensors.numpy, "load", lambda d: calls.append(d) or real(d))
    with pytest.raises(ModelFileError, match="truncated or padded: the header declares"):
        load_model(path)
    assert calls == []
    save_model(path, Network.from_spec("784-8-10", seed=0))
    load_model(path)
    assert len(calls) == 1


def test_write_atomic_lives_in_files_and_writes_whole_files(tmp_path):
    from digitnet.data import idx

    assert idx.write_atomic is write_atomic and ckpt_mod.write_atomic is write_atomic
    write_atomic(tmp_path / "a.bin", b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


# -- strict JSON -------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_strict_json_refuses_what_other_readers_would_misread(extra):
    with pytest.raises(ValueError) as err:
        strict_json('{"a": ' + extra + "}")
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_strict_json_accepts_what_digitnet_writes():
    pcg_state = 2**127 + 12345  # PCG64's 128-bit state is a plain JSON integer
    doc = {"a": [1.5, -2, None, True, "é"], "s": pcg_state, "n": [[[[1]]]]}
    assert strict_json(json.dumps(doc)) == doc
    assert strict_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)


@pytest.mark.parametrize("extra", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_model_files_with_documents_other_readers_misread_are_refused(tmp_path, model_bytes, extra):
    path = tmp_path / "model.safetensors"
    path.write_bytes(_with_document(model_bytes, METADATA_KEY, extra))
    with pytest.raises(ModelFileError, match="metadata is not valid JSON") as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in err.value.message
    with pytest.raises(ModelFileError):
        from_bytes(path.read_bytes())


@pytest.mark.parametrize("extra", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_checkpoints_with_documents_other_readers_misread_are_refused(
    tmp_path, checkpoint_blob, extra
):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(_with_document(checkpoint_blob, ckpt_mod.METADATA_KEY, extra))
    with pytest.raises(ModelFileError, match="metadata is not valid JSON") as err:
        load_checkpoint(path)
    assert "\n" not in err.value.message


def test_a_lone_surrogate_in_the_safetensors_header_itself_is_refused(tmp_path, model_bytes):
    n = int.from_bytes(model_bytes[:8], "little")
    header = model_bytes[8 : 8 + n].replace(b'{"__metadata__":', b'{"\\udc00": 1, "__metadata__":')
    assert header != model_bytes[8 : 8 + n]
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + model_bytes[8 + n :])
    with pytest.raises(ModelFileError, match="lone surrogate"):
        load_model(path)


# -- weights and what the file says about the machine -----------------------------------------
def test_weights_that_cannot_give_finite_outputs_are_refused(tmp_path):
    """3e38 is finite, but the first layer's output overflows: every answer would be NaN."""
    net = Network.from_spec("784-8-10", seed=0)
    for _, p, _ in net.parameters():
        p[...] = 3e38
    path = tmp_path / "model.safetensors"
    save_model(path, net)
    with pytest.raises(ModelFileError, match="outputs that are not finite") as err:
        load_model(path)
    assert err.value.hint and "\n" not in err.value.message


def test_a_model_file_carries_no_path_of_the_training_machine(tmp_path):
    folder = "/home/someone/private/my-digits"
    metadata = {
        "dataset": {"name": folder, "source": folder, "n_train": 5, "sha256": {"a": "00"}},
        "metrics": {"dataset": folder, "data_source": folder, "test_accuracy": 0.5},
    }
    save_model(tmp_path / "model.safetensors", Network.from_spec("784-8-10"), metadata=metadata)
    raw = (tmp_path / "model.safetensors").read_bytes()
    assert b"/home/someone" not in raw
    _, doc = load_model(tmp_path / "model.safetensors")
    assert doc["dataset"] == {"name": "my-digits", "n_train": 5, "sha256": {"a": "00"}}
    assert doc["metrics"] == {"dataset": "my-digits", "test_accuracy": 0.5}


def test_a_trained_model_keeps_its_data_digests_not_their_folder(tmp_path, mnist10k_dir):
    from digitnet.data.datasets import load_folder

    data = load_folder(mnist10k_dir)
    assert sorted(data.describe()["sha256"]) == sorted(
        ["train-images", "train-labels", "test-images", "test-labels"]
    )
    save_model(
        tmp_path / "m.safetensors",
        Network.from_spec("784-8-10"),
        metadata={"dataset": data.describe()},
    )
    _, doc = load_model(tmp_path / "m.safetensors")
    assert doc["dataset"]["name"] == Path(mnist10k_dir).name
    assert "source" not in doc["dataset"] and doc["dataset"]["sha256"] == data.digests
