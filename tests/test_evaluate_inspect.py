"""``digitnet evaluate`` and ``digitnet inspect`` end to end, as a user runs them (cli.main)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PER_CLASS_KEYS = {"digit", "precision", "recall", "f1", "support"}
#: the keys ``digitnet evaluate --json`` documents (its --help epilog)
JSON_KEYS = {"model", "dataset", "accuracy", "n", "per_class", "confusion_matrix", "pictures"}


def assert_png(path):
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 200 <= height <= 4000 and 200 <= width <= 4000


def assert_one_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    """Failed: one ``error:`` line (perhaps a ``hint:``), no traceback, nothing on stdout."""
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr, r.stderr
    assert [line for line in lines if line.startswith("error:")] == [lines[0]], r.stderr
    assert all(line.startswith(("error:", "hint:")) for line in lines), r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert r.stdout == ""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny model trained as the docs say: DIR/model.safetensors and DIR/metrics.json."""
    out = tmp_path_factory.mktemp("run")
    r = run_cli("train", "--layers", "784-32-10", "--epochs", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()
    return out


@pytest.fixture
def model_dir(run_dir, tmp_path):
    """A folder holding only a copy of the trained model (no pictures from training)."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(run_dir / "model.safetensors", folder / "model.safetensors")
    return folder


@pytest.fixture(scope="module")
def wrong_data_dir(tmp_path_factory):
    """Four valid IDX files of 14x14 images: data, but not what a 784-input model reads."""
    from digitnet.data.idx import write_idx

    folder = tmp_path_factory.mktemp("small-images")
    rng = np.random.default_rng(0)
    for prefix, m in (("train", 30), ("t10k", 20)):
        images = rng.integers(0, 256, (m, 14, 14)).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        labels = rng.integers(0, 10, m).astype(np.uint8)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


# -- evaluate -------------------------------------------------------------------------------
def test_evaluate_prints_tables_and_writes_pictures(model_dir):
    r = run_cli("evaluate", str(model_dir))  # a run folder; pictures into it by default
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = r.stdout
    assert "test accuracy" in out and "of 10,000 right" in out
    assert "digit  precision  recall      f1  support" in out
    assert "macro avg" in out and "true \\ predicted" in out
    table = [line.split() for line in out.splitlines()]
    digit_rows = [row for row in table if len(row) == 5 and row[0] in "0123456789"]
    assert [row[0] for row in digit_rows] == [str(d) for d in range(10)]
    matrix_rows = [row for row in table if len(row) == 11 and row[0] in "0123456789"]
    assert [row[0] for row in matrix_rows] == [str(d) for d in range(10)]
    assert sum(int(c.replace(",", "")) for row in matrix_rows for c in row[1:]) == 10_000
    for name in ("confusion_matrix.png", "mistakes.png"):
        assert_png(model_dir / name)
        assert str(model_dir / name) in out
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "confusion_matrix.png",
        "mistakes.png",
        "model.safetensors",
    ]  # and no temporary files


def test_evaluate_json_contract(run_dir, tmp_path):
    pictures = tmp_path / "pictures"
    r = run_cli("evaluate", str(run_dir / "model.safetensors"), "--json", "--out", str(pictures))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    result = json.loads(r.stdout)  # one JSON object and nothing else
    assert r.stdout.count("\n") == 1 and isinstance(result, dict)
    assert set(result) == JSON_KEYS
    n, cm = result["n"], np.array(result["confusion_matrix"])
    assert n == 10_000 and result["dataset"] == "embedded"
    assert cm.shape == (10, 10) and cm.dtype.kind == "i" and cm.sum() == n
    assert result["accuracy"] == np.trace(cm) / n
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert result["accuracy"] == metrics["test_accuracy"]
    rows = result["per_class"]
    assert len(rows) == 10 and [row["digit"] for row in rows] == list(range(10))
    for d, row in enumerate(rows):
        assert set(row) == PER_CLASS_KEYS
        assert row["support"] == cm[d].sum()
        assert row["recall"] == pytest.approx(cm[d, d] / cm[d].sum())
        assert row["precision"] == pytest.approx(cm[d, d] / cm[:, d].sum())
        assert 0.0 <= row["f1"] <= 1.0
    assert set(result["pictures"]) == {"confusion_matrix", "mistakes"}
    for path in result["pictures"].values():
        assert_png(pictures.joinpath(path.rsplit("/", 1)[-1]))


def test_evaluate_folder_dataset_falls_back_to_embedded(tmp_path, capsys):
    """A model trained on a folder records the folder's name (never its path): evaluate says
    so and uses embedded."""
    from digitnet import cli
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    net = Network.from_spec("784-8-10", seed=0)
    metadata = {"dataset": {"name": "/somewhere/my-digits", "n_train": 5, "n_test": 5}}
    save_model(tmp_path / "model.safetensors", net, metadata=metadata)
    assert cli.main(["evaluate", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["dataset"] == "embedded"
    assert captured.err.startswith("note: the model was trained on my-digits, not a dataset")


# -- inspect --------------------------------------------------------------------------------
def test_inspect_prints_layers_and_record(model_dir, tmp_path):
    pictures = tmp_path / "pictures"
    r = run_cli("inspect", str(model_dir), "--out", str(pictures))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = r.stdout
    assert "784-32-10 (relu), float32" in out
    for fragment in (
        "layer",
        "parameters",
        "784 → 32",
        "25,120",
        "32 → 10",
        "330",
        "softmax",
        "total: 25,450 parameters",
        "cost: cross-entropy",
        "dataset: embedded",
        "test_accuracy=",
        "layers=784-32-10",
        "seed:    0",
        "written by digitnet",
    ):
        assert fragment in out, fragment
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#  layer"))
    kinds = [lines[head + 1 + i].split()[1] for i in range(5)]
    assert kinds == ["dense", "relu", "dropout", "dense", "softmax"]
    for name in ("weights.png", "histograms.png"):
        assert_png(pictures / name)
    assert sorted(p.name for p in pictures.iterdir()) == ["histograms.png", "weights.png"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.safetensors"]


# -- bad inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_bad_models_are_one_error_line(command, tmp_path):
    r = run_cli(command, str(tmp_path / "missing.safetensors"))
    assert_one_error(r, "missing.safetensors", "no such file")

    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(np.random.default_rng(1).bytes(4096))
    assert_one_error(run_cli(command, str(noise)), "not a digitnet model file")

    empty = tmp_path / "empty-run"
    empty.mkdir()
    assert_one_error(run_cli(command, str(empty)), "a folder without model.safetensors")
    assert list(tmp_path.glob("**/*.png")) == []


def test_evaluate_on_the_wrong_data_is_one_error_line(run_dir, wrong_data_dir, tmp_path):
    r = run_cli("evaluate", str(run_dir), "--data-dir", str(wrong_data_dir), "--out", str(tmp_path))
    assert_one_error(r, "784 inputs", "196 pixels")
    r = run_cli("evaluate", str(run_dir), "--data-dir", str(tmp_path / "nowhere"))
    assert_one_error(r, "no such folder")
    assert list(tmp_path.iterdir()) == []


def test_model_with_the_wrong_outputs_is_one_error_line(tmp_path):
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    save_model(tmp_path / "model.safetensors", Network.from_spec("784-8-5", seed=0))
    assert_one_error(run_cli("evaluate", str(tmp_path)), "5 outputs", "10 classes")


def test_help_has_examples():
    for command in ("evaluate", "inspect"):
        r = run_cli(command, "--help")
        assert r.returncode == 0 and "examples:" in r.stdout and "--out" in r.stdout
