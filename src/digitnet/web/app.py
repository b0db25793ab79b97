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
Errors are JSON ``{"error": "..."}`` with their status: 400 (not an image, or blank), 404
(unknown route, run, layer or unit), 405, 413 (body over :data:`MAX_BODY_BYTES`), 415 (a content
type other than PNG or JPEG), 503 (the reader process died reading it, and its replacement too:
see :mod:`digitnet.web.readers`). Run names from requests resolve only to folders directly inside
the runs folder (:func:`digitnet.web.runs.run_folder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from digitnet.errors import DigitnetError
from digitnet.web import runs, teach
from digitnet.web.readers import ReaderDiedError, Readers

STATIC = Path(__file__).parent / "static"
#: the largest request body /api/predict takes (a phone photo as JPEG is 2-5 MB)
MAX_BODY_BYTES = 8_000_000
#: a larger body is not read to its end before the 413 (the connection is closed instead)
DRAIN_BYTES = 8 * MAX_BODY_BYTES
#: the content types /api/predict takes (image/jpg is a common misspelling of image/jpeg)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
#: how often the event stream looks at a run's files (seconds), and sends a keep-alive comment
WATCH_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class App:
    """The state the routes share: the model (loaded once) and the runs folder."""

    def __init__(
        self, model: Path, runs_root: Path, served_run: str | None = None, readers: int = 1
    ) -> None:
        from digitnet.predictor import Predictor

        self.predictor = Predictor(model)  # (a bad model fails here, before any reader starts)
        self.model_path = model
        self.runs_root = runs_root
        self.served_run = served_run
        self.readers = Readers(model, readers)

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

    async def predict(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in IMAGE_TYPES:
            return _error(
                415,
                f"the body must be a PNG or JPEG image (Content-Type image/png or image/jpeg); "
                f"got {content_type or 'no Content-Type'}.",
            )
        body = bytearray()
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received <= MAX_BODY_BYTES:
                body += chunk
            elif received > DRAIN_BYTES:
                break
        if received > MAX_BODY_BYTES:
            # Answered after reading (and dropping) the body, up to DRAIN_BYTES: a client still
            # sending when the answer comes would see a reset connection, not the 413.
            return _error(413, _too_big(received, request.headers.get("content-length", "")))
        if not body:
            return _error(400, "the body is empty: send the image's bytes.")
        try:
            answer = await self.readers.read(bytes(body))  # in a reader process (readers.py)
        except DigitnetError as exc:
            return _error(400, " ".join(exc.message.split()))
        except ReaderDiedError as exc:
            return _error(503, f"the image could not be read: {exc}; send it again.")
        return Response(answer, media_type="application/json")

    async def weights(self, request: Request) -> Response:
        l_index, unit = request.path_params["layer"], request.path_params["unit"]
        try:
            w, b = self.predictor.incoming(l_index, unit)
        except IndexError as exc:
            return _error(404, str(exc))
        from digitnet.predictor import json_float

        return JSONResponse(
            {
                "layer": l_index,
                "unit": unit,
                "name": f"W{l_index}",
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
        while not await request.is_disconnected():
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
            await asyncio.sleep(WATCH_SECONDS)
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
    model: Path, runs_root: Path, served_run: str | None = None, readers: int = 1
) -> Starlette:
    """The ASGI application serving ``model`` and the run folders under ``runs_root``, with
    ``readers`` processes reading the digits posted to it (:mod:`digitnet.web.readers`); they
    stop when the application does (its lifespan's end)."""
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
    )
    starlette.state.readers = app.readers
    return starlette


def _lifespan(app: App) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.readers.close()

    return lifespan
