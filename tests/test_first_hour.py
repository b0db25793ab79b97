"""A newcomer's first hour: the README's commands, help that tells the truth, errors that help."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## On a fresh machine") : text.index("## The command line")]
    return re.findall(r"```\n(.*?)\n```", section, flags=re.S)


def test_ci_runs_the_readme_test_command_word_for_word():
    install_and_train, install_and_test = _readme_commands()
    assert install_and_train.startswith("python3 -m venv .venv && ")  # PEP 668: never bare pip
    assert install_and_test.startswith("python3 -m venv .venv && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line and not line.startswith(("#", " "))]
    assert commands[-1] == install_and_test


# -- help that tells the truth ---------------------------------------------------------------
def _every_parser(parser, path=()):
    """(words, parser) for the top-level command and every command and sub-command under it."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _every_parser(sub, (*path, name))


def test_every_help_shows_real_defaults_wrapped_to_the_terminal(monkeypatch):
    from digitnet import cli
    from digitnet.commands.train import OPTION_FIELDS, PRESET_LINES, _shown
    from digitnet.presets import PRESETS

    monkeypatch.setenv("COLUMNS", "80")
    helps = {" ".join(words): p.format_help() for words, p in _every_parser(cli.build_parser())}
    assert {"", "train", "predict", "evaluate", "inspect", "serve", "data", "data fetch"} <= set(
        helps
    )
    for words, text in helps.items():
        flat = " ".join(text.split())
        assert "default: None" not in flat and "default: False" not in flat, words
        assert "%%" not in text, words
        assert not re.search(r"\(default[^)]*\)\s*\(default", flat), f"doubled default: {words}"
        assert text.splitlines()[0].startswith("usage: digitnet") and "usage:" not in text[7:]
        too_wide = [line for line in text.splitlines() if len(line) > 78]
        assert too_wide == [], words
    train_parser = dict(_every_parser(cli.build_parser()))[("train",)]
    helps_of = {a.dest: a.help for a in train_parser._actions}
    for option, field in OPTION_FIELDS.items():
        value = _shown(field, getattr(PRESETS["default"], field))
        assert f"(default: {value}" in helps_of[option], option
    train = " ".join(helps["train"].split())
    assert "(default: 0.2; tutorial, seed-16-16, sigmoid-mse: 0; best: 0.3)" in train  # dropout
    assert set(PRESET_LINES) == set(PRESETS)
    presets = helps["train"][helps["train"].index("presets (") :]
    for name in PRESETS:
        assert re.search(rf"^  {re.escape(name)} +\S", presets, flags=re.M), name


# -- errors in two lines, with the way out ---------------------------------------------------
def _error(capsys, *argv: str) -> tuple[str, str]:
    """The two lines a command-line mistake prints: ``error: ...`` and ``hint: ...``."""
    import pytest

    from digitnet import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    return lines[0], lines[1]


def test_argparse_errors_are_two_lines_with_a_hint(capsys):
    error, hint = _error(capsys, "train", "--batch-size", "big")
    assert "--batch-size" in error and "positive integer or 'full'" in error
    assert hint.startswith("hint: --batch-size N|full: examples per step")
    error, hint = _error(capsys, "train", "--lr")
    assert "--lr: expected one argument" in error and "learning rate" in hint
    error, hint = _error(capsys, "predict", "model.safetensors")
    assert "required: IMAGE" in error
    assert "'digitnet predict [OPTIONS] MODEL IMAGE [IMAGE ...]'" in hint
    error, hint = _error(capsys, "evaluate", "runs/a", "--dataset", "mnist", "--data-dir", "d")
    assert "not allowed" in error and hint == "hint: give --data-dir or --dataset, not both"
    error, hint = _error(capsys, "data")
    assert "list, fetch" in hint
    _error(capsys, "serve", "--port", "70000")
    _error(capsys, "gradcheck", "--batch", "0")


def test_misspelled_commands_options_and_choices_get_a_suggestion(capsys):
    error, hint = _error(capsys, "trian")
    assert error == "error: digitnet: 'trian' is not a command"
    assert hint == "hint: did you mean 'digitnet train'?"
    error, hint = _error(capsys, "train", "--learning-rate", "0.1")
    assert error == "error: digitnet train: unrecognized arguments: --learning-rate 0.1"
    assert hint.startswith("hint: did you mean --lr?")
    assert _error(capsys, "train", "--epohcs", "3")[1].startswith("hint: did you mean --epochs?")
    assert _error(capsys, "predict", "m", "i.png", "--jsn")[1].startswith(
        "hint: did you mean --json?"
    )
    assert _error(capsys, "train", "--preset", "bset")[1] == "hint: did you mean --preset best?"
    hint = _error(capsys, "data", "fetch", "mnsit")[1]
    assert hint == "hint: did you mean 'digitnet data fetch mnist'?"
    assert _error(capsys, "data", "lst")[1] == "hint: did you mean 'digitnet data list'?"
    hint = _error(capsys, "xyzzy")[1]
    assert hint.startswith("hint: the commands are train, predict, evaluate")


