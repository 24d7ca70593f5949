"""Direct convolution (groups = 1) on NHWC maps, any kernel size and stride.

Layout: ``x`` is N x H x W x Ci, ``w`` is K x Co with K = KH*KW*Ci (packed at
load time from ONNX's Co x Ci x KH x KW, rows ordered ky, kx, ci), ``out`` is
N x OH x OW x Co.  With zero padding ``pt`` (top) and ``pl`` (left)::

    out[n, i, j, o] = epilogue(sum_{ky, kx, c} x[n, i*sh + ky - pt, j*sw + kx - pl, c]
                                                * w[(ky*KW + kx)*Ci + c, o])

With a multiple of 64 output channels (the stem conv, MTCNN's wider convs) the
GEMM's register tile (``ROWS`` pixels x ``WINDOW_VECTORS`` vectors), as ``_window_tile``, reads the windows straight
from a zero-padded copy of ``x``: window row ky of output pixel j is KW*Ci
contiguous floats of the padded map, so the tile walks KH runs of them.
Otherwise each output row's OW input patches are gathered into an OW x K
matrix (zeros where the window leaves the map) and multiplied by ``w`` with
``gemm.gemm_rows``.  1x1 convs go to ``gemm`` directly.  Output rows run in
parallel.  Both tiles sum each output over (ky, kx, ci) in the same order,
one fused multiply-add per term (on the stem conv the two paths agree bit for
bit).
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import finish_rows, vector_activations, with_residual
from tinyface.kernels.gemm import ROWS, TILE_VECTORS, gemm_rows
from tinyface.kernels.simd import FAST, LANES, fma_rows, load_run, zeros_tile
from tinyface.kernels.tuning import DIRECT_CHANNELS    # the direct path takes multiples of this many output channels

# Its tile: the GEMM's widest that divides them, so that no narrower tile is needed (AVX2:
# 4 x 16, as 4 x 24 left 16 of every 64 channels to two latency-bound 4 x 8 tiles, and the
# stem conv ran 1.3x slower; AVX-512: 4 x 64).
WINDOW_VECTORS = max(v for v in range(1, TILE_VECTORS + 1) if DIRECT_CHANNELS % (v * LANES) == 0)


@numba.njit(inline="always", cache=True)
def _gather_patches(x, n, i, sh, sw, pt, pl, KH, KW, patches):
    """patches[j, (ky*KW + kx)*C + c] = x[n, i*sh + ky - pt, j*sw + kx - pl, c], or 0 outside."""
    _, H, W, C = x.shape
    OW = patches.shape[0]
    for j in range(OW):
        p = patches[j]
        for ky in range(KH):
            y = i * sh + ky - pt
            for kx in range(KW):
                xx = j * sw + kx - pl
                base = (ky * KW + kx) * C
                if y < 0 or y >= H or xx < 0 or xx >= W:
                    for c in range(C):
                        p[base + c] = 0.0
                else:
                    px = x[n, y, xx]
                    for c in range(C):
                        p[base + c] = px[c]


@numba.njit(inline="always", cache=True)
def _padded(x, OH, OW, KH, KW, sh, sw, pt, pl):
    """x inside a border of zeros, cut or padded to exactly what the output windows cover
    ((OH-1)*sh + KH rows, (OW-1)*sw + KW columns), flattened; with its height and width."""
    N, H, W, C = x.shape
    Hp, Wp = (OH - 1) * sh + KH, (OW - 1) * sw + KW
    xp = np.empty(N * Hp * Wp * C, np.float32)
    for t in range(xp.size):    # not np.zeros: in a parallel kernel that is a parallel loop to compile
        xp[t] = 0.0
    x_flat = np.ascontiguousarray(x).reshape(-1)
    x_lo, x_hi = max(0, -pl), min(W, Wp - pl)          # the input columns inside the padded map
    span = max(0, x_hi - x_lo) * C                    # 0 when every window lies in the padding
    for n in range(N):
        for y in range(max(0, -pt), min(H, Hp - pt)):
            # a loop, not a slice (inside a parallel kernel a slice copy becomes a parallel
            # region of its own: 88 us instead of 9 for the stem), over unsigned indices (so
            # that LLVM vectorises it)
            d = numba.uint64(((n * Hp + y + pt) * Wp + x_lo + pl) * C)
            s = numba.uint64(((n * H + y) * W + x_lo) * C)
            for t in range(numba.uint64(span)):
                xp[d + t] = x_flat[s + t]
    return xp, Hp, Wp


@numba.njit(inline="always", cache=True)
def _window_tile(xp, src, step, KH, span, row_len, w, N, n0, out, o, res, has_res, bias, act1, act2, vectors):
    """``ROWS`` output pixels x ``vectors`` vectors of channels from n0, read straight from
    the padded map ``xp`` (flat): window row ky of pixel r is the ``span`` floats at
    xp[src + r*step + ky*row_len].

    ``gemm._tile`` with this addressing of its left operand (the GEMM keeps its own
    copy: sharing this one cost the model's GEMMs 1-3 %, measured)."""
    acc = zeros_tile(ROWS, vectors)
    p = n0
    for ky in range(KH):
        b = src + ky * row_len
        for t in range(span):
            acc = fma_rows(xp, b + t, step, load_run(w, p, vectors), acc)
            p += N
    finish_rows(acc, n0, N, out, o, res, has_res, bias, act1, act2)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _conv2d_direct(x, w, kh, kw, sh, sw, pt, pl, epilogue, out):
    """``conv2d`` with the GEMM's register tiles reading each window straight from a zero-padded
    copy of ``x``: Co a multiple of ``DIRECT_CHANNELS`` and OW >= ROWS (a row's last tile may overlap the one
    before it, which recomputes the same values)."""
    N, OH, OW, CO = out.shape
    C = x.shape[3]
    bias, has_res = epilogue[0], epilogue[5]
    act1, act2 = vector_activations(epilogue)
    xp, Hp, Wp = _padded(x, OH, OW, kh, kw, sh, sw, pt, pl)
    w_flat, out_flat, res_flat = w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1)
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        for t in range((OW + ROWS - 1) // ROWS):
            j0 = min(ROWS * t, OW - ROWS)            # the last tile may overlap the one before
            src = ((n * Hp + i * sh) * Wp + j0 * sw) * C
            o = (row * OW + j0) * CO
            for n0 in range(0, CO, WINDOW_VECTORS * LANES):
                _window_tile(xp, src, sw * C, kh, kw * C, Wp * C, w_flat, CO, n0, out_flat, o + n0, res_flat,
                             has_res, bias, act1, act2, WINDOW_VECTORS)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _conv2d_patches(x, w, kh, kw, sh, sw, pt, pl, epilogue, out):
    """``conv2d`` through each output row's gathered patches and ``gemm.gemm_rows``."""
    N, OH, OW, CO = out.shape
    K = w.shape[0]
    res, has_res = epilogue[4], epilogue[5]
    act1, act2 = vector_activations(epilogue)
    w_flat = w.reshape(-1)
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        patches = np.empty((OW, K), np.float32)
        _gather_patches(x, n, i, sh, sw, pt, pl, kh, kw, patches)
        orow = out[n, i]
        rrow = res[n, i] if has_res else res[0, 0]
        flat = (w_flat, orow.reshape(-1), rrow.reshape(-1))
        row_epilogue = with_residual(epilogue, rrow)
        gemm_rows(patches, w, orow, 0, OW, flat, row_epilogue, act1, act2)



@numba.njit(cache=True)
def im2col(x, kh, kw, sh, sw, pt, pl, out):
    """The windows of a dense conv as the rows of a GEMM's left operand, on the calling thread:
    ``out`` is (N*OH) x OW x K, K = KH*KW*Ci, and

        out[n*OH + i, j, (ky*KW + kx)*Ci + c] = x[n, i*sh + ky - pt, j*sw + kx - pl, c]   (0 outside),

    so that ``gemm(out.reshape(-1, K), w, ...)`` is the conv with ``w`` packed as here (the
    rows of ``w`` in the same order).  ``runtime.deferred`` says when a conv runs so."""
    N = x.shape[0]
    OH = out.shape[0] // N
    for n in range(N):
        for i in range(OH):
            _gather_patches(x, n, i, sh, sw, pt, pl, kh, kw, out[n * OH + i])


def conv2d(x, w, kh, kw, sh, sw, pt, pl, epilogue, out):
    """out = epilogue(conv(x, w)); shapes are checked by the caller (see the module doc).
    The epilogue's residual is N x OH x OW x Co (any 4-D array when there is none)."""
    _, _, OW, CO = out.shape
    kernel = _conv2d_direct if CO % DIRECT_CHANNELS == 0 and OW >= ROWS else _conv2d_patches
    kernel(x, w, kh, kw, sh, sw, pt, pl, epilogue, out)
