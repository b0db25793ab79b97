"""Teaching the served model one digit at a time: the backward view's API of ``digitnet serve``.

Each browser tab gets a *session*: a random, unguessable id made here (128 bits from
:func:`secrets.token_urlsafe`) and its own copy of the served network. Steps change that copy
only: the model file on disk, the readers that answer ``/api/predict``, other tabs, other users
and the command line never see it. The numbers come from :mod:`digitnet.explain` (one backward
pass, the library's own ``Network.forward`` and layers' ``backward``); this module only keeps the
copies, checks requests and turns the library's arrays into JSON.

Routes (JSON; errors ``{"error": ...}`` with 400, 404, 413 or 415, as for ``/api/predict``):

===============================================  =================================================
``POST /api/backprop?label=&alpha=&session=``    a PNG or JPEG body (as ``/api/predict``): the
                                                 backward pass for that digit and label on this
                                                 session's copy (a new session without one)
``GET  /api/backprop/{l}/{unit}?session=``       row ``unit`` of ``dWˡ`` for the session's digit
``GET  /api/gradcheck?session=&unit=``           finite differences against backpropagation
``POST /api/step``                               ``{"session", "steps", "until", "label",
                                                 "alpha"}``: ``θ := θ - α dθ`` once, ``steps``
                                                 times, or until it reads the label (at most
                                                 :data:`MAX_STEPS`), with before and after
``POST /api/reset``                              ``{"session"}``: back to the served model
``POST /api/save``                               ``{"session"}``: the taught copy as a new model
                                                 file in the runs folder
===============================================  =================================================

Where the sessions live, and why: in the HTTP process, each request's work in a thread
(:func:`starlette.concurrency.run_in_threadpool`), never on the event loop. A session is state
(its copy of the model), and the reader processes of :mod:`digitnet.web.readers` are
interchangeable on purpose (any free reader takes the next digit); keeping copies in readers would
tie each tab to one reader and break that. A step on 784-512-256-10 is a few matrix-vector
products and one outer product per layer (about a millisecond of NumPy, which leaves the GIL
during the products); the accuracy on the 1,000 test digits is one batched forward pass, once
per step request (after the steps; "before" is the previous answer's "after").

Memory: at most :data:`MAX_SESSIONS` copies (the least recently used is forgotten when another
is needed) and a copy idle for :data:`IDLE_SECONDS` is forgotten; each copy holds the parameters
and their gradients, about ``2 x`` the model's parameter bytes (:meth:`Sessions.bytes_bound`).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the most sessions (model copies) kept at once; the least recently used goes first
MAX_SESSIONS = 16
#: a session not used for this long is forgotten (seconds)
IDLE_SECONDS = 30 * 60.0
#: the largest learning rate α a request may set (as digitnet.explain: the sigmoid-mse preset
#: trains with α = 3; far larger steps only overshoot)
MAX_ALPHA = 100.0
#: α when a request sets none, for a model not trained by plain gradient descent (Adam's α is
#: not a step size θ - α dθ takes well): one step moves a trained 784-512-256-10 visibly
DEFAULT_ALPHA = 0.02
#: the optimisers whose learning rate is the α of θ := θ - α dθ (with momentum, near enough):
#: a model trained by one of them is taught with its own α (the sigmoid-mse preset's is 3)
_GD_OPTIMISERS = ("gd", "sgd", "momentum", "nesterov")
#: the most steps one request may take ("step until it reads N" stops here): each is a forward
#: and backward pass of one digit and two forward passes to see where it is (about 1.5 ms for
#: 784-512-256-10), so a request stays well under half a second
MAX_STEPS = 100
#: the largest JSON body of /api/step, /api/reset, /api/save
MAX_JSON_BYTES = 4096
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class RequestError(ValueError):
    """A request this module refuses: its HTTP status and a message for the learner."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    """One tab's copy of the model, and the digit and label it was last shown."""

    id: str
    net: Any  # digitnet.network.Network, this session's own copy
    X: np.ndarray | None = None  # the digit, (784, 1) in the network's dtype
    label: int | None = None
    alpha: float = DEFAULT_ALPHA
    steps: list[dict[str, Any]] = field(default_factory=list)  # what was done, for save
    score: tuple[float, float] | None = None  # (accuracy, cost) of net on the 1,000 test digits
    used: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n_steps(self) -> int:
        return sum(int(s["steps"]) for s in self.steps)


