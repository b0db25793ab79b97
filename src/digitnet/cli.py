"""The ``digitnet`` command: thin commands over the library.

``main(argv) -> exit status`` so the command is testable in-process. Errors from the library
(:class:`~digitnet.errors.DigitnetError`) become one line on stderr and an exit status, never a
traceback (``--traceback`` shows it, for developers). Ctrl-C exits with status 130.

Each command is a module of :mod:`digitnet.commands` with ``register(subparsers)``. Imports here
stay light (argparse and the standard library): NumPy and the rest load inside the commands that
use them, so ``digitnet --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from digitnet._version import __version__

#: the commands, in the order ``digitnet --help`` lists them (modules of digitnet.commands)
COMMANDS = ("train", "predict", "evaluate", "inspect", "serve", "data", "gradcheck", "explain")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitnet",
        description="A neural network from scratch in NumPy that learns to read handwritten "
        "digits (MNIST), in the notation of the tutorials it grew from.",
        epilog="Run 'digitnet COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"digitnet {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error (for developers)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"digitnet.commands.{name}").register(sub)
    return parser


# -- entry point -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from digitnet.errors import DigitnetError

    try:
        return int(args.handler(args))
    except DigitnetError as exc:
        if args.traceback:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
