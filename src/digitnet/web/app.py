"""The local server of ``digitnet serve``: the page, and the JSON API it draws from.

Built on Starlette (an ASGI framework; ``digitnet serve`` runs it on uvicorn). Routes:

=====================================  ==========================================================
``GET  /``                             the page (``static/index.html``); ``/static/*`` its files
``GET  /api/model``                    the served model: layers in the seeds' names and shapes,
                                       and the model file's document (dataset, metrics, config)
``POST /api/predict``                  a PNG or JPEG body → the digit, ten probabilities, the
                                       28x28 image the network read, and every layer's output
``GET  /api/weights/{l}/{unit}``       row ``unit`` of ``Wˡ`` (its incoming weights) and ``bˡ``
``GET  /api/runs``                     the run folders under the runs folder, newest first
``GET  /api/runs/{name}/history``      a run's history rows, status, epochs done and planned
``GET  /api/runs/{name}/events``       the same as server-sent events, sent again on each change
``GET  /api/runs/{name}/weights.png``  ``W¹`` of the run's latest checkpoint as 28x28 tiles
``/api/backprop``, ``/api/step`` ...   the backward view: see :mod:`digitnet.web.teach`
=====================================  ==========================================================

``POST /api/predict`` answers exactly as ``digitnet predict --json`` does for the same file:
both go through :class:`digitnet.predictor.Predictor` and :func:`digitnet.imaging.preprocess`.
Errors are JSON ``{"error": "..."}`` with their status: 400 (not an image, or blank; or a
``Host`` this server does not answer to, below), 404 (unknown route, run, layer or unit), 405,
413 (body over :data:`MAX_BODY_BYTES`, or an image that needs more memory than a reader may use),
415 (a content type other than PNG or JPEG), 503 (the reader process died reading it, and its
replacement too: see :mod:`digitnet.web.readers`; the server is receiving
:data:`RECEIVING_BYTES` of other images already; or the server is stopping).

Only this machine's pages: a web page elsewhere can point its own domain name at 127.0.0.1
(DNS rebinding) and, being then "the same site" to the browser, read every answer. Such a
request still names that domain in its ``Host`` header, so :class:`HostGuard` answers only
requests whose ``Host`` is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``, any port)
or the ``--host`` the server was given (and, when that is a wildcard such as ``0.0.0.0``, an IP
address: a name is what rebinding needs, and an address cannot be rebound).

Run names from requests resolve only to folders directly inside
the runs folder (:func:`digitnet.web.runs.run_folder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from digitnet.errors import DigitnetError
from digitnet.web import runs, teach
from digitnet.web.readers import ImageTooLargeError, ReaderDiedError, Readers, model_bytes

STATIC = Path(__file__).parent / "static"
#: the largest request body /api/predict takes (a phone photo as JPEG is 2-5 MB)
MAX_BODY_BYTES = 8_000_000
#: a larger body is not read to its end before the 413 (the connection is closed instead)
DRAIN_BYTES = 8 * MAX_BODY_BYTES
#: the bodies being received at once may declare at most this many bytes in all (a body without
#: a Content-Length counts as MAX_BODY_BYTES): beyond it, a 503 at once, so that stalled uploads
#: can never hold more memory than this. Bodies up to SMALL_BODY_BYTES (a drawn digit is 5-30 KB)
#: have a budget of their own, so that large uploads, stalled or not, never keep the page's
#: drawings waiting.
RECEIVING_BYTES = 8 * MAX_BODY_BYTES
SMALL_BODY_BYTES = 256_000
RECEIVING_SMALL_BYTES = 64 * SMALL_BODY_BYTES
#: the content types /api/predict takes (image/jpg is a common misspelling of image/jpeg)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
#: how often the event stream looks at a run's files (seconds), and sends a keep-alive comment
WATCH_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _error(status: int, message: str, close: bool = False) -> JSONResponse:
    headers = {"Connection": "close"} if close else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _say(message: str) -> None:
    print(f"digitnet serve: {message}", file=sys.stderr, flush=True)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header (``name``, ``name:port``, ``[v6]`` or ``[v6]:port``),
    lower-cased, or None if the header is not of that form."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return None
    else:
        name, _, port = header.partition(":")
        if ":" in port:
            return None
        port = port if _ else None
    if not name or (port is not None and not port.isdigit()):
        return None
    return name.rstrip(".") if name.endswith(".") and name != "." else name


class HostGuard:
    """ASGI middleware: requests whose ``Host`` is not one this server answers to get a JSON
    400 (see the module's text). ``hosts``: the names allowed besides the loopback ones."""

    def __init__(self, app: Any, hosts: tuple[str, ...] = (), any_address: bool = False) -> None:
        self.app = app
        self.allowed = LOOPBACK_NAMES | {h.strip("[]").lower() for h in hosts}
        self.any_address = any_address

    def allows(self, header: str | None) -> bool:
        name = host_name(header) if header is not None else None
        if name is None:
            return False
        if name in self.allowed:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if not self.allows(header):
                message = (
                    "this server answers only to pages of this machine: the request's Host "
                    "header must be localhost, 127.0.0.1 or [::1] (or the --host it was started "
                    "with)."
                )
                if scope["type"] == "http":
                    await _error(400, message, close=True)(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


class App:
    """The state the routes share: the model (loaded once) and the runs folder."""

    def __init__(
        self, model: Path, runs_root: Path, served_run: str | None = None, readers: int = 1
    ) -> None:
        from digitnet.predictor import Predictor

        # One model: the bytes read (and checked) here are the ones every reader loads, whatever
        # happens to the file on disk later (a 'train --resume' rewriting it, say).
        data = model_bytes(model)
        self.predictor = Predictor(model, data=data)  # (a bad model fails here, before readers)
        self.model_path = model
        self.runs_root = runs_root
        self.served_run = served_run
        self.readers = Readers(model, readers, data=data)
        # bytes the bodies being received declare: large ones, small ones (RECEIVING_BYTES)
        self.receiving = {False: 0, True: 0}
        self.stopping = False
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _stopped(self) -> asyncio.Event:
        if self._stop_event is None:  # made inside the event loop that serves the requests
            self._stop_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            if self.stopping:
                self._stop_event.set()
        return self._stop_event

    def stop(self) -> None:
        """The server is stopping: requests waiting for a reader get a 503 now, event streams
        end. Safe to call from a signal handler."""
        self.stopping = True
        self.readers.closing()  # (a reader given up now is not replaced)
        if self._stop_event is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # (the loop has closed)
                self._loop.call_soon_threadsafe(self._stop_event.set)

    # -- the model ------------------------------------------------------------------------------
    async def model(self, request: Request) -> Response:
        p = self.predictor
        return JSONResponse(
            {
                "source": str(self.model_path),
                "architecture": p.net.architecture(),
                "layers": p.layer_table(),
                "classes": p.classes,
                "n_parameters": p.net.n_parameters,
                "metadata": p.doc,
                "limits": {"max_body_bytes": MAX_BODY_BYTES, "image_types": list(IMAGE_TYPES)},
            }
        )

    async def receive_image(self, request: Request) -> bytes | Response:
        """The image a request posts (``/api/predict``, and the backward view's
        ``/api/backprop``), or the error response to answer instead: a type that is not PNG or
        JPEG (415), more than MAX_BODY_BYTES (413, after the body is read and dropped up to
        DRAIN_BYTES), more of other uploads in flight than the receiving budget (503), a client
        gone or too slow (400), an empty body (400)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in IMAGE_TYPES:
            return _error(
                415,
                f"the body must be a PNG or JPEG image (Content-Type image/png or image/jpeg); "
                f"got {content_type or 'no Content-Type'}.",
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > DRAIN_BYTES:
            return _error(413, _too_big(int(declared), declared), close=True)
        reserve = min(int(declared), MAX_BODY_BYTES) if declared.isdigit() else MAX_BODY_BYTES
        small = reserve <= SMALL_BODY_BYTES
        budget = RECEIVING_SMALL_BYTES if small else RECEIVING_BYTES
        if self.receiving[small] + reserve > budget:
            return _error(
                503,
                f"the server is receiving {budget // 1_000_000} MB of other images already; "
                "send it again shortly.",
                close=True,
            )
        self.receiving[small] += reserve
        try:
            body, received = await self._body(request, declared)
        finally:
            self.receiving[small] -= reserve
        if body is None:
            return _error(400, "the body did not arrive whole.", close=True)
        if received > MAX_BODY_BYTES:
            # Answered after reading (and dropping) the body, up to DRAIN_BYTES: a client still
            # sending when the answer comes would see a reset connection, not the 413.
            return _error(413, _too_big(received, declared))
        if not body:
            return _error(400, "the body is empty: send the image's bytes.")
        return bytes(body)

    async def predict(self, request: Request) -> Response:
        body = await self.receive_image(request)
        if isinstance(body, Response):
            return body
        stopped = self._stopped()
        if stopped.is_set():
            return _error(503, "the server is stopping.", close=True)
        reading = asyncio.ensure_future(self.readers.read(body))  # in a reader (readers.py)
        stopping = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not reading.done():
            reading.cancel()
            return _error(503, "the server is stopping: the image was not read.", close=True)
        try:
            answer = reading.result()
        except DigitnetError as exc:
            return _error(400, " ".join(exc.message.split()))
        except ImageTooLargeError as exc:
            return _error(413, str(exc))
        except ReaderDiedError as exc:
            return _error(503, f"the image could not be read: {exc}; send it again.")
        return Response(answer, media_type="application/json")

    async def _body(self, request: Request, declared: str) -> tuple[bytearray | None, int]:
        """The body, up to MAX_BODY_BYTES (the rest, up to DRAIN_BYTES, read and dropped),
        and how many bytes came; ``None`` if the client went (or missed the body deadline of
        :mod:`digitnet.web.connections`): said in one line."""
        body = bytearray()
        received = 0
        start = time.monotonic()
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received <= MAX_BODY_BYTES:
                    body += chunk
                elif received > DRAIN_BYTES:
                    break
        except ClientDisconnect:
            of = f" of {int(declared):,}" if declared.isdigit() else ""
            _say(
                f"a client's upload ended after {received:,}{of} bytes and "
                f"{time.monotonic() - start:.1f} s (it closed the connection, or was too slow)"
            )
            return None, received
        return body, received

    async def weights(self, request: Request) -> Response:
        l_index, unit = request.path_params["layer"], request.path_params["unit"]
        try:
            w, b = self.predictor.incoming(l_index, unit)
        except IndexError as exc:
            return _error(404, str(exc))
        from digitnet.network import seed_name
        from digitnet.predictor import json_float

        return JSONResponse(
            {
                "layer": l_index,
                "unit": unit,
                "name": seed_name("W", l_index),
                "weights": [json_float(v) for v in w],
                "bias": json_float(b),
                "n_in": int(w.size),
            }
        )

    # -- the runs -------------------------------------------------------------------------------
    def _folder(self, request: Request) -> Path:
        try:
            return runs.run_folder(self.runs_root, request.path_params["name"])
        except runs.RunNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    async def list_runs(self, request: Request) -> Response:
        states = await run_in_threadpool(runs.list_runs, self.runs_root)
        return JSONResponse(
            {
                "root": str(self.runs_root),
                "served": self.served_run,
                "runs": [s.summary() for s in states],
            }
        )

    async def history(self, request: Request) -> Response:
        folder = self._folder(request)
        state = await run_in_threadpool(runs.read_run, folder)
        return JSONResponse(state.history())

    async def events(self, request: Request) -> Response:
        folder = self._folder(request)
        return StreamingResponse(
            self._watch(request, folder),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _watch(self, request: Request, folder: Path) -> AsyncIterator[str]:
        """A ``history`` event now and after each change of the run's files; ``done`` at the
        end of training. Looks at the files' sizes and times every :data:`WATCH_SECONDS`."""
        last: tuple | None = None
        quiet = 0.0
        stopped = self._stopped()
        while not stopped.is_set() and not await request.is_disconnected():
            sig = runs.signature(folder)
            if sig != last:
                last = sig
                state = await run_in_threadpool(runs.read_run, folder)
                yield f"event: history\ndata: {json.dumps(state.history())}\n\n"
                if state.status == "finished":
                    yield "event: done\ndata: {}\n\n"
                    return
                quiet = 0.0
            elif quiet >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet = 0.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopped.wait(), WATCH_SECONDS)
            quiet += WATCH_SECONDS

    async def weights_png(self, request: Request) -> Response:
        folder = self._folder(request)
        try:
            W = await run_in_threadpool(runs.first_weights, folder)
        except FileNotFoundError as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(409, str(exc))
        png = await run_in_threadpool(runs.weights_png, W)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


class _Static(StaticFiles):
    """The page's files, revalidated on every load (no-cache: a browser may keep them but asks
    whether they changed), so a new digitnet's page never runs an old script."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _too_big(received: int, declared: str) -> str:
    size = f"{int(declared):,} bytes" if declared.isdigit() else f"over {received:,} bytes"
    return f"the image is {size}; the limit is {MAX_BODY_BYTES:,}: send a smaller PNG or JPEG."


async def _http_error(request: Request, exc: Exception) -> Response:
    status, detail = getattr(exc, "status_code", 500), getattr(exc, "detail", str(exc))
    if request.url.path.startswith("/api/") or status != 404:
        return _error(status, str(detail))
    return _error(404, f"nothing at {request.url.path}; the page is at /")


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(500, f"the server failed: {type(exc).__name__}: {exc}")


def create_app(
    model: Path,
    runs_root: Path,
    served_run: str | None = None,
    readers: int = 1,
    hosts: tuple[str, ...] = (),
    any_address: bool = False,
) -> Starlette:
    """The ASGI application serving ``model`` and the run folders under ``runs_root``, with
    ``readers`` processes reading the digits posted to it (:mod:`digitnet.web.readers`); they
    stop when the application does (its lifespan's end). It answers requests whose ``Host`` is
    a loopback name, one of ``hosts``, or (``any_address``) any IP address (:class:`HostGuard`).
    ``app.state.stop()`` says the server is stopping (in-flight predictions get a 503)."""
    app = App(Path(model), Path(runs_root), served_run, readers)
    routes = [
        Route("/", app.page, methods=["GET", "HEAD"]),
        Route("/api/model", app.model, methods=["GET"]),
        Route("/api/predict", app.predict, methods=["POST"]),
        Route("/api/weights/{layer:int}/{unit:int}", app.weights, methods=["GET"]),
        Route("/api/runs", app.list_runs, methods=["GET"]),
        Route("/api/runs/{name}/history", app.history, methods=["GET"]),
        Route("/api/runs/{name}/events", app.events, methods=["GET"]),
        Route("/api/runs/{name}/weights.png", app.weights_png, methods=["GET"]),
        Mount("/static", _Static(directory=STATIC), name="static"),
    ]
    routes[-1:-1] = teach.Teacher(app).routes()  # the backward view's API (web/teach.py)
    starlette = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=_lifespan(app),
        middleware=[Middleware(HostGuard, hosts=hosts, any_address=any_address)],
    )
    starlette.state.readers = app.readers
    starlette.state.stop = app.stop
    return starlette


def _lifespan(app: App) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.readers.close()

    return lifespan
