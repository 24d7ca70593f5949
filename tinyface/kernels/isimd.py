"""int32 vectors for the 8-bit kernels: multiply-adds of byte pairs and exact requantisation.

The companion of ``kernels.simd`` for integer arithmetic: a Numba type
``ivector`` of ``LANES`` int32 lanes (as many as the float32 vector: 8 on
AVX2, 16 on AVX-512, 4 on SSE and NEON) and the few operations the 8-bit
kernels need, each a Numba ``intrinsic`` emitting generic LLVM vector
instructions, or x86's ``pmaddwd`` and ``pmaddubsw`` where the CPU has them (below)::

    izeros_run(count)             count vectors of zeros (``simd.zeros_run_of(ivector)``)
    madd_run(pair, w, j, accs)    accs[v] + (x0, x1) . the pairs of w[j + 2*LANES*v:], see below
    iload(a, i)                   a[i:i+LANES] of a 1-D int32 array
    iadd(u, v)                    u + v
    requantize(acc, m, lo, hi, z) the requantisation below, lane by lane
    add_requantized(q, zq, sq, r, i, zr, sr, lo, hi, z)   a residual Add of two quantised values
    store_u8(a, i, v)             a[i:i+LANES] = v, truncated to bytes (v in 0..255)
    madd_taps_run(accs, x, i0, i1, w, j)   two depthwise taps at once, see below
    madd_bytes(acc, c, i, b, j)   acc + pmaddwd(c[i:i+2*LANES] widened, b[j:j+2*LANES]) (int8 x int16)
    madd_quads_run(x, i, w, j, accs)   accs[v] + the four bytes x[i:i+4] . the quads of w, see below
    ihsum(v)                      the sum of v's lanes

**Pair multiply-add.**  ``w`` is a 1-D int16 array holding, for each output
channel, two consecutive k values side by side; ``pair`` an int32 holding two
activations ``x0 | x1 << 16`` (0..255 each: the kernels widen their byte rows to
16 bits once, so a pair is one 32-bit load).  Lane c of ``madd`` is
``acc[c] + x0 * w[j + 2c] + x1 * w[j + 2c + 1]``: the pair broadcast, multiplied
by the weight pairs in 32 bits and each pair's products added.  On x86 that is one
``pmaddwd`` per vector (two multiply-adds per int32 lane per instruction), called
as LLVM's x86 intrinsic (``PAIR_INSTRUCTION``, at the widest width the CPU has): written in
generic LLVM operations, LLVM's simplifier saw through the broadcast and left
two ``pmaddwd`` and four shuffles per vector.  Elsewhere the generic form is
compiled.  With the accumulation, LLVM may select ``vpdpwssd`` on CPUs with
AVX-VNNI or AVX512-VNNI (docs/int8.md says what each target emits).  Activations are at
most 255 and weights (less their zero point) at most 255 in magnitude, so a
product is at most 65025 and, within the products per output lowering allows
(``graph.ops.QUANTIZED_MAX_TERMS``), no int32 sum overflows: every order of
summation gives the same, exact, integer.

**Quad multiply-add** (``madd_quads_run``): four activation bytes (uint8)
``x[i:i+4]`` in every lane, times ``w`` (int8) holding four consecutive k values
of each output channel side by side: lane c gains ``sum_t x[i + t] * w[j + 4c + t]``.
On x86 that is ``pmaddubsw`` (u8 x s8 products added in pairs into 16 bits, with
saturation) then ``pmaddwd`` by ones (the pairs added into 32 bits) and the add:
three instructions for four multiply-adds per int32 lane, where the pairs take two
for two.  It is exact only where no pair sum leaves 16 bits, which holds when every
pair of weights (k = 2p, 2p + 1) of every channel has ``|w0| + |w1| <= 128``
(``255 * 128 = 32640``): 7-bit weights, as onnxruntime's ``reduce_range`` makes
them, or the pair-bounded scales of ``bench/quantize_int8.py``.  ``kernels.quantized.fits_quads`` checks that before a weight is packed so;
other weights take the pairs.  Where the CPU has no ``pmaddubsw`` at the pairs'
width (``QUAD_INSTRUCTION`` None) the generic form widens the bytes to int32 and
adds the four products, exact for any weights.

**Two taps at once** (``madd_taps_run``): the bytes of two taps of a depthwise
window, ``x[i0:]`` and ``x[i1:]`` (the same channels), interleaved and widened to
16-bit pairs, times ``w`` holding each channel's two weights side by side (as
``madd_run``'s pairs): lane c of vector v gains ``x[i0 + c'] * w[j + 2c'] +
x[i1 + c'] * w[j + 2c' + 1]``, c' = c + LANES * v -- one ``pmaddwd`` per vector
where the taps one at a time take two int32 multiplies.

**Requantisation** (``requantize``): ``acc`` (int32) to an output byte, as
onnxruntime's QLinearConv does it::

    y = min(max(float32(acc) * m[c], lo), hi)       float32 multiply
    q = roundeven(y) + z                            round half to even

with ``lo``, ``hi`` the output's range minus its zero point (integers, so
clamping before rounding equals clamping after).

``load``/``store`` do not check bounds (Numba never does): callers pass only
indices they validated.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models
from numba.extending import intrinsic, register_model

from tinyface.kernels.simd import LANES, Float32Vector, compile_probe, target_features, vector, zeros_run_of


class Int32Vector(types.Type):
    """The Numba type of a vector of ``lanes`` int32 lanes."""

    def __init__(self, lanes):
        self.lanes = lanes
        super().__init__(name=f"int32x{lanes}")


ivector = Int32Vector(LANES)

_I32 = ir.IntType(32)
_VI32 = ir.VectorType(_I32, LANES)
_VI16 = ir.VectorType(ir.IntType(16), 2 * LANES)
_VI8 = ir.VectorType(ir.IntType(8), 4 * LANES)
_VF32 = ir.VectorType(ir.FloatType(), LANES)


@register_model(Int32Vector)
class _Int32VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_I32, fe_type.lanes))


def _flat(array, dtype):
    return isinstance(array, types.Array) and array.dtype == dtype and array.ndim == 1


def _pointer(context, builder, array_type, array, index, llvm_type):
    """Pointer to ``array[index]`` as a pointer to ``llvm_type``."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), llvm_type.as_pointer())


