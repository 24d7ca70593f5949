"""kernels.elementwise: scale_shift and add against the references in tinyface.reference.

``scale_shift`` is checked as an unfolded BatchNorm / per-channel Mul+Add with
any fused activation: act(x * scale[c] + shift[c]) on an N x C x H x W tensor
(kernel run on its NHWC rows) or an N x C matrix; ``add`` as act(a + b).
Channel counts are not multiples of 16, maps go down to 1 x 1, batch > 1.

Tolerance: one multiply, one add and the activation per element, on data of
magnitude below ~10: ``assert_allclose(rtol=1e-5, atol=1e-5)``.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_testing import examples, on_threads, needs_2_threads
from tinyface.reference import act, per_channel
from tinyface.testing.data import ACTIVATIONS, activation_params
from tinyface.testing.strategies import nchw_shapes, seeds
from tinyface.kernels.elementwise import add, scale_shift


def to_rows(x):
    """The R x C rows the kernels see: channels last (NHWC for a map)."""
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def from_rows(rows, shape):
    if len(shape) == 4:
        n, c, h, w = shape
        return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return rows.reshape(shape)


def run_scale_shift(x, scale, shift, activation):
    rows = to_rows(x)
    out = np.empty_like(rows)
    scale_shift(rows, scale, shift, *activation, out)
    return from_rows(out, x.shape)


def run_add(a, b, activation):
    ra, rb = to_rows(a), to_rows(b)
    out = np.empty_like(ra)
    add(ra, rb, *activation, out)
    return from_rows(out, a.shape)


def check(got, want):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def random_scale_shift(rng, shape):
    c = shape[1]
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    scale = rng.uniform(-2, 2, c).astype(np.float32)
    shift = rng.uniform(-1, 1, c).astype(np.float32)
    return x, scale, shift


@settings(max_examples=examples(50), deadline=None)
@given(shape=nchw_shapes(), kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_scale_shift_matches_reference(shape, kind, seed):
    rng = np.random.default_rng(seed)
    x, scale, shift = random_scale_shift(rng, shape)
    activation = activation_params(kind, shape[1], rng)
    want = act(x * per_channel(scale, x.ndim) + per_channel(shift, x.ndim), *activation)
    check(run_scale_shift(x, scale, shift, activation), want)


@settings(max_examples=examples(50), deadline=None)
@given(shape=nchw_shapes(), kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_add_matches_reference(shape, kind, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-3, 3, shape).astype(np.float32)
    b = rng.uniform(-3, 3, shape).astype(np.float32)
    activation = activation_params(kind, shape[1], rng)
    want = act(a.astype(np.float64) + b, *activation)
    check(run_add(a, b, activation), want)


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(shape=nchw_shapes(), kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_same_result_on_1_and_2_threads(shape, kind, seed):
    rng = np.random.default_rng(seed)
    x, scale, shift = random_scale_shift(rng, shape)
    y = rng.uniform(-3, 3, shape).astype(np.float32)
    activation = activation_params(kind, shape[1], rng)
    before = numba.get_num_threads()
    for run in (lambda: run_scale_shift(x, scale, shift, activation), lambda: run_add(x, y, activation)):
        np.testing.assert_array_equal(on_threads(1, run), on_threads(2, run))
    assert numba.get_num_threads() == before


@pytest.mark.slow
def test_large_map():
    """An unfolded BatchNorm + PReLU, and a residual add, on a 56x56x64 map."""
    rng = np.random.default_rng(0)
    x, scale, shift = random_scale_shift(rng, (2, 64, 56, 56))
    prelu = activation_params("prelu", 64, rng)
    want = act(x * per_channel(scale, 4) + per_channel(shift, 4), *prelu)
    check(run_scale_shift(x, scale, shift, prelu), want)
    y = rng.uniform(-3, 3, x.shape).astype(np.float32)
    check(run_add(x, y, activation_params("identity", 64, rng)), x.astype(np.float64) + y)
