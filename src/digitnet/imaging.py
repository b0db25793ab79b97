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

1. **Background and polarity.** Whether the ink is darker or lighter than the paper is read
   from the skew of the image about its background (the median, of the whole image and of
   windows across it): the paper is the majority, the ink a one-sided tail. The image is turned
   so that ink is bright. The paper's level under every
   pixel is then estimated twice: first smoothly, from a low percentile of coarse cells, for a
   first look at the strokes and their width; then by a morphological opening 2.5 times wider
   than the widest stroke, which removes the ink and keeps the paper however it is lit, even
   across the sharp edge of a shadow. Dividing by that level (a flat field) gives ``s``, the
   fraction by which each pixel departs from its paper: 0 on paper, near 1 for black ink.
2. **Ink.** A pixel is ink if ``s`` clears Otsu's threshold, a minimum contrast, and several
   times the paper's grain (its robust spread). Specks much smaller than the digit, or far from
   it, are dropped; a page on which nothing clears the bar is blank. The faint anti-aliased rim
   of each kept stroke is kept with it (hysteresis, as in Canny's edge detector), and the grey
   levels stay grey, the strokes' cores at 1: MNIST is anti-aliased, not binary.
3. **Crop** to the ink's bounding box. Strokes that would come out thinner than
   :data:`MIN_STROKE` pixels in the 20x20 box (a fine pen on a large digit) are widened to it:
   not a step of MNIST's, but no MNIST digit has strokes that thin.
4. **Fit** it into a 20x20 box, aspect ratio kept, longest side exactly 20, with an
   anti-aliasing (Lanczos) resampling filter.
5. **Centre** it in a 28x28 field by its centre of mass: shifted by whole pixels so that the
   centre of mass lands within half a pixel of row 14, column 14 (rows and columns numbered
   0-27, pixel centres at whole numbers), where MNIST's own digits have theirs.

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
import math
import os
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from digitnet.errors import ImageError, ShapeError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "BOX",
    "CENTRE",
    "FIELD",
    "MAX_PIXELS",
    "MIN_STROKE",
    "WORKING_SIDE",
    "load_image",
    "preprocess",
    "to_column",
    "to_mnist",
]

FIELD = 28
"""Side of an MNIST image, in pixels."""
BOX = 20
"""Side of the box the digit is fitted into, aspect ratio kept (the longest side becomes 20)."""
CENTRE = 14.0
"""Row and column where the centre of mass lands; MNIST's test digits have it in [13.5, 14.5]."""
MAX_PIXELS = 120_000_000
"""Larger images are refused from their header, before decoding (a decompression bomb's defence).

120 megapixels admits the 108-megapixel phone cameras; Pillow's own warning starts at 89.5.
"""
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
_INK_PERCENTILE = 90.0  # this percentile of the ink's contrast becomes full white (1.0)

_DECODE_HINT = "export or save the image again as PNG or JPEG"


# -- reading an image ------------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _describe(source: Any) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "the image data"
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)


def load_image(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
) -> np.ndarray:
    """Decode an image file (or its bytes) to grey: an ``(H, W)`` float32 array in [0, 1].

    Any format Pillow reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...), colour or grey:

    * the first frame of an animation;
    * turned upright by its EXIF orientation, as phones record it instead of rotating pixels;
    * transparent pixels laid on a background that contrasts with the opaque ones (white under
      dark strokes, black under light ones), as a drawing app exports its canvas;
    * colour made grey by luminance (ITU-R 601: ``0.299 R + 0.587 G + 0.114 B``, Pillow's
      ``"L"``), so blue or black ink on cream paper is dark on light;
    * 16-bit images scaled by 65535.

    Larger than ``max_pixels`` is refused from the header alone, before a byte is decompressed
    (as is anything over Pillow's own limit, twice ``PIL.Image.MAX_IMAGE_PIXELS``).
    With ``max_side``, a larger image comes back scaled down (area-averaged) to about that
    longest side; JPEGs are then decoded at a reduced scale directly, which is fast and small.

    Raises :class:`~digitnet.errors.ImageError`, naming the file, if it is missing, empty, not
    an image, truncated or corrupt, or too large.
    """
    return _as_float(_load(source, max_pixels, max_side))


