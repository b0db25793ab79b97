"""The backward view's API (``digitnet.web.teach``): every number it sends equals the library's
backward pass for the same input, a step is one gradient-descent step, the model file never
changes, sessions are private and bounded in number and in memory, and bad requests get their
status and a message while the server keeps serving.

Models are built here with :meth:`Network.from_spec` and saved with ``save_model`` (no training:
the equalities hold for any weights); the digits are official MNIST test digits drawn as the pad
sends them (black on white PNG).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")  # Starlette's TestClient

from starlette.testclient import TestClient
from web_helpers import digit_png

PNG = {"content-type": "image/png"}

#: (spec, activation, output, cost, dtype, label smoothing, dropout): a ReLU cross-entropy net
#: with label smoothing as digitnet trains by default, the sigmoid-mse preset's shape in
#: float64, and a tanh net with dropout
MODELS = {
    "relu-ce": ("784-24-16-10", "relu", "softmax", "cross_entropy", np.float32, 0.1, 0.0),
    "sigmoid-mse": ("784-30-10", "sigmoid", "sigmoid", "mse", np.float64, 0.0, 0.0),
    "tanh-dropout": ("784-20-10", "tanh", "softmax", "cross_entropy", np.float32, 0.0, 0.2),
}


def make_model(folder: Path, kind: str) -> Path:
    from digitnet.costs import get_cost
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    spec, act, out, cost, dtype, smoothing, dropout = MODELS[kind]
    options = {"label_smoothing": smoothing} if cost == "cross_entropy" else {}
    net = Network.from_spec(
        spec,
        activation=act,
        output=out,
        cost=get_cost(cost, **options),
        dtype=dtype,
        seed=3,
        dropout=dropout,
    )
    run = folder / kind
    run.mkdir(parents=True)
    save_model(run / "model.safetensors", net, metadata={"dataset": {"name": "embedded"}})
    return run / "model.safetensors"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("teach") / "runs"
    for kind in MODELS:
        make_model(root, kind)
    return root


@pytest.fixture(scope="module")
def digits():
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    return data.X_test[:, :8].T.copy(), data.y_test[:8].copy()


def open_client(runs_root: Path, kind: str) -> TestClient:
    from digitnet.web.app import create_app

    return TestClient(
        create_app(runs_root / kind / "model.safetensors", runs_root, kind),
        base_url="http://127.0.0.1",  # a Host the server answers to
    )


@pytest.fixture(scope="module")
def client(runs_root):
    with open_client(runs_root, "relu-ce") as c:
        yield c


def library_input(png: bytes, dtype) -> np.ndarray:
    """What the server feeds the network for ``png``: the MNIST recipe, as a (784, 1) column."""
    from digitnet.imaging import preprocess, to_column

    return to_column(preprocess(png)).astype(dtype)


def backprop(client, png: bytes, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = client.post(f"/api/backprop?{query}", content=png, headers=PNG)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_backward_quantity_is_the_librarys(runs_root, digits, kind):
    """Each number equals the network's own forward and backward (Network.forward with
    training=True, then Network.backward) on the same column X: C, Y, dZᴸ, and per layer
    A_prev, Z, dZ, db, dWᴸ whole, the other dWˡ's summaries, recomputed as dZ·A_prevᵀ."""
    from digitnet.modelfile import load_model

    X, y = digits
    png = digit_png(X[0])
    net, _ = load_model(runs_root / kind / "model.safetensors")
    view = [layer for layer in net.layers if layer.kind != "dropout"]
    x = library_input(png, net.dtype)
    label = (int(y[0]) + 3) % 10
    with open_client(runs_root, kind) as c:
        doc = backprop(c, png, label=label, alpha=0.05)
    assert doc["label"] == label and doc["alpha"] == 0.05 and doc["steps_taken"] == 0
    assert doc["m"] == 1 and doc["dtype"] == net.dtype.name

    from digitnet.network import Network

    lib = Network(view, net.cost, dtype=net.dtype)  # the same layers, at inference (no dropout)
    A = lib.forward(x, training=True).copy()
    Y = lib.targets(np.array([label]))
    C = lib.cost_value(A, Y, lib.log_output())
    lib.backward(A, Y)
    tol = {"rtol": 1e-5, "atol": 1e-7} if net.dtype == np.float32 else {"rtol": 1e-12, "atol": 0}
    assert doc["C"] == pytest.approx(C, rel=tol["rtol"])
    np.testing.assert_allclose(doc["output"]["A"], A[:, 0], **tol)
    np.testing.assert_allclose(doc["output"]["Y"], Y[:, 0], **tol)
    smoothing = MODELS[kind][5]
    assert doc["cost"] == {"kind": net.cost.kind, "label_smoothing": smoothing}
    if smoothing:
        assert min(doc["output"]["Y"]) == pytest.approx(smoothing / 10)
    if doc["output"]["formula"] == "A - Y":
        np.testing.assert_allclose(doc["output"]["dZ"], A[:, 0] - Y[:, 0], **tol)
    assert doc["prediction"] == int(np.argmax(A[:, 0]))

    dense = lib.dense_layers
    assert [layer["l"] for layer in doc["layers"]] == list(range(1, len(dense) + 1))
    for layer, d in zip(doc["layers"], dense, strict=True):
        A_prev, dZ = np.array(layer["A_prev"]), np.array(layer["dZ"])
        np.testing.assert_allclose(A_prev, d.A_prev[:, 0], **tol)
        np.testing.assert_allclose(layer["db"], d.db[:, 0], **tol)
        np.testing.assert_allclose(dZ, d.db[:, 0], **tol)  # m = 1: db = dZ
        # dW = 1/m dZ·A_prevᵀ from the numbers sent, and the library's dW, agree
        dW = np.outer(dZ, A_prev)
        np.testing.assert_allclose(dW, d.dW, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer["dW_row_norms"], np.linalg.norm(dW, axis=1), rtol=1e-4)
        assert layer["dW_norm"] == pytest.approx(np.linalg.norm(d.dW), rel=1e-4)
        top = layer["dW_max"]
        assert top["value"] == pytest.approx(float(d.dW.max()), rel=1e-4)
        assert d.dW[top["row"], top["col"]] == pytest.approx(top["value"], rel=1e-6)
        assert (layer["n_out"], layer["n_in"]) == d.W.shape
        if "dW" in layer:
            np.testing.assert_allclose(layer["dW"], d.dW, **tol)
        if layer["g_prime"] is not None:
            g = np.array(layer["g_prime"])
            assert layer["off"] == int(np.count_nonzero(g == 0))
    assert "dW" in doc["layers"][-1] and all("dW" not in x for x in doc["layers"][:-1])
    np.testing.assert_allclose(np.array(doc["image28"]).reshape(784), x[:, 0], rtol=1e-6)


