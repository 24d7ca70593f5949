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

The epilogue value
------------------
Every conv-like kernel (``gemm``, ``conv2d``, ``depthwise``, the fused block)
takes its epilogue as one argument, a tuple made by :func:`make_epilogue`::

    (bias, slope1, lo1, hi1, residual, has_res, slope2, lo2, hi2)

``bias``, ``slope1`` and ``slope2`` are float32 arrays of one value per output
channel, ``lo<k>`` and ``hi<k>`` float32 scalars, ``residual`` an array indexed
like the kernel's output (a GEMM's M x N rows, a conv's N x H x W x C map) and
read only when ``has_res``; without a residual it is a dummy of the same rank.
The kernels unpack it once per call, outside their loops, and a helper that
writes part of the output gets the part of the residual that goes with it
from :func:`with_residual`.  Measured against the nine loose parameters it
replaced (docs/performance.md, "One epilogue value"): instruction counts within
0.15 %, compile times within the noise.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tinyface.kernels.simd import Float32Vector, is_flat_float32, load, splat


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


_NO_RESIDUAL = {2: np.zeros((1, 1), np.float32), 4: np.zeros((1, 1, 1, 1), np.float32)}


def make_epilogue(bias, act1, act2, residual=None, ndim=4):
    """The epilogue value (see the module doc) of ``bias``, the activations ``act1`` and
    ``act2``, each (slope, lo, hi), and ``residual`` (None: none, and a dummy
    ``ndim``-D array in its place: 2 for a GEMM, 4 for a conv)."""
    if residual is None:
        return (bias, *act1, _NO_RESIDUAL[ndim], False, *act2)
    return (bias, *act1, residual, True, *act2)


@numba.njit(inline="always", cache=True)
def with_residual(epilogue, res):
    """``epilogue`` with ``res`` as its residual (the part of it that goes with the
    part of the output a helper writes)."""
    bias, slope1, lo1, hi1, _, has_res, slope2, lo2, hi2 = epilogue
    return bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2


@numba.njit(inline="always", cache=True)
def finish(acc, c, bias, slope1, lo1, hi1, res_row, has_res, slope2, lo2, hi2):
    """The whole sequence above for one accumulator of channel ``c``; the residual
    is ``res_row[c]``, read only when ``has_res``.  The epilogue's parts, not the
    tuple: the callers unpack it once, outside their loop over values."""
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


@numba.njit(cache=True)
def vector_activations(epilogue):
    """``vector_activation`` of the epilogue's two activations, as a pair.  Not inlined:
    inlined, Numba's array analysis of the parallel kernels fails on the returned pair
    of tuples holding arrays ("Dimension mismatch")."""
    return vector_activation(epilogue[1], epilogue[2], epilogue[3]), vector_activation(epilogue[6], epilogue[7],
                                                                                      epilogue[8])


@numba.njit(inline="always", cache=True)
def block_activation(act, c0):
    """``act`` (from ``vector_activation``) for channels c0..c0+LANES-1: its slopes as a vector."""
    return load(act[0], c0), act[1], act[2], act[3], act[4]


def _is_vector_activation(act, vtype):
    """Whether ``act`` is the Numba type of a ``vector_activation`` for vectors ``vtype``."""
    return (isinstance(act, types.BaseTuple) and len(act) == 5 and isinstance(act[0], types.Array)
            and act[0].dtype == types.float32 and act[0].ndim == 1
            and tuple(act)[1:] == (vtype, vtype, types.boolean, types.boolean))


def _activate(builder, value, slope, lo, hi, leaky, clamp):
    """LLVM code of ``activate`` lane by lane, ``slope()`` making the slopes' vector in the
    leaky branch; the leaky and the clamping step each behind a branch on its flag."""
    zero = ir.Constant(value.type, [0.0] * value.type.count)
    value = _if(builder, leaky, value, lambda v: builder.select(
        builder.fcmp_ordered("<", v, zero), builder.fmul(slope(), v), v))
    return _if(builder, clamp, value, lambda v: _clamp(builder, v, lo, hi))


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
        return _activate(builder, value, lambda: slope, lo, hi, leaky, clamp)
    return y(y, act), codegen


def _data(context, builder, array_type, array):
    return context.make_array(array_type)(context, builder, array).data


def _vector_at(builder, pointer, index, vtype):
    """Pointer to the vector of ``vtype`` at pointer[index] (``index`` an intp value)."""
    return builder.bitcast(builder.gep(pointer, [index]), ir.VectorType(ir.FloatType(), vtype.lanes).as_pointer())


