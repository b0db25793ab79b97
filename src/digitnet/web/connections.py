"""The connections of ``digitnet serve``: deadlines, a ceiling, and the open-file limit.

uvicorn's HTTP protocol (httptools) holds a connection as long as the client keeps it open: a
connection that never sends its request, or a body declared as 8 MB that stops after 7.9 MB,
is held forever, and enough of them use up the process's open files (1,024 by default), after
which nobody can connect and asyncio logs a traceback for every refused ``accept``. Here each
connection of :class:`Protocol` (uvicorn's, with three additions) is bounded:

- a **head deadline**: a request's line and headers must arrive within ``head_seconds`` of the
  connection opening (or of the previous answer on a kept-alive connection), else it is closed
  with a JSON 408;
- a **body deadline**: the body must arrive within ``body_seconds`` of its headers, else the
  connection is closed (the handler reading it sees the client gone, and logs one line);
- a **ceiling** of :func:`max_connections` open connections: a new connection beyond it closes
  the oldest *idle* ones (no request being answered: a browser reopens such a connection
  itself); when every connection is busy with a request, the new one gets a JSON 503.

:func:`raise_open_file_limit` lifts the soft open-file limit to the hard one when ``serve``
starts (the soft limit is only a default; the hard one is what the system allows), and the
ceiling stays well under it, so ``accept`` never fails for want of a file.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: the defaults of ``serve --timeout`` (the body deadline) and the head deadline
BODY_SECONDS = 30.0
HEAD_SECONDS = 10.0
#: at most this many connections, and this many files kept free below the open-file limit (the
#: readers' sockets, the model, the page's files, the runs being watched)
MAX_CONNECTIONS = 1000
SPARE_FILES = 128
#: an open-file limit of "unlimited" is raised to this
UNLIMITED_FILES = 65536


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - a limit the system refuses
            pass
    return UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft


def max_connections(open_files: int) -> int:
    """The ceiling on connections for a soft open-file limit of ``open_files``."""
    return max(16, min(MAX_CONNECTIONS, open_files - SPARE_FILES))


def _raw_json(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a body deadline and a ceiling on
    connections (see the module's text). Configured by :func:`configure`."""

    head_seconds = HEAD_SECONDS
    body_seconds = BODY_SECONDS
    ceiling = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._busy = False  # a request's head has arrived, its answer is not complete

    # -- the deadlines ----------------------------------------------------------------------
    def _arm(self, seconds: float, expired: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing() and not self._busy:
            message = f"the request's headers did not arrive within {self.head_seconds:g} s."
            self.transport.write(_raw_json(408, "Request Timeout", message))
            self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # the handler reading the body sees the client gone

    # -- uvicorn's hooks --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        order: dict[Protocol, None] = self.server_state.__dict__.setdefault("digitnet_order", {})
        order[self] = None
        self._arm(self.head_seconds, self._head_late)
        if len(self.connections) > self.ceiling:
            self._make_room(order)

    def _make_room(self, order: dict[Protocol, None]) -> None:
        """Close the oldest idle connections down to the ceiling; if all are busy, this one."""
        excess = len(self.connections) - self.ceiling
        for other in list(order):
            if excess <= 0:
                return
            if other is self:
                continue
            if other.transport.is_closing():  # (closed already, not yet forgotten)
                excess -= 1
            elif not other._busy:
                other.transport.close()
                excess -= 1
        if excess > 0:
            message = "the server is answering as many requests as it takes: try again shortly."
            self.transport.write(_raw_json(503, "Service Unavailable", message))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.server_state.__dict__.get("digitnet_order", {}).pop(self, None)
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._busy = True
        self._arm(self.body_seconds, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = False
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.head_seconds, self._head_late)


def configure(body_seconds: float, open_files: int) -> type[Protocol]:
    """A :class:`Protocol` class with these deadlines and the ceiling for ``open_files``."""
    return type(
        "Protocol",
        (Protocol,),
        {
            "body_seconds": body_seconds,
            "head_seconds": min(HEAD_SECONDS, body_seconds),
            "ceiling": max_connections(open_files),
        },
    )
