"""kernels.epilogue: ``activate``, ``Activation`` and the fused epilogue of every conv-like kernel.

* ``activate`` (the Numba scalar function) and ``Activation.apply`` (its NumPy
  twin) against reference.act = Clip(PRelu(y, slope), lo, hi), for every
  activation form (identity, Relu, Relu6, LeakyRelu, PRelu, Clip).
* The (slope, lo, hi) forms really are those ONNX activations (reference
  against itself).
* Identity (1, -inf, inf) leaves every float32 bit pattern alone, including
  -0.0, infinities, subnormals and NaN.
* Every epilogue variant -- act1 x residual on/off x act2 -- through gemm,
  conv2d and depthwise (1x1, and 3x3 with padding 1 so that interior and
  border pixels take their own code paths), with identity weights.

Tolerance: none.  One activation rounds once, exactly like the float64
reference rounded to float32, so single activations compare bit for bit; the
whole-epilogue test uses small integers and parameters that are multiples of
1/4, on which no float32 operation rounds, and compares bit for bit too.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import itertools
import zlib

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from kernel_testing import examples
from tinyface.reference import act, clip, epilogue, prelu, relu
from tinyface.testing.data import ACTIVATIONS, activation_params, random_epilogue, values
from tinyface.testing.strategies import seeds
from tinyface.kernels.conv import conv2d
from tinyface.kernels.depthwise import depthwise
from tinyface.graph.ops import Activation
from tinyface.kernels.epilogue import activate, activate_vector, block_activation, make_epilogue, vector_activation
from tinyface.kernels.simd import LANES, load, store
from tinyface.kernels.gemm import gemm


finite32 = st.floats(-2.0**100, 2.0**100, width=32, allow_subnormal=True)
any32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)


def activate_each(y, slope, lo, hi):
    """``activate`` on every element of an N x C array, slope per channel (last axis)."""
    out = np.empty_like(y)
    for idx in np.ndindex(*y.shape):
        out[idx] = activate(y[idx], slope[idx[-1]], lo, hi)
    return out


def same_bits(got, want):
    """Bit-for-bit equal, except that any NaN matches any NaN."""
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


@settings(max_examples=examples(40), deadline=None)
@given(y=arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 17)), elements=finite32),
       kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_activate_matches_reference(y, kind, seed):
    slope, lo, hi = activation_params(kind, y.shape[1], np.random.default_rng(seed))
    want = act(y, slope, lo, hi, axis=-1).astype(np.float32)
    np.testing.assert_array_equal(activate_each(y, slope, lo, hi), want)


@numba.njit          # not cached: Numba's cache would not see a change to the intrinsic it calls
def _activate_all(y, slope, lo, hi, out):
    """``activate_vector`` over the vectors of the flat ``y`` (length a multiple of 16)."""
    act = vector_activation(slope, lo, hi)
    for c0 in range(0, y.size, LANES):
        store(out, c0, activate_vector(load(y, c0), block_activation(act, c0)))


@settings(max_examples=examples(40), deadline=None)
@given(y=arrays(np.float32, st.sampled_from([16, 32, 48]), elements=any32),
       kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_activate_vector_is_activate_bit_for_bit(y, kind, seed):
    """The vector activation (an LLVM intrinsic that skips its identity steps) equals
    the scalar one on every lane, NaN, infinities, -0.0 and subnormals included."""
    slope, lo, hi = activation_params(kind, y.size, np.random.default_rng(seed))
    slope = np.ascontiguousarray(slope, np.float32)
    out = np.empty_like(y)
    _activate_all(y, slope, np.float32(lo), np.float32(hi), out)
    same_bits(out, activate_each(y[None], slope, np.float32(lo), np.float32(hi))[0])


@settings(max_examples=examples(40), deadline=None)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 17), st.integers(1, 5), st.integers(1, 5)),
       kind=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_activation_apply_matches_reference(shape, kind, seed):
    """On NCHW (channel_axis=1) and on NHWC (channel_axis=-1)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-8, 8, shape).astype(np.float32)
    a = Activation(*activation_params(kind, shape[1], rng))
    want = act(y, a.slope, a.lo, a.hi, axis=1).astype(np.float32)
    np.testing.assert_array_equal(a.apply(y, channel_axis=1), want)
    nhwc = np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(a.apply(nhwc), want.transpose(0, 2, 3, 1))


