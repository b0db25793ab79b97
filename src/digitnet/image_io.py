"""Decoding an image file (or its bytes) to grey, in memory bounded before a byte is decoded.

:func:`load_image` reads any format Pillow reads and gives grey levels in [0, 1]; it refuses
files that are missing, empty, not images, truncated, or so large they may be decompression
bombs. Each refusal is an :class:`~digitnet.errors.ImageError` with a one-line message naming
the file.

Two limits are checked from the header alone, before anything is decompressed:

* :data:`MAX_PIXELS`, the pixel count (Pillow's own bomb check works the same way);
* ``max_bytes``, the memory decoding would take: Pillow's own buffer for the image's mode (four
  bytes a pixel for RGB and RGBA, whatever the file's bit depth: a 16-bit RGBA PNG is decoded
  to 8 bits a channel) plus digitnet's grey copy. A tiny PNG of 120 megapixels all zero would
  otherwise take gigabytes. The command line allows :data:`MAX_DECODED_BYTES`; the web server,
  which decodes what strangers post, passes the much smaller :data:`SERVER_MAX_DECODED_BYTES`.

Colour is made grey inside Pillow, a band of rows at a time, so NumPy never holds more than a
band of a colour image, and never a float copy of four channels; an image larger than
``max_side`` is scaled down band by band too (the same numbers as one resize of the whole).

Pillow loads inside the functions that use it: importing this module costs NumPy only.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from digitnet.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_PIXELS",
    "SERVER_MAX_DECODED_BYTES",
    "decoded_bytes",
    "load_image",
]

MAX_PIXELS = 120_000_000
"""Larger images are refused from their header, before decoding (a decompression bomb's defence).

120 megapixels admits the 108-megapixel phone cameras; Pillow's own warning starts at 89.5.
"""
MAX_DECODED_BYTES = 1_000_000_000
"""The memory decoding may take on the command line (``predict``), by default: 1 GB.

A 108-megapixel phone JPEG read at :data:`~digitnet.imaging.WORKING_SIDE` is decoded at a
reduced scale and takes a few megabytes; an 8-bit RGB PNG of 100 megapixels takes 500 MB.
"""
SERVER_MAX_DECODED_BYTES = 100_000_000
"""The memory one image may take to decode in the web server's readers: 100 MB.

Ten times less than the command line's: a 12-megapixel phone photo or screenshot fits, a
decompression bomb posted in a loop does not.
"""

_DECODE_HINT = "export or save the image again as PNG or JPEG"
_BAND_BYTES = 4_000_000  # a band of rows of about this many bytes is made grey at a time


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
    max_bytes: int = MAX_DECODED_BYTES,
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
    (as is anything over Pillow's own limit, twice ``PIL.Image.MAX_IMAGE_PIXELS``), and so is an
    image whose decoding would take more than ``max_bytes`` of memory (see
    :func:`decoded_bytes`; the server passes :data:`SERVER_MAX_DECODED_BYTES`).
    With ``max_side``, a larger image comes back scaled down (area-averaged) to about that
    longest side; JPEGs are then decoded at a reduced scale directly, which is fast and small.

    Raises :class:`~digitnet.errors.ImageError`, naming the file, if it is missing, empty, not
    an image, truncated or corrupt, or too large.
    """
    return _as_float(_load(source, max_pixels, max_side, max_bytes))


def _load(
    source: Any,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    max_bytes: int = MAX_DECODED_BYTES,
) -> np.ndarray:
    """:func:`load_image`, but an 8-bit image (the common case) comes back as its ``uint8``
    grey levels, 0 to 255 (see :func:`_as_float`): :func:`digitnet.imaging.preprocess` then
    finds a drawing's paper and crops it before it makes a float of a pixel."""
    name = _describe(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError(f"{name}: it is empty (0 bytes).", _DECODE_HINT)
        return _decode(io.BytesIO(data), name, max_pixels, max_side, max_bytes)
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
            return _decode(fp, name, max_pixels, max_side, max_bytes)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file.", "check the path") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied; the file cannot be read.") from None
    except OSError as e:
        raise ImageError(f"{name}: cannot be read ({_one_line(e)}).") from None


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel of this Pillow mode takes in Pillow's own decoded image."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4  # RGB is stored as four bytes, like RGBA; I and F are 32-bit


def _has_alpha(img: PILImage.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def decoded_bytes(mode: str, width: int, height: int, max_side: int | None = None) -> int:
    """The memory :func:`load_image` takes to decode a ``width`` x ``height`` image of a Pillow
    ``mode``: Pillow's image, plus digitnet's grey copy (full size, or scaled down to
    ``max_side``), plus a band of rows being made grey."""
    pixels = width * height
    native = pixels * _pixel_bytes(mode)
    if mode in ("I", "F"):  # (rare: 32-bit TIFFs) made grey in float64, whole
        return native + pixels * 20
    side = max(width, height)
    if max_side and side > max_side:
        grey = height * max_side * 4 + max_side * max_side * 4  # (H, max_side), then the result
    else:
        grey = pixels * (1 if mode in ("1", "L", "P", "RGB") else 4)  # uint8, or float32
    return native + grey + 6 * _BAND_BYTES


def _decode(
    fp: Any, name: str, max_pixels: int, max_side: int | None, max_bytes: int
) -> np.ndarray:
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
            except Exception as e:  # pragma: no cover - draft only configures the decoder
                raise ImageError(
                    f"{name}: the {fmt} image is corrupt ({_one_line(e)}).", _DECODE_HINT
                ) from None
            # What decoding will take, from the header (after a JPEG's draft: its reduced scale).
            need = decoded_bytes(img.mode, *img.size, max_side)
            if need > max_bytes:
                raise ImageError(
                    f"{name}: {width}x{height} pixels of {img.mode} would take about "
                    f"{need / 1e6:.0f} MB to decode, more than the limit of "
                    f"{max_bytes / 1e6:.0f} MB; {too_large}.",
                    "scale the image down, or save it as 8-bit grey, if it is genuine",
                )
            try:
                img.load()  # decodes the first frame
                ImageOps.exif_transpose(img, in_place=True)  # (in place: no copy when upright)
                upright = img
            except Exception as e:  # truncated data, a bad chunk, a decoder error
                raise ImageError(
                    f"{name}: the {fmt} image is truncated or corrupt ({_one_line(e)}).",
                    _DECODE_HINT,
                ) from None
            if max_side and max(upright.size) > max_side:
                return _shrunk_grey(upright, max_side)
            return _to_grey(upright)


def _bands(img: PILImage.Image) -> list[tuple[int, int]]:
    """Row ranges ``(top, bottom)`` of about :data:`_BAND_BYTES` of float32 grey each."""
    width, height = img.size
    rows = max(1, _BAND_BYTES // (4 * width))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def _background(img: PILImage.Image) -> float:
    """The paper a transparent canvas is laid on: 0 (black) under light opaque strokes, 1
    (white) under dark ones or when nothing is opaque. Band by band: the mean grey of the
    opaque pixels."""
    total, count = 0.0, 0
    for top, bottom in _bands(img):
        a = np.asarray(img.crop((0, top, img.width, bottom)).convert("RGBA"), dtype=np.float32)
        a /= np.float32(255.0)
        opaque = a[..., 3] > 0.5
        grey = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
        total += float(grey[opaque].sum(dtype=np.float64))
        count += int(opaque.sum())
    return 0.0 if count and total / count > 0.5 else 1.0


class _Grey:
    """How one Pillow image's rows become grey: :meth:`rows` gives a band of them, ``uint8``
    levels (8-bit images without transparency, see :func:`_as_float`) or float32 in [0, 1]."""

    def __init__(self, img: PILImage.Image) -> None:
        self.img = img
        mode = img.mode
        self.alpha = _has_alpha(img)
        if mode in ("RGBA", "LA") and img.getchannel("A").getextrema() == (255, 255):
            self.alpha = False  # an opaque canvas, as browsers export one: no alpha to lay on paper
        self.sixteen = mode in ("I;16", "I;16L", "I;16B", "I;16N")
        self.back = _background(img) if self.alpha else 1.0
        self.dtype = np.float32 if self.alpha or self.sixteen else np.uint8

    def rows(self, top: int, bottom: int) -> np.ndarray:
        whole = top == 0 and bottom == self.img.height
        band = self.img if whole else self.img.crop((0, top, self.img.width, bottom))
        if self.sixteen:
            return (np.asarray(band, dtype=np.float32) / 65535.0).astype(np.float32)
        if self.alpha:
            a = np.asarray(band.convert("RGBA"), dtype=np.float32) / 255.0
            alpha = a[..., 3]
            grey = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
            # Strokes drawn on a transparent canvas: laid on paper of the opposite shade.
            return (grey * alpha + self.back * (1.0 - alpha)).astype(np.float32)
        if band.mode not in ("L", "RGB", "RGBA", "LA"):  # (those last two opaque here)
            band = band.convert("RGB")
        if band.mode != "L":
            band = band.convert("L")
        return np.asarray(band)


def _to_grey(img: PILImage.Image) -> np.ndarray:
    """Grey from any Pillow mode, transparency laid on a contrasting background: ``uint8``
    levels for 8-bit images without transparency (see :func:`_as_float`), else float32 in
    [0, 1]. Made a band of rows at a time: never a float copy of four channels."""
    mode = img.mode
    if mode == "I":
        a = np.asarray(img, dtype=np.float64)
        return np.clip(a / (65535.0 if a.max() > 255 else 255.0), 0.0, 1.0).astype(np.float32)
    if mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = a.max()
        return np.clip(a / (top if top > 1.0 else 1.0), 0.0, 1.0).astype(np.float32)
    grey = _Grey(img)
    if mode in ("L", "RGB") and not grey.alpha:  # Pillow converts the whole at once, in place
        return grey.rows(0, img.height)
    out = np.empty((img.height, img.width), dtype=grey.dtype)
    for top, bottom in _bands(img):
        out[top:bottom] = grey.rows(top, bottom)
    return out


def _shrunk_grey(img: PILImage.Image, max_side: int) -> np.ndarray:
    """:func:`_to_grey` scaled down to ``max_side`` (float32, as :func:`_shrink` gives), one band
    of rows at a time: each band scaled across, then all of it down. Pillow's box filter works
    the same way (across, then down), so the numbers are those of one resize of the whole."""
    from PIL import Image

    box = Image.Resampling.BOX
    if img.mode in ("I", "F"):
        return _shrink(_as_float(_to_grey(img)), max_side)
    width, height = img.size
    new_w, new_h = _shrunk_size(height, width, max_side)
    grey = _Grey(img)
    across = np.empty((height, new_w), dtype=np.float32)
    for top, bottom in _bands(img):
        band = np.ascontiguousarray(_as_float(grey.rows(top, bottom)), dtype=np.float32)
        across[top:bottom] = Image.fromarray(band).resize((new_w, bottom - top), box)
    return np.asarray(Image.fromarray(across).resize((new_w, new_h), box), dtype=np.float32)


def _as_float(grey: np.ndarray) -> np.ndarray:
    """Grey levels as float32 in [0, 1]: 8-bit levels divided by 255 (in float32), floats as
    they are."""
    if grey.dtype == np.uint8:
        return grey.astype(np.float32) / np.float32(255.0)
    return grey


def _shrunk_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    """Pillow's ``(width, height)`` of an ``h`` x ``w`` image whose longest side becomes
    ``max_side``."""
    scale = max_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _shrink(grey: np.ndarray, max_side: int) -> np.ndarray:
    """Scale down so that the longest side is ``max_side``, averaging the pixels each replaces."""
    from PIL import Image

    h, w = grey.shape
    small = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32))
    return np.asarray(small.resize(_shrunk_size(h, w, max_side), Image.Resampling.BOX), np.float32)
