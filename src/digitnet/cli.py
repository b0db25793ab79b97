"""The ``digitnet`` command: thin commands over the library.

``main(argv) -> exit status`` so the command is testable in-process. Errors from the library
(:class:`~digitnet.errors.DigitnetError`) become one line on stderr and an exit status, never a
traceback (``--traceback`` shows it, for developers). Ctrl-C exits with status 130.

Imports here stay light (argparse and the standard library): NumPy and the rest load inside the
commands that use them, so ``digitnet --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digitnet._version import __version__

TRAIN_EXAMPLES = """\
examples:
  digitnet train                               # the default preset on the embedded digits
  digitnet train --preset tutorial             # seeds 001-002: 784-10-10, full-batch GD
  digitnet train --layers 784-128-10 --optimizer momentum --lr 0.05 --epochs 10
  digitnet train --preset sigmoid-mse --out runs/sigmoid     # writes runs/sigmoid/metrics.json
  digitnet train --data-dir ~/mnist --epochs 5  # four MNIST-format IDX files, gzipped or not
"""

DATA_EXAMPLES = """\
examples:
  digitnet data list                 # each dataset: where it would come from, present, verified
  digitnet data fetch mnist          # download full MNIST into the cache ahead of time
  DIGITNET_CACHE=/srv/digitnet digitnet data fetch kmnist     # a cache folder of your choice
"""

GRADCHECK_EXAMPLES = """\
examples:
  digitnet gradcheck                            # 784-16-16-10, ReLU, cross-entropy
  digitnet gradcheck --layers 784-32-10 --activation sigmoid --loss mse
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _batch_size(text: str) -> int | str:
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from digitnet.data.sources import DATASET_NAMES
    from digitnet.presets_names import ACTIVATION_NAMES, OPTIMIZER_NAMES, PRESET_NAMES

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

    train = sub.add_parser(
        "train",
        help="train a network and report its test accuracy",
        description="Train a network on MNIST-format digits and report its accuracy on the "
        "test set. Without --data-dir it trains on the embedded digits (MNIST's first 10,000 "
        "training digits, the official 10,000 test digits): no network needed. Options given "
        "override the preset's settings.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=_Formatter,
    )
    train.add_argument(
        "--preset", default="default", choices=PRESET_NAMES, help="the configuration to start from"
    )
    train.add_argument(
        "--layers", metavar="SPEC", help="layer sizes, input first, such as 784-16-16-10"
    )
    train.add_argument(
        "--activation", choices=ACTIVATION_NAMES, help="the hidden layers' activation g"
    )
    train.add_argument(
        "--loss",
        choices=["ce", "mse"],
        help="cross-entropy (softmax output) or mean squared error (sigmoid output)",
    )
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZER_NAMES,
        help="gd: θ := θ - α dθ, on the whole training set unless --batch-size "
        "is given; sgd: the same on mini-batches",
    )
    train.add_argument("--lr", type=_positive_float, metavar="X", help="the learning rate α")
    train.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help="passes over the training set (iterations, when full-batch)",
    )
    train.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N|full",
        help="examples per step, or 'full' for the whole training set",
    )
    train.add_argument("--seed", type=int, metavar="N", help="makes the run repeatable")
    train.add_argument(
        "--dropout", type=_fraction, metavar="P", help="dropout probability after each hidden layer"
    )
    train.add_argument(
        "--input-dropout", type=_fraction, metavar="P", help="dropout probability on the pixels"
    )
    train.add_argument(
        "--augment",
        choices=["none", "affine", "elastic", "both"],
        help="distort each training batch afresh: random shift, rotation, scale and shear "
        "(affine), smooth elastic warps (Simard et al. 2003), or both",
    )
    train.add_argument("--weight-decay", type=float, metavar="λ", help="L2 weight decay")
    train.add_argument(
        "--label-smoothing", type=_fraction, metavar="ε", help="label smoothing for cross-entropy"
    )
    train.add_argument(
        "--schedule", choices=["constant", "step", "cosine"], help="learning-rate schedule"
    )
    train.add_argument(
        "--init",
        choices=["he", "glorot", "xavier", "lecun", "uniform"],
        help="weight initialisation",
    )
    train.add_argument(
        "--validation",
        type=_fraction,
        metavar="FRACTION",
        help="fraction of the training set held out for validation",
    )
    train.add_argument("--dtype", choices=["float32", "float64"], help="floating-point type")
    train.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder with the four MNIST-format IDX files (gzipped or not)",
    )
    train.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        help="the data to train on: embedded (the default without --data-dir: inside the "
        "package, no network) or a full dataset from the cache, a system package or a "
        "download ('digitnet data list' shows which); mnist falls back to embedded, with a "
        "warning, when it cannot be had",
    )
    train.add_argument(
        "--offline",
        action="store_true",
        help="never use the network: only --data-dir, the cache and system packages",
    )
    train.add_argument(
        "--out", metavar="DIR", help="write model.safetensors and metrics.json into this folder"
    )
    train.set_defaults(handler=cmd_train)

    data = sub.add_parser(
        "data",
        help="list the datasets and download them ahead of time",
        description="The datasets digitnet trains on: the embedded digits (inside the "
        "package), and MNIST, Fashion-MNIST and Kuzushiji-MNIST, found in this order in a "
        "--data-dir folder (or $DIGITNET_DATA), the cache ($DIGITNET_CACHE or the user cache "
        "folder), a system package (Debian's dataset-fashion-mnist) or downloaded from their "
        "mirrors. Every file is checked against its published SHA-256 digest before use.",
        epilog=DATA_EXAMPLES,
        formatter_class=_Formatter,
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    data_list = data_sub.add_parser(
        "list",
        help="each dataset, where it would come from, and whether it is present and verified",
        description="Show each dataset, where it would come from, and whether it is present "
        "and verified. Checks the files on disk; never touches the network.",
        formatter_class=_Formatter,
    )
    data_list.set_defaults(handler=cmd_data_list)
    data_fetch = data_sub.add_parser(
        "fetch",
        help="download a dataset into the cache ahead of time",
        description="Download a dataset into the cache, trying its mirrors in turn and "
        "checking every file against its published digest, so that later runs need no "
        "network. Does nothing when the dataset is already present and verified.",
        formatter_class=_Formatter,
    )
    data_fetch.add_argument("name", choices=DATASET_NAMES, help="the dataset")
    data_fetch.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="how long to wait for a connection or for more bytes before trying the next "
        "mirror (default: $DIGITNET_TIMEOUT or 10)",
    )
    data_fetch.set_defaults(handler=cmd_data_fetch)

    grad = sub.add_parser(
        "gradcheck",
        help="compare backpropagation with finite differences",
        description="Compare the gradients that backpropagation computes with finite "
        "differences, on a small random batch in float64, and print the relative error per "
        "layer and parameter. Below 1e-6 a gradient is right; around 1 it is wrong. The first "
        "thing to check when a network is stuck at 10 %%.",
        epilog=GRADCHECK_EXAMPLES,
        formatter_class=_Formatter,
    )
    grad.add_argument("--layers", default="784-16-16-10", metavar="SPEC", help="layer sizes")
    grad.add_argument(
        "--activation",
        default="relu",
        choices=ACTIVATION_NAMES,
        help="the hidden layers' activation",
    )
    grad.add_argument("--loss", default="ce", choices=["ce", "mse"], help="the cost")
    grad.add_argument(
        "--batch", type=_positive_int, default=8, metavar="M", help="examples in the random batch"
    )
    grad.add_argument(
        "--entries",
        type=_positive_int,
        default=200,
        metavar="N",
        help="entries checked per parameter (a random sample when larger)",
    )
    grad.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")
    grad.set_defaults(handler=cmd_gradcheck)
    return parser


