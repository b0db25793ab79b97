"""Folders the system refuses to write or read: the results first, then one line.

Root ignores file permissions, so as root a folder is made truly read-only by a read-only bind
mount of it in a private mount namespace (``unshare --mount``: the mount is seen by the command
under test alone, and goes with it); as another user, by ``chmod a-w``. Either way the command
meets the system's own refusal (EROFS or EACCES), not a simulation. An unreadable data folder
cannot be made for root at all: that case raises the PermissionError in-process (monkeypatched,
said so in its test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitnet import cli


def _run(argv: list[str], read_only: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLCONFIGDIR": "/tmp/digitnet-mpl"}
    cmd = [sys.executable, "-m", "digitnet", *argv]
    if read_only is None:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if os.geteuid() == 0:
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(read_only)]
        cmd += [sys.executable, "-m", "digitnet", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    mode = read_only.stat().st_mode
    read_only.chmod(0o555)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    finally:
        read_only.chmod(mode)


@pytest.fixture(scope="module")
def can_make_read_only(tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("probe")
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: no way to make a folder read-only")
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        r = subprocess.run(
            [*unshare, str(folder), "touch", str(folder / "x")],
            capture_output=True,
            text=True,
        )
        if "Read-only file system" not in r.stderr:
            pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.strip()}")


@pytest.fixture(scope="module")
def model_in_a_folder(tmp_path_factory) -> Path:
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    folder = tmp_path_factory.mktemp("run")
    save_model(folder / "model.safetensors", Network.from_spec("784-16-10", seed=0))
    return folder


@pytest.mark.parametrize("command", ["evaluate", "inspect"])
def test_results_first_then_one_line_about_the_pictures(
    can_make_read_only, model_in_a_folder, command, tmp_path
):
    folder = model_in_a_folder
    r = _run([command, str(folder)], read_only=folder)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    result = "test accuracy" if command == "evaluate" else "total:"
    assert result in r.stdout and "wrote" not in r.stdout, r.stdout
    lines = r.stderr.splitlines()
    assert lines[0].startswith("warning: the pictures could not be written: ")
    assert lines[0].endswith(("Read-only file system.", "Permission denied.")), lines
    assert lines[1] == f"hint: point --out at a folder you can write: digitnet {command} " + (
        f"{folder / 'model.safetensors'} --out DIR"
    )
    assert len(lines) == 2 and not list(folder.glob("*.png"))
    # With --out where nothing can be written (a file stands where the folder would be): the
    # results, then an error, status 1.
    (tmp_path / "file").write_text("")
    r = _run([command, str(folder), "--out", str(tmp_path / "file" / "pictures")])
    assert r.returncode == 1 and result in r.stdout and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: the pictures could not be written: ")
    # And a folder that takes them: status 0, the pictures written.
    r = _run([command, str(folder), "--out", str(tmp_path / "pictures")])
    assert r.returncode == 0 and r.stderr == "" and list((tmp_path / "pictures").glob("*.png"))


def test_evaluate_json_says_no_pictures(can_make_read_only, model_in_a_folder):
    import json

    r = _run(["evaluate", str(model_in_a_folder), "--json"], read_only=model_in_a_folder)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["pictures"] is None and 0 <= doc["accuracy"] <= 1
    assert r.stderr.startswith("warning: the pictures could not be written")


def test_train_into_a_read_only_folder_is_one_line(can_make_read_only, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = _run(["train", "--layers", "784-16-10", "--epochs", "1", "--out", str(out)], read_only=out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: {out}: "), r.stderr
    assert lines[0].endswith(("Read-only file system.", "Permission denied.")), lines
    assert lines[1] == "hint: choose a folder you can write with --out"
    # --resume of a run folder that has become read-only
    run = tmp_path / "run"
    assert (
        _run(["train", "--layers", "784-16-10", "--epochs", "1", "--out", str(run)]).returncode == 0
    )
    r = _run(["train", "--resume", str(run), "--epochs", "2"], read_only=run)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 2, r.stderr
    assert r.stderr.startswith(f"error: {run}: ") and "Traceback" not in r.stderr


def test_an_unreadable_data_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """Simulated in-process: the system's PermissionError (EACCES) raised for anything under
    the data folder, as for a folder without read or search permission."""
    data = tmp_path / "data"
    data.mkdir()
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(data) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) == str(data):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    status = cli.main(["train", "--data-dir", str(data), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status in (1, 2) and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) <= 2 and lines[0].startswith("error: ") and str(data) in lines[0], err
    assert "ermission denied" in lines[0] or "cannot be read" in lines[0], err
