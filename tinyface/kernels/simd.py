"""float32 vectors as Numba values: explicit SIMD for the kernels, as wide as the target's registers.

Numba has no vector types, and LLVM vectorises a loop only when it can prove
the loop's loads and stores do not overlap, which it often cannot for a
convolution (it then keeps the loop scalar or checks at run time on every
pass).  This module gives the kernels a value type ``vector`` of ``LANES``
float32 lanes that lives in one vector register of the CPU Numba compiles for
(``target``): 16 lanes on AVX-512, 8 on AVX2, 4 on SSE and ARM NEON.  Only
generic LLVM vector operations are emitted, no x86 intrinsics, so the same
code compiles for any of them.  The operations::

    load(a, i)               a[i:i+LANES] of a contiguous 1-D float32 array
    store(a, i, v)           a[i:i+len(v)] = v
    splat(x)                 x in every lane
    zeros()                  0.0 in every lane
    add(u, v), mul(u, v)     lane by lane
    maximum(u, v)            v where v > u, else u, lane by lane (a NaN in v never wins)
    fma(u, v, w)             u * v + w with one rounding (like math.fma)
    load_part(a, i, count)   a[i:i+count] in the first lanes, zeros after (count >= LANES: load)
    store_part(a, i, v, count)  a[i:i+count] = the first count lanes of v (>= LANES: store)

and on runs, tuples of ``count`` vectors side by side (a register tile's row)::

    load_run(a, i, count)    (load(a, i), load(a, i + LANES), ...)
    zeros_run(count)         count vectors of zeros
    fma_run(x, ws, cs)       (fma(x, ws[0], cs[0]), fma(x, ws[1], cs[1]), ...)

and on tiles, tuples of ``rows`` such runs (a register tile of rows x count vectors)::

    zeros_tile(rows, count)  rows runs of count vectors of zeros
    fma_rows(a, i, j, ws, acc)  (fma_run(splat(x_0), ws, acc[0]), fma_run(splat(x_1), ws, acc[1]), ...)
                             with x_r = a[i + r, j] of a 2-D array, or a[i + r * j] of a 1-D one

``rows`` and ``count`` must be compile-time constants (module-level ints).  For the
depthwise kernel's windows, with ``rows`` = (s0, b0, s1, b1, s2, b2), row k the flat
``s<k>[b<k>:]`` (three input rows)::

    load_strided(a, i, stride, count)   (load(a, i), load(a, i + stride), ...)
    load_column(rows, p)     (load(s0, b0 + p), load(s1, b1 + p), load(s2, b2 + p))
    load_column_if(rows, p, inside)     load_column(rows, p) if inside, else zeros (nothing read)

A sum whose order depends on the lane count (a horizontal add) must not change with the
CPU: ``float32x16`` is a 16-lane vector on every target, with ``load16``,
``splat16`` and ``zeros16`` (on AVX2 its values take two registers).

Each is a Numba ``intrinsic``: it emits its LLVM instruction inline, so a
kernel written with them keeps its vectors in registers and compiles (and is
cached) like any other jitted function.  ``load`` and ``store`` do not check
bounds -- Numba never does -- so a kernel must only pass indices it has
validated: ``i + LANES <= a.size``.  Numba keys its cache by the CPU name and
features it compiles for, from which ``LANES`` follows, so a cached kernel
always matches the module's constants.
"""
import llvmlite.binding as ll
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.core.datamodel import models
from numba.extending import intrinsic, register_model

_PROBE = """
define void @probe(<16 x float>* %p) {
  %v = load <16 x float>, <16 x float>* %p
  %s = fadd <16 x float> %v, %v
  store <16 x float> %s, <16 x float>* %p
  ret void
}
"""


def target_features():
    """The feature string of the CPU Numba compiles for: ``NUMBA_CPU_FEATURES`` when set (empty
    with ``NUMBA_CPU_NAME``: that CPU's own features, not listed), else the host's."""
    return config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()


def compile_probe(source):
    """The assembly LLVM makes of the LLVM IR ``source`` (generic operations only) for the
    CPU Numba compiles for (see ``target``), or None when that is not an x86 CPU."""
    triple = ll.get_process_triple()
    if not triple.startswith(("x86_64", "i386", "i686")):
        return None
    name = config.CPU_NAME or ll.get_host_cpu_name()
    features = target_features()
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    machine = ll.Target.from_triple(triple).create_target_machine(cpu=name, features=features)
    module = ll.parse_assembly(source)
    module.triple = triple
    return machine.emit_assembly(module)


