"""kernels.pool: NHWC max_pool against tinyface.reference.max_pool (ONNX/PyTorch MaxPool).

Cases: H, W from 1 to 17, windows 1..5 (also non-square), strides 1..3 (a
stride larger than the window skips pixels), pads from 0 to kernel - 1 on
each side independently, ceil_mode on and off, batch > 1, channel counts
that are not multiples of 16.  Half the cases are all-negative maps, where an
implementation that let a (zero) padded position win would fail.  The output
size from ``conv_output_size`` must equal the reference's, which is checked
before the kernel is called.

Tolerance: none; a maximum is exact, so results are compared bit for bit.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import assert_same_on_1_and_2_threads, examples, needs_2_threads
from tinyface import reference
from tinyface.reference import output_size
from tinyface.testing.strategies import pool_cases, seeds
from tinyface.kernels.pool import max_pool
from tinyface.graph.shapes import conv_output_size


def run_max_pool(x, kernel, strides, pads, ceil_mode):
    """max_pool on NCHW ``x``, called as MaxPoolBinder calls it; returns NCHW."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    oh = conv_output_size(h, kh, sh, pt, pb, ceil_mode)
    ow = conv_output_size(w, kw, sw, pl, pr, ceil_mode)
    out = np.empty((n, oh, ow, c), np.float32)
    max_pool(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), kh, kw, sh, sw, pt, pl, out)
    return out.transpose(0, 3, 1, 2)


def make_case(case, negative, seed):
    batch, c, h, w, kernel, strides, pads, ceil_mode = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10, -1, (batch, c, h, w)) if negative else rng.standard_normal((batch, c, h, w))
    return x.astype(np.float32), kernel, strides, pads, ceil_mode


@settings(max_examples=examples(80), deadline=None)
@given(case=pool_cases(), negative=st.booleans(), seed=seeds)
@example(case=(1, 3, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), True), negative=True, seed=0)   # partial last window
@example(case=(1, 3, 5, 5, (2, 2), (2, 2), (1, 1, 1, 1), True), negative=True, seed=0)   # ... dropped
@example(case=(2, 10, 9, 11, (3, 3), (2, 2), (0, 0, 0, 0), True), negative=False, seed=1)  # MTCNN 3x3/2 ceil
@example(case=(1, 5, 7, 6, (3, 3), (2, 2), (1, 1, 1, 1), False), negative=True, seed=2)
@example(case=(1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), False), negative=False, seed=3)
@example(case=(1, 4, 17, 17, (2, 2), (3, 3), (0, 0, 0, 0), True), negative=False, seed=4)  # stride > window
def test_max_pool_matches_reference(case, negative, seed):
    x, kernel, strides, pads, ceil_mode = args = make_case(case, negative, seed)
    want = reference.max_pool(x, kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=ceil_mode)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    assert want.shape == (n, c, conv_output_size(h, kh, sh, pt, pb, ceil_mode),
                          conv_output_size(w, kw, sw, pl, pr, ceil_mode))
    np.testing.assert_array_equal(run_max_pool(*args), want)


@pytest.mark.parametrize("size, kernel, stride, pad_begin, pad_end, ceil_mode, expected", [
    (5, 2, 2, 0, 0, False, 2),
    (5, 2, 2, 0, 0, True, 3),      # the partial window at the end is kept...
    (5, 2, 2, 1, 1, True, 3),      # ... unless it would start in the end padding (4 by ceil alone)
    (6, 3, 2, 0, 0, True, 3),
    (7, 3, 2, 1, 1, False, 4),
    (7, 3, 2, 1, 1, True, 4),
    (8, 3, 2, 1, 0, True, 4),
    (1, 1, 2, 0, 0, True, 1),
    (10, 2, 2, 0, 0, True, 5),     # MTCNN P-Net on a 12x12 crop
    (22, 3, 2, 0, 0, True, 11),    # MTCNN R-Net: 22 -> 11 with ceil_mode, 10 without
    (22, 3, 2, 0, 0, False, 10),
    (46, 3, 2, 0, 0, True, 23),    # MTCNN O-Net: 46 -> 23 with ceil_mode, 22 without
    (46, 3, 2, 0, 0, False, 22),
])
def test_output_size(size, kernel, stride, pad_begin, pad_end, ceil_mode, expected):
    """Hand-computed with PyTorch's formula; reference and runtime must agree."""
    assert output_size(size, kernel, stride, pad_begin, pad_end, ceil_mode) == expected
    assert conv_output_size(size, kernel, stride, pad_begin, pad_end, ceil_mode) == expected


def test_padding_never_wins():
    """A worked example: an all-negative 2x2 map, 2x2 window, stride 1, padded by 1."""
    x = np.array([[-1, -2], [-3, -4]], np.float32)[None, None]
    want = [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]]
    np.testing.assert_array_equal(reference.max_pool(x, kernel_shape=(2, 2), strides=(1, 1), pads=(1, 1, 1, 1)), [[want]])
    np.testing.assert_array_equal(run_max_pool(x, (2, 2), (1, 1), (1, 1, 1, 1), False), [[want]])


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(case=pool_cases(), seed=seeds)
def test_same_result_on_1_and_2_threads(case, seed):
    args = make_case(case, False, seed)
    assert_same_on_1_and_2_threads(lambda: run_max_pool(*args))


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    (1, 10, 478, 638, (2, 2), (2, 2), (0, 0, 0, 0), True),    # MTCNN P-Net pool on a 640x480 image
    (4, 48, 22, 22, (3, 3), (2, 2), (0, 0, 0, 0), True),      # R-Net, a batch of crops
    (1, 64, 112, 112, (3, 3), (2, 2), (1, 1, 1, 1), False),   # ResNet-style stem pool
])
def test_large_shapes(case):
    x, kernel, strides, pads, ceil_mode = args = make_case(case, False, 0)
    np.testing.assert_array_equal(run_max_pool(*args), reference.max_pool(x, kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=ceil_mode))
