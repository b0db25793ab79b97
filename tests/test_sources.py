"""The source table: well-formed, and consistent with the files on this machine it describes."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import pytest

from digitnet.data import download
from digitnet.data.datasets import _embedded_dir
from digitnet.data.sources import (
    DATASET_NAMES,
    DOWNLOADABLE,
    EMBEDDED,
    FILENAMES,
    MNIST,
    ROLES,
)

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("source", list(DOWNLOADABLE.values()), ids=list(DOWNLOADABLE))
def test_table_is_well_formed(source):
    assert [f.role for f in source.files] == list(ROLES)
    assert len(source.classes) == 10 and len(set(source.classes)) == 10
    assert source.mirrors and len(set(source.mirrors)) == len(source.mirrors)
    for mirror in source.mirrors:
        parts = urlsplit(mirror)
        assert parts.scheme in ("http", "https") and parts.hostname and mirror.endswith("/")
    for f in source.files:
        assert f.filename == FILENAMES[f.role] + ".gz"
        assert HEX64.fullmatch(f.gz_sha256) and HEX32.fullmatch(f.md5 or "")
        assert f.sha256 is None or HEX64.fullmatch(f.sha256)
        assert f.size and f.size > 1000
        assert f.shape and f.shape[0] == (60000 if f.role.startswith("train") else 10000)
    assert len({f.gz_sha256 for f in source.files}) == 4
    assert source.credit


def test_names():
    assert DATASET_NAMES == ("mnist", "fashion-mnist", "kmnist", "embedded")
    assert MNIST.fallback == "embedded"
    assert all(s.fallback is None for n, s in DOWNLOADABLE.items() if n != "mnist")


def test_embedded_test_set_is_the_published_one():
    """The package's test files hold MNIST's published t10k data (re-gzipped without a time
    stamp, so they pass by the digest of their decompressed bytes)."""
    for role in ("test-images", "test-labels"):
        fs = MNIST.file(role)
        assert fs.sha256 == EMBEDDED[role]["sha256"] and fs.gz_sha256 == EMBEDDED[role]["gz_sha256"]
        download.verify_file(_embedded_dir() / fs.filename, fs)


def test_mnist10k_test_files_are_the_published_ones(mnist10k_dir):
    for role in ("test-images", "test-labels"):
        fs = MNIST.file(role)
        path = mnist10k_dir / fs.filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == fs.gz_sha256
        download.verify_file(path, fs)
