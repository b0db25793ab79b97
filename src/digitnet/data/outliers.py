"""Synthetic non-digits for Outlier Exposure: ink that is not any digit, made as MNIST digits are.

Outlier Exposure (Hendrycks, Mazeika & Dietterich, ICLR 2019) trains a classifier on its own data
*and* on examples of what it should not recognise, with the uniform distribution ``1/n`` as the
target of the latter. The network then learns to spread its softmax over the classes for things
unlike its classes, and the rule "not sure when the best probability is low"
(:meth:`digitnet.predictor.Predictor.confident_threshold`) catches them: without it, a hand-drawn
A or H is read as a 4 at 80 %.

The non-digits here are strokes drawn with OpenCV, then cropped, fitted into 20x20 and centred by
mass in 28x28 exactly as a photographed digit is (:func:`digitnet.imaging._fit_and_centre`, steps
4-5 of MNIST's recipe). Every one is built so that it is *not* a digit: a single straight line is
a 1, a loop a 0, a hook a 7, and teaching the network to doubt those would teach it to doubt real
digits. So each shape has several strokes meeting at junctions or crossings, or a single stroke
with many sharp turns:

- ``crossing``: two to four strokes (straight or curved), each crossing or starting on one drawn
  before (T-, L-, X-junctions, as in A, E, F, H, K, R, Y);
- ``corner``: a stroke turning at right angles with strokes leaving it inwards (E, F, ⊏, Π);
- ``spine``: a full-height stem with bars, diagonals or an upper bowl leaving it (E, F, K, P, R);
- ``zigzag``: one stroke of four to six straight pieces turning sharply (M, N, W, Σ);
- ``star``: three or four straight strokes through one point (*, ✳);
- ``grid``: two parallel strokes crossed by one or two others (#, ⧺, Π, H-like ladders);
- ``box``: a rectangle or triangle with a stroke through it (⊠, ⊞, ⊿);
- ``overlay``: two real digits of different classes drawn over each other, no 1s (only when
  :func:`make_outliers` is given digits and their labels). Training leaves them out
  (:func:`digitnet.train.run.prepare` gives no labels): with them, the 100-epoch default model
  flagged as many test digits and fewer letters (134 of 140 against 138).

:func:`digit_likeness` measures the one risk left, a shape that happens to look like a digit: the
distance from each shape to its nearest real digit, against the distances between real digits.
:func:`make_outliers` drops the shapes closer to a digit than most digits are to each other.

Deterministic: the same ``numpy.random.Generator`` state gives the same images, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: the families of shapes, in the order :func:`make_outliers` cycles through them
FAMILIES = ("crossing", "corner", "spine", "zigzag", "star", "grid", "box", "overlay")

#: the drawing canvas's side in pixels (shapes are drawn large, then shrunk to 20x20 as MNIST's)
CANVAS = 112
_SUB = 4  # OpenCV's sub-pixel bits: coordinates are drawn at 1/16 pixel
_SCALE = 1 << _SUB

#: a shape is dropped when its nearest real digit is closer than this quantile of the distances
#: from real digits to their own nearest neighbours (see :func:`digit_likeness`)
DIGIT_LIKE_QUANTILE = 0.25


# -- strokes ---------------------------------------------------------------------------------
def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 16) -> np.ndarray:
    """Points along the quadratic Bézier curve from ``p0`` to ``p2`` pulled towards ``p1``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _stroke(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A stroke from ``a`` to ``b``: straight, or (a third of the time) gently curved."""
    if rng.random() < 2 / 3:
        return np.stack([a, b])
    mid = (a + b) / 2
    normal = np.array([-(b - a)[1], (b - a)[0]])
    bow = rng.uniform(-0.35, 0.35)  # at most a shallow arc: a deep one starts to close a loop
    return _bezier(a, mid + bow * normal, b)


def _point_on(stroke: np.ndarray, t: float) -> np.ndarray:
    """The point a fraction ``t`` of the way along a polyline."""
    return _place_on(stroke, t)[0]


def _place_on(stroke: np.ndarray, t: float) -> tuple[np.ndarray, int]:
    """The point a fraction ``t`` of the way along a polyline, and the piece it lies on."""
    seg = np.diff(stroke, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    target = t * lengths.sum()
    i = int(np.searchsorted(np.cumsum(lengths), target))
    i = min(i, len(seg) - 1)
    before = lengths[:i].sum()
    frac = (target - before) / max(lengths[i], 1e-9)
    return stroke[i] + frac * seg[i], i


def _direction(rng: np.random.Generator, avoid: float | None = None) -> float:
    """A random angle, half the time near the vertical or the horizontal (letters and signs are
    mostly drawn upright); with ``avoid``, at least 35 degrees away from that line's direction."""
    while True:
        if rng.random() < 0.5:
            theta = (rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.1)) % math.pi
        else:
            theta = rng.uniform(0, math.pi)
        if avoid is None:
            return theta
        d = abs((theta - avoid + math.pi / 2) % math.pi - math.pi / 2)
        if d > math.radians(35):
            return theta