class Sessions:
    """The sessions of one server: at most ``limit``, each forgotten after ``idle`` seconds.

    Thread-safe: requests run in threads. ``clock`` is for tests (a fake time).
    """

    def __init__(
        self,
        original: Any,
        limit: int = MAX_SESSIONS,
        idle: float = IDLE_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.original = original
        self.limit = limit
        self.idle = idle
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def copy_of_original(self) -> Any:
        """A fresh copy of the served network (no training buffers: they come with use)."""
        from digitnet.explain import copy_network

        return copy_network(self.original)

    def open(self, alpha: float = DEFAULT_ALPHA) -> Session:
        """A new session with its own copy of the model."""
        net = self.copy_of_original()  # outside the lock: a few milliseconds
        session = Session(id=secrets.token_urlsafe(16), net=net, alpha=alpha, used=self.clock())
        with self._lock:
            self._forget_idle()
            while len(self._sessions) >= self.limit:
                self._sessions.popitem(last=False)  # the least recently used
            self._sessions[session.id] = session
        return session

    def get(self, sid: Any) -> Session:
        """The session ``sid``; :class:`RequestError` 404 if it is unknown or was forgotten."""
        if not isinstance(sid, str) or not _SESSION_ID.match(sid):
            raise RequestError(400, "session must be the id a /api/backprop answer gave.")
        with self._lock:
            self._forget_idle()
            session = self._sessions.get(sid)
            if session is None:
                raise RequestError(
                    404,
                    f"no session {sid}: it expired (idle over {self.idle / 60:g} minutes, or "
                    f"one of more than {self.limit} sessions) or never existed; start again "
                    "with /api/backprop (the page does this when you draw).",
                )
            self._sessions.move_to_end(sid)
            session.used = self.clock()
            return session

    def _forget_idle(self) -> None:
        now = self.clock()
        for sid in [s.id for s in self._sessions.values() if now - s.used > self.idle]:
            del self._sessions[sid]

    def bytes_bound(self) -> int:
        """The most memory the sessions' copies hold: limit x (parameters + gradients)."""
        n_bytes = sum(theta.nbytes for _, theta, _ in self.original.parameters())
        return self.limit * 2 * n_bytes


# -- checking what a request asks ------------------------------------------------------------------
def parse_label(value: Any, n_classes: int = 10) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,3}\s*", value):
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < n_classes:
        raise RequestError(400, f"label must be a digit from 0 to {n_classes - 1}; got {value!r}.")
    return value


def parse_alpha(value: Any) -> float:
    try:
        alpha = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        alpha = math.nan
    if not (math.isfinite(alpha) and 0 < alpha <= MAX_ALPHA):
        raise RequestError(
            400,
            f"alpha (the learning rate α) must be a number above 0 and at most "
            f"{MAX_ALPHA:g}; got {value!r}.",
        )
    return alpha


