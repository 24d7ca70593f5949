"""The conv epilogue: what happens to an accumulator before it is stored.

Every conv-like kernel (direct conv, depthwise, GEMM) ends each output value
``y`` (channel ``c``) with the same fused sequence, taken from the graph at load
time (see ``tinyface.graph.passes``)::

    y = y + bias[c]
    y = act(y, slope1[c], lo1, hi1)        # activation before a residual add
    y = y + residual                       # only when has_res
    y = act(y, slope2[c], lo2, hi2)        # activation after it

with one activation form that covers every supported activation::

    act(y, slope, lo, hi) = min(max(y if y >= 0 else slope * y, lo), hi)

ReLU is (slope 1, lo 0, hi +inf), ReLU6/Clip is (slope 1, lo, hi), PReLU and
LeakyReLU are (their slopes, -inf, +inf) and "no activation" is (1, -inf, +inf),
which is the identity bit for bit.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tinyface.kernels.simd import Float32Vector, load, splat


@numba.njit(inline="always", cache=True)
def activate(y, slope, lo, hi):
    """Generalised activation: leaky part by ``slope``, then clamp to [lo, hi]."""
    if y < 0:
        y = slope * y
    if y < lo:
        y = lo
    if y > hi:
        y = hi
    return y


@numba.njit(inline="always", cache=True)
def finish(acc, c, bias, slope1, lo1, hi1, res_row, has_res, slope2, lo2, hi2):
    """The whole sequence above for one accumulator of channel ``c``; the residual
    is ``res_row[c]``, read only when ``has_res``."""
    y = activate(acc + bias[c], slope1[c], lo1, hi1)
    if has_res:
        y += res_row[c]
    return activate(y, slope2[c], lo2, hi2)


@numba.njit(cache=True)
def has_leaky_part(slope):
    """Whether any slope differs from 1 (a PReLU/LeakyReLU part to apply)."""
    for c in range(slope.size):
        if slope[c] != 1.0:
            return True
    return False


@numba.njit(inline="always", cache=True)
def vector_activation(slope, lo, hi):
    """An activation prepared once per kernel call for ``activate_vector``:
    (slopes, lo, hi as vectors, has a leaky part, has a finite bound)."""
    return slope, splat(lo), splat(hi), has_leaky_part(slope), lo > -np.inf or hi < np.inf


@numba.njit(inline="always", cache=True)
def block_activation(act, c0):
    """``act`` (from ``vector_activation``) for channels c0..c0+LANES-1: its slopes as a vector."""
    return load(act[0], c0), act[1], act[2], act[3], act[4]


@intrinsic
def activate_vector(typingctx, y, act):
    """``activate`` lane by lane, bit for bit; ``act`` from ``block_activation``.  Without
    a leaky part every slope is 1, without a finite bound lo = -inf and hi = +inf:
    those steps are identities and are branched over.

    An ``intrinsic`` (LLVM instructions emitted in place) rather than a jitted
    function: a GEMM tile applies it to 32 vectors, and Numba's own inlining of
    that many calls took tens of seconds to compile.
    """
    if not (isinstance(y, Float32Vector) and isinstance(act, types.BaseTuple)
            and tuple(act) == (y, y, y, types.boolean, types.boolean)):
        return None

    def codegen(context, builder, sig, args):
        value, act_value = args
        slope, lo, hi, leaky, clamp = (builder.extract_value(act_value, i) for i in range(5))
        zero = ir.Constant(value.type, [0.0] * y.lanes)
        value = _if(builder, leaky, value, lambda v: builder.select(
            builder.fcmp_ordered("<", v, zero), builder.fmul(slope, v), v))
        return _if(builder, clamp, value, lambda v: _clamp(builder, v, lo, hi))
    return y(y, act), codegen


def _if(builder, flag, value, transform):
    """``transform(value)`` if the i1 ``flag`` is set, else ``value`` (a branch, not a select)."""
    before = builder.block
    with builder.if_then(flag):
        changed, then_block = transform(value), builder.block
    merged = builder.phi(value.type)
    merged.add_incoming(changed, then_block)
    merged.add_incoming(value, before)
    return merged


def _clamp(builder, v, lo, hi):
    """min(max(v, lo), hi) as ``activate`` does it: lo where v < lo, then hi where hi < v."""
    v = builder.select(builder.fcmp_ordered("<", v, lo), lo, v)
    return builder.select(builder.fcmp_ordered("<", hi, v), hi, v)