# -- train -----------------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace) -> Any:
    from digitnet.presets import get_preset

    config = get_preset(args.preset)
    changes: dict[str, Any] = {}
    mapping = {
        "layers": "layers",
        "activation": "activation",
        "loss": "loss",
        "optimizer": "optimizer",
        "lr": "learning_rate",
        "epochs": "epochs",
        "seed": "seed",
        "dropout": "dropout",
        "input_dropout": "input_dropout",
        "augment": "augment",
        "weight_decay": "weight_decay",
        "label_smoothing": "label_smoothing",
        "schedule": "schedule",
        "init": "init",
        "validation": "validation_fraction",
        "dtype": "dtype",
    }
    for arg, field_name in mapping.items():
        value = getattr(args, arg)
        if value is not None:
            changes[field_name] = value
    if args.batch_size is not None:
        changes["batch_size"] = None if args.batch_size == "full" else args.batch_size
    elif args.optimizer == "gd":
        changes["batch_size"] = None  # gradient descent as in the seeds: the whole training set
    if args.loss is not None and args.loss != config.loss:
        changes["output"] = None  # the output follows the cost: softmax for ce, sigmoid for mse
    if args.activation is not None and args.init is None and config.init is not None:
        changes["init"] = None  # He for ReLU-like layers, Glorot otherwise
    return config.replace(**changes)


