"""Shared fixtures: seeded randomness and the real mnist-10k files, read in place."""

from __future__ import annotations

import os

# One BLAS thread for the tests: they check results, not speed (bench/ measures speed), and on a
# shared 2-core machine a busy neighbour slows 2-thread OpenBLAS several times over, which would
# make the suite's duration depend on the neighbours. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_10K = ROOT.parent / "shared" / "datasets" / "mnist-10k"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mnist10k_dir() -> Path:
    """The folder of real MNIST (first 10,000 training digits, official test set), in place."""
    if not (MNIST_10K / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST data not found at {MNIST_10K} (the shared datasets folder)")
    return MNIST_10K


@pytest.fixture(scope="session")
def mnist10k(mnist10k_dir):
    from digitnet.data.datasets import load_folder

    return load_folder(mnist10k_dir)


# -- the command line, as a user runs it ------------------------------------------------------
def run_cli(
    *args: str, cwd: str | os.PathLike[str] | None = None, timeout: float = 300, fresh: bool = False
) -> subprocess.CompletedProcess:
    """``digitnet ARGS`` -> its exit status, stdout and stderr (a ``CompletedProcess``).

    By default in this process, through ``cli.main(argv)``: what every command does (its output,
    its files, its exit status) without a second of interpreter start-up per call. An unexpected
    exception propagates with its traceback, as pytest shows it; ``sys.exit`` from argparse
    becomes the exit status, as the shell would see it. With ``fresh=True``, a new interpreter
    (``python -m digitnet``): for what only a real process shows (what it imports, how it exits,
    signals). ``cwd``: the folder the command runs in (``train`` without ``--out`` writes
    ``runs/`` there). A "Traceback" on stderr fails the test either way.
    """
    argv = [str(a) for a in args]
    if fresh:
        done = subprocess.run(
            [sys.executable, "-m", "digitnet", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
    else:
        from digitnet import cli

        out, err = io.StringIO(), io.StringIO()
        with contextlib.ExitStack() as stack:
            if cwd is not None:  # (contextlib.chdir is Python 3.11+)
                stack.callback(os.chdir, os.getcwd())
                os.chdir(cwd)
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            try:
                status = cli.main(argv)
            except SystemExit as exc:  # argparse's usage errors and --help, --version
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        done = subprocess.CompletedProcess(
            ["digitnet", *argv], status, out.getvalue(), err.getvalue()
        )
    assert "Traceback" not in done.stderr, done.stderr
    return done


# -- the page tests (test_web_page.py, test_web_backward_page.py) -------------------------------
# A module that asks for `pages` gives its own `model` and `runs_dir` fixtures; Playwright and
# the server helpers are imported only when a page test runs.
@pytest.fixture(scope="module")
def server(model, runs_dir, tmp_path_factory):
    """``digitnet serve MODEL --runs RUNS`` in a subprocess, for the module's tests."""
    from web_helpers import Server

    srv = Server(str(model), "--runs", str(runs_dir), log=tmp_path_factory.mktemp("serve") / "log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (never 'playwright install')."""
    from playwright.sync_api import sync_playwright
    from web_helpers import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def pages(browser, server):
    """Pages opened on the server; after the test, no page may have logged an error."""
    from web_helpers import Pages

    opened = Pages(browser, server.url)
    yield opened
    opened.close()
    opened.assert_clean()  # errors after the test's own check
