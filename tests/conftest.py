"""Shared fixtures: seeded randomness and the real mnist-10k files, read in place."""

from __future__ import annotations

import os

# One BLAS thread for the tests: they check results, not speed (bench/ measures speed), and on a
# shared 2-core machine a busy neighbour slows 2-thread OpenBLAS several times over, which would
# make the suite's duration depend on the neighbours. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
