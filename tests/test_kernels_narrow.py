"""kernels.narrow: the pixel-tile conv against tinyface.reference.conv and against kernels.conv.

Cases are ``tinyface.testing.strategies.conv_cases`` (as for kernels.conv: H, W 1-17,
kernels 1-7, strides 1 and 2, every padding, Co 1-128 including odd counts, batch > 1,
every epilogue), packed as ConvBinder packs them for this kernel (``pad_columns``,
``pad_epilogue``).  Tolerance and ``exact`` cases as in tests/test_kernels_conv.py.

Bit for bit: each output is one FMA chain over (ky, kx, ci) in order, as the direct
path's and the GEMM's tiles sum it, so wherever kernels.conv takes every output with
those tiles (Co a multiple of 16) the two kernels must agree exactly, on random floats.
The partial vectors of odd Co are stored lane by lane: the output is checked not to be
written past its end (sentinels after it in one buffer).  The tile's loop is read in the
compiled assembly: it must not touch the stack (spill), whatever the target.
"""
import numba
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import (assert_same_on_1_and_2_threads, check, examples, fma_loops, needs_2_threads,
                            nhwc_residual)
from test_kernels_conv import RELU, make_case, run_conv, run_im2col
from tinyface.graph.shapes import conv_output_size
from tinyface.kernels.epilogue import make_epilogue, vector_activation
from tinyface.kernels.narrow import (LANES, PIXELS, SAME_AS_GEMM, VECTORS, _pixel_tile, narrow_conv, pad_columns,
                                     pad_epilogue, padded)
from tinyface.reference import epilogue as reference_epilogue
from tinyface.testing.data import activation_params, values
from tinyface.testing.strategies import conv_cases, epilogue_kinds, seeds


def run_narrow(x, wt, strides, pads, bias, act1, res, act2, spare=0):
    """narrow_conv on NCHW ``x`` and ONNX ``wt``, called as ConvBinder calls it; returns NCHW.
    The output is the start of a buffer with ``spare`` NaN sentinels after it, which must stay."""
    n, _, h, w = x.shape
    co, _, kh, kw = wt.shape
    (sh, sw), (pt, pl, pb, pr) = strides, pads
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    packed = pad_columns(wt.transpose(2, 3, 1, 0).reshape(-1, co).astype(np.float32))
    res_nhwc = None if res is None else nhwc_residual(res, (n, co, oh, ow))
    epilogue = pad_epilogue(make_epilogue(bias, act1, act2, res_nhwc))
    size = n * oh * ow * co
    buffer = np.full(size + spare, np.nan, np.float32)
    out = buffer[:size].reshape(n, oh, ow, co)
    narrow_conv(x_nhwc, packed, kh, kw, sh, sw, pt, pl, epilogue, out)
    assert np.isnan(buffer[size:]).all(), "written past the output"
    return out.transpose(0, 3, 1, 2)


