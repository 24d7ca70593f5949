"""Direct convolution (groups = 1) on NHWC maps, any kernel size and stride.

Layout: ``x`` is N x H x W x Ci, ``w`` is K x Co with K = KH*KW*Ci rounded up
to a multiple of the GEMM's k-unrolling with zero rows (packed at load time
from ONNX's Co x Ci x KH x KW, rows ordered ky, kx, ci), ``out`` is
N x OH x OW x Co.  With zero padding ``pt`` (top) and ``pl`` (left)::

    out[n, i, j, o] = epilogue(sum_{ky, kx, c} x[n, i*sh + ky - pt, j*sw + kx - pl, c]
                                                * w[(ky*KW + kx)*Ci + c, o])

Each output row is computed as a small matrix product: its OW input patches
are gathered into an OW x K matrix (zeros where the window leaves the map)
and multiplied by ``w`` with the register tiles of ``kernels.gemm``.  Used for
the stem conv (Ci = 3) and MTCNN's small convs; 1x1 convs go to ``gemm``
directly.  Output rows run in parallel.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import vector_activation
from tinyface.kernels.gemm import ROWS, gemm_rows


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
        for k in range(KH * KW * C, p.size):       # the zero padding of K (see ConvStep.pack)
            p[k] = 0.0


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def conv2d(x, w, kh, kw, sh, sw, pt, pl, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(conv(x, w)); shapes are checked by the caller."""
    N, OH, OW, CO = out.shape
    K = w.shape[0]
    act1, act2 = vector_activation(slope1, lo1, hi1), vector_activation(slope2, lo2, hi2)
    w_flat = w.reshape(-1)
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        patches = np.empty((OW, K), np.float32)
        _gather_patches(x, n, i, sh, sw, pt, pl, kh, kw, patches)
        orow = out[n, i]
        rrow = res[n, i] if has_res else res[0, 0]
        flat = (w_flat, orow.reshape(-1), rrow.reshape(-1))
        for m0 in range(0, OW, ROWS):
            gemm_rows(patches, w, orow, rrow, m0, min(ROWS, OW - m0), flat, bias, slope1, lo1, hi1, has_res,
                      slope2, lo2, hi2, act1, act2)
