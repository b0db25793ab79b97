"""Latency of ``POST /api/predict`` on a real ``digitnet serve``, with 8 concurrent clients.

Starts ``digitnet serve`` in a subprocess on a 784-512-256-10 model (trained here for a few epochs
on the embedded digits unless ``--model`` names one), then sends what the page sends: real MNIST
test digits drawn black on white on the pad's 280x280 canvas, as PNG. First one client alone (the
latency of one request on an idle server), then ``--clients`` clients at once, each on its own keep-
alive connection posting its next image as soon as it has its answer, ``--requests`` requests in
all. Prints p50, p90, p99 and max latency, requests per second, how many answers were right (equal
to the model's own answer for the same image), the CPU time the server and the clients used per
request, the CPU one answer takes in a single process with nothing else to do (the work itself:
8 clients on 2 cores cannot see a p50 below 8 x that / 2), and the machine's load average before
and after (the server and the clients share this machine's 2 cores: a busy neighbour shows up
here).

    python bench/bench_web.py                   # target: p50 < 15 ms, p99 < 60 ms at 8 clients
    python bench/bench_web.py --model runs/a --requests 2000

Then the backward view's endpoints (``digitnet.web.teach``), one client on a kept-alive
connection, ``--backward`` requests each (0 skips them): ``POST /api/backprop`` of a pad drawing
with a label on one session, ``GET /api/backprop/1/{unit}`` (a row of ``dW¹``), ``POST /api/step``
(one step, with the accuracy on 1,000 test digits before and after), ``POST /api/step`` with
``until`` (from the trained model each time: a reset, a backprop with the runner-up as label,
then the timed request), ``POST /api/reset``, and ``GET /api/gradcheck`` (a tenth as many).
Target: a step well under 100 ms for 784-512-256-10.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def canvas_png(x: np.ndarray) -> bytes:
    """A digit as the page's pad sends it: black ink on white, a 280x280 RGBA PNG encoded as
    Chromium encodes a canvas (``canvas.toBlob``).

    Measured on PNGs captured from the pad in Debian's Chromium: every row has PNG filter 1
    (Sub) and the zlib stream is at its fastest level (header ``78 01``). Pillow's encoder picks
    a filter per row (mostly Paeth), whose decoding costs the server over twice as much, so it
    is written here by hand: the PNG signature, IHDR, one IDAT and IEND, each with its CRC.
    """
    from PIL import Image

    pixels = np.rint(255.0 * (1.0 - x.reshape(28, 28))).astype(np.uint8)
    grey = Image.fromarray(pixels, mode="L").resize((280, 280), Image.Resampling.BILINEAR)
    rgba = np.asarray(grey.convert("RGBA"), dtype=np.uint8).reshape(280, 280 * 4)
    sub = rgba.copy()
    sub[:, 4:] -= rgba[:, :-4]  # filter 1: each byte minus the byte 4 before (one pixel left)
    rows = np.hstack([np.ones((280, 1), dtype=np.uint8), sub])

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (280).to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])  # 8-bit RGBA, no interlace
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", header),
        chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
        chunk(b"IEND", b""),
    ])  # fmt: skip


def train_model(folder: Path) -> Path:
    run = folder / "runs" / "bench"
    cmd = [sys.executable, "-m", "digitnet", "train", "--layers", "784-512-256-10",
           "--epochs", "3", "--out", str(run)]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run / "model.safetensors"


def start_server(model: Path, workers: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "digitnet", "serve", str(model), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found:
            return proc, found.group(0)
    raise SystemExit(f"digitnet serve did not start (exit status {proc.wait()})")


class Client:
    """One keep-alive HTTP/1.1 connection that posts PNGs to /api/predict, without blocking:
    :func:`run_clients` drives all of them from one thread, as a load generator like wrk does.

    A few system calls per request and no header objects: the clients share the server's 2
    cores, so the less they take, the more the figures measure the server (a thread per client
    took 0.7 ms of CPU per request, mostly handing Python's GIL between eight threads; this takes
    a fifth of that). TCP_NODELAY, as browsers set it.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = bytearray()
        self.sent_at = 0.0

    def send(self, body: bytes) -> None:
        """Post ``body``; the clock of this request starts now."""
        head = (
            f"POST /api/predict HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sent_at = time.perf_counter()
        data = memoryview(head + body)
        while data:
            try:
                data = data[self.sock.send(data) :]
            except BlockingIOError:  # the socket's buffer is full: wait until it drains
                select.select([], [self.sock], [], 60)

    def receive(self) -> tuple[float, int, bytes] | None:
        """Read what has arrived: ``(seconds, status, answer body)`` once the answer is whole,
        else ``None``."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer = self.buffer
        buffer += chunk
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        header = bytes(buffer[:end])
        length = int(CONTENT_LENGTH.search(header).group(1))
        start = end + 4
        if len(buffer) < start + length:
            return None
        seconds = time.perf_counter() - self.sent_at
        answer = bytes(buffer[start : start + length])
        del buffer[: start + length]
        return seconds, int(header.split(b" ", 2)[1]), answer

    def close(self) -> None:
        self.sock.close()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def server_pids(proc: subprocess.Popen) -> list[int]:
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        children = []
    return [proc.pid, *map(int, children)]


def run_clients(address, bodies, expected, clients: int, total: int, before_close=None):
    """``total`` requests from ``clients`` connections, each posting its next image as soon as
    its previous answer is whole; returns latencies, wall time, the CPU seconds the clients
    used, and how many answers were wrong. ``before_close()`` is called after the last answer,
    while the connections are still open."""
    per = [total // clients + (k < total % clients) for k in range(clients)]
    conns = [Client(address.hostname, address.port) for _ in range(clients)]
    latencies: list[float] = []
    answers: list[tuple[int, int, bytes]] = []  # checked after the clock stops
    done = [0] * clients

    def image(k: int) -> int:
        return (k * 7919 + done[k]) % len(bodies)

    selector = selectors.DefaultSelector()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for k, conn in enumerate(conns):
        if per[k]:
            selector.register(conn.sock, selectors.EVENT_READ, k)
            conn.send(bodies[image(k)])
    active = sum(n > 0 for n in per)
    while active:
        for key, _ in selector.select():
            k = key.data
            got = conns[k].receive()
            if got is None:
                continue
            seconds, status, data = got
            latencies.append(seconds)
            answers.append((image(k), status, data))
            done[k] += 1
            if done[k] < per[k]:
                conns[k].send(bodies[image(k)])
            else:
                selector.unregister(conns[k].sock)
                active -= 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if before_close is not None:
        before_close()
    for conn in conns:
        conn.close()
    wrong = sum(
        status != 200 or json.loads(data).get("prediction") != expected[i]
        for i, status, data in answers
    )
    return np.array(latencies), wall, cpu, wrong


def report(name: str, lat: np.ndarray, wall: float, wrong: int) -> None:
    p50, p90, p99 = np.percentile(lat, [50, 90, 99]) * 1e3
    print(
        f"{name:<22} n={lat.size:5d}  p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p99 {p99:6.2f} ms  "
        f"max {lat.max() * 1e3:7.2f} ms  {lat.size / wall:7.1f} req/s  wrong {wrong}"
    )


def backward_bench(url: str, bodies: list[bytes], n: int) -> None:
    """p50 and p99 of each endpoint of the backward view, one request at a time."""
    import http.client

    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    times: dict[str, list[float]] = {}

    def call(name: str | None, method: str, path: str, body=None, ctype=None) -> dict:
        headers = {"Content-Type": ctype} if ctype else {}
        t = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        seconds = time.perf_counter() - t
        if res.status != 200:
            raise SystemExit(f"{method} {path}: {res.status} {data[:200]!r}")
        if name:
            times.setdefault(name, []).append(seconds)
        return json.loads(data)

    def post(name, path, doc):
        return call(name, "POST", path, json.dumps(doc).encode(), "application/json")

    first = call(None, "POST", "/api/backprop", bodies[0], "image/png")
    sid = first["session"]
    n1 = first["layers"][0]["n_out"]
    for i in range(n):  # the drawing changes: the view follows it
        label = (i * 3) % 10
        call("backprop", "POST", f"/api/backprop?session={sid}&label={label}", bodies[i % 100],
             "image/png")  # fmt: skip
    for i in range(n):
        call("dW1 row", "GET", f"/api/backprop/1/{(i * 37) % n1}?session={sid}")
    for i in range(n):
        if i % 10 == 0:
            post("reset", "/api/reset", {"session": sid})
            call(None, "POST", f"/api/backprop?session={sid}&label={i % 10}", bodies[i % 100],
                 "image/png")  # fmt: skip
        post("step", "/api/step", {"session": sid, "alpha": 0.02})
    steps = []
    for i in range(max(1, n // 4)):
        post("reset", "/api/reset", {"session": sid})
        doc = call(None, "POST", f"/api/backprop?session={sid}", bodies[i % 100], "image/png")
        runner_up = int(np.argsort(doc["probabilities"])[-2])
        r = post("step-until", "/api/step", {"session": sid, "label": runner_up, "until": True,
                                             "alpha": 0.05})  # fmt: skip
        steps.append(r["steps"])
    for _ in range(max(1, n // 10)):
        call("gradcheck", "GET", f"/api/gradcheck?session={sid}")
    conn.close()
    for name, lat in times.items():
        p50, p99 = np.percentile(np.array(lat) * 1e3, [50, 99])
        extra = ""
        if name == "step-until":
            extra = f"  steps p50 {np.median(steps):.0f}, max {max(steps)} (α = 0.05)"
        print(f"{name:<12} n={len(lat):4d}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model file or run folder (default: train one)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="digitnet serve --workers")
    parser.add_argument(
        "--backward", type=int, default=200, help="requests per backward-view endpoint (0: none)"
    )
    args = parser.parse_args()

    from digitnet.data.datasets import load_embedded
    from digitnet.predictor import Predictor
    from digitnet.web.readers import answer

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = Path(args.model)
            model = model / "model.safetensors" if model.is_dir() else model
        else:
            print("training a 784-512-256-10 model for 3 epochs on the embedded digits ...")
            model = train_model(Path(tmp))
        data = load_embedded()
        bodies = [canvas_png(data.X_test[:, i]) for i in range(100)]
        predictor = Predictor(model)
        arch = "-".join(str(n) for n in [784, *(d.W.shape[0] for d in predictor.net.dense_layers)])
        expected = [json.loads(answer(predictor, b))["prediction"] for b in bodies]
        alone = []  # the CPU one answer takes here, in one process with nothing else to do
        for b in bodies * 3:
            t = time.process_time()
            answer(predictor, b)
            alone.append(time.process_time() - t)
        alone_ms = 1e3 * float(np.median(alone))
        proc, url = start_server(model, args.workers)
        try:
            address = urlsplit(url)
            print(f"model {arch}; server {url}; {os.cpu_count()} cores; load {loadavg()}")
            cores = os.cpu_count() or 1
            print(
                f"one answer alone in this process: {alone_ms:.2f} ms of CPU (with {args.clients} "
                f"clients on {cores} cores, a p50 below {args.clients * alone_ms / cores:.1f} ms "
                "would need the server to spend less than that on a request)"
            )
            run_clients(address, bodies, expected, args.clients, 100)  # warm up
            lat, wall, _, wrong = run_clients(address, bodies, expected, 1, 200)
            report("1 client", lat, wall, wrong)
            pids = server_pids(proc)
            front, back = [cpu_seconds(pids[:1])], [cpu_seconds(pids[1:])]

            def before_close() -> None:
                front.append(cpu_seconds(pids[:1]))
                back.append(cpu_seconds(pids[1:]))

            lat, wall, cpu, wrong = run_clients(
                address, bodies, expected, args.clients, args.requests, before_close
            )
            report(f"{args.clients} clients", lat, wall, wrong)
            http_ms, read_ms = (1e3 * (x[1] - x[0]) / lat.size for x in (front, back))
            print(
                f"CPU per request: server {http_ms + read_ms:.2f} ms (HTTP {http_ms:.2f} ms, "
                f"{args.workers} readers {read_ms:.2f} ms), clients {1e3 * cpu / lat.size:.2f} ms"
            )
            print(f"load average after: {loadavg()}")
            if args.backward:
                print(f"the backward view's endpoints, one client; load {loadavg()}")
                backward_bench(url, bodies, args.backward)
                print(f"load average after: {loadavg()}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
