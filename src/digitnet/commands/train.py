"""``digitnet train``: train a network on digits and report its test accuracy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from digitnet._version import __version__
from digitnet.commands import Formatter, batch_size, fraction, positive_float, positive_int, warn

TRAIN_EXAMPLES = """\
examples:
  digitnet train                               # the default preset on the embedded digits
  digitnet train --preset tutorial             # seeds 001-002: 784-10-10, full-batch GD
  digitnet train --layers 784-128-10 --optimizer momentum --lr 0.05 --epochs 10
  digitnet train --preset sigmoid-mse --out runs/sigmoid     # writes runs/sigmoid/metrics.json
  digitnet train --data-dir ~/mnist --epochs 5  # four MNIST-format IDX files, gzipped or not
"""


def register(sub: argparse._SubParsersAction) -> None:
    from digitnet.data.sources import DATASET_NAMES
    from digitnet.presets_names import ACTIVATION_NAMES, OPTIMIZER_NAMES, PRESET_NAMES

    train = sub.add_parser(
        "train",
        help="train a network and report its test accuracy",
        description="Train a network on MNIST-format digits and report its accuracy on the "
        "test set. Without --data-dir it trains on the embedded digits (MNIST's first 10,000 "
        "training digits, the official 10,000 test digits): no network needed. Options given "
        "override the preset's settings.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=Formatter,
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
    train.add_argument("--lr", type=positive_float, metavar="X", help="the learning rate α")
    train.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="passes over the training set (iterations, when full-batch)",
    )
    train.add_argument(
        "--batch-size",
        type=batch_size,
        metavar="N|full",
        help="examples per step, or 'full' for the whole training set",
    )
    train.add_argument("--seed", type=int, metavar="N", help="makes the run repeatable")
    train.add_argument(
        "--dropout", type=fraction, metavar="P", help="dropout probability after each hidden layer"
    )
    train.add_argument(
        "--input-dropout", type=fraction, metavar="P", help="dropout probability on the pixels"
    )
    train.add_argument(
        "--augment",
        choices=["none", "affine", "elastic", "both"],
        help="distort each training batch afresh: random shift, rotation, scale and shear "
        "(affine), smooth elastic warps (Simard et al. 2003), or both",
    )
    train.add_argument("--weight-decay", type=float, metavar="λ", help="L2 weight decay")
    train.add_argument(
        "--label-smoothing", type=fraction, metavar="ε", help="label smoothing for cross-entropy"
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
        type=fraction,
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
        on_warning=warn,
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
