"""The IDX file format of MNIST, read and written with NumPy buffers and checked on the way in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
then each dimension as a big-endian 32-bit integer, then the values in row-major order, big-endian
(LeCun et al., http://yann.lecun.com/exdb/mnist/). Files may be gzipped; digitnet tells by the
gzip magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from digitnet.errors import DataError
from digitnet.files import write_atomic

#: IDX type code -> big-endian NumPy dtype
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The IDX bytes of a file, decompressed when it is gzipped (told by its first bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}).") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(
                f"{path}: the gzip data is truncated or corrupt ({exc}).",
                "delete the file and fetch it again",
            ) from None
    return raw


def parse(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """An array from IDX bytes, after checking the magic number, the dimensions and the length."""
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes).")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(
            f"{name}: not an IDX file (magic number {data[:4].hex()}; expected 0000 followed by "
            f"a type code in {sorted(f'{c:02x}' for c in IDX_TYPES)} and a dimension count)."
        )
    dtype = IDX_TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: the IDX header is truncated or declares {ndim} dimensions.")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{name}: the file is {what}: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes of values) but it holds {actual}.",
            "delete the file and fetch it again",
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its type and shape."""
    return parse(read_bytes(path), str(path))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an array of one of the IDX element types."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(
            f"IDX cannot hold {array.dtype}; use one of "
            f"{', '.join(str(d.newbyteorder('=')) for d in IDX_TYPES.values())}."
        )
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"IDX needs 1 to 255 dimensions; got {array.ndim}.")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None
) -> None:
    """Write an array as an IDX file, gzipped when ``compress`` (default: the name ends in .gz).

    The gzip stream carries no time stamp or name, so the same array always gives the same bytes.
    """
    path = Path(path)
    data = to_bytes(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    write_atomic(path, data)
