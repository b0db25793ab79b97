"""The pictures (digitnet.reports) as real PNGs; the numbers behind them: tests/test_metrics.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from digitnet import metrics, reports
from digitnet.errors import DigitnetError, ShapeError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- pictures -------------------------------------------------------------------------------
def _check_png(path, min_side=300, max_side=4000):
    """A complete PNG that matplotlib reads back, of a sensible size, with nothing left over."""
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data.endswith(b"IEND\xaeB`\x82")
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert min_side <= height <= max_side and min_side <= width <= max_side, image.shape
    assert image.std() > 0.01  # not a blank canvas
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files
    return image


@pytest.fixture(scope="module")
def digits():
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    return data.X_test[:, :200], data.y_test[:200]


def test_plot_learning_curves(tmp_path):
    history = [
        {"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.3 / e, "val_loss": 1.1 / e,
         "val_accuracy": 1 - 0.35 / e}
        for e in range(1, 6)
    ]  # fmt: skip
    path = tmp_path / "curves.png"
    reports.plot_learning_curves(history, path)
    _check_png(path)
    for h in history:  # no validation: drawn without it
        h["val_loss"] = h["val_accuracy"] = None
    reports.plot_learning_curves(history, path)  # over the old file, atomically
    _check_png(path)
    with pytest.raises(ShapeError):
        reports.plot_learning_curves([], tmp_path / "empty.png")


def test_plot_confusion_matrix(tmp_path, rng):
    y = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.8, y, rng.integers(0, 10, 500))
    cm = metrics.confusion_matrix(y, pred)
    path = tmp_path / "cm.png"
    reports.plot_confusion_matrix(cm, path)
    image = _check_png(path)
    assert image.shape[1] > image.shape[0] * 0.9  # roughly square, with its colour bar
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
    reports.plot_confusion_matrix(cm, path, classes=names)
    _check_png(path)
    # names the font cannot draw (KMNIST's kana) fall back to the indices, without warnings
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reports.plot_confusion_matrix(cm, path, classes=list("おきすつなはまやれを"))
    _check_png(path)
    with pytest.raises(ShapeError):
        reports.plot_confusion_matrix(cm, path, classes=["a", "b"])


def test_plot_weights(tmp_path, rng):
    path = tmp_path / "weights.png"
    reports.plot_weights(rng.normal(size=(100, 784)), path)  # 64 of 100 tiles
    _check_png(path)
    reports.plot_weights(rng.normal(size=(10, 784)), path)
    _check_png(path)
    with pytest.raises(ShapeError, match="transposed"):
        reports.plot_weights(rng.normal(size=(784, 16)), path)


def test_plot_mistakes(tmp_path, digits):
    X, y = digits
    pred = (y + 1) % 10
    confidence = np.linspace(0.99, 0.5, 25)
    path = tmp_path / "mistakes.png"
    reports.plot_mistakes(X[:, :25], y[:25], pred[:25], confidence, path)
    _check_png(path)
    reports.plot_mistakes(X[:, :0], [], [], [], path)  # no mistakes: a picture that says so
    _check_png(path, min_side=200)
    with pytest.raises(ShapeError, match=r"images\.T"):
        reports.plot_mistakes(X[:, :3].T, y[:3], pred[:3], confidence[:3], path)
    with pytest.raises(ShapeError, match="agree"):
        reports.plot_mistakes(X[:, :3], y[:2], pred[:3], confidence[:3], path)


def test_percent_never_rounds_to_certainty():
    assert reports._percent(0.97) == "97 %"
    assert reports._percent(0.9996) == "99.9 %"
    assert reports._percent(1.0) == "100 %"


def test_plot_weight_histograms(tmp_path, rng):
    from digitnet.network import Network

    path = tmp_path / "hist.png"
    net = Network.from_spec("784-16-16-10", seed=0)
    reports.plot_weight_histograms(net, path)
    _check_png(path)
    reports.plot_weight_histograms([("W1", rng.normal(size=(8, 4))), ("b1", np.zeros(8))], path)
    _check_png(path)
    with pytest.raises(ShapeError):
        reports.plot_weight_histograms([], path)


def test_failed_write_leaves_old_picture_and_no_temporary(tmp_path, rng, monkeypatch):
    import digitnet.data.idx as idx

    path = tmp_path / "cm.png"
    cm = metrics.confusion_matrix(rng.integers(0, 10, 50), rng.integers(0, 10, 50))
    reports.plot_confusion_matrix(cm, path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idx.os, "fsync", broken_fsync)
    with pytest.raises(DigitnetError, match="No space left"):
        reports.plot_confusion_matrix(cm * 2, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]
    with pytest.raises(DigitnetError, match="cannot write"):
        reports.plot_weights(rng.normal(size=(4, 784)), tmp_path / "missing" / "w.png")


def test_matplotlib_is_imported_only_to_draw(tmp_path):
    code = f"""
import sys
import digitnet.metrics as m
import digitnet.reports as r
assert "matplotlib" not in sys.modules, "imported by import digitnet.reports"
cm = m.confusion_matrix([0, 1, 1], [0, 1, 0])
m.per_class(cm); m.most_confident_mistakes([[0.9, 0.2], [0.1, 0.8]], [0, 0])
assert "matplotlib" not in sys.modules, "imported by the metrics"
r.plot_confusion_matrix(cm, {str(tmp_path / "cm.png")!r})
assert "matplotlib" in sys.modules
assert "matplotlib.pyplot" not in sys.modules, "pyplot (global state) was used"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_run_pictures_skipped_without_matplotlib(monkeypatch, tmp_path):
    """write_pictures asks for matplotlib itself (reports imports it only to draw): without it,
    it draws nothing and says so with None, so a broken installation still keeps the run."""
    from digitnet.train.run import write_pictures

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert write_pictures(tmp_path, None, None) is None
    assert list(tmp_path.iterdir()) == []
