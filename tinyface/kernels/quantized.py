"""8-bit kernels: integer convolutions with requantisation, Quantize, Dequantize, Add.

Activations are uint8 with a zero point (an int8 tensor of the model is held as
uint8 by adding 128 to it and to its zero point: the differences x - z, which
are all the arithmetic uses, do not change), weights less their zero point
(-255..255, int16 or int32), accumulators int32, which cannot overflow within
``graph.ops.QUANTIZED_MAX_TERMS`` products per output (lowering refuses more).  Every conv-like kernel computes, for output channel c::

    acc[c] = bias[c] + sum_k (x[k] - zx) * w[k, c]                    exact, int32
    q      = roundeven(min(max(float32(acc) * m[c], lo), hi)) + z     (isimd.requantize)

``m[c]`` = x_scale * w_scale[c] / y_scale (float32, as onnxruntime forms it),
``lo``/``hi`` the output's clamp minus ``z`` (the byte range 0..255, narrowed by
a fused ReLU/Clip).  With a fused residual Add (``has_res``) the result ``q``
(the conv's own quantised output) is then added to the residual byte ``r``::

    out = roundeven(min(max(float32(q - zq) * sq + float32(r - zr) * sr, lo2), hi2)) + z2

The integer sums are exact, so every summation order gives the same bits and
the NumPy reference (``reference.quantized``) equals the kernels bit for bit.

Layouts: maps N x H x W x C (NHWC) uint8.  GEMM weights are packed in k pairs
(``pack_pairs``): int16, flat, w16[(p * N + n) * 2 + t] = w[2p + t, n], a zero
row appended to an odd K; ``x - zx`` is folded into the bias for the GEMM and
the dense conv (bias' = bias - zx * sum_k w[k, c]), and the depthwise conv starts each
sum at zsum[c] = -zx * (the sum of channel c's weights); both read the padding as zx,
whose products that share cancels.

``qgemm`` widens each block of 4 rows to pairs of 16-bit activations in one
32-bit word (``_widen_rows``), then computes the bulk in register tiles of
4 rows x ``TILE_VECTORS`` int32 vectors (``gemm.tile_vectors``): per k pair,
``TILE_VECTORS`` loads of weight pairs and four broadcast loads of activation
pairs feed ``4 * TILE_VECTORS`` pair multiply-adds (``isimd.madd_run``); then the epilogue runs in registers
and each vector is stored as bytes.  Columns left over (N mod LANES) and rows
(M mod 4) take a scalar loop with the same arithmetic.

``qgemm_quads`` and ``qconv2d_quads`` take weights that ``fits_quads`` admits
(7-bit weights, as onnxruntime's ``reduce_range`` makes them), packed in k quads
and column panels (``pack_quads``: int8, flat; the panel of columns s..s+width-1 holds
w[4q + t, n] at K4 * s + (q * width + n - s) * 4 + t, K4 = K with zero rows appended
up to a multiple of 4), so a tile reads its weights in order.  They read the activation
bytes as they are, four at a time (``isimd.madd_quads_run``): per k quad, ``QUAD_TILE_VECTORS`` weight
loads and four broadcasts of four bytes feed ``4 * QUAD_TILE_VECTORS`` quad
multiply-adds, twice the products of a pair step; no rows are widened.  Rows left
over (M mod 4) take one-row tiles, columns left over (N mod LANES) a scalar loop.
Both forms give the same bytes: the sums are exact in either.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels import isimd
from tinyface.kernels.gemm import tile_vectors
from tinyface.kernels.isimd import (add_requantized, iadd, iload, izeros_run, madd_quads_run, madd_run, madd_taps_run,
                                    requantize, store_u8)
from tinyface.kernels.simd import LANES, REGISTERS, load
from tinyface.kernels.tuning import MAX_TILE_VECTORS

ROWS = 4                                # rows per register tile
TILE_VECTORS = tile_vectors(REGISTERS, ROWS)
TILE_COLUMNS = TILE_VECTORS * LANES
# A quad step holds, besides the 4 x v accumulators, v weight vectors, the broadcast
# bytes, the vector of 16-bit ones and one product: AVX2 (16 registers) 2 vectors, AVX-512 4.
QUAD_TILE_VECTORS = max(1, min(MAX_TILE_VECTORS, (REGISTERS - 3) // (ROWS + 1)))
QUAD_TILE_COLUMNS = QUAD_TILE_VECTORS * LANES


def pack_pairs(w):
    """K x N integer weights as the GEMM reads them: int16, k in pairs, flat (see the module)."""
    k, n = w.shape
    padded = np.zeros((k + k % 2, n), np.int16)
    padded[:k] = w
    return np.ascontiguousarray(padded.reshape(-1, 2, n).transpose(0, 2, 1)).reshape(-1)


@numba.njit(inline="always", cache=True)
def _round_clamped(y, lo, hi, z):
    """roundeven(min(max(y, lo), hi)) + z for a float32 ``y``."""
    if y < lo:
        y = lo
    if y > hi:
        y = hi
    return np.int32(np.rint(y)) + z


@numba.njit(inline="always", cache=True)
def requantize_scalar(acc, m, lo, hi, z):
    """``isimd.requantize`` on one accumulator."""
    return _round_clamped(np.float32(acc) * m, lo, hi, z)


@numba.njit(inline="always", cache=True)
def add_scalar(q, zq, sq, r, zr, sr, lo, hi, z):
    """``isimd.add_requantized`` on one pair of values."""
    return _round_clamped(np.float32(q - zq) * sq + np.float32(np.int32(r) - zr) * sr, lo, hi, z)


@numba.njit(inline="always", cache=True)
def _tile(a, P, a0, w, N, n0, epi, out, o, res, vectors):
    """Rows a0.. a0+3 (offsets a0 + r*P of the flat pair array ``a``, P pairs a row) times
    columns n0.. of w, with the epilogue, stored at out[o + r*N + ...]; ``vectors`` a
    compile-time constant."""
    c0 = c1 = c2 = c3 = izeros_run(vectors)
    for p in range(P):
        wi = (p * N + n0) * 2
        k = a0 + p
        c0 = madd_run(a[k], w, wi, c0)
        c1 = madd_run(a[k + P], w, wi, c1)
        c2 = madd_run(a[k + 2 * P], w, wi, c2)
        c3 = madd_run(a[k + 3 * P], w, wi, c3)
    _finish_tile(c0, c1, c2, c3, n0, N, epi, out, o, res, vectors)


@numba.njit(inline="always", cache=True)
def _finish_tile(c0, c1, c2, c3, n0, N, epi, out, o, res, vectors):
    """``_finish`` of a tile's four rows of ``vectors`` vectors, columns n0.., rows N apart at out[o]."""
    for v in range(vectors):
        n = n0 + v * LANES
        _finish(c0[v], n, epi, out, o + n, res)
        _finish(c1[v], n, epi, out, o + N + n, res)
        _finish(c2[v], n, epi, out, o + 2 * N + n, res)
        _finish(c3[v], n, epi, out, o + 3 * N + n, res)


