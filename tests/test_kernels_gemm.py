"""kernels.gemm: out = epilogue(a @ w), against the NumPy references in tinyface.reference.

Shapes are drawn to hit the blocking's edges: M below, at and between
multiples of the 4-row register tiles (the rows left over go through the loop
block's 1- to 3-row tail), K not a multiple of that block's 4-deep unroll
(K = 1, 2, 3, 5, ...), N below, at and between multiples of the tiles' 64 and
16 columns (the columns left over go through the loop block), and of the
tile widths of AVX2 (24 and 8 columns).  The tiles' k-loops are read in the
compiled assembly: they must not touch the stack (spill), whatever the target.

Tolerance: data are uniform in [-1, 1] and results are compared with
``assert_allclose(rtol=1e-4, atol=1e-4 * sqrt(K))``, K the reduction length
(float32 accumulation error grows about like sqrt(K)).  When a test draws
``exact`` the data are small integers and the activation parameters multiples
of 1/4, so no float32 operation rounds and the comparison is bit-for-bit.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_testing import check, assert_same_on_1_and_2_threads, examples, fma_loops, needs_2_threads
from tinyface.reference import conv, epilogue, gemm as ref_gemm
from tinyface.testing.data import activation_params, random_epilogue, values
from tinyface.testing.strategies import epilogue_kinds, gemm_depths as depths, gemm_rows as rows, \
    gemm_widths as widths, seeds
from tinyface.graph.shapes import conv_output_size
from tinyface.kernels.epilogue import make_epilogue, vector_activations
from tinyface.kernels.gemm import REST_COLUMNS, ROWS, TILE_COLUMNS, TILE_VECTORS, gemm, gemm_panels, gemm_rows, \
    pack_panels, tiled_columns


def run_gemm(a, w, bias, act1, res, act2):
    """Call the kernel the way GemmBinder does; ``res`` None means no residual."""
    out = np.empty((a.shape[0], w.shape[1]), np.float32)
    gemm(a, w, make_epilogue(bias, act1, act2, res, ndim=2), out)
    return out


@settings(max_examples=examples(60), deadline=None)
@given(m=rows, k=depths, n=widths, kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
def test_gemm_matches_reference(m, k, n, kinds, exact, seed):
    rng = np.random.default_rng(seed)
    a = values(rng, (m, k), exact)
    w = values(rng, (k, n), exact)
    bias, act1, res, act2 = random_epilogue(kinds, n, (m, n), rng, exact)
    got = run_gemm(a, w, bias, act1, res, act2)
    check(got, epilogue(a.astype(np.float64) @ w, bias, act1, res, act2), k, exact)


@settings(max_examples=examples(25), deadline=None)
@given(m=rows, k=depths, n=widths, trans_b=st.booleans(), alpha=st.sampled_from([1.0, 0.5, -2.0]),
       beta=st.sampled_from([1.0, 0.0, 3.0]), c_shape=st.sampled_from(["none", "scalar", "row", "2d-row"]),
       seed=seeds)
def test_onnx_gemm(m, k, n, trans_b, alpha, beta, c_shape, seed):
    """ONNX Gemm (transB, alpha, beta, broadcast C) folded into w and bias as lowering does."""
    rng = np.random.default_rng(seed)
    a = values(rng, (m, k), False)
    b = values(rng, (n, k) if trans_b else (k, n), False)
    c = {"none": None, "scalar": values(rng, (1,), False), "row": values(rng, (n,), False),
         "2d-row": values(rng, (1, n), False)}[c_shape]
    want = ref_gemm(a, b, c, alpha=alpha, beta=beta, transA=0, transB=int(trans_b))
    w = np.ascontiguousarray((b.T if trans_b else b) * np.float32(alpha))
    bias = np.zeros(n, np.float32) if c is None else \
        np.ascontiguousarray(np.broadcast_to(c.reshape(-1), (n,)) * np.float32(beta))
    identity = activation_params("identity", n, rng)
    check(run_gemm(a, w, bias, identity, None, identity), want, k)


@settings(max_examples=examples(30), deadline=None)
@given(batch=st.integers(1, 3), h=st.integers(1, 17), w=st.integers(1, 17),
       ci=st.sampled_from([1, 3, 5, 16, 17, 33]), co=st.sampled_from([1, 3, 5, 16, 17, 33]),
       stride=st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1)]), kinds=epilogue_kinds, seed=seeds)
def test_pointwise_conv(batch, h, w, ci, co, stride, kinds, seed):
    """A 1x1 ONNX Conv run as ConvBinder runs it: subsample by the stride, then gemm on NHWC rows."""
    rng = np.random.default_rng(seed)
    x = values(rng, (batch, ci, h, w), False)
    wt = values(rng, (co, ci, 1, 1), False)                        # ONNX layout
    sh, sw = stride
    oh, ow = conv_output_size(h, 1, sh, 0, 0), conv_output_size(w, 1, sw, 0, 0)
    bias, act1, res, act2 = random_epilogue(kinds, co, (batch, co, oh, ow), rng, False)
    want = epilogue(conv(x, wt, None, strides=stride), bias, act1, res, act2)
    assert want.shape == (batch, co, oh, ow)

    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)[:, ::sh, ::sw])
    packed = np.ascontiguousarray(wt[:, :, 0, 0].T)                  # Ci x Co
    res_rows = None if res is None else np.ascontiguousarray(res.transpose(0, 2, 3, 1)).reshape(-1, co)
    got = run_gemm(x_nhwc.reshape(-1, ci), packed, bias, act1, res_rows, act2)
    check(got.reshape(batch, oh, ow, co).transpose(0, 3, 1, 2), want, ci)


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(m=st.integers(1, 64), k=depths, n=widths, kinds=epilogue_kinds, seed=seeds)
def test_same_result_on_1_and_2_threads(m, k, n, kinds, seed):
    rng = np.random.default_rng(seed)
    a, w = values(rng, (m, k), False), values(rng, (k, n), False)
    args = (a, w) + random_epilogue(kinds, n, (m, n), rng, False)
    assert_same_on_1_and_2_threads(lambda: run_gemm(*args))


@pytest.mark.slow
@pytest.mark.parametrize("h, ci, co, residual", [
    (56, 64, 128, False),     # MobileFaceNet: 56x56x64 -> 128 expansion (PReLU)
    (28, 128, 64, True),      # a bottleneck's linear projection with the skip connection
    (7, 128, 512, False),     # the 1x1 conv before GDConv
])
def test_mobilefacenet_pointwise(h, ci, co, residual):
    rng = np.random.default_rng(h * ci + co)
    x = values(rng, (h * h, ci), False)
    w = values(rng, (ci, co), False)
    bias = values(rng, co, False)
    prelu = activation_params("prelu", co, rng)
    identity = activation_params("identity", co, rng)
    res = values(rng, (h * h, co), False) if residual else None
    act1 = identity if residual else prelu
    got = run_gemm(x, w, bias, act1, res, identity)
    check(got, epilogue(x.astype(np.float64) @ w, bias, act1, res, identity), ci)


@settings(max_examples=examples(8), deadline=None)
@given(m=st.integers(1, 7), k=st.sampled_from([4096, 4097, 6143, 9000]), n=st.integers(1, 40),
       kinds=epilogue_kinds, seed=seeds)
def test_long_reduction_split_over_k(m, k, n, kinds, seed):
    """Few rows, k of at least two K_CHUNKs (an FC on a flattened map, as in MobiFace):
    the chunked path, including a last chunk shorter than the others."""
    from tinyface.kernels.gemm import K_CHUNK
    assert k >= 2 * K_CHUNK
    rng = np.random.default_rng(seed)
    a, w = values(rng, (m, k), False), values(rng, (k, n), False)
    bias, act1, res, act2 = random_epilogue(kinds, n, (m, n), rng, False)
    got = run_gemm(a, w, bias, act1, res, act2)
    check(got, epilogue(a.astype(np.float64) @ w, bias, act1, res, act2), k)


@needs_2_threads
def test_long_reduction_same_on_1_and_2_threads():
    rng = np.random.default_rng(3)
    a, w = values(rng, (2, 5000), False), values(rng, (5000, 24), False)
    args = (a, w) + random_epilogue(("prelu", True, "identity"), 24, (2, 24), rng, False)
    assert_same_on_1_and_2_threads(lambda: run_gemm(*args))


@numba.njit(fastmath={"contract"})      # not cached: its assembly is read
def _four_rows(a, w, epilogue, out):
    """out[0:4] = relu(a[0:4] @ w + bias) through ``gemm_rows``, as ``_gemm`` and the block run it."""
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    act1, act2 = vector_activations(epilogue)
    gemm_rows(a, w, out, 0, ROWS, flat, epilogue, act1, act2)


def test_tile_loops_do_not_spill():
    """Both tiles' k-loops (N = 64: wide tiles, and on AVX2 one-vector ones) keep their
    accumulators in registers: no stack access in any loop doing FMAs."""
    rng = np.random.default_rng(0)
    a, w = values(rng, (ROWS, 32), False), values(rng, (32, 64), False)
    bias, (slope, lo, hi) = values(rng, 64, False), activation_params("relu", 64, rng)
    out = np.empty((ROWS, 64), np.float32)
    _four_rows(a, w, make_epilogue(bias, (slope, lo, hi), (slope, lo, hi), ndim=2), out)
    check(out, epilogue(a.astype(np.float64) @ w, bias, (slope, lo, hi)), 32)
    loops = fma_loops(_four_rows.inspect_asm(_four_rows.signatures[0]), "_four_rows")
    assert max(f for f, _ in loops) >= ROWS * TILE_VECTORS, loops      # the wide tile's loop is there
    assert all(stack == 0 for _, stack in loops), loops


@numba.njit(fastmath={"contract"})      # not cached: its assembly is read
def _panel_rows(a, w, panels, epilogue, out, m_lo, m_hi):
    """out[m_lo:m_hi] = epilogue(a[m_lo:m_hi] @ w) through ``gemm_panels``, as ``_gemm`` and the
    block run it."""
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    act1, act2 = vector_activations(epilogue)
    gemm_panels(a, w, panels, out, m_lo, m_hi, flat, epilogue, act1, act2)


@numba.njit(fastmath={"contract"})
def _row_tiles(a, w, epilogue, out, m_lo, m_hi):
    """The same rows through ``gemm_rows``, 4 at a time."""
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    act1, act2 = vector_activations(epilogue)
    for m0 in range(m_lo, m_hi, ROWS):
        gemm_rows(a, w, out, m0, min(ROWS, m_hi - m0), flat, epilogue, act1, act2)


@settings(max_examples=examples(15), deadline=None)
@given(m=rows, k=depths, n=widths, lo_tiles=st.integers(0, 3), kinds=epilogue_kinds, seed=seeds)
def test_panels_match_reference_and_row_tiles(m, k, n, lo_tiles, kinds, seed):
    """``gemm_panels`` on rows m_lo..m (m_lo a multiple of 4, as the tasks of ``_gemm`` start)
    against NumPy, and bit for bit against ``gemm_rows`` on the same rows: the same tiles in
    another order; rows outside the range are left alone."""
    m_lo = min(lo_tiles * ROWS, m - m % ROWS)
    rng = np.random.default_rng(seed)
    a, w = values(rng, (m, k), False), values(rng, (k, n), False)
    bias, act1, res, act2 = random_epilogue(kinds, n, (m, n), rng, False)
    ep = make_epilogue(bias, act1, act2, res, ndim=2)
    got, want = np.full((m, n), 7.0, np.float32), np.full((m, n), 7.0, np.float32)
    _panel_rows(a, w, pack_panels(w), ep, got, m_lo, m)
    _row_tiles(a, w, ep, want, m_lo, m)
    np.testing.assert_array_equal(got, want)
    assert (got[:m_lo] == 7.0).all()
    ref = epilogue(a[m_lo:].astype(np.float64) @ w, bias, act1, None if res is None else res[m_lo:], act2)
    check(got[m_lo:], ref, k)


def test_panel_tile_loops_do_not_spill():
    """The tiles' k-loops as ``gemm_panels`` runs them (reading the packed panels) keep their
    accumulators in registers, as ``test_tile_loops_do_not_spill`` checks for ``gemm_rows``."""
    rng = np.random.default_rng(0)
    a, w = values(rng, (2 * ROWS, 32), False), values(rng, (32, 64), False)
    bias, (slope, lo, hi) = values(rng, 64, False), activation_params("relu", 64, rng)
    out = np.empty((2 * ROWS, 64), np.float32)
    _panel_rows(a, w, pack_panels(w), make_epilogue(bias, (slope, lo, hi), (slope, lo, hi), ndim=2), out, 0, 2 * ROWS)
    check(out, epilogue(a.astype(np.float64) @ w, bias, (slope, lo, hi)), 32)
    loops = fma_loops(_panel_rows.inspect_asm(_panel_rows.signatures[0]), "_panel_rows")
    assert max(f for f, _ in loops) >= ROWS * TILE_VECTORS, loops
    assert all(stack == 0 for _, stack in loops), loops


@pytest.mark.parametrize("n", [8, 16, 40, 64, 130, 256, 512])
def test_pack_panels_puts_the_panel_of_columns_n0_at_k_times_n0(n):
    """Each panel of ``pack_panels`` is its K x width columns row-major at offset K * n0: wide
    panels up to the wide tiles' columns, then the rest tiles' up to the tiled columns."""
    k = 3
    w = np.arange(k * n, dtype=np.float32).reshape(k, n)
    panels = pack_panels(w)
    n_tiled, n_wide = tiled_columns(n)
    assert panels.shape == (k * n_tiled,)
    starts = [(n0, TILE_COLUMNS) for n0 in range(0, n_wide, TILE_COLUMNS)]
    starts += [(n0, REST_COLUMNS) for n0 in range(n_wide, n_tiled, REST_COLUMNS)]
    assert sum(width for _, width in starts) == n_tiled
    for n0, width in starts:
        np.testing.assert_array_equal(panels[k * n0:k * (n0 + width)].reshape(k, width), w[:, n0:n0 + width])


def test_gemm_refuses_panels_of_another_weight():
    w, identity = np.ones((8, 64), np.float32), activation_params("identity", 64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="panels of .* for a 8 x 64 weight"):
        gemm(np.ones((4, 8), np.float32), w, make_epilogue(np.zeros(64, np.float32), identity, identity, ndim=2),
             np.empty((4, 64), np.float32), pack_panels(np.ones((8, 48), np.float32)))