def _angle(stroke: np.ndarray) -> float:
    d = stroke[-1] - stroke[0]
    return math.atan2(d[1], d[0]) % math.pi


def _crossing(rng: np.random.Generator) -> list[np.ndarray]:
    c = CANVAS / 2
    length = rng.uniform(0.45, 0.8) * CANVAS
    theta = _direction(rng)
    u = np.array([math.cos(theta), math.sin(theta)])
    first = _stroke(rng, c - u * length / 2, c + u * length / 2)
    strokes = [first]
    for _ in range(int(rng.integers(1, 4))):
        base = strokes[int(rng.integers(len(strokes)))]
        at = _point_on(base, rng.uniform(0.15, 0.85))  # never an end: a junction or a crossing
        theta = _direction(rng, _angle(base))
        u = np.array([math.cos(theta), math.sin(theta)])
        length = rng.uniform(0.3, 0.7) * CANVAS
        kind = rng.random()
        if kind < 0.5:  # crossing: through the point
            s = rng.uniform(0.25, 0.75)
            a, b = at - u * length * s, at + u * length * (1 - s)
        else:  # T-junction: starting on the stroke
            sign = 1 if rng.random() < 0.5 else -1
            a, b = at, at + sign * u * length
        strokes.append(_stroke(rng, a, b))
    return strokes


def _corner(rng: np.random.Generator) -> list[np.ndarray]:
    """A stroke turning at right angles once or twice (as in E, F, C-like brackets), with one or
    two strokes starting on it or crossing it: never the bare bend, which could be a 7."""
    turns = int(rng.integers(1, 3))
    theta = _direction(rng)
    pts = [np.zeros(2)]
    for _ in range(turns + 1):
        u = np.array([math.cos(theta), math.sin(theta)])
        pts.append(pts[-1] + u * rng.uniform(0.35, 0.7) * CANVAS)
        theta += (math.pi / 2 + rng.normal(0, 0.15)) * (1 if rng.random() < 0.8 else -1)
    bend = np.array(pts)
    bend += CANVAS / 2 - (bend.min(axis=0) + bend.max(axis=0)) / 2
    strokes = [bend]
    for _ in range(int(rng.integers(1, 3))):
        at, piece = _place_on(bend, rng.uniform(0.2, 0.8))
        # a tick into the bend's inside (E, F) or across it, at right angles to its piece; not
        # out of it: a U with a stroke running on from its side is an open 4
        d = bend[piece + 1] - bend[piece]
        normal = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9)
        if normal @ (bend.mean(axis=0) - at) < 0:
            normal = -normal
        length = rng.uniform(0.25, 0.5) * CANVAS
        start = at - normal * length * (rng.uniform(0.3, 0.6) if rng.random() < 0.4 else 0.0)
        strokes.append(np.stack([start, start + normal * length]))
    return strokes