def _splat(builder, value, vtype):
    undef = ir.Constant(vtype, ir.Undefined)
    lane0 = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(lane0, undef, ir.Constant(ir.VectorType(_I32, vtype.count), [0] * vtype.count))


def _lanes(builder, v, start):
    """Every other lane of the 2*LANES-lane ``v`` from ``start`` (0: even, 1: odd), widened to int32."""
    picked = builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                    ir.Constant(ir.VectorType(_I32, LANES), list(range(start, 2 * LANES, 2))))
    return builder.sext(picked, _VI32)


izeros_run = zeros_run_of(ivector)


@intrinsic
def madd_run(typingctx, pair, w, wi, accs):
    """(accs[v] + pmaddwd(pair in every lane, the int16 pairs w[wi + 2*LANES*v:]) for each v):
    ``pair`` an int32 holding two activations, x0 | x1 << 16."""
    if not (isinstance(pair, types.Integer) and _flat(w, types.int16) and isinstance(wi, types.Integer)
            and isinstance(accs, types.UniTuple) and accs.dtype == ivector):
        return None

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[0], sig.args[0], types.int32)
        pairs = builder.bitcast(_splat(builder, value, _VI32), _VI16)
        return _weight_run(context, builder, sig, args, 1, _VI16,
                           lambda acc, wv: builder.add(acc, _pmaddwd(builder, pairs, wv)))
    return accs(pair, w, wi, accs), codegen


