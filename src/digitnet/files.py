"""Files, the careful way: atomic writes, reads of regular files only, strict JSON, and the
safetensors header that model files and checkpoints share.

* :func:`write_atomic` writes through a temporary file in the same folder, flushed to disk and
  renamed over the target: an interruption leaves the old file or the new one, never half.
* :func:`open_regular` opens a file for reading only if it is a regular file: ``/dev/zero``
  would be read without end and a FIFO would block the reader forever.
* :func:`strict_json` parses JSON as the standard defines it (RFC 8259) and as every other
  reader will read it back: no NaN or Infinity, no number that overflows a double, no integer
  of more than :data:`MAX_INT_DIGITS` digits, no lone surrogate, at most :data:`MAX_DEPTH`
  levels of nesting. Python's own parser accepts the first four and crashes on the last.
* :func:`read_safetensors` reads a safetensors file header first (the 8-byte length, a bounded
  header, then the data it declares); :func:`split_header` and :func:`load_tensors` check its
  bytes and translate the library's errors into one line.

Each refusal is a :class:`RefusedFileError` (or :class:`HeaderError`) carrying one line; the caller
adds the file's name and turns it into its own :class:`~digitnet.errors.DigitnetError`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "MAX_DEPTH",
    "MAX_HEADER",
    "MAX_INT_DIGITS",
    "HeaderError",
    "RefusedFileError",
    "load_tensors",
    "open_regular",
    "read_regular",
    "read_safetensors",
    "split_header",
    "strict_json",
    "write_atomic",
]

#: the largest safetensors header accepted (the safetensors library's own limit)
MAX_HEADER = 100_000_000
#: the deepest nesting of JSON arrays and objects accepted in a document
MAX_DEPTH = 64
#: the longest integer accepted in a document, in digits (a 64-bit integer has 20; PCG64's
#: 128-bit generator states, 39)
MAX_INT_DIGITS = 50


class RefusedFileError(Exception):
    """A file that cannot be read as asked; ``message`` is one line without the file's name."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class HeaderError(RefusedFileError):
    """Safetensors bytes that are not a well-formed header. ``kind`` says which way:
    ``short`` (under 8 bytes), ``no-header`` (no length and ``{`` at the start, or a length
    over :data:`MAX_HEADER`), ``truncated``, ``json`` (the header is not strict JSON),
    ``not-object``, ``tensors`` (the data do not match the header)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- writing ----------------------------------------------------------------------------------
def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- reading ----------------------------------------------------------------------------------
def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def open_regular(path: str | os.PathLike[str], what: str = "a file") -> tuple[IO[bytes], int]:
    """``(binary file, size)`` of ``path``, opened for reading only if it is a regular file.

    Raises :class:`RefusedFileError` (one line, without the path) for a missing file, a folder, a
    device, a FIFO or a socket, a permission error or another read error. A FIFO is refused
    without blocking: it is opened non-blocking and checked again once open.
    """
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            kind = _kind(before.st_mode)
            raise RefusedFileError(
                f"is a {kind}, not {what}"
                if kind == "folder"
                else f"is a {kind}, not a regular file; {what} must be a file"
            )
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise RefusedFileError("no such file") from None
    except PermissionError:
        raise RefusedFileError("permission denied; the file cannot be read") from None
    except OSError as exc:
        raise RefusedFileError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):  # replaced between the two looks
            raise RefusedFileError(
                f"is a {_kind(now.st_mode)}, not a regular file; {what} must be a file"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb"), now.st_size
    except BaseException:
        os.close(fd)
        raise


def read_exactly(fp: IO[bytes], n: int) -> bytes:
    """``n`` bytes from ``fp`` (fewer only at the end of the file)."""
    parts, left = [], n
    while left > 0:
        part = fp.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_regular(
    path: str | os.PathLike[str], what: str = "a file", *, limit: int | None = None
) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`); with ``limit``, a larger file
    is refused from its size before a byte is read."""
    fp, size = open_regular(path, what)
    with fp:
        if limit is not None and size > limit:
            raise RefusedFileError(f"is {size:,} bytes, more than the {limit:,} {what} may have")
        try:
            return read_exactly(fp, size if limit is None else limit + 1)
        except OSError as exc:
            raise RefusedFileError(f"cannot be read ({exc.strerror or exc})") from None


