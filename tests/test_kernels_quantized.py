"""The 8-bit kernels against ``reference.quantized``: equal bit for bit, on random shapes,
zero points, scales, clamps and residuals (integer arithmetic has no rounding slack).
.ci/run runs the pair multiply-add tests once more with the pairs in their generic LLVM
form (``tests/generic_pairs.py``: ``isimd.PAIR_INSTRUCTION`` None, what a CPU without
x86's ``pmaddwd`` compiles)."""
import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_testing import fma_loops
from tinyface.kernels import isimd, quantized as Q
from tinyface.kernels.simd import LANES
from tinyface.reference import quantized as R

F32 = np.float32
EXAMPLES = settings(max_examples=25, deadline=None)


def _epilogue(rng, n, zx_sum, has_res, clamp):
    """Random epilogue arguments for n channels: (epi tuple for the kernel, the same as a dict)."""
    z = int(rng.integers(0, 256))
    lo, hi = (0, 255) if not clamp else sorted(int(v) for v in rng.integers(0, 256, 2))
    p = dict(bias=rng.integers(-20000, 20000, n).astype(np.int32), m=(rng.random(n) * 0.02).astype(F32),
             lo=lo - z, hi=hi - z, z=z, sq=F32(rng.random() * 2), zr=int(rng.integers(0, 256)),
             sr=F32(rng.random() * 2), z2=int(rng.integers(0, 256)))
    p["lo2"], p["hi2"] = -p["z2"], 255 - p["z2"]
    epi = ((p["bias"] - zx_sum).astype(np.int32), p["m"], F32(p["lo"]), F32(p["hi"]), np.int32(z), has_res,
           np.int32(z), p["sq"], np.int32(p["zr"]), p["sr"], F32(p["lo2"]), F32(p["hi2"]), np.int32(p["z2"]))
    return epi, p


def _expected(acc, p, res):
    q = R.requantize(acc, p["m"], p["lo"], p["hi"], p["z"])
    if res is not None:
        q = R.qadd(q, p["z"], p["sq"], res, p["zr"], p["sr"], p["lo2"], p["hi2"], p["z2"])
    return q


def _bytes(rng, shape):
    return rng.integers(0, 256, shape).astype(np.uint8)


@EXAMPLES
@given(m=st.integers(1, 11), k=st.integers(1, 40), n=st.integers(1, 3 * LANES * 2 + 5),
       seed=st.integers(0, 2**32 - 1), has_res=st.booleans(), clamp=st.booleans())
def test_qgemm_equals_reference(m, k, n, seed, has_res, clamp):
    rng = np.random.default_rng(seed)
    a, w = _bytes(rng, (m, k)), rng.integers(-128, 128, (k, n)).astype(np.int8)
    zx = int(rng.integers(0, 256))
    epi, p = _epilogue(rng, n, zx * w.astype(np.int32).sum(0), has_res, clamp)
    res = _bytes(rng, (m, n))
    out = np.empty((m, n), np.uint8)
    Q.qgemm(a, Q.pack_pairs(w), epi, res, out)
    acc = R.qconv_accumulate(a.T[None, :, :, None], zx, w.T[:, :, None, None], p["bias"])[0, :, :, 0].T
    np.testing.assert_array_equal(out, _expected(acc, p, res if has_res else None))


