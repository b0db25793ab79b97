"""``digitnet train``: train a network on digits, into a run folder, and report its accuracy.

A run folder (a new ``runs/DATE-TIME`` by default, or ``--out DIR``, which must be new or empty)
receives ``config.json`` at the start, ``history.csv`` one row per epoch as training goes,
``checkpoint.safetensors`` after every epoch, and at the end ``model.safetensors``,
``metrics.json`` and the pictures. An existing run folder is never overwritten by a new run;
``--resume RUN_DIR`` continues one from its checkpoint.

Ctrl-C stops training after the current mini-batch: the checkpoint is saved (atomically, with
further Ctrl-C deferred until it is written), the exact command to resume is printed, and the
command exits with status 130. Resuming gives the same weights as a run never interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitnet._version import __version__
from digitnet.commands import Formatter, batch_size, fraction, positive_float, positive_int, warn

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

#: the files of a run folder
RUN_FILES = (
    "config.json",
    "history.csv",
    "checkpoint.safetensors",
    "model.safetensors",
    "metrics.json",
)
#: the columns of history.csv
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr")
#: options that --resume accepts (the rest would change the run)
RESUME_OPTIONS = ("resume", "epochs", "data_dir", "dataset", "offline")
RUN_FORMAT = "digitnet-run"


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


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
        choices=LOSS_NAMES,
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
        choices=AUGMENT_NAMES,
        help="distort each training batch afresh: random shift, rotation, scale and shear "
        "(affine), smooth elastic warps (Simard et al. 2003), or both",
    )
    train.add_argument("--weight-decay", type=float, metavar="λ", help="L2 weight decay")
    train.add_argument(
        "--label-smoothing", type=fraction, metavar="ε", help="label smoothing for cross-entropy"
    )
    train.add_argument(
        "--schedule", choices=SCHEDULE_NAMES, help="learning-rate schedule"
    )
    train.add_argument(
        "--init",
        choices=INIT_NAMES,
        help="weight initialisation",
    )
    train.add_argument(
        "--validation",
        type=fraction,
        metavar="FRACTION",
        help="fraction of the training set held out for validation",
    )
    train.add_argument("--dtype", choices=DTYPE_NAMES, help="floating-point type")
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
        help="ramp the learning rate up linearly over the first EPOCHS epochs",
    )
    train.add_argument(
        "--step-epochs",
        type=positive_float,
        metavar="EPOCHS",
        help="with --schedule step: multiply the learning rate by --gamma every EPOCHS epochs",
    )
    train.add_argument(
        "--gamma", type=positive_float, metavar="X", help="the step schedule's factor"
    )
    train.add_argument(
        "--min-lr-factor",
        type=fraction,
        metavar="F",
        help="with --schedule cosine: the lowest learning rate, as a fraction of --lr",
    )
    train.add_argument(
        "--early-stopping",
        type=positive_int,
        metavar="N",
        help="stop when the validation loss has not improved for N epochs, and keep the "
        "weights of the best epoch",
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
        "warmup": "warmup_epochs",
        "step_epochs": "step_epochs",
        "gamma": "gamma",
        "min_lr_factor": "min_factor",
        "early_stopping": "early_stopping",
        "init": "init",
        "validation": "validation_fraction",
        "dtype": "dtype",
    }
    for arg, field_name in mapping.items():
        value = getattr(args, arg, None)
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


# -- the run folder ---------------------------------------------------------------------------
def _check_out_dir(path: Path) -> None:
    """``--out DIR`` must be new or an empty folder; an existing run is never overwritten."""
    from digitnet.errors import ConfigError

    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(
            f"--out {path}: exists and is not a folder.", "choose another --out (a new folder)"
        )
    found = [name for name in RUN_FILES if (path / name).exists()]
    if found:
        raise ConfigError(
            f"--out {path}: is already a run folder (it has {', '.join(found)}); a run folder "
            "is never overwritten.",
            f"--resume it (digitnet train --resume {shlex.quote(str(path))}), or choose "
            "another --out",
        )
    if any(path.iterdir()):
        raise ConfigError(
            f"--out {path}: the folder is not empty.", "choose another --out (new or empty)"
        )


def _make_run_dir(out: Path | None) -> Path:
    """The run folder, created: ``out``, or a new ``runs/DATE-TIME[-N]`` in the current folder."""
    from digitnet.errors import ConfigError

    try:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            return out
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = Path("runs") / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder ({exc.strerror or exc}: {exc.filename}).",
            "choose a writable folder with --out",
        ) from None
    raise ConfigError("runs/: cannot find a free name for a new run folder.", "use --out DIR")


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    from digitnet.data.idx import write_atomic

    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def _csv_row(record: dict[str, Any]) -> str:
    cells = []
    for key in HISTORY_FIELDS:
        value = record.get(key)
        cells.append(
            "" if value is None else str(int(value)) if key == "epoch" else repr(float(value))
        )
    return ",".join(cells) + "\n"


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    from digitnet.data.idx import write_atomic

    text = ",".join(HISTORY_FIELDS) + "\n" + "".join(_csv_row(r) for r in history)
    write_atomic(path, text.encode())


# -- Ctrl-C -----------------------------------------------------------------------------------
class _StopFlag:
    """A SIGINT handler that only raises a flag: training stops after the current mini-batch."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None
        self._installed = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.raised = True

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self)
            self._installed = True
        except ValueError:  # not the main thread: no signals here
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C off while a file is written; deliver it to the previous handler after."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt now


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
    if args.resume is not None:
        return _cmd_resume(args)
    from digitnet.data.datasets import load_dataset
    from digitnet.train.run import dataset_identity, prepare

    config = _config_from_args(args)
    out_dir = Path(args.out).expanduser() if args.out else None
    if out_dir is not None:
        _check_out_dir(out_dir)
    data = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        dtype=config.dtype,
        offline=args.offline,
        on_warning=warn,
    )
    training = prepare(config, data)
    identity = dataset_identity(data)
    made = out_dir is None or not out_dir.exists()
    run_dir = _make_run_dir(out_dir)
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
    print(f"run folder: {run_dir}", flush=True)
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    _write_json(
        run_dir / "config.json",
        {
            "format": RUN_FORMAT,
            "digitnet_version": __version__,
            "config": config.to_dict(),
            "data": {"dataset": args.dataset, "data_dir": data_dir, "offline": args.offline},
            "dataset": identity,
        },
    )
    _write_history(run_dir / "history.csv", [])
    try:
        return _train_in(run_dir, training, identity)
    except BaseException:
        _forget_failed_start(run_dir, made, out_dir is None)
        raise