def _fmt_epoch(record: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    line = (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"acc {100 * record['accuracy']:6.2f}%"
    )
    if record["val_accuracy"] is not None:
        line += f"  val_loss {record['val_loss']:.4f}  val_acc {100 * record['val_accuracy']:6.2f}%"
    return line + f"  {record['seconds']:.2f}s"


def cmd_train(args: argparse.Namespace) -> int:
    from digitnet.data.datasets import load_dataset
    from digitnet.data.idx import write_atomic
    from digitnet.modelfile import save_model
    from digitnet.train.run import run

    config = _config_from_args(args)
    data = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        dtype=config.dtype,
        offline=args.offline,
        on_warning=_warn,
    )
    out_dir = Path(args.out).expanduser() if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    batch = "full" if config.batch_size is None else config.batch_size
    print(
        f"digitnet {__version__}: training {config.layers} ({config.activation}, "
        f"{config.loss}) with {config.optimizer}, α = {config.learning_rate:g}, "
        f"batch {batch}, {config.epochs} epochs"
    )
    print(
        f"data: {data.name}: {data.n_train:,} training images, {data.n_test:,} test images "
        f"({data.source})"
    )
    epochs = config.epochs
    every = 1 if epochs <= 50 else max(1, epochs // 25)

    def report(record: dict[str, Any]) -> None:
        if record["epoch"] % every == 0 or record["epoch"] == epochs:
            print(_fmt_epoch(record, epochs), flush=True)

    result = run(config, data, callbacks=[report])
    m = result.metrics
    print(
        f"test accuracy {100 * m['test_accuracy']:.2f}% on {m['n_test']:,} test images "
        f"(train {100 * m['train_accuracy']:.2f}%, {m['seconds']:.1f} s)"
    )
    if out_dir is not None:
        summary = {k: v for k, v in m.items() if k not in ("config", "history")}
        save_model(
            out_dir / "model.safetensors",
            result.network,
            metadata={
                "dataset": data.describe(),
                "metrics": summary,
                "config": m["config"],
                "seed": config.seed,
            },
        )
        m = {"digitnet_version": __version__, **m}
        write_atomic(out_dir / "metrics.json", (json.dumps(m, indent=2) + "\n").encode())
        print(f"wrote {out_dir / 'model.safetensors'} and {out_dir / 'metrics.json'}")
    return 0


# -- data ------------------------------------------------------------------------------------
def _warn(text: str) -> None:
    """A warning from the library, as one line on stderr."""
    print(f"warning: {text}", file=sys.stderr)


_STATES = {
    "verified": "present, verified",
    "partial": "partly present",
    "failed": "FAILS its check",
    "absent": "not present",
}


def cmd_data_list(args: argparse.Namespace) -> int:
    import os

    from digitnet.data.datasets import ENV_DATA, _embedded_dir, load_embedded
    from digitnet.data.download import ENV_CACHE, cache_dir, status
    from digitnet.data.sources import DOWNLOADABLE
    from digitnet.errors import DataError

    rows = []
    for name, source in DOWNLOADABLE.items():
        st = status(name)
        detail = f" ({st.detail})" if st.detail else ""
        where = st.where
        if st.state != "verified" and source.fallback:
            where += f"; else {source.fallback}"
        rows.append((name, _STATES[st.state] + detail, where))
    try:
        load_embedded()
        rows.append(("embedded", _STATES["verified"], f"inside the package: {_embedded_dir()}"))
    except DataError as exc:
        rows.append(("embedded", "FAILS its check", exc.message))
    print(f"cache: {cache_dir()}  (${ENV_CACHE} moves it)")
    if os.environ.get(ENV_DATA):
        print(
            f"${ENV_DATA}={os.environ[ENV_DATA]}: 'digitnet train' reads that folder for "
            "every dataset but embedded"
        )
    widths = [max(len(r[i]) for r in [*rows, ("dataset", "state", "")]) for i in (0, 1)]
    print(f"{'dataset':<{widths[0]}}  {'state':<{widths[1]}}  source")
    for name, state, where in rows:
        print(f"{name:<{widths[0]}}  {state:<{widths[1]}}  {where}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    if args.name == "embedded":
        print("embedded: inside the package; nothing to fetch")
        return 0
    from digitnet.data.download import fetch

    found = fetch(args.name, timeout=args.timeout, report=print)
    verb = {
        "cache": "already in the cache",
        "system": "already installed",
        "download": "downloaded and verified",
    }[found.how]
    print(f"{args.name}: {verb}: {found.where}")
    return 0


# -- gradcheck -------------------------------------------------------------------------------
def cmd_gradcheck(args: argparse.Namespace) -> int:
    from digitnet.gradcheck import GOOD, gradcheck

    results = gradcheck(
        args.layers,
        args.activation,
        args.loss,
        m=args.batch,
        seed=args.seed,
        max_entries=args.entries,
    )
    print(
        f"gradient check: {args.layers}, {args.activation}, {args.loss}, float64, "
        f"{args.batch} random examples, central differences h = 1e-6"
    )
    print(f"{'layer':>5}  {'param':<5}  {'shape':>12}  {'checked':>7}  {'rel. error':>10}  verdict")
    for r in results:
        layer = r.parameter[1:]
        shape = "x".join(str(s) for s in r.shape)
        print(
            f"{layer:>5}  {r.parameter:<5}  {shape:>12}  {r.checked:>7}  "
            f"{r.relative_error:10.2e}  {r.verdict}"
        )
    bad = [r for r in results if r.relative_error >= GOOD]
    if bad:
        print(
            f"{len(bad)} parameter(s) disagree with finite differences: backpropagation is "
            "wrong for them."
        )
        return 1
    print("all gradients agree with finite differences (relative error < 1e-6).")
    return 0


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
