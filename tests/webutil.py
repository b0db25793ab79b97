"""For the tests of ``digitnet serve``: a real server in a subprocess, and digits as images."""

from __future__ import annotations

import contextlib
import io
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

URL = re.compile(r"http://127\.0\.0\.1:\d+/")


@contextlib.contextmanager
def serve(*args: str, cwd: Path | None = None, timeout: float = 60) -> Iterator[str]:
    """Run ``digitnet serve ARGS --port 0``; yield its address once it listens; stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "digitnet", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = None
        while url is None:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"digitnet serve did not start in {timeout} s") from None
            if line is None:
                raise AssertionError(f"digitnet serve exited: {proc.wait()} {proc.stderr.read()}")
            found = URL.search(line)
            url = found.group(0) if found else None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def digit_png(x: np.ndarray, side: int = 280, fmt: str = "PNG") -> bytes:
    """A ``(784,)`` MNIST digit as a pad would send it: black ink on white, ``side`` pixels."""
    from PIL import Image

    pixels = np.rint(255.0 * (1.0 - np.asarray(x, dtype=np.float64).reshape(28, 28)))
    img = Image.fromarray(pixels.astype(np.uint8), mode="L")
    img = img.resize((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.convert("RGB").save(out, fmt)
    return out.getvalue()
