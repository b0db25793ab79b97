"""The processes that read digits for ``digitnet serve``: image bytes in, the JSON answer out.

Reading a digit (decoding the image, :func:`digitnet.imaging.preprocess`, the forward pass and
the JSON of every layer) is a few milliseconds of CPU with Python's GIL held, so one process
reads one digit at a time. The server is one process for HTTP (an event loop: the page, the API,
the event streams) and ``N`` reader processes (:class:`Readers`), one per core. Each request
goes to a free reader over a socket, and waits for the answer without blocking the event loop;
when all readers are busy, requests wait in turn.

Why not N copies of the whole server, as uvicorn's ``--workers`` runs? Each kept-alive
connection stays with the copy that accepted it, so the copies are only as evenly loaded as
their connections, and connections are not handed out evenly: measured here, with one shared
socket 7 of 8 clients connecting together went to one copy while the other stood idle, and with
a socket per copy (``SO_REUSEPORT``) the kernel splits them at random: 6 to 2 or worse 29 % of
the time. A pool of readers is never idle while a request waits.

Of the free readers, the one that finished last reads the next request: its memory is still in
the processor's caches, which makes a request 15 % cheaper than alternating between readers.
A reader that dies (killed, out of memory) is replaced; the request it was reading is handed to
its replacement once.

One model: the server reads the model file once (:func:`model_bytes`), checks it, and gives
those bytes to every reader, replacements included; a reader never opens the file, so a file
rewritten on disk while the server runs (a ``train --resume``, say) changes no answer: all
readers serve the model the server started with, until it is restarted.

Each reader caps its own memory (``RLIMIT_AS``: its size once the model is loaded, plus
:data:`READER_MEMORY_BYTES`): an image that needs more fails in that reader alone, with a
MemoryError answered as a 413, and never takes the machine's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitnet.errors import DigitnetError, ImageError, ModelFileError

#: the first byte of each message from a reader: what the rest is (see _frame)
READY, ANSWER, NOT_A_DIGIT, TOO_LARGE = b"R", b"A", b"E", b"M"
#: the memory a reader may use beyond its size with the model loaded (address space): a 12
#: megapixel photo takes about 150 MB to read
READER_MEMORY_BYTES = 768 << 20
#: on stopping, readers get this long to finish the request they are reading; then are killed
STOP_SECONDS = 0.5
#: glibc's malloc settings for the readers: each request allocates and frees a few arrays of
#: 300 KB or more (the decoded canvas, its grey copy), which glibc by default gives back to the
#: kernel at once and maps again on the next request (180 page faults, 0.2-0.4 ms a request, a
#: fifth of its time); 32 MB is glibc's own ceiling for these thresholds
MALLOC_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(32 << 20),
}


class ReaderDiedError(RuntimeError):
    """The reader process died while reading (it is replaced; asking again works)."""


class ImageTooLargeError(RuntimeError):
    """Reading the image needed more memory than a reader may use."""


def model_bytes(path: Path) -> bytes:
    """The bytes of the model file ``path``, read once for the server and all its readers (a
    regular file only, header first: :func:`digitnet.files.read_safetensors`); checked whole
    when the server builds its :class:`~digitnet.predictor.Predictor` from them."""
    from digitnet.files import RefusedFileError, read_safetensors

    path = Path(path)
    try:
        return read_safetensors(path, "a model file")
    except RefusedFileError as exc:
        raise ModelFileError(f"{path}: {exc.message}.", exc.hint) from None


def answer(predictor: Any, data: bytes) -> bytes:
    """The answer of ``POST /api/predict`` for image bytes ``data``, as JSON bytes: the answer of
    :meth:`digitnet.predictor.Predictor.trace`, with ``image28`` (the network's input) and every
    layer's values. Raises :class:`~digitnet.errors.ImageError` for an image with no digit.

    orjson: thousands of numbers, ten times quicker than the standard library's encoder, and
    quicker still from NumPy's arrays than from lists.
    """
    import numpy as np
    import orjson

    from digitnet.image_io import SERVER_MAX_DECODED_BYTES

    # The answer is Predictor.read's, as digitnet predict --json prints it; the layers are the
    # first digit's (the only one, for a drawing of one digit). The server's decoded-image
    # budget is much smaller than the command line's: what strangers post is refused from its
    # header; the reader's own memory cap bounds the rest.
    layers: list[dict[str, Any]] = []
    result, images = predictor.read(data, layers=layers, max_bytes=SERVER_MAX_DECODED_BYTES)
    image = images[0]
    image28 = np.round(np.asarray(image, dtype=np.float64), 4)
    return orjson.dumps(
        {**result, "image28": image28, "layers": layers}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def _frame(data: bytes) -> bytes:
    """A message on a reader's socket: its length (4 bytes, big-endian), then its bytes."""
    return len(data).to_bytes(4, "big") + data


class _Reader:
    """One reader process, and the server's end of the socket to it (a Unix socket pair; the
    server's end is read and written through asyncio streams, so that waiting for an answer,
    or sending a large image, never blocks the event loop, whichever loop uvicorn runs)."""

    def __init__(self, context: Any, model: Path, data: bytes) -> None:
        ours, theirs = socket.socketpair()
        self.process = context.Process(
            target=_read_digits,
            args=(theirs, str(model), data),
            name="digitnet-reader",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self._socket = ours
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.answered = 0  # requests answered (an image with no digit counts: it was read)

    def _gone(self) -> ReaderDiedError:
        return ReaderDiedError(f"reader process {self.process.pid} ended")

    async def _message(self) -> bytes:
        assert self._streams is not None
        try:
            size = int.from_bytes(await self._streams[0].readexactly(4), "big")
            return await self._streams[0].readexactly(size)
        except (asyncio.IncompleteReadError, OSError):
            raise self._gone() from None

    async def ask(self, data: bytes) -> bytes:
        """The reader's answer for image bytes ``data`` (:func:`answer`)."""
        if self._streams is None:  # the first request: in the event loop that serves them all
            self._streams = await asyncio.open_connection(sock=self._socket)
            if await self._message() != READY:  # pragma: no cover - the protocol's first word
                raise self._gone()
        try:
            self._streams[1].write(_frame(data))
            await self._streams[1].drain()
        except OSError:
            raise self._gone() from None
        reply = await self._message()
        self.answered += 1
        kind, rest = reply[:1], reply[1:]
        if kind == NOT_A_DIGIT:
            raise ImageError(rest.decode())
        if kind == TOO_LARGE:
            raise ImageTooLargeError(rest.decode())
        return rest

    def hang_up(self) -> None:
        """Close the socket: the reader sees its end and returns (after its current request)."""
        if self._streams is not None:
            with contextlib.suppress(RuntimeError):  # (its event loop may have closed already)
                self._streams[1].close()
        self._socket.close()

    def stop(self, seconds: float = STOP_SECONDS) -> None:
        """Close the socket, wait up to ``seconds`` for the process to end, then kill it."""
        self.hang_up()
        self.process.join(timeout=seconds)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class Readers:
    """``count`` reader processes for ``model``, each answering one request at a time.

    :meth:`read` hands a request to the free reader that finished last (requests wait in turn
    when all are busy). Started here, at once: a reader takes about a second to load (Python,
    NumPy, the model), and the first request waits for it.
    """

    def __init__(self, model: Path, count: int, data: bytes | None = None) -> None:
        for name, value in MALLOC_ENVIRONMENT.items():
            os.environ.setdefault(name, value)  # read by glibc as each reader process starts
        self.model = Path(model)
        self.data = model_bytes(self.model) if data is None else data  # the one model
        self._context = multiprocessing.get_context("spawn")
        self._readers = [_Reader(self._context, self.model, self.data) for _ in range(count)]
        self._free: asyncio.Queue[_Reader] | None = None
        self._closed = False

    def __iter__(self) -> Iterator[_Reader]:
        """The readers now (``.process``: the process; ``.answered``: requests answered)."""
        return iter(list(self._readers))

    async def read(self, data: bytes) -> bytes:
        """:func:`answer` for ``data``, from a free reader.

        Raises :class:`~digitnet.errors.ImageError` if the image holds no digit, and
        :class:`ReaderDiedError` if the reader died while reading (it has been replaced).
        """
        if self._free is None:  # made here, inside the event loop that serves the requests
            self._free = asyncio.LifoQueue()  # last in, first out: the warmest reader first
            for reader in self._readers:
                self._free.put_nowait(reader)
        reader = await self._free.get()
        try:
            try:
                return await reader.ask(data)
            except ReaderDiedError:
                if self._closed:  # the server is stopping: no replacement
                    raise
                # Once more, on its replacement: a reader that died idle (killed, say) never saw
                # this image; an image that kills readers kills two, and gets the error.
                reader = self._replace(reader)
                return await reader.ask(data)
        except ReaderDiedError:
            if not self._closed:
                reader = self._replace(reader)
            raise
        except asyncio.CancelledError:
            # The request was given up (the server is stopping, say) while its reader was busy
            # with it: the answer would come to whoever asks that reader next. A fresh one.
            if not self._closed:
                reader = self._replace(reader, died=False)
            raise
        finally:
            self._free.put_nowait(reader)

    def _replace(self, reader: _Reader, died: bool = True) -> _Reader:
        reader.stop()
        if died:
            print(
                f"digitnet serve: reader process {reader.process.pid} ended (exit code "
                f"{reader.process.exitcode}); starting another",
                file=sys.stderr,
            )
        replacement = _Reader(self._context, self.model, self.data)
        self._readers[self._readers.index(reader)] = replacement
        return replacement

    def closing(self) -> None:
        """The server is stopping: readers that die or are given up are not replaced."""
        self._closed = True

    def close(self, seconds: float = STOP_SECONDS) -> None:
        """Stop every reader: each may finish the request it is reading within ``seconds``
        (all together), and is killed after."""
        self._closed = True
        for reader in self._readers:
            reader.hang_up()
        deadline = time.monotonic() + seconds
        for reader in self._readers:
            reader.stop(max(0.0, deadline - time.monotonic()))


def _cap_memory(extra: int) -> int:
    """Limit this process's address space to its size now plus ``extra`` bytes; the cap."""
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = size + extra
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def _read_digits(sock: socket.socket, model: str, data: bytes) -> None:
    """A reader process: answers each image that arrives on ``sock`` until it closes."""
    # Ctrl-C and the terminal's SIGTERM reach every process of the group; the server decides
    # when readers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from digitnet.predictor import Predictor

    try:
        predictor = Predictor(model, data=data)
    except DigitnetError as exc:  # (checked by the server already: not expected)
        message = " ".join(exc.message.split())
        print(f"digitnet serve: a reader cannot start: {message}", file=sys.stderr)
        return
    del data
    import numpy  # noqa: F401  (loaded before the cap, so the cap is measured from here)

    from digitnet.imaging import preprocess  # noqa: F401

    cap = _cap_memory(READER_MEMORY_BYTES)
    try:
        sock.sendall(_frame(READY))
        while True:
            image = _receive(sock)
            try:
                reply = ANSWER + answer(predictor, image)
            except DigitnetError as exc:
                reply = NOT_A_DIGIT + " ".join(exc.message.split()).encode()
            except MemoryError:
                reply = (
                    TOO_LARGE
                    + (
                        f"the image needs more memory to read than a reader of this server may use "
                        f"({cap / 2**20:,.0f} MB in all): send a smaller image."
                    ).encode()
                )
            del image
            sock.sendall(_frame(reply))
    except (EOFError, OSError):  # the server has closed its end, or gone
        return


def _receive(sock: socket.socket) -> bytes:
    """The next message on ``sock`` (see :func:`_frame`); ``EOFError`` at its end."""
    size = int.from_bytes(_exactly(sock, 4), "big")
    return _exactly(sock, size)


def _exactly(sock: socket.socket, n: int) -> bytes:
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError
        got += k
    return bytes(buffer)