def _load(source: Any, max_pixels: int, max_side: int | None) -> np.ndarray:
    """:func:`load_image`, but an 8-bit image (the common case) comes back as its ``uint8``
    grey levels, 0 to 255 (see :func:`_as_float`): :func:`preprocess` then finds a drawing's
    paper and crops it before it makes a float of a pixel."""
    name = _describe(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError(f"{name}: it is empty (0 bytes).", _DECODE_HINT)
        return _decode(io.BytesIO(data), name, max_pixels, max_side)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(
            f"load_image takes a path or bytes; got {type(source).__name__}.",
            "pass the file's path, or the bytes read from it",
        )
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        with open(path, "rb") as fp:
            if size == 0:
                raise ImageError(f"{name}: the file is empty (0 bytes).", _DECODE_HINT)
            return _decode(fp, name, max_pixels, max_side)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file.", "check the path") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied; the file cannot be read.") from None
    except OSError as e:
        raise ImageError(f"{name}: cannot be read ({_one_line(e)}).") from None


def _decode(fp: Any, name: str, max_pixels: int, max_side: int | None) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    too_large = "refused before decoding, as a possible decompression bomb"
    shrink = "scale the image down if it is genuine"
    with warnings.catch_warnings():
        # Pillow warns from 89.5 megapixels; our own limit, below, decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)  # reads the header only
        except UnidentifiedImageError:
            raise ImageError(
                f"{name}: not an image file digitnet can read (Pillow does not recognise it).",
                "use PNG or JPEG, or another format Pillow reads",
            ) from None
        except Image.DecompressionBombError as e:  # Pillow's own limit: twice its warning's
            claim = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(claim[1]) / 1e6:.0f} megapixels" if claim else "too many pixels"
            raise ImageError(f"{name}: {size}; {too_large}.", shrink) from None
        except Exception as e:  # Pillow's parsers raise many types on a corrupt header
            raise ImageError(
                f"{name}: a corrupt image header ({_one_line(e)}).", _DECODE_HINT
            ) from None
        fmt = img.format or "image"
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is "
                    f"more than the limit of {max_pixels / 1e6:.0f}; {too_large}.",
                    shrink,
                )
            if width < 1 or height < 1:
                raise ImageError(f"{name}: the {fmt} image has no pixels ({width}x{height}).")
            try:
                if max_side and max(width, height) > max_side:
                    scale = max_side / max(width, height)
                    img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
                img.load()  # decodes the first frame
                ImageOps.exif_transpose(img, in_place=True)  # (in place: no copy when upright)
                upright = img
            except Exception as e:  # truncated data, a bad chunk, a decoder error
                raise ImageError(
                    f"{name}: the {fmt} image is truncated or corrupt ({_one_line(e)}).",
                    _DECODE_HINT,
                ) from None
            grey = _to_grey(upright)
    if max_side and max(grey.shape) > max_side:
        grey = _shrink(_as_float(grey), max_side)
    return grey


def _to_grey(img: PILImage.Image) -> np.ndarray:
    """Grey in [0, 1] from any Pillow mode, transparency laid on a contrasting background."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return (np.asarray(img, dtype=np.float32) / 65535.0).astype(np.float32)
    if mode == "I":
        a = np.asarray(img, dtype=np.float64)
        return np.clip(a / (65535.0 if a.max() > 255 else 255.0), 0.0, 1.0).astype(np.float32)
    if mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = a.max()
        return np.clip(a / (top if top > 1.0 else 1.0), 0.0, 1.0).astype(np.float32)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if mode in ("RGBA", "LA") and img.getchannel("A").getextrema() == (255, 255):
        has_alpha = False  # an opaque canvas, as browsers export one: no alpha to lay on paper
    if has_alpha:
        rgba = img.convert("RGBA")
        a = np.asarray(rgba, dtype=np.float32) / 255.0
        alpha = a[..., 3]
        grey = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
        opaque = alpha > 0.5
        # Strokes drawn on a transparent canvas: lay them on paper of the opposite shade.
        back = 0.0 if opaque.any() and grey[opaque].mean() > 0.5 else 1.0
        return (grey * alpha + back * (1.0 - alpha)).astype(np.float32)
    if mode not in ("L", "RGB", "RGBA", "LA"):  # (those last two are opaque here: grey directly)
        img = img.convert("RGB")
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img)  # uint8: see _as_float


def _as_float(grey: np.ndarray) -> np.ndarray:
    """Grey levels as float32 in [0, 1]: 8-bit levels divided by 255 (in float32), floats as
    they are."""
    if grey.dtype == np.uint8:
        return grey.astype(np.float32) / np.float32(255.0)
    return grey


def _shrink(grey: np.ndarray, max_side: int) -> np.ndarray:
    """Scale down so that the longest side is ``max_side``, averaging the pixels each replaces."""
    from PIL import Image

    h, w = grey.shape
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32))
    return np.asarray(small.resize(size, Image.Resampling.BOX), dtype=np.float32)


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


def _digit_pieces(strong: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
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
            if max(gap_r, gap_c) <= reach:
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


def _ink(grey: np.ndarray, paper: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: the digit's ink, white on black, in a window around the digit (zero off the
    digit); and the mask of its strong ink (the strokes without their anti-aliased rims)."""
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
        return _ink_of(grey, small, dark_ink)
    except ImageError:
        try:
            return _ink_of(grey, small, not dark_ink)
        except ImageError:
            pass
        raise


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


