"""Affine warp of uint8 images with bilinear sampling.

Layout: ``src`` is H x W x C uint8, ``out`` is OH x OW x C uint8 and ``inv`` is
the 2 x 3 float64 matrix that maps output coordinates to input coordinates.
Integer coordinates are pixel centres: (x, y) is the centre of ``src[y, x]``.
For each output pixel (x, y)::

    (sx, sy) = inv @ (x, y, 1)
    x0 = floor(sx), fx = sx - x0        (and y0, fy likewise)
    v = (1-fx)(1-fy) I[y0, x0]   + fx(1-fy) I[y0, x0+1]
      + (1-fx)fy     I[y0+1, x0] + fx fy    I[y0+1, x0+1]
    out[y, x] = floor(v + 0.5)

where ``I`` is ``src`` extended by zeros outside the image (a constant border
of 0, as OpenCV's ``warpAffine`` with ``BORDER_CONSTANT``).  The caller
validates shapes and dtypes; Numba does not bounds-check.
"""
import numba
import numpy as np


@numba.njit(cache=True)
def warp_affine_bilinear(src, inv, out):
    H, W, C = src.shape
    OH, OW, _ = out.shape
    for y in range(OH):
        for x in range(OW):
            sx = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
            sy = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
            fx0 = np.floor(sx)
            fy0 = np.floor(sy)
            # All four taps outside (this also catches NaN and huge values,
            # before they are cast to int): the pixel is 0.
            if not (-1.0 <= fx0 < W and -1.0 <= fy0 < H):
                for c in range(C):
                    out[y, x, c] = 0
                continue
            x0 = int(fx0)
            y0 = int(fy0)
            fx = sx - fx0
            fy = sy - fy0
            w00 = (1.0 - fx) * (1.0 - fy)
            w01 = fx * (1.0 - fy)
            w10 = (1.0 - fx) * fy
            w11 = fx * fy
            left = x0 >= 0
            right = x0 + 1 < W
            top = y0 >= 0
            bottom = y0 + 1 < H
            for c in range(C):
                v = 0.0
                if top and left:
                    v += w00 * src[y0, x0, c]
                if top and right:
                    v += w01 * src[y0, x0 + 1, c]
                if bottom and left:
                    v += w10 * src[y0 + 1, x0, c]
                if bottom and right:
                    v += w11 * src[y0 + 1, x0 + 1, c]
                out[y, x, c] = min(255, int(np.floor(v + 0.5)))
