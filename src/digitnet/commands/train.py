"""``digitnet train``: train a network on digits, into a run folder, and report its accuracy.

A run folder (a new ``runs/DATE-TIME`` by default, or ``--out DIR``, which must be new or empty)
receives ``config.json`` at the start, ``history.csv`` one row per epoch as training goes,
``checkpoint.safetensors`` after every epoch, and at the end ``model.safetensors``,
``metrics.json`` and the pictures. An existing run folder is never overwritten by a new run;
``--resume RUN_DIR`` continues one from its checkpoint.

Ctrl-C stops training after the current mini-batch: the checkpoint is saved (atomically, with
further Ctrl-C deferred until it is written), the exact command to resume is printed, and the
command exits with status 130. SIGTERM ('kill', 'timeout', 'docker stop', a batch scheduler)
and SIGHUP (the terminal closed) do the same, with status 143 and 129 (128 + the signal's
number, as a shell reports it). Resuming gives the same weights as a run never interrupted.
The run folder itself (its files, lock, ``latest``) is :mod:`digitnet.train.rundir`.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitnet._version import __version__
from digitnet.commands import (
    HELP_WIDTH,
    Formatter,
    batch_size,
    fraction,
    positive_float,
    positive_int,
    seed,
    warn,
)

TRAIN_EXAMPLES = """\
examples:
  digitnet train                               # the default preset, into a new runs/DATE-TIME
  digitnet train --preset tutorial             # seeds 001-002: 784-10-10, full-batch GD
  digitnet train --layers 784-128-10 --optimizer momentum --lr 0.05 --epochs 10
  digitnet train --preset sigmoid-mse --out runs/sigmoid     # writes runs/sigmoid/metrics.json
  digitnet train --data-dir ~/mnist --epochs 5  # four MNIST-format IDX files, gzipped or not
  digitnet train --schedule step --step-epochs 5 --gamma 0.5 --warmup 1 --epochs 20
  digitnet train --early-stopping 5 --epochs 200  # stop when val loss stalls; keep the best
  digitnet train --resume runs/20261123-174501 --epochs 150   # continue, to 150 epochs in all
