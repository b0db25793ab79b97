"""The photos people take (issue 12): official test digits photographed under each condition of
scripts/make_photo_set.py (a sheet on a table, turned or at an angle, shadows, uneven and dim
light, ruled and squared paper, pencil and marker) and numbers of 2 to 6 digits, read through
:func:`digitnet.imaging.read`.

Model-free: each photo's 28x28 must be close to the clean digit's own (as :func:`to_mnist` makes
it from the official 28x28): a correlation over 0.6 for 80 % of them; the accuracy through a
trained model, per condition, is what ``scripts/eval_photo_set.py`` reports.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from digitnet.data.datasets import load_embedded
from digitnet.errors import ImageError
from digitnet.imaging import read, to_mnist

ROOT = Path(__file__).resolve().parents[1]
PER_CONDITION = 10


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_photo_set", ROOT / "scripts" / "make_photo_set.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def maker():
    return _script()


@pytest.fixture(scope="module")
def mnist():
    return load_embedded()


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(
        ".jpg", np.rint(rgb[..., ::-1] * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("condition", _script().CONDITIONS)
def test_each_condition_gives_the_clean_digit(condition, maker, mnist):
    rng = np.random.default_rng(sorted(maker.CONDITIONS).index(condition))
    close = 0
    for i in range(100, 100 + PER_CONDITION):
        digit = mnist.X_test[:, i].reshape(28, 28)
        photo = maker.photograph(maker.sheet([digit], rng, condition, (600, 800)), rng, condition)
        reading = read(_jpeg(photo))
        assert len(reading.digits) == 1, (condition, i, [d.box for d in reading.digits])
        seen = reading.digits[0].image
        close += np.corrcoef(seen.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6
    assert close >= 0.8 * PER_CONDITION


def test_numbers_are_cut_into_their_digits(maker, mnist):
    rng = np.random.default_rng(99)
    start = 2000
    for n in range(2, 7):
        digits = [mnist.X_test[:, i].reshape(28, 28) for i in range(start, start + n)]
        start += n
        photo = maker.photograph(maker.sheet(digits, rng, "number", (600, 800)), rng, "number")
        reading = read(_jpeg(photo))
        assert len(reading.digits) == n
        lefts = [d.box[0] for d in reading.digits]
        assert lefts == sorted(lefts)
        for seen, digit in zip(reading.digits, digits, strict=True):
            assert np.corrcoef(seen.image.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6


def test_a_shadow_over_a_corner_is_never_ink(maker, mnist):
    """Shadows across the sheet (scripts/make_photo_set.py's, hard and soft, some covering most
    of it): the lit part is not taken for light ink on dark paper, nor the shadow's corner, cut
    thin by the frame's edge, for a stroke. Each photo gives its digit, inside the frame."""
    # (7 of this seed's 30 were misread before: the lit corner, or the shadow's, taken for ink)
    rng = np.random.default_rng(11)
    for i in range(200, 230):
        digit = mnist.X_test[:, i].reshape(28, 28)
        photo = maker.photograph(maker.sheet([digit], rng, "shadow", (600, 800)), rng, "shadow")
        reading = read(_jpeg(photo))
        assert reading.doubt is None, (i, reading.doubt, [d.box for d in reading.digits])
        assert len(reading.digits) == 1, (i, [d.box for d in reading.digits])
        seen = reading.digits[0].image
        assert np.corrcoef(seen.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6, i


def _touching(digits: list[np.ndarray], pitch: float) -> np.ndarray:
    """An 800x600 sheet with the digits written ``pitch`` of their side apart (MNIST's 28x28
    side): at about 0.6 the strokes of neighbours touch."""
    import cv2

    side = 150
    page = np.ones((600, 800, 3), dtype=np.float32) * np.float32(0.92)
    ink = np.zeros((600, 800), dtype=np.float32)
    x = (800 - int(pitch * side * (len(digits) - 1)) - side) // 2
    for digit in digits:
        big = np.clip(cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC), 0, 1)
        ink[225 : 225 + side, x : x + side] = np.maximum(ink[225 : 225 + side, x : x + side], big)
        x += int(pitch * side)
    pen = np.array([0.12, 0.15, 0.35], dtype=np.float32)
    return page * (1 - ink[..., None]) + pen * ink[..., None]