def _weight_run(context, builder, sig, args, w_arg, wtype, madd):
    """The tuple (madd(accs[v], the vector of ``wtype`` at w[wi + LANES*v*(its lanes per
    int32 lane)])): ``w``, ``wi`` and ``accs`` the intrinsic's arguments w_arg, w_arg + 1 and
    w_arg + 2."""
    accs = sig.args[w_arg + 2]
    start = context.cast(builder, args[w_arg + 1], sig.args[w_arg + 1], types.intp)
    out = []
    for v, acc in enumerate(cgutils.unpack_tuple(builder, args[w_arg + 2], accs.count)):
        at = builder.add(start, ir.Constant(start.type, wtype.count * v))
        wv = builder.load(_pointer(context, builder, sig.args[w_arg], args[w_arg], at, wtype),
                          align=wtype.element.width // 8)
        out.append(madd(acc, wv))
    return context.make_tuple(builder, accs, out)


_I16_PROBE = """
define void @probe(<{n} x i16>* %p) {{
  %v = load <{n} x i16>, <{n} x i16>* %p
  %s = add <{n} x i16> %v, %v
  store <{n} x i16> %s, <{n} x i16>* %p
  ret void
}}
"""


_PMADDWD = {4: ("xmm", "llvm.x86.sse2.pmadd.wd"), 8: ("ymm", "llvm.x86.avx2.pmadd.wd"),
            16: ("zmm", "llvm.x86.avx512.pmaddw.d.512")}


def pair_instruction():
    """(LLVM intrinsic of x86's ``pmaddwd``, its int32 lanes) at the widest width up to LANES
    that the CPU Numba compiles for has in 16-bit lanes (SSE2; AVX2: 8 lanes; AVX-512BW: 16;
    probed by what LLVM makes of a 16-bit add of that width: a CPU tuned for 256-bit vectors,
    as Ice Lake is, splits a 512-bit one); None where there is none (not x86): then
    ``_pmaddwd`` is written in generic LLVM operations."""
    for lanes in (16, 8, 4):
        if lanes > LANES:
            continue
        register, name = _PMADDWD[lanes]
        asm = compile_probe(_I16_PROBE.format(n=2 * lanes))
        if asm is not None and f"%{register}" in asm:
            return name, lanes
    return None


PAIR_INSTRUCTION = pair_instruction()

_PMADDUBSW = {8: "llvm.x86.avx2.pmadd.ub.sw", 16: "llvm.x86.avx512.pmaddubs.w.512"}
# x86's ``pmaddubsw`` at the pairs' width: AVX2 and AVX-512BW have it wherever their 16-bit
# adds are that wide (the probe above); the 4-lane form needs SSSE3, which the probe does not
# show, so 4-lane targets take the generic form.
QUAD_INSTRUCTION = (_PMADDUBSW[PAIR_INSTRUCTION[1]], PAIR_INSTRUCTION[1]) \
    if PAIR_INSTRUCTION is not None and PAIR_INSTRUCTION[1] in _PMADDUBSW else None


def dot_instruction():
    """(LLVM intrinsic of x86's ``vpdpbusd``, its int32 lanes) at the quads' width where the
    target's features list it -- 16 lanes: AVX512-VNNI; 8: AVX-VNNI, or AVX512-VNNI with
    AVX512-VL -- else None.  Read from the feature list, not probed: LLVM aborts the process
    on an instruction the CPU lacks.  A CPU named by ``NUMBA_CPU_NAME`` alone (features
    empty) is taken to have none; so is a target whose quads are narrower than its vectors."""
    if QUAD_INSTRUCTION is None or QUAD_INSTRUCTION[1] != LANES:
        return None
    have = set(target_features().split(","))
    lanes = QUAD_INSTRUCTION[1]
    if lanes == 16 and "+avx512vnni" in have:
        return "llvm.x86.avx512.vpdpbusd.512", 16
    if lanes == 8 and ("+avxvnni" in have or {"+avx512vnni", "+avx512vl"} <= have):
        return "llvm.x86.avx512.vpdpbusd.256", 8
    return None


DOT_INSTRUCTION = dot_instruction()


def _part(builder, v, start, count):
    """Lanes start..start+count-1 of the vector v."""
    return builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, count), list(range(start, start + count))))