@settings(max_examples=examples(20), deadline=None)
@given(y=arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e6, 1e6)), seed=seeds)
def test_activation_params_are_the_onnx_ops(y, seed):
    """The reference's (slope, lo, hi) forms against the ONNX definitions (a check of the reference)."""
    rng = np.random.default_rng(seed)
    c = y.size

    def form(kind):
        return act(y, *activation_params(kind, c, rng), axis=0)

    np.testing.assert_array_equal(form("identity"), y)
    np.testing.assert_array_equal(form("relu"), relu(y))
    np.testing.assert_array_equal(form("relu6"), clip(y, 0, 6))
    slope, lo, hi = activation_params("prelu", c, rng)
    np.testing.assert_array_equal(act(y, slope, lo, hi, axis=0), prelu(y, slope.astype(np.float64)))
    slope, lo, hi = activation_params("clip", c, rng)
    np.testing.assert_array_equal(act(y, slope, lo, hi, axis=0), clip(y, lo, hi))


@settings(max_examples=examples(20), deadline=None)
@given(y=arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 17)), elements=any32))
def test_identity_is_bit_exact(y):
    """(1, -inf, inf) must be the identity bit for bit (the epilogue doc's promise)."""
    ident = Activation.identity(y.shape[1])
    same_bits(activate_each(y, ident.slope, ident.lo, ident.hi), y)
    same_bits(ident.apply(y), y)


def test_relu_of_minus_infinity():
    """ONNX Relu(-inf) = max(-inf, 0) = 0: tinyface lowers Relu as the clamp (slope 1, lo 0),
    because the leaky form (slope 0) would give 0 * -inf = NaN."""
    inf = np.float32(np.inf)
    assert relu(-np.inf) == 0
    assert activate(-inf, np.float32(1), np.float32(0), inf) == 0
    np.testing.assert_array_equal(Activation(np.ones(1, np.float32), 0, np.inf).apply(np.array([-inf])), [0])


# --- the epilogue inside gemm, conv2d and depthwise ----------------------------------

N, H, W, C = 2, 3, 11, 7     # N*H*W = 66 GEMM rows (not a multiple of 4); K = C = 7 (not one of 4)
KERNELS = ("gemm", "conv2d 1x1", "conv2d 3x3", "depthwise 1x1", "depthwise 3x3")


def identity_weights(kernel):
    """Packed weights that pass the input through: the identity matrix, or a 3x3
    window (run with padding 1) whose only non-zero tap is the centre."""
    eye = np.eye(C, dtype=np.float32)
    if kernel == "gemm":
        return eye
    dense = kernel.startswith("conv2d")
    if kernel.endswith("1x1"):
        return eye if dense else np.ones((1, 1, C), np.float32)
    w = np.zeros((3, 3, C, C) if dense else (3, 3, C), np.float32)
    w[1, 1] = eye if dense else 1
    return w.reshape(9 * C, C) if dense else w           # conv2d: (KH*KW*Ci) x Co


def through_kernel(kernel, y_nhwc, bias, act1, res_nhwc, act2):
    """Run y (NHWC) through ``kernel`` with identity weights, the epilogue made as the
    binders make it (see runtime.binders.EpilogueArgs.value); returns the NHWC output."""
    w = identity_weights(kernel)
    out = np.empty_like(y_nhwc)
    if kernel == "gemm":
        res = None if res_nhwc is None else res_nhwc.reshape(-1, C)
        gemm(y_nhwc.reshape(-1, C), w, make_epilogue(bias, act1, act2, res, ndim=2), out.reshape(-1, C))
        return out
    epilogue = make_epilogue(bias, act1, act2, res_nhwc)
    k = 3 if kernel.endswith("3x3") else 1
    pad = k // 2
    if kernel.startswith("conv2d"):
        conv2d(y_nhwc, w, k, k, 1, 1, pad, pad, epilogue, out)
    else:
        depthwise(y_nhwc, w, 1, 1, pad, pad, epilogue, out)
    return out


@pytest.mark.parametrize("kind1, has_res, kind2",
                         list(itertools.product(ACTIVATIONS, [False, True], ACTIVATIONS)))
def test_epilogue_in_every_kernel(kind1, has_res, kind2):
    rng = np.random.default_rng(zlib.crc32(f"{kind1} {has_res} {kind2}".encode()))
    y = 2 * values(rng, (N, C, H, W), exact=True)          # reaches past Relu6's 6 with the bias
    bias, act1, res, act2 = random_epilogue((kind1, has_res, kind2), C, y.shape, rng, exact=True)
    want = epilogue(y, bias, act1, res, act2).astype(np.float32).transpose(0, 2, 3, 1)
    res_nhwc = None if res is None else np.ascontiguousarray(res.transpose(0, 2, 3, 1))
    y_nhwc = np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    for kernel in KERNELS:
        got = through_kernel(kernel, y_nhwc, bias, act1, res_nhwc, act2)
        np.testing.assert_array_equal(got, want, err_msg=kernel)
