"""Reading a person's own digit: photos, scans and drawings made into MNIST digits (imaging.py).

The central test re-draws digits of the official test set the way a phone photo of a digit on
paper looks, and checks that the network reads them about as well as the clean originals.
"""

from __future__ import annotations

import io
import itertools
import math
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter

from digitnet import imaging
from digitnet.data.datasets import load_embedded
from digitnet.errors import DigitnetError, ImageError, ShapeError
from digitnet.imaging import (
    BOX,
    CENTRE,
    FIELD,
    MAX_PIXELS,
    _stroke_width,
    load_image,
    preprocess,
    to_column,
    to_mnist,
)
from digitnet.network import Network

N_PHOTOS = 300  # test digits re-drawn as photos; each is worth a third of a point of accuracy


# -- a phone photo of a digit on paper -------------------------------------------------------------
PAPER = np.array([0.97, 0.93, 0.84], dtype=np.float32)  # cream
INK = np.array([0.12, 0.15, 0.35], dtype=np.float32)  # ballpoint blue


def phone_photo(
    digit: np.ndarray,
    rng: np.random.Generator,
    *,
    canvas: tuple[int, int] = (800, 600),
    light: tuple[float, float] = (0.55, 0.9),
    quality: int = 70,
) -> bytes:
    """A JPEG of an MNIST digit (28x28, white on black) as a phone photographs it on paper.

    The digit, scaled up 6-11 times with bicubic interpolation, becomes blue ink on cream paper,
    placed anywhere on an 800x600 frame; lit from a random side (brightness ``light[0]`` to
    ``light[1]`` across the frame); with paper grain (coarse, correlated noise) and sensor noise;
    out of focus (Gaussian blur of radius 1-2.5 pixels); JPEG-compressed at ``quality``.
    """
    width, height = canvas
    side = int(rng.integers(180, 301))
    margin = 8
    patch = Image.new("L", (side + 2 * margin, side + 2 * margin))
    scaled = Image.fromarray(np.round(digit * 255).astype(np.uint8))
    patch.paste(scaled.resize((side, side), Image.Resampling.BICUBIC), (margin, margin))
    # Defocus blurs the ink's edges; blurring the ink alone is the same here and much quicker.
    patch = patch.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.5)))
    top = int(rng.integers(0, height - patch.height + 1))
    left = int(rng.integers(0, width - patch.width + 1))
    ink = np.zeros((height, width), dtype=np.float32)
    ink[top : top + patch.height, left : left + patch.width] = np.asarray(patch) / np.float32(255)

    angle = rng.uniform(0.0, 2.0 * math.pi)
    down = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    across = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ramp = down * np.float32(math.sin(angle)) + across * np.float32(math.cos(angle))
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    lighting = np.float32(light[0]) + np.float32(light[1] - light[0]) * ramp
    grain = rng.standard_normal((height // 2, width // 2), dtype=np.float32)
    grain_img = Image.fromarray(grain).resize((width, height), Image.Resampling.BILINEAR)
    lighting += np.asarray(grain_img) * np.float32(0.03)
    lighting += rng.standard_normal((height, width), dtype=np.float32) * np.float32(0.01)

    paper = PAPER * np.float32(rng.uniform(0.95, 1.0))
    pen = INK * np.float32(rng.uniform(0.6, 1.2))
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):
        channel = (paper[c] + (pen[c] - paper[c]) * ink) * lighting
        rgb[..., c] = np.clip(channel * 255 + 0.5, 0, 255)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return out.getvalue()


def jpeg(grey: np.ndarray, quality: int = 80) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8)).save(
        out, "JPEG", quality=quality
    )
    return out.getvalue()


