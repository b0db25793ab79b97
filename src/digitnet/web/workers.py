"""The worker processes behind ``digitnet serve``, and the sockets they listen on.

A worker is a Python process of its own (so with a GIL of its own) running uvicorn on the app of
:func:`digitnet.web.app.from_environment`. Reading a digit is a few milliseconds of CPU with the
GIL held, so the server answers as many requests at once as it has workers, one per core.

**One socket per worker.** A kept-alive connection stays with the worker that accepted it, so
the workers are only as evenly loaded as their connections. When all workers accept from one
shared socket (uvicorn's own ``--workers``), the worker that happens to be awake takes every
connection that arrives at once: measured here, 7 of 8 clients connecting together went to one
worker while the other stood idle, and their latency was that of one core. So on Linux each
worker has a socket of its own, all bound to the same port with ``SO_REUSEPORT``, and the kernel
gives each new connection to one of them by a hash of its addresses, as nginx's ``reuseport``
does. Elsewhere (where ``SO_REUSEPORT`` does not spread connections) the workers share one.

**Supervision.** :func:`run` starts the workers, starts another on the same socket when one
that was serving dies (the socket outlives its worker, so connections waiting in its queue are
answered by the next), stops the server if one dies before it could serve (it would only die
again), and stops them all on Ctrl-C or SIGTERM.

**Memory.** Each request allocates and frees a few arrays of 300 KB or more (the decoded canvas,
its grey copy). glibc returns such blocks to the kernel at once and maps them again on the next
request: 180 page faults and 0.2-0.4 ms per request, a fifth of its time. Workers start with
glibc's thresholds for that raised to 32 MB (its own ceiling for them), unless set already.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from typing import Any

#: the app every worker builds (an import string: workers are fresh interpreters)
APP = "digitnet.web.app:from_environment"
#: how long stopping waits for workers to finish their requests before it kills them
STOP_SECONDS = 5.0
#: glibc's malloc settings for the workers (see the module's description)
MALLOC_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(32 << 20),
}
#: whether sockets sharing a port through SO_REUSEPORT have their connections spread among them
BALANCED_PORTS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class ListenError(OSError):
    """The address cannot be listened on; ``str`` says why, ``host`` whether the host is not
    this machine's (rather than the port taken)."""

    def __init__(self, message: str, *, host: bool = False) -> None:
        super().__init__(message)
        self.host = host


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """Sockets listening on ``host:port`` (``port`` 0: any free port), one per worker where
    connections can be spread among sockets (:data:`BALANCED_PORTS`), else one shared.

    Raises :class:`ListenError` if ``host`` is not an address of this machine or the port is
    taken (by any other program, including another ``digitnet serve``).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"not an address this machine has ({exc})", host=True) from None
    family, kind, proto, _, address = infos[0]
    # First a plain socket: it fails if anything else holds the port, even sockets that share it
    # with SO_REUSEPORT (which would otherwise let a second server join the first one's port).
    first = _socket(family, kind, proto, address, reuse_port=False)
    if count == 1 or not BALANCED_PORTS:
        return [first]
    address = first.getsockname()  # the port it was given, for port 0
    first.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_socket(family, kind, proto, address, reuse_port=True))
    except ListenError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _socket(family: int, kind: int, proto: int, address: Any, *, reuse_port: bool) -> socket.socket:
    # proto must say TCP: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that
    # do, and with it on, every answer on a kept-alive connection waits 40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.strerror or str(exc)) from None
    sock.set_inheritable(True)
    return sock


def run(sockets: list[socket.socket], workers: int, options: dict[str, Any]) -> None:
    """Serve with ``workers`` processes until Ctrl-C or SIGTERM: worker ``k`` listens on
    ``sockets[k]`` (or all on ``sockets[0]`` when there is one); ``options`` are uvicorn's.

    Raises ``RuntimeError`` if a worker ends before it started serving.
    """
    for name, value in MALLOC_ENVIRONMENT.items():
        os.environ.setdefault(name, value)  # read by glibc as each worker process starts
    context = multiprocessing.get_context("spawn")
    slots = [sockets[k % len(sockets)] for k in range(workers)]

    def start(sock: socket.socket) -> tuple[Any, Any]:
        serving, said = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(sock, options, said), name="digitnet-worker")
        process.start()
        said.close()
        return process, serving

    previous = signal.signal(signal.SIGTERM, _interrupt)
    running: list[tuple[Any, Any]] = []
    try:
        running = [start(sock) for sock in slots]
        while True:
            ready = wait([process.sentinel for process, _ in running])
            for k, (process, serving) in enumerate(running):
                if process.sentinel not in ready:
                    continue
                process.join()
                started = serving.poll()
                serving.close()
                if not started:
                    raise RuntimeError(
                        f"a worker process ended as it started (exit code {process.exitcode}); "
                        "the lines above say why"
                    )
                print(
                    f"digitnet serve: worker {process.pid} ended (exit code "
                    f"{process.exitcode}); starting another",
                    file=sys.stderr,
                )
                running[k] = start(slots[k])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop([process for process, _ in running])


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server as Ctrl-C does


def _stop(processes: list[Any]) -> None:
    """Ask each worker to finish (SIGTERM: uvicorn closes its connections gracefully), then
    kill any still running after :data:`STOP_SECONDS`."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _work(sock: socket.socket, options: dict[str, Any], serving: Any) -> None:
    """A worker process: uvicorn serving the app on ``sock`` until SIGTERM or Ctrl-C; says so
    on the pipe ``serving`` once it has started."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # (uvicorn sets it as its startup ends well)
                serving.send(True)

    config = uvicorn.Config(APP, factory=True, **options)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches every process of the terminal
        Server(config).run(sockets=[sock])
