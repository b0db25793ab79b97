"""How well a network does, in numbers: NumPy only (the pictures are :mod:`digitnet.reports`).

- :func:`confusion_matrix` ``(y_true, y_pred)`` -> ``(10, 10)`` counts, row = the true digit,
  column = the predicted one, so the diagonal holds the right answers;
- :func:`accuracy` ``(cm)`` -> the fraction predicted right;
- :func:`per_class` ``(cm)`` -> precision, recall, F1 and support of each digit. A digit that is
  never predicted has precision ``0/0``, one that never occurs recall ``0/0``: both are defined
  as ``0.0`` here (as scikit-learn does with ``zero_division=0``), and F1 is ``0.0`` when
  precision and recall are both 0;
- :func:`most_confident_mistakes` ``(P, y_true)`` -> the wrong answers the network was surest of;
- :func:`top_confusions` ``(cm)`` -> the commonest (true, predicted) mix-ups;
- :func:`confident_threshold` ``(P)`` -> the best probability under which an answer is "not
  sure", calibrated on a model's probabilities for clear test digits (:data:`FLAGGED`).

Importing this module imports NumPy and nothing else heavy (no matplotlib: a test says so), so a
program that only wants the numbers never pays for the drawing library.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digitnet.errors import DataError, ShapeError


def labels_array(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D int64 array of class labels, or a clear error naming ``name``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be one label per example, a 1-D array; got {arr.shape}.")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b" or arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise DataError(f"{name} must hold integer class labels; got values of dtype {arr.dtype}.")


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int = 10) -> np.ndarray:
    """``cm[i, j]``: how many examples of true class ``i`` were predicted as class ``j``.

    An ``(n_classes, n_classes)`` int64 array; row = the true digit, column = the prediction. Its
    sum is the number of examples and its trace the number predicted right.
    """
    if n_classes < 1:
        raise ShapeError(f"n_classes must be positive; got {n_classes}.")
    t = labels_array(y_true, "y_true")
    p = labels_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ShapeError(
            f"y_true and y_pred must have one label per example each; got {t.size} and {p.size}."
        )
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise DataError(
                f"{name} holds labels from {arr.min()} to {arr.max()}; expected 0 to "
                f"{n_classes - 1}."
            )
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def square_counts(cm: Any) -> np.ndarray:
    """``cm`` as an array, checked to be a confusion matrix: square, non-negative counts."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ShapeError(f"A confusion matrix is square, (n, n); got shape {cm.shape}.")
    if cm.dtype.kind not in "iuf" or (cm.size and cm.min() < 0):
        raise DataError("A confusion matrix holds non-negative counts.")
    return cm


def accuracy(cm: Any) -> float:
    """The fraction predicted right: trace / sum (``0.0`` for an empty matrix)."""
    cm = square_counts(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def per_class(cm: Any) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class of a confusion matrix (row = true).

    ``{"digit": d, "precision": ..., "recall": ..., "f1": ..., "support": n}`` for d = 0, 1, ...
    precision = ``cm[d, d]`` / column ``d``'s sum (of the examples predicted ``d``, the share
    that were ``d``); recall = ``cm[d, d]`` / row ``d``'s sum (of the ``d``s, the share found);
    F1 = their harmonic mean; support = row ``d``'s sum. ``0/0`` is defined as ``0.0``: the
    precision of a class never predicted, the recall of a class with no examples, and F1 when
    precision and recall are both 0. Plain Python numbers, ready for JSON.
    """
    cm = square_counts(cm)
    rows = []
    for d in range(cm.shape[0]):
        tp = float(cm[d, d])
        predicted = float(cm[:, d].sum())
        support = float(cm[d, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "digit": d,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": int(support),
            }
        )
    return rows


def top_confusions(cm: Any, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` commonest mistakes as ``(true, predicted, count)``, most frequent first."""
    cm = square_counts(cm)
    off = [
        (int(cm[i, j]), i, j)
        for i in range(cm.shape[0])
        for j in range(cm.shape[1])
        if i != j and cm[i, j] > 0
    ]
    off.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(i, j, count) for count, i, j in off[:k]]


def most_confident_mistakes(P: Any, y_true: Any, k: int = 25) -> np.ndarray:
    """Column indices of the (at most) ``k`` wrong predictions with the highest confidence.

    ``P``: ``(n_classes, m)`` probabilities, one example per column (``net.predict_proba(X)``).
    The prediction is ``argmax P[:, i]`` and its confidence ``max P[:, i]``; the indices of the
    examples where the prediction differs from ``y_true`` come back surest first (ties in column
    order). An int64 array, empty when there is no mistake.
    """
    P = np.asarray(P)
    y = labels_array(y_true, "y_true")
    if P.ndim != 2 or P.shape[1] != y.size:
        raise ShapeError(
            f"P must be (n_classes, m) with one column per label; got {P.shape} for {y.size} "
            "labels.",
            "for probabilities as rows (m, n_classes), pass P.T",
        )
    if k < 0:
        raise ShapeError(f"k must be zero or more; got {k}.")
    if y.size == 0:
        return np.zeros(0, dtype=np.int64)
    pred = P.argmax(axis=0)
    confidence = P[pred, np.arange(y.size)]
    wrong = np.flatnonzero(pred != y)
    order = np.argsort(-confidence[wrong], kind="stable")
    return wrong[order[:k]].astype(np.int64)


__all__ = [
    "accuracy",
    "confusion_matrix",
    "labels_array",
    "most_confident_mistakes",
    "per_class",
    "square_counts",
    "top_confusions",
]


FLAGGED = 0.006
"""The share of the official test digits a model's "not sure" may flag on its probabilities.

Each model's threshold is calibrated on data (:func:`confident_threshold`): the probability of
the best digit under which this share of the official test digits falls. The test digits are
MNIST's own clear digits, never trained on; the shape doubts of :mod:`digitnet.imaging` (a dot,
ink at the edge) flag another 0.1-0.2 % of them, so that at most 1 % of clear digits are "not
sure". ``python scripts/calibrate.py MODEL`` prints, for the whole test set, the share flagged
and how often the confident answers are right, for this threshold and others."""


def percentile(x: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``x``, interpolated linearly between the two values around it
    (np.percentile's default), from a partial sort: np.percentile itself costs several times more
    on a few thousand values, and np.quantile imports numpy.ma (50 ms of a command's start)."""
    x = x.ravel()
    at = q / 100.0 * (x.size - 1)
    below = math.floor(at)
    above = min(below + 1, x.size - 1)
    part = np.partition(x, [below, above])
    a, b = float(part[below]), float(part[above])
    return a + (b - a) * (at - below)


def normalised(P: Any) -> np.ndarray:
    """``(n, m)`` outputs as float64 columns that sum to 1: a softmax output already does; a
    sigmoid output's ten independent scores are divided by their sum (NaN taken as 0, an
    all-zero column as uniform)."""
    P = np.asarray(P, dtype=np.float64)
    P = np.clip(np.nan_to_num(P, nan=0.0, posinf=1.0, neginf=0.0), 0.0, None)
    total = P.sum(axis=0, keepdims=True)
    uniform = total <= 0
    return np.where(uniform, 1.0 / P.shape[0], P / np.where(uniform, 1.0, total))


def confident_threshold(P: Any) -> float:
    """The probability of the best class under which :data:`FLAGGED` of the columns of ``P``
    (``(n, m)``: a model's outputs for clear test digits) fall."""
    return percentile(normalised(P).max(axis=0), 100.0 * FLAGGED)
