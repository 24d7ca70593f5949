"""kernels.conv: direct NHWC conv2d (groups = 1) against tinyface.reference.conv.

Each case builds the ONNX-layout input (N x Ci x H x W) and weight (Co x Ci x
KH x KW), packs them as ConvBinder does (NHWC; (KH*KW*Ci) x Co, rows ordered
ky, kx, ci), sizes the output with ``conv_output_size`` and compares with the
reference in NCHW.
Cases: H, W from 1 to 17, kernels 1, 2, 3, 5, 7 (also non-square), strides
1 and 2, zero/symmetric/asymmetric padding (up to the kernel size, so some
outputs see only padding), channel counts that are not multiples of 16,
batch > 1, and every epilogue variant.

Tolerance: data are uniform in [-1, 1]; ``assert_allclose(rtol=1e-4,
atol=1e-4 * sqrt(K))`` with K = Ci * KH * KW, the reduction length.  Cases
drawn ``exact`` use small integers (activation parameters multiples of 1/4),
for which float32 is exact, and compare bit for bit.

The direct path's window tiles are read in the compiled assembly: their
loops must not touch the stack (spill), whatever the target.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numba
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import check, nhwc_residual, assert_same_on_1_and_2_threads, examples, fma_loops, needs_2_threads
from tinyface.reference import conv, epilogue
from tinyface.testing.data import activation_params, random_epilogue, values
from tinyface.testing.strategies import conv_cases, epilogue_kinds, seeds
from tinyface.graph.shapes import conv_output_size
from tinyface.kernels.conv import WINDOW_VECTORS, _window_tile, conv2d, im2col
from tinyface.kernels.epilogue import make_epilogue, vector_activation
from tinyface.kernels.gemm import ROWS, gemm, pack_panels
from tinyface.kernels.simd import LANES


def run_conv(x, wt, strides, pads, bias, act1, res, act2):
    """conv2d on NCHW ``x`` and ONNX ``wt``, called as ConvBinder calls it; returns NCHW."""
    n, _, h, w = x.shape
    co, _, kh, kw = wt.shape
    (sh, sw), (pt, pl, pb, pr) = strides, pads
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    packed = np.ascontiguousarray(wt.transpose(2, 3, 1, 0).reshape(-1, co))  # (KH*KW*Ci) x Co
    res_nhwc = None if res is None else nhwc_residual(res, (n, co, oh, ow))
    out = np.empty((n, oh, ow, co), np.float32)
    conv2d(x_nhwc, packed, kh, kw, sh, sw, pt, pl, make_epilogue(bias, act1, act2, res_nhwc), out)
    return out.transpose(0, 3, 1, 2)


def make_case(case, kinds, exact, seed):
    """Data for ``case``: the reference result and the kernel's arguments."""
    batch, ci, h, w, co, (kh, kw), strides, pads = case
    rng = np.random.default_rng(seed)
    x = values(rng, (batch, ci, h, w), exact)
    wt = values(rng, (co, ci, kh, kw), exact)
    acc = conv(x, wt, None, strides=strides, pads=pads)
    bias, act1, res, act2 = random_epilogue(kinds, co, acc.shape, rng, exact)
    want = epilogue(acc, bias, act1, res, act2)
    return want, (x, wt, strides, pads, bias, act1, res, act2)


def run_im2col(x, wt, strides, pads, bias, act1, res, act2):
    """im2col then gemm on NCHW ``x`` and ONNX ``wt``, as ConvBinder binds a dense conv while
    the narrow kernel is not compiled (runtime/deferred.py); returns NCHW."""
    n, ci, h, w = x.shape
    co, _, kh, kw = wt.shape
    (sh, sw), (pt, pl, pb, pr) = strides, pads
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    packed = np.ascontiguousarray(wt.transpose(2, 3, 1, 0).reshape(-1, co))  # (KH*KW*Ci) x Co
    patches = np.full((n * oh, ow, kh * kw * ci), np.nan, np.float32)
    im2col(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), kh, kw, sh, sw, pt, pl, patches)
    res_rows = None if res is None else nhwc_residual(res, (n, co, oh, ow)).reshape(-1, co)
    out = np.empty((n * oh * ow, co), np.float32)
    gemm(patches.reshape(n * oh * ow, -1), packed, make_epilogue(bias, act1, act2, res_rows, 2), out,
         pack_panels(packed))
    return out.reshape(n, oh, ow, co).transpose(0, 3, 1, 2)


