"""Templates, Umeyama similarity fit, the Numba warp and 5-point alignment."""
import pathlib

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tinyface.errors import ImageError, InputError, TinyfaceError
from tinyface.face.alignment import (TEMPLATES, align, invert_affine, similarity_transform,
                                 template_for, warp_affine)
from tinyface.face.image import load_rgb
from tinyface.kernels.warp import warp_affine_bilinear

FACE = pathlib.Path(__file__).parent / "data" / "lfw_0_fn_0_aligned.jpg"
T112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                 [41.5493, 92.3655], [70.7299, 92.2041]])
SETTINGS = settings(max_examples=40, deadline=None)


def similarity(angle, scale, tx, ty):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def reference_warp(src, inv, size_hw):
    """Plain NumPy bilinear warp, zero outside, pixel centres at integers."""
    H, W, C = src.shape
    ys, xs = np.mgrid[0:size_hw[0], 0:size_hw[1]].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    inside = (x0 >= -1) & (x0 < W) & (y0 >= -1) & (y0 < H)
    padded = np.zeros((H + 2, W + 2, C))
    padded[1:-1, 1:-1] = src
    xi = np.where(inside, x0, -1).astype(np.int64) + 1  # index into padded
    yi = np.where(inside, y0, -1).astype(np.int64) + 1
    v = ((1 - fx) * (1 - fy) * padded[yi, xi] + fx * (1 - fy) * padded[yi, xi + 1]
         + (1 - fx) * fy * padded[yi + 1, xi] + fx * fy * padded[yi + 1, xi + 1])
    out = np.minimum(np.floor(v + 0.5), 255)
    return np.where(inside[..., None], out, 0).astype(np.uint8)


angles = st.floats(-np.pi, np.pi)
scales = st.floats(0.25, 4.0)
shifts = st.floats(-30.0, 30.0)


# --- templates --------------------------------------------------------------------

def test_templates():
    assert np.array_equal(TEMPLATES[(112, 112)], T112)
    assert np.array_equal(TEMPLATES[(112, 96)], T112 - [8, 0])
    assert np.allclose(TEMPLATES[(96, 96)], (T112 + 0.5) * 96 / 112 - 0.5)
    assert np.allclose(template_for((224, 224)), T112 * 2 + 0.5)
    for size, t in TEMPLATES.items():
        assert np.array_equal(template_for(size), t) and not t.flags.writeable
    template_for((112, 112))[0, 0] = -1  # a copy: the table is not changed
    assert TEMPLATES[(112, 112)][0, 0] == T112[0, 0]


@pytest.mark.parametrize("size", [(100, 80), (96, 112)])
def test_unknown_template(size):
    with pytest.raises(InputError, match="no landmark template"):
        template_for(size)


# --- similarity_transform ---------------------------------------------------------------

@pytest.mark.parametrize("size", list(TEMPLATES))
def test_template_onto_itself_is_identity(size):
    t = TEMPLATES[size]
    assert np.allclose(similarity_transform(t, t), np.eye(2, 3), atol=1e-12)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(2, 8), st.just(2)),
              elements=st.floats(-100, 100)), angles, scales, shifts, shifts)
def test_known_similarity_is_recovered(src, angle, scale, tx, ty):
    assume(np.linalg.norm(src - src.mean(0), axis=1).max() > 1.0)
    truth = similarity(angle, scale, tx, ty)
    got = similarity_transform(src, apply(truth, src))
    assert np.allclose(got, truth, rtol=0, atol=1e-6)


@SETTINGS
@given(arrays(np.float64, (5, 2), elements=st.floats(-50, 50)),
       arrays(np.float64, (5, 2), elements=st.floats(-50, 50)))
def test_matches_complex_least_squares(src, dst):
    """In 2-D a similarity is z -> a z + b with complex a; its LS fit is closed-form."""
    assume(np.linalg.norm(src - src.mean(0), axis=1).max() > 1.0)
    z, w = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    a = (wc * zc.conj()).sum() / (np.abs(zc) ** 2).sum()
    b = w.mean() - a * z.mean()
    expected = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])
    assert np.allclose(similarity_transform(src, dst), expected, atol=1e-9)