# -- the banner and the learning curves say what shapes the result ---------------------------
def test_banner_shows_every_setting_that_shapes_the_result():
    from digitnet import cli
    from digitnet.commands.train import _config_from_args, _settings

    args = cli.build_parser().parse_args(
        ["train", "--layers", "784-128-10", "--optimizer", "momentum", "--lr", "0.05"]
    )
    text = "\n".join(_settings(_config_from_args(args), args))
    for setting in (
        "given: --layers --optimizer --lr",
        "784-128-10: relu hidden layers, softmax output, he init, float32",
        "label smoothing 0.1",
        "weight decay 0",
        "SGD with momentum 0.9, α = 0.05, batch 128, 100 epochs",
        "warm-up 1 epoch, then cosine decay to 0",
        "affine augmentation, dropout 0.2",
        "training accuracy is measured on these",
        "5 % of the training images for validation; seed 0",
    ):
        assert setting in text, setting
    args = cli.build_parser().parse_args(["train", "--preset", "tutorial"])
    text = "\n".join(_settings(_config_from_args(args), args))
    assert "gradient descent, α = 0.1, full batch, 500 epochs; constant α" in text
    assert "no augmentation, no dropout" in text and "uniform init" in text


def test_learning_curves_say_what_training_accuracy_measures(tmp_path):
    from PIL import Image

    from digitnet import reports
    from digitnet.presets import PRESETS

    assert reports.training_note(PRESETS["tutorial"]) is None
    note = reports.training_note(PRESETS["default"].to_dict())
    assert "distorted (affine augmentation), with dropout 0.2" in note
    assert "label smoothing 0.1" in note
    history = [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.9, "val_loss": 1 / e, "val_accuracy": 0.95}
        for e in (1, 2)
    ]
    plain, noted = tmp_path / "plain.png", tmp_path / "noted.png"
    reports.plot_learning_curves(history, plain)
    reports.plot_learning_curves(history, noted, note=note)
    import numpy as np

    a, b = (np.asarray(Image.open(p).convert("L")) for p in (plain, noted))
    assert a.shape == b.shape
    # the note is written under the plots: far more ink in the bottom strip than the axis labels
    ink = [int((x[-a.shape[0] // 8 :] < 128).sum()) for x in (a, b)]
    assert ink[1] > 2 * ink[0], ink


# -- an explicit choice wins over a preset default that no longer applies --------------------
def test_loss_mse_on_the_default_preset_trains_without_label_smoothing(tmp_path):
    import json

    out = tmp_path / "mse"
    r = run_cli(
        "train", "--loss", "mse", "--layers", "784-16-10", "--epochs", "1", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stdout.splitlines() if line.startswith("note: ")]
    assert notes[0] == (
        "note: --loss mse: no label smoothing (the default preset's 0.1 applies to "
        "cross-entropy only)"
    )
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["loss"], config["label_smoothing"], config["warmup_epochs"]) == ("mse", 0.0, 0.0)


def test_contradicting_options_get_a_hint_in_the_command_lines_words(capsys):
    from digitnet import cli

    status = cli.main(["train", "--loss", "mse", "--label-smoothing", "0.1", "--epochs", "1"])
    assert status == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: --label-smoothing applies to cross-entropy (--loss ce), not to --loss mse.",
        "hint: drop --label-smoothing, or give --label-smoothing 0",
    ]
    args = cli.build_parser().parse_args(["train", "--loss", "mse", "--label-smoothing", "0"])
    from digitnet.commands.train import _config_from_args

    assert _config_from_args(args).label_smoothing == 0.0


# -- errors in one format everywhere ---------------------------------------------------------
def test_predict_errors_are_error_then_hint(tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    from digitnet import cli
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.safetensors", Network.from_spec("784-8-10", seed=0))
    digits = tmp_path / "digits"
    digits.mkdir()
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255
    Image.fromarray(pixels).save(digits / "one.png")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["predict", "run", "digits"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: digits: is a folder, not an image file.",
        "hint: give the images inside it, such as digits/*.png",
    ]
    assert cli.main(["predict", "run", "missing.png", "digits/one.png"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("digits/one.png: ")
    assert err.splitlines() == ["error: missing.png: no such file.", "hint: check the path"]
    # --show says where it wrote (on stderr with --json: stdout is the JSON alone)
    assert cli.main(["predict", "run", "digits/one.png", "--show", "seen"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        "--show: wrote what the network read for 1 image into seen/ (such as "
        "seen/one.28x28.x8.png, 8 times larger, beside the 28x28 original), and each image "
        "with the boxes of the digits found (NAME.boxes.png)"
    )
    assert (tmp_path / "seen" / "one.boxes.png").is_file()
    assert (tmp_path / "seen" / "one.28x28.x8.png").is_file()
    assert cli.main(["predict", "run", "digits/one.png", "--show", "seen", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("[") and err.startswith("--show: wrote")
    # swapped: the image first, then the model (a run folder, or the model file itself)
    for model in ("run", "run/model.safetensors"):
        assert cli.main(["predict", "digits/one.png", model]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: digits/one.png: the model comes first, then the images ({model} is the "
            "model).",
            f"hint: digitnet predict {model} digits/one.png",
        ]


def test_train_says_at_once_that_it_tries_the_mirrors(tmp_path, capsys, monkeypatch):
    import dataclasses
    import socket

    from digitnet import cli
    from digitnet.data import sources

    with socket.socket() as s:  # a port where nothing listens: refused at once
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    mnist = dataclasses.replace(sources.DOWNLOADABLE["mnist"], mirrors=(dead,), system_dirs=())
    monkeypatch.setitem(sources.DOWNLOADABLE, "mnist", mnist)
    monkeypatch.setenv("DIGITNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIGITNET_DATA", raising=False)
    monkeypatch.delenv("DIGITNET_TIMEOUT", raising=False)
    argv = ["train", "--dataset", "mnist", "--layers", "784-8-10", "--epochs", "1"]
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        "data: mnist is not in the cache; trying its mirrors (waiting up to 10 s for an answer; "
        "--offline skips the network, training on embedded instead)"
    )
    assert err.startswith("warning: MNIST is not in the cache")
    from digitnet.commands.train import _say_if_downloading

    for quiet in (["--offline"], ["--data-dir", str(tmp_path)], ["--dataset", "embedded"]):
        _say_if_downloading(cli.build_parser().parse_args([*argv, *quiet]))
        assert capsys.readouterr().out == "", quiet  # no network: nothing to wait for


def test_serve_open_says_when_it_cannot_open_a_browser(monkeypatch):
    import sys
    import webbrowser

    from digitnet.commands.serve import _open_browser

    url = "http://127.0.0.1:8000/"
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda u: opened.append(u) or True)
    monkeypatch.setenv("DISPLAY", ":0")
    assert _open_browser(url) is None and opened == [url]
    monkeypatch.setattr(webbrowser, "open", lambda u: False)
    assert _open_browser(url) == "no browser found"
    if sys.platform.startswith("linux"):
        monkeypatch.delenv("DISPLAY")
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert _open_browser(url).startswith("no display")


# -- the Python API --------------------------------------------------------------------------
def test_every_exported_name_resolves():
    import subprocess
    import sys

    code = (
        "import types, digitnet\n"
        "for name in digitnet.__all__:\n"
        "    value = getattr(digitnet, name)\n"
        "    assert not isinstance(value, types.ModuleType), name\n"
        "assert sorted(digitnet.__all__) == dir(digitnet)\n"
        "from digitnet import *\n"
        "print(len(digitnet.__all__))\n"
    )
    # one fresh interpreter per order: a name may only resolve after another import
    for order in ("", "import digitnet.train.loop, digitnet.modelfile\n"):
        r = subprocess.run([sys.executable, "-c", order + code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    import digitnet

    assert {"load_model", "save_model", "load_dataset", "Network"} <= set(digitnet.__all__)
    assert "train" not in digitnet.__all__


def test_the_readme_api_example_makes_a_model_that_the_commands_take(tmp_path, monkeypatch, capsys):
    import numpy as np
    from PIL import Image

    from digitnet import cli
    from digitnet.predictor import Predictor

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- api-example\b.*?-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no python block marked api-example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(found.group(1), namespace)  # the README's lines, exactly as written there
    capsys.readouterr()
    assert namespace["history"][-1]["val_accuracy"] is not None
    assert namespace["accuracy"] > 0.9 and namespace["doc"]["dataset"]["name"] == "embedded"
    model = tmp_path / "model.safetensors"
    Predictor(model)  # what each of 'digitnet serve's readers loads
    data = namespace["data"]
    digit = (data.X_test[:, 0].reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(digit).save(tmp_path / "digit.png")
    assert cli.main(["predict", "model.safetensors", "digit.png"]) == 0
    assert capsys.readouterr().out.startswith(f"digit.png: {data.y_test[0]} (")
    assert cli.main(["evaluate", "model.safetensors", "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out


def test_architecture_md_says_where_every_module_lives():
    """docs/architecture.md promises a newcomer finds any module's job in a minute: every module
    of the package is named there (``layers.py``, ``train/fused.py``, ``commands/`` modules by
    their file names, ``web/`` modules likewise)."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "src" / "digitnet"
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if path.name in ("__init__.py", "__main__.py", "_version.py") or "embedded" in rel:
            continue
        if f"`{rel}`" not in doc and f"`{path.name}`" not in doc:
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name {missing}"