def _quad_weights(rng, k, n):
    """K x N int8 weights that ``fits_quads`` admits, at its bound: each pair of rows
    2p, 2p+1 with |w0| + |w1| <= 128, extremes (-128 beside 0, 64 beside -64) included."""
    size = (k + 1) // 2 * n
    w0 = rng.integers(-128, 128, size)
    room = np.minimum(128 - np.abs(w0), 127)
    w1 = np.where(rng.random(size) < 0.2, room * rng.choice([-1, 1], size), rng.integers(-room, room + 1))
    pairs = np.stack([w0, w1], 1).reshape((k + 1) // 2, n, 2).transpose(0, 2, 1).reshape(-1, n)
    return pairs[:k].astype(np.int8)


def _check_qgemm_quads(rng, a, w, has_res, clamp):
    """``qgemm_quads`` of the bytes ``a`` and int8 weights ``w`` (a random zero point,
    epilogue and residual from ``rng``) against the reference, bit for bit."""
    m, n = a.shape[0], w.shape[1]
    zx = int(rng.integers(0, 256))
    epi, p = _epilogue(rng, n, zx * w.astype(np.int32).sum(0), has_res, clamp)
    res = _bytes(rng, (m, n))
    out = np.empty((m, n), np.uint8)
    Q.qgemm_quads(a, Q.pack_quads(w), epi, res, out)
    acc = R.qconv_accumulate(a.T[None, :, :, None], zx, w.T[:, :, None, None], p["bias"])[0, :, :, 0].T
    np.testing.assert_array_equal(out, _expected(acc, p, res if has_res else None))


@EXAMPLES
@given(m=st.integers(1, 11), k=st.integers(1, 40), n=st.integers(1, 3 * LANES * 2 + 5),
       seed=st.integers(0, 2**32 - 1), has_res=st.booleans(), clamp=st.booleans(), bright=st.booleans())
def test_qgemm_quads_equals_reference(m, k, n, seed, has_res, clamp, bright):
    """Weights in quads at the bound where ``pmaddubsw``'s 16-bit pair sums would saturate,
    rows of 255 among them (``bright``): the same bits as the reference (and so as ``qgemm``)."""
    rng = np.random.default_rng(seed)
    a, w = _bytes(rng, (m, k)), _quad_weights(rng, k, n)
    if bright:
        a[::2] = 255
    assert Q.fits_quads(w)
    _check_qgemm_quads(rng, a, w, has_res, clamp)


@numba.njit                  # not cached: its assembly is read
def _quad_block(a, w, epi, out):
    """out[0:4] of ``a`` (4 x K, K a multiple of 4) times the quads ``w``, as ``qgemm_quads``
    runs a block of rows."""
    K, N = a.shape[1], out.shape[1]
    Q.quad_rows(a.reshape(-1), K, 0, Q.ROWS, w, N, epi, out.reshape(-1), 0, np.zeros(1, np.uint8))


@pytest.mark.skipif(isimd.QUAD_INSTRUCTION is None, reason="no pmaddubsw on this target: the generic form")
def test_quad_tile_loop_does_not_spill():
    """The wide quad tile's k loop (N = 64) keeps its accumulators, weights and ones in
    registers: no vector on the stack in any loop doing ``pmaddubsw`` (or ``vpdpbusd``)."""
    rng = np.random.default_rng(0)
    a, w = _bytes(rng, (Q.ROWS, 32)), _quad_weights(rng, 32, 64)
    epi, p = _epilogue(rng, 64, 0, False, False)
    out = np.empty((Q.ROWS, 64), np.uint8)
    _quad_block(a, Q.pack_quads(w), epi, out)
    np.testing.assert_array_equal(out, _expected(a.astype(np.int64) @ w.astype(np.int64) + p["bias"], p, None))
    loops = fma_loops(_quad_block.inspect_asm(_quad_block.signatures[0]), "_quad_block", re.compile(r"^\s*(vpmaddubsw|vpdpbusd)\s"))
    assert max(f for f, _ in loops) >= Q.ROWS * Q.QUAD_TILE_VECTORS, loops
    assert all(stack == 0 for _, stack in loops), loops


def test_fits_quads_admits_exactly_the_weights_pmaddubsw_sums_exactly(monkeypatch):
    """Without ``vpdpbusd``: 7-bit weights and pairs summing to 128 in magnitude fit; 129, a
    weight outside int8 or an odd K's last row beyond 128 do not."""
    monkeypatch.setattr(isimd, "DOT_INSTRUCTION", None)
    assert Q.fits_quads(np.array([[64, -128], [-64, 0]]))
    assert Q.fits_quads(np.array([[-128], [0], [127]]))                   # odd K: a zero row appended
    assert not Q.fits_quads(np.array([[65, 0], [-64, 0]]))
    assert not Q.fits_quads(np.array([[0], [0], [-129]]))
    assert not Q.fits_quads(np.array([[200], [0]]))
    assert not Q.fits_quads(np.zeros((0, 4), np.int64))


def _nchw(x):
    return x.transpose(0, 3, 1, 2)


@EXAMPLES
@given(c=st.sampled_from([1, 3, 5, LANES, 2 * LANES]), co=st.sampled_from([1, 7, LANES, 4 * LANES + 3]),
       h=st.integers(1, 9), w=st.integers(1, 9), k=st.sampled_from([1, 2, 3]), stride=st.integers(1, 2),
       pad=st.integers(0, 1), seed=st.integers(0, 2**32 - 1), has_res=st.booleans(), clamp=st.booleans())
def test_qconv2d_equals_reference(c, co, h, w, k, stride, pad, seed, has_res, clamp):
    rng = np.random.default_rng(seed)
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    x, wq = _bytes(rng, (2, h, w, c)), rng.integers(-128, 128, (co, c, k, k)).astype(np.int8)
    zx = int(rng.integers(0, 256))
    epi, p = _epilogue(rng, co, zx * wq.astype(np.int32).sum((1, 2, 3)), has_res, clamp)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    res = _bytes(rng, (2, oh, ow, co))
    out = np.empty((2, oh, ow, co), np.uint8)
    packed = Q.pack_pairs(wq.transpose(2, 3, 1, 0).reshape(-1, co))
    Q.qconv2d(x, np.uint8(zx), packed, k, k, stride, stride, pad, pad, epi, res, out)
    acc = R.qconv_accumulate(_nchw(x), zx, wq, p["bias"], (stride, stride), (pad,) * 4)
    np.testing.assert_array_equal(_nchw(out), _expected(acc, p, _nchw(res) if has_res else None))


@EXAMPLES
@given(c=st.sampled_from([1, 3, 5, LANES]), co=st.sampled_from([1, 7, LANES, 4 * LANES + 3]),
       h=st.integers(1, 9), w=st.integers(1, 9), k=st.sampled_from([1, 2, 3]), stride=st.integers(1, 2),
       pad=st.integers(0, 1), seed=st.integers(0, 2**32 - 1), has_res=st.booleans())
def test_qconv2d_quads_equals_reference(c, co, h, w, k, stride, pad, seed, has_res):
    rng = np.random.default_rng(seed)
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    x = _bytes(rng, (2, h, w, c))
    rows = _quad_weights(rng, k * k * c, co)                     # (KH*KW*C) x Co, rows ky, kx, c
    wq = rows.reshape(k, k, c, co).transpose(3, 2, 0, 1)
    zx = int(rng.integers(0, 256))
    epi, p = _epilogue(rng, co, zx * rows.astype(np.int32).sum(0), has_res, False)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    res = _bytes(rng, (2, oh, ow, co))
    out = np.empty((2, oh, ow, co), np.uint8)
    Q.qconv2d_quads(x, np.uint8(zx), Q.pack_quads(rows), k, k, stride, stride, pad, pad, epi, res, out)
    acc = R.qconv_accumulate(_nchw(x), zx, wq, p["bias"], (stride, stride), (pad,) * 4)
    np.testing.assert_array_equal(_nchw(out), _expected(acc, p, _nchw(res) if has_res else None))


@EXAMPLES
@given(c=st.sampled_from([1, 3, LANES, 2 * LANES, 3 * LANES]), h=st.integers(1, 9), w=st.integers(1, 9),
       k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), pad=st.integers(0, 2),
       seed=st.integers(0, 2**32 - 1), has_res=st.booleans(), clamp=st.booleans())