"""

#: options that --resume accepts (the rest would change the run)
RESUME_OPTIONS = ("resume", "epochs", "data_dir", "dataset", "offline")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def _layer_spec(text: str) -> str:
    """``--layers``: sizes joined by '-', input first, each a positive integer, at least two."""
    parts = text.strip().split("-")
    if len(parts) < 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(
            f"the layer spec must be sizes joined by '-' (two or more, each positive, input "
            f"first); got {text!r}"
        )
    return "-".join(str(int(part)) for part in parts)


#: the presets in a line each, for 'digitnet train --help' (figures: the README's table)
PRESET_LINES = {
    "default": "784-512-256-10 ReLU; Adam with warm-up and cosine decay, dropout 0.2, label "
    "smoothing 0.1, affine augmentation, 0.5 generated non-digits per digit (Outlier Exposure: "
    "letters are 'not sure'); 100 epochs: 98.8 %, about a minute",
    "best": "784-1024-512-10; as default, with dropout 0.3 and affine + elastic augmentation; "
    "200 epochs: 99.0 %, about 4 min",
    "tutorial": "seeds 001-002: 784-10-10, full-batch gradient descent, α = 0.1, 500 "
    "iterations: 85.3 %, 6 s",
    "seed-16-16": "seed 000: 784-16-16-10, SGD with Nesterov momentum, batch 32, cosine decay, "
    "30 epochs: 92.6 %, 2 s",
    "sigmoid-mse": "seeds 003-004: 784-16-16-10 sigmoid, mean squared error, SGD α = 3, batch "
    "10, 30 epochs: 92.4 %, 3 s",
}

#: each tuning option and the TrainConfig field it sets
OPTION_FIELDS = {
    "layers": "layers",
    "activation": "activation",
    "loss": "loss",
    "optimizer": "optimizer",
    "lr": "learning_rate",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "dropout": "dropout",
    "input_dropout": "input_dropout",
    "augment": "augment",
    "outliers": "outliers",
    "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing",
    "schedule": "schedule",
    "warmup": "warmup_epochs",
    "step_epochs": "step_epochs",
    "gamma": "gamma",
    "min_lr_factor": "min_factor",
    "early_stopping": "early_stopping",
    "init": "init",
    "validation": "validation_fraction",
    "dtype": "dtype",
}


def _shown(field: str, value: Any) -> str:
    """A config value as the command line spells it."""
    if value is None:
        return {"batch_size": "full", "early_stopping": "off", "init": "by activation"}.get(
            field, "none"
        )
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _preset_default(field: str) -> str:
    """``default: 0.2; best: 0.3; tutorial, seed-16-16, sigmoid-mse: 0``: the default preset's
    value of a setting, then the presets that change it."""
    from digitnet.presets import PRESETS

    base = _shown(field, getattr(PRESETS["default"], field))
    others: dict[str, list[str]] = {}
    for name, config in PRESETS.items():
        value = _shown(field, getattr(config, field))
        if name != "default" and value != base:
            others.setdefault(value, []).append(name)
    parts = [f"default: {base}"] + [f"{', '.join(names)}: {v}" for v, names in others.items()]
    return "; ".join(parts)


def _presets_epilog() -> str:
    """The presets, a line each (wrapped to the terminal), then the examples."""
    import shutil
    import textwrap

    width = max(map(len, PRESET_LINES)) + 2
    lines = [
        "presets (--preset NAME; the options given override its settings):",
        *(f"  {name:<{width}}{line}" for name, line in PRESET_LINES.items()),
    ]
    columns = max(60, min(shutil.get_terminal_size((HELP_WIDTH, 24)).columns, HELP_WIDTH) - 2)
    # a number and its unit, and α and its value, stay on one line
    lines = [line.replace(" %", "\u00a0%").replace("α = ", "α\u00a0=\u00a0") for line in lines]
    wrapped = [
        textwrap.fill(line, columns, subsequent_indent=" " * (width + 2), break_on_hyphens=False)
        for line in lines
    ]
    return "\n".join(wrapped) + "\n\n" + TRAIN_EXAMPLES


def register(sub: argparse._SubParsersAction) -> None:
    from digitnet.data.sources import DATASET_NAMES
    from digitnet.presets_names import (
        ACTIVATION_NAMES,
        AUGMENT_NAMES,
        DTYPE_NAMES,
        INIT_NAMES,
        LOSS_NAMES,
        OPTIMIZER_NAMES,
        PRESET_NAMES,
        SCHEDULE_NAMES,
    )

    def preset(field: str, text: str) -> str:
        return f"{text} ({_preset_default(OPTION_FIELDS.get(field, field))})"

    train = sub.add_parser(
        "train",
        help="train a network and report its test accuracy",
        description="Train a network on MNIST-format digits and report its accuracy on the "
        "test set. Without --data-dir it trains on the embedded digits (MNIST's first 10,000 "
        "training digits, the official 10,000 test digits): no network needed. A run starts "
        "from a preset (below); each option given overrides the preset's setting, and each "
        "option shows the default preset's value and the presets that differ.",
        epilog=_presets_epilog(),
        formatter_class=Formatter,
    )
    train.add_argument(
        "--preset",
        default="default",
        choices=PRESET_NAMES,
        metavar="NAME",
        help=f"the configuration to start from: {', '.join(PRESET_NAMES)} (default: default)",
    )
    train.add_argument(
        "--layers",
        type=_layer_spec,
        metavar="SPEC",
        help=preset("layers", "layer sizes, input first, such as 784-16-16-10"),
    )
    train.add_argument(
        "--activation",
        choices=ACTIVATION_NAMES,
        help=preset("activation", "the hidden layers' activation g"),
    )
    train.add_argument(
        "--loss",
        choices=LOSS_NAMES,
        help=preset(
            "loss", "cross-entropy (softmax output) or mean squared error (sigmoid output)"
        ),
    )
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZER_NAMES,
        help=preset(
            "optimizer",
            "gd: θ := θ - α dθ, on the whole training set unless --batch-size is given; sgd: "
            "the same on mini-batches; momentum, nesterov (momentum 0.9); adam",
        ),
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        metavar="X",
        help=preset("learning_rate", "the learning rate α"),
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help=preset("epochs", "passes over the training set (iterations, when full-batch)"),
    )
    train.add_argument(
        "--batch-size",
        type=batch_size,
        metavar="N|full",
        help=preset(
            "batch_size",
            "examples per step, or 'full' for the whole training set (--optimizer gd: full)",
        ),
    )
    train.add_argument(
        "--seed", type=seed, metavar="N", help=preset("seed", "makes the run repeatable")
    )
    train.add_argument(
        "--dropout",
        type=fraction,
        metavar="P",
        help=preset("dropout", "dropout probability after each hidden layer"),
    )
    train.add_argument(
        "--input-dropout",
        type=fraction,
        metavar="P",
        help=preset("input_dropout", "dropout probability on the pixels"),
    )
    train.add_argument(
        "--augment",
        choices=AUGMENT_NAMES,
        help=preset(
            "augment",
            "distort each training batch afresh: random shift, rotation, scale and shear "
            "(affine), smooth elastic warps (Simard et al. 2003), or both",
        ),
    )
    train.add_argument(
        "--outliers",
        type=_non_negative_float,
        metavar="SHARE",
        help=preset(
            "outliers",
            "Outlier Exposure: generated non-digits (strokes crossing, zigzags, stars, boxes) "
            "per digit of each batch, taught a flat answer so that 'not sure' catches letters "
            "and signs; 0: none",
        ),
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        metavar="λ",
        help=preset("weight_decay", "L2 weight decay"),
    )
    train.add_argument(
        "--label-smoothing",
        type=fraction,
        metavar="ε",
        help=preset("label_smoothing", "label smoothing, for --loss ce only"),
    )
    train.add_argument(
        "--schedule",
        choices=SCHEDULE_NAMES,
        help=preset("schedule", "how the learning rate changes over the run"),
    )
    train.add_argument(
        "--init",
        choices=INIT_NAMES,
        help=preset(
            "init",
            "weight initialisation; with --activation and no --init: he for ReLU-like "
            "layers, glorot otherwise",
        ),
    )
    train.add_argument(
        "--validation",
        type=fraction,
        metavar="FRACTION",
        help=preset("validation", "fraction of the training set held out for validation"),
    )
    train.add_argument("--dtype", choices=DTYPE_NAMES, help=preset("dtype", "floating-point type"))
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
        "--warmup",
        type=_non_negative_float,
        metavar="EPOCHS",
        help=preset("warmup", "ramp the learning rate up linearly over the first EPOCHS epochs"),
    )
    train.add_argument(
        "--step-epochs",
        type=positive_float,
        metavar="EPOCHS",
        help=preset(
            "step_epochs",
            "with --schedule step: multiply the learning rate by --gamma every EPOCHS epochs",
        ),
    )
    train.add_argument(
        "--gamma",
        type=positive_float,
        metavar="X",
        help=preset("gamma", "with --schedule step: the factor"),
    )
    train.add_argument(
        "--min-lr-factor",
        type=fraction,
        metavar="F",
        help=preset(
            "min_lr_factor",
            "with --schedule cosine: the lowest learning rate, as a fraction of --lr",
        ),
    )
    train.add_argument(
        "--early-stopping",
        type=positive_int,
        metavar="N",
        help=preset(
            "early_stopping",
            "stop when the validation loss has not improved for N epochs, and keep the "
            "weights of the best epoch",
        ),
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="the run folder to write (new or empty); default: a new folder runs/DATE-TIME",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoint (with --epochs N: to N epochs "
        "in all)",
    )
    train.set_defaults(handler=cmd_train)
    train.set_defaults(
        train_options={
            a.dest: (a.option_strings[-1], a.default)
            for a in train._actions
            if a.option_strings and a.dest != "help"
        }
    )


def _config_from_args(args: argparse.Namespace, notes: list[str] | None = None) -> Any:
    """The preset's config with the options given; ``notes`` receives a line for each preset
    setting that an explicit choice turned off (it no longer applies)."""
    from digitnet.errors import ConfigError
    from digitnet.presets import get_preset

    config = get_preset(args.preset)
    changes: dict[str, Any] = {}
    for arg, field_name in OPTION_FIELDS.items():
        value = getattr(args, arg, None)
        if value is not None and arg != "batch_size":
            changes[field_name] = value
    if args.batch_size is not None:
        changes["batch_size"] = None if args.batch_size == "full" else args.batch_size
    elif args.optimizer == "gd":
        changes["batch_size"] = None  # gradient descent as in the seeds: the whole training set
    if args.loss is not None and args.loss != config.loss:
        changes["output"] = None  # the output follows the cost: softmax for ce, sigmoid for mse
    if args.activation is not None and args.init is None and config.init is not None:
        changes["init"] = None  # He for ReLU-like layers, Glorot otherwise
    if args.loss == "mse":
        # Label smoothing belongs to cross-entropy: a preset's smoothing gives way to --loss mse;
        # both asked for at once is a contradiction the user must settle.
        if getattr(args, "label_smoothing", None):
            raise ConfigError(
                "--label-smoothing applies to cross-entropy (--loss ce), not to --loss mse.",
                "drop --label-smoothing, or give --label-smoothing 0",
            )
        if args.label_smoothing is None and config.label_smoothing:
            changes["label_smoothing"] = 0.0
            if notes is not None:
                notes.append(
                    f"--loss mse: no label smoothing (the {args.preset} preset's "
                    f"{config.label_smoothing:g} applies to cross-entropy only)"
                )
    if getattr(args, "outliers", None) is None and config.outliers:
        # The preset's generated non-digits teach a flat softmax to things that are not digits:
        # they give way to a cost without a softmax, and to data that are not digits.
        why = None
        if args.loss == "mse":
            why = "--loss mse: no generated non-digits (the {} preset's --outliers {:g} teaches "
            why += "a flat softmax, with cross-entropy only)"
        elif getattr(args, "dataset", None) == "fashion-mnist":
            why = "--dataset fashion-mnist: no generated non-digits (the {} preset's "
            why += "--outliers {:g} is for digits)"
        if why is not None:
            changes["outliers"] = 0.0
            if notes is not None:
                notes.append(why.format(args.preset, config.outliers))
    epochs = changes.get("epochs", config.epochs)
    if args.warmup is None and args.epochs is not None and 0 < config.warmup_epochs >= epochs:
        # the preset's warm-up would take the whole run: the learning rate would never arrive
        changes["warmup_epochs"] = 0.0
        if notes is not None:
            notes.append(
                f"--epochs {epochs}: no warm-up (the {args.preset} preset's "
                f"{config.warmup_epochs:g}-epoch warm-up would take the whole run)"
            )
    return config.replace(**changes)


def _settings(config: Any, args: argparse.Namespace) -> list[str]:
    """Every setting that shapes the result, a few lines under the banner."""
    given = [
        "--" + option.replace("_", "-")
        for option in OPTION_FIELDS
        if getattr(args, option, None) is not None
    ]
    head = f"settings (preset {args.preset}"
    head += f"; given: {' '.join(given)}):" if given else "):"
    ce = config.loss == "ce"
    output = config.output or ("softmax" if ce else "sigmoid")
    init = config.init or ("he" if config.activation in ("relu", "leaky_relu") else "glorot")
    cost = "cross-entropy" if ce else "mean squared error"
    if config.label_smoothing:
        cost += f", label smoothing {config.label_smoothing:g} (the loss cannot fall to 0)"
    optimizer = {
        "gd": "gradient descent",
        "sgd": "SGD",
        "adam": "Adam",
        "momentum": f"SGD with momentum {config.momentum:g}",
        "nesterov": f"SGD with Nesterov momentum {config.momentum:g}",
    }.get(config.optimizer, config.optimizer)
    batch = "full batch" if config.batch_size is None else f"batch {config.batch_size}"
    n = config.epochs
    steps = f"{optimizer}, α = {config.learning_rate:g}, {batch}, {n} epoch{'' if n == 1 else 's'}"
    schedule = {
        "constant": "constant α",
        "step": f"α × {config.gamma:g} every {config.step_epochs:g} epochs",
        "cosine": f"cosine decay to {config.min_factor:g} α"
        if config.min_factor
        else "cosine decay to 0",
    }.get(config.schedule, config.schedule)
    if config.warmup_epochs:
        w = config.warmup_epochs
        schedule = f"warm-up {w:g} epoch{'' if w == 1 else 's'}, then {schedule}"
    shaping = []
    if config.augment != "none":
        shaping.append(f"{config.augment} augmentation")
    if config.dropout:
        shaping.append(f"dropout {config.dropout:g} after each hidden layer")
    if config.input_dropout:
        shaping.append(f"input dropout {config.input_dropout:g}")
    if config.outliers:
        shaping.append(f"{config.outliers:g} non-digits per digit (taught 'none'; not counted)")
    lines = [
        head,
        f"  network   {config.layers}: {config.activation} hidden layers, {output} output, "
        f"{init} init, {config.dtype}",
        f"  cost      {cost}; weight decay {config.weight_decay:g}",
        f"  steps     {steps}; {schedule}"
        + (f"; early stopping after {config.early_stopping}" if config.early_stopping else ""),
        f"  batches   {', '.join(shaping) or 'as they are: no augmentation, no dropout'}",
        f"  held out  {100 * config.validation_fraction:g} % of the training images for "
        f"validation; seed {config.seed}",
    ]
    if shaping:
        lines[4] += " (training accuracy is measured on these; validation on clean images)"
    return lines


def _say_if_downloading(args: argparse.Namespace) -> None:
    """Before a download's first network wait: one line saying so, and how to skip it.

    Behind a network that never answers, the mirrors take their time-out each before the
    fallback's warning; the user should know at once what the wait is and that --offline ends it.
    Only a look at which files exist (no digests): the download itself checks every file.
    """
    import os

    from digitnet.data.datasets import ENV_DATA
    from digitnet.data.download import _find_file, cache_dir, resolve_timeout
    from digitnet.data.sources import DOWNLOADABLE

    source = DOWNLOADABLE.get(args.dataset or "")
    if source is None or args.offline or args.data_dir or os.environ.get(ENV_DATA):
        return
    places = [cache_dir() / source.name, *map(Path, source.system_dirs)]
    if any(all(_find_file(place, fs) for fs in source.files) for place in places if place.is_dir()):
        return
    instead = f", training on {source.fallback} instead" if source.fallback else ""
    print(
        f"data: {args.dataset} is not in the cache; trying its mirrors (waiting up to "
        f"{resolve_timeout(None):g} s for an answer; --offline skips the network{instead})",
        flush=True,
    )


def _fmt_epoch(record: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    line = (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"acc {100 * record['accuracy']:6.2f}%"
    )
    if record["val_accuracy"] is not None:
        line += f"  val_loss {record['val_loss']:.4f}  val_acc {100 * record['val_accuracy']:6.2f}%"
    return line + f"  {record['seconds']:.2f}s"


# -- Ctrl-C, SIGTERM, SIGHUP -------------------------------------------------------------------
#: the signals that stop training as Ctrl-C does: closing the terminal (SIGHUP), 'kill',
#: 'timeout', 'docker stop', a batch scheduler (SIGTERM)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_status(signum: int) -> int:
    """The shell's status for a command ended by ``signum``: 130 for Ctrl-C, 143 for SIGTERM,
    129 for SIGHUP."""
    return 128 + signum


class _StopFlag:
    """A handler of :data:`STOP_SIGNALS` that only raises a flag: training stops after the
    current mini-batch. ``signum``: the signal that came."""

    def __init__(self) -> None:
        self.raised = False
        self.signum = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.raised:
            self.signum = signum
        self.raised = True

    def __enter__(self) -> _StopFlag:
        try:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self)
        except ValueError:  # not the main thread: no signals here
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


@contextlib.contextmanager
def _as_interrupt(caught: list[int]) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does (the
    signal goes into ``caught``)."""

    def interrupt(signum: int, frame: Any) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, interrupt)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold :data:`STOP_SIGNALS` off while a file is written; deliver them to the previous
    handlers after."""
    caught: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(caught):
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, None)  # the default SIGINT handler raises KeyboardInterrupt now
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


# -- progress ---------------------------------------------------------------------------------
class _ProgressBar:
    """A tqdm bar per epoch (batches, running loss, ETA), fed by the trainer's on_batch."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.bar: Any = None

    def __call__(self, k: int, n_batches: int, batch_loss: float) -> None:
        t = self.trainer
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=n_batches,
                initial=k - 1,
                desc=f"epoch {t.epochs_done + 1}/{t.epochs}",
                unit="batch",
                leave=False,
                file=sys.stdout,
                dynamic_ncols=True,
            )
        seen = min(k * t.batch_size, t.m)
        self.bar.set_postfix_str(f"loss {t.loss_sum / seen:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- the command ------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from digitnet.train import rundir

    if args.resume is not None:
        return _cmd_resume(args)
    from digitnet.data.datasets import load_dataset
    from digitnet.train.run import dataset_identity, prepare

    notes: list[str] = []
    config = _config_from_args(args, notes)
    out_dir = Path(args.out).expanduser() if args.out else None
    if out_dir is not None:
        rundir.check_out_dir(out_dir)
    _say_if_downloading(args)
    data = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        dtype=config.dtype,
        offline=args.offline,
        on_warning=warn,
    )
    training = prepare(config, data, on_warning=warn)
    identity = dataset_identity(data)
    made = out_dir is None or not out_dir.exists()
    run_dir = rundir.make_run_dir(out_dir)
    with rundir.locked(run_dir):  # one process per run folder, for the whole run
        if out_dir is not None:
            rundir.check_out_dir(out_dir, ours=True)  # again, under the lock: nobody wrote it
        try:
            return _start_in(run_dir, args, config, data, training, identity, notes)
        except BaseException:
            rundir.forget_failed_start(run_dir, made, out_dir is None)
            raise


