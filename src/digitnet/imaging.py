"""From a photo, scan or drawing of one digit to the 28x28 image the network reads.

The network only knows MNIST, and MNIST's digits were all made the same way (LeCun, Cortes and
Burges, *The MNIST database of handwritten digits*, http://yann.lecun.com/exdb/mnist/): NIST's
black-and-white scans "were size normalized to fit in a 20x20 pixel box while preserving their
aspect ratio. The resulting images contain grey levels as a result of the anti-aliasing technique
used by the normalization algorithm. The images were centered in a 28x28 image by computing the
center of mass of the pixels, and translating the image so as to position this point at the
center of the 28x28 field." Every training digit is white ink on a black (zero) background, its
longest side exactly 20 pixels, its centre of mass within half a pixel of pixel (14, 14).

A phone photo of a digit is none of that: grey-brown ink on off-white paper, lit unevenly, a
few hundred pixels tall somewhere in a large frame. :func:`to_mnist` remakes it the MNIST way:

0. **The sheet and its printed lines** (photos only). A sheet of paper lying on a darker table
   (the largest bright region, solid, with at least two of its four corners inside the frame,
   which a shadow's edge never gives) is seen straight on: its four corners are mapped onto a
   rectangle (a perspective transform, which also undoes a turn or an angle), its rim cut
   away; the table is never ink. The printed lines of ruled or squared paper (two or more
   thin lines running across half the sheet or more) are taken out, so that they become paper.
1. **Background and polarity.** Whether the ink is darker or lighter than the paper is read from
   the skew of the image about its background (the median, of the whole image and of windows
   across it): the paper is the majority, the ink a one-sided tail. The image is turned so that
   ink is bright. (A sheet mostly in shadow has its lit part as the tail: when the ink found
   runs off the frame, the other way is tried, and taken if its ink stays inside.) The paper's
   level under every pixel is then estimated twice: first smoothly, from a low percentile of
   coarse cells, for a first look at the strokes and their width; then by a morphological
   opening 2.5 times wider than the widest stroke, which removes the ink and keeps the paper
   however it is lit, even across the sharp edge of a shadow. Dividing by that level (a flat
   field) gives ``s``, the fraction by which each pixel departs from its paper: 0 on paper, near
   1 for black ink.
2. **Ink.** A pixel is ink if ``s`` clears Otsu's threshold, a minimum contrast, and several
   times the paper's grain (its robust spread). Where a shadow's edge meets the frame's at a
   narrow angle, the shadow's corner is thinner than the opening and shows as "ink" running off
   the frame at the shadow's contrast, well under the ink's: it is dropped. Specks much smaller
   than the digit, or far from it, are dropped; a page on which nothing clears the bar is blank.
   The faint anti-aliased rim of each kept stroke is kept with it (hysteresis, as in Canny's
   edge detector), and the grey levels stay grey, the strokes' cores at 1: MNIST is
   anti-aliased, not binary.
3. **Crop** to the ink's bounding box. Strokes that would come out thinner than
   :data:`MIN_STROKE` pixels in the 20x20 box (a fine pen on a large digit) are widened to it:
   not a step of MNIST's, but no MNIST digit has strokes that thin.
4. **Fit** it into a 20x20 box, aspect ratio kept, longest side exactly 20, with an
   anti-aliasing (Lanczos) resampling filter.
5. **Centre** it in a 28x28 field by its centre of mass: shifted by whole pixels so that the
   centre of mass lands within half a pixel of row 14, column 14 (rows and columns numbered
   0-27, pixel centres at whole numbers), where MNIST's own digits have theirs.

:func:`read_digits` also reads a number written on one line (in a photo, its digits may drift up
and down the line): the strokes are cut into columns where paper separates them, and, in a
photo, through digits that touch (a column as wide as several digits, cut where the fewest
strokes cross); steps 3-5 make each column an MNIST digit; and it says what may not be a digit
(strokes as wide as a dot or a block, ink touching the image's edge), for
:meth:`digitnet.predictor.Predictor.read`'s "not sure".

:func:`load_image` decodes a file or bytes to grey (with Pillow), refusing files that are
missing, empty, not images, truncated, or so large they may be decompression bombs. Each
refusal is an :class:`~digitnet.errors.ImageError` with a one-line message naming the file.
:func:`preprocess` is the two together, and :func:`to_column` turns the result into the
``(784, 1)`` column that :meth:`digitnet.network.Network.predict_proba` takes.

Pillow and OpenCV (``cv2``, the headless wheel) load inside the functions that use them:
importing this module costs NumPy only. The image filters (labelling with statistics, the exact
Euclidean distance transform, the morphological opening, the median of the background's cells)
are OpenCV's, in C++; OpenCV imports in about 30 ms, SciPy's ``ndimage`` in a third of a second.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from digitnet.errors import ImageError, ShapeError

# Decoding lives in image_io; these names stay importable from here.
from digitnet.image_io import (  # noqa: F401
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    SERVER_MAX_DECODED_BYTES,
    _as_float,
    _describe,
    _load,
    _shrink,
    load_image,
)
from digitnet.metrics import percentile

if TYPE_CHECKING:
    pass

__all__ = [
    "BOX",
    "CENTRE",
    "FIELD",
    "MAX_PIXELS",
    "MIN_STROKE",
    "WORKING_SIDE",
    "Digit",
    "Reading",
    "load_image",
    "preprocess",
    "read",
    "read_digits",
    "to_column",
    "to_mnist",
]

FIELD = 28
"""Side of an MNIST image, in pixels."""
BOX = 20
"""Side of the box the digit is fitted into, aspect ratio kept (the longest side becomes 20)."""
CENTRE = 14.0
"""Row and column where the centre of mass lands; MNIST's test digits have it in [13.5, 14.5]."""
MIN_STROKE = 2.0
"""Strokes thinner than this, in pixels of the 20x20 box, are widened to it (see to_mnist).

Nine MNIST digits in ten have strokes between 2.1 and 4.4 pixels wide.
"""
WORKING_SIDE = 1024
"""Larger images are scaled down (area-averaged) to this longest side before looking for ink.

A digit a thirtieth of the frame tall still spans 34 pixels: more than the 20 it will fill.
"""
DRAWING_SIDE = 112
"""A drawing on perfectly even paper (a drawing pad's canvas) is cropped to what is drawn, with a
margin, and scaled down to this longest side: the digit still spans four times the 20 pixels it
will fill, and finding its ink takes a millisecond instead of twenty.
"""

# -- how ink is told from paper (see to_mnist) -----------------------------------------------------
_GRID = 8  # background cells along the longest side
_STATS_SIDE = 256  # background and statistics are estimated on at most this many pixels a side
_PAPER_PERCENTILE = 30.0  # the paper level of a cell, on the side away from the ink
_K_STRONG = 5.0  # ink clears the paper by this many robust standard deviations of its grain...
_MIN_CONTRAST = 0.10  # ...and by at least a tenth of the paper's brightness
_K_WEAK = 3.0  # the anti-aliased rim of a stroke: this many deviations...
_MIN_RIM = 0.04  # ...and at least 4%
_MIN_AREA_FRACTION = 1e-4  # the digit's largest stroke covers at least this much of the image...
_MIN_AREA = 8  # ...and at least this many pixels
_KEEP_FRACTION = 0.05  # pieces smaller than 5% of the largest are specks
_KEEP_GAP = 0.5  # pieces further from the digit than half its size are something else
_LINE_GAP = 1.0  # ...unless beside it on its line, as the digits of a number are
_PHOTO_LEVEL = 5.0  # in a photo, a fifth of a piece's rows level with the digits' so far
_INK_PERCENTILE = 90.0  # this percentile of the ink's contrast becomes full white (1.0)

