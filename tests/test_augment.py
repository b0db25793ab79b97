"""Data augmentation: exact geometry where it can be exact, statistics where it cannot.

The warp is checked against independent constructions (np.roll with zero fill for integer
shifts, np.rot90 for quarter turns, the forward formula ``p = A (s - c) + c + t`` for a lone
pixel), the elastic field against what a Gaussian blur of uniform noise must look like, and the
whole on real MNIST digits: they keep their ink and stay roughly where they were.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitnet.data.augment import (
    KINDS,
    Augmenter,
    affine_matrix,
    gaussian_matrix,
    get_augmenter,
)
from digitnet.data.datasets import load_embedded
from digitnet.errors import ConfigError, ShapeError

H = W = 28
CENTRE = 13.5
STILL = {"max_shift": 0.0, "rotation": 0.0, "scale": (1.0, 1.0), "shear": 0.0}


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """2,000 real test digits as rows (n, 784), float32 in [0, 1]."""
    return np.ascontiguousarray(load_embedded().X_test.T[:2000])


def random_images(rng: np.random.Generator, n: int, dtype=np.float32) -> np.ndarray:
    """Images in [0, 1] with exact 0s and 1s among them, like real digits."""
    x = rng.random((n, H * W)).astype(dtype)
    x[x < 0.3] = 0.0
    x[x > 0.9] = 1.0
    return x


def shift_zero_fill(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Move (n, 28, 28) images right by dx and down by dy, filling with zeros (np.roll, no wrap)."""
    out = np.roll(images, (dy, dx), axis=(1, 2))
    if dy > 0:
        out[:, :dy, :] = 0
    elif dy < 0:
        out[:, dy:, :] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


def centre_of_mass(rows: np.ndarray) -> np.ndarray:
    """(n, 2): the (x, y) ink-weighted mean position of each image."""
    yy, xx = np.mgrid[0:H, 0:W]
    ink = rows.sum(axis=1)
    return np.stack([rows @ xx.ravel() / ink, rows @ yy.ravel() / ink], axis=1)


# -- exact geometry ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_returns_the_input_exactly(rng, dtype):
    x = random_images(rng, 300, dtype)  # > one chunk of 256
    aug = Augmenter("affine")
    np.testing.assert_array_equal(aug.warp(x), x)
    np.testing.assert_array_equal(aug.warp(x, np.eye(2, 3)), x)
    # the random path with every range closed is the identity too
    np.testing.assert_array_equal(Augmenter("affine", **STILL)(x, rng), x)
    np.testing.assert_array_equal(Augmenter("both", **STILL, alpha=0.0)(x, rng), x)
    np.testing.assert_array_equal(Augmenter("none")(x, rng), x)


@settings(max_examples=60, deadline=None)
@given(dx=st.integers(-6, 6), dy=st.integers(-6, 6), seed=st.integers(0, 2**32 - 1))
def test_integer_shift_is_roll_with_zero_fill(dx, dy, seed):
    x = random_images(np.random.default_rng(seed), 5)
    got = Augmenter("affine").warp(x, affine_matrix(shift=(dx, dy)))
    want = shift_zero_fill(x.reshape(-1, H, W), dx, dy).reshape(-1, H * W)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("angle", "k"), [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_quarter_turns_are_rot90(rng, angle, k):
    """Positive angles turn anticlockwise as displayed, like np.rot90 (about the centre 13.5)."""
    x = random_images(rng, 4)
    got = Augmenter("affine").warp(x, affine_matrix(rotation=angle)).reshape(-1, H, W)
    want = np.rot90(x.reshape(-1, H, W), k=k, axes=(1, 2))
    # cos 90° is not exactly 0 in floating point: grid points land within ~1e-6 of a pixel
    np.testing.assert_allclose(got, want, atol=1e-5)


@settings(max_examples=80, deadline=None)
@given(
    tx=st.floats(-3, 3),
    ty=st.floats(-3, 3),
    rotation=st.floats(-30, 30),
    scale=st.floats(0.8, 1.25),
    shear=st.floats(-20, 20),
    x0=st.floats(10, 17),
    y0=st.floats(10, 17),
)
def test_a_blob_lands_where_the_forward_map_sends_it(tx, ty, rotation, scale, shear, x0, y0):
    """``p = A (s - c) + c + t``: a smooth spot's centre of mass follows the documented map.

    (A smooth spot, not a lone pixel: shrunk below the pixel grid, one pixel aliases.)
    """
    yy, xx = np.mgrid[0:H, 0:W]
    blob = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2)).reshape(1, -1)
    M = affine_matrix(shift=(tx, ty), rotation=rotation, scale=scale, shear=shear)
    out = Augmenter("affine").warp(blob, M)
    start = centre_of_mass(blob)[0]
    want = M[:, :2] @ (start - CENTRE) + CENTRE + M[:, 2]
    np.testing.assert_allclose(centre_of_mass(out)[0], want, atol=0.1)