def test_qdepthwise_equals_reference(c, h, w, k, stride, pad, seed, has_res, clamp):
    rng = np.random.default_rng(seed)
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    x, wq = _bytes(rng, (2, h, w, c)), rng.integers(-255, 256, (c, 1, k, k))   # less a zero point: -255..255
    zx = int(rng.integers(0, 256))
    epi, p = _epilogue(rng, c, 0, has_res, clamp)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    res = _bytes(rng, (2, oh, ow, c))
    out = np.empty((2, oh, ow, c), np.uint8)
    packed = Q.pack_depthwise(wq[:, 0].transpose(1, 2, 0), zx)
    Q.qdepthwise(x, np.int32(zx), *packed, stride, stride, pad, pad, epi, res, out)
    acc = R.qconv_accumulate(_nchw(x), zx, wq, p["bias"], (stride, stride), (pad,) * 4, group=c)
    np.testing.assert_array_equal(_nchw(out), _expected(acc, p, _nchw(res) if has_res else None))


def test_extreme_accumulators_round_and_saturate_as_the_reference():
    """Every byte times the extreme weights, with large multipliers: accumulators up to about
    2**22, values far outside the byte range and exact halves (m = 0.5 on odd sums)."""
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    w = np.array([[-128, 127, 1, -1] * 4] * 16, np.int8)
    for m in (0.5, 1.5, 1e-4, 3.0):
        epi, p = _epilogue(np.random.default_rng(1), 16, 0, False, False)
        epi = (epi[0] * 0,) + (np.full(16, m, F32),) + epi[2:]
        p["bias"], p["m"] = p["bias"] * 0, np.full(16, m, F32)
        out = np.empty((16, 16), np.uint8)
        Q.qgemm(a, Q.pack_pairs(w), epi, a, out)
        acc = a.astype(np.int64) @ w.astype(np.int64)
        np.testing.assert_array_equal(out, _expected(acc, p, None))