RELU = ("relu", False, "identity")


@settings(max_examples=examples(100), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
@example(case=(1, 3, 1, 1, 5, (3, 3), (1, 1), (1, 1, 1, 1)), kinds=RELU, exact=False, seed=0)   # 1x1 map
@example(case=(2, 3, 7, 9, 17, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=RELU, exact=False, seed=1)  # s2, odd
@example(case=(1, 5, 6, 5, 3, (3, 3), (2, 2), (0, 0, 1, 1)), kinds=RELU, exact=False, seed=2)   # SAME_UPPER
@example(case=(1, 3, 5, 4, 3, (5, 4), (1, 1), (0, 0, 0, 0)), kinds=RELU, exact=True, seed=3)    # whole map
@example(case=(1, 3, 17, 16, 8, (7, 7), (2, 2), (3, 3, 3, 3)), kinds=RELU, exact=False, seed=4)  # 7x7/2
@example(case=(1, 2, 3, 3, 4, (1, 1), (1, 1), (1, 1, 1, 1)), kinds=RELU, exact=True, seed=5)    # pad-only rim
@example(case=(3, 1, 5, 5, 1, (2, 2), (2, 2), (0, 0, 0, 0)), kinds=RELU, exact=True, seed=6)    # drops a row
@example(case=(2, 3, 17, 14, 64, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=RELU, exact=True, seed=7)  # stem, direct
@example(case=(1, 5, 9, 11, 128, (3, 2), (1, 2), (0, 2, 1, 0)), kinds=RELU, exact=False, seed=8)  # direct, OW % 4
@example(case=(1, 2, 4, 7, 64, (3, 3), (1, 1), (1, 0, 1, 0)), kinds=("prelu", True, "relu6"), exact=True,
         seed=9)                                                                                 # direct, OW = 5, residual
@example(case=(1, 3, 6, 4, 64, (2, 2), (1, 1), (0, 0, 0, 0)), kinds=RELU, exact=True, seed=10)   # OW = 3: patches
def test_conv2d_matches_reference(case, kinds, exact, seed):
    want, args = make_case(case, kinds, exact, seed)
    ci, (kh, kw) = case[1], case[5]
    check(run_conv(*args), want, ci * kh * kw, exact)


@pytest.mark.parametrize("case", [
    (1, 2, 1, 1, 64, (1, 1), (1, 10), (0, 35, 0, 0)),     # every window in the left padding (4 of them)
    (1, 3, 2, 9, 64, (1, 3), (1, 4), (0, 30, 0, 0)),      # the left windows in the padding only
    (2, 1, 5, 6, 128, (5, 5), (1, 1), (4, 4, 4, 4)),      # pads as large as the kernel allows
])
def test_conv2d_windows_in_the_padding(case):
    """Geometries whose windows lie partly or wholly in a wide padding, on the direct path
    (64s of output channels, at least 4 output columns): zeros, then the epilogue."""
    want, args = make_case(case, ("relu", False, "identity"), True, 0)
    check(run_conv(*args), want, case[1] * case[5][0] * case[5][1], True)


@settings(max_examples=examples(50), deadline=None)
@given(case=conv_cases(), seed=seeds)
@example(case=(2, 3, 17, 14, 64, (3, 3), (2, 2), (1, 1, 1, 1)), seed=0)   # the stem
@example(case=(1, 2, 3, 3, 4, (1, 1), (1, 1), (1, 1, 1, 1)), seed=1)      # pad-only rim
def test_im2col_rows_are_the_windows(case, seed):
    """Each row of ``im2col`` is one output pixel's window, (ky, kx, ci) in order, zeros in
    the padding, every entry written: NumPy's sliding windows of the zero-padded map."""
    batch, ci, h, w, co, (kh, kw), (sh, sw), (pt, pl, pb, pr) = case
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    x = np.random.default_rng(seed).standard_normal((batch, h, w, ci)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (pt, max(pb, 0)), (pl, max(pr, 0)), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :oh, :ow]
    want = windows.transpose(0, 1, 2, 4, 5, 3).reshape(batch * oh, ow, kh * kw * ci)
    got = np.full_like(want, np.nan)
    im2col(x, kh, kw, sh, sw, pt, pl, got)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=examples(40), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
@example(case=(2, 3, 17, 14, 64, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=("prelu", True, "relu6"), exact=False,
         seed=0)                                                                           # the stem, residual
def test_im2col_and_gemm_match_reference(case, kinds, exact, seed):
    want, args = make_case(case, kinds, exact, seed)
    ci, (kh, kw) = case[1], case[5]
    check(run_im2col(*args), want, ci * kh * kw, exact)


def test_reference_worked_examples():
    """The reference itself on cases small enough to check by hand."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(conv(x, np.ones((1, 1, 2, 2))), [[[[8, 12], [20, 24]]]])
    # stride 2, padded by 1: the windows' real pixels are {0}, {1, 2}, {3, 6}, {4, 5, 7, 8}
    np.testing.assert_array_equal(conv(x, np.ones((1, 1, 2, 2)), strides=(2, 2), pads=(1, 1, 1, 1)),
                                  [[[[0, 3], [9, 24]]]])
    # two groups of one channel each, bias per output channel
    x2 = np.stack([x[0, 0], -x[0, 0]])[None]
    y = conv(x2, np.array([1.0, 10.0]).reshape(2, 1, 1, 1), [0.5, -0.5], group=2)
    np.testing.assert_array_equal(y, [[x[0, 0] + 0.5, -10 * x[0, 0] - 0.5]])


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, seed=seeds)
def test_same_result_on_1_and_2_threads(case, kinds, seed):
    _, args = make_case(case, kinds, False, seed)
    assert_same_on_1_and_2_threads(lambda: run_conv(*args))


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    (1, 3, 112, 112, 64, (3, 3), (2, 2), (1, 1, 1, 1)),    # MobileFaceNet stem: 112x112x3 -> 56x56x64
    (2, 3, 48, 48, 32, (3, 3), (1, 1), (0, 0, 0, 0)),      # MTCNN O-Net's first conv, batch 2
])
def test_large_shapes(case):
    want, args = make_case(case, ("prelu", False, "identity"), False, seed=1)
    check(run_conv(*args), want, case[1] * 9)


@numba.njit(fastmath={"contract"})      # not cached: its assembly is read
def _window_tiles(xp, span, w, bias, slope, lo, hi, out):
    """The direct path's tile on four pixels of a 1-row map, over all of ``w``'s columns."""
    act = vector_activation(slope, lo, hi)
    N = w.shape[1]
    w_flat, out_flat = w.reshape(-1), out.reshape(-1)
    for n0 in range(0, N, WINDOW_VECTORS * LANES):
        _window_tile(xp, 0, span, 1, span, 0, w_flat, N, n0, out_flat, n0, out_flat, False, bias, act, act,
                     WINDOW_VECTORS)


def test_window_tile_loops_do_not_spill():
    """The window tile's loop keeps its accumulators in registers (no stack access)."""
    rng = np.random.default_rng(0)
    span, n = 12, 64
    xp, w = values(rng, ROWS * span, False), values(rng, (span, n), False)
    bias, act = values(rng, n, False), activation_params("relu", n, rng)
    out = np.empty((ROWS, n), np.float32)
    _window_tiles(xp, span, w, bias, *act, out)
    check(out, epilogue(xp.reshape(ROWS, span).astype(np.float64) @ w, bias, act), span)
    loops = fma_loops(_window_tiles.inspect_asm(_window_tiles.signatures[0]), "_window_tiles")
    assert max(f for f, _ in loops) >= ROWS * WINDOW_VECTORS, loops
    assert all(stack == 0 for _, stack in loops), loops