def test_affine_matrix_composition():
    """A = R(θ) · Shear(φ) · s, with R anticlockwise on screen (y points down)."""
    np.testing.assert_allclose(affine_matrix(), np.eye(2, 3))
    np.testing.assert_allclose(affine_matrix(shift=(1.5, -2)), [[1, 0, 1.5], [0, 1, -2]])
    np.testing.assert_allclose(affine_matrix(rotation=90)[:, :2], [[0, 1], [-1, 0]], atol=1e-15)
    np.testing.assert_allclose(affine_matrix(shear=45)[:, :2], [[1, 1], [0, 1]])
    np.testing.assert_allclose(affine_matrix(scale=2)[:, :2], 2 * np.eye(2))


def test_scaling_a_centred_square_scales_its_ink_by_s_squared():
    x = np.zeros((1, H, W))
    x[0, 10:18, 10:18] = 1.0  # 8x8, centred on 13.5
    out = Augmenter("affine").warp(x.reshape(1, -1), affine_matrix(scale=1.5))
    assert out.sum() == pytest.approx(1.5**2 * 64, rel=0.05)


def test_other_image_shapes(rng):
    """Nothing is tied to 28 x 28: a 20 x 31 image shifts and half-turns exactly too."""
    aug = Augmenter("both", image_shape=(20, 31))
    x = rng.random((3, 20 * 31))
    got = aug.warp(x, affine_matrix(shift=(3, -2))).reshape(3, 20, 31)
    np.testing.assert_array_equal(got, shift_zero_fill(x.reshape(3, 20, 31), 3, -2))
    got = aug.warp(x, affine_matrix(rotation=180)).reshape(3, 20, 31)
    np.testing.assert_allclose(got, x.reshape(3, 20, 31)[:, ::-1, ::-1], atol=1e-5)
    out = aug(x, rng)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert Augmenter(image_shape=(1000, 1000)).chunk == 16  # float32 flat indices stay exact


def test_numpy_scalars_are_fine_settings():
    aug = Augmenter("affine", rotation=np.float32(10), max_shift=np.int64(2))
    assert aug.rotation == 10


def test_a_constant_displacement_reads_from_further_along():
    """Elastic semantics (Simard et al.): out(p) = in(p + d(p)); d_x = +1 moves the image left."""
    x = random_images(np.random.default_rng(3), 3)
    fields = np.zeros((2, 3, H, W))
    fields[0] = 1.0
    got = Augmenter("elastic").warp(x, fields=fields)
    want = shift_zero_fill(x.reshape(-1, H, W), -1, 0).reshape(-1, H * W)
    np.testing.assert_array_equal(got, want)


def test_chunks_join_seamlessly(rng):
    """Batches beyond one chunk (256) give each image exactly what it gets alone."""
    x = random_images(rng, 600)
    aug = Augmenter("both")
    M = aug.sample_matrices(600, rng)
    F = aug.sample_fields(600, rng)
    whole = aug.warp(x, M, F)
    for i in (0, 255, 256, 511, 512, 599):
        np.testing.assert_array_equal(
            whole[i : i + 1], aug.warp(x[i : i + 1], M[i], F[:, i : i + 1])
        )


# -- the random path -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["affine", "elastic", "both"])
def test_random_path_is_warp_of_the_sampled_transforms(rng, kind):
    """``aug(x, rng)`` is ``warp`` through the maps and fields drawn, in order, from that state."""
    x = random_images(rng, 40)
    aug = Augmenter(kind)
    got = aug(x, np.random.default_rng(11))
    r = np.random.default_rng(11)
    M = aug.sample_matrices(40, r) if kind != "elastic" else None
    F = aug.sample_fields(40, r) if kind != "affine" else None
    np.testing.assert_allclose(got, aug.warp(x, M, F), atol=2e-5)


