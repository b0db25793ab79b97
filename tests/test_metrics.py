"""The metrics (digitnet.metrics) against hand-computed values and an independent computation."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitnet import metrics
from digitnet.errors import DataError, ShapeError

# -- metrics: by hand -----------------------------------------------------------------------
Y_TRUE = [0, 0, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 2, 0, 2]
CM = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_confusion_matrix_by_hand():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, n_classes=3)
    assert cm.tolist() == CM
    assert cm.dtype.kind == "i"
    full = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    assert full.shape == (10, 10) and full[:3, :3].tolist() == CM and full.sum() == 6


def test_per_class_by_hand():
    rows = metrics.per_class(np.array(CM))
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
    cm = metrics.confusion_matrix([0, 0, 2], [0, 0, 0], n_classes=3)
    rows = metrics.per_class(cm)
    assert rows[1] == {"digit": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rows[2] == {"digit": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[0]["precision"] == pytest.approx(2 / 3) and rows[0]["recall"] == 1.0
    assert metrics.accuracy(cm) == pytest.approx(2 / 3)
    assert metrics.accuracy(np.zeros((10, 10), int)) == 0.0


def test_metric_errors():
    with pytest.raises(ShapeError):
        metrics.confusion_matrix([0, 1], [0])
    with pytest.raises(DataError, match="expected 0 to 9"):
        metrics.confusion_matrix([0, 10], [0, 1])
    with pytest.raises(DataError):
        metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(DataError, match="integer"):
        metrics.confusion_matrix([0.5], [0])
    with pytest.raises(ShapeError):
        metrics.per_class(np.zeros((3, 4)))
    assert metrics.confusion_matrix([0.0, 2.0], np.array([0, 2], np.uint8), 3).trace() == 2


def test_top_confusions():
    cm = np.zeros((10, 10), int)
    cm[4, 9], cm[7, 1], cm[3, 5], cm[2, 2] = 7, 3, 7, 50
    assert metrics.top_confusions(cm, k=2) == [(3, 5, 7), (4, 9, 7)]
    assert metrics.top_confusions(np.eye(10, dtype=int)) == []


def test_most_confident_mistakes_by_hand():
    y = np.array([0, 1, 2, 1, 0])
    P = np.array(
        [
            [0.9, 0.6, 0.1, 0.2, 0.3],  # example 1: 0 at 0.6 (wrong)
            [0.05, 0.3, 0.8, 0.7, 0.3],  # example 2: 1 at 0.8 (wrong); example 3 right
            [0.05, 0.1, 0.1, 0.1, 0.4],  # example 4: 2 at 0.4 (wrong)
        ]
    )
    assert metrics.most_confident_mistakes(P, y).tolist() == [2, 1, 4]
    assert metrics.most_confident_mistakes(P, y, k=2).tolist() == [2, 1]
    assert metrics.most_confident_mistakes(P, P.argmax(0)).size == 0
    with pytest.raises(ShapeError, match=r"P\.T"):
        metrics.most_confident_mistakes(P.T, y)


# -- metrics: against an independent computation --------------------------------------------
labels = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=0, max_size=200)


@settings(max_examples=60, deadline=None)
@given(labels)
def test_metrics_match_direct_counting(pairs):
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    cm = metrics.confusion_matrix(y_true, y_pred)
    counts = Counter(pairs)
    for i in range(10):
        for j in range(10):
            assert cm[i, j] == counts[(i, j)]
    assert cm.sum() == len(pairs)
    rows = metrics.per_class(cm)
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


def test_metrics_never_import_matplotlib():
    """The numbers need NumPy alone: using digitnet.metrics loads no drawing library."""
    code = """
import sys
import digitnet.metrics as m
cm = m.confusion_matrix([0, 1, 1], [0, 1, 0])
m.per_class(cm); m.accuracy(cm); m.top_confusions(cm)
m.most_confident_mistakes([[0.9, 0.2], [0.1, 0.8]], [0, 0])
print(sorted(k for k in ("matplotlib", "PIL", "cv2", "torch") if k in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
