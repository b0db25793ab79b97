"""The API of ``digitnet serve``: answers equal ``digitnet predict --json``, bad requests get
their status and a JSON error, run names never leave the runs folder, and a real server answers
1,000 requests from 8 concurrent clients, every one correctly."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")  # Starlette's TestClient

from conftest import run_cli
from starlette.testclient import TestClient
from web_helpers import Server, digit_png


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder holding one finished run ('a'), trained on the embedded digits."""
    root = tmp_path_factory.mktemp("web") / "runs"
    r = run_cli("train", "--preset", "seed-16-16", "--epochs", "4", "--out", str(root / "a"))
    assert r.returncode == 0, r.stderr
    return root


@pytest.fixture(scope="module")
def client(runs_root) -> TestClient:
    from digitnet.web.app import create_app

    app = create_app(runs_root / "a" / "model.safetensors", runs_root, "a")
    with TestClient(app, base_url="http://127.0.0.1") as c:  # (a Host the server answers to)
        yield c


@pytest.fixture(scope="module")
def digits():
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    return data.X_test[:, :20].T.copy(), data.y_test[:20].copy()


def test_model_describes_the_layers_in_the_seeds_names(client):
    r = client.get("/api/model")
    assert r.status_code == 200
    doc = r.json()
    names = [(layer["name"], layer["kind"], layer["shape"]) for layer in doc["layers"]]
    assert names == [
        ("Z1", "dense", [16]),
        ("A1", "relu", [16]),
        ("Z2", "dense", [16]),
        ("A2", "relu", [16]),
        ("Z3", "dense", [10]),
        ("A3", "softmax", [10]),
    ]
    assert doc["layers"][0]["W_shape"] == [16, 784] and doc["layers"][0]["b_shape"] == [16, 1]
    assert doc["n_parameters"] == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert doc["classes"] == [str(d) for d in range(10)]
    assert doc["metadata"]["dataset"]["name"] == "embedded"
    assert doc["limits"]["max_body_bytes"] > 1_000_000


def test_predict_equals_predict_json_and_the_layers_are_the_networks(
    client, runs_root, digits, tmp_path
):
    from digitnet.modelfile import load_model

    X, _ = digits
    files = []
    for i in range(6):
        fmt = "JPEG" if i % 3 == 2 else "PNG"
        path = tmp_path / f"d{i}.{fmt.lower()}"
        path.write_bytes(digit_png(X[i], side=200 + 40 * i, fmt=fmt))
        files.append(path)
    r = run_cli("predict", str(runs_root / "a"), *map(str, files), "--json")
    assert r.returncode == 0, r.stderr
    expected = json.loads(r.stdout)
    net, _ = load_model(runs_root / "a" / "model.safetensors")
    W1, b1 = net.dense_layers[0].W.astype(np.float64), net.dense_layers[0].b.astype(np.float64)
    for path, want in zip(files, expected, strict=True):
        ctype = "image/jpeg" if path.suffix == ".jpeg" else "image/png"
        headers = {"content-type": ctype}
        got = client.post("/api/predict", content=path.read_bytes(), headers=headers)
        assert got.status_code == 200, got.text
        answer = got.json()
        for key in ("prediction", "probabilities", "top3"):
            assert answer[key] == want[key], (path.name, key)
        image = np.array(answer["image28"])
        assert image.shape == (28, 28) and image.min() >= 0 and image.max() <= 1
        layers = {layer["name"]: np.array(layer["values"]) for layer in answer["layers"]}
        assert list(layers) == ["A0", "Z1", "A1", "Z2", "A2", "Z3", "A3"]
        x = layers["A0"]
        assert np.allclose(x.reshape(28, 28), image, atol=1e-3)
        # Z¹ = W¹·A⁰ + b¹ and A¹ = ReLU(Z¹), recomputed from the model's own weights.
        assert np.allclose(layers["Z1"], W1 @ x + b1[:, 0], rtol=1e-3, atol=1e-3)
        assert np.array_equal(layers["A1"], np.maximum(layers["Z1"], 0.0))
        assert np.allclose(layers["A3"], answer["probabilities"], atol=1e-5)
        assert int(np.argmax(layers["A3"])) == answer["prediction"]


