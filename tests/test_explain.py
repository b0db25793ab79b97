"""digitnet.explain: the backward pass on one digit, its gradient check and the teaching step.

Every quantity is checked against the network's own ``backward`` (the code training runs) and
against PyTorch autograd in float64; the teaching step against the GradientDescent optimiser.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitnet import explain
from digitnet.activations import ReLU
from digitnet.errors import ConfigError, ShapeError
from digitnet.layers import Dense
from digitnet.network import Network
from digitnet.optim import GradientDescent

CONFIGS = [
    # spec, hidden activation, cost, dtype, dropout, label smoothing
    ("784-24-16-10", "relu", "ce", np.float64, 0.2, 0.1),
    ("784-16-16-10", "sigmoid", "mse", np.float64, 0.0, 0.0),
    ("784-20-10", "leaky_relu", "ce", np.float32, 0.0, 0.0),
    ("784-12-12-12-10", "tanh", "ce", np.float32, 0.3, 0.0),
    ("784-16-10", "arctan", "mse", np.float64, 0.0, 0.0),
]


@pytest.fixture(scope="module")
def digits():
    X, y = explain.accuracy_sample(np.float64)
    return X[:, :3].copy(), y[:3].copy()


def make(spec, act, cost, dtype, dropout=0.0, smoothing=0.0, seed=0):
    return Network.from_spec(
        spec,
        activation=act,
        cost=cost,
        dtype=dtype,
        seed=seed,
        dropout=dropout,
        label_smoothing=smoothing,
    )


def weights(net):
    return [(layer.W.copy(), layer.b.copy()) for layer in net.dense_layers]


@pytest.mark.parametrize("spec,act,cost,dtype,dropout,smoothing", CONFIGS)
def test_every_quantity_is_the_library_backward(digits, spec, act, cost, dtype, dropout, smoothing):
    X, y = digits
    net = make(spec, act, cost, dtype, dropout, smoothing)
    before = weights(net)
    bp = explain.backward_pass(net, X[:, :2], y[:2])
    # the network's own training pass on the same input, dropout left out (inference)
    ref = explain.inference_view(explain.copy_network(net))
    A = ref.forward(X[:, :2].astype(dtype), training=True)
    Y = ref.targets(y[:2], out=np.empty((10, 2), dtype=dtype))
    ref.backward(A, Y)
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bp.A, A, **tol)
    np.testing.assert_allclose(bp.Y, Y)
    np.testing.assert_allclose(bp.C, ref.cost.value(A, Y, ref.log_output()), **tol)
    assert bp.label_smoothing == smoothing and bp.cost == ref.cost.kind
    if smoothing:
        assert np.isclose(bp.Y.max(), 1 - smoothing + smoothing / 10)
    assert len(bp.layers) == len(ref.dense_layers)
    for lb, layer in zip(bp.layers, ref.dense_layers, strict=True):
        assert lb.dW.dtype == dtype and lb.dW.shape == layer.W.shape
        np.testing.assert_allclose(lb.dW, layer.dW, **tol)
        np.testing.assert_allclose(lb.db, layer.db, **tol)
        # the seeds' equations hold between the returned quantities
        np.testing.assert_allclose(lb.Z, layer.W @ lb.A_prev + layer.b, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(lb.dW, lb.dZ @ lb.A_prev.T / 2, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(lb.db, lb.dZ.mean(axis=1, keepdims=True), rtol=1e-4, atol=1e-7)
        if lb.layer == 1:
            assert lb.dA_prev is None
            np.testing.assert_array_equal(lb.A_prev, X[:, :2].astype(dtype))
        else:
            np.testing.assert_allclose(lb.dA_prev, layer.W.T @ lb.dZ, rtol=1e-4, atol=1e-7)
            prev = bp.layers[lb.layer - 2]
            np.testing.assert_array_equal(prev.dA, lb.dA_prev)
            np.testing.assert_array_equal(prev.A, lb.A_prev)
        if lb.g_prime is not None:
            np.testing.assert_allclose(lb.dZ, lb.dA * lb.g_prime, rtol=1e-5, atol=1e-9)
    out = bp.layers[-1]
    if cost == "ce":
        assert bp.fused and out.dA is None and out.g_prime is None
        np.testing.assert_allclose(out.dZ, bp.A - bp.Y, **tol)
        assert bp.output_equation == "dZᴸ = Aᴸ - Y"
    else:
        s = bp.A
        np.testing.assert_allclose(out.dZ, 2 / 10 * (s - bp.Y) * s * (1 - s), rtol=1e-9)
        assert bp.output_equation == "dZᴸ = 2/10 (Aᴸ - Y) ⊙ σ'(Zᴸ)"
    # weights untouched, arrays are copies that later passes do not overwrite
    for (W, b), layer in zip(before, net.dense_layers, strict=True):
        np.testing.assert_array_equal(W, layer.W)
        np.testing.assert_array_equal(b, layer.b)
    kept = out.dZ.copy()
    explain.backward_pass(net, X[:, 2], y[2])
    np.testing.assert_array_equal(kept, out.dZ)


def test_units_switched_off_are_counted(digits):
    X, y = digits
    net = make("784-64-32-10", "relu", "ce", np.float32)
    bp = explain.backward_pass(net, X[:, 0], y[0])
    for lb in bp.layers[:-1]:
        assert lb.off.shape == (1,)
        assert lb.off[0] == np.count_nonzero(lb.Z[:, 0] <= 0) == np.count_nonzero(lb.g_prime == 0)
        assert 0 < lb.off[0] < lb.units
        assert (lb.dZ[lb.Z[:, 0] <= 0] == 0).all()  # switched off: no error flows back


def torch_backward(net, X, y, smoothing):
    """Every quantity by PyTorch autograd, float64, from the network's weights."""
    torch = pytest.importorskip("torch")
    Xt = torch.tensor(X, dtype=torch.float64)
    m = X.shape[1]
    params, Zs, As = [], [], []
    A = Xt
    dense = net.dense_layers
    acts = {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "softmax": lambda z: torch.softmax(z, dim=0),
    }
    kinds = [layer.kind for layer in net.layers if layer.kind not in ("dense", "dropout")]
    for layer, kind in zip(dense, kinds, strict=True):
        W = torch.tensor(layer.W, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(layer.b, dtype=torch.float64, requires_grad=True)
        params.append((W, b))
        Z = W @ A + b
        Z.retain_grad()
        A = acts[kind](Z)
        A.retain_grad()
        Zs.append(Z)
        As.append(A)
    Y = torch.zeros((10, m), dtype=torch.float64)
    Y[torch.tensor(y), torch.arange(m)] = 1.0
    Y = (1 - smoothing) * Y + smoothing / 10
    if kinds[-1] == "softmax":
        C = -(Y * torch.log_softmax(Zs[-1], dim=0)).sum() / m
    else:
        C = ((A - Y) ** 2).sum() / (10 * m)
    C.backward()
    return C, params, Zs, As, Y


@pytest.mark.parametrize(
    "spec,act,cost,smoothing",
    [("784-32-16-10", "relu", "ce", 0.1), ("784-16-16-10", "sigmoid", "mse", 0.0)],
)
def test_every_quantity_equals_pytorch_autograd(digits, spec, act, cost, smoothing):
    X, y = digits
    net = make(spec, act, cost, np.float64, smoothing=smoothing, seed=3)
    bp = explain.backward_pass(net, X, y)
    C, params, Zs, As, Y = torch_backward(net, X, y, smoothing)
    m = X.shape[1]

    def close(ours, theirs):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)

    close(bp.C, C)
    close(bp.Y, Y)
    for lb, (W, b), Z, A in zip(bp.layers, params, Zs, As, strict=True):
        close(lb.Z, Z)
        close(lb.A, A)
        close(lb.dW, W.grad)
        close(lb.db, b.grad)
        # dZ and dA flow per example (no 1/m, as the seeds write dZ² = A² - Y): m · ∂C/∂Z
        close(lb.dZ, m * Z.grad)
        if lb.dA is not None:
            close(lb.dA, m * A.grad)
        if lb.dA_prev is not None:
            close(lb.dA_prev, m * As[lb.layer - 2].grad)


