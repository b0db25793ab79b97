"""digitnet._ndimage gives what scipy.ndimage gives, on imaging.py's inputs and many random ones.

imaging.py once called SciPy's ndimage; it now calls these NumPy replacements so that
``digitnet predict`` does not pay for importing SciPy. SciPy is the reference here, in the tests
only: every comparison is exact (``np.array_equal``), the Euclidean distance transform included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw

from digitnet import _ndimage

ndimage = pytest.importorskip("scipy.ndimage")

EIGHT = np.ones((3, 3), dtype=bool)


def masks(max_side: int = 24) -> st.SearchStrategy[np.ndarray]:
    """Boolean images from 1x1 to max_side a side, sparse to dense."""
    shapes = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return shapes.flatmap(lambda shape: arrays(bool, shape))


def random_masks(seed: int, count: int, max_side: int = 60):
    """Seeded random masks of every density, from single pixels to the full image."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = (int(x) for x in rng.integers(1, max_side + 1, size=2))
        yield rng.random((h, w)) < rng.choice([0.02, 0.2, 0.5, 0.8, 0.98])


def blobs(seed: int, shape=(120, 160), density=0.15, scale=6) -> np.ndarray:
    """Smooth random shapes, stroke- and digit-like (a coarse random field, enlarged)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((shape[0] // scale + 1, shape[1] // scale + 1)).astype(np.float32)
    fine = np.asarray(Image.fromarray(coarse).resize(shape[::-1], Image.Resampling.BICUBIC))
    return fine < np.quantile(fine, density)


def strokes(size=(300, 220), width=3, pad=0) -> np.ndarray:
    img = Image.new("L", size, 0)
    corners = [(20, 25), (size[0] - 20, 40), (90, size[1] - 15)]
    ImageDraw.Draw(img).line(corners, fill=1, width=width)
    return np.pad(np.asarray(img) > 0, pad)


EDGE_MASKS = {
    "empty": np.zeros((5, 7), bool),
    "all true": np.ones((5, 7), bool),
    "single pixel image": np.ones((1, 1), bool),
    "single pixel off": np.zeros((1, 1), bool),
    "one row": np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1]], bool),
    "one column": np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1]], bool).T,
    "the four corner pixels": np.array([[1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]], bool),
    "two pixels touching by a corner": np.array([[0, 1], [1, 0]], bool),
    "checkerboard (diagonal only)": (np.indices((9, 11)).sum(axis=0) % 2).astype(bool),
    "diagonal line": np.eye(8, dtype=bool),
    "anti-diagonal line": np.eye(8, dtype=bool)[::-1],
    "touching every border": np.pad(np.zeros((4, 6), bool), 1, constant_values=True),
    "single pixel in the middle": np.pad(np.ones((1, 1), bool), 4),
    "comb (merges late)": np.vstack([np.tile([1, 0], (6, 8)), np.ones((1, 16))]).astype(bool),
    "spiral": np.array(
        [
            [1, 1, 1, 1, 1, 1, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [1, 1, 1, 1, 1, 0, 1],
            [1, 0, 0, 0, 1, 0, 1],
            [1, 0, 1, 1, 1, 0, 1],
            [1, 0, 0, 0, 0, 0, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ],
        bool,
    ),
}


# -- label -----------------------------------------------------------------------------------------
def assert_label_like_scipy(mask: np.ndarray) -> None:
    for diagonal, structure in ((True, EIGHT), (False, None)):
        expected, n_expected = ndimage.label(mask, structure=structure)
        got, n = _ndimage.label(mask, diagonal=diagonal)
        assert n == n_expected
        assert got.dtype == np.int32 and got.shape == mask.shape
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(EDGE_MASKS))
def test_label_edge_cases(name):
    assert_label_like_scipy(EDGE_MASKS[name])


def test_label_numbers_regions_in_raster_order_of_their_first_pixel():
    mask = EDGE_MASKS["checkerboard (diagonal only)"]
    assert _ndimage.label(mask)[1] == 1  # corners join with 8-connectivity
    labels, n = _ndimage.label(mask, diagonal=False)
    assert n == mask.sum()  # and do not with 4-connectivity
    np.testing.assert_array_equal(labels[mask], np.arange(1, n + 1))


def test_label_of_no_pixels():
    labels, n = _ndimage.label(np.zeros((0, 4), bool))
    assert n == 0 and labels.shape == (0, 4)


@settings(max_examples=300, deadline=None)
@given(masks())
def test_label_matches_scipy(mask):
    assert_label_like_scipy(mask)


def test_label_matches_scipy_on_random_and_shaped_masks():
    for mask in random_masks(seed=1, count=150):
        assert_label_like_scipy(mask)
    for seed in range(6):
        assert_label_like_scipy(blobs(seed))
        assert_label_like_scipy(~blobs(seed, density=0.6))
    assert_label_like_scipy(strokes(width=2) | (np.random.default_rng(0).random((220, 300)) < 0.01))


# -- find_objects ----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(masks())
def test_find_objects_matches_scipy(mask):
    labels, n = ndimage.label(mask, structure=EIGHT)
    if n:  # scipy's find_objects cannot take the maximum of an empty label array
        assert _ndimage.find_objects(labels) == ndimage.find_objects(labels)
    assert _ndimage.find_objects(labels, max_label=n + 2) == ndimage.find_objects(labels, n + 2)


def test_find_objects_with_absent_labels_and_a_limit():
    labels = np.array([[0, 3, 3, 0], [5, 0, 3, 0], [5, 0, 0, 1]], dtype=np.int32)
    for max_label in (0, 1, 3, 4, 7):
        got = _ndimage.find_objects(labels, max_label)
        assert got == ndimage.find_objects(labels, max_label)
    assert _ndimage.find_objects(labels)[1] is None
    assert _ndimage.find_objects(np.zeros((0, 3), np.int32)) == []


def test_find_objects_matches_scipy_on_random_masks():
    for mask in random_masks(seed=2, count=100):
        labels, n = ndimage.label(mask, structure=EIGHT)
        if n:
            assert _ndimage.find_objects(labels) == ndimage.find_objects(labels)


# -- distance_transform_edt ------------------------------------------------------------------------
def assert_edt_like_scipy(mask: np.ndarray) -> None:
    got = _ndimage.distance_transform_edt(mask)
    assert got.dtype == np.float64 and got.shape == mask.shape
    if mask.all():  # no False pixel: no distance (SciPy measures to a phantom pixel)
        assert np.isinf(got).all()
        return
    expected = ndimage.distance_transform_edt(mask)
    np.testing.assert_array_equal(got, expected)
    for limit in (0.5, 1.0, 2.5, np.sqrt(8.0), float(expected.max())):
        limited = _ndimage.distance_transform_edt(mask, limit=limit)
        np.testing.assert_array_equal(limited, np.where(expected < limit, expected, np.inf))


@pytest.mark.parametrize("name", list(EDGE_MASKS))
def test_distance_transform_edge_cases(name):
    assert_edt_like_scipy(EDGE_MASKS[name])
    assert_edt_like_scipy(~EDGE_MASKS[name])


@settings(max_examples=300, deadline=None)
@given(masks())
def test_distance_transform_matches_scipy(mask):
    assert_edt_like_scipy(mask)


def test_distance_transform_matches_scipy_on_random_and_shaped_masks():
    for mask in random_masks(seed=3, count=150):
        assert_edt_like_scipy(mask)
    for seed in range(6):
        assert_edt_like_scipy(blobs(seed, density=0.4))
        assert_edt_like_scipy(np.pad(blobs(seed, density=0.3), 1))
    # far from the only False pixel: a long chain of parabolas dropped one after another
    corner = np.ones((90, 130), bool)
    corner[0, 0] = False
    assert_edt_like_scipy(corner)
    disc = np.hypot(*np.indices((81, 81)) - 40.0) < 37
    assert_edt_like_scipy(disc)


def test_distance_transform_as_imaging_uses_it():
    """The widest stroke (the maximum over a digit's pieces, padded with background) and the
    distance from thin strokes that _thicken turns into ink, limited to where it makes ink."""
    for width in (1, 2, 3, 7, 25):
        assert_edt_like_scipy(np.pad(strokes(width=width), 1))
        far = ~strokes(width=width, pad=12)
        expected = ndimage.distance_transform_edt(far)
        for limit in (1.5, 6.25, 12.5):
            got = _ndimage.distance_transform_edt(far, limit=limit)
            np.testing.assert_array_equal(got, np.where(expected < limit, expected, np.inf))
            thick = np.clip(limit - got, 0.0, 1.0)
            np.testing.assert_array_equal(thick, np.clip(limit - expected, 0.0, 1.0))


# -- median_filter ---------------------------------------------------------------------------------
def every_third(size: int) -> np.ndarray:
    """imaging._dark_ink's footprint: every third pixel of a size x size window, about its
    centre."""
    centre = size // 2
    window = np.zeros((size, size), dtype=bool)
    window[centre % 3 :: 3, centre % 3 :: 3] = True
    return window


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
def test_median_filter_matches_scipy_on_random_images_and_footprints(mode):
    rng = np.random.default_rng(4)
    for _ in range(150):
        h, w = (int(x) for x in rng.integers(1, 30, size=2))
        dtype = rng.choice([np.float32, np.float64])
        a = rng.random((h, w)).astype(dtype)
        if rng.random() < 0.3:  # ties
            a = np.round(a * 4) / 4
        fh, fw = (int(x) for x in rng.integers(1, 14, size=2))  # even sides and counts too
        footprint = rng.random((fh, fw)) < rng.uniform(0.2, 1.0)
        if not footprint.any():
            footprint[fh // 2, fw // 2] = True
        got = _ndimage.median_filter(a, footprint, mode=mode)
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, ndimage.median_filter(a, footprint=footprint, mode=mode))


def test_median_filter_as_imaging_uses_it():
    rng = np.random.default_rng(5)
    # _cells: size 3, "nearest", on a grid of a few cells (1x1 up to 9x9)
    for h, w in ((1, 1), (1, 5), (2, 3), (6, 8), (8, 8), (9, 7)):
        grid = rng.random((h, w)).astype(np.float32)
        expected = ndimage.median_filter(grid, size=3, mode="nearest")
        np.testing.assert_array_equal(_ndimage.median_filter(grid, EIGHT, "nearest"), expected)
    # _dark_ink: a sparse window a half and a third of the image wide, "reflect", on images of
    # at most 64 pixels a side (as small as 2x2), the window often wider than the image
    for h, w in ((2, 2), (3, 7), (17, 5), (48, 64), (64, 64), (64, 23)):
        tiny = rng.random((h, w))
        for fraction in (2, 3):
            window = every_third(max(3, int(max(h, w) / fraction) | 1))
            expected = ndimage.median_filter(tiny, footprint=window, mode="reflect")
            np.testing.assert_array_equal(_ndimage.median_filter(tiny, window, "reflect"), expected)


def test_median_filter_refuses_what_it_does_not_do():
    with pytest.raises(ValueError, match="mode"):
        _ndimage.median_filter(np.zeros((3, 3)), EIGHT, mode="wrap")
    with pytest.raises(ValueError, match="no pixel"):
        _ndimage.median_filter(np.zeros((3, 3)), np.zeros((3, 3), bool))


# -- grey_opening ----------------------------------------------------------------------------------
def test_grey_opening_matches_scipy_on_random_images_and_sizes():
    rng = np.random.default_rng(6)
    for _ in range(150):
        h, w = (int(x) for x in rng.integers(1, 50, size=2))
        a = rng.random((h, w)).astype(rng.choice([np.float32, np.float64]))
        if rng.random() < 0.3:
            a = np.round(a * 3) / 3
        size = tuple(int(x) * 2 + 1 for x in rng.integers(0, 40, size=2))  # often beyond the image
        got = _ndimage.grey_opening(a, size)
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, ndimage.grey_opening(a, size=size))


def test_grey_opening_as_imaging_uses_it():
    """A k x k opening of an image with ink bright, k odd, from 3 to a few hundred."""
    rng = np.random.default_rng(7)
    v = (0.1 + 0.05 * rng.random((150, 200)) + 0.8 * np.pad(strokes((160, 110), 9), 20)).astype(
        np.float32
    )
    for k in (1, 3, 5, 31, 71, 289):
        got = _ndimage.grey_opening(v, (k, k))
        np.testing.assert_array_equal(got, ndimage.grey_opening(v, size=(k, k)))


def test_grey_opening_takes_odd_sides_only():
    with pytest.raises(ValueError, match="odd"):
        _ndimage.grey_opening(np.zeros((5, 5)), (4, 3))
