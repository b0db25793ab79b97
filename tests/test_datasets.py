"""Loading datasets: the embedded copy, folders of IDX files, and the ways they can be wrong."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from digitnet.data import idx
from digitnet.data.datasets import load_dataset, load_embedded, load_folder
from digitnet.errors import DataError


def test_embedded_is_mnist_10k(mnist10k):
    d = load_embedded()
    assert d.name == "embedded"
    assert d.X_train.shape == (784, 10000) and d.X_test.shape == (784, 10000)
    assert d.X_train.dtype == np.float32
    assert d.X_train.min() >= 0.0 and d.X_train.max() == 1.0
    np.testing.assert_array_equal(d.X_train, mnist10k.X_train)
    np.testing.assert_array_equal(d.y_test, mnist10k.y_test)


def test_embedded_layout_has_examples_contiguous():
    d = load_dataset("embedded", dtype=np.float64)
    assert d.X_train.dtype == np.float64
    assert d.X_train.T.flags.c_contiguous  # each example's 784 pixels are contiguous
    assert np.bincount(d.y_train, minlength=10).min() > 800


def _fake_folder(tmp_path, m_train=20, m_test=10, rng=None, gz=True):
    rng = rng or np.random.default_rng(0)
    ext = ".gz" if gz else ""
    images = rng.integers(0, 256, (m_train, 28, 28), dtype=np.uint8)
    idx.write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", images)
    idx.write_idx(
        tmp_path / f"train-labels-idx1-ubyte{ext}", rng.integers(0, 10, m_train).astype(np.uint8)
    )
    idx.write_idx(
        tmp_path / f"t10k-images-idx3-ubyte{ext}",
        rng.integers(0, 256, (m_test, 28, 28), dtype=np.uint8),
    )
    idx.write_idx(
        tmp_path / f"t10k-labels-idx1-ubyte{ext}", rng.integers(0, 10, m_test).astype(np.uint8)
    )
    return images


@pytest.mark.parametrize("gz", [True, False])
def test_folder_gzipped_or_not(tmp_path, gz):
    images = _fake_folder(tmp_path, gz=gz)
    d = load_folder(tmp_path)
    assert d.n_train == 20 and d.n_test == 10
    np.testing.assert_allclose(d.X_train[:, 3], images[3].reshape(-1) / 255.0, rtol=1e-6)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="no train-images file"):
        load_folder(tmp_path)
    _fake_folder(tmp_path)
    # labels given where images belong
    shutil.copy(tmp_path / "train-labels-idx1-ubyte.gz", tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="labels file given as images"):
        load_folder(tmp_path)


def test_counts_must_agree(tmp_path):
    _fake_folder(tmp_path)
    idx.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images but 19 labels"):
        load_folder(tmp_path)


def test_labels_outside_digits_are_refused(tmp_path):
    _fake_folder(tmp_path)
    idx.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="labels must be digits 0-9"):
        load_folder(tmp_path)


def test_digest_mismatch_is_refused(tmp_path):
    from digitnet.data.datasets import _embedded_dir
    from digitnet.data.sources import EMBEDDED

    for f in _embedded_dir().glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(target.read_bytes()))
    data[-1] = (data[-1] + 1) % 10  # one label changed: still a valid file
    target.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match=r"t10k-labels.*SHA-256"):
        load_folder(tmp_path, digests=EMBEDDED)


def test_validation_split_is_seeded_and_disjoint():
    d = load_embedded()
    (X, _), (Xv, _) = d.split_validation(0.1, np.random.default_rng(3))
    (_, _), (Xv2, _) = d.split_validation(0.1, np.random.default_rng(3))
    assert X.shape == (784, 9000) and Xv.shape == (784, 1000)
    np.testing.assert_array_equal(Xv, Xv2)
    assert X.T.flags.c_contiguous and Xv.T.flags.c_contiguous
    # every example lands on exactly one side: the multisets of images add up to the whole
    whole = sorted(c.tobytes() for c in d.X_train.T)
    parts = sorted([c.tobytes() for c in X.T] + [c.tobytes() for c in Xv.T])
    assert parts == whole


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="Unknown dataset"):
        load_dataset("cifar")