def test_step_is_one_gradient_descent_step(digits):
    X, _ = digits
    net = make("784-24-16-10", "relu", "ce", np.float32, dropout=0.2, smoothing=0.1)
    before = weights(net)
    result = explain.take_steps(net, X[:, 0], 5, 0.05, steps=1)
    # the caller's network has not moved
    for (W, b), layer in zip(before, net.dense_layers, strict=True):
        np.testing.assert_array_equal(W, layer.W)
        np.testing.assert_array_equal(b, layer.b)
    # the library's own training step: forward, backward, GradientDescent on a copy
    ref = explain.inference_view(explain.copy_network(net))
    x = X[:, :1].astype(np.float32)
    A = ref.forward(x, training=True)
    ref.backward(A, ref.targets(np.array([5]), out=np.empty((10, 1), np.float32)))
    GradientDescent(0.05).step(ref.parameters())
    for layer, taught, (W, _) in zip(
        ref.dense_layers, result.net.dense_layers, before, strict=True
    ):
        np.testing.assert_allclose(taught.W, layer.W, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(taught.b, layer.b, rtol=1e-6, atol=1e-7)
        assert np.abs(taught.W - W).max() > 1e-4  # it did move
    assert result.steps == 1 and result.alpha == 0.05
    assert result.after.C < result.before.C
    assert 0.0 <= result.before.accuracy <= 1.0 and 0.0 <= result.after.accuracy <= 1.0
    # the accuracy is the network's own evaluation of the 1,000 digits
    Xs, ys = explain.accuracy_sample(np.float32)
    assert result.after.accuracy == result.net.evaluate(Xs, ys)[1]
    np.testing.assert_allclose(result.after.probabilities.sum(axis=0), 1.0)
    # stepping on from the taught copy, its `after` given as `before`
    on = explain.take_steps(result.net, X[:, 0], 5, 0.05, before=result.after)
    assert on.before is result.after and on.after.C < result.after.C


def test_step_until_it_reads_the_label(digits):
    X, _ = digits
    net = make("784-24-10", "relu", "ce", np.float64)
    start = int(net.predict(X[:, :1])[0])
    target = (start + 3) % 10
    result = explain.take_steps(net, X[:, 0], target, 0.1, until=target)
    assert result.reached and result.history[-1].prediction[0] == target
    assert all(s.prediction[0] != target for s in result.history[:-1])
    assert result.after.prediction[0] == target
    assert int(net.predict(X[:, :1])[0]) == start  # the original still reads what it read
    # already there: no step
    again = explain.take_steps(result.net, X[:, 0], target, 0.1, until=target)
    assert again.reached and again.steps == 0
    # a cap it cannot reach in: reached is False, and it stopped at the cap
    slow = explain.take_steps(net, X[:, 0], target, 1e-9, until=target, steps=3)
    assert slow.reached is False and slow.steps == 3


def test_model_file_bytes_never_change(tmp_path, digits):
    from digitnet.modelfile import load_model, save_model

    X, _ = digits
    path = tmp_path / "model.safetensors"
    save_model(path, make("784-16-10", "relu", "ce", np.float32))
    data = path.read_bytes()
    net, _ = load_model(path)
    result = explain.take_steps(net, X[:, 0], 3, 0.5, steps=5)
    explain.take_steps(result.net, X[:, 1], 4, 0.5, steps=2)
    assert result.steps == 5
    assert path.read_bytes() == data
    again, _ = load_model(path)
    for a, b in zip(again.dense_layers, net.dense_layers, strict=True):
        np.testing.assert_array_equal(a.W, b.W)


@pytest.mark.parametrize("spec,act,cost,dtype,dropout,smoothing", CONFIGS[:2])
def test_gradient_check_agrees(digits, spec, act, cost, dtype, dropout, smoothing):
    X, y = digits
    net = make(spec, act, cost, dtype, dropout, smoothing)
    gc = explain.gradient_check(net, X[:, 0], y[0])
    assert gc.ok and gc.max_relative_error < 1e-6
    assert len(gc.layers) == len(net.dense_layers)
    assert gc.row.backprop.shape == gc.row.numeric.shape == (784,)
    assert np.count_nonzero(gc.row.numeric) > 50  # the inked pixels really were perturbed
    bp = explain.backward_pass(net, X[:, 0], y[0])
    assert gc.unit == explain.most_affected_unit(bp)
    np.testing.assert_allclose(gc.row.backprop, bp.layers[0].dW[gc.unit], rtol=1e-5, atol=1e-9)
    assert net.dtype == dtype  # the caller's network is not converted


def test_gradient_check_detects_a_broken_backward(digits, monkeypatch):
    X, y = digits
    net = make("784-24-16-10", "relu", "ce", np.float64)
    good = explain.gradient_check(net, X[:, 0], y[0], unit=3)
    assert good.ok and good.unit == 3

    original = Dense.backward

    def db_off_by_ten_percent(self, dZ):
        out = original(self, dZ)
        self.db *= 1.1
        return out

    monkeypatch.setattr(Dense, "backward", db_off_by_ten_percent)
    bad = explain.gradient_check(net, X[:, 0], y[0])
    assert not bad.ok and all(c.b.relative_error > 1e-2 for c in bad.layers)
    monkeypatch.setattr(Dense, "backward", original)

    # ReLU's backward forgetting g'(Z): the hidden layers' gradients are wrong
    monkeypatch.setattr(ReLU, "backward", lambda self, dA: dA.copy())
    bad = explain.gradient_check(net, X[:, 0], y[0])
    assert not bad.ok and bad.layers[0].relative_error > 1e-2
    assert bad.layers[-1].relative_error < 1e-6  # the output layer's own gradient is right


@pytest.mark.parametrize("alpha", [0, -1, float("nan"), float("inf"), 1e9, "x", None, True])
def test_bad_alpha_is_refused(digits, alpha):
    net = make("784-8-10", "relu", "ce", np.float32)
    with pytest.raises(ConfigError, match="learning rate"):
        explain.take_steps(net, digits[0][:, 0], 1, alpha)


@pytest.mark.parametrize("label", [10, -1, "x", 3.5, [1, 2], None])
def test_bad_label_is_refused(digits, label):
    net = make("784-8-10", "relu", "ce", np.float32)
    with pytest.raises(ConfigError, match="label"):
        explain.backward_pass(net, digits[0][:, 0], label)


def test_bad_steps_and_inputs_are_refused(digits):
    net = make("784-8-10", "relu", "ce", np.float32)
    x = digits[0][:, 0]
    for steps in (0, explain.MAX_STEPS + 1, 10**9, 2.5):
        with pytest.raises(ConfigError, match="steps"):
            explain.take_steps(net, x, 1, 0.1, steps=steps)
    with pytest.raises(ConfigError, match="until"):
        explain.take_steps(net, x, 1, 0.1, until=10)
    with pytest.raises(ShapeError):
        explain.backward_pass(net, np.zeros(100), 1)
    with pytest.raises(ShapeError, match="NaN"):
        explain.backward_pass(net, np.full(784, np.nan), 1)
    # a (28, 28) image is read row by row, as MNIST stores it
    a = explain.backward_pass(net, x.reshape(28, 28), 1)
    b = explain.backward_pass(net, x, 1)
    np.testing.assert_array_equal(a.layers[0].dW, b.layers[0].dW)


def test_copy_network(digits):
    net = make("784-16-10", "tanh", "ce", np.float32, dropout=0.5, smoothing=0.1)
    c64 = explain.copy_network(net, np.float64)
    assert c64.dtype == np.float64 and c64.cost.label_smoothing == 0.1
    assert [layer.kind for layer in c64.layers] == [layer.kind for layer in net.layers]
    c64.dense_layers[0].W += 1.0
    assert not np.array_equal(c64.dense_layers[0].W, net.dense_layers[0].W)
    X = digits[0][:, :3]
    np.testing.assert_allclose(
        explain.copy_network(net, np.float64).predict_proba(X), net.predict_proba(X), rtol=1e-5
    )


def test_accuracy_sample_is_every_tenth_official_test_digit(mnist10k):
    X, y = explain.accuracy_sample(np.float32)
    assert X.shape == (784, 1000) and y.shape == (1000,)
    np.testing.assert_array_equal(y, mnist10k.y_test[::10])
    np.testing.assert_array_equal(X, mnist10k.X_test[:, ::10])
    assert not X.flags.writeable


# -- digitnet explain ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from digitnet.modelfile import save_model

    folder = tmp_path_factory.mktemp("run")
    net = make("784-32-16-10", "relu", "ce", np.float32, dropout=0.2, smoothing=0.1, seed=5)
    save_model(folder / "model.safetensors", net)
    return folder


@pytest.fixture(scope="module")
def seven_png(tmp_path_factory):
    from PIL import Image

    image, label = explain.official_test_digit(0)
    assert label == 7
    path = tmp_path_factory.mktemp("img") / "seven.png"
    Image.fromarray((255 - image * 255).astype(np.uint8)).save(path)  # dark ink on paper
    return path


def run(capsys, *argv):
    from digitnet import cli

    code = cli.main(["explain", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_tells_the_lesson_in_80_columns(capsys, model_dir, seven_png):
    code, out, err = run(capsys, model_dir, seven_png, "--label", 3, "--steps", 2, "--lr", 0.05)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for text in (
        "Z¹ = W¹·A⁰ + b¹",
        "A³ = softmax(Z³)",
        "dZ³ = A³ - Y",
        "dW¹ = 1/m dZ¹·A⁰ᵀ",
        "dZ² = dA² ⊙ g'(Z²)",
        "label smoothing ε = 0.1",
        "backprop and finite differences agree",
        "accuracy on 1,000 official test digits",
    ):
        assert text in out, text
    # the numbers printed are the library's
    from digitnet.commands.explain import num
    from digitnet.imaging import preprocess, to_column
    from digitnet.modelfile import load_model

    net, _ = load_model(model_dir / "model.safetensors")
    bp = explain.backward_pass(net, to_column(preprocess(seven_png)), 3)
    assert f"= {num(bp.C)}" in out
    off = int(bp.layers[0].off[0])
    assert f"g' switched off {off} of 32 units (Z¹ ≤ 0)" in out
    picture = [line for line in lines if line.startswith("   |")]
    assert len(picture) == 28 and all(len(line) == 3 + 58 for line in picture)
    steps = [line.split() for line in lines if line[:7].strip() in {"0", "1", "2"}]
    assert [s[0] for s in steps[-3:]] == ["0", "1", "2"]


def test_explain_json_has_every_quantity(capsys, model_dir):
    import json

    code, out, err = run(capsys, model_dir, "test:0", "--json", "--steps", 3, "--lr", 0.1)
    assert code == 0, err
    doc = json.loads(out)
    image, _ = explain.official_test_digit(0)
    from digitnet.modelfile import load_model

    net, _ = load_model(model_dir / "model.safetensors")
    read = int(net.predict(image.reshape(784, 1))[0])
    assert doc["label"] == doc["prediction"] == read and doc["image"].endswith("(labelled 7)")
    bp = explain.backward_pass(net, image, read)
    assert doc["C"] == pytest.approx(bp.C, rel=1e-6)
    assert doc["architecture"] == [784, 32, 16, 10] and doc["label_smoothing"] == 0.1
    np.testing.assert_allclose(doc["Y"], bp.Y[:, 0])
    for entry, lb in zip(doc["layers"], bp.layers, strict=True):
        np.testing.assert_allclose(entry["dZ"], lb.dZ[:, 0], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(entry["db"], lb.db[:, 0], rtol=1e-5, atol=1e-8)
        assert entry["off"] == int(lb.off[0])
    # the output layer's dW comes whole; the first layer's (32 x 784) summarised
    np.testing.assert_allclose(doc["layers"][-1]["dW"], bp.layers[-1].dW, rtol=1e-5, atol=1e-8)
    first = doc["layers"][0]["dW"]
    assert first["shape"] == [32, 784]
    np.testing.assert_allclose(first["row_norms"], np.linalg.norm(bp.layers[0].dW, axis=1), 1e-5)
    # a test can recompute it from the whole arrays: dW¹ = dZ¹·Xᵀ (m = 1)
    dW1 = np.outer(doc["layers"][0]["dZ"], doc["X"])
    assert np.linalg.norm(dW1) == pytest.approx(first["norm"], rel=1e-5)
    row = doc["dW1_row"]
    np.testing.assert_allclose(row["values"], bp.layers[0].dW[row["unit"]], rtol=1e-5, atol=1e-9)
    assert doc["gradient_check"]["ok"] and doc["gradient_check"]["max_relative_error"] < 1e-6
    steps = doc["steps"]
    assert steps["taken"] == 3 and len(steps["history"]) == 3 and steps["alpha"] == 0.1
    assert 0 <= steps["before"]["accuracy"] <= 1 and 0 <= steps["after"]["accuracy"] <= 1
    assert steps["history"][-1]["C"] == pytest.approx(steps["after"]["C"], rel=1e-6)


def test_explain_until_and_the_file_stays(capsys, model_dir):
    import json

    from digitnet.modelfile import load_model

    path = model_dir / "model.safetensors"
    data = path.read_bytes()
    net, _ = load_model(path)
    target = (int(net.predict(explain.official_test_digit(1)[0].reshape(784, 1))[0]) + 4) % 10
    code, out, err = run(
        capsys, path, "test:1", "--label", target, "--until", "--lr", 0.1, "--json"
    )
    assert code == 0, err
    steps = json.loads(out)["steps"]
    assert steps["reached"] and steps["taken"] >= 1
    assert steps["history"][-1]["prediction"] == steps["after"]["prediction"] == target
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "argv",
    [
        ("--label", "10"),
        ("--label", "-1"),
        ("--label", "x"),
        ("--lr", "0"),
        ("--lr", "nan"),
        ("--lr", "1e9"),
        ("--steps", str(10**9)),
        ("--steps", "0"),
    ],
)
def test_explain_refuses_bad_options(capsys, model_dir, argv):
    with pytest.raises(SystemExit) as exc:
        run(capsys, model_dir, "test:0", *argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: "), err
    assert lines[0].startswith("error: ") and f"{argv[0]}: must be" in lines[0], err


def test_explain_errors_are_one_line(capsys, model_dir, seven_png, tmp_path):
    code, out, err = run(capsys, model_dir, tmp_path / "missing.png")
    assert code == 1 and out == "" and err.startswith("error: ") and "missing.png" in err
    code, out, err = run(capsys, seven_png, model_dir)  # MODEL and IMAGE swapped
    assert code == 1 and err.splitlines()[0].startswith("error: ")
    assert (
        err.splitlines()[1]
        == f"hint: the model comes first: digitnet explain {model_dir} {seven_png}"
    )
    code, out, err = run(capsys, model_dir, "test:10000")
    assert code == 2 and "test:0 to test:9999" in err