# -- strict JSON ------------------------------------------------------------------------------
def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} overflows")
    return value


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _check_tree(value: Any) -> None:
    """Depth and strings of a parsed document, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None
        elif isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def strict_json(text: str | bytes) -> Any:
    """Parse strict JSON (see the module's description); raises :class:`ValueError` with one
    line saying what is wrong."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # (a UnicodeDecodeError is a ValueError)
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    _check_tree(value)
    return value


# -- safetensors ------------------------------------------------------------------------------
def split_header(data: bytes) -> tuple[int, dict[str, Any]]:
    """``(n, header)``: the length and the parsed JSON header of safetensors bytes ``data``.

    Raises :class:`HeaderError` (see its ``kind``) if they do not start with an 8-byte
    little-endian length ``n`` of at most :data:`MAX_HEADER`, then ``n`` bytes of a strict JSON
    object.
    """
    if len(data) < 8:
        raise HeaderError("short", f"{len(data)} bytes, too short for a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if data[8:9] != b"{" or n > MAX_HEADER:
        raise HeaderError(
            "no-header", "it does not start with a safetensors header (a length, then JSON)"
        )
    if n > len(data) - 8:
        raise HeaderError(
            "truncated",
            f"truncated: the header should be {n} bytes but only {len(data) - 8} follow",
        )
    try:
        header = strict_json(data[8 : 8 + n])
    except ValueError as exc:
        raise HeaderError("json", f"its safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise HeaderError("not-object", "its safetensors header is not a JSON object")
    return n, header


def _data_size(header: dict[str, Any]) -> int | None:
    """The bytes of tensor data the header declares (the largest end offset), if it says."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return None
        if not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets):
            return None
        end = max(end, offsets[1])
    return end


def read_safetensors(
    path: str | os.PathLike[str],
    what: str,
    check_header: Callable[[dict[str, Any]], None] | None = None,
) -> bytes:
    """The bytes of a safetensors file, read header first.

    Only a regular file is opened (:func:`open_regular`). Its first 8 bytes give the header's
    length; a length past :data:`MAX_HEADER` or past the file's end stops there, and only
    those first bytes come back (they are enough for the caller to say what the file is).
    Then the header is read and parsed (strict JSON), ``check_header`` may refuse it, and the
    data are read only if they are as long as the header declares: a file larger or smaller
    than its header says is refused (:class:`HeaderError`, kind ``tensors``) before its data
    are read.
    """
    fp, size = open_regular(path, what)
    with fp:
        try:
            head = read_exactly(fp, 8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 0 or n > MAX_HEADER or n > size - 8:
                return head + read_exactly(fp, min(size, 4096) - len(head))
            head += read_exactly(fp, n)
            try:
                _, header = split_header(head)
            except HeaderError:
                return head
            if check_header is not None:
                check_header(header)
            data_size = _data_size(header)
            if data_size is not None and 8 + n + data_size != size:
                raise HeaderError(
                    "tensors",
                    f"truncated or padded: the header declares {data_size:,} bytes of tensor "
                    f"data but the file holds {size - 8 - n:,}",
                )
            return head + read_exactly(fp, size - len(head))
        except OSError as exc:
            raise RefusedFileError(f"cannot be read ({exc.strerror or exc})") from None


def load_tensors(data: bytes) -> dict[str, Any]:
    """Every tensor of safetensors bytes, as NumPy arrays (read-only views); the library's
    errors become a :class:`HeaderError` of kind ``tensors``."""
    import safetensors.numpy

    try:
        return safetensors.numpy.load(data)
    except Exception as exc:  # the library's SafetensorError, or an unsupported dtype
        reason = str(exc).removeprefix("Error while deserializing: ")
        if "not fully covered" in reason or "incomplete" in reason:
            reason = f"truncated or padded: {reason}"
        raise HeaderError("tensors", reason) from None