def _spine(rng: np.random.Generator) -> list[np.ndarray]:
    """A full-height stroke on the left with two or three strokes leaving it to the right, one of
    them from its middle: bars and diagonals, or a bowl on its upper half (E, F, K, P, R, ⊢).

    The stem runs the whole height and something leaves its middle, so it is never a 1, an L-ish
    hook or a 5 (whose stem is half the height); the only bowl is a half-height one on the upper
    half, never a lower bowl (b: a 6) nor two (B: an 8)."""
    h = rng.uniform(0.7, 1.0) * CANVAS
    w = rng.uniform(0.45, 0.85) * h
    lean = rng.normal(0, 0.08)

    def stem(f: float) -> np.ndarray:  # the point a fraction f down the stem
        return np.array([lean * h * (0.5 - f), f * h])

    def bar(f: float, angle: float, length: float) -> np.ndarray:
        a = stem(f)
        return np.stack([a, a + length * np.array([math.cos(angle), math.sin(angle)])])

    mid = rng.uniform(0.4, 0.6)
    strokes = [np.stack([stem(0.0), stem(1.0)])]
    kind = rng.choice(["bar", "up", "down", "both", "leg"])
    slant = rng.uniform(0.45, 1.0)  # radians from the horizontal, for diagonals
    if kind == "bar":
        strokes.append(bar(mid, rng.normal(0, 0.08), rng.uniform(0.5, 0.95) * w))
    if kind in ("up", "both"):
        strokes.append(bar(mid, -slant, w / math.cos(slant) * rng.uniform(0.8, 1.1)))
    if kind in ("down", "both", "leg"):
        strokes.append(bar(mid, slant, w / math.cos(slant) * rng.uniform(0.8, 1.1)))
    tops = ["bar", "bowl"] if kind == "leg" else ["bar", "bowl", "none"]
    top = rng.choice(tops)
    if top == "bar":
        strokes.append(bar(0.0, rng.normal(0, 0.08), rng.uniform(0.6, 1.0) * w))
    elif top == "bowl":  # the upper bowl of P and R: from the stem's top round to its middle
        a, b = stem(0.0), stem(mid)
        bulge = np.array([rng.uniform(1.2, 1.6) * w, (a[1] + b[1]) / 2])
        strokes.append(_bezier(a, bulge, b))
    if top == "none" or (kind == "bar" and rng.random() < 0.5):  # E, ⊢-like: a foot
        strokes.append(bar(1.0, rng.normal(0, 0.08), rng.uniform(0.6, 1.0) * w))
    return strokes


def _zigzag(rng: np.random.Generator) -> list[np.ndarray]:
    n = int(rng.integers(4, 7))
    width, height = rng.uniform(0.5, 0.9, size=2) * CANVAS
    xs = np.linspace(0, width, n + 1) + rng.uniform(-0.06, 0.06, n + 1) * width
    up = rng.random() < 0.5
    ys = np.array([(i % 2 == up) * height for i in range(n + 1)], dtype=float)
    ys += rng.uniform(-0.12, 0.12, n + 1) * height
    # standing only (M, N, W): lying, its strokes stacked, it would be an angular 3
    return [np.stack([xs, ys], axis=1)]


def _star(rng: np.random.Generator) -> list[np.ndarray]:
    c = np.array([CANVAS / 2, CANVAS / 2])
    n = int(rng.integers(3, 5))
    base = rng.uniform(0, math.pi)
    strokes = []
    for i in range(n):
        theta = base + i * math.pi / n + rng.uniform(-0.15, 0.15)
        u = np.array([math.cos(theta), math.sin(theta)])
        r1, r2 = rng.uniform(0.2, 0.45, size=2) * CANVAS
        strokes.append(np.stack([c - u * r1, c + u * r2]))
    return strokes