@numba.njit(inline="always", cache=True)
def _finish(acc, n, epi, out, o, res):
    """Bias, requantisation, residual and store of one vector of channels n.. at out[o]."""
    bias, m, lo, hi, z, has_res, zq, sq, zr, sr, lo2, hi2, z2 = epi
    q = requantize(iadd(acc, iload(bias, n)), load(m, n), lo, hi, z)
    if has_res:
        q = add_requantized(q, zq, sq, res, o, zr, sr, lo2, hi2, z2)
    store_u8(out, o, q)


@numba.njit(cache=True)
def _scalar_block(a, P, a0, rows, w, N, n_lo, epi, out, o, res):
    """What the tiles leave: ``rows`` rows from a0 (flat pair offsets, rows P apart) times
    columns n_lo..N-1, one output at a time, the same arithmetic as ``_finish``."""
    bias, m, lo, hi, z, has_res, zq, sq, zr, sr, lo2, hi2, z2 = epi
    for r in range(rows):
        for n in range(n_lo, N):
            acc = bias[n]
            for p in range(P):
                pair = a[a0 + r * P + p]
                wi = (p * N + n) * 2
                acc += np.int32(pair & 0xFFFF) * np.int32(w[wi]) + np.int32(pair >> 16) * np.int32(w[wi + 1])
            q = requantize_scalar(acc, m[n], lo, hi, z)
            at = o + r * N + n
            if has_res:
                q = add_scalar(q, zq, sq, res[at], zr, sr, lo2, hi2, z2)
            out[at] = q


