"""Layout conversion at the ONNX boundary: NCHW <-> NHWC (pure data movement).

``to_nhwc(x, out)``: out[n, i, j, c] = x[n, c, i, j], for the graph input;
``to_nchw(x, out)``: out[n, c, i, j] = x[n, i, j, c], for 4-D graph outputs.

NumPy's strided copy is slow when the contiguous axis of the result is short
(3 channels at the input: 45 us for a 112x112 face); these loops read each
source row once and write it with a channel stride (10 us).
"""
import numba


@numba.njit(cache=True)
def to_nhwc(x, out):
    N, C, H, W = x.shape
    for n in range(N):
        for i in range(H):
            o = out[n, i]
            for c in range(C):
                src = x[n, c, i]
                for j in range(W):
                    o[j, c] = src[j]


@numba.njit(cache=True)
def to_nchw(x, out):
    N, H, W, C = x.shape
    for n in range(N):
        for c in range(C):
            o = out[n, c]
            for i in range(H):
                src = x[n, i]
                for j in range(W):
                    o[i, j] = src[j, c]