def test_no_reflection_for_mirrored_points():
    m = similarity_transform(T112, T112 * [-1, 1])
    assert np.linalg.det(m[:, :2]) > 0
    assert np.isclose(m[0, 0], m[1, 1]) and np.isclose(m[0, 1], -m[1, 0])


@pytest.mark.parametrize("src, dst, pattern", [
    (np.zeros((5, 3)), np.zeros((5, 3)), r"src must be Nx2.*\(5, 3\)"),
    (np.zeros((1, 2)), np.zeros((1, 2)), r"N >= 2.*\(1, 2\)"),
    (np.zeros(10), np.zeros(10), r"src must be Nx2"),
    (T112, T112[:4], r"same shape.*\(5, 2\) and \(4, 2\)"),
    (T112, np.where(T112 > 70, np.nan, T112), "dst holds NaN"),
    (np.ones((5, 2)), T112, "coincide"),
    ([["a", "b"], ["c", "d"]], T112[:2], "array of numbers"),
])
def test_similarity_bad_points(src, dst, pattern):
    with pytest.raises(InputError, match=pattern):
        similarity_transform(src, dst)


# --- warp --------------------------------------------------------------------------

@SETTINGS
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3]))),
       st.one_of(st.builds(similarity, angles, scales, shifts, shifts),
                 arrays(np.float64, (2, 3), elements=st.floats(-3, 3))),
       st.tuples(st.integers(1, 16), st.integers(1, 16)))
def test_numba_warp_equals_numpy_reference(src, matrix, size_hw):
    assume(abs(np.linalg.det(matrix[:, :2])) > 1e-3)
    inv = invert_affine(matrix)
    out = np.empty(size_hw + (src.shape[2],), np.uint8)
    warp_affine_bilinear(src, inv, out)
    assert np.array_equal(out, reference_warp(src, inv, size_hw))


@SETTINGS
@given(arrays(np.float64, (2, 3), elements=st.floats(-10, 10, allow_subnormal=False)))
def test_invert_affine(matrix):
    assume(np.linalg.cond(matrix[:, :2]) < 1e6 and abs(np.linalg.det(matrix[:, :2])) > 1e-100)
    full = np.vstack([matrix, [0, 0, 1]])
    assert np.allclose(invert_affine(matrix), np.linalg.inv(full)[:2], atol=1e-8)


def test_invert_affine_refuses_a_matrix_whose_inverse_overflows():
    tiny = 5e-324                                   # subnormal: cond(A) looks fine, A^-1 is inf
    with pytest.raises(InputError, match="singular"):
        invert_affine(np.array([[0, tiny, tiny], [tiny, tiny, tiny]]))


@pytest.mark.parametrize("matrix", [np.zeros((2, 3)), [[1, 2, 0], [2, 4, 0]],
                                    np.eye(3), [[1, 0, np.inf], [0, 1, 0]]])
def test_bad_matrix(matrix):
    with pytest.raises(InputError, match="singular|finite 2x3"):
        warp_affine(np.zeros((4, 4, 3), np.uint8), matrix, (4, 4))


def test_bad_warp_image():
    with pytest.raises(ImageError, match=r"\(4, 4\) and dtype float64"):
        warp_affine(np.zeros((4, 4)), np.eye(2, 3), (4, 4))
    with pytest.raises(ImageError, match="list"):
        warp_affine([[1]], np.eye(2, 3), (4, 4))


def test_identity_and_integer_shift_are_exact():
    face = load_rgb(FACE)
    assert np.array_equal(warp_affine(face, np.eye(2, 3), (112, 112)), face)
    shifted = warp_affine(face, [[1, 0, -10], [0, 1, 5]], (112, 112))  # out(x, y) = in(x+10, y-5)
    assert np.array_equal(shifted[5:, :102], face[:107, 10:])
    assert (shifted[:5] == 0).all() and (shifted[:, 102:] == 0).all()
    grey = face[:, :, 1]
    assert np.array_equal(warp_affine(grey, [[1, 0, -10], [0, 1, 5]], (112, 112)), shifted[:, :, 1])