def _grid(rng: np.random.Generator) -> list[np.ndarray]:
    length = rng.uniform(0.55, 0.85) * CANVAS
    gap = rng.uniform(0.4, 0.75) * length  # close parallels would be a thick 1
    theta = _direction(rng)
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-u[1], u[0]])
    c = np.array([CANVAS / 2, CANVAS / 2])
    strokes = []
    for side in (-1, 1):
        shift = rng.uniform(-0.1, 0.1) * length
        a = c + side * v * gap / 2 - u * (length / 2 + shift)
        b = c + side * v * gap / 2 + u * (length / 2 - shift)
        strokes.append(_stroke(rng, a, b))
    for _ in range(int(rng.integers(1, 3))):
        t = rng.uniform(0.3, 0.7)  # near an end, a stroke between parallels makes a Z, a 2
        # how far past the parallels the cross stroke runs: between upright ones, not at all
        # (H), but always past lying ones, which with a stroke between them are a serifed 1
        upright = abs(math.sin(theta)) > 0.7
        over = rng.uniform(0.0, 0.35) * gap if upright else rng.uniform(0.2, 0.5) * gap
        tilt = _direction(rng, theta)
        w = np.array([math.cos(tilt), math.sin(tilt)])
        w *= np.sign(w @ v) or 1
        mid = c - u * length / 2 + u * length * t
        half = gap / 2 / max(abs(w @ v), 0.3) + over
        strokes.append(np.stack([mid - w * half, mid + w * half]))
    return strokes


def _box(rng: np.random.Generator) -> list[np.ndarray]:
    w, h = rng.uniform(0.4, 0.8, size=2) * CANVAS
    w = max(w, h)  # never tall: a tall box with a bar across is an 8, with a diagonal a 0
    x0, y0 = (CANVAS - w) / 2, (CANVAS - h) / 2
    corners = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]])
    corners += rng.uniform(-0.06, 0.06, size=corners.shape) * CANVAS
    if rng.random() < 0.3:  # a triangle
        corners = corners[rng.permutation(4)[:3]]
    outline = np.concatenate([corners, corners[:1]])
    strokes = [outline]
    # a closed outline alone is a 0: always a stroke through it, corner to corner or side to side
    k = len(corners)
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(k))
        if rng.random() < 0.5 and k == 4:
            a, b = corners[i], corners[(i + 2) % k]
        else:
            a = (corners[i] + corners[(i + 1) % k]) / 2  # a side's middle, to the other side's
            b = (corners[(i + 2) % k] + corners[(i + 3) % k]) / 2 if k == 4 else corners[i - 1]
        strokes.append(np.stack([a, b]))
    return strokes


_SHAPES: dict[str, Callable[[np.random.Generator], list[np.ndarray]]] = {
    "crossing": _crossing,
    "corner": _corner,
    "spine": _spine,
    "zigzag": _zigzag,
    "star": _star,
    "grid": _grid,
    "box": _box,
}


def _render(rng: np.random.Generator, strokes: list[np.ndarray], narrow: bool = True) -> np.ndarray:
    """The strokes drawn with a pen of random width, as a crop of the ink in [0, 1]."""
    import cv2

    if narrow and rng.random() < 0.6:  # letters and digits are mostly taller than wide
        strokes = [s * np.array([rng.uniform(0.4, 1.0), 1.0]) for s in strokes]
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float(max(hi - lo))
    # MNIST's strokes are 2 to 4.5 pixels wide in the 20-pixel box: a tenth to a fifth of it
    thickness = max(2, round(extent * rng.uniform(0.07, 0.18)))
    pad = thickness + 2
    size = np.ceil(hi - lo).astype(int) + 2 * pad + 1
    canvas = np.zeros((int(size[1]), int(size[0])), dtype=np.uint8)
    for s in strokes:
        p = np.round((s - lo + pad) * _SCALE).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [p], False, 255, thickness, cv2.LINE_AA, _SUB)
    ys, xs = np.nonzero(canvas)
    crop = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return crop.astype(np.float32) / 255.0