@numba.njit(inline="always", cache=True)
def gemm_rows(a, P, a0, rows, w, N, epi, out, o, res):
    """out[o + r*N + n] for r < rows (<= ROWS) of the flat pair array ``a`` from a0, all n."""
    if rows == ROWS:
        n_tiled = N - N % LANES
        n_wide = n_tiled - n_tiled % TILE_COLUMNS
        for n0 in range(0, n_wide, TILE_COLUMNS):
            _tile(a, P, a0, w, N, n0, epi, out, o, res, TILE_VECTORS)
        for n0 in range(n_wide, n_tiled, LANES):
            _tile(a, P, a0, w, N, n0, epi, out, o, res, 1)
        if n_tiled < N:
            _scalar_block(a, P, a0, rows, w, N, n_tiled, epi, out, o, res)
    else:
        _scalar_block(a, P, a0, rows, w, N, 0, epi, out, o, res)


def fits_quads(w):
    """Whether the K x N integer weights (less their zero point) may be packed in quads:
    all in -128..127 and, unless the target has ``vpdpbusd`` (``isimd.DOT_INSTRUCTION``:
    exact for all), in every column each pair of rows 2p, 2p + 1 with |w0| + |w1| <= 128,
    so that x86's ``pmaddubsw`` cannot saturate (``isimd``)."""
    w = np.asarray(w, np.int64)
    if w.size == 0 or w.min() < -128 or w.max() > 127:
        return False
    if isimd.DOT_INSTRUCTION is not None:
        return True
    w = np.abs(w)
    if len(w) % 2:
        w = np.vstack([w, np.zeros((1, w.shape[1]), np.int64)])
    return bool((w[0::2] + w[1::2]).max() <= 128)


def quad_columns(N):
    """The columns N - N mod LANES that the quad tiles take, and of them the ``n_wide``
    that the wide tiles take (``QUAD_TILE_COLUMNS`` at a time)."""
    n_tiled = N - N % LANES
    return n_tiled, n_tiled - n_tiled % QUAD_TILE_COLUMNS


quad_columns_in_kernel = numba.njit(inline="always", cache=True)(quad_columns)


def quad_panels(N):
    """The column panels (start, width) of ``pack_quads``, in order: ``QUAD_TILE_COLUMNS``
    wide as far as the wide tiles go, then ``LANES`` wide up to N - N mod LANES, then the
    columns left (the scalar loop's) as one panel."""
    n_tiled, n_wide = quad_columns(N)
    panels = [(s, QUAD_TILE_COLUMNS) for s in range(0, n_wide, QUAD_TILE_COLUMNS)]
    panels += [(s, LANES) for s in range(n_wide, n_tiled, LANES)]
    return panels + ([(n_tiled, N - n_tiled)] if n_tiled < N else [])


def pack_quads(w):
    """K x N integer weights as the quad kernels read them: int8, k in quads, in column
    panels, flat (see the module)."""
    k, n = w.shape
    padded = np.zeros((k + -k % 4, n), np.int8)
    padded[:k] = w
    quads = padded.reshape(-1, 4, n).transpose(0, 2, 1)           # quad x column x 4
    return np.concatenate([quads[:, s:s + width].reshape(-1) for s, width in quad_panels(n)])


