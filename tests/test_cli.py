"""The command line, driven as a user drives it: in-process via main(), and in a fresh process
where that is the point (what --help imports, --version)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_cli

from digitnet import cli
from digitnet.commands import train as train_cmd


def test_help_and_version_are_light():
    code = (
        "import sys, digitnet.cli as c; p = c.build_parser(); p.format_help(); "
        "import digitnet.train.config, digitnet.presets; "  # the presets' values, for --help
        "print(sorted(m for m in ('numpy', 'matplotlib', 'torch', 'starlette', 'uvicorn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    r = run_cli("--version", fresh=True)
    assert r.returncode == 0 and r.stdout.startswith("digitnet ")
    r = run_cli("train", "--help", fresh=True)
    assert r.returncode == 0 and "examples:" in r.stdout and "--batch-size" in r.stdout


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "train" in capsys.readouterr().out


def test_names_in_step_with_registries():
    """The light name lists of --help are the registries' names, and they are the CLI's choices."""
    from digitnet import presets_names as names
    from digitnet.activations import ACTIVATIONS
    from digitnet.costs import COSTS
    from digitnet.data.augment import KINDS
    from digitnet.init import INITIALISERS
    from digitnet.network import DTYPES
    from digitnet.optim import OPTIMIZERS, Schedule
    from digitnet.presets import PRESETS

    assert set(names.ACTIVATION_NAMES) == set(ACTIVATIONS) - {"softmax"}
    assert set(names.OPTIMIZER_NAMES) == set(OPTIMIZERS)
    assert set(names.PRESET_NAMES) == set(PRESETS)
    # the short names of the costs, one per cost
    assert set(names.LOSS_NAMES) <= set(COSTS)
    assert {COSTS[n] for n in names.LOSS_NAMES} == set(COSTS.values())
    assert tuple(names.AUGMENT_NAMES) == KINDS
    assert tuple(names.SCHEDULE_NAMES) == Schedule.KINDS
    assert set(names.INIT_NAMES) == set(INITIALISERS)
    assert tuple(names.DTYPE_NAMES) == DTYPES

    def choices(command):
        sub = next(a for a in cli.build_parser()._actions if a.choices and command in a.choices)
        return {a.dest: a.choices for a in sub.choices[command]._actions if a.choices}

    train, grad = choices("train"), choices("gradcheck")
    assert train["preset"] == names.PRESET_NAMES and train["activation"] == names.ACTIVATION_NAMES
    assert train["loss"] == grad["loss"] == names.LOSS_NAMES
    assert train["optimizer"] == names.OPTIMIZER_NAMES
    assert train["augment"] == names.AUGMENT_NAMES
    assert train["schedule"] == names.SCHEDULE_NAMES
    assert train["init"] == names.INIT_NAMES
    assert train["dtype"] == names.DTYPE_NAMES


def test_train_writes_metrics_contract(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--layers", "784-32-10", "--epochs", "3", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "epoch 3/3" in r.stdout and "test accuracy" in r.stdout
    m = json.loads((out / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "train_accuracy",
        "dataset",
        "n_train",
        "config",
        "seconds",
        "history",
    ):
        assert key in m
    assert m["dataset"] == "embedded" and m["n_train"] == 9500
    assert m["config"]["layers"] == "784-32-10" and m["config"]["seed"] == 1
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3]
    for h in m["history"]:
        assert set(h) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    # three epochs of a small network on real digits (85 % alone; 82 % when, as the default
    # preset does, a third of each batch is generated non-digits)
    assert m["test_accuracy"] > 0.80
    from digitnet.modelfile import load_model

    net, doc = load_model(out / "model.safetensors")
    assert doc["metrics"]["test_accuracy"] == m["test_accuracy"] and doc["seed"] == 1
    assert [layer["kind"] for layer in doc["architecture"]] == [
        "dense",
        "relu",
        "dropout",
        "dense",
        "softmax",
    ]
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    assert net.evaluate(data.X_test, data.y_test)[1] == m["test_accuracy"]
    assert r.stderr == ""  # no warnings


def test_train_from_data_dir(mnist10k_dir, tmp_path):
    r = run_cli(
        "train",
        "--data-dir",
        str(mnist10k_dir),
        "--layers",
        "784-16-10",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["dataset"] == str(mnist10k_dir)


def test_gd_means_full_batch(capsys):
    args = cli.build_parser().parse_args(["train", "--optimizer", "gd"])
    assert train_cmd._config_from_args(args).batch_size is None
    args = cli.build_parser().parse_args(["train", "--optimizer", "gd", "--batch-size", "64"])
    assert train_cmd._config_from_args(args).batch_size == 64
    args = cli.build_parser().parse_args(["train", "--batch-size", "full"])
    assert train_cmd._config_from_args(args).batch_size is None


def test_loss_switch_picks_matching_output():
    args = cli.build_parser().parse_args(["train", "--preset", "sigmoid-mse", "--loss", "ce"])
    config = train_cmd._config_from_args(args)
    assert config.loss == "ce" and config.output is None


def test_divergence_is_one_clear_message(tmp_path):
    r = run_cli(
        "train",
        "--layers",
        "784-64-10",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--epochs",
        "2",
        "--activation",
        "identity",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: The cost became") and "diverged" in lines[0]
    assert lines[1].startswith("hint: try a smaller learning rate")
    assert len(lines) == 2 and "Traceback" not in r.stderr and "Warning" not in r.stderr


@pytest.mark.parametrize(
    "args, status, text",
    [
        (["train", "--batch-size", "0"], 2, "positive integer or 'full'"),
        (["train", "--lr", "-1"], 2, "must be a positive number"),
        (["train", "--layers", "784-abc-10"], 2, "layer spec must be sizes"),
        (["train", "--layers", "700-10"], 2, "take 700 inputs to 10 outputs, but the data"),
        (["train", "--layers", "784-5"], 2, "start the spec with 784 and end it with 10"),
        (["train", "--data-dir", "/nonexistent/mnist"], 1, "no such folder"),
        (["train", "--preset", "nope"], 2, "invalid choice"),
    ],
)
def test_bad_input_gets_one_line(args, status, text, tmp_path):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == status
    assert text in r.stderr
    assert "Traceback" not in r.stderr


def test_gradcheck_command():
    r = run_cli("gradcheck", "--layers", "784-8-10", "--activation", "arctan", "--loss", "mse")
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.strip().split()[-1:] == ["ok"]]
    assert len(rows) == 4  # W1, b1, W2, b2
    for row in rows:
        assert float(row.split()[-2]) < 1e-6


def test_train_with_augmentation_and_input_dropout(tmp_path):
    r = run_cli(
        "train",
        "--layers",
        "784-32-10",
        "--epochs",
        "2",
        "--augment",
        "both",
        "--input-dropout",
        "0.1",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"]["augment"] == "both" and m["config"]["input_dropout"] == 0.1
    assert m["test_accuracy"] > 0.6  # two epochs on distorted digits: it learns
