"""Decoding images in bounded memory (image_io.py): what a file declares decides, not what it
expands to."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from memutil import peak_mb
from PIL import Image

from digitnet import image_io, imaging
from digitnet.errors import ImageError
from digitnet.image_io import SERVER_MAX_DECODED_BYTES, _as_float, _load, _shrink, load_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png16_rgba(path: Path, side: int) -> Path:
    """A 16-bit RGBA PNG, ``side`` x ``side``, every pixel zero (transparent black): a few
    hundred kilobytes that Pillow decodes to 4 bytes a pixel. Written a band at a time."""
    row = b"\0" * (1 + 8 * side)  # filter byte, then 4 channels of 2 bytes
    z = zlib.compressobj(9)
    parts = []
    band = row * 256
    for top in range(0, side, 256):
        parts.append(z.compress(band if side - top >= 256 else row * (side - top)))
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
    path.write_bytes(data + _chunk(b"IEND", b""))
    return path


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_names_stay_importable_from_imaging():
    assert imaging.load_image is image_io.load_image
    assert imaging._load is image_io._load
    assert imaging.MAX_PIXELS == image_io.MAX_PIXELS


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16"])
def test_band_by_band_gives_the_numbers_of_the_whole(mode, monkeypatch):
    """Grey made, and scaled down, a band of rows at a time: the same numbers as the whole at
    once (several bands forced by a small band size)."""
    rng = np.random.default_rng(3)
    h, w = 301, 457
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").convert(mode)
    data = _png(img)
    whole = load_image(data)
    monkeypatch.setattr(image_io, "_BAND_BYTES", 4 * w * 37)  # 9 bands
    np.testing.assert_array_equal(load_image(data), whole)
    np.testing.assert_array_equal(load_image(data, max_side=100), _shrink(whole, 100))
    assert load_image(data, max_side=100).shape == (66, 100)


def test_a_blank_16_bit_rgba_png_decodes_in_bounded_memory(tmp_path):
    """16 megapixels of 16-bit RGBA, 125 kB of PNG: once 630 MB (a float32 array of four
    channels, then grey and alpha copies); now Pillow's own 64 MB and a band at a time."""
    path = blank_png16_rgba(tmp_path / "blank.png", 4000)
    assert path.stat().st_size < 200_000
    grown, out = peak_mb(
        "from digitnet.imaging import _load, WORKING_SIDE\nimport PIL.PngImagePlugin",
        f"g = _load({str(path)!r}, 160_000_000, WORKING_SIDE)\n"
        "_out = f'{g.shape} {g.dtype} {float(g.min())} {float(g.max())}'",
        limit_mb=1200,
    )
    assert out == "(1024, 1024) float32 1.0 1.0"  # transparent everywhere: laid on white paper
    assert grown < 160, f"decoding took {grown:.0f} MB"


def test_the_server_budget_refuses_the_decoded_size_from_the_header(tmp_path):
    """The issue's PNG: 0.9 MB, 10950x10950 of 16-bit RGBA, under the pixel limit. Under the
    server's budget it is refused from its header: nothing decoded, one line saying why."""
    path = blank_png16_rgba(tmp_path / "bomb.png", 10950)
    assert path.stat().st_size < 1_500_000
    grown, out = peak_mb(
        "from digitnet.image_io import _load, SERVER_MAX_DECODED_BYTES\nimport PIL.PngImagePlugin",
        f"_load({str(path)!r}, 160_000_000, 1024, SERVER_MAX_DECODED_BYTES)",
        limit_mb=1200,
    )
    assert grown < 30, f"refusing took {grown:.0f} MB"
    assert out.startswith(f"ImageError: {path}: 10950x10950 pixels of RGBA would take about ")
    assert "more than the limit of 100 MB" in out and "\n" not in out
    # The command line's budget is ten times the server's.
    assert image_io.MAX_DECODED_BYTES >= 10 * SERVER_MAX_DECODED_BYTES


def test_max_bytes_is_checked_after_a_jpeg_draft():
    """A JPEG read at a reduced scale needs only that scale's memory: admitted under a budget
    its full size would break."""
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=50)
    data = buf.getvalue()
    with pytest.raises(ImageError, match="MB to decode, more than the limit of 60 MB"):
        load_image(data, max_bytes=60_000_000)
    assert load_image(data, max_side=1024, max_bytes=60_000_000).shape[1] == 1024
    assert _as_float(_load(data, max_side=1024, max_bytes=60_000_000)).dtype == np.float32
