"""Load a dataset by name or folder into the arrays the network trains on.

The arrays follow the seeds: ``X`` is ``(784, m)`` with one example per column, pixels scaled from
0-255 to [0, 1] in the training dtype; ``y`` holds the ``m`` digits. ``X`` is the transpose of a
C-ordered ``(m, 784)`` array, so that each example is contiguous in memory (see
:mod:`digitnet.train.loop` for why).

:func:`load_dataset` looks for a dataset in this order: a folder given as ``data_dir`` (or in
``$DIGITNET_DATA``), never touching the network; then, for ``mnist``, ``fashion-mnist`` and
``kmnist``, the cache, system packages and the mirrors (:mod:`digitnet.data.download`). Where MNIST
cannot be had, it returns the embedded digits (MNIST too: a 10,000-digit prefix of the training
set, the whole test set), named ``embedded`` so that metrics.json says so, and hands one warning
line to ``on_warning`` (or to :mod:`warnings`, as a :class:`DataFallbackWarning`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.data import idx
from digitnet.data.sources import DOWNLOADABLE, EMBEDDED, FILENAMES, ROLES, DatasetSource
from digitnet.errors import DataError

#: The environment variable naming a data folder (the same as ``--data-dir``).
ENV_DATA = "DIGITNET_DATA"


class DataFallbackWarning(UserWarning):
    """MNIST could not be found or fetched, so the embedded digits stand in for it."""


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
    digests: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each file's IDX bytes (decompressed), by role, where the files were read."""

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[1])

    def validation_indices(
        self, fraction: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted column indices ``(train, val)``: a random ``fraction`` of examples held out.

        Training on indices (``fit(..., sample=train)``) needs no copy of the training set.
        """
        if not 0.0 <= fraction < 1.0:
            raise DataError(f"The validation fraction must be in [0, 1); got {fraction!r}.")
        m = self.n_train
        order = rng.permutation(m)
        n_val = round(m * fraction)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def split_validation(
        self, fraction: float, rng: np.random.Generator
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
        """``(X, y)`` to train on and ``(X_val, y_val)`` held out: a random ``fraction``.

        Both are copies in the rows-in-memory layout; :meth:`validation_indices` avoids them.
        """
        train, val = self.validation_indices(fraction, rng)
        if val.size == 0:
            return (self.X_train, self.y_train), None
        rows = self.X_train.T
        return (rows[train].T, self.y_train[train]), (rows[val].T, self.y_train[val])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "classes": list(self.classes),
            **({"sha256": dict(self.digests)} if self.digests else {}),
        }


#: the dimensions an MNIST-format file of each role has
#: (both are accepted from the header, so that a labels file given as images is named as such)
RANKS = {role: (1, 3) for role in ROLES}


def _value_range(a: np.ndarray) -> str:
    if a.dtype.kind == "f" and np.isnan(a).any():
        return "NaN"
    return f"values from {a.min()} to {a.max()}"


def check_arrays(arrays: dict[str, np.ndarray], names: dict[str, str]) -> None:
    """Refuse, naming the file (``names``: role -> its path), data a network must not train on:
    a set with no images, pixels outside 0-255 (or NaN), labels that are not digits 0-9 (NaN,
    fractions), and test images of another size than the training images."""
    for role in ("train-images", "test-images"):
        images = arrays[role]
        if images.ndim == 3 and images.shape[0] == 0:
            raise DataError(
                f"{names[role]}: holds no images (its header declares shape {images.shape}).",
                "a data folder needs at least one training and one test image",
            )
        if images.size and images.dtype != np.uint8:
            bad = images.dtype.kind == "f" and not np.isfinite(images).all()
            if bad or images.min() < 0 or images.max() > 255:
                raise DataError(
                    f"{names[role]}: pixel values must be 0-255 (MNIST's grey levels); found "
                    f"{_value_range(images)}."
                )
    for role in ("train-labels", "test-labels"):
        labels = arrays[role]
        if not labels.size:
            continue
        if labels.dtype.kind == "f" and (
            not np.isfinite(labels).all() or (labels != np.round(labels)).any()
        ):
            raise DataError(
                f"{names[role]}: labels must be whole digits 0-9; found "
                f"{'NaN or infinity' if not np.isfinite(labels).all() else 'fractions'}."
            )
        if labels.min() < 0 or labels.max() > 9:
            raise DataError(
                f"{names[role]}: labels must be digits 0-9; found values from {labels.min()} "
                f"to {labels.max()}."
            )
    train, test = arrays["train-images"], arrays["test-images"]
    if train.ndim == 3 and test.ndim == 3 and train.shape[1:] != test.shape[1:]:
        raise DataError(
            f"{names['test-images']}: the test images are {test.shape[1]}x{test.shape[2]} but "
            f"the training images ({names['train-images']}) are {train.shape[1]}x{train.shape[2]}.",
            "the test and training files must come from the same dataset",
        )


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
    flat = images.reshape(m, -1)
    rows = np.empty(flat.shape, dtype=dtype)
    # 0-255 -> [0, 1], computed in float64 and rounded once to the training dtype. A block of
    # rows at a time: NumPy's own buffered cast to float32 is several times slower (0.5 s for
    # 60,000 images against 0.06 s), and the values are the same to the bit.
    block = np.empty((min(m, 1024), flat.shape[1]))
    for start in range(0, m, block.shape[0]):
        part = flat[start : start + block.shape[0]]
        np.multiply(part, 1.0 / 255.0, out=block[: len(part)])
        rows[start : start + len(part)] = block[: len(part)]
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
    arrays, sha256, names = {}, {}, {}
    for role in ROLES:
        path = names[role] = _find(folder, role)
        data = idx.read_bytes(path, ranks=RANKS[role])
        got = sha256[role] = idx.sha256_of(data)
        if digests is not None and got != digests[role]["sha256"]:
            raise DataError(
                f"{path}: its contents do not match the expected SHA-256 digest "
                f"({got[:16]}... instead of {digests[role]['sha256'][:16]}...).",
                "the file is corrupt or not the expected one: reinstall or fetch it again",
            )
        arrays[role] = idx.parse(data, str(path), RANKS[role])
    check_arrays(arrays, {role: str(path) for role, path in names.items()})
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
    return Dataset(
        name or str(folder), str(folder), X_train, y_train, X_test, y_test, digests=sha256
    )


def load_embedded(dtype: Any = np.float32) -> Dataset:
    """The embedded default: MNIST's first 10,000 training digits and its 10,000 test digits.

    Checked against their SHA-256 digests on every load (a few milliseconds).
    """
    return load_folder(_embedded_dir(), dtype, name="embedded", digests=EMBEDDED)


def load_dataset(
    name: str | DatasetSource | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dtype: Any = np.float32,
    *,
    offline: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Dataset:
    """A dataset by name: ``embedded``, ``mnist``, ``fashion-mnist`` or ``kmnist``.

    Sources, in order:

    1. ``data_dir``, else ``$DIGITNET_DATA`` (unless ``name`` is ``embedded``): a folder of the four
       IDX files, gzipped or not. The network is never touched. The dataset is named after the
       folder.
    2. With no name (and no folder): the embedded digits.
    3. For a downloadable name (or a :class:`~digitnet.data.sources.DatasetSource`, as tests pass):
       the cache, a system package, then a download (skipped when ``offline``), each file checked
       against its published digest; see :func:`digitnet.data.download.locate`. ``timeout``
       bounds each network wait (default ``$DIGITNET_TIMEOUT`` or 10 s), ``progress`` shows
       progress bars (default: when stderr is a terminal), ``cache_dir`` overrides the cache.
    4. Where MNIST cannot be had that way: the embedded digits, after one warning line handed to
       ``on_warning`` (by default issued as a :class:`DataFallbackWarning`). Other datasets raise
       a :class:`DataError` instead: digits are no stand-in for clothes.
    """
    if data_dir is None and name != "embedded":
        data_dir = os.environ.get(ENV_DATA) or None
    if data_dir is not None:
        data = load_folder(data_dir, dtype)
        known = name if isinstance(name, DatasetSource) else DOWNLOADABLE.get(name or "")
        if known is not None:
            data.classes = list(known.classes)
        return data
    if name is None or name == "embedded":
        return load_embedded(dtype)
    if not isinstance(name, DatasetSource) and name not in DOWNLOADABLE:
        raise DataError(
            f"Unknown dataset {name!r}; digitnet knows embedded, {', '.join(DOWNLOADABLE)}, "
            "or a folder given with --data-dir."
        )
    from digitnet.data import download

    try:
        found = download.locate(
            name, cache=cache_dir, offline=offline, timeout=timeout, progress=progress
        )
    except DataError as exc:
        source = download.get_source(name)
        if source.fallback != "embedded":
            raise
        message = (
            f"{exc.message.rstrip('.')}; training on the embedded 10,000 MNIST digits instead "
            "(dataset: embedded)."
        )
        if on_warning is not None:
            on_warning(message)
        else:
            warnings.warn(message, DataFallbackWarning, stacklevel=2)
        return load_embedded(dtype)
    return _from_found(found, dtype)


def _from_found(found: Any, dtype: Any) -> Dataset:
    """A Dataset out of :class:`digitnet.data.download.Found`: its verified IDX bytes."""
    arrays, names = {}, {}
    for fs in found.source.files:
        where = names[fs.role] = str(found.folder / fs.filename)
        arrays[fs.role] = idx.parse(found.data[fs.role], where, RANKS[fs.role])
        if fs.shape is not None and arrays[fs.role].shape != fs.shape:
            raise DataError(
                f"{where}: holds an array of shape {arrays[fs.role].shape}; {found.source.title} "
                f"has {fs.shape}."
            )
    check_arrays(arrays, names)
    X_train, y_train = _to_arrays(
        arrays["train-images"], arrays["train-labels"], f"{found.where} (training files)", dtype
    )
    X_test, y_test = _to_arrays(
        arrays["test-images"], arrays["test-labels"], f"{found.where} (test files)", dtype
    )
    return Dataset(
        found.source.name,
        found.where,
        X_train,
        y_train,
        X_test,
        y_test,
        classes=list(found.source.classes),
        digests={role: idx.sha256_of(data) for role, data in found.data.items()},
    )