def _start_in(
    run_dir: Path,
    args: argparse.Namespace,
    config: Any,
    data: Any,
    training: Any,
    identity: Any,
    notes: list[str],
) -> int:
    from digitnet.train import rundir

    rundir.remove_stale_parts(run_dir)
    rundir.mark_latest(run_dir)
    batch = "full" if config.batch_size is None else config.batch_size
    print(
        f"digitnet {__version__}: training {config.layers} ({config.activation}, "
        f"{config.loss}) with {config.optimizer}, α = {config.learning_rate:g}, "
        f"batch {batch}, {config.epochs} epoch{'' if config.epochs == 1 else 's'}"
    )
    print(
        f"data: {data.name}: {data.n_train:,} training images, {data.n_test:,} test images "
        f"({data.source})"
    )
    print(f"run folder: {run_dir}")
    print("\n".join(_settings(config, args) + [f"note: {note}" for note in notes]), flush=True)
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    rundir.write_json(
        run_dir / rundir.CONFIG,
        rundir.run_document(
            config,
            {"dataset": args.dataset, "data_dir": data_dir, "offline": args.offline},
            identity,
        ),
    )
    rundir.write_history(run_dir / rundir.HISTORY, [])
    status = _train_in(run_dir, training, identity)
    if status == 0:  # what to do with the model, in commands to copy
        run = shlex.quote(str(run_dir))
        commands = [
            f"digitnet evaluate {run}",
            f"digitnet serve {run}",
            f"digitnet predict {run} IMAGE",
        ]
        print("next: " + "  |  ".join(commands))
    return status