@numba.njit(inline="always", cache=True)
def _quad_at(K4, N, n):
    """Byte offset of column n's first quad in ``pack_quads``' layout, and its panel's width
    (the step from one quad of k to the next is 4 * width)."""
    n_tiled, n_wide = quad_columns_in_kernel(N)
    if n < n_wide:
        s, width = n - n % QUAD_TILE_COLUMNS, QUAD_TILE_COLUMNS
    elif n < n_tiled:
        s, width = n - (n - n_wide) % LANES, LANES
    else:
        s, width = n_tiled, N - n_tiled
    return K4 * s + 4 * (n - s), width


@numba.njit(inline="always", cache=True)
def _quad_tile(a, K4, a0, w, N, n0, epi, out, o, res, vectors):
    """Rows at the flat byte offsets a0, a0 + K4, a0 + 2*K4, a0 + 3*K4 of ``a`` (K4 bytes a
    row, a multiple of 4) times columns n0.. of the quads ``w``, with the epilogue, stored at
    out[o + r*N + ...]; ``vectors`` a compile-time constant."""
    c0 = c1 = c2 = c3 = izeros_run(vectors)
    w0, width = _quad_at(K4, N, n0)
    for k in range(a0, a0 + K4, 4):
        wi = w0 + (k - a0) * width
        c0 = madd_quads_run(a, k, w, wi, c0)
        c1 = madd_quads_run(a, k + K4, w, wi, c1)
        c2 = madd_quads_run(a, k + 2 * K4, w, wi, c2)
        c3 = madd_quads_run(a, k + 3 * K4, w, wi, c3)
    _finish_tile(c0, c1, c2, c3, n0, N, epi, out, o, res, vectors)


@numba.njit(inline="always", cache=True)
def _quad_row(a, K4, a0, w, N, n0, epi, out, o, res):
    """``_quad_tile`` for the one row at a0, one vector of columns n0.."""
    (acc,) = izeros_run(1)
    w0, width = _quad_at(K4, N, n0)
    for k in range(a0, a0 + K4, 4):
        (acc,) = madd_quads_run(a, k, w, w0 + (k - a0) * width, (acc,))
    _finish(acc, n0, epi, out, o + n0, res)


@numba.njit(cache=True)
def _scalar_quads(a, K4, a0, rows, w, N, n_lo, epi, out, o, res):
    """Columns n_lo..N-1 of ``rows`` rows from a0 (flat byte offsets, rows K4 apart), one
    output at a time, the same arithmetic as ``_finish``."""
    bias, m, lo, hi, z, has_res, zq, sq, zr, sr, lo2, hi2, z2 = epi
    for r in range(rows):
        for n in range(n_lo, N):
            acc = bias[n]
            w0, width = _quad_at(K4, N, n)
            for k in range(K4):
                acc += np.int32(a[a0 + r * K4 + k]) * np.int32(w[w0 + (k - k % 4) * width + k % 4])
            q = requantize_scalar(acc, m[n], lo, hi, z)
            at = o + r * N + n
            if has_res:
                q = add_scalar(q, zq, sq, res[at], zr, sr, lo2, hi2, z2)
            out[at] = q


@numba.njit(inline="always", cache=True)
def quad_rows(a, K4, a0, rows, w, N, epi, out, o, res):
    """out[o + r*N + n] for r < rows (<= ROWS) of the flat bytes ``a`` from a0 (K4 a row),
    all n, from the quads ``w``."""
    n_tiled, n_wide = quad_columns_in_kernel(N)
    if rows == ROWS:
        for n0 in range(0, n_wide, QUAD_TILE_COLUMNS):
            _quad_tile(a, K4, a0, w, N, n0, epi, out, o, res, QUAD_TILE_VECTORS)
        for n0 in range(n_wide, n_tiled, LANES):
            _quad_tile(a, K4, a0, w, N, n0, epi, out, o, res, 1)
    else:
        for r in range(rows):
            for n0 in range(0, n_tiled, LANES):
                _quad_row(a, K4, a0 + r * K4, w, N, n0, epi, out, o + r * N, res)
    if n_tiled < N:
        _scalar_quads(a, K4, a0, rows, w, N, n_tiled, epi, out, o, res)