def test_a_units_row_of_dW1_is_the_drawing_scaled_by_its_dZ1(client, digits):
    png = digit_png(digits[0][1])
    doc = backprop(client, png, label=4)
    sid, x = doc["session"], np.array(doc["layers"][0]["A_prev"])
    dZ1 = np.array(doc["layers"][0]["dZ"])
    for unit in (int(np.argmax(np.abs(dZ1))), 0, len(dZ1) - 1):
        r = client.get(f"/api/backprop/1/{unit}?session={sid}")
        assert r.status_code == 200, r.text
        row = r.json()
        assert row["dZ"] == pytest.approx(dZ1[unit], rel=1e-6)
        np.testing.assert_allclose(row["dW"], dZ1[unit] * x, rtol=1e-5, atol=1e-8)
    assert len(client.get(f"/api/backprop/2/3?session={sid}").json()["dW"]) == 24
    for path in ("/api/backprop/0/0", "/api/backprop/4/0", "/api/backprop/1/24"):
        r = client.get(f"{path}?session={sid}")
        assert r.status_code == 404 and "error" in r.json(), path


def test_gradient_check_of_the_sessions_digit(client, digits):
    doc = backprop(client, digit_png(digits[0][2]), label=2)
    r = client.get(f"/api/gradcheck?session={doc['session']}&unit=5")
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["max_relative_error"] < 1e-6 and g["ok"]
    assert [x["l"] for x in g["layers"]] == [1, 2, 3]
    assert all(x["max_relative_error"] <= g["max_relative_error"] for x in g["layers"])
    assert g["row"] == {"unit": 5, "n": 784, "max_relative_error": g["row"]["max_relative_error"]}
    assert g["max_abs_difference"] < 1e-8 < g["max_abs_gradient"]


