"""``digitnet train`` end to end, as a user drives it: run folders, Ctrl-C, --resume, progress.

Runs that are interrupted (SIGINT), and those compared bit for bit with them, are processes of
their own (``python -m digitnet``); the other commands run in-process (``run_cli``, through
``cli.main``), and a Ctrl-C delivered exactly while the checkpoint is written reaches inside.
The central check: a run interrupted by SIGINT, then resumed with the command it printed, ends
with the same weights, bit for bit, as the same command never interrupted."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from digitnet import cli
from digitnet.commands import train as train_cmd
from digitnet.data.datasets import load_embedded
from digitnet.modelfile import load_model
from digitnet.train import rundir
from digitnet.train.checkpoint import load_checkpoint
from digitnet.train.run import prepare

#: an epoch of 594 mini-batches of 16 distorted digits takes a noticeable time (~0.3-1 s)
ARGS = [
    *["train", "--layers", "784-64-10", "--epochs", "6", "--batch-size", "16"],
    *["--augment", "affine", "--dropout", "0.2", "--seed", "3"],
    *["--schedule", "cosine", "--warmup", "0.5", "--early-stopping", "10"],
]
N_BATCHES = 594  # ceil(9500 / 16)
HEADER = "epoch,loss,accuracy,val_loss,val_accuracy,seconds,lr"
PICTURES = ("learning_curves.png", "confusion_matrix.png", "weights.png", "mistakes.png")
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def digitnet(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digitnet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=ENV,
        **kwargs,
    )


def history_rows(folder: Path) -> list[str]:
    return (folder / "history.csv").read_text().splitlines()


def interrupted(out: Path, signals: int) -> subprocess.CompletedProcess:
    """Start ARGS into ``out``; once history.csv has a row, send SIGINT ``signals`` times."""
    p = digitnet(*ARGS, "--out", str(out))
    deadline = time.monotonic() + 240
    while p.poll() is None and time.monotonic() < deadline:
        if (out / "history.csv").exists() and len(history_rows(out)) >= 2:
            break
        time.sleep(0.01)  # polling the file: the condition is the row, not the time
    assert p.poll() is None, "the run ended before it could be interrupted"
    for _ in range(signals):
        p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=240)
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def same_weights(a: Path, b: Path) -> bool:
    net_a, _ = load_model(a / "model.safetensors")
    net_b, _ = load_model(b / "model.safetensors")
    return all(
        np.array_equal(p, q)
        for (_, p, _), (_, q, _) in zip(net_a.parameters(), net_b.parameters(), strict=True)
    )


def without_seconds(rows: list[str]) -> list[str]:
    return [",".join(c for i, c in enumerate(row.split(",")) if i != 5) for row in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted reference run, and two interrupted runs (one and two SIGINTs)."""
    base = tmp_path_factory.mktemp("train-cli")
    ref = digitnet(*ARGS, "--out", str(base / "ref"))  # runs alongside the interrupted ones
    once = interrupted(base / "once", signals=1)
    twice = interrupted(base / "twice", signals=2)
    out, err = ref.communicate(timeout=300)
    ref_result = subprocess.CompletedProcess(ref.args, ref.returncode, out, err)
    assert ref_result.returncode == 0, err
    return {"base": base, "ref": ref_result, "once": once, "twice": twice}


def parse_interruption(r: subprocess.CompletedProcess, folder: Path) -> tuple[int, int]:
    """Check the two lines an interruption prints; return its (epoch, batch)."""
    assert r.returncode == 130, r.stdout + r.stderr
    assert r.stderr == ""
    *_, notice, resume = r.stdout.strip().splitlines()
    m = re.fullmatch(
        r"interrupted at epoch (\d+), batch (\d+)/(\d+): checkpoint saved to (.+)", notice
    )
    assert m, notice
    assert int(m[3]) == N_BATCHES and m[4] == str(folder / "checkpoint.safetensors")
    assert resume == f"resume with: digitnet train --resume {shlex.quote(str(folder))}"
    return int(m[1]), int(m[2])


