"""``digitnet serve``: a local page where you draw a digit and watch the network read it.

The page (``digitnet/web/static``) and its API (:mod:`digitnet.web.app`) are served by Starlette
on uvicorn, both imported only here, inside the handler: the other commands never load them.
The server binds its sockets first (:func:`digitnet.web.workers.listen`), so ``--port 0`` picks a
free port and the line that announces the address is printed only once the port is listening;
then worker processes answer on them (:func:`digitnet.web.workers.run`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from digitnet.commands import MODEL_FILE, Formatter, model_path, positive_int, warn

DEFAULT_RUNS = "runs"

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
        "under --runs that has a model",
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
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="processes answering requests (each holds the model; one per core is enough)",
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


def _newest_model(root: Path) -> Path:
    from digitnet.errors import ConfigError

    candidates = [p for p in root.glob(f"*/{MODEL_FILE}") if p.is_file()] if root.is_dir() else []
    if not candidates:
        raise ConfigError(
            f"no trained model to serve: {root}/ holds no run with {MODEL_FILE}.",
            "train one first with 'digitnet train' (or name a model: 'digitnet serve MODEL')",
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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

    from digitnet.errors import ConfigError
    from digitnet.web import workers
    from digitnet.web.app import ENVIRONMENT, create_app

    create_app(model, root, served)  # here first: a bad model fails once, in one line
    if not _is_loopback(args.host):
        warn(
            f"--host {args.host}: the page will be reachable from the network, by anyone who "
            "can reach this machine; use --host 127.0.0.1 to keep it on this machine."
        )
    try:
        sockets = workers.listen(args.host, args.port, args.workers)
    except workers.ListenError as exc:
        if exc.host:
            raise ConfigError(f"--host {args.host}: {exc}.") from None
        hint = "pick another with --port N, or --port 0 for any free port"
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}.", hint) from None
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    n = args.workers
    # The workers are told what to serve through the environment (see from_environment).
    os.environ.update(
        {
            ENVIRONMENT["model"]: str(model.resolve()),
            ENVIRONMENT["runs"]: str(root.resolve()),
            ENVIRONMENT["served"]: served or "",
        }
    )
    print(
        f"digitnet serve: {url}  (model {model}; runs {root}/; {n} worker{'s' if n > 1 else ''})"
        "  Ctrl-C stops it",
        flush=True,
    )
    if args.open:
        import webbrowser

        webbrowser.open(url)
    options = {
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 2,
        "lifespan": "off",
    }
    try:
        workers.run(sockets, n, options)
    except RuntimeError as exc:
        raise ConfigError(f"the server stopped: {exc}.") from None
    finally:
        for sock in sockets:
            sock.close()
    print("digitnet serve: stopped", file=sys.stderr)
    return 0
