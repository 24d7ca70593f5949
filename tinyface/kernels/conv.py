"""Direct convolution (groups = 1) on NHWC maps, any kernel size and stride.

Layout: ``x`` is N x H x W x Ci, ``w`` is KH x KW x Ci x Co (packed at load
time from ONNX's Co x Ci x KH x KW), ``out`` is N x OH x OW x Co.  With zero
padding ``pt`` (top) and ``pl`` (left)::

    out[n, i, j, o] = epilogue(sum_{ky, kx, c} x[n, i*sh + ky - pt, j*sw + kx - pl, c]
                                                * w[ky, kx, c, o])

Used for the stem conv (Ci = 3) and the small MTCNN convs; 1x1 convs go to
``gemm`` instead.  Output rows are independent and run in parallel.
"""
import numba
from numba import prange

from tinyface.kernels.epilogue import activate


@numba.njit(parallel=True, cache=True)
def conv2d(x, w, sh, sw, pt, pl, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(conv(x, w)); shapes are checked by the caller."""
    N, H, W, C = x.shape
    KH, KW, _, CO = w.shape
    _, OH, OW, _ = out.shape
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        for j in range(OW):
            o = out[n, i, j]
            for co in range(CO):
                o[co] = bias[co]
            for ky in range(KH):
                y = i * sh + ky - pt
                if y < 0 or y >= H:
                    continue
                for kx in range(KW):
                    xx = j * sw + kx - pl
                    if xx < 0 or xx >= W:
                        continue
                    px = x[n, y, xx]
                    wk = w[ky, kx]
                    for c in range(C):
                        v = px[c]
                        wc = wk[c]
                        for co in range(CO):
                            o[co] += v * wc[co]
            for co in range(CO):
                v = activate(o[co], slope1[co], lo1, hi1)
                if has_res:
                    v += res[n, i, j, co]
                o[co] = activate(v, slope2[co], lo2, hi2)
