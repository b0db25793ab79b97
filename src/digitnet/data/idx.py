"""The IDX file format of MNIST, read and written with NumPy buffers and checked on the way in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
then each dimension as a big-endian 32-bit integer, then the values in row-major order, big-endian
(LeCun et al., http://yann.lecun.com/exdb/mnist/). Files may be gzipped; digitnet tells by the
gzip magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path

import numpy as np

from digitnet.errors import DataError
from digitnet.files import RefusedFileError, read_regular, write_atomic

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


def declared_size(head: bytes | bytearray) -> int | None:
    """The whole length, in bytes, that an IDX header declares (header and values), from the
    first bytes of the file; ``None`` until they hold the whole header. Multiplied in Python
    integers: dimensions whose product overflows 64 bits still give the true size."""
    if len(head) < 4:
        return None
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        return -1  # not an IDX header: parse says so
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return 4 + 4 * ndim + math.prod(dims) * IDX_TYPES[head[2]].itemsize


def _check_fits(size: int, name: str) -> None:
    """Refuse an IDX file whose header declares more than this machine's free memory."""
    from digitnet.memory import available_bytes, human_bytes

    free = available_bytes()
    if free is not None and size > free:
        raise DataError(
            f"{name}: its IDX header declares {human_bytes(size)} of data, more than the "
            f"{human_bytes(free)} of memory available.",
            "is it the right file?",
        )


def gunzip(
    raw: bytes | bytearray | memoryview,
    name: str,
    limit: int | None = None,
    ranks: tuple[int, ...] | None = None,
) -> bytearray:
    """Decompress gzip data (one member or several) holding one IDX file, in bounded memory.

    Decompression stops as soon as the output passes the size the IDX header declares, or
    ``limit`` (the published size of a known file): a small ``.gz`` that expands to gigabytes
    is refused after at most that much, never held whole. A header that itself declares more
    than ``limit`` is refused before the values are decompressed.
    """
    out = bytearray()
    view = memoryview(raw)
    expected: int | None = None
    step = 1 << 20

    def too_long(size: int) -> DataError:
        what = "the size its IDX header declares" if expected is not None else "its limit"
        bound = expected if expected is not None else limit
        return DataError(
            f"{name}: the gzip data expand past {what} ({bound:,} bytes; {size:,} so far): "
            "refused before reading more.",
            "delete the file and fetch it again",
        )

    try:
        while True:  # one gzip member at a time
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pos = 0
            while not d.eof:
                bound = expected if expected is not None else limit
                cap = step if bound is None else max(1, min(bound + 1 - len(out), step))
                if d.unconsumed_tail:
                    chunk = d.unconsumed_tail
                else:
                    chunk = view[pos : pos + step]
                    pos += len(chunk)
                got = d.decompress(chunk, cap)
                if not chunk and not got:
                    raise DataError(
                        f"{name}: the gzip data is truncated or corrupt (the stream ends early).",
                        "delete the file and fetch it again",
                    )
                out += got
                if expected is None:
                    expected = declared_size(out)
                    if expected is not None and expected < 0:
                        return out  # not an IDX file: parse says so
                    if expected is not None:
                        if ranks is not None and out[3] not in ranks:
                            return out  # parse names the dimensions
                        _check_fits(expected, name)
                    if expected is not None and limit is not None and expected > limit:
                        raise DataError(
                            f"{name}: its IDX header declares {expected:,} bytes, more than the "
                            f"{limit:,} this file has when published.",
                            "delete the file and fetch it again",
                        )
                bound = expected if expected is not None else limit
                if bound is not None and len(out) > bound:
                    raise too_long(len(out))
            rest = d.unused_data + view[pos:].tobytes()
            if not rest.strip(b"\0"):
                return out
            view, raw = memoryview(rest), rest
            if rest[:2] != _GZIP_MAGIC:
                raise DataError(
                    f"{name}: the gzip data is truncated or corrupt (trailing garbage).",
                    "delete the file and fetch it again",
                )
    except zlib.error as exc:
        raise DataError(
            f"{name}: the gzip data is truncated or corrupt ({exc}).",
            "delete the file and fetch it again",
        ) from None


def read_bytes(
    path: str | os.PathLike[str],
    limit: int | None = None,
    ranks: tuple[int, ...] | None = None,
) -> bytes | bytearray:
    """The IDX bytes of a file, decompressed when it is gzipped (told by its first bytes), in
    memory bounded by what its header declares (see :func:`gunzip`) and by ``limit``; a
    header of other ``ranks`` stops decompression at once (:func:`parse` then says why)."""
    path = Path(path)
    try:
        raw = read_regular(path, "an IDX file")
    except RefusedFileError as exc:
        raise DataError(f"{path}: {exc.message}.", exc.hint) from None
    if raw[:2] == _GZIP_MAGIC:
        return gunzip(raw, str(path), limit, ranks)
    return raw


def parse(
    data: bytes | bytearray, name: str = "<bytes>", ranks: tuple[int, ...] | None = None
) -> np.ndarray:
    """An array from IDX bytes, after checking the magic number, the dimensions and the length.

    With ``ranks``, a file of another number of dimensions is refused from its header (an
    MNIST-format images file has 3, a labels file 1).
    """
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
    if ranks is not None and ndim not in ranks:
        raise DataError(
            f"{name}: the IDX header declares {ndim} dimensions; "
            f"{' or '.join(map(str, ranks))} expected (MNIST format: images have 3, count, rows "
            "and cols; labels 1).",
            "is it the right file?",
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize  # (Python integers: no overflow)
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