@EXAMPLES
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_quantize_dequantize_and_add_equal_reference(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10).astype(F32)
    x[: n // 4] = np.round(x[: n // 4]) + F32(0.5)             # exact halves, scale 1 below
    scale, z = F32(rng.choice([1.0, rng.random() * 0.2 + 1e-3])), int(rng.integers(0, 256))
    q = np.empty(n, np.uint8)
    Q.quantize(x, scale, np.int32(z), F32(-z), F32(255 - z), q)
    np.testing.assert_array_equal(q, R.quantize_linear(x, scale, z))
    back = np.empty(n, F32)
    Q.dequantize(q, scale, np.int32(z), back)
    np.testing.assert_array_equal(back, R.dequantize_linear(q, scale, z))
    b, out = _bytes(rng, n), np.empty(n, np.uint8)
    Q.qadd(q, np.int32(z), F32(0.3), b, np.int32(9), F32(1.7), F32(-40), F32(215), np.int32(40), out)
    np.testing.assert_array_equal(out, R.qadd(q, z, F32(0.3), b, 9, F32(1.7), -40, 215, 40))


def test_fits_quads_admits_every_int8_weight_with_vpdpbusd(monkeypatch):
    monkeypatch.setattr(isimd, "DOT_INSTRUCTION", ("llvm.x86.avx512.vpdpbusd.512", 16))
    assert Q.fits_quads(np.array([[65, 0], [-64, 0]]))
    assert Q.fits_quads(np.array([[-128, 127], [-128, 127]]))
    assert not Q.fits_quads(np.array([[200], [0]]))
    assert not Q.fits_quads(np.zeros((0, 4), np.int64))


@pytest.mark.skipif(isimd.DOT_INSTRUCTION is None, reason="no vpdpbusd on this target")
@EXAMPLES
@given(m=st.integers(1, 11), k=st.integers(1, 40), n=st.integers(1, 3 * LANES * 2 + 5),
       seed=st.integers(0, 2**32 - 1), has_res=st.booleans(), extreme=st.booleans())
def test_qgemm_quads_with_vpdpbusd_is_exact_for_any_int8_weights(m, k, n, seed, has_res, extreme):
    """Where the target has ``vpdpbusd`` (no 16-bit pair sums), weights past the pair bound,
    -128 beside -128 and rows of 255 among them (``extreme``): the reference's bits."""
    rng = np.random.default_rng(seed)
    a, w = _bytes(rng, (m, k)), rng.integers(-128, 128, (k, n)).astype(np.int8)
    if extreme:
        a[::2], w[::2] = 255, -128
    assert Q.fits_quads(w)
    _check_qgemm_quads(rng, a, w, has_res, False)


@pytest.mark.parametrize("n", [3, 8, 16, 40, 64, 130])
def test_pack_quads_puts_each_panel_at_k4_times_its_start(n):
    """``pack_quads``: panel (s, width) holds w[4q + t, n] at K4 * s + (q * width + n - s) * 4 + t."""
    k = 6
    w = np.random.default_rng(n).integers(-128, 128, (k, n)).astype(np.int8)
    packed, k4 = Q.pack_quads(w), k + -k % 4
    padded = np.zeros((k4, n), np.int8)
    padded[:k] = w
    panels = Q.quad_panels(n)
    assert [s for s, _ in panels] == sorted(s for s, _ in panels) and sum(width for _, width in panels) == n
    assert packed.size == k4 * n
    for s, width in panels:
        for col in range(s, s + width):
            for kk in range(k4):
                assert packed[k4 * s + ((kk // 4) * width + col - s) * 4 + kk % 4] == padded[kk, col]
