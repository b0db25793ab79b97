"""Data that are wrong are refused, not trained on; gzip expands only as far as the IDX header
declares (issue 13's data findings). Memory is measured in a subprocess (memutil)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from memutil import peak_mb

from digitnet.data import idx
from digitnet.data.datasets import load_folder
from digitnet.data.sources import DOWNLOADABLE
from digitnet.errors import DataError

CHUNK = 64 << 20  # 64 MB of zeros per gzip member


def _zeros_member(n: int, prefix: bytes = b"") -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [z.compress(prefix)]
    block = b"\0" * (1 << 20)
    for _ in range(n // len(block)):
        parts.append(z.compress(block))
    parts.append(z.flush())
    return b"".join(parts)


def gzip_bomb(path: Path, header: bytes, gigabytes: int = 2) -> Path:
    """A ``.gz`` of about 2 MB: an IDX ``header`` then ``gigabytes`` GB of zeros, as gzip
    members of 64 MB each (gzip readers join members, as ``gunzip`` does)."""
    tail = _zeros_member(CHUNK)
    members = (gigabytes << 30) // CHUNK
    path.write_bytes(_zeros_member(CHUNK, header) + tail * (members - 1))
    return path


def images_header(count: int, rows: int = 28, cols: int = 28) -> bytes:
    return bytes([0, 0, 8, 3]) + struct.pack(">III", count, rows, cols)


def fake_folder(folder: Path, *, train=None, test=None, train_labels=None, test_labels=None):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": train
        if train is not None
        else rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": train_labels
        if train_labels is not None
        else rng.integers(0, 10, 20).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": test
        if test is not None
        else rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": test_labels
        if test_labels is not None
        else rng.integers(0, 10, 10).astype(np.uint8),
    }
    for name, a in arrays.items():
        if a is not None:
            idx.write_idx(folder / name, a)
    return folder


# -- gzip bombs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory) -> Path:
    """A data folder whose training images are 2 MB of gzip declaring 10,000 28x28 images (7.8
    MB) and expanding to 2 GB."""
    folder = fake_folder(tmp_path_factory.mktemp("bomb"))
    gzip_bomb(folder / "train-images-idx3-ubyte.gz", images_header(10_000))
    return folder


def test_a_gzip_bomb_in_a_data_folder_stops_at_the_declared_size(bomb_folder):
    """Once 2 GB in memory (gzip.decompress, then a digest of it); now refused after the 7.8 MB
    its header declares."""
    assert (bomb_folder / "train-images-idx3-ubyte.gz").stat().st_size < 3_000_000
    grown, out = peak_mb(
        "from digitnet.data.datasets import load_folder",
        f"load_folder({str(bomb_folder)!r})",
        limit_mb=1500,
    )
    assert "expand past the size its IDX header declares (7,840,016 bytes" in out, out
    assert out.startswith(f"DataError: {bomb_folder / 'train-images-idx3-ubyte.gz'}: ")
    assert grown < 120, f"{grown:.0f} MB"


def test_train_refuses_the_gzip_bomb_in_bounded_memory(bomb_folder, tmp_path):
    grown, out = peak_mb(
        "from digitnet import cli",
        "_out = cli.main(['train', '--data-dir', "
        f"{str(bomb_folder)!r}, '--epochs', '1', '--out', {str(tmp_path / 'run')!r}])",
        limit_mb=1500,
    )
    assert out == "1" and grown < 150, (out, grown)


@pytest.mark.parametrize("header_count", [60_000, 70_000])
def test_the_cache_and_data_list_stop_at_the_published_size(tmp_path, header_count):
    """A cached MNIST file expanding to 2 GB: ``digitnet data list`` (and train's cache look-up)
    stop at the published 47 MB, or at the header when it declares more than published."""
    cache = tmp_path / "cache"
    fs = next(f for f in DOWNLOADABLE["mnist"].files if f.role == "train-images")
    (cache / "mnist").mkdir(parents=True)
    gzip_bomb(cache / "mnist" / fs.filename, images_header(header_count))
    grown, out = peak_mb(
        f"import os\nos.environ['DIGITNET_CACHE'] = {str(cache)!r}\n"
        "from digitnet.data.download import status",
        "_out = status('mnist')\n_out = (_out.state, _out.detail)",
        limit_mb=1500,
    )
    assert out.startswith("('failed'"), out
    assert grown < 200, f"{grown:.0f} MB"
    from digitnet.data.download import verify_file

    message = "expand past" if header_count == 60_000 else "more than the 47,040,016 this file"
    with pytest.raises(DataError, match=message):
        verify_file(cache / "mnist" / fs.filename, fs)


def test_gunzip_reads_what_gzip_reads(tmp_path):
    a = np.arange(3000, dtype=np.uint8).reshape(3, 1000)
    raw = idx.to_bytes(a)
    one = gzip.compress(raw)
    assert bytes(idx.gunzip(one, "x")) == raw
    two = gzip.compress(raw[:100]) + gzip.compress(raw[100:])  # two members, as gzip allows
    assert bytes(idx.gunzip(two, "x")) == raw
    with pytest.raises(DataError, match="truncated or corrupt"):
        idx.gunzip(one[:-20], "x")
    with pytest.raises(DataError, match="expand past the size its IDX header declares"):
        idx.gunzip(gzip.compress(raw + b"\0" * 10), "x")


# -- headers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header, message",
    [
        (bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3, "of memory available"),
        (bytes([0, 0, 0x0E, 3]) + b"\xff\xff\xff\xff" * 3, "of memory available"),
        (bytes([0, 0, 8, 255]) + b"\0\0\0\2" * 255, "declares 255 dimensions; 1 or 3 expected"),
    ],
    ids=["overflowing-int64", "overflowing-float64", "255-dimensions"],
)
def test_impossible_headers_get_one_line(tmp_path, header, message):
    folder = fake_folder(tmp_path / "data")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + b"\0" * 100))
    with pytest.raises(DataError, match=message) as err:
        load_folder(folder)
    assert str(folder / "train-images-idx3-ubyte.gz") in err.value.message
    assert "\n" not in err.value.message and len(err.value.message) < 400
    # Not gzipped: the header against the file's length, multiplied without overflow.
    os.remove(folder / "train-images-idx3-ubyte.gz")
    (folder / "train-images-idx3-ubyte").write_bytes(header + b"\0" * 100)
    with pytest.raises(DataError, match=r"truncated|255 dimensions") as err:
        load_folder(folder)
    assert "\n" not in err.value.message and len(err.value.message) < 400


def test_an_empty_set_of_images_is_refused(tmp_path):
    folder = fake_folder(
        tmp_path / "data",
        train=np.zeros((0, 28, 28), np.uint8),
        train_labels=np.zeros(0, np.uint8),
    )
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: holds no images"):
        load_folder(folder)


# -- values and shapes -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "images, found",
    [
        (np.full((20, 28, 28), 300.0, np.float32), "values from 300.0 to 300.0"),
        (np.full((20, 28, 28), np.nan, np.float32), "NaN"),
        (np.full((20, 28, 28), -5, np.int32), "values from -5 to -5"),
    ],
    ids=["float-300", "float-nan", "int32-negative"],
)
def test_pixels_outside_0_255_are_refused_naming_the_file(tmp_path, images, found):
    folder = fake_folder(tmp_path / "data", train=images)
    with pytest.raises(DataError, match="pixel values must be 0-255") as err:
        load_folder(folder)
    assert err.value.message.startswith(str(folder / "train-images-idx3-ubyte.gz"))
    assert found in err.value.message


def test_in_range_float_images_still_load(tmp_path):
    folder = fake_folder(tmp_path / "data", train=np.full((20, 28, 28), 255.0, np.float32))
    assert load_folder(folder).X_train.max() == 1.0


def test_test_images_of_another_size_are_refused(tmp_path):
    """14x56 has 784 pixels too: once trained on and tested silently."""
    folder = fake_folder(tmp_path / "data", test=np.zeros((10, 14, 56), np.uint8))
    with pytest.raises(DataError, match="the test images are 14x56 but the training images") as e:
        load_folder(folder)
    assert e.value.message.startswith(str(folder / "t10k-images-idx3-ubyte.gz"))


def test_nan_labels_are_refused_naming_the_file(tmp_path):
    labels = np.full(10, np.nan, np.float32)
    folder = fake_folder(tmp_path / "data", test_labels=labels)
    with pytest.raises(DataError, match="labels must be whole digits 0-9; found NaN") as err:
        load_folder(folder)
    assert err.value.message.startswith(str(folder / "t10k-labels-idx1-ubyte.gz"))
    os.remove(folder / "t10k-labels-idx1-ubyte.gz")
    idx.write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 2.5, np.float64))
    with pytest.raises(DataError, match="found fractions"):
        load_folder(folder)