def parse_steps(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
        raise RequestError(
            400, f"steps must be a whole number from 1 to {MAX_STEPS}; got {value!r}."
        )
    return value


def parse_unit(value: Any, n: int, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise RequestError(404, f"{what} has units 0 to {n - 1}; got {value!r}.")
    return value


def default_alpha(doc: dict[str, Any]) -> float:
    """The α a new session starts with: the model's own training learning rate if it was trained
    by gradient descent (:data:`_GD_OPTIMISERS`), else :data:`DEFAULT_ALPHA`."""
    config = doc.get("config")
    config = config if isinstance(config, dict) else {}
    lr = config.get("learning_rate")
    number = isinstance(lr, int | float) and not isinstance(lr, bool)
    if config.get("optimizer") in _GD_OPTIMISERS and number and 0 < lr <= MAX_ALPHA:
        return float(lr)
    return DEFAULT_ALPHA


def new_model_path(root: Path, base: str, when: float | None = None) -> Path:
    """A name for a taught model in ``root`` that no file has yet (it is claimed atomically by
    :func:`write_new`): ``BASE-taught-YYYYMMDD-HHMMSS.safetensors``, ``-2``, ``-3`` if taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", base)[:80] or "model"
    return root / f"{base}-taught-{stamp}.safetensors"


def write_new(path: Path, data: bytes) -> Path:
    """Write ``data`` as a NEW file at ``path`` (or ``-2``, ``-3``... if it exists), atomically:
    a temporary file in the same folder, flushed, then hard-linked to its name, which fails
    rather than replace an existing file. Returns the path written."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        stem, suffix = path.name[: -len(".safetensors")], ".safetensors"
        for k in range(1, 1000):
            target = path if k == 1 else path.with_name(f"{stem}-{k}{suffix}")
            try:
                os.link(tmp, target)  # never over an existing file: link fails if it exists
            except FileExistsError:
                continue
            return target
        raise FileExistsError(f"{path}: 999 taught models of that name already exist")
    finally:
        Path(tmp).unlink(missing_ok=True)


# -- the routes --------------------------------------------------------------------------------
class Teacher:
    """The routes of the backward view, for the server's :class:`digitnet.web.app.App`."""

    def __init__(self, app: Any, limit: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self.app = app
        self.sessions = Sessions(app.predictor.net, limit, idle)
        self.default_alpha = default_alpha(app.predictor.doc)
        self._original_score: tuple[float, float] | None = None

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [
            Route("/api/backprop", self.backprop, methods=["POST"]),
            Route("/api/backprop/{layer:int}/{unit:int}", self.dW_row, methods=["GET"]),
            Route("/api/gradcheck", self.gradcheck, methods=["GET"]),
            Route("/api/step", self.step, methods=["POST"]),
            Route("/api/reset", self.reset, methods=["POST"]),
            Route("/api/save", self.save, methods=["POST"]),
        ]

    # -- the requests --------------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in a thread (never on the event loop), its answer as JSON bytes, or
        its :class:`RequestError` as a JSON error."""
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse, Response

        try:
            doc = await run_in_threadpool(fn, *args)
        except RequestError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return Response(_dumps(doc), media_type="application/json")

    async def _json_body(self, request: Any) -> dict[str, Any]:
        import json

        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(
                415,
                f"the body must be JSON (Content-Type application/json); got "
                f"{content_type or 'no Content-Type'}.",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_JSON_BYTES:
                raise RequestError(413, f"the JSON body is over {MAX_JSON_BYTES} bytes.")
        try:
            doc = json.loads(bytes(body) or b"null")
        except ValueError as exc:
            raise RequestError(400, f"the body is not JSON: {exc}.") from None
        if not isinstance(doc, dict):
            raise RequestError(400, 'the body must be a JSON object, like {"session": "..."}.')
        return doc

    async def backprop(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        from digitnet.errors import DigitnetError

        q = request.query_params
        try:
            label = parse_label(q["label"]) if q.get("label", "") != "" else None
            alpha = parse_alpha(q["alpha"]) if q.get("alpha", "") != "" else None
            session = self.sessions.get(q["session"]) if q.get("session") else None
        except RequestError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        body = await self.app.receive_image(request)  # as /api/predict receives it
        if not isinstance(body, bytes):
            return body

        def work() -> dict[str, Any]:
            from digitnet.imaging import preprocess, to_column

            try:
                image = preprocess(body)
            except DigitnetError as exc:
                raise RequestError(400, " ".join(exc.message.split())) from None
            s = session if session is not None else self.sessions.open(self.default_alpha)
            with s.lock:
                s.X = s.net.check_input(to_column(image))
                if alpha is not None:
                    s.alpha = alpha
                s.label = label if label is not None else self._prediction(s)
                return {**self._backward_doc(s), "image28": np.asarray(image, np.float64)}

        return await self._run(work)

    async def dW_row(self, request: Any) -> Any:
        l_index, unit = request.path_params["layer"], request.path_params["unit"]
        sid = request.query_params.get("session")

        def work() -> dict[str, Any]:
            s = self._ready(sid)
            with s.lock:
                dense = s.net.dense_layers
                if not 1 <= l_index <= len(dense):
                    raise RequestError(
                        404, f"layer {l_index}: the network has dense layers 1 to {len(dense)}"
                    )
                u = parse_unit(unit, dense[l_index - 1].n_out, f"layer {l_index}")
                from digitnet import explain

                lb = explain.backward_pass(s.net, s.X, s.label).layers[l_index - 1]
                return {
                    "session": s.id,
                    "layer": l_index,
                    "unit": u,
                    "name": f"dW{l_index}",
                    "dZ": float(lb.dZ[u, 0]),
                    "dW": _f64(lb.dW[u]),  # = 1/m dZˡ[u]·Aˡ⁻¹ᵀ: for l = 1, the drawing x dZ¹[u]
                    "db": float(lb.db[u, 0]),
                }

        return await self._run(work)

    async def gradcheck(self, request: Any) -> Any:
        q = request.query_params

        def work() -> dict[str, Any]:
            s = self._ready(q.get("session"))
            with s.lock:  # what to check; the check itself (0.1-0.3 s) runs on a float64 copy
                net, X, label, n_steps = s.net, s.X, s.label, s.n_steps
            n1 = net.dense_layers[0].n_out
            unit = parse_unit(q["unit"], n1, "layer 1") if q.get("unit") else None
            return self._gradcheck_doc(s.id, net, X, label, n_steps, unit)

        return await self._run(work)

    async def _on_json(self, request: Any, work: Any) -> Any:
        """The JSON object a request posts, handed to ``work(doc)`` in a thread (see
        :meth:`_run`); a body that is not one is the JSON error :meth:`_json_body` says."""
        try:
            doc = await self._json_body(request)
        except RequestError as exc:
            return await self._run(_raise, exc)
        return await self._run(work, doc)

    async def step(self, request: Any) -> Any:
        return await self._on_json(request, self._take_steps)

    async def reset(self, request: Any) -> Any:
        return await self._on_json(request, self._reset)

    async def save(self, request: Any) -> Any:
        return await self._on_json(request, self._save_copy)

    def _take_steps(self, doc: dict[str, Any]) -> dict[str, Any]:
        s = self._ready(doc.get("session"))
        until = doc.get("until", False)
        if not isinstance(until, bool):
            raise RequestError(400, f"until must be true or false; got {until!r}.")
        steps = parse_steps(doc["steps"]) if "steps" in doc else (MAX_STEPS if until else 1)
        with s.lock:
            if doc.get("label") is not None:
                s.label = parse_label(doc["label"])
            if doc.get("alpha") is not None:
                s.alpha = parse_alpha(doc["alpha"])
            return self._step_doc(s, steps, until)

    def _reset(self, doc: dict[str, Any]) -> dict[str, Any]:
        s = self.sessions.get(doc.get("session"))
        net = self.sessions.copy_of_original()
        with s.lock:
            s.net, s.steps, s.score = net, [], None
            if s.X is None:
                return {"session": s.id, "steps_taken": 0}
            return self._backward_doc(s)

    def _save_copy(self, doc: dict[str, Any]) -> dict[str, Any]:
        s = self.sessions.get(doc.get("session"))
        with s.lock:
            if not s.steps:
                raise RequestError(
                    400, "this tab's copy is the served model itself: take a step first."
                )
            return self._save(s)

    # -- the numbers, from digitnet.explain ---------------------------------------------------
    def _prediction(self, s: Session) -> int:
        """The copy's prediction for the session's digit (the label until one is chosen)."""
        return int(np.argmax(s.net.predict_proba(s.X)[:, 0]))

    def _backward_doc(self, s: Session) -> dict[str, Any]:
        """Every quantity of the backward pass for the session's digit and label, as JSON:
        vectors whole, ``dWᴸ`` whole, each other ``dWˡ`` summarised (its norm, its rows' norms,
        its largest and smallest entries: with ``A_prev`` and ``dZ``, which come whole, a test
        recomputes all of it as ``dZ·A_prevᵀ``)."""
        from digitnet import explain

        bp = explain.backward_pass(s.net, s.X, s.label)
        snap = explain.snapshot(s.net, s.X, s.label)
        L = len(bp.layers)
        layers = [_layer_doc(k + 1, lb, last=k + 1 == L) for k, lb in enumerate(bp.layers)]
        out = bp.layers[-1]
        return {
            "session": s.id,
            "label": s.label,
            "alpha": s.alpha,
            "steps_taken": s.n_steps,
            "max_alpha": MAX_ALPHA,
            "max_steps": MAX_STEPS,
            "m": bp.m,
            "dtype": bp.dtype,
            "cost": {"kind": bp.cost, "label_smoothing": bp.label_smoothing},
            "C": bp.C,
            "prediction": int(bp.prediction[0]),
            "probabilities": _f64(snap.probabilities[:, 0]),
            "output": {
                "activation": bp.output,
                "equation": bp.output_equation,
                "formula": "A - Y" if bp.fused else "2/n (A - Y) * g'(Z)",
                "A": _f64(out.A[:, 0]),
                "Y": _f64(bp.Y[:, 0]),
                "dZ": _f64(out.dZ[:, 0]),
            },
            "layers": layers,
        }

    def _gradcheck_doc(
        self, sid: str, net: Any, X: np.ndarray, label: int, n_steps: int, unit: int | None
    ) -> dict[str, Any]:
        """The gradient check of ``net`` (a session's copy: steps replace it, never change it
        in place, so it needs no lock) on ``X`` and ``label``."""
        from digitnet import explain

        g = explain.gradient_check(net, X, label, unit=unit)
        checked = [p for c in g.layers for p in (c.W, c.b)] + [g.row]
        return {
            "session": sid,
            "label": label,
            "steps_taken": n_steps,
            "epsilon": g.h,
            "max_relative_error": g.max_relative_error,
            "ok": g.ok,
            # how large the gradients are, and how far apart the two answers, in absolute terms:
            # once the digit reads right the gradients are tiny, and finite differences of a cost
            # near 0 lose their last digits to rounding (a relative error of 1e-4 then means
            # two answers 1e-10 apart)
            "max_abs_gradient": max(float(np.abs(p.backprop).max(initial=0)) for p in checked),
            "max_abs_difference": max(
                float(np.abs(p.backprop - p.numeric).max(initial=0)) for p in checked
            ),
            "evaluations": g.evaluations,
            "seconds": g.seconds,
            "layers": [
                {
                    "l": k + 1,
                    "max_relative_error": c.relative_error,
                    "W": c.W.relative_error,
                    "b": c.b.relative_error,
                    "n_checked": int(c.W.indices.size + c.b.indices.size),
                }
                for k, c in enumerate(g.layers)
            ],
            "row": {
                "unit": g.unit,
                "n": int(g.row.indices.size),
                "max_relative_error": g.row.relative_error,
            },
        }

    def _step_doc(self, s: Session, steps: int, until: bool) -> dict[str, Any]:
        from digitnet import explain

        target = s.label if until else None
        # The accuracy on the 1,000 test digits is the costly part of a step (a forward pass of
        # 1,000 digits, ten times the step itself): measured once per set of weights, after
        # each request's steps, and kept for the next request's "before".
        before_score = s.score if s.score is not None else self._score(s.net, s.n_steps == 0)
        try:
            res = explain.take_steps(
                s.net, s.X, s.label, s.alpha, steps=steps, until=target, accuracy=False
            )
        except Exception as exc:  # pragma: no cover - the request was checked above
            from digitnet.errors import DigitnetError

            if isinstance(exc, DigitnetError):
                raise RequestError(400, " ".join(exc.message.split())) from None
            raise
        after = explain.snapshot(res.net, s.X, s.label, accuracy=True)
        s.net = res.net  # this tab's copy moves on; the served model never does
        s.score = (after.accuracy, after.sample_cost)
        res.before.accuracy, res.before.sample_cost = before_score
        if res.steps:
            s.steps.append({"steps": res.steps, "label": s.label, "alpha": s.alpha})
        res.after = after
        reached = bool(res.after.prediction[0] == s.label)
        return {
            "session": s.id,
            "label": s.label,
            "alpha": s.alpha,
            "steps": res.steps,
            "until": until,
            "reached": reached,
            "diverged": res.diverged,
            "before": _snapshot_doc(res.before, s.label),
            "after": _snapshot_doc(res.after, s.label),
            "costs": [h.C for h in res.history],
            "predictions": [int(h.prediction[0]) for h in res.history],
            "backprop": self._backward_doc(s),
        }

    def _save(self, s: Session) -> dict[str, Any]:
        import hashlib

        from digitnet.modelfile import RESERVED_FIELDS, to_bytes

        app = self.app
        original = app.predictor.doc
        source = Path(app.model_path)
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            digest = None
        metadata = {
            k: v for k, v in original.items() if k not in RESERVED_FIELDS and k != "metrics"
        }
        metadata["derived_from"] = {
            "model": str(source),
            "sha256": digest,
            "metrics": original.get("metrics"),
            "how": (
                f"taught in digitnet serve's backward view: {s.n_steps} gradient-descent "
                "step(s) θ := θ - α dθ on one drawn digit (batch m = 1), see 'steps'"
            ),
            "steps": s.steps,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        data = to_bytes(s.net, metadata)
        root = Path(app.runs_root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            base = app.served_run or source.stem
            path = write_new(new_model_path(root, base), data)
        except OSError as exc:
            raise RequestError(
                400, f"cannot write a new model in {root}: {exc.strerror or exc}."
            ) from None
        return {
            "session": s.id,
            "path": str(path),
            "name": path.name,
            "bytes": len(data),
            "steps_taken": s.n_steps,
            "derived_from": metadata["derived_from"],
        }

    def _score(self, net: Any, original: bool) -> tuple[float, float]:
        """(accuracy, cost) of ``net`` on the 1,000 test digits; the served model's, once."""
        from digitnet import explain

        if original and self._original_score is not None:
            return self._original_score
        X, y = explain.accuracy_sample(net.dtype)
        snap = explain.snapshot(net, X[:, :1], y[:1], accuracy=True)
        score = (snap.accuracy, snap.sample_cost)
        if original:
            self._original_score = score
        return score

    # -- helpers ---------------------------------------------------------------------------------
    def _ready(self, sid: Any) -> Session:
        s = self.sessions.get(sid)
        if s.X is None:  # pragma: no cover - a session is made with its digit
            raise RequestError(400, "this session has no digit yet: post one to /api/backprop.")
        return s


def _raise(exc: Exception) -> Any:
    raise exc


def _f64(a: Any) -> np.ndarray:
    """Float64 for JSON: a float32 value widened is exact, and its decimal reads back the same."""
    return np.asarray(a, dtype=np.float64)


def _extreme(dW: np.ndarray, k: int) -> dict[str, Any]:
    row, col = divmod(k, dW.shape[1])
    return {"value": float(dW[row, col]), "row": int(row), "col": int(col)}


def _layer_doc(l_index: int, lb: Any, last: bool) -> dict[str, Any]:
    """One dense layer's backward quantities (a :class:`digitnet.explain.DenseBackward`)."""
    dW = np.asarray(lb.dW, dtype=np.float64)
    doc: dict[str, Any] = {
        "l": l_index,
        "n_in": int(dW.shape[1]),
        "n_out": int(dW.shape[0]),
        "activation": lb.activation,
        "A_prev": _f64(lb.A_prev[:, 0]),
        "Z": _f64(lb.Z[:, 0]),
        "A": _f64(lb.A[:, 0]),
        "g_prime": None if lb.g_prime is None else _f64(lb.g_prime[:, 0]),
        "off": int(lb.off[0]),
        "saturated": int(lb.saturated[0]),
        "dZ": _f64(lb.dZ[:, 0]),
        "db": _f64(lb.db[:, 0]),
        "dZ_norm": float(np.linalg.norm(lb.dZ)),
        "dW_norm": float(np.linalg.norm(dW)),
        "dW_row_norms": np.linalg.norm(dW, axis=1),
        "dW_max": _extreme(dW, int(np.argmax(dW))),
        "dW_min": _extreme(dW, int(np.argmin(dW))),
        "dA_prev_norm": None if lb.dA_prev is None else float(np.linalg.norm(lb.dA_prev)),
    }
    if last:
        doc["dW"] = dW  # the output layer's dWᴸ fits: 10 x n, whole
    return doc


def _snapshot_doc(snap: Any, label: int) -> dict[str, Any]:
    return {
        "prediction": int(snap.prediction[0]),
        "probabilities": _f64(snap.probabilities[:, 0]),
        "p_label": float(snap.probabilities[label, 0]),
        "C": snap.C,
        "accuracy": snap.accuracy,
        "test_cost": snap.sample_cost,
        "test_n": 1000,
    }


def _dumps(doc: dict[str, Any]) -> bytes:
    """JSON with NumPy arrays written by orjson; float64 numbers in full (the tests recompute
    them), NaN and infinity as null."""
    import orjson

    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