@pytest.mark.parametrize("kind", ["affine", "elastic", "both"])
def test_same_seed_same_output_different_seed_different(kind):
    x = random_images(np.random.default_rng(0), 50)
    aug = Augmenter(kind)
    a = aug(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, aug(x, np.random.default_rng(1)))
    np.testing.assert_array_equal(a, Augmenter(kind)(x, np.random.default_rng(1)))
    b = aug(x, np.random.default_rng(2))
    assert not np.array_equal(a, b)
    # every image gets its own transform: no two outputs of copies of one image agree
    same = np.repeat(x[:1], 8, axis=0)
    out = aug(same, np.random.default_rng(3))
    assert len({o.tobytes() for o in out}) == 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_dtype_shape_and_out_buffer(rng, kind, dtype):
    x = random_images(rng, 130, dtype)
    aug = Augmenter(kind)
    fresh = aug(x, np.random.default_rng(5))
    assert fresh.dtype == dtype and fresh.shape == x.shape and fresh.flags.c_contiguous
    buf = np.empty_like(x)
    assert aug(x, np.random.default_rng(5), out=buf) is buf
    np.testing.assert_array_equal(buf, fresh)
    inplace = x.copy()
    assert aug(inplace, np.random.default_rng(5), out=inplace) is inplace
    np.testing.assert_array_equal(inplace, fresh)


