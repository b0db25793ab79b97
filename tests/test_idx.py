"""The IDX reader and writer: round trips for every element type, and every way a file is bad."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitnet.data import idx
from digitnet.errors import DataError

NATIVE_TYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", NATIVE_TYPES)
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_every_type(tmp_path, rng, dtype, gz):
    if np.dtype(dtype).kind == "f":
        a = rng.standard_normal((3, 4, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, (3, 4, 5), endpoint=True).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    idx.write_idx(path, a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    b = idx.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.dtype(t) for t in NATIVE_TYPES]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
    )
)
def test_round_trip_property(a):
    out = idx.parse(idx.to_bytes(a))
    assert out.shape == a.shape and out.dtype == a.dtype
    np.testing.assert_array_equal(out, a)  # NaNs compare equal here


def test_header_is_big_endian_as_published():
    data = idx.to_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert data[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2


def test_truncated_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx.to_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated"):
        idx.read_idx(path)


def test_file_longer_than_header_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx.to_bytes(np.zeros(5, dtype=np.uint8)) + b"\0")
    with pytest.raises(DataError, match="longer than its header"):
        idx.read_idx(path)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"PK\x03\x04zipfile", "not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01x", "not an IDX file"),  # unknown type code
        (b"\x00\x00\x08\x03\x00\x00", "header is truncated"),
        (b"\x00\x00\x08\x00", "header is truncated or declares 0"),
    ],
)
def test_bad_headers(tmp_path, payload, message):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message):
        idx.read_idx(path)


def test_corrupt_and_truncated_gzip(tmp_path):
    good = gzip.compress(idx.to_bytes(np.arange(1000, dtype=np.int32)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.gz.*gzip data is truncated or corrupt"):
        idx.read_idx(cut)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=r"bad\.gz"):
        idx.read_idx(bad)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        idx.read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="is a folder"):
        idx.read_idx(tmp_path)


def test_writer_refuses_types_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="IDX cannot hold"):
        idx.to_bytes(np.zeros(3, dtype=np.int64))


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.idx"
    idx.write_idx(path, np.arange(3, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # the usual mode, not mkstemp's


def test_reads_real_mnist_in_place(mnist10k_dir):
    images = idx.read_idx(mnist10k_dir / "t10k-images-idx3-ubyte.gz")
    labels = idx.read_idx(mnist10k_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first digits of the official test set