def test_a_units_incoming_weights(client, runs_root):
    from digitnet.modelfile import load_model

    net, _ = load_model(runs_root / "a" / "model.safetensors")
    r = client.get("/api/weights/1/5")
    assert r.status_code == 200
    doc = r.json()
    assert doc["name"] == "W1" and doc["n_in"] == 784 and len(doc["weights"]) == 784
    assert np.allclose(doc["weights"], net.dense_layers[0].W[5], rtol=1e-5, atol=1e-7)
    assert doc["bias"] == pytest.approx(float(net.dense_layers[0].b[5, 0]), rel=1e-5, abs=1e-7)
    assert len(client.get("/api/weights/3/9").json()["weights"]) == 16
    for path in ("/api/weights/0/0", "/api/weights/4/0", "/api/weights/1/16", "/api/weights/3/10"):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path


def _png(img) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_bad_requests_get_their_status_and_the_server_keeps_serving(client, digits):
    from PIL import Image

    from digitnet.web.app import MAX_BODY_BYTES

    good = digit_png(digits[0][0])
    cases = [
        ("text/plain", good, 415, "PNG or JPEG"),
        ("", good, 415, "no Content-Type"),
        ("image/gif", good, 415, "image/gif"),
        ("image/png", b"", 400, "empty"),
        ("image/png", b"this is not an image", 400, "not an image"),
        ("image/png", good[: len(good) // 2], 400, "truncated"),
        ("image/png", _png(Image.new("L", (280, 280), 255)), 400, "blank"),
        ("image/png", b"\0" * (MAX_BODY_BYTES + 1), 413, "limit"),
    ]
    for ctype, body, status, text in cases:
        headers = {"content-type": ctype} if ctype else {}
        r = client.post("/api/predict", content=body, headers=headers)
        assert r.status_code == status, (ctype, text, r.text)
        message = r.json()["error"]
        assert text in message and "\n" not in message, message
    assert client.get("/api/predict").status_code == 405
    assert client.get("/api/nothing").status_code == 404
    assert "error" in client.get("/api/nothing").json()
    r = client.post("/api/predict", content=good, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["prediction"] == int(digits[1][0])


def test_run_names_never_leave_the_runs_folder(client, runs_root):
    secret = runs_root.parent / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "config.json").write_text("{}")
    (secret / "history.csv").write_text("epoch,loss\n1,0.5\n")
    for name in (
        "..",
        "...",
        ".",
        "%2e%2e",
        "..%2Fsecret",
        "%2Fetc",
        "a%2F..%2F..%2Fsecret",
        "secret",
        "nope",
        "a b",
        "~",
    ):
        for what in ("history", "events", "weights.png"):
            r = client.get(f"/api/runs/{name}/{what}")
            assert r.status_code == 404, (name, what, r.status_code)
            assert "error" in r.json()
    assert client.get("/api/runs/a/history").status_code == 200


def test_files_in_a_run_folder_are_read_only_if_regular_never_through_symlinks(client, runs_root):
    import shutil

    linked = runs_root / "linked"
    linked.mkdir()
    try:
        (linked / "config.json").write_text('{"config": {"epochs": 3}}')
        (linked / "history.csv").symlink_to("/etc/passwd")
        (linked / "checkpoint.safetensors").symlink_to(runs_root / "a" / "model.safetensors")
        (linked / "model.safetensors").symlink_to(runs_root / "a" / "model.safetensors")
        (runs_root / "latest").symlink_to("a")
        doc = client.get("/api/runs/linked/history").json()
        assert doc["rows"] == [] and doc["epochs_done"] == 0 and doc["epochs"] == 3
        assert "root" not in json.dumps(doc)
        r = client.get("/api/runs/linked/weights.png")
        assert r.status_code == 404, r.status_code
        runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
        assert not runs["linked"]["has_model"]
        assert "latest" not in runs  # a symlinked folder is listed under its own name only
    finally:
        shutil.rmtree(linked)
        (runs_root / "latest").unlink(missing_ok=True)


def test_runs_history_events_and_weights_of_a_finished_run(client, runs_root):
    listing = client.get("/api/runs").json()
    assert listing["served"] == "a"
    assert [(r["name"], r["status"], r["epochs_done"], r["epochs"]) for r in listing["runs"]] == [
        ("a", "finished", 4, 4)
    ]
    history = client.get("/api/runs/a/history").json()
    csv_lines = (runs_root / "a" / "history.csv").read_text().splitlines()
    assert (
        [row["epoch"] for row in history["rows"]]
        == [1, 2, 3, 4]
        == [int(line.split(",")[0]) for line in csv_lines[1:]]
    )
    assert history["rows"][-1]["val_accuracy"] == pytest.approx(float(csv_lines[-1].split(",")[4]))
    assert history["weights_version"]
    with client.stream("GET", "/api/runs/a/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("event:")]
    assert events == ["event: history", "event: done"]
    from PIL import Image

    r = client.get("/api/runs/a/weights.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (3 * (8 * 29 + 1), 3 * (2 * 29 + 1))  # 16 units: 8 x 2 tiles of 28 + 1


def test_a_run_being_written_and_a_stopped_one(client, runs_root):
    from digitnet.web.runs import read_run

    live = runs_root / "live"
    live.mkdir()
    (live / "config.json").write_text(json.dumps({"config": {"epochs": 5}}))
    # The second row is still being written (no newline yet): it is not read.
    (live / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds,lr\n1,0.9,0.7,,,0.5,0.1\n2,0.6"
    )
    history = client.get("/api/runs/live/history").json()
    assert history["status"] == "training" and history["epochs"] == 5
    assert history["rows"] == [
        {
            "epoch": 1,
            "loss": 0.9,
            "accuracy": 0.7,
            "val_loss": None,
            "val_accuracy": None,
            "seconds": 0.5,
            "lr": 0.1,
        }
    ]
    assert history["weights_version"] is None
    r = client.get("/api/runs/live/weights.png")
    assert r.status_code == 404 and "first epoch" in r.json()["error"]
    an_hour_ago = time.time() - 3600
    for f in live.iterdir():
        os.utime(f, (an_hour_ago, an_hour_ago))
    assert read_run(live).status == "stopped"
    names = [r["name"] for r in client.get("/api/runs").json()["runs"]]
    assert names == ["a", "live"]  # newest first


def _post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict]:
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def test_a_thousand_requests_from_eight_clients(runs_root, digits):
    from digitnet.imaging import preprocess
    from digitnet.predictor import Predictor

    X, _ = digits
    bodies = [digit_png(x, side=160 + 8 * i) for i, x in enumerate(X)]
    predictor = Predictor(runs_root / "a" / "model.safetensors")
    expected = [predictor.trace(preprocess(b))[0] for b in bodies]
    n_clients, per_client = 8, 125
    answers: list[list[tuple[int, int, dict]]] = [[] for _ in range(n_clients)]
    failures: list[BaseException] = []
    with Server(str(runs_root / "a"), log=runs_root.parent / "serve-1000.log") as server:
        address = urlsplit(server.url)

        def client_thread(k: int) -> None:
            conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
            try:
                for j in range(per_client):
                    i = (k * per_client + j) % len(bodies)
                    status, answer = _post(conn, bodies[i])
                    answers[k].append((i, status, answer))
            except BaseException as exc:  # reported below: a thread cannot fail the test
                failures.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=client_thread, args=(k,)) for k in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures
    flat = [a for per in answers for a in per]
    assert len(flat) == n_clients * per_client == 1000
    for i, status, answer in flat:
        assert status == 200, answer
        assert answer["prediction"] == expected[i]["prediction"]
        assert answer["probabilities"] == expected[i]["probabilities"]


def test_serve_command_line(tmp_path, runs_root):
    r = run_cli("serve", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: no trained model to serve") and "digitnet train" in lines[1]
    r = run_cli("serve", str(tmp_path / "missing"))
    assert r.returncode != 0 and "no such file or folder" in r.stderr.splitlines()[0]
    # With no MODEL, the newest run under --runs that has a model.
    with Server("--runs", str(runs_root), log=tmp_path / "serve.log") as server:
        address = urlsplit(server.url)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        conn.request("GET", "/api/model")
        doc = json.loads(conn.getresponse().read())
        assert doc["source"].endswith(str(Path("a") / "model.safetensors"))
        conn.close()
        # The port is taken now: a second server says so in one line.
        r = run_cli("serve", str(runs_root / "a"), "--port", str(address.port), fresh=True)
        assert r.returncode == 2 and "cannot listen" in r.stderr and "--port" in r.stderr
    # SIGTERM (as Ctrl-C) stops it gracefully, saying so.
    assert server.proc.returncode == 0
    assert (tmp_path / "serve.log").read_text().splitlines()[-1] == "digitnet serve: stopped"


def test_a_host_beyond_loopback_is_warned_about(runs_root):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitnet",
            "serve",
            str(runs_root / "a"),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "http://0.0.0.0:" in proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "warning: --host 0.0.0.0: the page will be reachable from the network" in err


def test_readers_take_requests_as_they_are_free_and_a_dead_one_is_replaced(
    runs_root, digits, capsys
):
    from digitnet.predictor import Predictor
    from digitnet.web.readers import Readers, answer

    model = runs_root / "a" / "model.safetensors"
    X, _ = digits
    bodies = [digit_png(x) for x in X[:10]]
    expected = [answer(Predictor(model), body) for body in bodies]  # read in this process
    readers = Readers(model, 2)

    async def scenario() -> tuple[list[bytes], int]:
        # Two at once: the second does not wait for the busy reader, so each reads one.
        got = list(await asyncio.gather(readers.read(bodies[0]), readers.read(bodies[1])))
        assert sorted(r.answered for r in readers) == [1, 1]
        # One at a time: the reader that finished last (its memory still in the caches) reads
        # the next.
        for body in bodies[2:6]:
            got.append(await readers.read(body))
        assert sorted(r.answered for r in readers) == [1, 5]
        # It dies between requests: it is replaced, and the request handed to it is read by its
        # replacement. Nothing is lost.
        busy = max(readers, key=lambda r: r.answered).process
        os.kill(busy.pid, signal.SIGKILL)
        busy.join()
        for body in bodies[6:8]:
            got.append(await readers.read(body))
        assert busy not in [r.process for r in readers]
        assert all(r.process.is_alive() for r in readers)
        # A request given up while a reader works on it: that reader is replaced, so that its
        # answer cannot reach the next request.
        before = {r.process for r in readers}
        task = asyncio.create_task(readers.read(bodies[8]))
        await asyncio.sleep(0)  # one turn of the loop: the image is on its way to a reader
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await readers.read(bodies[9]) == expected[9]
        assert len(before - {r.process for r in readers}) == 1
        return got, busy.pid

    try:
        got, killed = asyncio.run(scenario())
    finally:
        processes = [r.process for r in readers]
        readers.close()
    assert got == expected[:8]  # the same bytes as read in this process
    said = f"reader process {killed} ended (exit code -9); starting another"
    assert said in capsys.readouterr().err
    # Closing stops them.
    assert not any(p.is_alive() for p in processes)


def test_an_image_whose_readers_keep_dying_gets_503(tmp_path, runs_root, digits, monkeypatch):
    from digitnet.web import readers
    from digitnet.web.app import create_app

    app = create_app(runs_root / "a" / "model.safetensors", runs_root, None, readers=1)
    body = digit_png(digits[0][0])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        png = {"content-type": "image/png"}
        assert client.post("/api/predict", content=body, headers=png).status_code == 200
        # Every reader dies as it reads (as one would on an image that kills it).
        started: list[int] = []
        real_ask = readers._Reader.ask

        async def ask_and_die(self, data):
            started.append(self.process.pid)
            os.kill(self.process.pid, signal.SIGKILL)
            return await real_ask(self, data)

        monkeypatch.setattr(readers._Reader, "ask", ask_and_die)
        r = client.post("/api/predict", content=body, headers=png)
        assert r.status_code == 503, r.text
        assert "send it again" in r.json()["error"]
        assert len(set(started)) == 2  # the reader, and its replacement once
        # The server itself keeps serving, and its replacement reader reads.
        monkeypatch.setattr(readers._Reader, "ask", real_ask)
        assert client.get("/api/model").status_code == 200
        assert client.post("/api/predict", content=body, headers=png).status_code == 200
