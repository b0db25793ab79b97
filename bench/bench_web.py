"""Latency of ``POST /api/predict`` on a real ``digitnet serve``, with 8 concurrent clients.

Starts ``digitnet serve`` in a subprocess on a 784-512-256-10 model (trained here for a few epochs
on the embedded digits unless ``--model`` names one), then sends what the page sends: real MNIST
test digits drawn black on white on the pad's 560x560 canvas, as PNG. First one client alone (the
latency of one request on an idle server), then ``--clients`` clients at once, each on its own keep-
alive connection, ``--requests`` requests in all. Prints p50, p90, p99 and max latency, requests per
second, how many answers were right (equal to the model's own answer for the same image), and the
machine's load average before and after (the server and the clients share this machine's 2 cores: a
busy neighbour shows up here).

    python bench/bench_web.py                   # target: p50 < 15 ms, p99 < 60 ms at 8 clients
    python bench/bench_web.py --model runs/a --requests 2000
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def canvas_png(x: np.ndarray) -> bytes:
    """A digit as the page's pad sends it: black ink on white, 560x560 PNG."""
    from PIL import Image

    pixels = np.rint(255.0 * (1.0 - x.reshape(28, 28))).astype(np.uint8)
    img = Image.fromarray(pixels, mode="L").resize((560, 560), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.convert("RGB").save(out, "PNG")
    return out.getvalue()


def train_model(folder: Path) -> Path:
    run = folder / "runs" / "bench"
    cmd = [sys.executable, "-m", "digitnet", "train", "--layers", "784-512-256-10",
           "--epochs", "3", "--out", str(run)]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run / "model.safetensors"


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "digitnet", "serve", str(model), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found:
            return proc, found.group(0)
    raise SystemExit(f"digitnet serve did not start (exit status {proc.wait()})")


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, int, dict]:
    t = time.perf_counter()
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
    r = conn.getresponse()
    data = r.read()
    return time.perf_counter() - t, r.status, json.loads(data)


def run_clients(address, bodies, expected, clients: int, total: int):
    """``total`` requests from ``clients`` threads; returns latencies, wall time, wrong count."""
    per = [total // clients + (k < total % clients) for k in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    wrong = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        conn.connect()
        start.wait()
        for j in range(per[k]):
            i = (k * 7919 + j) % len(bodies)
            seconds, status, answer = post(conn, bodies[i])
            latencies[k].append(seconds)
            if status != 200 or answer.get("prediction") != expected[i]:
                wrong[k] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return np.array([s for per_k in latencies for s in per_k]), wall, sum(wrong)


def report(name: str, lat: np.ndarray, wall: float, wrong: int) -> None:
    p50, p90, p99 = np.percentile(lat, [50, 90, 99]) * 1e3
    print(
        f"{name:<22} n={lat.size:5d}  p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p99 {p99:6.2f} ms  "
        f"max {lat.max() * 1e3:7.2f} ms  {lat.size / wall:7.1f} req/s  wrong {wrong}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model file or run folder (default: train one)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    from digitnet.data.datasets import load_embedded
    from digitnet.imaging import preprocess
    from digitnet.predictor import Predictor

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
        expected = [predictor.trace(preprocess(b))[0]["prediction"] for b in bodies]
        proc, url = start_server(model)
        try:
            address = urlsplit(url)
            print(f"model {arch}; server {url}; {os.cpu_count()} cores; load {loadavg()}")
            run_clients(address, bodies, expected, args.clients, 100)  # warm up
            lat, wall, wrong = run_clients(address, bodies, expected, 1, 200)
            report("1 client", lat, wall, wrong)
            lat, wall, wrong = run_clients(address, bodies, expected, args.clients, args.requests)
            report(f"{args.clients} clients", lat, wall, wrong)
            print(f"load average after: {loadavg()}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