def _forget_failed_start(run_dir: Path, made: bool, under_runs: bool) -> None:
    """Remove the files of a run that failed before its first checkpoint: nothing to resume."""
    if (run_dir / "checkpoint.safetensors").exists():
        return
    for name in ("config.json", "history.csv"):
        (run_dir / name).unlink(missing_ok=True)
    if made:
        with contextlib.suppress(OSError):  # not empty: something else is in there
            run_dir.rmdir()
            if under_runs:
                run_dir.parent.rmdir()  # runs/ itself, when this run was all it held


def _cmd_resume(args: argparse.Namespace) -> int:
    from digitnet.data.datasets import load_dataset
    from digitnet.errors import ConfigError
    from digitnet.train.checkpoint import FILENAME, config_from_dict, load_checkpoint
    from digitnet.train.run import check_same_dataset, prepare

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
    where = shlex.quote(str(run_dir))
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {where}: no such folder.", "give a run folder of 'train'")
    try:
        run_doc = json.loads((run_dir / "config.json").read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"--resume {where}: not a run folder (it has no config.json).",
            "give a folder that 'digitnet train' wrote",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{run_dir / 'config.json'}: cannot be read ({exc}).") from None
    if not isinstance(run_doc, dict) or run_doc.get("format") != RUN_FORMAT:
        raise ConfigError(
            f"{run_dir / 'config.json'}: not a digitnet run's config.json "
            f"(field 'format' is not {RUN_FORMAT!r})."
        )
    config = config_from_dict(run_doc.get("config"), f"{run_dir / 'config.json'}: config")
    recorded = run_doc.get("dataset")
    data_args = run_doc.get("data")
    if not isinstance(recorded, dict) or not isinstance(data_args, dict):
        raise ConfigError(
            f"{run_dir / 'config.json'}: the fields 'dataset' and 'data' must be objects."
        )
    ckpt_path = run_dir / FILENAME
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ckpt is not None:
        ours, theirs = config.to_dict(), ckpt.config.to_dict()
        differ = sorted(k for k in ours if k != "epochs" and ours[k] != theirs[k])
        if differ:
            raise ConfigError(
                f"{run_dir}: config.json and {FILENAME} disagree on {', '.join(differ)}.",
                "the run folder was changed by hand; start a new run",
            )
        if ckpt.dataset is not None and ckpt.dataset.get("fingerprint") != recorded.get(
            "fingerprint"
        ):
            raise ConfigError(
                f"{run_dir}: config.json and {FILENAME} record different datasets.",
                "the run folder was changed by hand; start a new run",
            )
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
    training = prepare(config, data)
    trainer = training.trainer
    if ckpt is not None:
        trainer.restore(ckpt.state)
    if trainer.finished and (run_dir / "metrics.json").exists():
        if trainer.stopped_early:
            raise ConfigError(
                f"--resume {where}: the run stopped early at epoch {trainer.epochs_done} (its "
                f"best epoch was {trainer.best_epoch}) and its results are written.",
                "there is nothing to continue; start a new run to train longer",
            )
        raise ConfigError(
            f"--resume {where}: the run has finished its {trainer.epochs_done} epochs and its "
            f"results are written.",
            f"to train it further, give a larger total: --epochs {trainer.epochs_done + 10}",
        )
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
    _write_json(run_dir / "config.json", {**run_doc, "config": config.to_dict()})
    _write_history(run_dir / "history.csv", trainer.history)
    return _train_in(run_dir, training, recorded)


def _train_in(run_dir: Path, training: Any, identity: dict[str, Any]) -> int:
    """Train in ``run_dir`` (Ctrl-C: checkpoint, resume command, 130); then write the results."""
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
            history_csv.write(_csv_row(record))
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
                print(f"interrupted at {at}: checkpoint saved to {ckpt_path}")
                print(resume, flush=True)
                return 130
    try:
        _write_results(run_dir, training)
    except KeyboardInterrupt:
        print(
            f"interrupted while writing the results; training is done and checkpoint saved to "
            f"{ckpt_path}"
        )
        print(resume, flush=True)
        return 130
    return 0


def _write_results(run_dir: Path, training: Any) -> None:
    from digitnet.modelfile import save_model
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
    written = ["model.safetensors", "history.csv", "checkpoint.safetensors"]
    try:
        pictures = write_pictures(run_dir, result, data)
    except Exception as exc:  # a picture is not worth losing the run for
        warn(f"could not draw the pictures ({type(exc).__name__}: {exc})")
    else:
        if pictures is None:
            print("pictures skipped: digitnet.reports is not available")
        else:
            written += [p.name for p in pictures]
    _write_json(run_dir / "metrics.json", {"digitnet_version": __version__, **m})
    written.insert(1, "metrics.json")
    print(f"wrote {', '.join(written)}")
    print(f"run folder: {run_dir}")