Origin = tuple[int, int]  # a pixel's row and column


# -- from grey to MNIST ----------------------------------------------------------------------------
def _check_grey(grey: Any) -> np.ndarray:
    a = np.asarray(grey)
    if a.ndim != 2:
        raise ShapeError(
            f"to_mnist takes a grey image of shape (H, W); got shape {a.shape}.",
            "load_image(path) returns one",
        )
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ShapeError(f"to_mnist needs at least 2x2 pixels; got {a.shape[0]}x{a.shape[1]}.")
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a  # 8-bit levels: made float by _as_float, after a drawing's crop
    if np.issubdtype(a.dtype, np.integer):
        return (a.astype(np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    a = a.astype(np.float32, copy=False)
    lo, hi = float(a.min()), float(a.max())  # NaN or infinity anywhere shows in one of these
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ImageError("the grey image holds NaN or infinite values.")
    if lo < -1e-6 or hi > 1.0 + 1e-6:
        raise ImageError(
            f"the grey image must hold values in [0, 1]; they range from {lo:g} to {hi:g}.",
            "divide 8-bit pixels by 255",
        )
    # (Only rounding error can be outside [0, 1] here; nothing below writes into ``a``.)
    return np.clip(a, 0.0, 1.0) if lo < 0.0 or hi > 1.0 else a


def _cells(v: np.ndarray, q: float) -> np.ndarray:
    """A smooth estimate of the background of ``v``, the same size as ``v``.

    On a copy of ``v`` reduced to at most ``_STATS_SIDE`` pixels a side (the background varies
    slowly), a grid of about ``_GRID`` cells along the longest side: the ``q``-th percentile of
    each cell, then the median of each 3x3 block of cells, so that a cell filled by a thick
    stroke takes the level of its neighbours; then interpolated bilinearly between the cells'
    centres back to full size.
    """
    import cv2
    from PIL import Image

    h, w = v.shape
    small = _shrink(v, _STATS_SIDE) if max(h, w) > _STATS_SIDE else v
    sh, sw = small.shape
    cell = max(2, math.ceil(max(sh, sw) / _GRID))
    gh, gw = math.ceil(sh / cell), math.ceil(sw / cell)
    padded = np.pad(small, ((0, gh * cell - sh), (0, gw * cell - sw)), mode="reflect")
    blocks = padded.reshape(gh, cell, gw, cell).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    grid = np.percentile(blocks, q, axis=-1)
    # (OpenCV's 3x3 median repeats the edge cells beyond the edges.)
    grid = cv2.medianBlur(np.ascontiguousarray(grid, dtype=np.float32), 3)
    # The full image spans sw/cell by sh/cell cells of the grid.
    up = Image.fromarray(np.ascontiguousarray(grid)).resize(
        (w, h), Image.Resampling.BILINEAR, box=(0.0, 0.0, sw / cell, sh / cell)
    )
    return np.asarray(up, dtype=np.float32)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold (1979): the cut that maximises the variance between the two classes."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-6:
        return hi
    # The histogram of 256 equal bins from lo to hi (the last one closed), as np.histogram counts
    # it but in two passes instead of seven (np.histogram also mends values within a rounding
    # error of an edge, which cannot move the cut by more than one bin).
    edges = np.linspace(lo, hi, 257)
    bins = ((values.ravel() - np.float64(lo)) * (256.0 / (hi - lo))).astype(np.intp)
    hist = np.bincount(np.minimum(bins, 255), minlength=256)
    p = hist / float(values.size)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    total = m0[-1]
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def _blank() -> ImageError:
    return ImageError(
        "no digit found: the image looks blank (nothing stands out from the background).",
        "photograph the digit closer, in darker ink, or with more even light",
    )


def _digit_pieces(strong: np.ndarray, level: float = 3.0) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The connected pieces of ink that make the digit, and their bounding box: the largest
    piece, and every piece at least ``_KEEP_FRACTION`` of its size within ``_KEEP_GAP`` of the
    digit so far. Raises the blank-page error if the largest piece is too small to be a digit."""
    import cv2

    # 8-connected pieces with their areas and boxes; label 0 is the background.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        strong.view(np.uint8), connectivity=8
    )
    n = count - 1
    if n == 0:
        raise _blank()
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    if largest < max(_MIN_AREA, _MIN_AREA_FRACTION * strong.size):
        raise _blank()
    if n == 1:  # one piece (most digits): it is the digit, and its box the box of the ink
        rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
        box = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
        return strong[box].copy(), box
    boxes = [(slice(int(y), int(y + h)), slice(int(x), int(x + w))) for x, y, w, h in stats[1:, :4]]
    candidates = [i for i in range(n) if areas[i] >= _KEEP_FRACTION * largest]
    first = int(np.argmax(areas))
    kept = {first}
    r0, r1 = boxes[first][0].start, boxes[first][0].stop
    c0, c1 = boxes[first][1].start, boxes[first][1].stop
    grew = True
    while grew:
        grew = False
        reach = _KEEP_GAP * max(r1 - r0, c1 - c0)
        for i in candidates:
            if i in kept:
                continue
            rows, cols = boxes[i]
            gap_r = max(0, rows.start - r1, r0 - rows.stop)
            gap_c = max(0, cols.start - c1, c0 - cols.stop)
            # (Or on the same line, as the next digit of a number: a third of its rows or more
            # level with the digits' so far, or 1/``level`` of them, across a gap of up to
            # _LINE_GAP times their height.)
            overlap = min(r1, rows.stop) - max(r0, rows.start)
            even = level * overlap >= min(rows.stop - rows.start, r1 - r0)
            in_line = even and gap_c <= _LINE_GAP * (r1 - r0)
            if max(gap_r, gap_c) <= reach or in_line:
                kept.add(i)
                r0, r1 = min(r0, rows.start), max(r1, rows.stop)
                c0, c1 = min(c0, cols.start), max(c1, cols.stop)
                grew = True
    box = slice(r0, r1), slice(c0, c1)
    is_kept = np.zeros(n + 1, dtype=bool)  # by label; label i + 1 is piece i
    is_kept[[i + 1 for i in kept]] = True
    return is_kept[labels[box]], box


def _contrast(
    v: np.ndarray, paper: np.ndarray, even: bool = False
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """How far each pixel of ``v`` (ink bright) stands out from the ``paper`` under it.

    ``r = v - paper`` is the departure in grey levels and ``s = r / paper_brightness`` the same
    as a fraction of the light the paper reflects (a flat field: for dark ink, ``s = 1 - grey /
    paper``). Grain is judged on both scales, from robust statistics (median, and 1.4826 times
    the median absolute deviation, a standard deviation unmoved by the ink) of an evenly spaced
    sample: noise added by the camera is even in ``r``, the paper's own texture in ``s``.

    Paper that is ``even`` (one exact grey level, see :func:`_flat_paper`) has no grain: its
    level is 0 and its spread 0 on both scales, with no statistics to estimate.

    Returns ``s``, its paper level, the strong ink (clears Otsu's cut, ``_K_STRONG`` deviations
    of the grain and ``_MIN_CONTRAST``) and the weak ink (``_K_WEAK`` deviations, ``_MIN_RIM``).
    """
    r = v - paper
    s = r / np.maximum(1.0 - paper, np.float32(0.05))
    step = max(1, math.ceil(max(v.shape) / _STATS_SIDE))
    s_sample = s[::step, ::step]
    if even:
        (r_base, r_spread), (s_base, s_spread) = (0.0, 0.0), (0.0, 0.0)
    else:
        r_base, r_spread = _robust(r[::step, ::step])
        s_base, s_spread = _robust(s_sample)
    strong_cut = max(_otsu(s_sample), s_base + _K_STRONG * s_spread, s_base + _MIN_CONTRAST)
    strong = (s > strong_cut) & (r > r_base + _K_STRONG * r_spread)
    weak = (s > s_base + max(_K_WEAK * s_spread, _MIN_RIM)) & (r > r_base + _K_WEAK * r_spread)
    return s, s_base, strong, weak


def _robust(sample: np.ndarray) -> tuple[float, float]:
    """The median and the robust standard deviation (1.4826 x median absolute deviation)."""
    centre = float(np.median(sample))
    return centre, 1.4826 * float(np.median(np.abs(sample - centre)))


def _skew(x: np.ndarray) -> float:
    """The skewness of ``x``'s values about zero: E[x³] / E[x²]^1.5, the sign of the longer tail."""
    x = x.astype(np.float64).ravel()
    m2 = float(np.mean(x * x))
    return float(np.mean(x * x * x)) / m2**1.5 if m2 > 0 else 0.0


def _dark_ink(grey: np.ndarray) -> bool:
    """Whether the ink is darker than the paper: the paper is the majority, the ink a tail.

    On a copy at most 64 pixels a side, the skewness of what is left after taking away the
    background, estimated three ways and added: the median of the whole image (right when the
    light is even, however bold the strokes), and the median over windows a half and a third of
    the image wide (which follow gradients and shadows, edges and all, while strokes narrower
    than half the window vanish from them). Negative: a dark tail, so dark ink.
    """
    tiny = (_shrink(grey, 64) if max(grey.shape) > 64 else grey).astype(np.float64)
    total = _skew(tiny - np.median(tiny))
    for fraction in (2, 3):
        size = max(3, int(max(tiny.shape) / fraction) | 1)
        # Every third pixel of the window, about its centre: nine times quicker, and an odd
        # count, so that the median is a pixel's value and inverting the image inverts it.
        centre = size // 2
        window = np.zeros((size, size), dtype=bool)
        window[centre % 3 :: 3, centre % 3 :: 3] = True
        total += _skew(tiny - _window_median(tiny, window))
    return total < 0.0


def _window_median(a: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """The median of the pixels of the small 2-D ``a`` under ``footprint`` centred on each pixel,
    the image mirrored beyond its edges (edge pixel repeated: d c b a | a b c d); with an even
    count under the footprint, the upper middle one.

    OpenCV's median takes square windows only, and in floats 3 or 5 pixels wide: the sparse
    window of :func:`_dark_ink` on its 64-pixel copy is a few thousand values, in NumPy.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    fh, fw = footprint.shape
    padded = np.pad(a, ((fh // 2, (fh - 1) // 2), (fw // 2, (fw - 1) // 2)), "symmetric")
    neighbours = sliding_window_view(padded, footprint.shape)[..., footprint]
    m = neighbours.shape[-1]
    return np.partition(neighbours, m // 2, axis=-1)[..., m // 2]


def _ink(grey: np.ndarray, paper: float | None = None) -> tuple[np.ndarray, np.ndarray, Origin]:
    """Steps 1-2: the digit's ink, white on black, in a window around the digit (zero off the
    digit); the mask of its strong ink (the strokes without their anti-aliased rims); and the
    window's top-left pixel in ``grey``."""
    # 1. Paper made on a computer (a drawing pad, a paint program) is one exact grey level
    # (``paper``, see _flat_paper): that level is the background everywhere, and the ink is
    # whatever departs from it, darker or lighter.
    if paper is not None:
        return _ink_of(grey, grey, float(grey.mean()) < paper, paper)

    # The background and the first look are judged on a copy at most _STATS_SIDE pixels a side.
    small = _shrink(grey, _STATS_SIDE) if max(grey.shape) > _STATS_SIDE else grey

    # 1a. Polarity: see _dark_ink. Should the guess be wrong, nothing is found, and the other
    # way is tried before giving up.
    dark_ink = _dark_ink(grey)
    try:
        found = _ink_of(grey, small, dark_ink)
    except ImageError as e:
        first_error: ImageError | None = e
        found = None
    else:
        # Ink that runs off the frame may be the lit corner of a sheet mostly in shadow, taken
        # for light ink on dark paper: the other way is looked at too, and taken if its ink
        # stays inside the frame.
        if not _runs_off(found, grey.shape):
            return found
        first_error = None
    try:
        other = _ink_of(grey, small, not dark_ink)
    except ImageError:
        if found is None:
            assert first_error is not None
            raise first_error from None
        return found
    return other if found is None or not _runs_off(other, grey.shape) else found


def _runs_off(found: tuple[np.ndarray, np.ndarray, Origin], shape: tuple[int, ...]) -> bool:
    """Whether the strokes :func:`_ink_of` found reach the edge of the image (``shape``)."""
    _, strokes, (r0, c0) = found
    rows = np.flatnonzero(strokes.any(axis=1))
    cols = np.flatnonzero(strokes.any(axis=0))
    if rows.size == 0:
        return False
    return (
        r0 + rows[0] == 0
        or c0 + cols[0] == 0
        or r0 + rows[-1] + 1 >= shape[0]
        or c0 + cols[-1] + 1 >= shape[1]
    )


def _flat_paper(grey: np.ndarray) -> float | None:
    """The paper's grey level if the paper is perfectly even, else ``None`` (in ``grey``'s own
    units: 0-255 for 8-bit levels, see :func:`_as_float`).

    Even means: at least three quarters of the border is one value (the value of a corner; a
    stroke may run off the edge), and at least half of all pixels have it, which no camera or
    scanner gives (their paper has grain and uneven light) and a drawing made on a computer
    always does. The background estimates of step 1 would find that same level everywhere, at
    twenty times the cost; the page of ``digitnet serve`` sends such drawings.
    """
    border = np.concatenate((grey[0], grey[-1], grey[:, 0], grey[:, -1]))
    corners = grey[[0, 0, -1, -1], [0, -1, 0, -1]]
    counts = [int(np.count_nonzero(border == c)) for c in corners]
    level = corners[int(np.argmax(counts))]
    if 4 * max(counts) < 3 * border.size:
        return None
    if 2 * np.count_nonzero(grey == level) < grey.size:
        return None
    return float(level)


def _drawing_window(grey: np.ndarray, paper: float) -> tuple[np.ndarray, _Frame]:
    """The part of a drawing on even paper (see :func:`_flat_paper`) around everything drawn,
    with a margin of paper, scaled down (area-averaged) to at most :data:`DRAWING_SIDE` a side.

    No grain or lighting needs resolving on such paper, so the digit needs only a few times the
    20 pixels it will fill; the rest of the canvas is empty paper. Raises the blank-page error
    when nothing departs from the paper.
    """
    drawn = grey != grey.dtype.type(paper)
    rows = np.flatnonzero(drawn.any(axis=1))
    if rows.size == 0:
        raise _blank()
    cols = np.flatnonzero(drawn.any(axis=0))
    h, w = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    margin = 2 + max(h, w) // 10
    window = np.full((h + 2 * margin, w + 2 * margin), grey[0, 0], dtype=grey.dtype)
    window[margin:-margin, margin:-margin] = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    window = _as_float(window)
    small = _shrink(window, DRAWING_SIDE) if max(window.shape) > DRAWING_SIDE else window
    frame = _Frame(
        float(rows[0] - margin),
        float(cols[0] - margin),
        window.shape[0] / small.shape[0],
        window.shape[1] / small.shape[1],
        (int(grey.shape[0]), int(grey.shape[1])),
    )
    return small, frame


def _ink_of(
    grey: np.ndarray, small: np.ndarray, dark_ink: bool, paper: float | None = None
) -> tuple[np.ndarray, np.ndarray, Origin]:
    """:func:`_ink` for ink known to be darker (``dark_ink``) or lighter than the paper, on
    paper of one known grey level (``paper``, see :func:`_flat_paper`) or estimated here."""
    v = 1.0 - grey if dark_ink else grey  # ink bright from here on
    if paper is not None:
        level = np.float32(1.0 - paper if dark_ink else paper)
        s, base, strong, weak = _contrast(v, np.full_like(v, level), even=True)
        return _ink_around(s, base, strong, weak, lit=False)
    scale = max(grey.shape) / max(small.shape)
    v_small = 1.0 - small if dark_ink else small

    # 1b. A first look at the ink, against a smooth background: a low percentile of each cell,
    # which is paper unless the cell is mostly ink. It measures the widest stroke: twice the
    # largest distance from an inked pixel to the paper.
    _, _, strong, _ = _contrast(v_small, _cells(v_small, _PAPER_PERCENTILE))
    try:
        kept, _ = _digit_pieces(strong)
        widest = 2.0 * scale * float(_distance_to_paper(np.pad(kept, 1)).max())
    except ImageError:  # too faint or too small to see at this scale: strokes narrower than a cell
        widest = max(grey.shape) / _GRID / 2.5

    # 1c. The paper again, now that the strokes' width is known: a morphological opening (the
    # minimum over a k x k window, then the maximum) removes every bright feature narrower than
    # k, so with k 2.5 times the widest stroke it removes the ink and keeps the paper, following
    # gradients and even the sharp edge of a shadow, which a smooth background cannot.
    k = 2 * math.ceil(1.25 * widest) + 1
    s, base, strong, weak = _contrast(v, _opening(v, k))
    return _ink_around(s, base, strong, weak)


SHADOW_PEAK = 0.75
"""A piece of ink running off the frame whose contrast peaks (its 90th percentile) under this
fraction of the other pieces' highest peak is a shadow, not ink: where a shadow's edge meets the
frame's edge at a narrow angle, the shadow is a wedge narrower than the opening of step 1c, and
its tip is taken away from the paper's estimate. Its contrast is the shadow's depth (a third to
a half of the light) all over; ink's peaks at three quarters of the light or more."""


def _without_shadow_corners(strong: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``strong`` without the pieces that run off the frame at a shadow's contrast (see
    :data:`SHADOW_PEAK`); unchanged when every piece runs off it, or none does."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(strong.view(np.uint8), connectivity=8)
    if n <= 2:
        return strong
    edge = np.zeros(n, dtype=bool)
    for border in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge[border] = True
    edge[0] = False
    if not edge.any() or edge[1:].all():
        return strong
    areas = stats[:, cv2.CC_STAT_AREA]
    # The pieces worth comparing: at least _KEEP_FRACTION of the largest, the 20 largest.
    order = np.argsort(-areas[1:])[:20] + 1
    order = order[areas[order] >= _KEEP_FRACTION * areas[order[0]]]
    peaks = {}
    for i in order:
        x, y, w, h = stats[i, :4]
        box = slice(y, y + h), slice(x, x + w)
        peaks[int(i)] = percentile(s[box][labels[box] == i], 90.0)
    inside = [p for i, p in peaks.items() if not edge[i]]
    if not inside:
        return strong
    drop = np.zeros(n, dtype=bool)
    for i, p in peaks.items():
        drop[i] = edge[i] and p < SHADOW_PEAK * max(inside)
    return strong & ~drop[labels] if drop.any() else strong


def _ink_around(
    s: np.ndarray, base: float, strong: np.ndarray, weak: np.ndarray, lit: bool = True
) -> tuple[np.ndarray, np.ndarray, Origin]:
    """Step 2 of :func:`_ink_of`, from :func:`_contrast`'s answers; ``lit``: a photo (its
    paper lit by a lamp or the sky, perhaps shadowed), not even paper made on a computer."""
    import cv2

    # 2. Ink: the digit's pieces, each with its faint rim (weak ink connected to a kept piece),
    # looked for within a margin of a tenth of the digit's size around them; in a photo, not
    # the corner of a shadow that the paper's estimate could not follow into the frame's corner.
    if lit:  # (a number written by hand drifts up and down its line: a fifth of a digit's
        # rows level with its neighbours' keeps it on the line)
        kept, (rows, cols) = _digit_pieces(_without_shadow_corners(strong, s), _PHOTO_LEVEL)
    else:
        kept, (rows, cols) = _digit_pieces(strong)
    margin = 2 + max(rows.stop - rows.start, cols.stop - cols.start) // 10
    r0, c0 = max(rows.start - margin, 0), max(cols.start - margin, 0)
    window = slice(r0, rows.stop + margin), slice(c0, cols.stop + margin)
    s, weak = s[window], weak[window]
    strokes = np.zeros_like(weak)
    strokes[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0] = kept
    region = weak | strokes
    # When every pixel of it is a stroke or touches one (a pen's anti-aliased edge, one pixel
    # wide), every piece of it holds a stroke: all of it is kept, and nothing needs labelling.
    if (region & ~_grown(strokes)).any():
        n, rims = cv2.connectedComponents(region.view(np.uint8), connectivity=8)
        touches = np.zeros(n, dtype=bool)  # by label (0 is the background): rims with a stroke
        touches[rims[strokes]] = True
        region = touches[rims]
    level = percentile(s[strokes], _INK_PERCENTILE)
    ink = np.clip((s - np.float32(base)) / np.float32(max(level - base, 1e-6)), 0.0, 1.0)
    ink[~region] = 0.0
    return ink.astype(np.float32, copy=False), strokes, (r0, c0)


def _distance_to_paper(mask: np.ndarray) -> np.ndarray:
    """The exact Euclidean distance from each True pixel of ``mask`` to the nearest False one
    (0 on False pixels), float32: OpenCV's ``distanceTransform`` with the precise mask
    (Felzenszwalb and Huttenlocher's algorithm)."""
    import cv2

    return cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _opening(v: np.ndarray, k: int) -> np.ndarray:
    """A morphological opening of ``v`` by a flat k x k square (the minimum over the window,
    then the maximum over it of that), the image mirrored beyond its edges: every bright
    feature narrower than ``k`` is removed, the rest kept."""
    import cv2

    square = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    return cv2.morphologyEx(
        np.ascontiguousarray(v), cv2.MORPH_OPEN, square, borderType=cv2.BORDER_REFLECT
    )


def _grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its 8 neighbours (a binary dilation by a 3x3 square)."""
    tall = mask.copy()
    tall[1:] |= mask[:-1]
    tall[:-1] |= mask[1:]
    wide = tall.copy()
    wide[:, 1:] |= tall[:, :-1]
    wide[:, :-1] |= tall[:, 1:]
    return wide


def _fit_and_centre(crop: np.ndarray) -> np.ndarray:
    """Steps 4-5: the crop fitted into the 20x20 box, then centred by mass in 28x28."""
    from PIL import Image

    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # (width, height) for Pillow
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32))
    small = np.clip(np.asarray(img.resize(size, Image.Resampling.LANCZOS)), 0.0, 1.0)
    sh, sw = small.shape
    weights = small.astype(np.float64)
    mass = float(weights.sum())
    if mass > 0:
        cy = float(weights.sum(axis=1) @ np.arange(sh)) / mass
        cx = float(weights.sum(axis=0) @ np.arange(sw)) / mass
    else:  # pragma: no cover - a kept piece always has ink
        cy, cx = (sh - 1) / 2, (sw - 1) / 2
    # Whole-pixel shift putting the centre of mass within half a pixel of (14, 14); a digit whose
    # mass sits far to one side would fall off the field: it stops at the edge instead.
    top = min(max(math.floor(CENTRE - cy + 0.5), 0), FIELD - sh)
    left = min(max(math.floor(CENTRE - cx + 0.5), 0), FIELD - sw)
    out = np.zeros((FIELD, FIELD), dtype=np.float32)
    out[top : top + sh, left : left + sw] = small
    return out


def _stroke_width(strokes: np.ndarray) -> float:
    """The strokes' mean width in pixels: twice their area over their outline's length.

    (A stroke of width w and length L has area wL and an outline about 2L long.) The outline
    is counted as the stroke pixels with a 4-neighbour outside. On MNIST's test digits
    (thresholded at 0.5) this is 2.1 to 4.4 pixels for 90% of them, 2.9 for the median.
    """
    h, w = strokes.shape
    framed = np.zeros((h + 2, w + 2), dtype=bool)  # (np.pad costs ten times more)
    framed[1:-1, 1:-1] = strokes
    strokes = framed
    inside = strokes.copy()
    inside[1:, :] &= strokes[:-1, :]
    inside[:-1, :] &= strokes[1:, :]
    inside[:, 1:] &= strokes[:, :-1]
    inside[:, :-1] &= strokes[:, 1:]
    area = int(strokes.sum())
    outline = area - int(inside.sum())
    return 2.0 * area / max(outline, 1)


def _thicken(crop: np.ndarray, strokes: np.ndarray, min_stroke: float) -> np.ndarray:
    """Widen strokes that would be thinner than ``min_stroke`` pixels once fitted to 20x20.

    Pixels within distance ``g`` of a stroke become ink (full, with a one-pixel anti-aliased
    edge), ``g`` chosen so that the strokes, and the box that grows with them, come out
    ``min_stroke`` wide. Not a step of MNIST's own: a fine pen on a large digit would otherwise
    come out as a faint hairline, thinner than any writing in MNIST.
    """
    width = _stroke_width(strokes)
    side = max(crop.shape)
    if width * BOX / side >= min_stroke:
        return crop
    # (width + 2g) / (side + 2g) = min_stroke / BOX, solved for g.
    ratio = min_stroke / BOX
    grow = (ratio * side - width) / (2.0 * (1.0 - ratio))
    pad = math.ceil(grow) + 1
    strokes = np.pad(strokes, pad)
    distance = _distance_to_paper(~strokes)
    thick = np.clip(grow + 0.5 - distance, 0.0, 1.0).astype(np.float32)
    wide = np.maximum(np.pad(crop, pad), thick)
    rows = np.flatnonzero(wide.any(axis=1))
    cols = np.flatnonzero(wide.any(axis=0))
    return wide[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def to_mnist(grey: np.ndarray, *, min_stroke: float | None = MIN_STROKE) -> np.ndarray:
    """A grey image of one digit, any size and polarity, made into an MNIST digit.

    ``grey`` is ``(H, W)`` in [0, 1] (as :func:`load_image` returns; 8-bit integers are divided
    by 255). Returns ``(28, 28)`` float32 in [0, 1]: white ink on black, the ink's bounding box
    fitted into 20x20 with its longest side 20, its centre of mass within half a pixel of row 14,
    column 14. The steps are those of the module's description.

    ``min_stroke``: strokes thinner than this (pixels, in the 20x20 box) are widened to it;
    ``None`` follows MNIST's recipe to the letter and leaves a fine pen's hairlines faint.

    Raises :class:`~digitnet.errors.ImageError` if nothing in the image stands out as ink (a
    blank page, or paper grain alone), :class:`~digitnet.errors.ShapeError` if it is not 2-D.
    """
    grey, paper, _ = _working(grey)
    ink, strokes, _ = _ink(grey, paper)
    # 3. Crop to the ink's bounding box.
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return _mnist_of(ink[box], strokes[box], min_stroke)


def _mnist_of(crop: np.ndarray, strokes: np.ndarray, min_stroke: float | None) -> np.ndarray:
    """Steps 3-5 from the ink's bounding box: thickened if need be, fitted, centred."""
    if min_stroke:
        crop = _thicken(crop, strokes, min_stroke)
    # 4-5. Fit into 20x20, centre by mass in 28x28.
    return _fit_and_centre(crop)


class _Frame(NamedTuple):
    """Where the image the recipe works on lies in the image it was given: its pixel ``(r, c)``
    is the given image's ``(top + r * row_scale, left + c * col_scale)``; ``shape`` is the given
    image's."""

    top: float
    left: float
    row_scale: float
    col_scale: float
    shape: tuple[int, int]
    warp: np.ndarray | None = None  # or a homography: (x, y, 1) here to the given image's

    def to_given(self, r: float, c: float) -> tuple[float, float]:
        """A point ``(row, column)`` of the working image as ``(x, y)`` in the given image."""
        if self.warp is not None:
            x, y, z = self.warp @ np.array([c, r, 1.0])
            return float(x / z), float(y / z)
        return self.left + c * self.col_scale, self.top + r * self.row_scale


def _working(grey: Any) -> tuple[np.ndarray, float | None, _Frame]:
    """The image the recipe works on: a drawing on even paper cropped to what is drawn (and its
    paper's level), a photo scaled down to at most :data:`WORKING_SIDE`; and where it lies."""
    grey = _check_grey(grey)
    shape = (int(grey.shape[0]), int(grey.shape[1]))
    paper = _flat_paper(grey)
    if paper is not None:
        level = float(_as_float(grey[:1, :1])[0, 0])  # the paper in [0, 1], as its pixels become
        window, frame = _drawing_window(grey, paper)
        return window, level, frame
    grey = _as_float(grey)
    if max(grey.shape) > WORKING_SIDE:
        grey = _shrink(grey, WORKING_SIDE)
    frame = _Frame(0.0, 0.0, shape[0] / grey.shape[0], shape[1] / grey.shape[1], shape)
    found = _sheet(grey)
    if found is not None:
        sheet, warp = found
        scale = np.diag([frame.col_scale, frame.row_scale, 1.0])
        frame = frame._replace(warp=scale @ warp)
        grey = sheet
    return _without_lines(grey), None, frame


SHEET_MIN = 0.2
"""A sheet of paper lying on a table is looked for when it covers at least this share of the
photo: the largest bright region, solid (its area at least :data:`SHEET_SOLIDITY` of its convex
hull's, which a digit's strokes never are) and brighter than what surrounds it."""
SHEET_SOLIDITY = 0.85
SHEET_MARGIN = 0.03
"""The sheet's edge is cut away by this share of its size (its rim, the table's shadow)."""


def _sheet(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A sheet of paper on a table (darker than the sheet) in a photo: the sheet seen straight
    on (a perspective transform of its four corners onto a rectangle, its rim cut away), and
    the homography from the sheet's pixels ``(x, y, 1)`` back to the photo's; ``None`` when the
    photo shows no such sheet (the paper fills the frame, or there is no paper)."""
    import cv2

    h, w = grey.shape
    f = min(1.0, 256 / max(h, w))
    small = cv2.resize(
        grey, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    levels = np.clip(small * 255, 0, 255).astype(np.uint8)
    _, bright = cv2.threshold(levels, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if n < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == k).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    hull_area = float(cv2.contourArea(hull))
    frame_area = float(small.shape[0] * small.shape[1])
    if hull_area < SHEET_MIN * frame_area or hull_area > 0.97 * frame_area:
        return None
    if stats[k, cv2.CC_STAT_AREA] < SHEET_SOLIDITY * hull_area:
        return None
    inside = np.zeros_like(region)
    cv2.fillConvexPoly(inside, hull, 1)
    outside = small[inside == 0]
    if outside.size == 0 or np.median(small[inside == 1]) - np.median(outside) < 0.15:
        return None  # no darker table around it
    corners = _four_corners(hull)
    if corners is None:
        return None
    # A sheet's corners lie on the table; a shadow's edge cuts the frame from border to border,
    # and the lit part's corners lie on the frame's edges: at least two must be inside.
    sh_, sw_ = small.shape
    away = 0.015 * max(sh_, sw_)
    inner = sum(away < x < sw_ - 1 - away and away < y < sh_ - 1 - away for x, y in corners)
    if inner < 2:
        return None
    corners = corners / f  # in the working image's pixels, (x, y)
    top, right, bottom, left = (
        np.linalg.norm(corners[1] - corners[0]),
        np.linalg.norm(corners[2] - corners[1]),
        np.linalg.norm(corners[3] - corners[2]),
        np.linalg.norm(corners[0] - corners[3]),
    )
    sw, sh = max(top, bottom), max(left, right)
    m = SHEET_MARGIN
    target = np.array(
        [
            [-m * sw, -m * sh],
            [(1 + m) * sw, -m * sh],
            [(1 + m) * sw, (1 + m) * sh],
            [-m * sw, (1 + m) * sh],
        ],
        dtype=np.float32,
    )  # the corners land just outside the rectangle kept: the rim is cut away
    size = (max(2, round(sw)), max(2, round(sh)))
    to_sheet = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    sheet = cv2.warpPerspective(
        grey, to_sheet, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return sheet, np.linalg.inv(to_sheet)


def _four_corners(hull: np.ndarray) -> np.ndarray | None:
    """The four corners of a convex hull that is about a quadrilateral, ordered top-left,
    top-right, bottom-right, bottom-left, as ``(x, y)``; ``None`` if it is not one."""
    import cv2

    perimeter = cv2.arcLength(hull, True)
    for eps in (0.02, 0.03, 0.05, 0.08):
        poly = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(poly) == 4:
            break
    else:
        return None
    p = poly.reshape(4, 2).astype(np.float64)
    total, diff = p.sum(axis=1), p[:, 0] - p[:, 1]
    ordered = np.array(
        [p[np.argmin(total)], p[np.argmax(diff)], p[np.argmax(total)], p[np.argmin(diff)]]
    )
    return ordered if len({tuple(q) for q in ordered}) == 4 else None


LINE_SPAN = 0.5
"""A printed line (ruled or squared paper, a margin) runs across at least this share of the
sheet; no digit's stroke is that long unless the digit fills the photo, and a single long stroke
is never taken for a line: only a page with two lines or more across it is ruled."""


def _without_lines(grey: np.ndarray) -> np.ndarray:
    """The photo with the printed lines of ruled or squared paper (long, thin, straight, fainter
    than ink) taken out: each line's departure from the paper is added back, so that the line
    becomes paper and a stroke that crosses it keeps what it has beyond the line."""
    import cv2

    h, w = grey.shape
    if min(h, w) < 40:
        return grey
    dark = float(np.median(grey)) > 0.5  # (lines are printed darker than light paper)
    v = 1.0 - grey if dark else grey  # lines and ink bright
    thick = max(3, min(h, w) // 60) | 1
    lines = []
    for along, n_along, across in ((1, w, (thick * 2 + 1, 1)), (0, h, (1, thick * 2 + 1))):
        length = max(15, int(LINE_SPAN * n_along))
        kernel = np.ones((1, length) if along == 1 else (length, 1), np.uint8)
        long = cv2.morphologyEx(v, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REFLECT)
        thin = np.ones(across, np.uint8)
        line = long - cv2.morphologyEx(long, cv2.MORPH_OPEN, thin, borderType=cv2.BORDER_REFLECT)
        # Lines: pieces as long as the kernel, and thin all along (a shadow's edge, or the
        # corner of a shadow, leaves short or wide pieces).
        _, labels, stats, _ = cv2.connectedComponentsWithStats((line > 0.04).astype(np.uint8))
        extent = stats[:, cv2.CC_STAT_WIDTH if along == 1 else cv2.CC_STAT_HEIGHT]
        is_line = (extent >= length) & (stats[:, cv2.CC_STAT_AREA] <= 2 * thick * extent)
        is_line[0] = False
        lines.append((np.where(is_line[labels], line, 0.0), int(is_line.sum())))
    (horizontal, n_h), (vertical, n_v) = lines
    take = np.zeros_like(v)
    if n_h >= 2:
        take = np.maximum(take, horizontal)
    if n_v >= 2 or (n_v >= 1 and n_h >= 2):
        take = np.maximum(take, vertical)
    if not take.any():
        return grey
    out = np.clip(v - take, 0.0, 1.0)
    return (1.0 - out if dark else out).astype(np.float32)


# -- a number, and what may not be a digit ---------------------------------------------------------
SOLID = 0.40
"""Ink whose strokes are wider than this fraction of its longest side is a dot or a solid block,
not writing (a disc gives 0.55, a square 0.5). Calibrated on the official test digits: their
strokes (thresholded at 0.5) are at most 0.33 of the digit's longest side for 99.9 % of them,
0.42 for the widest of the 10,000 (see tests/test_imaging.py)."""
SPLIT_GAP = 0.06
"""Two columns of strokes are two digits when a gap of paper at least this fraction of the ink's
height separates them (and each is tall enough to be a digit, see :data:`SPLIT_HEIGHT`); pieces
closer than that, or overlapping across, are one digit (a 5's detached bar, a broken 4)."""
SIDE_BY_SIDE = 0.25
"""Two pieces of strokes, each tall enough to be a digit, whose columns overlap by less than
this fraction of the narrower one's width (or are closer across than :data:`SPLIT_GAP`) are
two digits side by side, one written higher than the other or leaning over it, when paper at
least :data:`SPLIT_GAP` wide separates them all the same; the pieces of one digit overlap
across far more (an 8's two loops) or come closer (a pencil's 4 in two strokes)."""
SPLIT_HEIGHT = 0.45
"""A column of strokes shorter than this fraction of the ink's height is part of its neighbour
(a stray mark, a detached bar), not a digit of its own."""
DIGIT_PITCH = 0.85
"""From one digit of a number to the next, in digits' heights, where digits touch: a digit's
width (the official test digits' median is 0.75 of their height: a 1 0.4, a 0 or a 2 0.9) and
the little space after it."""
SPLIT_WIDE = 1.3
"""In a photo of a number, a column of strokes wider than this many times the digits' height
(the median of the pieces of strokes tall enough to be digits) is digits that touch: it is cut
into as many digits as its width holds (:data:`DIGIT_PITCH`), where the fewest strokes cross.
Two digits side by side are about 1.5 times as wide as tall; one digit this wide, about one in
a hundred."""
SPLIT_ALONE = 1.7
"""A photo's ink that is one column only is cut when wider than this many times its own
height: wider than 99.9 % of the official test digits."""


@dataclass(frozen=True)
class Digit:
    """One digit found in an image: the 28x28 image the network reads; its box in the image
    given (``x, y, width, height`` in pixels, the upright image as decoded); and, when its shape
    is not a digit's, why (else ``None``)."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    doubt: str | None = None


@dataclass(frozen=True)
class Reading:
    """What an image holds: its digits, left to right, and a doubt about the whole image's ink
    (``None`` when there is none)."""

    digits: list[Digit] = field(default_factory=list)
    doubt: str | None = None


def read_digits(grey: np.ndarray, *, min_stroke: float | None = MIN_STROKE) -> Reading:
    """The digits in a grey image, left to right: one for a single digit (exactly what
    :func:`to_mnist` makes of it), several for a number written on one line.

    The ink is found as for one digit (steps 1-2 of the module's description); its strokes are
    then cut into columns where a gap of paper separates them (:data:`SPLIT_GAP`), and each
    column made into an MNIST digit (steps 3-5). The reading carries doubts: ink that touches
    the image's edge (part of something larger: the digit cut off, the edge of a table), and,
    for each digit, strokes as wide as a dot or a block (:data:`SOLID`).

    Raises as :func:`to_mnist` does.
    """
    work, paper, frame = _working(grey)
    ink, strokes, (r0, c0) = _ink(work, paper)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    strokes = strokes[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    top, left = r0 + int(rows[0]), c0 + int(cols[0])

    def given(r: int, c: int, h: int, w: int) -> tuple[float, float, float, float]:
        corners = [frame.to_given(r + dr, c + dc) for dr in (0, h) for dc in (0, w)]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        return min(xs), min(ys), max(xs), max(ys)

    # Whether the strokes (not their faint rims) reach the image's edge.
    sr, sc = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    x0, y0, x1, y1 = given(
        top + int(sr[0]), left + int(sc[0]), int(sr[-1] + 1 - sr[0]), int(sc[-1] + 1 - sc[0])
    )
    height, width = frame.shape
    edge_r, edge_c = max(1.0, frame.row_scale), max(1.0, frame.col_scale)
    doubt = None
    # (An image already MNIST's 28x28 is exempt: it is the field MNIST centred its digits in,
    # and 0.9 % of the official test digits reach its last row.)
    touches = x0 < edge_c or y0 < edge_r or x1 > width - edge_c or y1 > height - edge_r
    if touches and frame.shape != (FIELD, FIELD):
        doubt = "the ink touches the edge of the image (a digit cut off, or not a digit)"

    digits = []
    groups, labels = _digit_groups(strokes, touching=paper is None)
    # each ink pixel belongs to the piece of strokes nearest to it (a faint rim to its stroke):
    # digits whose columns overlap (one written higher, leaning over its neighbour) keep apart
    owner = _nearest_piece(strokes, labels) if len(groups) > 1 else None
    for pieces, a, b in groups:
        part, marks = ink[:, a:b], strokes[:, a:b]
        if owner is not None:
            mine = np.isin(owner[:, a:b], pieces)
            part, marks = np.where(mine, part, 0).astype(part.dtype), marks & mine
        rs = np.flatnonzero(part.any(axis=1))
        cs = np.flatnonzero(part.any(axis=0))
        if rs.size == 0:  # pragma: no cover - every column holds strokes
            continue
        box = slice(rs[0], rs[-1] + 1), slice(cs[0], cs[-1] + 1)
        image = _mnist_of(part[box], marks[box], min_stroke)
        bx0, by0, bx1, by1 = given(top + int(rs[0]), left + a + int(cs[0]), *part[box].shape)
        xywh = (round(bx0), round(by0), max(1, round(bx1 - bx0)), max(1, round(by1 - by0)))
        solid = _solidity(image) > SOLID
        why = "a dot or a solid block, not the strokes of a digit" if solid else None
        digits.append(Digit(image, xywh, why))
    return Reading(digits, doubt)


def _solidity(image: np.ndarray) -> float:
    """The strokes' width over the longest side of their box, on a 28x28 MNIST image (its
    pixels over 0.5), as :data:`SOLID` is calibrated."""
    strokes = image > 0.5
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    if rows.size == 0:
        return 0.0
    box = strokes[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _stroke_width(box) / max(box.shape)


def _digit_groups(
    strokes: np.ndarray, touching: bool = False
) -> tuple[list[tuple[list[int], int, int]], np.ndarray]:
    """The strokes (the ink's box) cut into digits, left to right, and the labels of their
    connected pieces: for each digit, the labels of its pieces and the columns ``[a, b)`` it
    spans. Pieces closer across than :data:`SPLIT_GAP` are one digit, unless both are tall and
    merely lean into each other's columns (:data:`SIDE_BY_SIDE`); a group too short to be a
    digit joins its nearer neighbour (:data:`SPLIT_HEIGHT`); and a group too wide for one digit
    is digits that touch (see :data:`SPLIT_WIDE`), cut into columns, if ``touching`` (a photo,
    not a drawing) or if there are other digits beside it."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(strokes.view(np.uint8), connectivity=8)
    height = strokes.shape[0]
    spans = sorted(
        [int(x), int(x + w), int(y), int(y + h), [k]]
        for k, (x, y, w, h) in enumerate(stats[1:n, :4], start=1)
    )  # left, right, top, bottom and the labels of each piece
    gap = SPLIT_GAP * height

    def side_by_side(a: list[Any], b: list[Any]) -> bool:
        """Two tall groups whose columns overlap a little, with paper between them all the
        same: two digits, one raised or leaning over the other."""
        tall = min(a[3] - a[2], b[3] - b[2]) >= SPLIT_HEIGHT * height
        across = min(a[1], b[1]) - max(a[0], b[0])
        if not tall or across >= SIDE_BY_SIDE * min(a[1] - a[0], b[1] - b[0]):
            return False
        paper = cv2.distanceTransform((~np.isin(labels, a[4])).view(np.uint8), cv2.DIST_L2, 3)
        return float(paper[np.isin(labels, b[4])].min()) >= gap

    def joined(a: list[Any], b: list[Any]) -> list[Any]:
        return [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]

    groups: list[list[Any]] = []
    for span in spans:
        if groups and span[0] < groups[-1][1] + gap and not side_by_side(groups[-1], span):
            groups[-1] = joined(groups[-1], span)
        else:
            groups.append(span)
    # Groups too short to be a digit join their nearer neighbour.
    while len(groups) > 1:
        short = [i for i, g in enumerate(groups) if g[3] - g[2] < SPLIT_HEIGHT * height]
        if not short:
            break
        i = short[0]
        left_gap = groups[i][0] - groups[i - 1][1] if i > 0 else math.inf
        right_gap = groups[i + 1][0] - groups[i][1] if i + 1 < len(groups) else math.inf
        j = i - 1 if left_gap <= right_gap else i + 1
        a, b = sorted((i, j))
        groups[a : b + 1] = [joined(groups[a], groups[b])]
    # Each group is a digit (its pieces pick its ink out of the whole box), or, too wide, digits
    # that touch, cut into columns: in a photo, or in any number (its other digits give the
    # digits' height; a drawing of one wide digit alone is left whole).
    digits = []
    for g in groups:
        cuts = []
        if touching or len(groups) > 1:
            own = np.isin(labels, g[4]) if len(groups) > 1 else strokes
            cuts = _touching_cuts(own, [g[:4]], spans, alone=len(groups) == 1)
        edges = [0, *cuts, strokes.shape[1]]
        digits += [(g[4], a, b) for a, b in itertools.pairwise(edges)]
    return digits, labels


def _nearest_piece(strokes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every pixel, the label (as ``labels`` numbers the pieces of ``strokes``) of the
    piece of strokes nearest to it."""
    import cv2

    _, near = cv2.distanceTransformWithLabels(
        (~strokes).view(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_CCOMP
    )
    to_piece = np.zeros(int(near.max()) + 1, dtype=labels.dtype)
    to_piece[near[strokes]] = labels[strokes]
    return to_piece[near]


def _touching_cuts(
    strokes: np.ndarray, columns: list[list[int]], pieces: list[list[Any]], alone: bool
) -> list[int]:
    """Where to cut the columns (``[left, right, top, bottom]``) too wide for one digit: a
    column ``k`` digits wide (its width over :data:`DIGIT_PITCH` times the digits' height, at
    least 2) is cut ``k - 1`` times, each cut at the column of pixels with the fewest strokes
    (the vertical projection's minimum) within the middle half of where an even split would
    put it.

    The digits' height is the median height of the connected ``pieces`` of strokes tall enough
    to be digits (:data:`SPLIT_HEIGHT` of the tallest): a column's own height is inflated when
    its digits stand at different heights, as a number's written by hand do.
    """
    tallest = max(p[3] - p[2] for p in pieces)
    tall = [p[3] - p[2] for p in pieces if p[3] - p[2] >= SPLIT_HEIGHT * tallest]
    # (One column alone has no neighbour to compare with: a single digit may be in several
    # tall pieces, a broken 4 or a pencil's 6, that say nothing of the digits' height.)
    height = float(np.median(tall))
    cuts = []
    for left, right, top, bottom in columns:
        width = right - left
        if width <= (SPLIT_ALONE * (bottom - top) if alone else SPLIT_WIDE * height):
            continue
        k = max(2, round(width / (DIGIT_PITCH * height)))
        profile = strokes[top:bottom, left:right].sum(axis=0)
        step = width / k
        mine = []
        for j in range(1, k):
            lo = round(left + (j - 0.25) * step)
            hi = max(lo + 1, round(left + (j + 0.25) * step))
            mine.append(lo + int(np.argmin(profile[lo - left : hi - left])))
        cuts += _without_fragments(strokes[top:bottom], [left, *mine, right], height)
    return cuts


def _without_fragments(strokes: np.ndarray, edges: list[int], height: float) -> list[int]:
    """The inner ``edges`` of a column cut into digits, less those that would leave a piece of
    strokes shorter than :data:`SPLIT_HEIGHT` of the digits' ``height`` on its own: the tail of
    a 6 drawn apart from its loop is part of the 6, not a digit."""
    edges = list(edges)
    ink = strokes.any(axis=0)

    def tall(a: int, b: int) -> int:
        rows = np.flatnonzero(strokes[:, a:b].any(axis=1))
        return int(rows[-1] + 1 - rows[0]) if rows.size else 0

    def gap(a: int, b: int, c: int) -> float:
        """Paper between the ink of the pieces [a, b) and [b, c)."""
        left, right = np.flatnonzero(ink[a:b]), np.flatnonzero(ink[b:c])
        return b + right[0] - (a + left[-1]) if left.size and right.size else math.inf

    while len(edges) > 2:
        heights = [tall(a, b) for a, b in itertools.pairwise(edges)]
        short = min(range(len(heights)), key=heights.__getitem__)
        if heights[short] >= SPLIT_HEIGHT * height:
            break
        # the short piece joins the neighbour its ink is nearer to
        a, b, c = edges[short], edges[short + 1], edges[min(short + 2, len(edges) - 1)]
        to_left = short > 0 and (
            short == len(heights) - 1 or gap(edges[short - 1], a, b) <= gap(a, b, c)
        )
        del edges[short if to_left else short + 1]
    return edges[1:-1]


def preprocess(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_pixels: int = MAX_PIXELS,
    min_stroke: float | None = MIN_STROKE,
    max_bytes: int = MAX_DECODED_BYTES,
) -> np.ndarray:
    """:func:`load_image` then :func:`to_mnist`: a file's digit as a ``(28, 28)`` MNIST image.

    Errors name the file, as in ``photo.jpg: no digit found: the image looks blank``.
    ``max_bytes``: the memory decoding may take (the server passes
    :data:`~digitnet.image_io.SERVER_MAX_DECODED_BYTES`).
    """
    grey = _load(source, max_pixels, WORKING_SIDE, max_bytes)  # 8-bit levels, if the image has them
    try:
        return to_mnist(grey, min_stroke=min_stroke)
    except ImageError as e:
        raise ImageError(f"{_describe(source)}: {e.message}", e.hint) from None


def read(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_pixels: int = MAX_PIXELS,
    min_stroke: float | None = MIN_STROKE,
    max_bytes: int = MAX_DECODED_BYTES,
) -> Reading:
    """:func:`load_image` then :func:`read_digits`: the digits of a file, their boxes in the
    file's own pixels (upright). Errors name the file, as :func:`preprocess`'s do;
    ``max_bytes`` is the memory decoding may take (the server passes its smaller budget)."""
    grey = _load(source, max_pixels, WORKING_SIDE, max_bytes)  # 8-bit levels, if it has them
    try:
        reading = read_digits(grey, min_stroke=min_stroke)
    except ImageError as e:
        raise ImageError(f"{_describe(source)}: {e.message}", e.hint) from None
    if max(grey.shape) < WORKING_SIDE:  # decoded at full size: the boxes are the file's
        return reading
    size = _upright_size(source)
    if size is None or size == (grey.shape[1], grey.shape[0]):
        return reading
    sx, sy = size[0] / grey.shape[1], size[1] / grey.shape[0]  # (it was decoded smaller)
    digits = [
        Digit(d.image, (round(x * sx), round(y * sy), round(w * sx), round(h * sy)), d.doubt)
        for d in reading.digits
        for x, y, w, h in [d.box]
    ]
    return Reading(digits, reading.doubt)


def _upright_size(source: Any) -> tuple[int, int] | None:
    """The image's width and height as a viewer shows it (its EXIF orientation applied), from
    its header; ``None`` if the header cannot be read again."""
    from PIL import Image

    try:
        data = (
            io.BytesIO(bytes(source))
            if isinstance(source, (bytes, bytearray, memoryview))
            else source
        )
        with Image.open(data) as img:
            width, height = img.size
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:
        return None
    return (height, width) if turned else (width, height)


def to_column(image: np.ndarray) -> np.ndarray:
    """A ``(28, 28)`` image as the ``(784, 1)`` float32 column the network takes (row by row,
    as MNIST stores its pixels). Stack several with ``np.hstack``."""
    a = np.asarray(image, dtype=np.float32)
    if a.shape != (FIELD, FIELD):
        raise ShapeError(f"to_column takes a (28, 28) image; got shape {a.shape}.")
    return a.reshape(FIELD * FIELD, 1).copy()