@settings(max_examples=examples(100), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
@example(case=(1, 3, 12, 14, 10, (3, 3), (1, 1), (0, 0, 0, 0)), kinds=RELU, exact=False, seed=0)  # P-Net conv1
@example(case=(2, 3, 24, 24, 28, (3, 3), (1, 1), (0, 0, 0, 0)), kinds=RELU, exact=True, seed=1)   # R-Net conv1
@example(case=(1, 5, 3, 3, 1, (3, 3), (1, 1), (1, 1, 1, 1)), kinds=("prelu", True, "relu6"), exact=True,
         seed=2)                                                                                  # 1 channel, residual
@example(case=(3, 2, 5, 4, 9, (1, 1), (2, 2), (0, 0, 0, 0)), kinds=RELU, exact=True, seed=3)     # OW 2 < PIXELS
@example(case=(1, 3, 9, 17, 48, (7, 7), (2, 2), (3, 3, 3, 3)), kinds=RELU, exact=False, seed=4)   # 7x7/2
def test_narrow_conv_matches_reference(case, kinds, exact, seed):
    want, args = make_case(case, kinds, exact, seed)
    ci, (kh, kw) = case[1], case[5]
    check(run_narrow(*args, spare=2 * LANES), want, ci * kh * kw, exact)


@settings(max_examples=examples(50), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, co=st.sampled_from([16, 32, 48, 64, 128]), seed=seeds)
@example(case=(2, 3, 17, 14, 64, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=RELU, co=64, seed=0)    # the stem, direct
@example(case=(1, 10, 13, 13, 16, (3, 3), (1, 1), (0, 0, 0, 0)), kinds=RELU, co=16, seed=1)   # P-Net conv2
def test_same_bits_as_kernels_conv_on_multiples_of_16(case, kinds, co, seed):
    """On random floats, where kernels.conv's tiles take every output (either path)."""
    case = case[:4] + (co,) + case[5:]
    _, args = make_case(case, kinds, False, seed)
    np.testing.assert_array_equal(run_narrow(*args), run_conv(*args))



@settings(max_examples=examples(50), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, co=st.sampled_from([16, 32, 48, 64, 128]), seed=seeds)
@example(case=(2, 3, 17, 14, 64, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=RELU, co=64, seed=0)    # the stem
@example(case=(1, 3, 24, 24, 32, (3, 3), (1, 1), (0, 0, 0, 0)), kinds=("prelu", False, "identity"), co=32,
         seed=1)                                                                             # O-Net conv1
def test_same_bits_as_im2col_and_gemm_on_multiples_of_16(case, kinds, co, seed):
    """On random floats: what lets runtime.deferred run such a conv as im2col and the GEMM
    until this kernel is compiled (SAME_AS_GEMM)."""
    assert co % SAME_AS_GEMM == 0
    case = case[:4] + (co,) + case[5:]
    _, args = make_case(case, kinds, False, seed)
    np.testing.assert_array_equal(run_narrow(*args), run_im2col(*args))

@pytest.mark.parametrize("ow", [1, PIXELS - 1, PIXELS, PIXELS + 1, 2 * PIXELS, 2 * PIXELS + 5])
@pytest.mark.parametrize("co", [1, LANES - 1, VECTORS * LANES, VECTORS * LANES + 1])
def test_row_ends_and_partial_vectors(ow, co):
    """Rows ending inside a tile and channels ending inside a vector (stores and residual
    reads of the real lanes only), on exact data: equal to the reference bit for bit."""
    case = (2, 3, 3, ow + 2, co, (3, 3), (1, 1), (0, 0, 0, 0))
    want, args = make_case(case, ("prelu", True, "relu"), True, ow)
    check(run_narrow(*args, spare=2 * VECTORS * LANES), want, 27, True)


def test_padding_of_the_packing():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    packed = pad_columns(w)
    assert packed.shape == (2, padded(3)) and padded(3) % (VECTORS * LANES) == 0
    np.testing.assert_array_equal(packed[:, :3], w)
    assert not packed[:, 3:].any()
    bias, slope = np.ones(3, np.float32), np.full(3, 0.5, np.float32)
    epilogue = pad_epilogue((bias, slope, -np.inf, np.inf, None, False, slope, 0.0, 6.0))
    assert (epilogue[0][3:] == 0).all() and (epilogue[1][3:] == 1).all() and (epilogue[6][3:] == 1).all()
    assert epilogue[2:6] == (-np.inf, np.inf, None, False) and epilogue[7:] == (0.0, 6.0)


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(case=conv_cases(), kinds=epilogue_kinds, seed=seeds)
def test_same_result_on_1_and_2_threads(case, kinds, seed):
    _, args = make_case(case, kinds, False, seed)
    assert_same_on_1_and_2_threads(lambda: run_narrow(*args))


@numba.njit(fastmath={"contract"})      # not cached: its assembly is read
def _pixel_tiles(xp, offsets, w, bias, slope, lo, hi, out):
    """The tile on PIXELS pixels whose windows are consecutive runs of ``xp``, over all of
    ``w``'s columns."""
    act = vector_activation(slope, lo, hi)
    CP = w.shape[1]
    w_flat, out_flat = w.reshape(-1), out.reshape(-1)
    for n0 in range(0, CP, VECTORS * LANES):
        _pixel_tile(xp, numba.uint64(0), numba.uint64(offsets.size), offsets, w_flat, CP, n0, out_flat, n0, CP,
                    PIXELS, out_flat, False, bias, act, act)


def test_pixel_tile_loop_does_not_spill():
    """The tile's loop keeps its accumulators and broadcasts in registers (no stack access)."""
    rng = np.random.default_rng(0)
    k, n = 27, padded(10)
    xp, w = values(rng, PIXELS * k, False), values(rng, (k, n), False)
    bias, act = values(rng, n, False), activation_params("relu", n, rng)
    out = np.empty((PIXELS, n), np.float32)
    _pixel_tiles(xp, np.arange(k, dtype=np.uint64), w, bias, *act, out)
    check(out, reference_epilogue(xp.reshape(PIXELS, k).astype(np.float64) @ w, bias, act), k)
    loops = fma_loops(_pixel_tiles.inspect_asm(_pixel_tiles.signatures[0]), "_pixel_tiles")
    assert max(f for f, _ in loops) >= PIXELS * VECTORS, loops
    assert all(stack == 0 for _, stack in loops), loops
