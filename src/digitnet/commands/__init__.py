"""What the commands share: argument types, the help formatter, warnings on stderr.

Each command lives in a module of this package with ``register(subparsers)``, which adds its
parser and sets ``handler``; :mod:`digitnet.cli` registers them in order. Modules here import
only the standard library at the top, so ``digitnet --help`` stays light; NumPy and the rest load
inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def batch_size(text: str) -> int | str:
    if text.lower() == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'full'; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full'; got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: a non-negative integer (NumPy's generators take no other)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a seed is a non-negative integer; got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer; got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def warn(text: str) -> None:
    """A warning from the library, as one line on stderr."""
    print(f"warning: {text}", file=sys.stderr)


#: the model file inside a run folder
MODEL_FILE = "model.safetensors"


def model_path(text: str) -> Path:
    """The model file that MODEL names: the file itself, or ``model.safetensors`` in a folder."""
    from digitnet.errors import ModelFileError

    path = Path(text).expanduser()
    if path.is_dir():
        inside = path / MODEL_FILE
        if not inside.is_file():
            raise ModelFileError(
                f"{text}: a folder without {MODEL_FILE}.",
                "give a model file, or a run folder written by 'digitnet train --out DIR'",
            )
        return inside
    if not path.exists():
        raise ModelFileError(
            f"{text}: no such file or folder.",
            f"give a {MODEL_FILE} file, or the folder 'digitnet train --out DIR' wrote",
        )
    return path
