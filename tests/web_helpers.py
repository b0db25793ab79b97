"""Helpers for the tests of ``digitnet serve`` (``test_web_page.py``, ``test_web_api.py``).

The server runs as a real subprocess (``python3 -m digitnet serve MODEL --port 0``), announcing
its address on stdout once it listens; Chromium is Debian's (``/usr/bin/chromium``), driven by
Playwright's sync API (never ``playwright install``: it cannot work on these machines).
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
#: without the background-networking flags Chromium keeps calling outside hosts (refused here)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)/")
#: the pad's pen is 1/13 of the pad wide (app.js: lineWidth), so in 28x28 pixels its radius is
PEN_RADIUS = 28 / 13 / 2


def subprocess_env() -> dict[str, str]:
    """The environment for the server and training subprocesses: one BLAS thread (a shared
    2-core machine), and Python's output unbuffered so the address line arrives at once."""
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


class Server:
    """``digitnet serve ARGS --port 0`` in a subprocess, stopped by :meth:`stop` (or as a
    context manager); its stderr goes to ``log``, its address is :attr:`url`."""

    def __init__(self, *args: str, log: Path, timeout: float = 60.0, **popen: Any) -> None:
        self.log_path = log
        self._log = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digitnet", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=subprocess_env(),
            **popen,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # keeps reading, so that the pipe never fills up
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        seen = []
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"digitnet serve said no address within {timeout} s") from None
            if line is None:
                self.stop()
                raise RuntimeError(
                    "digitnet serve exited before it listened:\n"
                    + "".join(seen)
                    + log.read_text(encoding="utf-8")
                )
            seen.append(line)
            found = URL_LINE.search(line)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}"
                return

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def digit_png(x: np.ndarray, side: int = 280, fmt: str = "PNG") -> bytes:
    """A ``(784,)`` MNIST digit as a pad would send it: black ink on white, ``side`` pixels."""
    from PIL import Image

    pixels = np.rint(255.0 * (1.0 - np.asarray(x, dtype=np.float64).reshape(28, 28)))
    img = Image.fromarray(pixels.astype(np.uint8), mode="L")
    img = img.resize((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.convert("RGB").save(out, fmt)
    return out.getvalue()


def request(
    url: str, data: bytes | None = None, content_type: str | None = None
) -> tuple[int, Any]:
    """A GET (or a POST of ``data``) answered with JSON: ``(status, document)``."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class ConsoleLog:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(f"console error: {msg.text} ({msg.location})")


class PredictRequests:
    """Counts the page's ``POST /api/predict`` requests, and the most in flight at once."""

    def __init__(self, page: Any) -> None:
        self.sent = 0
        self.in_flight = 0
        self.most_in_flight = 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    @staticmethod
    def _is_predict(req: Any) -> bool:
        return req.method == "POST" and req.url.endswith("/api/predict")

    def _start(self, req: Any) -> None:
        if self._is_predict(req):
            self.sent += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _end(self, req: Any) -> None:
        if self._is_predict(req):
            self.in_flight -= 1


# -- drawing like a person -------------------------------------------------------------------
def digit_runs(image: np.ndarray, threshold: float = 0.5) -> list[list[tuple[int, int]]]:
    """Each row's runs of ink (pixels above ``threshold``): ``[start, stop)`` column ranges."""
    ink = np.asarray(image).reshape(28, 28) > threshold
    rows = []
    for r in range(28):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ink[r], [0]]).astype(np.int8)))
        rows.append([(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)])
    return rows