def _cmd_resume(args: argparse.Namespace) -> int:
    from digitnet.errors import ConfigError
    from digitnet.train import rundir

    options: dict[str, tuple[str, Any]] = getattr(args, "train_options", {})
    given = [
        flag
        for dest, (flag, default) in options.items()
        if dest not in RESUME_OPTIONS and getattr(args, dest, default) != default
    ]
    if given:
        raise ConfigError(
            f"--resume continues a run as it was set up; it cannot be given {', '.join(given)}.",
            "give only --epochs N (the new total) and the data options --data-dir, --dataset, "
            "--offline",
        )
    run_dir = Path(args.resume).expanduser()
    run = rundir.read_run_document(run_dir)
    with rundir.locked(run_dir):  # one process per run folder, for the whole run
        return _resume_in(run_dir, args, run)


def _resume_in(run_dir: Path, args: argparse.Namespace, run: dict[str, Any]) -> int:
    from digitnet.data.datasets import load_dataset
    from digitnet.train import rundir
    from digitnet.train.run import check_same_dataset, prepare

    config, recorded, data_args, run_doc = run["config"], run["dataset"], run["data"], run["doc"]
    ckpt = rundir.read_checkpoint(run_dir, config, recorded)
    if args.epochs is not None:
        config = config.replace(epochs=args.epochs)
    dataset = args.dataset if args.dataset is not None else data_args.get("dataset")
    data_dir = args.data_dir
    if data_dir is None and args.dataset is None:
        data_dir = data_args.get("data_dir")
    data = load_dataset(
        dataset,
        data_dir=data_dir,
        dtype=config.dtype,
        offline=args.offline or bool(data_args.get("offline")),
        on_warning=warn,
    )
    check_same_dataset(recorded, data)
    training = prepare(config, data, on_warning=warn)
    trainer = training.trainer
    if ckpt is not None:
        trainer.restore(ckpt.state)
    rundir.check_resumable(run_dir, trainer)
    rundir.remove_stale_parts(run_dir)
    rundir.mark_latest(run_dir)
    if trainer.k:
        at = f"epoch {trainer.epochs_done + 1}, batch {trainer.k}/{trainer.n_batches}"
    else:
        at = f"the end of epoch {trainer.epochs_done}"
    print(
        f"digitnet {__version__}: resuming {config.layers} at {at}, to {config.epochs} epochs"
        + ("" if ckpt is not None else " (no checkpoint yet: from the start)")
    )
    print(
        f"data: {data.name}: {data.n_train:,} training images, {data.n_test:,} test images "
        f"({data.source})"
    )
    print(f"run folder: {run_dir}", flush=True)
    rundir.write_json(run_dir / rundir.CONFIG, {**run_doc, "config": config.to_dict()})
    rundir.write_history(run_dir / rundir.HISTORY, trainer.history)
    return _train_in(run_dir, training, recorded)


