"""Write the photo test set: official MNIST test digits photographed on paper, under each of the
conditions issue 12 names, and numbers of 2 to 6 digits; a fixed seed makes it the same set
every time.

    python scripts/make_photo_set.py OUT [--per-condition 100] [--numbers 100] [--seed 12]

OUT gets ``<condition>-<k>.jpg`` and ``labels.json`` (file name -> ``{"condition", "number",
"test_index"}``: the digits written and their indices in the official test set). Every image is
synthetic: a test digit (28x28, white on black; never a training digit) enlarged with bicubic
interpolation and laid as ink on paper, the paper then lit, shadowed, laid on a table, turned,
seen at an angle and photographed with sensor noise and JPEG compression. Evaluate with
``python scripts/eval_photo_set.py MODEL OUT``.

Conditions (``plain`` is the reference: even light, white paper filling the frame):
plain, table, shadow, uneven, ruled, squared, perspective, dim, pencil, marker, number.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from digitnet.data.datasets import load_embedded

CONDITIONS = (
    "plain", "table", "shadow", "uneven", "ruled", "squared", "perspective", "dim", "pencil",
    "marker",
)  # fmt: skip
W, H = 800, 600  # the photo


def ink_of(digit: np.ndarray, side: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """The digit's ink coverage (0-1) enlarged to side x side; pencil thinner, marker fatter."""
    big = cv2.resize(digit.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0, 1)
    if kind == "pencil":  # a thin line: the strokes' core only
        big = np.clip((big - 0.75) * 4.0, 0, 1)
        big = cv2.GaussianBlur(big, (0, 0), 1.0)
    elif kind == "marker":
        r = max(1, side // 30)
        big = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return big


def sheet(
    digits: list[np.ndarray], rng: np.random.Generator, kind: str, size: tuple[int, int]
) -> np.ndarray:
    """A sheet of paper (h, w, 3 in [0, 1]) with the digits written across its middle."""
    h, w = size
    paper = np.array([0.93, 0.92, 0.88]) * rng.uniform(0.94, 1.0)
    rgb = np.ones((h, w, 3), dtype=np.float32) * paper.astype(np.float32)
    if kind == "ruled":
        step = int(rng.integers(h // 14, h // 9))
        for y in range(int(rng.integers(step // 2, step)), h, step):
            cv2.line(rgb, (0, y), (w, y), (0.55, 0.7, 0.9), max(1, h // 300))
        x = int(w * rng.uniform(0.08, 0.15))
        cv2.line(rgb, (x, 0), (x, h), (0.9, 0.45, 0.45), max(1, h // 250))
    elif kind == "squared":
        step = int(rng.integers(h // 25, h // 15))
        for y in range(0, h, step):
            cv2.line(rgb, (0, y), (w, y), (0.6, 0.72, 0.85), 1)
        for x in range(0, w, step):
            cv2.line(rgb, (x, 0), (x, h), (0.6, 0.72, 0.85), 1)
    side = int(min(h * rng.uniform(0.28, 0.42), w * 0.85 / (0.85 * (len(digits) - 1) + 1.1)))
    pen = {
        "pencil": np.array([0.35, 0.35, 0.38]),
        "marker": np.array([0.05, 0.05, 0.08]),
    }.get(kind, np.array([0.12, 0.15, 0.35]) * rng.uniform(0.6, 1.2))
    step = int(side * rng.uniform(0.7, 0.85))  # MNIST's margin: 4 of 28 pixels each side
    total = step * (len(digits) - 1) + side
    x = (w - total) // 2 + int(rng.integers(-w // 12, w // 12 + 1))
    x = min(max(x, 0), w - total)
    for digit in digits:
        y = (h - side) // 2 + int(rng.integers(-h // 12, h // 12 + 1))
        a = ink_of(digit, side, rng, kind)[..., None]
        rgb[y : y + side, x : x + side] = rgb[y : y + side, x : x + side] * (1 - a) + pen * a
        x = min(x + step + int(rng.integers(-side // 12, side // 12 + 1)), w - side)
    return rgb


def photograph(page: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """The sheet in an 800x600 photo: laid on a table, turned or seen at an angle, lit."""
    h, w = page.shape[:2]
    if kind in ("table", "perspective"):
        table = rng.uniform(0.05, 0.6, size=3).astype(np.float32)
        frame = np.empty((H, W, 3), dtype=np.float32)
        frame[:] = table
        grain = cv2.resize(rng.normal(0, 0.03, (H // 8, W // 8)).astype(np.float32), (W, H))
        frame += grain[..., None]
        fill = rng.uniform(0.5, 0.92)  # of the frame's height
        scale = fill * H / h
        cx, cy = W / 2 + rng.uniform(-60, 60), H / 2 + rng.uniform(-30, 30)
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        centred = (corners - [w / 2, h / 2]) * scale
        if kind == "table":
            t = math.radians(rng.uniform(-10, 10))
            rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
            target = centred @ rot.T
        else:  # seen at an angle: the far edge narrower, foreshortened
            k = rng.uniform(0.12, 0.25)
            target = centred * [1, rng.uniform(0.8, 0.95)]
            target[:2, 0] *= 1 - k
        target = (target + np.array([cx, cy])).astype(np.float32)
        m = cv2.getPerspectiveTransform(corners, target)
        warped = cv2.warpPerspective(page, m, (W, H), flags=cv2.INTER_AREA)
        mask = cv2.warpPerspective(np.ones((h, w), np.float32), m, (W, H), flags=cv2.INTER_AREA)
        img = warped + frame * (1 - mask[..., None])
    else:
        img = cv2.resize(page, (W, H), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    light = np.full((H, W), rng.uniform(0.85, 1.0), dtype=np.float32)
    if kind == "shadow":  # a hand's or phone's shadow, hard- or soft-edged, over part of it
        a = rng.uniform(0, 2 * math.pi)
        d = (xx - W / 2) * math.cos(a) + (yy - H / 2) * math.sin(a) - rng.uniform(-120, 120)
        blur = rng.choice([1.0, 8.0, 40.0])
        edge = 1 / (1 + np.exp(-d / blur))
        light *= 1 - rng.uniform(0.35, 0.55) * edge
    elif kind == "uneven":
        a = rng.uniform(0, 2 * math.pi)
        ramp = ((xx / W - 0.5) * math.cos(a) + (yy / H - 0.5) * math.sin(a)) + 0.5
        light *= 0.45 + 0.55 * np.clip(ramp, 0, 1)
    elif kind == "dim":
        light *= rng.uniform(0.22, 0.35)
    img = img * light[..., None]
    noise = 0.035 if kind == "dim" else 0.01
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.4))
    return np.clip(img, 0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-condition", type=int, default=100)
    parser.add_argument("--numbers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mnist = load_embedded()
    X, y = mnist.X_test, mnist.y_test
    rng = np.random.default_rng(args.seed)
    labels = {}

    def save(name: str, img: np.ndarray, kind: str, index: list[int]) -> None:
        bgr = np.rint(img[..., ::-1] * 255).astype(np.uint8)
        cv2.imwrite(str(args.out / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
        number = "".join(str(int(y[i])) for i in index)
        labels[name] = {"condition": kind, "number": number, "test_index": index}

    # each condition its own test digits (condition c: c·N .. (c+1)·N - 1, N = --per-condition),
    # so that a larger set is a larger sample of MNIST's digits, hard ones included; numbers
    # draw theirs at random from the rest of the test set (a stretch of it is not a fair sample:
    # the default model reads 97.3 % of digits 1000-1399 right, 98.7 % of all)
    n = args.per_condition
    for c, kind in enumerate(CONDITIONS):
        for i in range(c * n, (c + 1) * n):
            digit = X[:, i].reshape(28, 28)
            page = sheet([digit], rng, kind, (600, 800))
            save(f"{kind}-{i - c * n:03d}.jpg", photograph(page, rng, kind), kind, [i])
    rest = np.random.default_rng(args.seed).permutation(np.arange(len(CONDITIONS) * n, X.shape[1]))
    start = 0
    for k in range(args.numbers):
        size = 2 + k % 5
        index = [int(i) for i in rest[start : start + size]]
        start += size
        page = sheet([X[:, i].reshape(28, 28) for i in index], rng, "number", (600, 800))
        save(f"number-{k:03d}.jpg", photograph(page, rng, "number"), "number", index)
    (args.out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(f"{len(labels)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