def _x86(builder, instruction, a, b, result):
    """The x86 intrinsic ``instruction`` = (name, int32 lanes its result spans) on the integer
    vectors a and b (as wide as a vector of LANES int32), whose result has lanes of the
    integer type ``result``: in LANES / its lanes calls, the results joined."""
    name, lanes = instruction
    step = a.type.count * lanes // LANES
    out = ir.VectorType(result, 32 // result.width * lanes)
    operand = ir.VectorType(a.type.element, step)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(out, [operand, operand]), name)
    parts = [builder.call(fn, [_part(builder, a, i, step), _part(builder, b, i, step)])
             for i in range(0, a.type.count, step)]
    while len(parts) > 1:                     # join neighbours: 4 -> 8 -> 16 lanes
        width = parts[0].type.count
        parts = [builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(_I32, 2 * width), list(range(2 * width))))
                 for u, v in zip(parts[::2], parts[1::2])]
    return parts[0]


def _pmaddwd(builder, pairs, w):
    """even(pairs) * even(w) + odd(pairs) * odd(w), int16 lanes to int32: x86's ``pmaddwd``
    or the generic form."""
    if PAIR_INSTRUCTION is None:
        even = builder.mul(_lanes(builder, pairs, 0), _lanes(builder, w, 0))
        odd = builder.mul(_lanes(builder, pairs, 1), _lanes(builder, w, 1))
        return builder.add(even, odd)
    return _x86(builder, PAIR_INSTRUCTION, pairs, w, _I32)


def _quad_madd(builder, acc, x, w):
    """Lane c: acc[c] + sum_t x[4c + t] * w[4c + t], x uint8 and w int8 vectors of 4 * LANES
    bytes: ``vpdpbusd`` (``DOT_INSTRUCTION``, exact for all weights), else the add of
    ``_quad_dot``."""
    if DOT_INSTRUCTION is None:
        return builder.add(acc, _quad_dot(builder, x, w))
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VI32, [_VI32] * 3), DOT_INSTRUCTION[0])
    return builder.call(fn, [acc, builder.bitcast(x, _VI32), builder.bitcast(w, _VI32)])


def _quad_dot(builder, x, w):
    """Lane c: sum_t x[4c + t] * w[4c + t], x uint8 and w int8 vectors of 4 * LANES bytes:
    ``pmaddubsw`` then ``pmaddwd`` by ones (exact within the module's bound on the weights),
    or the generic form (exact for all)."""
    if QUAD_INSTRUCTION is None:
        wide = ir.VectorType(_I32, 4 * LANES)
        products = builder.mul(builder.zext(x, wide), builder.sext(w, wide))
        sums = [builder.shuffle_vector(products, ir.Constant(wide, ir.Undefined),
                                       ir.Constant(_VI32, list(range(t, 4 * LANES, 4)))) for t in range(4)]
        return builder.add(builder.add(sums[0], sums[1]), builder.add(sums[2], sums[3]))
    pairs = _x86(builder, QUAD_INSTRUCTION, x, w, ir.IntType(16))
    return _pmaddwd(builder, pairs, ir.Constant(_VI16, [1] * (2 * LANES)))


@intrinsic
def madd_quads_run(typingctx, x, xi, w, wi, accs):
    """(accs[v] + the quad dot products of x[xi:xi+4] (uint8, in every lane) with the int8
    quads w[wi + 4*LANES*v:] for each v): see the module."""
    if not (_flat(x, types.uint8) and isinstance(xi, types.Integer) and _flat(w, types.int8)
            and isinstance(wi, types.Integer) and isinstance(accs, types.UniTuple) and accs.dtype == ivector):
        return None

    def codegen(context, builder, sig, args):
        quad = builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], _I32), align=1)
        xs = builder.bitcast(_splat(builder, quad, _VI32), _VI8)
        return _weight_run(context, builder, sig, args, 2, _VI8, lambda acc, wv: _quad_madd(builder, acc, xs, wv))
    return accs(x, xi, w, wi, accs), codegen