@numba.njit(inline="always", cache=True)
def _widen_rows(a, m0, rows, K, pairs):
    """pairs[r * P + p] = a[m0 + r, 2p] | a[m0 + r, 2p + 1] << 16 for r < rows (P = pairs a row,
    the last pair of an odd K holding a zero): each byte widened to the 16-bit half of its
    pair (little-endian, as on every target Numba runs on: the low half first), a loop LLVM
    vectorises."""
    P = (K + 1) // 2
    halves = pairs.view(np.uint16)
    for r in range(rows):
        row = a[m0 + r]
        out = halves[2 * r * P:2 * r * P + K]
        for k in range(K):
            out[k] = row[k]
        if K % 2:
            halves[2 * r * P + K] = 0


@numba.njit(parallel=True, cache=True)
def qgemm(a, w, epi, res, out):
    """out (M x N uint8) = epilogue(a (M x K uint8) @ w (K x N, ``pack_pairs``)); ``epi`` is
    (bias', m, lo, hi, z, has_res, zq, sq, zr, sr, lo2, hi2, z2) and ``res`` the M x N
    residual bytes (read when has_res).  Each block of rows is first widened to pairs."""
    M, K = a.shape
    N = out.shape[1]
    P = (K + 1) // 2
    out_flat, res_flat = out.reshape(-1), res.reshape(-1)
    for b in prange((M + ROWS - 1) // ROWS):
        m0 = b * ROWS
        rows = min(ROWS, M - m0)
        pairs = np.empty(ROWS * P, np.uint32)
        _widen_rows(a, m0, rows, K, pairs)
        gemm_rows(pairs, P, 0, rows, w, N, epi, out_flat, m0 * N, res_flat)


@numba.njit(parallel=True, cache=True)
def qgemm_quads(a, w, epi, res, out):
    """``qgemm`` with weights in quads (``pack_quads``): rows of ``a`` (C-contiguous) are read
    in place where K is a multiple of 4, else each block of rows is first copied with zero
    bytes up to one."""
    M, K = a.shape
    N = out.shape[1]
    K4 = K + -K % 4
    out_flat, res_flat, a_flat = out.reshape(-1), res.reshape(-1), a.reshape(-1)
    for b in prange((M + ROWS - 1) // ROWS):
        m0 = b * ROWS
        rows = min(ROWS, M - m0)
        if K4 == K:
            quad_rows(a_flat, K, m0 * K, rows, w, N, epi, out_flat, m0 * N, res_flat)
        else:
            block = np.zeros(ROWS * K4, np.uint8)
            for r in range(rows):
                block[r * K4:r * K4 + K] = a[m0 + r]
            quad_rows(block, K4, 0, rows, w, N, epi, out_flat, m0 * N, res_flat)


@numba.njit(inline="always", cache=True)
def _gather_windows(x, n, i, zx, kh, kw, sh, sw, pt, pl, patches):
    """patches[j, (ky*kw + kx)*C + c] = x[n, i*sh + ky - pt, j*sw + kx - pl, c], zx in the
    padding: output row i's windows as rows of bytes (columns past KH*KW*C left alone)."""
    _, H, W, C = x.shape
    for j in range(patches.shape[0]):
        for ky in range(kh):
            y = i * sh + ky - pt
            for kx in range(kw):
                xx = j * sw + kx - pl
                base = (ky * kw + kx) * C
                inside = 0 <= y < H and 0 <= xx < W
                for c in range(C):
                    patches[j, base + c] = x[n, y, xx, c] if inside else zx


@numba.njit(parallel=True, cache=True)
def qconv2d(x, zx, w, kh, kw, sh, sw, pt, pl, epi, res, out):
    """Dense conv: each output row's windows gathered into a (OW x KH*KW*C) byte matrix
    (zx in the padding), widened to pairs and multiplied by ``qgemm``'s rows; ``w`` packed
    from the (KH*KW*C) x Co weight, rows ordered ky, kx, c."""
    N, _, _, C = x.shape
    _, OH, OW, CO = out.shape
    K = kh * kw * C
    P = (K + 1) // 2
    out_flat, res_flat = out.reshape(-1), res.reshape(-1)
    for row in prange(N * OH):
        patches = np.empty((OW, K), np.uint8)
        _gather_windows(x, row // OH, row % OH, zx, kh, kw, sh, sw, pt, pl, patches)
        pairs = np.empty(OW * P, np.uint32)
        _widen_rows(patches, 0, OW, K, pairs)
        for m0 in range(0, OW, ROWS):
            gemm_rows(pairs, P, m0 * P, min(ROWS, OW - m0), w, CO, epi, out_flat, (row * OW + m0) * CO, res_flat)


@numba.njit(parallel=True, cache=True)
def qconv2d_quads(x, zx, w, kh, kw, sh, sw, pt, pl, epi, res, out):
    """``qconv2d`` with weights in quads (``pack_quads``): the windows' rows of bytes, zero
    bytes up to a multiple of 4, multiplied as they are."""
    N, _, _, C = x.shape
    _, OH, OW, CO = out.shape
    K = kh * kw * C
    K4 = K + -K % 4
    out_flat, res_flat = out.reshape(-1), res.reshape(-1)
    for row in prange(N * OH):
        patches = np.zeros((OW, K4), np.uint8)
        _gather_windows(x, row // OH, row % OH, zx, kh, kw, sh, sw, pt, pl, patches)
        flat = patches.reshape(-1)
        for m0 in range(0, OW, ROWS):
            quad_rows(flat, K4, m0 * K4, min(ROWS, OW - m0), w, CO, epi, out_flat, (row * OW + m0) * CO, res_flat)


@numba.njit(inline="always", cache=True)
def _tap_pairs(accs, x, base, taps, pairs, wp, C, c0):
    """``accs`` plus the window's taps two at a time from the flat map offset ``base``
    (``taps``: each tap's offset), channels c0.. (``isimd.madd_taps_run``)."""
    for p in range(pairs):
        accs = madd_taps_run(accs, x, base + taps[2 * p] + c0, base + taps[2 * p + 1] + c0, wp, (p * C + c0) * 2)
    return accs


@numba.njit(inline="always", cache=True)
def _padded_rows(x, n, y0, zx, pl, rows, PW, band):
    """band[(r * PW + xx) * C + c] = x[n, y0 + r, xx - pl, c] for r < rows, zx where that lies
    outside the map: the input rows one output row's windows read, padded."""
    _, H, W, C = x.shape
    x_flat = x.reshape(-1)
    lo, hi = min(pl, PW), min(pl + W, PW)           # the band's columns inside the map
    for r in range(rows):
        y = y0 + r
        o = r * PW * C
        if 0 <= y < H:
            band[o:o + lo * C] = zx
            src = ((n * H + y) * W + lo - pl) * C
            band[o + lo * C:o + hi * C] = x_flat[src:src + (hi - lo) * C]
            band[o + hi * C:o + PW * C] = zx
        else:
            band[o:o + PW * C] = zx


@numba.njit(parallel=True, cache=True)
def qdepthwise(x, zx, w, wp, zsum, sh, sw, pt, pl, epi, res, out):
    """Depthwise conv: out[n, i, j, c] from bias[c] + the taps inside the map of
    (x - zx) * w[ky, kx, c]; ``w`` int32 KH x KW x C.

    Where C is a multiple of LANES, each output row first copies the KH input rows its
    windows read into a band padded with zx (``_padded_rows``): a tap in the padding then
    adds zx * w, which the zero point's share cancels, so every window takes one path, its
    taps in pairs on the raw bytes (``_tap_pairs``; ``wp`` = ``pack_pairs`` of the
    (KH*KW) x C weights, taps in ky, kx order), plus ``zsum[c]`` = -zx * (the sum of
    channel c's weights): two channel vectors at a time when C is a multiple of 2 * LANES,
    else one.  Other channel counts take a scalar loop over the taps inside the map."""
    N, H, W, C = x.shape
    KH, KW, _ = w.shape
    _, OH, OW, _ = out.shape
    bias, m, lo, hi, z, has_res, zq, sq, zr, sr, lo2, hi2, z2 = epi
    out_flat, res_flat = out.reshape(-1), res.reshape(-1)
    if C % LANES == 0:
        wide = C % (2 * LANES) == 0
        PW = (OW - 1) * sw + KW                   # the band's width: every column a window reads
        T = KH * KW
        pairs = (T + 1) // 2
        taps = np.empty(T + 1, np.int64)
        for t in range(T):
            taps[t] = ((t // KW) * PW + t % KW) * C
        taps[T] = taps[T - 1]              # the second of an odd count's last pair: weight 0
        for row in prange(N * OH):
            band = np.empty(KH * PW * C, np.uint8)
            _padded_rows(x, row // OH, row % OH * sh - pt, zx, pl, KH, PW, band)
            for j in range(OW):
                base = j * sw * C
                o = (row * OW + j) * C
                if wide:
                    for c0 in range(0, C, 2 * LANES):
                        a0, a1 = _tap_pairs((iload(zsum, c0), iload(zsum, c0 + LANES)), band, base, taps, pairs,
                                            wp, C, c0)
                        _finish(a0, c0, epi, out_flat, o + c0, res_flat)
                        _finish(a1, c0 + LANES, epi, out_flat, o + c0 + LANES, res_flat)
                else:
                    for c0 in range(0, C, LANES):
                        (acc,) = _tap_pairs((iload(zsum, c0),), band, base, taps, pairs, wp, C, c0)
                        _finish(acc, c0, epi, out_flat, o + c0, res_flat)
    else:
        for row in prange(N * OH):
            n = row // OH
            i = row % OH
            y_lo, y_hi = max(0, pt - i * sh), min(KH, H + pt - i * sh)
            for j in range(OW):
                x_lo, x_hi = max(0, pl - j * sw), min(KW, W + pl - j * sw)
                o = (row * OW + j) * C
                for c in range(C):
                    acc = bias[c]
                    for ky in range(y_lo, y_hi):
                        for kx in range(x_lo, x_hi):
                            acc += (np.int32(x[n, i * sh + ky - pt, j * sw + kx - pl, c]) - zx) * w[ky, kx, c]
                    q = requantize_scalar(acc, m[c], lo, hi, z)
                    if has_res:
                        q = add_scalar(q, zq, sq, res_flat[o + c], zr, sr, lo2, hi2, z2)
                    out_flat[o + c] = q


def pack_depthwise(w, zx):
    """A depthwise weight (KH x KW x C, less its zero point) as ``qdepthwise`` takes it:
    (int32 KH x KW x C, the taps' pairs ``pack_pairs`` of (KH*KW) x C, zsum = -zx * the
    sum of each channel's weights as int32)."""
    kh, kw, c = w.shape
    taps = w.reshape(kh * kw, c).astype(np.int64)
    return (np.ascontiguousarray(w, np.int32), pack_pairs(taps),
            (-int(zx) * taps.sum(0)).astype(np.int32))


@numba.njit(parallel=True, cache=True)
def quantize(x, scale, z, lo, hi, out):
    """out = roundeven(min(max(x / scale, lo), hi)) + z, x float32 and out uint8, flat
    (onnxruntime's QuantizeLinear divides by the scale)."""
    for i in prange(x.size):
        out[i] = _round_clamped(x[i] / scale, lo, hi, z)


@numba.njit(parallel=True, cache=True)
def dequantize(q, scale, z, out):
    """out = float32(q - z) * scale, q uint8 and out float32, flat."""
    for i in prange(q.size):
        out[i] = np.float32(np.int32(q[i]) - z) * scale


@numba.njit(parallel=True, cache=True)
def qadd(a, za, sa, b, zb, sb, lo, hi, z, out):
    """out = roundeven(min(max(float32(a - za) * sa + float32(b - zb) * sb, lo), hi)) + z,
    all uint8 and flat (``add_scalar``)."""
    for i in prange(a.size):
        out[i] = add_scalar(np.int32(a[i]), za, sa, b[i], zb, sb, lo, hi, z)

