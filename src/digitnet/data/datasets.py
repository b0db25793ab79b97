"""Load a dataset by name or folder into the arrays the network trains on.

The arrays follow the seeds: ``X`` is ``(784, m)`` with one example per column, pixels scaled from
0-255 to [0, 1] in the training dtype; ``y`` holds the ``m`` digits. ``X`` is the transpose of a
C-ordered ``(m, 784)`` array, so that each example is contiguous in memory (see
:mod:`digitnet.train.loop` for why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.data import idx
from digitnet.data.sources import EMBEDDED, FILENAMES, ROLES
from digitnet.errors import DataError


@dataclass
class Dataset:
    """Training and test examples of one dataset, as the network reads them.

    ``X_train`` (784, m_train) and ``X_test`` (784, m_test): pixels in [0, 1];
    ``y_train``, ``y_test``: integer labels 0-9. ``name`` says which data these are
    (``embedded``, or a folder's path); ``source`` where they were read from.
    """

    name: str
    source: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str] = field(default_factory=lambda: [str(d) for d in range(10)])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[1])

    def split_validation(
        self, fraction: float, rng: np.random.Generator
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
        """``(X, y)`` to train on and ``(X_val, y_val)`` held out: a random ``fraction``.

        Both keep the rows-in-memory layout (one copy each, made once before training).
        """
        if not 0.0 <= fraction < 1.0:
            raise DataError(f"The validation fraction must be in [0, 1); got {fraction!r}.")
        m = self.n_train
        n_val = round(m * fraction)
        if n_val == 0:
            return (self.X_train, self.y_train), None
        order = rng.permutation(m)
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        rows = self.X_train.T
        return (rows[train].T, self.y_train[train]), (rows[val].T, self.y_train[val])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def _to_arrays(
    images: np.ndarray, labels: np.ndarray, where: str, dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3:
        raise DataError(
            f"{where}: the images file holds an array of shape {images.shape}; expected "
            f"(count, rows, cols).",
            "is it a labels file given as images?",
        )
    if labels.ndim != 1:
        raise DataError(
            f"{where}: the labels file holds an array of shape {labels.shape}; expected (count,).",
            "is it an images file given as labels?",
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{where}: {images.shape[0]} images but {labels.shape[0]} labels; they must agree.",
            "the images and labels files do not belong together",
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(
            f"{where}: labels must be digits 0-9; found values from {labels.min()} to "
            f"{labels.max()}."
        )
    m = images.shape[0]
    rows = np.empty((m, images.shape[1] * images.shape[2]), dtype=dtype)
    np.multiply(images.reshape(m, -1), 1.0 / 255.0, out=rows, casting="unsafe")  # 0-255 -> [0, 1]
    return rows.T, labels.astype(np.int64)


def _embedded_dir() -> Path:
    return Path(str(resources.files("digitnet.data") / "embedded"))


def _find(folder: Path, role: str) -> Path:
    base = FILENAMES[role]
    variants = [base, base.replace("-idx", ".idx")]
    for name in variants:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{folder}: no {role} file (looked for {base}.gz or {base}).",
        "a data folder holds the four MNIST-format IDX files, gzipped or not",
    )


def load_folder(
    folder: str | os.PathLike[str],
    dtype: Any = np.float32,
    name: str | None = None,
    digests: dict[str, dict] | None = None,
) -> Dataset:
    """Load the four MNIST-format IDX files (gzipped or not) from a folder.

    With ``digests`` (role -> {"sha256": ...}), each file's decompressed bytes must match, or a
    :class:`DataError` names the file.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder.", "--data-dir takes a folder of IDX files")
    arrays = {}
    for role in ROLES:
        path = _find(folder, role)
        data = idx.read_bytes(path)
        if digests is not None:
            got = idx.sha256_of(data)
            if got != digests[role]["sha256"]:
                raise DataError(
                    f"{path}: its contents do not match the expected SHA-256 digest "
                    f"({got[:16]}... instead of {digests[role]['sha256'][:16]}...).",
                    "the file is corrupt or not the expected one: reinstall or fetch it again",
                )
        arrays[role] = idx.parse(data, str(path))
    X_train, y_train = _to_arrays(
        arrays["train-images"], arrays["train-labels"], f"{folder} (training files)", dtype
    )
    X_test, y_test = _to_arrays(
        arrays["test-images"], arrays["test-labels"], f"{folder} (test files)", dtype
    )
    if X_train.shape[0] != X_test.shape[0]:
        raise DataError(
            f"{folder}: training images have {X_train.shape[0]} pixels but test images have "
            f"{X_test.shape[0]}."
        )
    return Dataset(name or str(folder), str(folder), X_train, y_train, X_test, y_test)


def load_embedded(dtype: Any = np.float32) -> Dataset:
    """The embedded default: MNIST's first 10,000 training digits and its 10,000 test digits.

    Checked against their SHA-256 digests on every load (a few milliseconds).
    """
    return load_folder(_embedded_dir(), dtype, name="embedded", digests=EMBEDDED)


def load_dataset(
    name: str = "embedded", data_dir: str | os.PathLike[str] | None = None, dtype: Any = np.float32
) -> Dataset:
    """A dataset by name (``embedded``) or from ``data_dir``, a folder of four IDX files."""
    if data_dir is not None:
        return load_folder(data_dir, dtype)
    if name == "embedded":
        return load_embedded(dtype)
    raise DataError(f"Unknown dataset {name!r}; this version knows 'embedded' or a --data-dir.")
