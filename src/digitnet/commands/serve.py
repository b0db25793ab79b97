"""``digitnet serve``: a local page where you draw a digit and watch the network read it.

The page (``digitnet/web/static``) and its API (:mod:`digitnet.web.app`) are served by Starlette
on uvicorn, both imported only here, inside the handler: the other commands never load them.
The server binds its own socket first, so ``--port 0`` picks a free port and the line that
announces the address is printed only once the port is listening. One process serves HTTP;
``--workers`` processes read the posted digits (:mod:`digitnet.web.readers`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path

from digitnet.commands import MODEL_FILE, Formatter, model_path, positive_int, warn

DEFAULT_RUNS = "runs"
#: serve --workers at most this many reader processes (each holds the model and ~60 MB)
MAX_WORKERS = 32
#: how long a stopping server lets requests finish (seconds)
STOP_SECONDS = 2

SERVE_EXAMPLES = """\
examples:
  digitnet serve                       # the newest model under runs/, at http://127.0.0.1:8000/
  digitnet serve runs/a --open         # a run folder's model, and open the page in a browser
  digitnet serve model.safetensors --port 8080
  digitnet serve runs/a --runs runs    # the training view lists the runs in runs/

the page: draw a digit; see the 28x28 image the network reads, every layer's values in the
seeds' notation (Z¹ = W¹·A⁰ + b¹, A¹ = ReLU(Z¹), ...), and each hidden unit's weights. Its
training view follows a run's learning curves live while 'digitnet train' writes it.
"""


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="a local web page: draw a digit and watch the network read it",
        description="Serve a local web page where you draw a digit and watch the model read it, "
        "layer by layer, in the seeds' notation; its training view shows a run's learning "
        "curves live while 'digitnet train' writes it. The page and everything it needs come "
        "from this package: no internet is needed. Ctrl-C stops the server.",
        epilog=SERVE_EXAMPLES,
        formatter_class=Formatter,
    )
    serve.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help=f"a model file, or a run folder holding {MODEL_FILE}; default: the newest run "
        "under --runs that has a model (runs/latest, else the model written last)",
    )
    serve.add_argument(
        "--runs",
        metavar="DIR",
        help="the folder of run folders for the training view; default: the folder holding "
        f"the served run, else {DEFAULT_RUNS}/",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on; anything but loopback makes the page reachable from "
        "the network",
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="the port to listen on (0: any free port)"
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=min(2, os.cpu_count() or 1),
        help="processes that read the digits posted to the page, each request going to a free "
        f"one (each holds the model; one per core is enough; at most {MAX_WORKERS})",
    )
    serve.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a request's body must arrive within this many seconds of its headers, and the "
        "headers within 10 s (or this, if shorter); slower connections are closed",
    )
    serve.add_argument("--open", action="store_true", help="open the page in a web browser")
    serve.set_defaults(handler=cmd_serve)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535; got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535; got {text!r}")
    return value


def _workers(text: str) -> int:
    value = positive_int(text)
    if value > MAX_WORKERS:
        cores = os.cpu_count() or 1
        raise argparse.ArgumentTypeError(
            f"at most {MAX_WORKERS} reader processes (each holds the model); got {value}: one "
            f"per core is enough, and this machine has {cores}"
        )
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0.1-3600; got {text!r}")
    return value


def _newest_model(root: Path) -> Path:
    from digitnet.errors import ConfigError
    from digitnet.train.rundir import newest_run

    run = newest_run(root, MODEL_FILE)  # runs/latest, else the model written last
    if run is None:
        raise ConfigError(
            f"no trained model to serve: {root}/ holds no run with {MODEL_FILE}.",
            "train one first with 'digitnet train' (or name a model: 'digitnet serve MODEL')",
        )
    return run / MODEL_FILE


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    from digitnet.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address this machine has ({exc}).") from None
    family, kind, proto, _, address = infos[0]
    # proto must say TCP: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that
    # do, and with it on, every answer on a kept-alive connection waits 40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "pick another with --port N, or --port 0 for any free port"
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.", hint) from None
    sock.set_inheritable(True)
    return sock


def _open_browser(url: str) -> str | None:
    """Open ``url`` in a browser: None when done, else why not.

    On Linux without a display, only a text-mode browser could start, and it would take over
    the terminal the server is printing to: say so instead.
    """
    import webbrowser

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display: $DISPLAY and $WAYLAND_DISPLAY are unset"
    try:
        opened = webbrowser.open(url)
    except Exception as exc:  # a broken browser setting must not stop the server
        return f"{type(exc).__name__}: {exc}"
    return None if opened else "no browser found"


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling the application at once when a signal stops it, so that
        requests waiting for a reader answer 503 at once instead of being cut off later."""

        def __init__(self, config: uvicorn.Config, stop: object) -> None:
            super().__init__(config)
            self._stop_app = stop

        def handle_exit(self, sig: int, frame: object) -> None:
            self._stop_app()  # type: ignore[operator]
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    return Server


def _make_server(config: object, stop: object) -> object:
    return _server_class()(config, stop)


def cmd_serve(args: argparse.Namespace) -> int:
    # One BLAS thread per request: the server's parallelism is its concurrent requests, and a
    # one-column forward pass is too small to share (two threads would only wait on each other).
    # Set before NumPy loads; a value the user set is kept.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    if args.model is None:
        root = Path(args.runs or DEFAULT_RUNS).expanduser()
        model = _newest_model(root)
    else:
        model = model_path(args.model)
        run_dir = model.parent
        default_root = run_dir.parent if (run_dir / "config.json").is_file() else Path(DEFAULT_RUNS)
        root = Path(args.runs).expanduser() if args.runs else default_root
    served = model.parent.name if model.parent.resolve().parent == root.resolve() else None

    import uvicorn

    from digitnet.web import connections
    from digitnet.web.app import create_app

    # Room for every connection the ceiling allows (connections.py): the soft open-file limit
    # (1,024 on many systems) is raised to the hard one.
    open_files = connections.raise_open_file_limit()
    sock = _listen(args.host, args.port)  # before the readers start: a taken port fails at once
    wildcard = _is_wildcard(args.host)
    try:
        app = create_app(
            model,
            root,
            served,
            readers=args.workers,
            hosts=() if wildcard else (args.host,),
            any_address=wildcard,
        )
    except BaseException:
        sock.close()
        raise
    if not _is_loopback(args.host):
        warn(
            f"--host {args.host}: the page will be reachable from the network, by anyone who "
            "can reach this machine; use --host 127.0.0.1 to keep it on this machine."
        )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    n = args.workers
    print(
        f"digitnet serve: {url}  (model {model}; runs {root}/; {n} reader process"
        f"{'es' if n > 1 else ''})  Ctrl-C stops it",
        flush=True,
    )
    if args.open:
        why = _open_browser(url)
        if why is None:
            print(f"--open: opened {url} in a browser", flush=True)
        else:
            print(f"--open: could not open a browser ({why}); open {url} yourself", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=STOP_SECONDS,
        lifespan="on",
        http=connections.configure(args.timeout, open_files),
    )
    # uvicorn stops gracefully on SIGINT (Ctrl-C) and SIGTERM, then raises the signal again for
    # the handler it found: the default one would end the process before the line below.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _make_server(config, app.state.stop).run(  # type: ignore[attr-defined]
            sockets=[sock]
        )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("digitnet serve: stopped", file=sys.stderr)
    return 0
