"""The run folder: what ``digitnet train`` writes, ``--resume`` reads, and the page watches.

A run folder holds:

==========================  =====================================================================
``config.json``             from the start: ``{"format": "digitnet-run", "digitnet_version",
                            "config" (the TrainConfig), "data" (how the data were asked for),
                            "dataset" (the dataset's name and digests)}``
``history.csv``             a row per finished epoch (:data:`HISTORY_FIELDS`), appended as
                            training goes
``checkpoint.safetensors``  rewritten after every epoch (and at Ctrl-C/SIGTERM): everything
                            ``--resume`` needs (:mod:`digitnet.train.checkpoint`)
``model.safetensors``       at the end: the trained network (:mod:`digitnet.modelfile`)
``metrics.json``            at the end: the accuracies and the whole history
``*.png``                   at the end: the pictures (:func:`digitnet.train.run.write_pictures`)
``.lock``                   while a process trains in the folder: its lock (:func:`locked`)
==========================  =====================================================================

Every file is written atomically (a temporary ``.NAME.*.part`` file, renamed): a kill part-way
leaves the previous file whole, and at worst a ``.part`` file, which :func:`remove_stale_parts`
removes when a run starts or resumes. One process at a time trains in a folder (:func:`locked`,
an exclusive ``flock`` held for the whole run). A finished run keeps ``checkpoint.safetensors``
only while ``--resume`` can use it (to train further with a larger ``--epochs``); a run that
stopped early cannot be continued, so its checkpoint is removed (:func:`finish`).

The runs folder's ``latest`` (a symlink to the run last started or resumed there, replaced
atomically) names the newest run: ``digitnet evaluate runs/latest``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitnet.errors import ConfigError

CONFIG = "config.json"
HISTORY = "history.csv"
CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
METRICS = "metrics.json"
LOCK = ".lock"
#: the files of a run folder
RUN_FILES = (CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS)
#: the columns of history.csv
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr")
RUN_FORMAT = "digitnet-run"
#: the folder that new runs go to, and the name of the symlink to the newest run in it
DEFAULT_ROOT = Path("runs")
LATEST = "latest"


# -- making one ---------------------------------------------------------------------------------
def check_out_dir(path: Path, ours: bool = False) -> None:
    """``--out DIR`` must be new or an empty folder; an existing run is never overwritten.

    A lock file and stale ``.part`` files (of a run that failed before it began) do not count.
    A folder another process trains in: a ConfigError naming it (``ours``: this process holds
    the folder's lock already).
    """
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(
            f"--out {path}: exists and is not a folder.", "choose another --out (a new folder)"
        )
    if not ours:
        with locked(path, keep=True):  # (says who trains there, if anyone does)
            pass
    found = [name for name in RUN_FILES if (path / name).exists()]
    if found:
        raise ConfigError(
            f"--out {path}: is already a run folder (it has {', '.join(found)}); a run folder "
            "is never overwritten.",
            f"--resume it (digitnet train --resume {shlex.quote(str(path))}), or choose "
            "another --out",
        )
    try:
        others = [p for p in path.iterdir() if p.name != LOCK and not _is_part(p.name)]
    except OSError as exc:
        raise _os_error(f"--out {path}", exc) from None
    if others:
        raise ConfigError(
            f"--out {path}: the folder is not empty.", "choose another --out (new or empty)"
        )


def make_run_dir(out: Path | None) -> Path:
    """The run folder, created: ``out``, or a new ``runs/DATE-TIME[-N]`` in the current folder."""
    try:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            return out
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = DEFAULT_ROOT / (stamp if n == 1 else f"{stamp}-{n}")
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


def _os_error(what: str, exc: OSError) -> ConfigError:
    hint = None
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a folder you can write with --out"
    return ConfigError(f"{what}: {exc.strerror or exc}.", hint)


# -- writing ------------------------------------------------------------------------------------
def write_json(path: Path, doc: dict[str, Any]) -> None:
    from digitnet.files import write_atomic

    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def csv_row(record: dict[str, Any]) -> str:
    """One line of history.csv for an epoch's record."""
    cells = []
    for key in HISTORY_FIELDS:
        value = record.get(key)
        cells.append(
            "" if value is None else str(int(value)) if key == "epoch" else repr(float(value))
        )
    return ",".join(cells) + "\n"


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    from digitnet.files import write_atomic

    text = ",".join(HISTORY_FIELDS) + "\n" + "".join(csv_row(r) for r in history)
    write_atomic(path, text.encode())


def run_document(config: Any, data: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    """The content of a new run's config.json."""
    from digitnet._version import __version__

    return {
        "format": RUN_FORMAT,
        "digitnet_version": __version__,
        "config": config.to_dict(),
        "data": data,
        "dataset": identity,
    }


# -- one process per folder ---------------------------------------------------------------------
@contextlib.contextmanager
def locked(run_dir: Path, keep: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` while the block runs: ``flock`` on its ``.lock``,
    which records the holder's pid and is removed when the block ends. Another process holding
    it: a ConfigError naming its pid. The lock goes with the process: a killed run never
    leaves its folder locked (a ``.lock`` file left behind is taken by the next run).

    ``keep``: only see whether another process holds it (the lock file is left as it was)."""
    import fcntl

    path = run_dir / LOCK
    if keep and not path.exists():
        yield
        return
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if keep:  # (unreadable: the real attempt will say so)
                yield
                return
            raise _os_error(str(run_dir), exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise ConfigError(
                f"{run_dir}: {who} is training in this run folder (it holds {path}).",
                "wait for it to finish, or train into another folder with --out",
            ) from None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same or keep:
            break
        os.close(fd)  # the holder before removed this file as we took it: take the new one
    if keep:
        os.close(fd)
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # (before the lock is released: whoever takes it next, takes a new one)
        os.close(fd)


def remove_stale_parts(run_dir: Path) -> list[str]:
    """Remove the ``.*.part`` files a killed write left in ``run_dir`` (call with the lock
    held: no other digitnet process is writing there); their names."""
    removed = []
    for path in run_dir.glob(".*.part"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path.name)
    return removed


def _is_part(name: str) -> bool:
    return name.startswith(".") and name.endswith(".part")


# -- the newest run -----------------------------------------------------------------------------
def mark_latest(run_dir: Path) -> None:
    """Point the runs folder's ``latest`` at ``run_dir`` (atomically: a new symlink renamed
    over the old), when ``run_dir`` is in the default runs folder or its folder already has a
    ``latest``. Never fails the run: a folder that cannot hold it keeps none."""
    root = run_dir.parent
    latest = root / LATEST
    try:
        if root.resolve() != DEFAULT_ROOT.resolve() and not latest.is_symlink():
            return
        if latest.exists() and not latest.is_symlink():
            return  # a run or a file the user named 'latest': left alone
        tmp = root / f".{LATEST}.{os.getpid()}.part"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, latest)
    except OSError:
        with contextlib.suppress(OSError):
            (root / f".{LATEST}.{os.getpid()}.part").unlink()


def newest_run(root: Path, needs: str = MODEL) -> Path | None:
    """The newest run under ``root`` that has file ``needs``: ``root/latest`` if it names one,
    else the one whose ``needs`` was written last; None if there is none."""
    latest = root / LATEST
    if latest.is_symlink() and (latest / needs).is_file():
        return latest.resolve()
    if not root.is_dir():
        return None
    candidates = [p.parent for p in root.glob(f"*/{needs}") if p.is_file()]
    candidates = [p for p in candidates if not p.is_symlink()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p / needs).stat().st_mtime)


# -- resuming -----------------------------------------------------------------------------------
def read_run_document(run_dir: Path) -> dict[str, Any]:
    """config.json of the run folder ``--resume`` names, checked: ``{"config": TrainConfig,
    "data": ..., "dataset": ..., "doc": the whole document}``."""
    from digitnet.train.checkpoint import config_from_dict

    where = shlex.quote(str(run_dir))
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {where}: no such folder.", "give a run folder of 'train'")
    path = run_dir / CONFIG
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"--resume {where}: not a run folder (it has no {CONFIG}).",
            "give a folder that 'digitnet train' wrote",
        ) from None
    except PermissionError as exc:
        raise _os_error(str(path), exc) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from None
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise ConfigError(
            f"{path}: not a digitnet run's {CONFIG} (field 'format' is not {RUN_FORMAT!r})."
        )
    config = config_from_dict(doc.get("config"), f"{path}: config")
    recorded, data = doc.get("dataset"), doc.get("data")
    if not isinstance(recorded, dict) or not isinstance(data, dict):
        raise ConfigError(f"{path}: the fields 'dataset' and 'data' must be objects.")
    return {"config": config, "data": data, "dataset": recorded, "doc": doc}


def read_checkpoint(run_dir: Path, config: Any, recorded: dict[str, Any]) -> Any:
    """The run's checkpoint (None if it has none yet), checked against its config.json.

    A finished run without a checkpoint stopped early (:func:`finish` removed it): nothing to
    continue, said as a ConfigError.
    """
    from digitnet.train.checkpoint import load_checkpoint

    path = run_dir / CHECKPOINT
    if not path.exists():
        if (run_dir / METRICS).exists():
            raise ConfigError(
                f"--resume {shlex.quote(str(run_dir))}: the run stopped early and its results "
                "are written.",
                "there is nothing to continue; start a new run to train longer",
            )
        return None
    ckpt = load_checkpoint(path)
    ours, theirs = config.to_dict(), ckpt.config.to_dict()
    differ = sorted(k for k in ours if k != "epochs" and ours[k] != theirs[k])
    if differ:
        raise ConfigError(
            f"{run_dir}: {CONFIG} and {CHECKPOINT} disagree on {', '.join(differ)}.",
            "the run folder was changed by hand; start a new run",
        )
    if ckpt.dataset is not None and ckpt.dataset.get("fingerprint") != recorded.get("fingerprint"):
        raise ConfigError(
            f"{run_dir}: {CONFIG} and {CHECKPOINT} record different datasets.",
            "the run folder was changed by hand; start a new run",
        )
    return ckpt


def check_resumable(run_dir: Path, trainer: Any) -> None:
    """Refuse to resume a run that has nothing left to do."""
    where = shlex.quote(str(run_dir))
    if trainer.finished and (run_dir / METRICS).exists():
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


# -- finishing ----------------------------------------------------------------------------------
def finish(run_dir: Path, stopped_early: bool) -> bool:
    """Once the results are written: drop what ``--resume`` can no longer use (the checkpoint
    of a run that stopped early). Whether the checkpoint is kept."""
    if stopped_early:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
        return False
    return True


def forget_failed_start(run_dir: Path, made: bool, under_runs: bool) -> None:
    """Remove the files of a run that failed before its first checkpoint: nothing to resume."""
    if (run_dir / CHECKPOINT).exists() or (run_dir / METRICS).exists():
        return
    for name in (CONFIG, HISTORY, LOCK):
        (run_dir / name).unlink(missing_ok=True)
    if made:
        with contextlib.suppress(OSError):  # not empty: something else is in there
            run_dir.rmdir()
            latest = run_dir.parent / LATEST
            if latest.is_symlink() and not latest.exists():
                latest.unlink()  # it named this run
            if under_runs:
                run_dir.parent.rmdir()  # runs/ itself, when this run was all it held