def _train_in(run_dir: Path, training: Any, identity: dict[str, Any]) -> int:
    """Train in ``run_dir``; then write the results. Ctrl-C, SIGTERM or SIGHUP: the
    checkpoint of the current state, the resume command, and 130, 143 or 129 (128 + the
    signal's number, as a shell reports a command the signal ended)."""
    from digitnet.train import rundir
    from digitnet.train.checkpoint import FILENAME, save_checkpoint

    trainer, config = training.trainer, training.config
    ckpt_path = run_dir / FILENAME
    resume = f"resume with: digitnet train --resume {shlex.quote(str(run_dir))}"
    epochs = config.epochs
    every = 1 if epochs <= 50 else max(1, epochs // 25)
    bar = _ProgressBar(trainer) if sys.stdout.isatty() else None
    saved_at: list[tuple[int, int]] = []

    def save() -> None:
        with _sigint_deferred():
            save_checkpoint(ckpt_path, trainer, config, dataset=identity)
        saved_at[:] = [(trainer.epochs_done, trainer.k)]

    with open(run_dir / "history.csv", "a", encoding="utf-8") as history_csv:

        def on_epoch(record: dict[str, Any]) -> None:
            if bar is not None:
                bar.close()
            history_csv.write(rundir.csv_row(record))
            history_csv.flush()
            save()
            if record["epoch"] % every == 0 or record["epoch"] == epochs:
                print(_fmt_epoch(record, epochs), flush=True)

        trainer.callbacks.append(on_epoch)
        if bar is not None:
            trainer.on_batch.append(bar)
        with _StopFlag() as stop:
            trainer.should_stop = lambda: stop.raised
            try:
                training.train()
            finally:
                if bar is not None:
                    bar.close()
                trainer.callbacks.remove(on_epoch)
                trainer.should_stop = None
            if stop.raised:
                if saved_at != [(trainer.epochs_done, trainer.k)]:
                    save()
                if trainer.k:
                    at = f"epoch {trainer.epochs_done + 1}, batch {trainer.k}/{trainer.n_batches}"
                else:
                    at = (
                        f"epoch {trainer.epochs_done}, batch {trainer.n_batches}/"
                        f"{trainer.n_batches}"
                    )
                name = signal.Signals(stop.signum).name
                by = f" ({name})" if stop.signum != signal.SIGINT else ""
                with contextlib.suppress(OSError):  # (after SIGHUP the terminal may be gone)
                    print(f"interrupted{by} at {at}: checkpoint saved to {ckpt_path}")
                    print(resume, flush=True)
                return _exit_status(stop.signum)
    caught: list[int] = []
    try:
        with _as_interrupt(caught):
            _write_results(run_dir, training)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            print(
                f"interrupted while writing the results; training is done and checkpoint saved "
                f"to {ckpt_path}"
            )
            print(resume, flush=True)
        return _exit_status(caught[0] if caught else signal.SIGINT)
    return 0


def _write_results(run_dir: Path, training: Any) -> None:
    from digitnet.modelfile import save_model
    from digitnet.train import rundir
    from digitnet.train.run import write_pictures

    trainer, data, config = training.trainer, training.data, training.config
    result = training.finish()
    m = result.metrics
    if trainer.stopped_early:
        best = result.history[trainer.best_epoch - 1]
        print(
            f"stopped early after epoch {trainer.epochs_done}: no better validation loss for "
            f"{trainer.early_stopping} epochs; keeping epoch {trainer.best_epoch} "
            f"(val_loss {best['val_loss']:.4f})"
        )
    elif trainer.best_epoch is not None and trainer.best_epoch != trainer.epochs_done:
        print(f"keeping epoch {trainer.best_epoch}, the lowest validation loss")
    print(
        f"test accuracy {100 * m['test_accuracy']:.2f}% on {m['n_test']:,} test images "
        f"(train {100 * m['train_accuracy']:.2f}%, {m['seconds']:.1f} s)"
    )
    summary = {k: v for k, v in m.items() if k not in ("config", "history")}
    save_model(
        run_dir / "model.safetensors",
        result.network,
        metadata={
            "dataset": data.describe(),
            "metrics": summary,
            "config": m["config"],
            "seed": config.seed,
        },
    )
    written = ["model.safetensors", "history.csv"]
    try:
        pictures = write_pictures(run_dir, result, data)
    except Exception as exc:  # a picture is not worth losing the run for
        warn(f"could not draw the pictures ({type(exc).__name__}: {exc})")
    else:
        if pictures is None:
            print("pictures skipped: matplotlib is not installed")
        else:
            written += [p.name for p in pictures]
    rundir.write_json(run_dir / rundir.METRICS, {"digitnet_version": __version__, **m})
    written.insert(1, "metrics.json")
    if rundir.finish(run_dir, trainer.stopped_early):
        written.insert(3, "checkpoint.safetensors")
    print(f"wrote {', '.join(written)}")
    print(f"run folder: {run_dir}")