@intrinsic
def iload(typingctx, array, index):
    """array[index:index+LANES] of a 1-D int32 array."""
    if not (_flat(array, types.int32) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], _VI32), align=4)
    return ivector(array, index), codegen


def _round_clamped(context, builder, y, lo, hi, z):
    """roundeven(min(max(y, lo), hi)) + z as int32 lanes (lo, hi float32, z int32 scalars)."""
    lo_v, hi_v = _splat(builder, lo, _VF32), _splat(builder, hi, _VF32)
    y = builder.select(builder.fcmp_ordered("<", y, lo_v), lo_v, y)
    y = builder.select(builder.fcmp_ordered("<", hi_v, y), hi_v, y)
    roundeven = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VF32, [_VF32]),
                                               f"llvm.roundeven.v{LANES}f32")
    q = builder.fptosi(builder.call(roundeven, [y]), _VI32)
    return builder.add(q, _splat(builder, z, _VI32))


def _scalars(context, builder, sig, args, first, kinds):
    return [context.cast(builder, args[i], sig.args[i], kind) for i, kind in zip(range(first, first + len(kinds)), kinds)]


@intrinsic
def requantize(typingctx, acc, m, lo, hi, z):
    """roundeven(clamp(float32(acc) * m, lo, hi)) + z (see the module)."""
    if not (acc == ivector and isinstance(m, Float32Vector) and m == vector
            and all(isinstance(t, (types.Float, types.Integer)) for t in (lo, hi, z))):
        return None

    def codegen(context, builder, sig, args):
        lo_, hi_, z_ = _scalars(context, builder, sig, args, 2, (types.float32, types.float32, types.int32))
        y = builder.fmul(builder.sitofp(args[0], _VF32), args[1])
        return _round_clamped(context, builder, y, lo_, hi_, z_)
    return ivector(acc, m, lo, hi, z), codegen


