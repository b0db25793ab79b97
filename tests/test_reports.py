"""Metrics against hand-computed values and an independent computation; pictures as real PNGs."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitnet import reports
from digitnet.errors import DataError, DigitnetError, ShapeError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- metrics: by hand -----------------------------------------------------------------------
Y_TRUE = [0, 0, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 2, 0, 2]
CM = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_confusion_matrix_by_hand():
    cm = reports.confusion_matrix(Y_TRUE, Y_PRED, n_classes=3)
    assert cm.tolist() == CM
    assert cm.dtype.kind == "i"
    full = reports.confusion_matrix(Y_TRUE, Y_PRED)
    assert full.shape == (10, 10) and full[:3, :3].tolist() == CM and full.sum() == 6


def test_per_class_by_hand():
    rows = reports.per_class(np.array(CM))
    assert [r["digit"] for r in rows] == [0, 1, 2]
    # digit 0: 1 right of 2 predicted as 0, 1 found of 2 zeros
    assert rows[0] == {"digit": 0, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    # digit 1: 1 right of 2 predicted as 1, the only 1 found; F1 = 2·½·1 / (½ + 1) = 2/3
    assert rows[1]["precision"] == 0.5 and rows[1]["recall"] == 1.0 and rows[1]["support"] == 1
    assert rows[1]["f1"] == pytest.approx(2 / 3)
    # digit 2: both predicted 2s right, 2 found of 3; F1 = 2·1·⅔ / (1 + ⅔) = 0.8
    assert rows[2]["precision"] == 1.0 and rows[2]["recall"] == pytest.approx(2 / 3)
    assert rows[2]["f1"] == pytest.approx(0.8) and rows[2]["support"] == 3
    for r in rows:  # plain Python numbers, ready for JSON
        assert type(r["support"]) is int and all(
            type(r[k]) is float for k in ("precision", "recall", "f1")
        )


def test_zero_over_zero_is_zero():
    # digit 1 never occurs and is never predicted; digit 2 occurs but is never predicted
    cm = reports.confusion_matrix([0, 0, 2], [0, 0, 0], n_classes=3)
    rows = reports.per_class(cm)
    assert rows[1] == {"digit": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rows[2] == {"digit": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[0]["precision"] == pytest.approx(2 / 3) and rows[0]["recall"] == 1.0
    assert reports.accuracy(cm) == pytest.approx(2 / 3)
    assert reports.accuracy(np.zeros((10, 10), int)) == 0.0


def test_metric_errors():
    with pytest.raises(ShapeError):
        reports.confusion_matrix([0, 1], [0])
    with pytest.raises(DataError, match="expected 0 to 9"):
        reports.confusion_matrix([0, 10], [0, 1])
    with pytest.raises(DataError):
        reports.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(DataError, match="integer"):
        reports.confusion_matrix([0.5], [0])
    with pytest.raises(ShapeError):
        reports.per_class(np.zeros((3, 4)))
    assert reports.confusion_matrix([0.0, 2.0], np.array([0, 2], np.uint8), 3).trace() == 2


def test_top_confusions():
    cm = np.zeros((10, 10), int)
    cm[4, 9], cm[7, 1], cm[3, 5], cm[2, 2] = 7, 3, 7, 50
    assert reports.top_confusions(cm, k=2) == [(3, 5, 7), (4, 9, 7)]
    assert reports.top_confusions(np.eye(10, dtype=int)) == []


def test_most_confident_mistakes_by_hand():
    y = np.array([0, 1, 2, 1, 0])
    P = np.array(
        [
            [0.9, 0.6, 0.1, 0.2, 0.3],  # example 1: 0 at 0.6 (wrong)
            [0.05, 0.3, 0.8, 0.7, 0.3],  # example 2: 1 at 0.8 (wrong); example 3 right
            [0.05, 0.1, 0.1, 0.1, 0.4],  # example 4: 2 at 0.4 (wrong)
        ]
    )
    assert reports.most_confident_mistakes(P, y).tolist() == [2, 1, 4]
    assert reports.most_confident_mistakes(P, y, k=2).tolist() == [2, 1]
    assert reports.most_confident_mistakes(P, P.argmax(0)).size == 0
    with pytest.raises(ShapeError, match=r"P\.T"):
        reports.most_confident_mistakes(P.T, y)


# -- metrics: against an independent computation --------------------------------------------
labels = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=0, max_size=200)


@settings(max_examples=60, deadline=None)
@given(labels)
def test_metrics_match_direct_counting(pairs):
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    cm = reports.confusion_matrix(y_true, y_pred)
    counts = Counter(pairs)
    for i in range(10):
        for j in range(10):
            assert cm[i, j] == counts[(i, j)]
    assert cm.sum() == len(pairs)
    rows = reports.per_class(cm)
    for d, row in enumerate(rows):
        # straight from the label lists, not from the matrix
        tp = sum(1 for t, p in pairs if t == d and p == d)
        predicted = sum(1 for _, p in pairs if p == d)
        actual = sum(1 for t, _ in pairs if t == d)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * tp / (predicted + actual) if predicted + actual else 0.0  # = 2PR/(P+R)
        assert row["support"] == actual
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(f1)


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
    cm = reports.confusion_matrix(y, pred)
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
    cm = reports.confusion_matrix(rng.integers(0, 10, 50), rng.integers(0, 10, 50))
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
import digitnet.reports as r
assert "matplotlib" not in sys.modules, "imported by import digitnet.reports"
cm = r.confusion_matrix([0, 1, 1], [0, 1, 0])
r.per_class(cm); r.most_confident_mistakes([[0.9, 0.2], [0.1, 0.8]], [0, 0])
assert "matplotlib" not in sys.modules, "imported by the metrics"
r.plot_confusion_matrix(cm, {str(tmp_path / "cm.png")!r})
assert "matplotlib" in sys.modules
assert "matplotlib.pyplot" not in sys.modules, "pyplot (global state) was used"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