def digit_strokes(image: np.ndarray, threshold: float = 0.5) -> list[list[tuple[float, float]]]:
    """A 28x28 digit as pen strokes, each a list of ``(x, y)`` points in pixels of the 28x28
    field (0 to 28), the way one fills a shape with a pen: back and forth along the rows.

    Each row's run of ink is drawn along the row's centre, shortened by the pen's radius at
    both ends so that the round pen covers the run and no more (a run shorter than the pen is a
    dot). A stroke goes on into the next row while a run there overlaps the one just drawn and
    starts near where the pen is, so a digit takes a few strokes, not one per row.
    """
    rows = digit_runs(image, threshold)
    used = [[False] * len(runs) for runs in rows]

    def ends(run: tuple[int, int]) -> tuple[float, float]:
        a, b = run[0] + PEN_RADIUS, run[1] - PEN_RADIUS
        return (a, b) if a <= b else ((run[0] + run[1]) / 2,) * 2

    strokes = []
    for r0, runs in enumerate(rows):
        for i0 in range(len(runs)):
            if used[r0][i0]:
                continue
            used[r0][i0] = True
            a, b = ends(runs[i0])
            stroke, run, r, x = [(a, r0 + 0.5), (b, r0 + 0.5)], runs[i0], r0, b
            while r + 1 < 28:
                best = None
                for j, nxt in enumerate(rows[r + 1]):
                    if used[r + 1][j] or nxt[1] <= run[0] or nxt[0] >= run[1]:
                        continue  # taken, or not touching the run above
                    na, nb = ends(nxt)
                    near, far = (na, nb) if abs(na - x) <= abs(nb - x) else (nb, na)
                    if abs(near - x) <= 2.5 and (best is None or abs(near - x) < best[0]):
                        best = (abs(near - x), j, near, far)
                if best is None:
                    break
                _, j, near, far = best
                used[r + 1][j] = True
                r, run, x = r + 1, rows[r + 1][j], far
                stroke += [(near, r + 0.5), (far, r + 0.5)]
            strokes.append(stroke)
    return strokes


def draw_digit(page: Any, image: np.ndarray, testid: str = "pad") -> None:
    """Draw a 28x28 digit on the pad with the mouse, stroke by stroke (pointer events)."""
    box = page.get_by_test_id(testid).bounding_box()
    assert box is not None, "the pad is not visible"
    sx, sy = box["width"] / 28, box["height"] / 28
    for stroke in digit_strokes(image):
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.up()


SETTLED = """() => {
  const p = document.querySelector('[data-testid=prediction]');
  const pad = document.querySelector('[data-testid=pad]');
  return p.dataset.state === 'ready' && p.dataset.version === pad.dataset.version;
}"""


def wait_settled(page: Any, timeout: float = 20_000) -> str:
    """Wait until the page shows the answer for the pad as it is now; return the digit shown."""
    page.wait_for_function(SETTLED, timeout=timeout)
    return page.get_by_test_id("prediction").text_content()


def pad_png(page: Any) -> bytes:
    """The pad's own pixels as a PNG (what the page sends)."""
    url = page.evaluate("() => document.querySelector('[data-testid=pad]').toDataURL('image/png')")
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


def click_unit(page: Any, testid: str, unit: int) -> None:
    """Click unit ``unit`` of a grid of units (a canvas with data-cols and data-cell)."""
    grid = page.get_by_test_id(testid)
    grid.scroll_into_view_if_needed()
    cols = int(grid.get_attribute("data-cols"))
    cell = float(grid.get_attribute("data-cell"))
    grid.click(position={"x": (unit % cols + 0.5) * cell, "y": (unit // cols + 0.5) * cell})


class Pages:
    """Pages opened in one browser for one test, their console errors gathered."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.logs: list[ConsoleLog] = []

    def open(
        self,
        path: str = "/",
        width: int = 1280,
        height: int = 800,
        init_script: str | None = None,
        **options: Any,
    ) -> Any:
        """A new page at ``path``, the model loaded; ``init_script`` runs before the page's
        own scripts; ``options`` go to ``new_context``."""
        context = self.browser.new_context(viewport={"width": width, "height": height}, **options)
        self.contexts.append(context)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        self.logs.append(ConsoleLog(page))
        page.goto(self.base_url + path)
        page.wait_for_selector("body[data-ready=true]", state="attached")
        return page

    def errors(self) -> list[str]:
        return [e for log in self.logs for e in log.errors]

    def assert_clean(self) -> None:
        errors = self.errors()
        assert not errors, "the page logged errors:\n" + "\n".join(errors)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