@intrinsic
def add_requantized(typingctx, q, zq, sq, res, index, zr, sr, lo, hi, z):
    """A quantised Add, lane by lane: roundeven(clamp(float32(q - zq) * sq + float32(r - zr) * sr,
    lo, hi)) + z, with r the bytes res[index:index+LANES] (uint8) and sq, sr the ratios of
    the operands' scales to the output's (float32; no fused multiply-add)."""
    if not (q == ivector and _flat(res, types.uint8) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        zq_, sq_, zr_, sr_, lo_, hi_, z_ = (
            context.cast(builder, args[i], sig.args[i], kind) for i, kind in
            ((1, types.int32), (2, types.float32), (5, types.int32), (6, types.float32), (7, types.float32),
             (8, types.float32), (9, types.int32)))
        r = builder.load(_pointer(context, builder, sig.args[3], args[3], args[4],
                                  ir.VectorType(ir.IntType(8), LANES)), align=1)
        r = builder.zext(r, _VI32)
        a = builder.fmul(builder.sitofp(builder.sub(args[0], _splat(builder, zq_, _VI32)), _VF32),
                         _splat(builder, sq_, _VF32))
        b = builder.fmul(builder.sitofp(builder.sub(r, _splat(builder, zr_, _VI32)), _VF32),
                         _splat(builder, sr_, _VF32))
        return _round_clamped(context, builder, builder.fadd(a, b), lo_, hi_, z_)
    return ivector(q, zq, sq, res, index, zr, sr, lo, hi, z), codegen


@intrinsic
def store_u8(typingctx, array, index, value):
    """array[index:index+LANES] = value truncated to bytes (uint8 array)."""
    if not (_flat(array, types.uint8) and isinstance(index, types.Integer) and value == ivector):
        return None

    def codegen(context, builder, sig, args):
        vtype = ir.VectorType(ir.IntType(8), LANES)
        builder.store(builder.trunc(args[2], vtype),
                      _pointer(context, builder, sig.args[0], args[0], args[1], vtype), align=1)
        return context.get_dummy_value()
    return types.void(array, index, value), codegen


@intrinsic
def madd_taps_run(typingctx, accs, x, i0, i1, w, j):
    """(accs[v] + pmaddwd(interleave(x[i0 + LANES*v:], x[i1 + LANES*v:]) widened to 16 bits,
    the int16 pairs w[j + 2*LANES*v:]) for each v): x uint8, w int16 (see the module)."""
    if not (isinstance(accs, types.UniTuple) and accs.dtype == ivector and _flat(x, types.uint8)
            and _flat(w, types.int16)):
        return None
    count = accs.count

    def codegen(context, builder, sig, args):
        bytes_ = ir.VectorType(ir.IntType(8), LANES)
        interleave = ir.Constant(ir.VectorType(_I32, 2 * LANES), [i // 2 + (i % 2) * LANES for i in range(2 * LANES)])
        starts = [context.cast(builder, args[k], sig.args[k], types.intp) for k in (2, 3, 5)]
        out = []
        for v, acc in enumerate(cgutils.unpack_tuple(builder, args[0], count)):
            a, b = (builder.load(_pointer(context, builder, sig.args[1], args[1],
                                          builder.add(at, ir.Constant(at.type, LANES * v)), bytes_), align=1)
                    for at in starts[:2])
            pairs = builder.zext(builder.shuffle_vector(a, b, interleave), _VI16)
            at = builder.add(starts[2], ir.Constant(starts[2].type, 2 * LANES * v))
            wv = builder.load(_pointer(context, builder, sig.args[4], args[4], at, _VI16), align=2)
            out.append(builder.add(acc, _pmaddwd(builder, pairs, wv)))
        return context.make_tuple(builder, accs, out)
    return accs(accs, x, i0, i1, w, j), codegen


@intrinsic
def madd_bytes(typingctx, acc, c, i, b, j):
    """acc + pmaddwd(c[i:i+2*LANES] sign-extended to 16 bits, b[j:j+2*LANES]): lane l gains
    c[i+2l] b[j+2l] + c[i+2l+1] b[j+2l+1] (c int8, b int16): dot products of int8 codes
    with int16 queries (``kernels.topk``)."""
    if not (acc == ivector and _flat(c, types.int8) and isinstance(i, types.Integer) and _flat(b, types.int16)
            and isinstance(j, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        i_, j_ = (context.cast(builder, args[k], sig.args[k], types.intp) for k in (2, 4))
        codes = builder.load(_pointer(context, builder, sig.args[1], args[1], i_,
                                      ir.VectorType(ir.IntType(8), 2 * LANES)), align=1)
        wide = builder.sext(codes, _VI16)
        bv = builder.load(_pointer(context, builder, sig.args[3], args[3], j_, _VI16), align=2)
        return builder.add(args[0], _pmaddwd(builder, wide, bv))
    return ivector(acc, c, i, b, j), codegen


@intrinsic
def ihsum(typingctx, v):
    """The sum of the lanes of ``v`` (int32, wrapping): halves added pairwise."""
    if v != ivector:
        return None

    def codegen(context, builder, sig, args):
        value, width = args[0], LANES
        while width > 1:
            width //= 2
            value = builder.add(_part(builder, value, 0, width), _part(builder, value, width, width))
        return builder.extract_element(value, ir.Constant(_I32, 0))
    return types.int32(v), codegen


@intrinsic
def iadd(typingctx, u, v):
    """u + v, lane by lane (int32, wrapping)."""
    if not (u == ivector and v == ivector):
        return None

    def codegen(context, builder, sig, args):
        return builder.add(args[0], args[1])
    return ivector(u, v), codegen
