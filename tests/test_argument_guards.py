"""Arguments that cannot work get one line before anything is allocated; text from a model file
is printed with its control characters escaped (issue 13)."""

from __future__ import annotations

import ast
import io

import numpy as np
import pytest
from memutil import peak_mb
from PIL import Image

from digitnet import cli, memory
from digitnet.modelfile import save_model
from digitnet.network import Network

FREE = 8 * 10**9  # the memory the tests say is available: the same answer on every machine


@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_a_negative_seed_gets_one_line(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--seed", "-1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # error: ..., hint: ...
    assert lines[0].startswith("error: ")
    assert lines[0].endswith("--seed: a seed is a non-negative integer; got '-1'")
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, estimate",
    [
        (["train", "--layers", "784-100000000-10"], "needs about 2.4 TB of memory"),
        (["train", "--layers", "784-30000-30000-10"], "needs about 26 GB of memory"),
        (["gradcheck", "--batch", "100000000"], "needs about 2.6 TB of memory"),
    ],
    ids=["784-100000000-10", "784-30000-30000-10", "gradcheck-batch-1e8"],
)
def test_what_cannot_fit_is_refused_before_it_is_allocated(args, estimate, tmp_path):
    """Once: allocated until the machine ran out. Now: the estimate, in one line, at once."""
    if args[0] == "train":
        args = [*args, "--epochs", "1", "--out", str(tmp_path / "run")]
    grown, out = peak_mb(
        f"import digitnet.memory\ndigitnet.memory.available_bytes = lambda: {FREE}\n"
        "from digitnet import cli",
        f"_out = cli.main({args!r})",
        limit_mb=1500,
    )
    assert out == "2" and grown < 200, (out, grown)
    assert not (tmp_path / "run").exists()


def test_the_refusal_says_the_estimate_and_what_is_available(tmp_path):
    # (In a subprocess with its memory capped, like the test above: a regression must not be
    # allowed to train this network on a shared machine.)
    _, out = peak_mb(
        f"import contextlib, io\nimport digitnet.memory\n"
        f"digitnet.memory.available_bytes = lambda: {FREE}\nfrom digitnet import cli",
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    status = cli.main(['train', '--layers', '784-30000-30000-10', '--out', "
        f"{str(tmp_path / 'r')!r}])\n"
        "_out = repr((status, err.getvalue()))",
        limit_mb=1500,
    )
    status, text = ast.literal_eval(out)
    err = text.splitlines()
    assert status == 2 and len(err) == 2, out
    assert err[0].startswith("error: training 784-30000-30000-10 (float32, adam) needs about 26 GB")
    assert "the optimiser: 7.4 GB" in err[0] and err[0].endswith("more than the 8.0 GB available.")
    assert err[1] == "hint: use smaller layers (--layers) or a smaller --batch-size"


def test_what_fits_is_not_refused(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: FREE)
    parts = memory.training_parts([784, 512, 256, 10], 128)
    assert sum(n for _, n in parts) < 50e6
    memory.check_fits("training", parts, "")


# -- text from a model file --------------------------------------------------------------------
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"


@pytest.fixture
def evil_model(tmp_path):
    net = Network.from_spec("784-8-10", seed=0)
    classes = [f"{d}{EVIL}" for d in range(10)]
    metadata = {"dataset": {"name": f"digits{EVIL}", "classes": classes, "n_train": 1}}
    path = tmp_path / "model.safetensors"
    save_model(path, net, metadata=metadata)
    return path


def _assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in text


def test_inspect_prints_control_characters_escaped(evil_model, tmp_path, capsys):
    assert cli.main(["inspect", str(evil_model), "--out", str(tmp_path / "pics")]) == 0
    _assert_escaped(capsys.readouterr().out)


def test_evaluate_prints_control_characters_escaped(evil_model, tmp_path, capsys):
    assert cli.main(["evaluate", str(evil_model), "--out", str(tmp_path / "pics")]) == 0
    captured = capsys.readouterr()
    _assert_escaped(captured.out + captured.err)


def test_predict_prints_control_characters_escaped(evil_model, tmp_path, capsys):
    from digitnet.data.datasets import load_embedded

    digit = load_embedded().X_test[:, 0].reshape(28, 28)
    buf = io.BytesIO()
    Image.fromarray(np.uint8(digit * 255)).save(buf, "PNG")
    (tmp_path / "digit.png").write_bytes(buf.getvalue())
    assert cli.main(["predict", str(evil_model), str(tmp_path / "digit.png")]) == 0
    _assert_escaped(capsys.readouterr().out)