def test_a_step_is_one_gradient_descent_step_and_the_file_never_changes(
    runs_root, digits, tmp_path
):
    """θ := θ - α dθ: the saved copy's weights are the served model's, moved by α times the
    gradients the backprop answer sent; the model file's bytes never change; the copy is a NEW
    file whose metadata says where it came from."""
    from digitnet.modelfile import load_model

    model = runs_root / "relu-ce" / "model.safetensors"
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    X, y = digits
    png = digit_png(X[3])
    label = (int(y[3]) + 1) % 10
    alpha = 0.07
    with open_client(runs_root, "relu-ce") as c:
        doc = backprop(c, png, label=label, alpha=alpha)
        sid = doc["session"]
        r = c.post("/api/step", json={"session": sid})
        assert r.status_code == 200, r.text
        step = r.json()
        assert step["steps"] == 1 and step["alpha"] == alpha
        assert step["before"]["C"] == pytest.approx(doc["C"], rel=1e-6)
        assert step["before"]["prediction"] == doc["prediction"]
        assert step["after"]["C"] < step["before"]["C"]  # a small step downhill
        assert step["backprop"]["steps_taken"] == 1
        assert step["after"]["C"] == pytest.approx(step["backprop"]["C"], rel=1e-5)
        for key in ("accuracy", "test_cost"):
            assert step["before"][key] >= 0 and step["after"][key] >= 0
        saved = c.post("/api/save", json={"session": sid})
        assert saved.status_code == 200, saved.text
        path = Path(saved.json()["path"])
        again = c.post("/api/save", json={"session": sid}).json()["path"]
        assert again != str(path)  # a second save is another new file, never the first
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    assert path.parent == runs_root and path.name.startswith("relu-ce-taught-")
    original, _ = load_model(model)
    taught, meta = load_model(path)
    for layer, d0, d1 in zip(
        doc["layers"], original.dense_layers, taught.dense_layers, strict=True
    ):
        dW = np.outer(layer["dZ"], layer["A_prev"])
        np.testing.assert_allclose(d1.W, d0.W - alpha * dW, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            d1.b[:, 0], d0.b[:, 0] - alpha * np.array(layer["db"]), atol=1e-6
        )
    # the accuracy before and after: the served model's and the taught copy's own, on the
    # 1,000 official test digits of digitnet.explain
    from digitnet.explain import accuracy_sample

    Xs, ys = accuracy_sample(original.dtype)
    for net, side in ((original, "before"), (taught, "after")):
        cost, accuracy = net.evaluate(Xs, ys)
        assert step[side]["accuracy"] == accuracy
        assert step[side]["test_cost"] == pytest.approx(cost, rel=1e-9)
    how = meta["derived_from"]
    assert how["model"] == str(model) and how["sha256"] == before
    assert how["steps"] == [{"steps": 1, "label": label, "alpha": alpha}]
    assert meta["dataset"] == {"name": "embedded"} and "metrics" not in meta


def test_step_until_it_reads_the_label_then_reset(client, digits):
    X, _ = digits
    png = digit_png(X[4])
    first = backprop(client, png, alpha=0.5)
    assert first["label"] == first["prediction"]  # no label: the prediction
    sid = first["session"]
    target = int(np.argsort(first["probabilities"])[-2])  # the runner-up
    r = client.post("/api/step", json={"session": sid, "label": target, "until": True})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["reached"] and s["after"]["prediction"] == target == s["backprop"]["prediction"]
    assert s["predictions"][-1] == target and target not in s["predictions"][:-1]
    assert len(s["costs"]) == s["steps"] and s["steps"] >= 1
    r = client.post("/api/reset", json={"session": sid})
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["steps_taken"] == 0 and back["prediction"] == first["prediction"]
    assert back["label"] == target and back["C"] != s["backprop"]["C"]
    np.testing.assert_allclose(back["output"]["A"], first["output"]["A"], rtol=1e-6)
    r = client.post("/api/save", json={"session": sid})
    assert r.status_code == 400 and "take a step first" in r.json()["error"]


def test_two_sessions_do_not_interfere(client, digits):
    png = digit_png(digits[0][5])
    a = backprop(client, png, label=1, alpha=1.0)
    b = backprop(client, png, label=1, alpha=1.0)
    assert a["session"] != b["session"] and len(a["session"]) >= 22
    for _ in range(3):
        assert client.post("/api/step", json={"session": a["session"]}).status_code == 200
    a2 = backprop(client, png, label=1, session=a["session"])
    b2 = backprop(client, png, label=1, session=b["session"])
    fresh = backprop(client, png, label=1)
    assert a2["steps_taken"] == 3 and b2["steps_taken"] == 0
    assert a2["C"] < a["C"]
    assert b2["C"] == a["C"] == fresh["C"]  # the same arithmetic on the same weights
    np.testing.assert_array_equal(b2["output"]["dZ"], fresh["output"]["dZ"])