def png(img: Image.Image, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", **kwargs)
    return out.getvalue()


# -- what an MNIST digit is ------------------------------------------------------------------------
def ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(img.any(axis=1))
    cols = np.flatnonzero(img.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """Row and column of the centre of mass, pixel centres at 0, 1, ..., 27."""
    weights = img.astype(np.float64)
    mass = weights.sum()
    idx = np.arange(img.shape[0])
    return float(weights.sum(axis=1) @ idx / mass), float(weights.sum(axis=0) @ idx / mass)


def assert_mnist_like(img: np.ndarray) -> None:
    """28x28 float32 in [0, 1]; the ink's longest side 20 (19 if a filter lobe clipped to 0 at
    the edge), fitting in 20x20; the centre of mass within half a pixel of (14, 14), unless the
    digit's mass is so lopsided that it has been stopped at the field's edge."""
    assert img.shape == (FIELD, FIELD) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0 and img.max() > 0.5
    r0, r1, c0, c1 = ink_box(img)
    height, width = r1 - r0 + 1, c1 - c0 + 1
    assert max(height, width) in (BOX - 1, BOX) and min(height, width) <= BOX
    cy, cx = centre_of_mass(img)
    assert abs(cy - CENTRE) <= 0.5 + 1e-9 or r0 == 0 or r1 == FIELD - 1, (cy, r0, r1)
    assert abs(cx - CENTRE) <= 0.5 + 1e-9 or c0 == 0 or c1 == FIELD - 1, (cx, c0, c1)


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    return load_embedded()


@pytest.fixture(scope="module")
def net(mnist):
    """A quick model of the MNIST digits: about 97% on the test set, in a few seconds."""
    model = Network.from_spec("784-256-10", seed=0)
    model.fit(mnist.X_train, mnist.y_train, epochs=6, learning_rate=1e-3, batch_size=128, seed=0)
    return model


def test_mnist_definition_holds_for_mnist_itself(mnist):
    """The conventions assert_mnist_like checks are MNIST's own (first 500 test digits)."""
    for x in mnist.X_test[:, :500].T:
        assert_mnist_like(x.reshape(FIELD, FIELD))


# -- the acceptance test -------------------------------------------------------------------
@pytest.mark.slow
def test_phone_photos_are_read_as_well_as_the_clean_digits(mnist, net, capsys):
    X, y = mnist.X_test[:, :N_PHOTOS], mnist.y_test[:N_PHOTOS]
    rng = np.random.default_rng(2024)
    photos = [phone_photo(X[:, i].reshape(FIELD, FIELD), rng) for i in range(N_PHOTOS)]
    P = np.hstack([to_column(preprocess(photo)) for photo in photos])
    clean = float(np.mean(net.predict(X) == y))
    photo = float(np.mean(net.predict(P) == y))
    with capsys.disabled():
        print(
            f"\n  {N_PHOTOS} test digits: clean {clean:.2%}, as phone photos through "
            f"preprocess {photo:.2%}"
        )
    assert photo >= clean - 0.02
    for column in P.T[:20]:
        assert_mnist_like(column.reshape(FIELD, FIELD))


def test_mnist_digits_come_back_as_they_were(mnist, net):
    """MNIST's own digits are already what to_mnist makes: re-made, light on dark or dark on
    light, they barely change, and the network reads them the same."""
    X = mnist.X_test[:, :300]
    again = np.hstack([to_column(to_mnist(x.reshape(FIELD, FIELD))) for x in X.T])
    inverted = np.hstack([to_column(to_mnist(1.0 - x.reshape(FIELD, FIELD))) for x in X.T])
    np.testing.assert_allclose(again, inverted, atol=1e-5)
    assert np.abs(again - X).mean() < 0.01
    assert np.mean(net.predict(again) == net.predict(X)) >= 0.98


def test_drawings_on_even_paper_read_as_the_full_recipe_reads_them(mnist, net, monkeypatch):
    """A drawing pad's canvas (even paper: the page of digitnet serve sends one) takes the short
    way, cropped and scaled before its ink is found; it comes out as the whole recipe makes it."""
    X = mnist.X_test[:, :150]
    pads = []
    for i, x in enumerate(X.T):
        side = 200 + 4 * i  # 200 to 796 pixels
        img = Image.fromarray(np.rint(255 * (1 - x.reshape(FIELD, FIELD))).astype(np.uint8))
        pads.append(png(img.resize((side, side), Image.Resampling.BILINEAR).convert("RGBA")))
    assert all(imaging._flat_paper(load_image(p)) == 1.0 for p in pads[:5])
    short = np.hstack([to_column(preprocess(p)) for p in pads])
    monkeypatch.setattr(imaging, "_flat_paper", lambda grey: None)
    full = np.hstack([to_column(preprocess(p)) for p in pads])
    assert np.abs(short - full).mean() < 0.03
    assert np.mean(net.predict(short) == net.predict(full)) >= 0.98
    for column in short.T[:20]:
        assert_mnist_like(column.reshape(FIELD, FIELD))


def test_even_paper_is_told_from_a_photo():
    """Even paper (one exact level on most of the border and half the image) takes the short way
    even when a stroke runs off the edge; grain, or a border mostly inked, does not."""
    pad = np.full((280, 280), 255, dtype=np.uint8)
    pad[100:121, :] = 0  # a stroke across the whole pad: 42 of the border's 1,116 pixels
    assert imaging._flat_paper(pad) == 255.0
    assert imaging._flat_paper(pad.astype(np.float32) / 255) == 1.0
    pad[:, :100] = 0  # the left 100 columns inked: 43 % of the border
    assert imaging._flat_paper(pad) is None
    grain = np.random.default_rng(0).normal(0.9, 0.01, (280, 280)).astype(np.float32)
    assert imaging._flat_paper(grain) is None


def test_dark_ink_and_light_ink_give_the_same_digit(mnist):
    rng = np.random.default_rng(1)
    grey = load_image(phone_photo(mnist.X_test[:, 7].reshape(FIELD, FIELD), rng))
    np.testing.assert_allclose(to_mnist(grey), to_mnist(1.0 - grey), atol=1e-5)


def test_a_photo_comes_out_close_to_the_original_digit(mnist):
    rng = np.random.default_rng(3)
    for i in range(5):
        x = mnist.X_test[:, i].reshape(FIELD, FIELD)
        out = preprocess(phone_photo(x, rng))
        assert_mnist_like(out)
        assert np.corrcoef(out.ravel(), x.ravel())[0, 1] > 0.85


# -- uneven light and paper grain are not ink ------------------------------------------------------
def _scene(digit: np.ndarray, lighting: np.ndarray, at: tuple[int, int], side: int, noise: float):
    rng = np.random.default_rng(0)
    h, w = lighting.shape
    a = np.zeros((h, w), dtype=np.float32)
    big = Image.fromarray((digit * 255).astype(np.uint8))
    big = big.resize((side, side), Image.Resampling.BICUBIC)
    a[at[0] : at[0] + side, at[1] : at[1] + side] = np.asarray(big) / 255.0
    return np.clip(lighting * (1.0 - 0.85 * a) + rng.normal(0, noise, (h, w)), 0, 1)


@pytest.mark.parametrize("light", ["shadow edge", "mostly in shadow", "dark corner", "vignette"])
def test_uneven_light_does_not_count_as_ink(mnist, light):
    h, w = 600, 800
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if light == "shadow edge":  # the phone's shadow, its edge crossing the digit
        from scipy.ndimage import gaussian_filter

        lighting = gaussian_filter(np.where(xx + 0.3 * yy < 420, 0.45, 0.9), 3)
    elif light == "mostly in shadow":  # 70% of it, the digit on the dark side
        lighting = np.where(xx < 560, 0.4, 0.9)
    elif light == "dark corner":  # lit from one side only: 0.15 to 1
        lighting = 0.15 + 0.85 * xx / w
    else:
        lighting = 0.9 - 0.8 * ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2)
    x = mnist.X_test[:, 0].reshape(FIELD, FIELD)
    out = preprocess(jpeg(_scene(x, lighting.astype(np.float32), (150, 250), 250, 0.02)))
    assert_mnist_like(out)
    assert np.corrcoef(out.ravel(), x.ravel())[0, 1] > 0.9


def _blank(kind: str) -> np.ndarray:
    rng = np.random.default_rng(5)
    h, w = 600, 800
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / w
    pages = {
        "white": np.ones((h, w)),
        "grey, lit unevenly, grainy": 0.5 + 0.4 * xx + rng.normal(0, 0.03, (h, w)),
        "dark corner, grainy": 0.2 + 1.04 * xx * yy + rng.normal(0, 0.05, (h, w)),
        "black": rng.normal(0.02, 0.02, (h, w)),
        "vignette": 0.9 - 0.6 * ((xx - 0.5) ** 2 + (yy - 0.37) ** 2) + rng.normal(0, 0.04, (h, w)),
        "shadow edge": np.where(xx < 0.6, 0.85, 0.45) + rng.normal(0, 0.02, (h, w)),
    }
    coarse = rng.normal(0, 0.08, (h // 8, w // 8)).astype(np.float32)
    pages["coarse paper texture"] = 0.7 + np.asarray(
        Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    )
    return np.clip(pages[kind], 0, 1).astype(np.float32)


@pytest.mark.parametrize(
    "kind",
    [
        "white",
        "grey, lit unevenly, grainy",
        "dark corner, grainy",
        "black",
        "vignette",
        "shadow edge",
        "coarse paper texture",
    ],
)
def test_a_blank_page_is_refused(kind, tmp_path):
    page = _blank(kind)
    with pytest.raises(ImageError, match="no digit found: the image looks blank"):
        to_mnist(page)
    path = tmp_path / "page.jpg"
    path.write_bytes(jpeg(page, quality=70))
    with pytest.raises(ImageError, match="no digit found") as err:
        preprocess(path)
    assert str(err.value).startswith(f"{path}: no digit found")


# -- the output is an MNIST digit, whatever the drawing --------------------------------------------
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(40, 500),
    height=st.integers(40, 500),
    points=st.lists(st.tuples(st.floats(0.1, 0.9), st.floats(0.1, 0.9)), min_size=2, max_size=5),
    pen=st.floats(0.02, 0.15),
    paper=st.floats(0.0, 1.0),
    contrast=st.floats(0.3, 1.0),
)
def test_any_drawing_comes_out_mnist_shaped(width, height, points, pen, paper, contrast):
    xy = [(x * width, y * height) for x, y in points]
    length = sum(math.dist(p, q) for p, q in itertools.pairwise(xy))
    line = max(2, round(pen * min(width, height)))
    if length < 3 * line:
        return  # a dot, not a digit's stroke
    img = Image.new("F", (width, height), 0.0)
    ImageDraw.Draw(img).line(xy, fill=1.0, width=line)
    a = np.asarray(img)
    ink = paper - contrast if paper >= 0.5 else paper + contrast
    grey = np.clip(paper + (ink - paper) * a, 0.0, 1.0).astype(np.float32)
    if abs(float(grey.max() - grey.min())) < 0.3:
        return  # the ink was clipped to the paper's shade
    assert_mnist_like(to_mnist(grey))


def test_a_fine_pen_is_widened_to_an_mnist_stroke():
    img = Image.new("L", (800, 600), 245)
    ImageDraw.Draw(img).line([(300, 150), (480, 150), (360, 450)], fill=30, width=3)
    grey = load_image(jpeg(np.asarray(img) / 255.0))
    as_mnist = to_mnist(grey, min_stroke=None)  # MNIST's recipe to the letter: a faint hairline
    widened = to_mnist(grey)
    assert_mnist_like(widened)
    assert _stroke_width(widened > 0.5) >= 1.8
    assert (as_mnist > 0.5).sum() < 0.5 * (widened > 0.5).sum()


# -- reading files: formats and failures -----------------------------------------------------------
def _seven(mode: str, size=(280, 280), ink=0, paper=255) -> Image.Image:
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    draw.line([(80, 60), (200, 60), (120, 230)], fill=ink, width=18)
    return img


def test_formats_and_modes_read_alike(tmp_path):
    reference = to_mnist(np.asarray(_seven("L"), dtype=np.float32) / 255.0)
    rgba_dark = _seven("RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))  # canvas, transparent
    rgba_light = _seven("RGBA", ink=(255, 255, 255, 255), paper=(255, 255, 255, 0))
    sixteen = Image.fromarray(np.asarray(_seven("L"), dtype=np.uint16) * 257)
    assert sixteen.mode == "I;16"
    sources = {
        "grey png": png(_seven("L")),
        "rgb png": png(_seven("RGB", ink=(20, 30, 120), paper=(250, 245, 230))),
        "palette png": png(_seven("L").convert("P")),
        "black strokes on transparent": png(rgba_dark),
        "white strokes on transparent": png(rgba_light),
        "16-bit png": png(sixteen),
        "bmp": _save(_seven("RGB", ink=(0, 0, 0), paper=(255, 255, 255)), "BMP"),
        "webp": _save(_seven("RGB", ink=(0, 0, 0), paper=(255, 255, 255)), "WEBP", lossless=True),
    }
    for name, data in sources.items():
        out = preprocess(data)
        assert np.abs(out - reference).max() < 0.1, name
    path = tmp_path / "seven.png"
    path.write_bytes(sources["grey png"])
    np.testing.assert_array_equal(load_image(path), load_image(str(path)))
    np.testing.assert_array_equal(load_image(path), load_image(path.read_bytes()))


def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def test_an_animation_gives_its_first_frame():
    first, second = _seven("L"), Image.new("L", (280, 280), 255)
    ImageDraw.Draw(second).ellipse([60, 60, 220, 220], outline=0, width=18)
    out = io.BytesIO()
    first.save(out, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    np.testing.assert_allclose(
        preprocess(out.getvalue()), to_mnist(np.asarray(first) / 255.0), atol=0.05
    )


def test_exif_orientation_is_applied():
    """Phones store the sensor's pixels and a tag saying how to turn them."""
    img = Image.new("L", (300, 200), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    data = _save(img, "JPEG", exif=exif.tobytes())
    assert load_image(data).shape == (300, 200)  # (height, width) once upright


def test_max_side_shrinks_a_large_photo():
    big = Image.new("RGB", (4000, 3000), (230, 230, 230))
    grey = load_image(_save(big, "JPEG"), max_side=1024)
    assert max(grey.shape) == 1024 and grey.shape == (768, 1024)


def _truncated_png(tmp_path: Path) -> Path:
    data = png(_seven("L"), compress_level=0)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("empty", "the file is empty"),
        ("text", "not an image file digitnet can read"),
        ("truncated png", "truncated or corrupt"),
        ("truncated jpeg", "truncated or corrupt"),
        ("folder", "is a folder"),
    ],
)
def test_bad_files_fail_in_one_line_naming_the_file(tmp_path, case, message):
    path = tmp_path / "digit.png"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a picture of a digit\n")
    elif case == "truncated png":
        path = _truncated_png(tmp_path)
    elif case == "truncated jpeg":
        data = _save(_seven("RGB"), "JPEG")
        path = tmp_path / "cut.jpg"
        path.write_bytes(data[: len(data) // 3])
    elif case == "folder":
        path = tmp_path
    with pytest.raises(ImageError, match=message) as err:
        preprocess(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert isinstance(err.value, DigitnetError)


def test_empty_bytes_and_wrong_types_are_refused():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="takes a path or bytes"):
        load_image(42)  # type: ignore[arg-type]


def _png_claiming(width: int, height: int) -> bytes:
    """A valid small PNG whose header is rewritten to claim ``width`` x ``height`` pixels."""
    data = bytearray(png(Image.new("L", (8, 8), 255)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile

    decoded = []  # every image Pillow is asked to decode
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda img: decoded.append(img) or load(img))
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(50_000, 50_000))  # 2.5 gigapixels: 2.5 GB decoded
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match="refused before decoding") as err:
        preprocess(path)
    assert decoded == []  # refused from the header alone
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 100  # nothing was decoded (ru_maxrss is in kilobytes on Linux)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "2500 megapixels" in text and "\n" not in text
    assert MAX_PIXELS < 50_000 * 50_000
    # The limit is the header's claim, whatever the data: a genuine image over a lower limit.
    with pytest.raises(ImageError, match=r"2000x1500 pixels \(3 megapixels\) is more than"):
        load_image(png(Image.new("L", (2000, 1500), 255)), max_pixels=1_000_000)
    assert decoded == []
    load_image(png(Image.new("L", (8, 8), 255)))  # (and an image within the limit is decoded)
    assert decoded


# -- arrays in, columns out ------------------------------------------------------------------------
def test_to_mnist_checks_its_input():
    with pytest.raises(ShapeError, match=r"\(H, W\)"):
        to_mnist(np.zeros((28, 28, 3)))
    with pytest.raises(ImageError, match=r"values in \[0, 1\]"):
        to_mnist(np.full((28, 28), 255.0))
    eight_bit = np.asarray(_seven("L"))
    np.testing.assert_allclose(to_mnist(eight_bit), to_mnist(eight_bit / 255.0), atol=1e-6)


def test_to_column_feeds_the_network():
    img = to_mnist(np.asarray(_seven("L"), dtype=np.float32) / 255.0)
    column = to_column(img)
    assert column.shape == (784, 1) and column.dtype == np.float32
    np.testing.assert_array_equal(column[:, 0], img.ravel())
    probabilities = Network.from_spec("784-16-10", seed=0).predict_proba(column)
    assert probabilities.shape == (10, 1)
    with pytest.raises(ShapeError, match=r"\(28, 28\)"):
        to_column(np.zeros(784))


def test_importing_imaging_loads_neither_pillow_nor_opencv():
    code = (
        "import sys, digitnet, digitnet.imaging; "
        "print([m for m in ('PIL', 'cv2', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_does_not_import_opencv():
    code = (
        "import sys\n"
        "from digitnet import cli\n"
        "for argv in (['--help'], ['predict', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('cv2' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "False"


def test_preprocess_uses_opencv_not_scipy(tmp_path):
    """SciPy's ndimage would cost a third of a second of ``digitnet predict``'s start; imaging's
    filters are OpenCV's. A thick stroke and a fine pen (widened) both run."""
    thick, fine = tmp_path / "seven.png", tmp_path / "fine.jpg"
    _seven("L").save(thick)
    img = Image.new("L", (800, 600), 245)
    ImageDraw.Draw(img).line([(300, 150), (480, 150), (360, 450)], fill=30, width=3)
    img.save(fine, quality=85)
    code = (
        "import sys\n"
        "from digitnet.imaging import preprocess\n"
        f"shapes = [preprocess(p).shape for p in ({str(thick)!r}, {str(fine)!r})]\n"
        "print(shapes, 'cv2' in sys.modules, "
        "[m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[(28, 28), (28, 28)] True []"


# -- "not sure" ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    """The default preset's model, trained for 10 epochs of its 100 (its augmentation, dropout
    and label smoothing make its confidence mean something): about 97 % on the test digits."""
    from digitnet.predictor import Predictor

    out = tmp_path_factory.mktemp("default10")
    train = [sys.executable, "-m", "digitnet", "train", "--epochs", "10", "--seed", "0"]
    subprocess.run([*train, "--out", str(out)], capture_output=True, check=True)
    return Predictor(out / "model.safetensors")


def _page(draw) -> bytes:
    """A JPEG of a 400x300 sheet of grey-white paper with what ``draw`` draws on it."""
    img = Image.new("L", (400, 300), 232)
    draw(ImageDraw.Draw(img))
    noisy = np.asarray(img, dtype=np.float32) / 255
    noisy = noisy + np.random.default_rng(4).normal(0, 0.01, noisy.shape).astype(np.float32)
    return jpeg(noisy, quality=85)


LETTERS = {  # letters and signs: the default preset trains with generated non-digits
    # (--outliers, data/outliers.py) and its model spreads its probability over the digits for
    # these: this 10-epoch model's best digit gets 12-18 % for them, against its threshold of
    # 21 % (the 0.6 % quantile of all the test digits, stored in the model file). A, H, R, W and
    # * come within 1.5 points of the threshold here, and E, F, Y and + above it: the 100-epoch
    # model flags them all but for a few of 140 jittered drawings (README). These drawings are a
    # held-out check: the generator draws random strokes, never these.
    "K": [[(150, 60), (150, 250)], [(260, 60), (150, 160), (260, 250)]],
    "M": [[(120, 250), (140, 60), (200, 180), (260, 60), (280, 250)]],
    "N": [[(140, 250), (140, 60), (260, 250), (260, 60)]],
    "X": [[(130, 60), (270, 250)], [(270, 60), (130, 250)]],
    "#": [
        [(160, 60), (150, 250)],
        [(240, 60), (230, 250)],
        [(120, 120), (280, 120)],
        [(120, 190), (280, 190)],
    ],
}


def _not_digits() -> dict[str, bytes]:
    def strokes(lines, width=12):
        return lambda d: [d.line(line, fill=25, width=width, joint="curve") for line in lines]

    rng = np.random.default_rng(8)
    table = np.full((300, 400), 0.25, dtype=np.float32)  # a dark table...
    table[40:270, 70:330] = 0.9  # ...an empty sheet on it
    table += np.random.default_rng(2).normal(0, 0.02, table.shape).astype(np.float32)
    cases = {f"letter {k}": _page(strokes(v)) for k, v in LETTERS.items()}
    cases["dot"] = _page(lambda d: d.ellipse([190, 140, 212, 162], fill=25))
    cases["big dot"] = _page(lambda d: d.ellipse([140, 90, 260, 210], fill=25))
    cases["solid block"] = _page(lambda d: d.rectangle([120, 80, 280, 220], fill=25))

    zigzag = [(120 + 160 * (k % 2) + int(rng.integers(-15, 16)), 70 + 4 * k) for k in range(40)]
    cases["scribble"] = _page(strokes([zigzag], width=8))  # something scratched out
    cases["smudge"] = jpeg(
        np.clip(
            0.9 - 0.5 * np.exp(-(((np.mgrid[0:300, 0:400] - [[[150]], [[200]]]) / 40) ** 2).sum(0)),
            0,
            1,
        )
    )
    cases["an empty sheet on a table"] = jpeg(np.clip(table, 0, 1))
    return cases


@pytest.mark.parametrize("kind", list(_not_digits()))
def test_what_is_not_a_digit_is_not_sure(kind, predictor):
    if kind == "an empty sheet on a table":  # the table is not ink: the sheet is blank
        with pytest.raises(ImageError, match="no digit found"):
            predictor.read(_not_digits()[kind])
        return
    answer, _ = predictor.read(_not_digits()[kind])
    assert answer["confident"] is False, (kind, answer["number"], answer["top3"])
    assert isinstance(answer["reason"], str) and answer["reason"]


def test_a_blank_sheet_is_not_read_at_all(predictor):
    with pytest.raises(ImageError, match="no digit found"):
        predictor.read(jpeg(_blank("white")))


def test_clear_test_digits_are_confident(mnist, predictor):
    """At most 1 % of official test digits the threshold was not calibrated on (5,000 to 5,999)
    are flagged "not sure"."""
    from digitnet.predictor import CALIBRATION, _confidence

    assert CALIBRATION <= 5000
    threshold = predictor.confident_threshold()
    flagged = 0
    for x in mnist.X_test[:, 5000:6000].T:
        reading = imaging.read_digits(x.reshape(FIELD, FIELD))
        entry = predictor.answers(to_column(reading.digits[0].image))[0]
        sure = _confidence(entry, reading.digits[0].doubt or reading.doubt, threshold)
        flagged += len(reading.digits) != 1 or not sure["confident"]
    assert flagged <= 10


def test_a_trained_model_carries_its_threshold(predictor, monkeypatch):
    """``digitnet train`` stores the threshold of all 10,000 test digits in the model file (a
    quantile of 500 wanders), and a Predictor takes it from there without computing it again;
    a model file without it is calibrated on the first 500 test digits."""
    import digitnet.predictor as predictor_module
    from digitnet.data.datasets import load_embedded
    from digitnet.metrics import FLAGGED
    from digitnet.predictor import Predictor

    stored = predictor.doc["metrics"]["confident_threshold"]
    best = predictor.probabilities(load_embedded().X_test).max(axis=0)
    assert np.mean(best < stored) == pytest.approx(FLAGGED, abs=2e-4)

    def refuse():
        raise AssertionError("calibrated again")

    monkeypatch.setattr(predictor_module, "_calibration_digits", refuse)
    assert Predictor(predictor.path).confident_threshold() == stored
    monkeypatch.undo()
    bare = Predictor(predictor.path)
    bare.doc = {k: v for k, v in bare.doc.items() if k != "metrics"}
    first = predictor.probabilities(load_embedded().X_test[:, :500]).max(axis=0)
    assert np.mean(first < bare.confident_threshold()) == pytest.approx(FLAGGED, abs=3e-3)


def test_mnist_widths_calibrate_solid():
    """imaging.SOLID sits above the widest strokes of the official test digits."""
    widths = np.array(
        [imaging._solidity(x.reshape(FIELD, FIELD)) for x in load_embedded().X_test.T]
    )
    assert np.percentile(widths, 99.9) < imaging.SOLID
    assert np.mean(widths > imaging.SOLID) <= 0.001