def test_pixel_centres_are_integer_coordinates():
    src = np.array([[0, 100], [40, 200]], np.uint8)[:, :, None]
    up = warp_affine(src, [[2, 0, 0], [0, 2, 0]], (4, 4))[:, :, 0]
    # out (2j, 2i) is exactly src[i, j]; out (1, 1) is the mean of all four.
    assert up[0, 0] == 0 and up[0, 2] == 100 and up[2, 0] == 40 and up[2, 2] == 200
    assert up[1, 1] == 85 and up[0, 1] == 50
    # Half a pixel past the last centre, the zero border blends in.
    assert up[0, 3] == 50 and up[3, 3] == 50


def test_far_outside_is_zero():
    out = warp_affine(np.full((8, 8, 3), 255, np.uint8), [[1, 0, 1e6], [0, 1, 0]], (8, 8))
    assert (out == 0).all()


# --- align -------------------------------------------------------------------------

def test_face_at_template_is_unchanged():
    face = load_rgb(FACE)
    assert np.array_equal(align(FACE, T112), face)
    assert np.array_equal(align(Image.open(FACE), T112, (112, 96)), face[:, 8:104])
    assert align(str(FACE), T112, (96, 96)).shape == (96, 96, 3)


def gaussian_dots(points, size_hw, sigma=2.0):
    ys, xs = np.mgrid[0:size_hw[0], 0:size_hw[1]]
    img = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)) for x, y in points)
    return np.dstack([np.round(255 * img).clip(0, 255).astype(np.uint8)] * 3)


@pytest.mark.parametrize("size", [(112, 112), (112, 96), (96, 96), (64, 64)])
def test_landmarks_land_on_the_template(size):
    """Dots drawn at sub-pixel landmarks come out centred on the template points."""
    truth = similarity(0.4, 1.7, 30.3, 12.6)
    landmarks = apply(truth, T112)
    out = align(gaussian_dots(landmarks, (240, 260), sigma=3.0), landmarks, size)[:, :, 0]
    ys, xs = np.mgrid[0:size[0], 0:size[1]]
    for x, y in template_for(size):
        near = (np.abs(xs - x) <= 4) & (np.abs(ys - y) <= 4)
        w = out * near
        assert abs((w * xs).sum() / w.sum() - x) < 0.15
        assert abs((w * ys).sum() / w.sum() - y) < 0.15


@settings(max_examples=15, deadline=None)
@given(angles, st.floats(1.0, 1.8), st.floats(-10, 10), st.floats(-10, 10))
def test_warp_then_align_gives_back_the_face(angle, scale, dx, dy):
    face = load_rgb(FACE)
    truth = similarity(angle, scale, 0, 0)
    truth[:, 2] = [160 + dx, 160 + dy] - apply(truth, np.array([[55.5, 55.5]]))[0]
    photo = warp_affine(face, truth, (320, 320))  # the whole face inside a bigger photo
    back = align(photo, apply(truth, T112))
    interior = (slice(12, 100), slice(12, 100))
    err = np.abs(back[interior].astype(int) - face[interior])
    # Two bilinear resamplings blur; the worst case is a half-pixel shift on both
    # axes (each pass averages 4 pixels): mean error 2.06, 99th percentile 15.
    assert err.mean() < 2.5 and np.percentile(err, 99) < 20


@pytest.mark.parametrize("landmarks", [T112[:4], T112.ravel(), np.hstack([T112, T112[:, :1]])])
def test_align_bad_landmarks(landmarks):
    with pytest.raises(InputError, match="landmarks"):
        align(FACE, landmarks)


def test_align_bad_image(tmp_path):
    with pytest.raises(TinyfaceError, match="no such file"):
        align(tmp_path / "missing.jpg", T112)