def test_sessions_are_bounded_and_forgotten_when_idle(runs_root):
    from digitnet.modelfile import load_model
    from digitnet.web.teach import RequestError, Sessions

    net, _ = load_model(runs_root / "relu-ce" / "model.safetensors")
    now = [0.0]
    sessions = Sessions(net, limit=3, idle=60.0, clock=lambda: now[0])
    s1, s2, s3 = sessions.open(), sessions.open(), sessions.open()
    assert s1.net is not net and s1.net.dense_layers[0].W is not net.dense_layers[0].W
    sessions.get(s1.id)  # s1 used: s2 is now the least recently used
    s4 = sessions.open()
    assert len(sessions) == 3
    with pytest.raises(RequestError) as err:
        sessions.get(s2.id)
    assert err.value.status == 404 and "expired" in err.value.message
    now[0] = 30.0
    sessions.get(s4.id)
    now[0] = 61.0  # s1 and s3 idle for over 60 s; s4 used 31 s ago
    assert sessions.get(s4.id) is s4
    assert len(sessions) == 1
    for sid in (s1.id, s3.id):
        with pytest.raises(RequestError):
            sessions.get(sid)
    assert sessions.bytes_bound() == 3 * 2 * sum(p.nbytes for _, p, _ in net.parameters())


def test_a_new_session_steps_with_the_models_own_alpha_if_it_was_trained_by_gradient_descent():
    from digitnet.web.teach import DEFAULT_ALPHA, default_alpha

    assert default_alpha({"config": {"optimizer": "sgd", "learning_rate": 3.0}}) == 3.0
    assert default_alpha({"config": {"optimizer": "nesterov", "learning_rate": 0.05}}) == 0.05
    for doc in (
        {"config": {"optimizer": "adam", "learning_rate": 0.001}},
        {"config": {"optimizer": "sgd", "learning_rate": 1e9}},
        {"config": {"optimizer": "sgd", "learning_rate": "fast"}},
        {"config": {"optimizer": "sgd", "learning_rate": True}},
        {"config": None},
        {},
    ):
        assert default_alpha(doc) == DEFAULT_ALPHA, doc


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, sys.argv[3])
    import numpy as np
    from starlette.testclient import TestClient
    from web_helpers import digit_png
    from digitnet.data.datasets import load_embedded
    from digitnet.web.app import create_app
    from digitnet.web import teach

    def peak():  # VmHWM, not ru_maxrss (which Linux carries over from the parent at exec)
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) * 1024

    X = load_embedded().X_test
    pngs = [digit_png(X[:, i]) for i in range(8)]
    if __name__ == "__main__":
        with TestClient(create_app(sys.argv[1], sys.argv[2]), base_url="http://127.0.0.1") as c:
            def session(i):
                png = pngs[i % 8]
                r = c.post(f"/api/backprop?label={i % 10}", content=png,
                           headers={"content-type": "image/png"})
                assert r.status_code == 200
                if i % 10 == 0:  # some stepped (a step replaces the copy: the same size)
                    sid = r.json()["session"]
                    assert c.post("/api/step", json={"session": sid}).status_code == 200
            for i in range(4):
                session(i)
            warm = peak()
            for i in range(4, 104):  # 100 more sessions, each opened and abandoned
                session(i)
            teacher = [r for r in c.app.routes if getattr(r, "path", "") == "/api/step"]
            sessions = teacher[0].endpoint.__self__.sessions
            print(json.dumps({"warm": warm, "after": peak(), "kept": len(sessions),
                              "bound": sessions.bytes_bound(), "limit": teach.MAX_SESSIONS}))
    """
)


def test_memory_stays_bounded_with_100_sessions_opened_and_abandoned(tmp_path):
    """Peak memory (VmHWM, in a fresh process) after 100 sessions, each with its own copy of
    a 784-256-128-10 float64 model (1.9 MB of weights), one in ten stepped: the growth stays
    within the sessions' stated bound, far below 100 copies."""
    from digitnet.modelfile import save_model
    from digitnet.network import Network

    net = Network.from_spec("784-256-128-10", dtype=np.float64, seed=0)
    (tmp_path / "big").mkdir()
    model = tmp_path / "big" / "model.safetensors"
    save_model(model, net)
    per_copy = sum(p.nbytes for _, p, _ in net.parameters())
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    tests = Path(__file__).parent
    r = subprocess.run(
        [sys.executable, str(script), str(model), str(tmp_path), str(tests)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["kept"] == m["limit"]
    growth = m["after"] - m["warm"]
    print(
        f"peak memory grew {growth / 1e6:.1f} MB over 100 sessions; bound {m['bound'] / 1e6:.1f}"
        f" MB; 100 copies would hold {100 * 2 * per_copy / 1e6:.0f} MB"
    )
    assert growth <= m["bound"] + 16e6
    assert growth < 100 * 2 * per_copy / 4


def test_bad_requests_get_their_status_and_the_server_keeps_serving(client, digits):
    from digitnet.web.teach import MAX_JSON_BYTES

    png = digit_png(digits[0][0])
    sid = backprop(client, png)["session"]
    cases = [
        ("label=10", 400, "label must be a digit from 0 to 9"),
        ("label=-1", 400, "label"),
        ("label=seven", 400, "label"),
        ("alpha=0", 400, "alpha"),
        ("alpha=-0.1", 400, "alpha"),
        ("alpha=nan", 400, "alpha"),
        ("alpha=inf", 400, "alpha"),
        ("alpha=1e9", 400, "at most 100"),
        ("alpha=abc", 400, "alpha"),
        ("session=AAAAAAAAAAAAAAAAAAAAAA", 404, "no session"),
        ("session=../../etc", 400, "session"),
    ]
    for query, status, text in cases:
        r = client.post(f"/api/backprop?{query}", content=png, headers=PNG)
        assert r.status_code == status, (query, r.text)
        assert text in r.json()["error"], (query, r.json())
    from digitnet.web.app import MAX_BODY_BYTES

    for ctype, body, status in [
        ("image/png", b"\0" * (MAX_BODY_BYTES + 1), 413),
        ("text/plain", png, 415),
        ("image/png", b"", 400),
        ("image/png", b"not an image", 400),
    ]:
        r = client.post("/api/backprop", content=body, headers={"content-type": ctype})
        assert r.status_code == status and "error" in r.json(), (ctype, r.text)
    steps = [
        ({"session": sid, "steps": 0}, 400, "steps must be"),
        ({"session": sid, "steps": 101}, 400, "from 1 to 100"),
        ({"session": sid, "steps": "many"}, 400, "steps"),
        ({"session": sid, "steps": True}, 400, "steps"),
        ({"session": sid, "alpha": 0}, 400, "alpha"),
        ({"session": sid, "alpha": "1e999"}, 400, "alpha"),
        ({"session": sid, "label": 12}, 400, "label"),
        ({"session": sid, "until": "yes"}, 400, "until"),
        ({"session": "B" * 22}, 404, "no session"),
        ({}, 400, "session"),
    ]
    for body, status, text in steps:
        r = client.post("/api/step", json=body)
        assert r.status_code == status, (body, r.text)
        assert text in r.json()["error"], (body, r.json())
    for path in ("/api/step", "/api/reset", "/api/save"):
        r = client.post(path, content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not JSON" in r.json()["error"]
        r = client.post(path, content=b"[1]", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "JSON object" in r.json()["error"]
        r = client.post(path, content=b"{}", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        big = json.dumps({"session": sid, "pad": "x" * MAX_JSON_BYTES}).encode()
        r = client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = client.post(path, json={"session": "C" * 22})
        assert r.status_code == 404
    for path in (
        f"/api/gradcheck?session={'D' * 22}",
        "/api/gradcheck",
        f"/api/backprop/1/0?session={'E' * 22}",
    ):
        r = client.get(path)
        assert r.status_code in (400, 404) and "error" in r.json(), path
    r = client.get(f"/api/gradcheck?session={sid}&unit=99")
    assert r.status_code == 404
    # the session survived all of that, and so did the server
    r = client.post("/api/step", json={"session": sid, "steps": 2})
    assert r.status_code == 200 and r.json()["steps"] == 2
    assert backprop(client, png, session=sid)["steps_taken"] == 2