def target():
    """(name, lanes, registers) of the CPU Numba compiles for: its LLVM name, the float32
    lanes of the widest vector register LLVM uses for it, and how many such registers it has.

    The CPU is Numba's: ``NUMBA_CPU_NAME`` or the host's, with ``NUMBA_CPU_FEATURES`` or
    the host's features (so ``NUMBA_CPU_NAME=haswell`` alone on an AVX-512 host still
    allows AVX-512; add ``NUMBA_CPU_FEATURES=`` for haswell's own).  The width is what
    LLVM makes of a 16-lane add for that CPU (it splits vectors wider than it likes):
    zmm registers mean AVX-512 (32 of them), ymm AVX or AVX2 (16), otherwise 4 lanes,
    as SSE (16 registers) and NEON (32) have.
    """
    name = config.CPU_NAME or ll.get_host_cpu_name()
    if ll.get_process_triple().startswith(("aarch64", "arm64")):
        return name, 4, 32
    asm = compile_probe(_PROBE)
    if asm is None:
        return name, 4, 16
    if "zmm" in asm:
        return name, 16, 32
    if "ymm" in asm:
        return name, 8, 16
    return name, 4, 16


CPU, LANES, REGISTERS = target()

# The fastmath flags of every kernel that multiplies and adds floats (``fastmath=FAST``):
# only "contract", which lets LLVM fuse a scalar or auto-vectorised ``a * b + c`` into one
# FMA (one rounding instead of two).  No reassociation (every sum keeps the order its loop
# nest gives it, so results are deterministic and the same on 1 and 2 threads), no
# approximate functions, NaN and infinity kept.  The explicit vectors above use ``fma``
# whatever the flags.  Effect on accuracy (bundled model against onnxruntime, 98 faces):
# max abs difference 7.6e-6 without contraction, 6.2e-6 with it, worst cosine 0.99999976
# either way (docs/design.md, "Fastmath").
FAST = {"contract"}


class Float32Vector(types.Type):
    """The Numba type of a vector of ``lanes`` float32 lanes."""

    def __init__(self, lanes):
        self.lanes = lanes
        super().__init__(name=f"float32x{lanes}")


vector = Float32Vector(LANES)
float32x16 = Float32Vector(16)


@register_model(Float32Vector)
class _Float32VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.FloatType(), fe_type.lanes))


def is_flat_float32(arr):
    """Whether the Numba type ``arr`` is a 1-D float32 array."""
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.ndim == 1


def _is_run(run):
    return isinstance(run, types.UniTuple) and isinstance(run.dtype, Float32Vector)


def _llvm(vtype):
    return ir.VectorType(ir.FloatType(), vtype.lanes)


