"""Reading run folders as ``digitnet train`` writes them, for the page's training view.

A run folder (see :mod:`digitnet.train.rundir`) holds ``config.json`` from the start,
``history.csv`` with a row per finished epoch (appended as training goes), a
``checkpoint.safetensors`` rewritten after every epoch, and, once training is over,
``model.safetensors`` and ``metrics.json``. This module only reads them, and reads them while
another process writes: a history line still being written is left for the next look, and the
checkpoint is replaced by a rename, so it is always whole.

Names come from requests, so :func:`run_folder` accepts only the name of a folder directly under
the runs folder: no separators, no ``..``, and the resolved path must still be inside. Inside a
run folder only regular files are read, never through a symlink (:func:`_open_regular`): a
``history.csv`` linking to ``/etc/passwd`` is no history. The listing leaves out symlinked
folders (``runs/latest`` names a run that is listed under its own name).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitnet.train.rundir import CHECKPOINT, CONFIG, HISTORY, METRICS, MODEL

#: a run's name: one path component of ordinary characters
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
#: a run counts as training while its files changed this recently (seconds), or within three of
#: its epochs, whichever is longer; after that, without metrics.json, it was stopped
_ALIVE_SECONDS = 30.0
#: at most this many first-layer units are drawn as tiles
MAX_TILES = 64
TILE_SCALE = 3


class RunNotFoundError(LookupError):
    """A run name that is not a run folder under the runs folder."""


@dataclass(frozen=True)
class RunState:
    name: str
    status: str  # "training", "finished" or "stopped"
    epochs_done: int
    epochs: int | None  # the planned total, from config.json
    has_model: bool
    modified: float
    rows: list[dict[str, Any]]
    weights_version: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "epochs_done": self.epochs_done,
            "epochs": self.epochs,
            "has_model": self.has_model,
            "modified": self.modified,
        }

    def history(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "epochs_done": self.epochs_done,
            "epochs": self.epochs,
            "rows": self.rows,
            "weights_version": self.weights_version,
        }


def _regular_stat(path: Path) -> os.stat_result | None:
    """``lstat`` of ``path`` if it is a regular file (not a symlink, folder, FIFO, device)."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _open_regular(path: Path) -> Any:
    """``path`` opened for reading if it is a regular file reached without a symlink; else
    None (O_NOFOLLOW, then fstat: the file checked is the file read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        return None
    return f


def _read_text(path: Path) -> str | None:
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        try:
            return f.read().decode("utf-8", errors="replace")
        except OSError:
            return None


def is_run(folder: Path) -> bool:
    return folder.is_dir() and any(_regular_stat(folder / f) for f in (CONFIG, HISTORY, MODEL))


def run_folder(root: Path, name: str) -> Path:
    """The folder of run ``name`` under ``root``; :class:`RunNotFoundError` for anything else."""
    if not _NAME.match(name) or ".." in name:
        raise RunNotFoundError(f"no run named {name!r}")
    folder = root / name
    try:
        inside = folder.resolve().parent == root.resolve()
    except OSError:
        inside = False
    if not inside or not is_run(folder):
        raise RunNotFoundError(f"no run named {name!r} in {root}")
    return folder


def list_runs(root: Path) -> list[RunState]:
    """Every run under ``root``, the most recently changed first."""
    if not root.is_dir():
        return []
    states = []
    for folder in root.iterdir():
        if _NAME.match(folder.name) and not folder.is_symlink() and is_run(folder):
            states.append(read_run(folder))
    return sorted(states, key=lambda s: s.modified, reverse=True)


def _mtime(path: Path) -> float | None:
    st = _regular_stat(path)
    return None if st is None else st.st_mtime


def signature(folder: Path) -> tuple:
    """What changes when the run's files change (for watching a run without reading it)."""
    out = []
    for name in (HISTORY, CHECKPOINT, MODEL, METRICS, CONFIG):
        st = _regular_stat(folder / name)
        out.append(None if st is None else (st.st_mtime_ns, st.st_size))
    return tuple(out)