def _finish_code(context, builder, value, c, i, out, res, has_res, acts, vtype):
    """LLVM code of the epilogue after the bias on one vector ``value`` of channels from
    ``c``, stored at out[i:]: act1, the residual res[i:] when ``has_res``, act2.
    ``out`` and ``res`` are data pointers, ``acts`` the two activations as (slopes'
    data pointer, lo, hi, leaky, clamp)."""
    for step, (slopes, lo, hi, leaky, clamp) in enumerate(acts):
        if step == 1:
            value = _if(builder, has_res, value, lambda y: builder.fadd(
                y, builder.load(_vector_at(builder, res, i, vtype), align=4)))
        value = _activate(builder, value, lambda: builder.load(_vector_at(builder, slopes, c, vtype), align=4),
                          lo, hi, leaky, clamp)
    builder.store(value, _vector_at(builder, out, i, vtype), align=4)


def _activation_code(context, builder, act_type, act):
    """The activation value ``act`` (from ``vector_activation``) as ``_finish_code`` takes it."""
    slope, lo, hi, leaky, clamp = (builder.extract_value(act, i) for i in range(5))
    return _data(context, builder, act_type[0], slope), lo, hi, leaky, clamp


def _finish_types(vtype, ints, out, res, has_res, act1, act2):
    return (isinstance(vtype, Float32Vector) and all(isinstance(t, types.Integer) for t in ints)
            and is_flat_float32(out) and is_flat_float32(res) and has_res == types.boolean
            and _is_vector_activation(act1, vtype) and _is_vector_activation(act2, vtype))


@intrinsic
def finish_rows(typingctx, tile, n0, N, out, o, res, has_res, bias, act1, act2):
    """The epilogue of a register tile, and its store: ``tile`` is rows runs of vectors
    (``simd.zeros_tile``), channels from n0; for row r and vector v, with c = n0 + v * LANES
    and i = o + r * N + v * LANES::

        y = activate(tile[r][v] + bias[c:], act1 at c)
        y = y + res[i:]                              # only when has_res
        out[i:] = activate(y, act2 at c)

    ``out``, ``res`` and ``bias`` flat float32 arrays (rows N apart), ``act<k>`` from
    ``vector_activation``; no bounds checks.  Bit for bit ``activate_vector`` on
    ``block_activation``, vector by vector.

    An intrinsic, so the arrays it reads are taken once per tile: as a jitted loop
    over the run's vectors, inlined into the tiles, every pass took and released
    Numba references to the epilogue's arrays (atomic calls into Numba's runtime,
    about ten per vector).
    """
    if not (isinstance(tile, types.UniTuple) and isinstance(tile.dtype, types.UniTuple) and is_flat_float32(bias)
            and _finish_types(tile.dtype.dtype, (n0, N, o), out, res, has_res, act1, act2)):
        return None
    vtype, count, rows = tile.dtype.dtype, tile.dtype.count, tile.count

    def codegen(context, builder, sig, args):
        tile_v, n0_v, N_v, out_v, o_v, res_v, has_res_v, bias_v, act1_v, act2_v = args
        n0_v, N_v, o_v = (context.cast(builder, v, t, types.intp) for v, t in
                          ((n0_v, sig.args[1]), (N_v, sig.args[2]), (o_v, sig.args[4])))
        out_p, res_p, bias_p = (_data(context, builder, t, v) for t, v in ((out, out_v), (res, res_v), (bias, bias_v)))
        acts = [_activation_code(context, builder, t, v) for t, v in ((act1, act1_v), (act2, act2_v))]
        for r in range(rows):
            row_o = builder.add(o_v, builder.mul(N_v, ir.Constant(N_v.type, r)))
            for v in range(count):
                lanes = ir.Constant(n0_v.type, v * vtype.lanes)
                c, i = builder.add(n0_v, lanes), builder.add(row_o, lanes)
                value = builder.fadd(builder.extract_value(tile_v, [r, v]),
                                     builder.load(_vector_at(builder, bias_p, c, vtype), align=4))
                _finish_code(context, builder, value, c, i, out_p, res_p, has_res_v, acts, vtype)
        return context.get_dummy_value()
    return types.void(tile, n0, N, out, o, res, has_res, bias, act1, act2), codegen


@intrinsic
def finish_vector(typingctx, value, c, out, i, res, has_res, act1, act2):
    """``finish_rows`` on one vector whose bias is already in it: channels from ``c``,
    stored at out[i:] (the residual res[i:]).  For the depthwise kernel, which adds
    the bias first."""
    if not _finish_types(value, (c, i), out, res, has_res, act1, act2):
        return None

    def codegen(context, builder, sig, args):
        value_v, c_v, out_v, i_v, res_v, has_res_v, act1_v, act2_v = args
        c_v, i_v = (context.cast(builder, v, t, types.intp) for v, t in ((c_v, sig.args[1]), (i_v, sig.args[3])))
        acts = [_activation_code(context, builder, t, v) for t, v in ((act1, act1_v), (act2, act2_v))]
        _finish_code(context, builder, value_v, c_v, i_v, _data(context, builder, out, out_v),
                     _data(context, builder, res, res_v), has_res_v, acts, value)
        return context.get_dummy_value()
    return types.void(value, c, out, i, res, has_res, act1, act2), codegen


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