def _address(context, builder, array_type, array, index, vtype):
    """Pointer to ``array[index]`` as a pointer to a vector of type ``vtype``."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _llvm(vtype).as_pointer())


def _load(context, builder, array_type, array, index, vtype):
    return builder.load(_address(context, builder, array_type, array, index, vtype), align=4)


def _zeros(vtype):
    return ir.Constant(_llvm(vtype), [0.0] * vtype.lanes)


def _fma(builder, u, v, w):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(u.type, [u.type] * 3),
                                        f"llvm.fma.v{u.type.count}f32")
    return builder.call(fn, [u, v, w])


def _splat(builder, value, vtype):
    """The LLVM float ``value`` in every lane of a vector of type ``vtype``."""
    undef = ir.Constant(_llvm(vtype), ir.Undefined)
    lane0 = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lane0, undef, ir.Constant(ir.VectorType(ir.IntType(32), vtype.lanes),
                                                            [0] * vtype.lanes))


def _sized(vtype):
    """``load``, ``splat`` and ``zeros`` for vectors of type ``vtype`` (the others take
    their width from their operands)."""

    @intrinsic
    def load(typingctx, array, index):
        """array[index:index+lanes] as a vector (array: 1-D float32, contiguous)."""
        if not (is_flat_float32(array) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            return _load(context, builder, sig.args[0], args[0], args[1], vtype)
        return vtype(array, index), codegen

    @intrinsic
    def splat(typingctx, x):
        """The scalar ``x`` (converted to float32) in every lane."""
        if not isinstance(x, (types.Float, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            return _splat(builder, context.cast(builder, args[0], sig.args[0], types.float32), vtype)
        return vtype(x), codegen

    @intrinsic
    def zeros(typingctx):
        """0.0 in every lane."""
        def codegen(context, builder, sig, args):
            return _zeros(vtype)
        return vtype(), codegen

    return load, splat, zeros


load, splat, zeros = _sized(vector)
load16, splat16, zeros16 = _sized(float32x16)


@intrinsic
def store(typingctx, array, index, value):
    """array[index:index+lanes] = value."""
    if not (is_flat_float32(array) and isinstance(index, types.Integer) and isinstance(value, Float32Vector)):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], args[1], sig.args[2]), align=4)
        return context.get_dummy_value()
    return types.void(array, index, value), codegen


def _typed(operands, codegen_build):
    """Signature and codegen of an operation on vectors of one type only (None: not for these types)."""
    if not isinstance(operands[0], Float32Vector) or any(op != operands[0] for op in operands):
        return None

    def codegen(context, builder, sig, args):
        return codegen_build(builder, *args)
    return operands[0](*operands), codegen


@intrinsic
def add(typingctx, u, v):
    """u + v."""
    return _typed((u, v), lambda b, u, v: b.fadd(u, v))


@intrinsic
def mul(typingctx, u, v):
    """u * v."""
    return _typed((u, v), lambda b, u, v: b.fmul(u, v))


@intrinsic
def maximum(typingctx, u, v):
    """v where v > u, else u: a running maximum ``u`` that keeps its value against NaN, and
    against an equal v (so -0.0 stays -0.0 against 0.0), as ``if v > u: u = v`` does."""
    return _typed((u, v), lambda b, u, v: b.select(b.fcmp_ordered(">", v, u), v, u))


@intrinsic
def fma(typingctx, u, v, w):
    """u * v + w, rounded once."""
    return _typed((u, v, w), _fma)


@intrinsic
def load_run(typingctx, array, index, count):
    """The ``count`` vectors at array[index], array[index + LANES], ... as a tuple."""
    if not (is_flat_float32(array) and isinstance(index, types.Integer)
            and isinstance(count, types.IntegerLiteral)):
        return None
    run = types.UniTuple(vector, count.literal_value)

    def codegen(context, builder, sig, args):
        array_type, index_type = sig.args[0], sig.args[1]
        index = context.cast(builder, args[1], index_type, types.intp)
        vectors = [_load(context, builder, array_type, args[0],
                         builder.add(index, ir.Constant(index.type, i * LANES)), vector)
                   for i in range(run.count)]
        return context.make_tuple(builder, run, vectors)
    return run(array, index, count), codegen


def zeros_run_of(vtype):
    """The intrinsic ``zeros_run(count)`` for the Numba vector type ``vtype`` (``vector``
    here, ``isimd.ivector`` for int32 lanes): a tuple of ``count`` vectors of zeros."""
    @intrinsic
    def zeros_run(typingctx, count):
        if not isinstance(count, types.IntegerLiteral):
            return None
        run = types.UniTuple(vtype, count.literal_value)

        def codegen(context, builder, sig, args):
            return context.make_tuple(builder, run, [ir.Constant(context.get_value_type(vtype), None)] * run.count)
        return run(count), codegen
    return zeros_run


zeros_run = zeros_run_of(vector)


@intrinsic
def fma_run(typingctx, x, ws, cs):
    """(fma(x, ws[0], cs[0]), fma(x, ws[1], cs[1]), ...): one broadcast times a run, plus a run."""
    if not (isinstance(x, Float32Vector) and _is_run(ws) and ws == cs and ws.dtype == x):
        return None

    def codegen(context, builder, sig, args):
        ws_, cs_ = (cgutils.unpack_tuple(builder, t, ws.count) for t in args[1:])
        return context.make_tuple(builder, ws, [_fma(builder, args[0], w, c) for w, c in zip(ws_, cs_)])
    return ws(x, ws, cs), codegen



@intrinsic
def zeros_tile(typingctx, rows, count):
    """``rows`` runs of ``count`` vectors of zeros: a register tile's accumulators."""
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(count, types.IntegerLiteral)):
        return None
    tile = types.UniTuple(types.UniTuple(vector, count.literal_value), rows.literal_value)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(tile), None)
    return tile(rows, count), codegen