def _number(text: str) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def read_history(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a ``history.csv`` (a line still being written is left out)."""
    text = _read_text(path)
    if text is None:
        return []
    lines = text.split("\n")[:-1]  # the part after the last newline is not complete yet
    if not lines:
        return []
    header = [h.strip() for h in lines[0].split(",")]
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) != len(header):
            continue
        rows.append({h: _number(c) for h, c in zip(header, cells, strict=True)})
    return rows


def _planned_epochs(folder: Path) -> int | None:
    try:
        doc = json.loads(_read_text(folder / CONFIG) or "")
        epochs = doc["config"]["epochs"]
    except (ValueError, KeyError, TypeError):
        return None
    return epochs if isinstance(epochs, int) else None


def read_run(folder: Path, now: float | None = None) -> RunState:
    rows = read_history(folder / HISTORY)
    times = {name: _mtime(folder / name) for name in (CONFIG, HISTORY, CHECKPOINT, MODEL, METRICS)}
    seen = [t for t in times.values() if t is not None]
    modified = max(seen) if seen else 0.0
    metrics, history = times[METRICS], times[HISTORY]
    if metrics is not None and (history is None or metrics >= history):
        status = "finished"
    else:
        epoch_seconds = [r["seconds"] for r in rows[-3:] if isinstance(r.get("seconds"), float)]
        alive = max(_ALIVE_SECONDS, 3.0 * max(epoch_seconds, default=0.0))
        now = time.time() if now is None else now
        status = "training" if now - modified < alive else "stopped"
    weights = folder / CHECKPOINT if times[CHECKPOINT] is not None else folder / MODEL
    st = _regular_stat(weights)
    version = None if st is None else f"{st.st_mtime_ns:x}-{st.st_size:x}"
    return RunState(
        name=folder.name,
        status=status,
        epochs_done=len(rows),
        epochs=_planned_epochs(folder),
        has_model=times[MODEL] is not None,
        modified=modified,
        rows=rows,
        weights_version=version,
    )


# -- the first layer's weights as tiles ----------------------------------------------------------
def first_weights(folder: Path) -> Any:
    """``W¹`` (``(n_out, 784)``) from the run's checkpoint, else its model file.

    Raises ``FileNotFoundError`` when the run has neither yet, ``ValueError`` when the file is
    not what it should be.
    """
    import safetensors

    for name, tensor in ((CHECKPOINT, "param/W1"), (MODEL, None)):
        path = folder / name
        opened = _open_regular(path)
        if opened is None:
            continue
        try:
            # Read through the descriptor opened (without following a symlink) above.
            with opened, safetensors.safe_open(f"/proc/self/fd/{opened.fileno()}", "numpy") as f:
                if tensor is None:  # a model file: W¹ is the tensor its document names
                    doc = json.loads((f.metadata() or {}).get("digitnet", "{}"))
                    tensor = doc.get("parameters", {}).get("W1", "0.weight")
                W = f.get_tensor(tensor)
        except Exception as exc:  # a file being replaced, or not a digitnet file
            raise ValueError(f"{path.name}: cannot read W1 ({exc})") from None
        if W.ndim != 2 or W.shape[1] != 784:
            raise ValueError(f"{path.name}: W1 has shape {W.shape}, not (n, 784)")
        return W
    raise FileNotFoundError("no checkpoint yet: the first epoch has not finished")


def weights_png(W: Any, columns: int = 8) -> bytes:
    """Up to :data:`MAX_TILES` rows of ``W¹`` as 28x28 tiles: red positive, blue negative.

    Each tile is scaled by its own largest magnitude, so every unit's pattern shows.
    """
    import numpy as np
    from PIL import Image

    W = np.asarray(W[:MAX_TILES], dtype=np.float64)
    n = W.shape[0]
    columns = min(columns, n)
    rows = -(-n // columns)
    scale = np.abs(W).max(axis=1, keepdims=True)
    V = (W / np.where(scale > 0, scale, 1.0)).reshape(n, 28, 28)
    side = 28 + 1
    canvas = np.full((rows * side + 1, columns * side + 1, 3), 255, dtype=np.float64)
    red = np.array([178.0, 24.0, 43.0])
    blue = np.array([33.0, 102.0, 172.0])
    white = np.array([247.0, 247.0, 247.0])
    for k in range(n):
        r, c = divmod(k, columns)
        v = V[k][..., None]
        tile = white + np.where(v > 0, v * (red - white), -v * (blue - white))
        canvas[1 + r * side : 1 + r * side + 28, 1 + c * side : 1 + c * side + 28] = tile
    img = Image.fromarray(np.rint(canvas).astype(np.uint8), mode="RGB")
    img = img.resize((img.width * TILE_SCALE, img.height * TILE_SCALE), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