def test_touching_digits_are_cut_apart(maker, mnist):
    """Digits written so close that their strokes touch are one piece of ink: a piece as wide
    as several digits is cut into as many, where the fewest strokes cross."""
    import cv2

    rng = np.random.default_rng(5)
    start, close, total = 3000, 0, 0
    for n in (2, 2, 3, 3, 4, 5):
        digits = [mnist.X_test[:, i].reshape(28, 28) for i in range(start, start + n)]
        start += n
        page = _touching(digits, 0.58)
        pieces = cv2.connectedComponents((page[..., 0] < 0.5).astype(np.uint8))[0] - 1
        photo = maker.photograph(page, rng, "number")
        reading = read(_jpeg(photo))
        assert len(reading.digits) == n, (start - n, pieces, [d.box for d in reading.digits])
        for seen, digit in zip(reading.digits, digits, strict=True):
            close += np.corrcoef(seen.image.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6
            total += 1
    # (A straight cut leaves a neighbour's touching stroke in some digits: 15 of these 19 are
    # close to the clean digit.)
    assert close >= 0.75 * total


def test_a_digit_in_several_pieces_is_not_cut(maker, mnist):
    """A pencil's faint strokes break a digit into pieces (a 4 in two, a 6 in three); alone on
    the sheet, it is one digit, however the pieces' heights compare."""
    rng = np.random.default_rng(21)  # (its 34th and 55th were cut by a rule that was not)
    cut = []
    for i in range(55):
        digit = mnist.X_test[:, i].reshape(28, 28)
        photo = maker.photograph(maker.sheet([digit], rng, "pencil", (600, 800)), rng, "pencil")
        try:
            if len(read(_jpeg(photo)).digits) > 1:
                cut.append(i)
        except ImageError:  # (the 54th: too faint, refused as blank, as before)
            pass
    # (The 25th, a 4 whose two strokes the pencil leaves a gap apart, is two columns of strokes
    # with paper between them: cut, as before this rule.)
    assert len(cut) <= 1, cut


def test_a_digit_written_above_the_line_stays_in_the_number(maker, mnist):
    """Handwriting drifts up and down its line: a number whose first digit sits well above the
    others (under a third of its rows level with theirs) is read whole, not as its first digit."""
    rng = np.random.default_rng(4)
    for k in range(14):  # (the 14th of this seed's numbers: an 8 raised over 1535)
        index = range(3000 + 7 * k, 3000 + 7 * k + 2 + k % 5)
        digits = [mnist.X_test[:, i].reshape(28, 28) for i in index]
        photo = maker.photograph(maker.sheet(digits, rng, "number", (600, 800)), rng, "number")
    reading = read(_jpeg(photo))
    assert len(reading.digits) == len(digits), [d.box for d in reading.digits]
    for seen, digit in zip(reading.digits, digits, strict=True):
        assert np.corrcoef(seen.image.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6


def test_digits_raised_over_their_neighbours_are_read_apart(maker, mnist):
    """A digit written higher than its neighbour, leaning over its columns without touching it
    (a "33" whose second 3 rises half a digit), is two digits, each with its own ink only."""
    import cv2

    rng = np.random.default_rng(6)
    side, read_right, total = 150, 0, 0
    for k in range(8):
        pair = [mnist.X_test[:, i].reshape(28, 28) for i in (4000 + 2 * k, 4001 + 2 * k)]
        page = np.ones((600, 800, 3), dtype=np.float32) * np.float32(0.92)
        ink = np.zeros((600, 800), dtype=np.float32)
        # the second digit's box starts 0.62 of a side on, half a side higher: MNIST's digits
        # fill about 0.7 of their box's width, so their columns overlap a little
        places = [(260, 260), (260 + int(0.62 * side), 260 - side // 2)]
        for digit, (x, y) in zip(pair, places, strict=True):
            big = np.clip(cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC), 0, 1)
            ink[y : y + side, x : x + side] = np.maximum(ink[y : y + side, x : x + side], big)
        pen = np.array([0.12, 0.15, 0.35], dtype=np.float32)
        photo = maker.photograph(page * (1 - ink[..., None]) + pen * ink[..., None], rng, "plain")
        reading = read(_jpeg(photo))
        total += 1
        if len(reading.digits) == 2 and all(
            np.corrcoef(seen.image.ravel(), to_mnist(digit).ravel())[0, 1] > 0.6
            for seen, digit in zip(reading.digits, pair, strict=True)
        ):
            read_right += 1
    assert read_right >= total - 1, (read_right, total)