def _drawing_window(grey: np.ndarray, paper: float) -> np.ndarray:
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
    return _shrink(window, DRAWING_SIDE) if max(window.shape) > DRAWING_SIDE else window


def _ink_of(
    grey: np.ndarray, small: np.ndarray, dark_ink: bool, paper: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_ink` for ink known to be darker (``dark_ink``) or lighter than the paper, on
    paper of one known grey level (``paper``, see :func:`_flat_paper`) or estimated here."""
    v = 1.0 - grey if dark_ink else grey  # ink bright from here on
    if paper is not None:
        level = np.float32(1.0 - paper if dark_ink else paper)
        s, base, strong, weak = _contrast(v, np.full_like(v, level), even=True)
        return _ink_around(s, base, strong, weak)
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


def _ink_around(
    s: np.ndarray, base: float, strong: np.ndarray, weak: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Step 2 of :func:`_ink_of`, from :func:`_contrast`'s answers."""
    import cv2

    # 2. Ink: the digit's pieces, each with its faint rim (weak ink connected to a kept piece),
    # looked for within a margin of a tenth of the digit's size around them.
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
    level = _percentile(s[strokes], _INK_PERCENTILE)
    ink = np.clip((s - np.float32(base)) / np.float32(max(level - base, 1e-6)), 0.0, 1.0)
    ink[~region] = 0.0
    return ink.astype(np.float32, copy=False), strokes


def _percentile(x: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``x``, interpolated linearly between the two values around it
    (np.percentile's default), from a partial sort: np.percentile itself costs several times more
    on the few thousand values of a digit's strokes."""
    x = x.ravel()
    at = q / 100.0 * (x.size - 1)
    below = math.floor(at)
    above = min(below + 1, x.size - 1)
    part = np.partition(x, [below, above])
    a, b = float(part[below]), float(part[above])
    return a + (b - a) * (at - below)


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
    grey = _check_grey(grey)
    paper = _flat_paper(grey)
    if paper is not None:
        level = float(_as_float(grey[:1, :1])[0, 0])  # the paper in [0, 1], as its pixels become
        grey, paper = _drawing_window(grey, paper), level
    else:
        grey = _as_float(grey)
        if max(grey.shape) > WORKING_SIDE:
            grey = _shrink(grey, WORKING_SIDE)
    ink, strokes = _ink(grey, paper)
    # 3. Crop to the ink's bounding box.
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    crop = ink[box]
    if min_stroke:
        crop = _thicken(crop, strokes[box], min_stroke)
    # 4-5. Fit into 20x20, centre by mass in 28x28.
    return _fit_and_centre(crop)


def preprocess(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_pixels: int = MAX_PIXELS,
    min_stroke: float | None = MIN_STROKE,
) -> np.ndarray:
    """:func:`load_image` then :func:`to_mnist`: a file's digit as a ``(28, 28)`` MNIST image.

    Errors name the file, as in ``photo.jpg: no digit found: the image looks blank``.
    """
    grey = _load(source, max_pixels, WORKING_SIDE)  # 8-bit levels, if the image has them
    try:
        return to_mnist(grey, min_stroke=min_stroke)
    except ImageError as e:
        raise ImageError(f"{_describe(source)}: {e.message}", e.hint) from None


def to_column(image: np.ndarray) -> np.ndarray:
    """A ``(28, 28)`` image as the ``(784, 1)`` float32 column the network takes (row by row,
    as MNIST stores its pixels). Stack several with ``np.hstack``."""
    a = np.asarray(image, dtype=np.float32)
    if a.shape != (FIELD, FIELD):
        raise ShapeError(f"to_column takes a (28, 28) image; got shape {a.shape}.")
    return a.reshape(FIELD * FIELD, 1).copy()