def _overlay(rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two real digits of different classes over each other, shifted apart a little: a crop."""
    # no 1s: a 1 over a digit is a digit with a stroke more, which real digits often have
    usable = np.flatnonzero(labels != 1)
    i = int(usable[rng.integers(usable.size)])
    others = usable[labels[usable] != labels[i]]
    j = int(others[rng.integers(others.size)])
    a, b = digits[i].reshape(28, 28), digits[j].reshape(28, 28)
    dy, dx = rng.integers(3, 8, size=2) * rng.choice([-1, 1], size=2)  # apart, not on top
    b = np.roll(b, (int(dy), int(dx)), axis=(0, 1))
    ink = np.maximum(a, b)
    ys, xs = np.nonzero(ink > 0.05)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)


def draw(
    rng: np.random.Generator,
    family: str,
    digits: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """One non-digit of ``family`` (one of :data:`FAMILIES`) as a 28x28 MNIST image in [0, 1].

    ``overlay`` needs real ``digits`` (rows of 784 pixels) and their ``labels``.
    """
    from digitnet.imaging import _fit_and_centre

    if family == "overlay":
        if digits is None or labels is None:
            raise ValueError("the overlay family draws real digits: give digits and labels")
        crop = _overlay(rng, digits, labels)
    else:
        crop = _render(rng, _SHAPES[family](rng), narrow=family not in ("box", "zigzag"))
    return _fit_and_centre(crop)


def _nearest(rows: np.ndarray, digits: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
    """The Euclidean distance from each row to its nearest digit (rows of 784 pixels); when the
    rows are digits themselves, ``own[i]`` is row ``i``'s index among ``digits`` (not its own
    neighbour)."""
    D = np.asarray(digits, dtype=np.float32)
    R_all = np.asarray(rows, dtype=np.float32)
    d2 = (D * D).sum(axis=1)
    out = np.empty(R_all.shape[0])
    for start in range(0, R_all.shape[0], 256):  # a (256, digits) block of distances at a time
        R = R_all[start : start + 256]
        dist = (R * R).sum(axis=1)[:, None] - 2 * R @ D.T + d2[None, :]
        if own is not None:
            dist[np.arange(R.shape[0]), own[start : start + R.shape[0]]] = np.inf
        out[start : start + R.shape[0]] = np.sqrt(np.maximum(dist.min(axis=1), 0))
    return out


def digit_likeness(outliers: np.ndarray, digits: np.ndarray) -> tuple[np.ndarray, float]:
    """How close each shape comes to a real digit, and how close real digits come to each other.

    ``outliers`` and ``digits`` are rows of 784 pixels. Returns the Euclidean distance from each
    outlier to its nearest digit, and the :data:`DIGIT_LIKE_QUANTILE` quantile of the distances
    from each digit to its nearest *other* digit: a shape under it is nearer to some real digit
    than a quarter of the digits are to theirs, so it may well be a digit.
    """
    digits = np.asarray(digits, dtype=np.float32)
    # the digits' own distances from a thousand of them, each to its nearest among them all
    own = np.arange(0, digits.shape[0], max(1, digits.shape[0] // 1000))
    spacing = _nearest(digits[own], digits, own)
    return _nearest(outliers, digits), float(np.quantile(spacing, DIGIT_LIKE_QUANTILE))


def make_outliers(
    n: int,
    rng: np.random.Generator,
    digits: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    *,
    families: tuple[str, ...] | None = None,
) -> np.ndarray:
    """``n`` non-digits as rows ``(n, 784)`` float32, deterministic from ``rng``.

    The ``families`` (default: all of :data:`FAMILIES` that can be drawn; ``overlay`` needs
    ``digits``) take turns. With ``digits`` (rows of 784 pixels), shapes closer to a real digit
    than :func:`digit_likeness` allows are drawn again (``labels`` are needed for overlays only).
    """
    if families is None:
        families = tuple(f for f in FAMILIES if f != "overlay" or labels is not None)
    out = np.empty((n, 784), dtype=np.float32)
    for i in range(n):
        out[i] = draw(rng, families[i % len(families)], digits, labels).reshape(-1)
    if digits is None:
        return out
    _, limit = digit_likeness(out[:0], digits)
    todo = np.arange(n)
    for _ in range(20):  # each round redraws the few digit-like shapes left
        todo = todo[_nearest(out[todo], digits) < limit]
        if todo.size == 0:
            break
        for i in todo:
            out[i] = draw(rng, families[i % len(families)], digits, labels).reshape(-1)
    return out


__all__ = ["CANVAS", "DIGIT_LIKE_QUANTILE", "FAMILIES", "digit_likeness", "draw", "make_outliers"]
