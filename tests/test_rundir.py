"""The run folder (digitnet.train.rundir) as training processes use it: one process per folder,
SIGTERM and SIGHUP stop as Ctrl-C does, stale ``.part`` files go, ``runs/latest`` names the
newest run, and a run that stopped early keeps no checkpoint it cannot use. A training that holds
a folder or takes a signal is a real process, waited on with deadlines; the commands beside it
run in-process (``run_cli``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from digitnet.errors import ConfigError
from digitnet.train import rundir

#: a small network trained long enough to be caught mid-run (a fraction of a second per epoch)
LONG_RUN = ["--layers", "784-16-10", "--batch-size", "256", "--epochs", "400", "--seed", "1"]


def _env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digitnet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_env(),
    )


def _wait(condition, seconds: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.02)


def _rows(run: Path) -> int:
    try:
        return len((run / "history.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def _training(run: Path, proc: subprocess.Popen) -> None:
    """Wait until ``proc`` trains in ``run``: it holds the lock and an epoch is done."""
    _wait(lambda: _rows(run) >= 1, 120, "the first epoch", proc)


def test_two_trains_into_one_folder_the_second_is_refused_naming_the_first(tmp_path):
    run = tmp_path / "run"
    first = _start("train", *LONG_RUN, "--out", str(run))
    try:
        _training(run, first)
        assert (run / ".lock").read_text().strip() == str(first.pid)
        second = run_cli("train", *LONG_RUN, "--out", str(run))
        # ... or --resume of the folder the first is writing
        third = run_cli("train", "--resume", str(run), "--epochs", "500")
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    for r in (second, third):
        assert r.returncode == 2, (r.stdout, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 2, r.stderr
        assert lines[0] == (
            f"error: {run}: process {first.pid} is training in this run folder (it holds "
            f"{run / '.lock'})."
        )
        assert lines[1].startswith("hint: wait for it to finish")
    # The first was not disturbed: it stopped at SIGTERM as at Ctrl-C, with status 143.
    assert first.returncode == 143, (out, err)
    assert "Traceback" not in err
    assert f"resume with: digitnet train --resume {run}" in out
    assert not (run / ".lock").exists()


def test_two_trains_started_at_once_into_one_folder_one_is_refused(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--layers", "784-16-10", "--epochs", "2", "--out", str(run)]
    procs = [_start(*args), _start(*args)]
    results = [(p.pid, p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for _, code, _, _ in results)
    assert codes == [0, 2], results  # (today: both 0, and one model is silently gone)
    (winner,) = [r for r in results if r[1] == 0]
    (loser,) = [r for r in results if r[1] == 2]
    first = loser[3].splitlines()[0]
    assert first in (
        f"error: {run}: process {winner[0]} is training in this run folder (it holds "
        f"{run / '.lock'}).",
        f"error: --out {run}: is already a run folder (it has config.json, history.csv, "
        "checkpoint.safetensors, model.safetensors, metrics.json); a run folder is never "
        "overwritten.",
    ), loser
    assert "wrote model.safetensors" in winner[2] and "wrote" not in loser[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_training_as_ctrl_c_does(tmp_path, sig):
    from digitnet.train.checkpoint import load_checkpoint

    run = tmp_path / "run"
    proc = _start("train", *LONG_RUN, "--out", str(run))
    _training(run, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (out, err)  # 143 for SIGTERM, 129 for SIGHUP
    assert "Traceback" not in err, err
    name = signal.Signals(sig).name
    said = [line for line in out.splitlines() if line.startswith("interrupted")]
    assert said and said[0].startswith(f"interrupted ({name}) at epoch ")
    assert out.splitlines()[-1] == f"resume with: digitnet train --resume {run}"
    # The checkpoint holds the state at the signal: the epochs the history shows, and more.
    ckpt = load_checkpoint(run / "checkpoint.safetensors")
    assert ckpt.state["epochs_done"] >= _rows(run) >= 1
    # A stale .part file (of a write killed part-way) is removed when the run resumes, and the
    # run finishes.
    (run / ".model.safetensors.x1y2z3.part").write_bytes(b"half a model")
    done = ckpt.state["epochs_done"] + 1
    r = run_cli("train", "--resume", str(run), "--epochs", str(done))
    assert r.returncode == 0, r.stderr
    assert not list(run.glob(".*.part")) and (run / "model.safetensors").is_file()


def test_stale_part_files_do_not_stop_a_run_and_are_removed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".checkpoint.safetensors.abc123.part").write_bytes(b"killed while writing")
    r = run_cli("train", "--layers", "784-16-10", "--epochs", "1", "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert not list(run.glob(".*.part"))
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "checkpoint.safetensors"}


def test_a_run_that_stopped_early_keeps_no_checkpoint_and_cannot_be_resumed(tmp_path):
    run = tmp_path / "run"
    args = ["--layers", "784-16-10", "--optimizer", "sgd", "--lr", "3", "--batch-size", "64"]
    r = run_cli("train", *args, "--epochs", "40", "--early-stopping", "1", "--out", str(run))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped_early"], metrics  # (lr 3: the validation loss stalls at once)
    assert not (run / "checkpoint.safetensors").exists()
    assert "checkpoint.safetensors" not in r.stdout
    r = run_cli("train", "--resume", str(run), "--epochs", "50")
    assert r.returncode == 2 and "stopped early" in r.stderr.splitlines()[0], r.stderr


def test_the_lock_in_one_process(tmp_path):
    with rundir.locked(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(ConfigError, match=f"process {os.getpid()} is training"),
            rundir.locked(tmp_path),
        ):
            pass
    assert not (tmp_path / ".lock").exists()
    (tmp_path / ".lock").write_text("99999999\n")  # left by a killed run: not held by anyone
    with rundir.locked(tmp_path):
        pass


def test_latest_names_the_newest_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    assert rundir.newest_run(root) is None
    a, b = rundir.make_run_dir(root / "a"), rundir.make_run_dir(root / "b")
    for run in (a, b):
        (run / "model.safetensors").write_bytes(b"m")
        rundir.mark_latest(run)
        assert os.readlink(root / "latest") == run.name
    os.utime(a / "model.safetensors", (1e9 + 10, 1e9 + 10))
    os.utime(b / "model.safetensors", (1e9, 1e9))
    assert rundir.newest_run(root) == b.resolve()  # latest, though a's model is newer
    (root / "latest").unlink()
    assert rundir.newest_run(root) == a  # without it: the model written last
    # A folder other than runs/ gets a 'latest' only if it has one already.
    other = rundir.make_run_dir(tmp_path / "elsewhere" / "x")
    rundir.mark_latest(other)
    assert not (tmp_path / "elsewhere" / "latest").exists()