def _row_scalars(context, builder, array_type, array, i, j, rows):
    """The float32 scalars x_r of ``fma_rows`` for r < rows: a[i + r, j] (2-D, by its
    strides) or a[i + r * j] (1-D, contiguous)."""
    arr = context.make_array(array_type)(context, builder, array)
    if array_type.ndim == 1:
        return [builder.load(builder.gep(arr.data, [builder.add(i, builder.mul(j, ir.Constant(j.type, r)))]))
                for r in range(rows)]
    row_stride, col_stride = cgutils.unpack_tuple(builder, arr.strides, 2)
    base = builder.add(builder.ptrtoint(arr.data, i.type), builder.mul(j, col_stride))
    return [builder.load(builder.inttoptr(builder.add(base, builder.mul(builder.add(i, ir.Constant(i.type, r)),
                                                                        row_stride)),
                                          arr.data.type)) for r in range(rows)]


@intrinsic
def fma_rows(typingctx, a, i, j, ws, acc):
    """One k step of a register tile: row r of ``acc`` += splat(x_r) * ``ws``, one fused
    multiply-add per vector, with x_r = a[i + r, j] (``a`` 2-D float32) or a[i + r * j]
    (``a`` 1-D float32, contiguous: rows ``j`` apart).  No bounds checks."""
    if not (isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim in (1, 2)
            and isinstance(i, types.Integer) and isinstance(j, types.Integer) and _is_run(ws)
            and isinstance(acc, types.UniTuple) and acc.dtype == ws):
        return None

    def codegen(context, builder, sig, args):
        i_v, j_v = (context.cast(builder, v, t, types.intp) for v, t in zip(args[1:3], sig.args[1:3]))
        scalars = _row_scalars(context, builder, sig.args[0], args[0], i_v, j_v, acc.count)
        ws_ = cgutils.unpack_tuple(builder, args[3], ws.count)
        rows = []
        for r, x in enumerate(scalars):
            x = _splat(builder, x, vector)
            row = cgutils.unpack_tuple(builder, builder.extract_value(args[4], r), ws.count)
            rows.append(context.make_tuple(builder, ws, [_fma(builder, x, w, c) for w, c in zip(ws_, row)]))
        return context.make_tuple(builder, acc, rows)
    return acc(a, i, j, ws, acc), codegen


@intrinsic
def load_strided(typingctx, array, index, stride, count):
    """The ``count`` vectors at array[index], array[index + stride], ... as a tuple."""
    if not (is_flat_float32(array) and isinstance(index, types.Integer) and isinstance(stride, types.Integer)
            and isinstance(count, types.IntegerLiteral)):
        return None
    run = types.UniTuple(vector, count.literal_value)

    def codegen(context, builder, sig, args):
        index, stride = (context.cast(builder, v, t, types.intp) for v, t in zip(args[1:3], sig.args[1:3]))
        return context.make_tuple(builder, run, [
            _load(context, builder, sig.args[0], args[0], builder.add(index, builder.mul(stride, ir.Constant(
                stride.type, k))), vector) for k in range(run.count)])
    return run(array, index, stride, count), codegen


def _is_rows3(rows):
    """Whether ``rows`` is (s0, b0, s1, b1, s2, b2): three flat float32 arrays with offsets."""
    return (isinstance(rows, types.BaseTuple) and len(rows) == 6
            and all(is_flat_float32(rows[k]) and isinstance(rows[k + 1], types.Integer) for k in (0, 2, 4)))


def _column_code(context, builder, rows_type, rows, p):
    column = types.UniTuple(vector, 3)
    loads = []
    for k in (0, 2, 4):
        offset = context.cast(builder, builder.extract_value(rows, k + 1), rows_type[k + 1], types.intp)
        loads.append(_load(context, builder, rows_type[k], builder.extract_value(rows, k),
                           builder.add(offset, p), vector))
    return context.make_tuple(builder, column, loads)