def test_input_is_left_alone_and_any_layout_is_read(rng):
    x = random_images(rng, 20)
    before = x.copy()
    aug = Augmenter("both")
    a = aug(x, np.random.default_rng(9))
    np.testing.assert_array_equal(x, before)
    b = aug(np.asfortranarray(x), np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    max_shift=st.floats(0, 6),
    rotation=st.floats(0, 180),
    lo=st.floats(0.5, 1.0),
    spread=st.floats(0, 0.8),
    shear=st.floats(0, 45),
    alpha=st.floats(0, 80),
    sigma=st.floats(1, 8),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_any_settings_keep_pixels_in_0_1(
    kind, max_shift, rotation, lo, spread, shear, alpha, sigma, n, seed, dtype
):
    """Every output pixel is a convex mix of input pixels and zeros: it cannot leave [0, 1]."""
    aug = Augmenter(kind, max_shift, rotation, (lo, lo + spread), shear, alpha, sigma)
    rng = np.random.default_rng(seed)
    x = random_images(rng, n, dtype)
    out = aug(x, rng)
    assert out.shape == x.shape and out.dtype == dtype
    assert np.all(np.isfinite(out))
    assert out.min() >= 0.0 and out.max() <= 1.0


# -- the elastic field ---------------------------------------------------------------------------
def test_gaussian_matrix_is_a_blur():
    G = gaussian_matrix(28, 4.0)
    np.testing.assert_allclose(G, G.T)
    assert np.all(G > 0)
    np.testing.assert_allclose(G[14].sum(), 1.0, atol=0.02)  # interior rows: nearly all weight
    assert G[0].sum() < 0.6  # an edge row loses the half that falls outside (zero padding)
    assert G[14, 14] == pytest.approx(1 / (4.0 * math.sqrt(2 * math.pi)), rel=1e-6)
    with pytest.raises(ConfigError):
        gaussian_matrix(28, 0.0)


def test_elastic_field_is_smooth():
    F = Augmenter("elastic").sample_fields(200, np.random.default_rng(0))
    assert F.shape == (2, 200, H, W) and F.dtype == np.float32
    neighbours = np.abs(np.diff(F, axis=3)).mean() + np.abs(np.diff(F, axis=2)).mean()
    perm = np.random.default_rng(1).permutation(H * W)
    flat = F.reshape(2, 200, H * W)
    random_pairs = np.abs(flat - flat[:, :, perm]).mean()
    assert neighbours / 2 < 0.2 * random_pairs
    # no drift in any direction: each field's mean is 0 up to chance (4 standard errors)
    means = F.mean(axis=(2, 3), dtype=np.float64)
    assert abs(means.mean()) < 4 * means.std() / math.sqrt(means.size)
    # d_x and d_y are independent
    assert abs(np.corrcoef(F[0].ravel(), F[1].ravel())[0, 1]) < 0.05


def test_elastic_field_size_follows_alpha_and_sigma():
    """Displacement = α · blur(U(-1, 1)): std ≈ α · std(U) / (2√π σ) in the interior."""
    fields = {
        a: Augmenter("elastic", alpha=a).sample_fields(300, np.random.default_rng(4))
        for a in (10, 20)
    }
    np.testing.assert_allclose(fields[20], 2 * fields[10], rtol=1e-5, atol=1e-5)  # same noise
    for sigma in (4.0, 6.0):
        F = Augmenter("elastic", alpha=30.0, sigma=sigma).sample_fields(
            400, np.random.default_rng(5)
        )
        interior = F[:, :, 10:18, 10:18]
        expect = 30.0 * (1 / math.sqrt(3)) / (2 * math.sqrt(math.pi) * sigma)
        assert interior.std() == pytest.approx(expect, rel=0.1)


# -- real digits ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["affine", "elastic", "both"])
def test_real_digits_keep_their_ink_and_place(digits, kind):
    out = Augmenter(kind)(digits, np.random.default_rng(0))
    ratio = out.sum(axis=1) / digits.sum(axis=1)
    moved = np.linalg.norm(centre_of_mass(out) - centre_of_mass(digits), axis=1)
    assert abs(np.median(ratio) - 1) < 0.05
    if kind == "affine":  # scale 0.9-1.1 changes ink by at most a factor 0.81-1.21
        assert np.all(np.abs(ratio - 1) <= 0.25)
        assert moved.max() < 3.5  # shift ≤ 2√2, rotation and scale about a near-centre ink
    else:
        # An elastic field stretches and squeezes strokes locally (its Jacobian changes areas by
        # tens of percent), so most digits, not all, keep their ink within 25 %: measured ~98 %
        # for elastic and ~90 % for both (where the scale's 0.81-1.21 compounds), over 6 seeds.
        within = np.mean(np.abs(ratio - 1) <= 0.25)
        assert within > (0.95 if kind == "elastic" else 0.85)
        assert np.percentile(moved, 99) < 4.0
    assert moved.mean() < 2.5
    assert not np.allclose(out, digits)


# -- configuration and errors --------------------------------------------------------------------
def test_get_augmenter_by_name():
    for kind in KINDS:
        assert get_augmenter(kind).kind == kind
    assert get_augmenter(None).kind == "none"
    assert get_augmenter("BOTH", rotation=5).rotation == 5
    a = Augmenter("affine")
    assert get_augmenter(a) is a
    assert get_augmenter("affine") is not get_augmenter("affine")  # own scratch arrays each
    with pytest.raises(ConfigError, match="none, affine, elastic, both"):
        get_augmenter("rotate")
    with pytest.raises(ConfigError, match="Unknown augmentation setting"):
        get_augmenter("affine", rotations=5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "wobble"},
        {"scale": (1.1, 0.9)},
        {"scale": (0.0, 1.0)},
        {"rotation": -1.0},
        {"max_shift": float("nan")},
        {"shear": 90.0},
        {"alpha": -1.0},
        {"sigma": 0.0},
        {"alpha": float("inf")},
        {"rotation": "15"},
        {"scale": 1.1},
        {"image_shape": (0, 28)},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Augmenter(**kwargs)


def test_augmenter_is_a_frozen_comparable_config():
    a = Augmenter("both")
    assert a == Augmenter("both") and a != Augmenter("affine")
    assert hash(a) == hash(Augmenter("both"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.rotation = 3.0  # type: ignore[misc]
    assert "rotation=12.0" in repr(a) and "_scratch" not in repr(a)


def test_shape_and_dtype_errors_say_what_to_do(rng):
    aug = Augmenter("both")
    x = random_images(rng, 4)
    with pytest.raises(ShapeError, match=r"\(n, 784\).*pass.*X\.T|X\.T"):
        aug(x.T.copy(), rng)  # columns instead of rows
    with pytest.raises(ShapeError, match="784"):
        aug(x[:, :783], rng)
    with pytest.raises(ShapeError):
        aug(x[0], rng)  # one image, not a batch
    with pytest.raises(ShapeError, match="uint8"):
        aug((x * 255).astype(np.uint8), rng)
    with pytest.raises(ShapeError, match="out"):
        aug(x, rng, out=np.empty((4, 784), np.float64))
    with pytest.raises(ShapeError, match="out"):
        aug(x, rng, out=np.empty((5, 784), np.float32))
    with pytest.raises(ShapeError, match="C-contiguous"):
        aug(x, rng, out=np.empty((784, 4), np.float32).T)
    with pytest.raises(ShapeError, match="fields"):
        aug.warp(x, fields=np.zeros((2, 3, H, W)))
    with pytest.raises(ConfigError, match="singular"):
        aug.warp(x, np.zeros((2, 3)))


def test_empty_batch(rng):
    x = np.empty((0, 784), np.float32)
    for kind in KINDS:
        out = Augmenter(kind)(x, rng)
        assert out.shape == (0, 784) and out.dtype == np.float32
