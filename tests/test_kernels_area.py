"""kernels.area: area_resample against a NumPy float64 reference (overlap matrices, one einsum).

Cases drawn by hypothesis: images 1-40 px a side with 1, 3 or 4 channels (3
takes the kernel's three-sums path, the others its general one), 1-4 regions
inside, across and outside the image edges, with fractional corners, shrunk
and enlarged to 1-13 x 1-13 pixels, and the two output maps: the mean itself
(offset 0, factor 1) in float64, and MTCNN's normalised input in float32.
Tolerance: 1e-4 grey levels (the kernel sums cut rows in float32, see its
docstring), times the factor; float32 output one rounding more.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

from kernel_testing import examples
from tinyface.kernels.area import area_resample


def overlap_matrix(start, step, count, limit):
    """M[k, i]: how much of source pixel i the k-th footprint [start + k step, start + (k+1) step) covers."""
    a = start + step * np.arange(count)[:, None]
    i = np.arange(limit)[None, :]
    return np.clip(np.minimum(a + step, i + 1) - np.maximum(a, i), 0, None)


def area_numpy(image, regions, rows, cols, offset, factor):
    """N x C x rows x cols: (overlap-weighted mean - offset) * factor, in float64."""
    h, w, _ = image.shape
    out = []
    for left, top, right, bottom in regions:
        dy, dx = (bottom - top) / rows, (right - left) / cols
        wy, wx = overlap_matrix(top, dy, rows, h), overlap_matrix(left, dx, cols, w)
        mean = np.einsum("ri,ijc,sj->crs", wy, image.astype(np.float64), wx) / (dy * dx)
        out.append((mean - offset) * factor)
    return np.array(out)


coordinate = st.integers(-60, 200).map(lambda q: q / 4)       # quarter pixels, edges and beyond
region = st.tuples(coordinate, coordinate, st.integers(1, 120), st.integers(1, 120)).map(
    lambda t: (t[0], t[1], t[0] + t[2] / 4, t[1] + t[3] / 4))


@settings(max_examples=examples(60), deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), channels=st.sampled_from([1, 3, 4]),
       regions=st.lists(region, min_size=1, max_size=4), rows=st.integers(1, 13), cols=st.integers(1, 13),
       normalised=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_area_resample_matches_numpy(h, w, channels, regions, rows, cols, normalised, seed):
    image = np.random.default_rng(seed).integers(0, 256, (h, w, channels)).astype(np.uint8)
    regions = np.array(regions, np.float64)
    offset, factor, dtype = (127.5, 0.0078125, np.float32) if normalised else (0.0, 1.0, np.float64)
    out = np.empty((len(regions), channels, rows, cols), dtype)
    area_resample(image, regions, offset, factor, out)
    want = area_numpy(image, regions, rows, cols, offset, factor)
    atol = 1e-4 * factor + (np.finfo(np.float32).eps if normalised else 0.0)
    np.testing.assert_allclose(out, want, rtol=0, atol=atol)


def test_a_worked_example():
    """A 2x2 image to one pixel is its mean; a region half outside averages in zeros."""
    image = np.array([[[0], [100]], [[200], [60]]], np.uint8)
    out = np.empty((2, 1, 1, 1))
    area_resample(image, np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]]), 0.0, 1.0, out)
    np.testing.assert_allclose(out.ravel(), [90.0, 40.0])