@intrinsic
def load_column(typingctx, rows, p):
    """(s0[b0 + p:], s1[b1 + p:], s2[b2 + p:]) as three vectors: a window column of three rows."""
    if not (_is_rows3(rows) and isinstance(p, types.Integer)):
        return None
    column = types.UniTuple(vector, 3)

    def codegen(context, builder, sig, args):
        return _column_code(context, builder, sig.args[0], args[0],
                            context.cast(builder, args[1], sig.args[1], types.intp))
    return column(rows, p), codegen


@intrinsic
def load_column_if(typingctx, rows, p, inside):
    """``load_column(rows, p)`` when ``inside``, else three vectors of zeros (nothing read)."""
    if not (_is_rows3(rows) and isinstance(p, types.Integer) and inside == types.boolean):
        return None
    column = types.UniTuple(vector, 3)

    def codegen(context, builder, sig, args):
        zeros = ir.Constant(context.get_value_type(column), None)
        before = builder.block
        with builder.if_then(args[2]):
            loaded = _column_code(context, builder, sig.args[0], args[0],
                                  context.cast(builder, args[1], sig.args[1], types.intp))
            loaded_end = builder.block
        return _merge(builder, (loaded, loaded_end), (zeros, before))
    return column(rows, p, inside), codegen


def _by_lanes(builder, count, whole, lane, value=None):
    """Code for ``count`` (an intp) lanes of a vector: ``whole()`` when count >= LANES;
    otherwise ``lane(k, value)`` for k = 0, 1, ... while k < count, each behind a branch,
    threading ``value`` (None, or an LLVM value each step returns).  Returns the value
    merged from both ways (None if there is none)."""
    with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(count.type, LANES))) as (full, part):
        with full:
            whole_value, whole_end = whole(), builder.block
        with part:
            for k in range(LANES):
                before = builder.block
                with builder.if_then(builder.icmp_signed("<", ir.Constant(count.type, k), count)):
                    changed, then_end = lane(k, value), builder.block
                if value is not None:
                    value = _merge(builder, (changed, then_end), (value, before))
            part_end = builder.block
    return None if value is None else _merge(builder, (whole_value, whole_end), (value, part_end))


def _merge(builder, *incoming):
    """A phi of (value, block) pairs."""
    merged = builder.phi(incoming[0][0].type)
    for value, block in incoming:
        merged.add_incoming(value, block)
    return merged


def _element(builder, data, index, k):
    """Pointer to data[index + k] (``index`` an intp value, ``k`` a Python int)."""
    return builder.gep(data, [builder.add(index, ir.Constant(index.type, k))])


@intrinsic
def load_part(typingctx, array, index, count):
    """array[index:index+count] in the first ``count`` lanes and zeros in the rest: a whole
    ``load`` when count >= LANES; otherwise reads only those ``count`` floats."""
    if not (is_flat_float32(array) and isinstance(index, types.Integer) and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        array_type, index_type, count_type = sig.args
        index = context.cast(builder, args[1], index_type, types.intp)
        count = context.cast(builder, args[2], count_type, types.intp)
        data = context.make_array(array_type)(context, builder, args[0]).data

        def lane(k, value):
            return builder.insert_element(value, builder.load(_element(builder, data, index, k)),
                                          ir.Constant(ir.IntType(32), k))
        return _by_lanes(builder, count, lambda: _load(context, builder, array_type, args[0], index, vector),
                         lane, _zeros(vector))
    return vector(array, index, count), codegen


@intrinsic
def store_part(typingctx, array, index, value, count):
    """array[index:index+count] = the first ``count`` lanes of ``value``: a whole ``store``
    when count >= LANES; otherwise writes only those ``count`` floats."""
    if not (is_flat_float32(array) and isinstance(index, types.Integer) and value == vector
            and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        array_type, index_type, _, count_type = sig.args
        index = context.cast(builder, args[1], index_type, types.intp)
        count = context.cast(builder, args[3], count_type, types.intp)
        data = context.make_array(array_type)(context, builder, args[0]).data

        def whole():
            builder.store(args[2], _address(context, builder, array_type, args[0], index, vector), align=4)

        def lane(k, _):
            builder.store(builder.extract_element(args[2], ir.Constant(ir.IntType(32), k)),
                          _element(builder, data, index, k))
        _by_lanes(builder, count, whole, lane)
        return context.get_dummy_value()
    return types.void(array, index, value, count), codegen
