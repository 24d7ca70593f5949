"""kernels.softmax: softmax_rows against reference.softmax.

Rows of 1 to ~64 values (also a single column, where every output is 1),
drawn at magnitudes from 1 to 1e37 and with large common offsets, so that a
softmax without the max subtraction would overflow.  Every output must be
finite and every row must sum to 1.

Tolerance: ``assert_allclose(rtol=1e-5, atol=1e-7)`` against the float64
reference (float32 exp is good to about an ulp; the absolute term covers
probabilities that underflow to float32 subnormals or zero), and
``|row sum - 1| <= 1e-5``.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import assert_same_on_1_and_2_threads, examples, needs_2_threads
from tinyface.reference import softmax
from tinyface.testing.strategies import seeds
from tinyface.kernels.softmax import softmax_rows


row_counts = st.integers(1, 20)
row_lengths = st.one_of(st.sampled_from([1, 2, 3, 10, 17, 33]), st.integers(1, 64))
scales = st.sampled_from([1.0, 30.0, 1e3, 1e10, 1e30, 1e37])
offsets = st.sampled_from([0.0, 1e4, -1e4, 88.0, -104.0, 1e30, -1e30])


def logits(rng, shape, scale, offset):
    x = (rng.standard_normal(shape) * scale + offset).astype(np.float32)
    assert np.all(np.isfinite(x))
    return x


def run_softmax(x):
    out = np.empty_like(x)
    softmax_rows(x, out)
    return out


def check(got, want):
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=-1, dtype=np.float64), 1.0, rtol=0, atol=1e-5)


@settings(max_examples=examples(60), deadline=None)
@given(r=row_counts, c=row_lengths, scale=scales, offset=offsets, seed=seeds)
@example(r=3, c=1, scale=1e37, offset=0.0, seed=0)          # one column: all ones
@example(r=5, c=17, scale=1e37, offset=0.0, seed=1)         # exp(x) alone would overflow
@example(r=2, c=10, scale=1.0, offset=-1e30, seed=2)        # ... or underflow to 0 / 0
def test_softmax_rows_matches_reference(r, c, scale, offset, seed):
    x = logits(np.random.default_rng(seed), (r, c), scale, offset)
    check(run_softmax(x), softmax(x, axis=-1))


def test_extreme_rows():
    """Rows at the float32 limits: the maximum, equal values, and one dominant entry."""
    big = np.finfo(np.float32).max
    x = np.array([[big, -big, 0.0],
                  [big, big, big],
                  [-big, -big, -big],
                  [1e-30, 0.0, -1e-30],
                  [50.0, -50.0, 0.0]], np.float32)
    got = run_softmax(x)
    check(got, softmax(x, axis=-1))
    np.testing.assert_array_equal(got[0], [1, 0, 0])
    np.testing.assert_allclose(got[1:3], 1 / 3, rtol=1e-6)


@settings(max_examples=examples(20), deadline=None)
@given(n=st.integers(1, 3), c=st.sampled_from([1, 2, 5, 17]), h=st.integers(1, 9), w=st.integers(1, 9),
       axis=st.sampled_from([1, 2, 3, -1]), scale=scales, seed=seeds)
def test_softmax_over_one_axis(n, c, h, w, axis, scale, seed):
    """ONNX Softmax(axis) on an N x C x H x W tensor, as SoftmaxBinder runs it (move the axis last)."""
    x = logits(np.random.default_rng(seed), (n, c, h, w), scale, 0.0)
    moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    got = np.moveaxis(run_softmax(moved.reshape(-1, moved.shape[-1])).reshape(moved.shape), -1, axis)
    want = softmax(x, axis=axis)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=axis, dtype=np.float64), 1.0, rtol=0, atol=1e-5)


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(r=st.integers(1, 64), c=row_lengths, scale=scales, seed=seeds)
def test_same_result_on_1_and_2_threads(r, c, scale, seed):
    x = logits(np.random.default_rng(seed), (r, c), scale, 0.0)
    assert_same_on_1_and_2_threads(lambda: run_softmax(x))


@pytest.mark.slow
def test_large_softmax():
    """MTCNN-style face/no-face scores for a whole P-Net map, and one long row."""
    rng = np.random.default_rng(0)
    for x in (logits(rng, (235 * 315, 2), 10.0, 0.0), logits(rng, (3, 100_000), 30.0, 0.0)):
        check(run_softmax(x), softmax(x, axis=-1))
