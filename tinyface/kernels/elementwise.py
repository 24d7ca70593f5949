"""Element-wise kernels on arrays whose last axis is the channel axis.

``x`` and ``out`` are viewed as R x C (rows x channels; an NHWC map is
N*H*W x C, a 2-D FC output is N x C):

* ``scale_shift``: out = act(x * scale[c] + shift[c])   (unfolded BatchNorm,
  constant Mul/Add/Sub/Div, standalone activations with scale 1 and shift 0)
* ``add``:         out = act(x + y)                     (an Add of two tensors)
"""
import numba
from numba import prange

from tinyface.kernels.epilogue import activate


@numba.njit(parallel=True, cache=True)
def scale_shift(x, scale, shift, slope, lo, hi, out):
    R, C = x.shape
    for r in prange(R):
        for c in range(C):
            out[r, c] = activate(x[r, c] * scale[c] + shift[c], slope[c], lo, hi)


@numba.njit(parallel=True, cache=True)
def add(x, y, slope, lo, hi, out):
    R, C = x.shape
    for r in prange(R):
        for c in range(C):
            out[r, c] = activate(x[r, c] + y[r, c], slope[c], lo, hi)