def check_checkpoint(folder: Path, epoch: int, batch: int):
    ckpt = load_checkpoint(folder / "checkpoint.safetensors")
    if batch == N_BATCHES:  # stopped at the end of an epoch
        assert (ckpt.epochs_done, ckpt.k) == (epoch, 0)
    else:
        assert (ckpt.epochs_done, ckpt.k) == (epoch - 1, batch)
    # it restores into the run it came from
    training = prepare(ckpt.config, load_embedded())
    training.trainer.restore(ckpt.state)
    assert training.trainer.epochs_done == ckpt.epochs_done
    return ckpt


# -- Ctrl-C and --resume ----------------------------------------------------------------------
def test_sigint_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(runs):
    folder = runs["base"] / "once"
    epoch, batch = parse_interruption(runs["once"], folder)
    ckpt = check_checkpoint(folder, epoch, batch)
    assert 1 <= ckpt.epochs_done < 6
    assert not (folder / "model.safetensors").exists()
    assert not (folder / "metrics.json").exists()
    assert history_rows(folder)[0] == HEADER
    assert len(history_rows(folder)) == 1 + ckpt.epochs_done  # one row per epoch, as it went

    # the printed command, exactly as printed
    command = shlex.split(runs["once"].stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert command[:2] == ["digitnet", "train"]
    r = run_cli(*command[1:], fresh=True)  # as the reference run: a process of its own
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert f"run folder: {folder}" in r.stdout.splitlines()[2]
    assert r.stdout.strip().splitlines()[-1] == f"run folder: {folder}"

    ref = runs["base"] / "ref"
    assert same_weights(folder, ref)
    assert without_seconds(history_rows(folder)) == without_seconds(history_rows(ref))
    m, m_ref = (json.loads((f / "metrics.json").read_text()) for f in (folder, ref))
    for key in ("test_accuracy", "train_accuracy", "val_accuracy", "best_epoch", "n_train"):
        assert m[key] == m_ref[key], key
    assert m["config"] == m_ref["config"]
    for name in ("config.json", "checkpoint.safetensors", *PICTURES):
        assert (folder / name).is_file()


def test_a_second_sigint_does_not_spoil_the_checkpoint(runs):
    folder = runs["base"] / "twice"
    epoch, batch = parse_interruption(runs["twice"], folder)
    check_checkpoint(folder, epoch, batch)
    assert not (folder / "model.safetensors").exists()
    assert [p.name for p in folder.iterdir() if p.name.endswith(".part")] == []


def test_sigint_while_the_checkpoint_is_written_is_deferred(tmp_path, monkeypatch, capsys):
    """In-process, so that Ctrl-C arrives exactly during the write: first mid-epoch (the
    interruption's own save), then the per-epoch save of a second run."""
    import digitnet.train.checkpoint as checkpoint
    import digitnet.train.run as run_mod

    real_write, real_prepare = checkpoint.write_atomic, run_mod.prepare
    writes: list[int] = []

    def write_with_ctrl_c(path, data):
        writes.append(len(data))
        os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while the checkpoint is being written
        time.sleep(0)  # let the handler run here, mid-save
        real_write(path, data)

    def prepare_with_ctrl_c_at_batch_5(*args, **kwargs):
        training = real_prepare(*args, **kwargs)
        t = training.trainer

        def ctrl_c(k, n, loss):
            if t.epochs_done == 0 and k == 5:
                os.kill(os.getpid(), signal.SIGINT)

        t.on_batch.append(ctrl_c)
        return training

    monkeypatch.setattr(checkpoint, "write_atomic", write_with_ctrl_c)
    monkeypatch.setattr(run_mod, "prepare", prepare_with_ctrl_c_at_batch_5)
    small = ["train", "--layers", "784-16-10", "--epochs", "2", "--batch-size", "64", "--seed", "2"]
    a = tmp_path / "a"
    assert cli.main([*small, "--out", str(a)]) == 130
    out = capsys.readouterr().out
    assert f"interrupted at epoch 1, batch 5/149: checkpoint saved to {a}" in out
    assert len(writes) == 1
    assert load_checkpoint(a / "checkpoint.safetensors").k == 5

    # a Ctrl-C during the end-of-epoch save: the save completes, then training stops
    monkeypatch.setattr(run_mod, "prepare", real_prepare)
    b = tmp_path / "b"
    assert cli.main([*small, "--out", str(b)]) == 130
    out = capsys.readouterr().out
    assert f"interrupted at epoch 1, batch 149/149: checkpoint saved to {b}" in out
    assert len(writes) == 2  # the checkpoint of epoch 1 was not written twice
    assert load_checkpoint(b / "checkpoint.safetensors").epochs_done == 1

    # both resume (no more Ctrl-C) to the same weights as a run never interrupted
    monkeypatch.setattr(checkpoint, "write_atomic", real_write)
    c = tmp_path / "c"
    assert cli.main([*small, "--out", str(c)]) == 0
    for folder in (a, b):
        assert cli.main(["train", "--resume", str(folder)]) == 0
        assert same_weights(folder, c)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_refusals(runs, mnist10k_dir):
    ref = runs["base"] / "ref"
    before = (ref / "metrics.json").read_bytes()
    r = run_cli("train", "--resume", str(ref), "--lr", "0.1", "--layers", "784-8-10")
    assert r.returncode == 2
    assert "error: --resume continues a run as it was set up; it cannot be given" in r.stderr
    assert "--layers" in r.stderr and "--lr" in r.stderr and "hint: give only --epochs" in r.stderr
    r = run_cli("train", "--resume", str(ref))
    assert r.returncode == 2 and "has finished its 6 epochs" in r.stderr
    assert "hint: to train it further, give a larger total: --epochs 16" in r.stderr
    r = run_cli("train", "--resume", str(ref), "--out", str(ref / "x"))
    assert r.returncode == 2 and "--out" in r.stderr
    r = run_cli("train", "--resume", str(runs["base"] / "nowhere"))
    assert r.returncode == 2 and "no such folder" in r.stderr
    r = run_cli("train", "--resume", str(ref), "--data-dir", str(mnist10k_dir))
    assert r.returncode == 1
    assert f"the dataset is '{mnist10k_dir}' but the run recorded 'embedded'" in r.stderr
    r = run_cli("train", "--resume", str(ref), "--epochs", "3")
    assert r.returncode == 2 and "beyond the 3 epochs asked" in r.stderr
    assert (ref / "metrics.json").read_bytes() == before


def test_resume_a_finished_run_with_a_larger_total(runs):
    folder = runs["base"] / "longer"
    shutil.copytree(runs["base"] / "ref", folder)
    r = run_cli("train", "--resume", str(folder), "--epochs", "7")
    assert r.returncode == 0, r.stderr
    assert "resuming 784-64-10 at the end of epoch 6, to 7 epochs" in r.stdout
    rows = history_rows(folder)
    assert len(rows) == 8 and rows[0] == HEADER
    assert without_seconds(rows[:7]) == without_seconds(history_rows(runs["base"] / "ref"))
    m = json.loads((folder / "metrics.json").read_text())
    assert m["config"]["epochs"] == 7 and len(m["history"]) == 7
    assert json.loads((folder / "config.json").read_text())["config"]["epochs"] == 7


# -- the run folder ---------------------------------------------------------------------------
def test_the_run_folder_holds_every_output(runs):
    ref = runs["base"] / "ref"
    names = {p.name for p in ref.iterdir()}
    assert names == {
        "config.json",
        "history.csv",
        "checkpoint.safetensors",
        "model.safetensors",
        "metrics.json",
        *PICTURES,
    }
    rows = history_rows(ref)
    assert rows[0] == HEADER and [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    m = json.loads((ref / "metrics.json").read_text())
    for row, h in zip(rows[1:], m["history"], strict=True):
        cells = row.split(",")
        assert float(cells[1]) == h["loss"] and float(cells[4]) == h["val_accuracy"]
    for key in ("test_accuracy", "train_accuracy", "dataset", "n_train", "config", "seconds"):
        assert key in m
    assert m["early_stopping"] == 10 and m["stopped_early"] is False
    assert 1 <= m["best_epoch"] <= 6
    config = json.loads((ref / "config.json").read_text())
    assert config["config"] == m["config"] and config["dataset"]["name"] == "embedded"
    ckpt = load_checkpoint(ref / "checkpoint.safetensors")
    assert (ckpt.epochs_done, ckpt.k) == (6, 0)
    for name in PICTURES:
        assert (ref / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plain_epoch_lines_when_not_a_terminal(runs):
    out = runs["ref"].stdout
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[2] == f"run folder: {runs['base'] / 'ref'}"
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == [
        f"{e}/6" for e in range(1, 7)
    ]


def test_an_existing_run_folder_is_never_overwritten(runs, tmp_path):
    ref = runs["base"] / "ref"
    before = {p.name: p.read_bytes() for p in ref.iterdir()}
    r = run_cli("train", "--layers", "784-8-10", "--epochs", "1", "--out", str(ref))
    assert r.returncode == 2
    err = r.stderr.splitlines()
    assert err[0].startswith(f"error: --out {ref}: is already a run folder (it has config.json")
    assert err[1].startswith("hint: --resume it") and err[1].endswith("or choose another --out")
    assert {p.name: p.read_bytes() for p in ref.iterdir()} == before
    # a half-made run folder (only a checkpoint) is a run folder too
    half = tmp_path / "half"
    half.mkdir()
    (half / "checkpoint.safetensors").write_bytes(b"x")
    r = run_cli("train", "--epochs", "1", "--out", str(half))
    assert r.returncode == 2 and "already a run folder (it has checkpoint.safetensors)" in r.stderr
    # other folders: only new or empty ones
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    r = run_cli("train", "--epochs", "1", "--out", str(full))
    assert r.returncode == 2 and "the folder is not empty" in r.stderr
    assert (full / "notes.txt").read_text() == "mine" and len(list(full.iterdir())) == 1
    r = run_cli("train", "--epochs", "1", "--out", str(full / "notes.txt"))
    assert r.returncode == 2 and "exists and is not a folder" in r.stderr


def test_default_run_folder_under_runs(tmp_path):
    r = run_cli(
        "train", "--layers", "784-16-10", "--epochs", "1", "--batch-size", "256", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert re.fullmatch(r"\d{8}-\d{6}", folder.name)
    # runs/latest names the newest run (a relative symlink: the folder can be moved)
    latest = tmp_path / "runs" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == folder.name
    lines = r.stdout.strip().splitlines()
    assert lines[2] == f"run folder: runs/{folder.name}" == lines[-2]
    run = f"runs/{folder.name}"
    assert lines[-1] == (
        f"next: digitnet evaluate {run}  |  digitnet serve {run}  |  digitnet predict {run} IMAGE"
    )
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "history.csv", "model.safetensors", "metrics.json"} <= names
    assert set(PICTURES) <= names and len(history_rows(folder)) == 2


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path):
    args = ["--layers", "784-64-10", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2"]
    r = run_cli("train", *args, "--activation", "identity", cwd=tmp_path)
    assert r.returncode == 1 and "diverged" in r.stderr
    assert list(tmp_path.iterdir()) == []  # neither runs/DATE-TIME nor runs/


def test_run_folder_names_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20261123-174501")
    names = [rundir.make_run_dir(None).as_posix() for _ in range(3)]
    assert names == ["runs/20261123-174501", "runs/20261123-174501-2", "runs/20261123-174501-3"]


def test_progress_bar_on_a_terminal(tmp_path):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    args = ["train", "--layers", "784-16-10", "--epochs", "2", "--batch-size", "32"]
    p = subprocess.Popen(
        [sys.executable, "-m", "digitnet", *args, "--out", str(tmp_path / "run")],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    p.stderr.close()
    out = b"".join(chunks).decode()
    assert "\repoch 1/2:" in out and "batch/s" in out and "/297" in out and "loss " in out
    assert "epoch 2/2  loss" in out  # and the plain line once the bar is done


# -- options ----------------------------------------------------------------------------------
def test_schedule_and_early_stopping_options():
    args = cli.build_parser().parse_args(
        [
            *["train", "--schedule", "step", "--warmup", "2", "--step-epochs", "3"],
            *["--gamma", "0.5", "--min-lr-factor", "0.1", "--early-stopping", "4"],
        ]
    )
    c = train_cmd._config_from_args(args)
    assert (c.schedule, c.warmup_epochs, c.step_epochs, c.gamma, c.min_factor) == (
        "step",
        2.0,
        3.0,
        0.5,
        0.1,
    )
    assert c.early_stopping == 4
    default = train_cmd._config_from_args(cli.build_parser().parse_args(["train"]))
    assert default.early_stopping is None and default.warmup_epochs == 1.0  # the preset's


def test_early_stopping_needs_a_validation_set(tmp_path):
    r = run_cli("train", "--early-stopping", "3", "--validation", "0", "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "validation set is empty" in r.stderr and "--validation 0.05" in r.stderr
    assert not (tmp_path / "r").exists()  # nothing made for a run that cannot start
