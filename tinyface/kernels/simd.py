"""Sixteen float32 lanes as one Numba value: explicit SIMD for the kernels.

Numba has no vector types, and LLVM vectorises a loop only when it can prove
the loop's loads and stores do not overlap, which it often cannot for a
convolution (it then keeps the loop scalar or checks at run time on every
pass).  This module gives the kernels a value type ``float32x16`` that lives in
one LLVM ``<16 x float>`` register (one AVX-512 register; two AVX2 registers
on CPUs without AVX-512), and the handful of operations they need::

    load(a, i)               a[i:i+16] of a contiguous 1-D float32 array
    store(a, i, v)           a[i:i+16] = v
    splat(x)                 x in every lane
    zeros()                  0.0 in every lane
    add(u, v), mul(u, v)     lane by lane
    fma(u, v, w)             u * v + w with one rounding (like math.fma)

Each is a Numba ``intrinsic``: it emits its LLVM instruction inline, so a
kernel written with them keeps its vectors in registers and compiles (and is
cached) like any other jitted function.  ``load`` and ``store`` do not check
bounds -- Numba never does -- so a kernel must only pass indices it has
validated: ``i + 16 <= a.size``.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models
from numba.extending import intrinsic, register_model

LANES = 16
_VECTOR = ir.VectorType(ir.FloatType(), LANES)


class Float32x16(types.Type):
    """The Numba type of a vector of 16 float32 lanes."""

    def __init__(self):
        super().__init__(name="float32x16")


float32x16 = Float32x16()


@register_model(Float32x16)
class _Float32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _is_flat_float32(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.ndim == 1


def _address(context, builder, array_type, array, index):
    """Pointer to ``array[index]`` as a pointer to a vector."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _VECTOR.as_pointer())


@intrinsic
def load(typingctx, array, index):
    """array[index:index+16] as a vector (array: 1-D float32, contiguous)."""
    if not (_is_flat_float32(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_address(context, builder, sig.args[0], args[0], args[1]), align=4)
    return float32x16(array, index), codegen


@intrinsic
def store(typingctx, array, index, vector):
    """array[index:index+16] = vector."""
    if not (_is_flat_float32(array) and isinstance(index, types.Integer) and vector == float32x16):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _address(context, builder, sig.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()
    return types.void(array, index, vector), codegen


@intrinsic
def splat(typingctx, x):
    """The scalar ``x`` (converted to float32) in all 16 lanes."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[0], sig.args[0], types.float32)
        lane0 = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
        every_lane = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(lane0, ir.Constant(_VECTOR, ir.Undefined), every_lane)
    return float32x16(x), codegen


@intrinsic
def zeros(typingctx):
    """0.0 in all 16 lanes."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VECTOR, [0.0] * LANES)
    return float32x16(), codegen


def _typed(operands, codegen_build):
    """Signature and codegen of an operation on vectors only (None: not for these types)."""
    if any(op != float32x16 for op in operands):
        return None

    def codegen(context, builder, sig, args):
        return codegen_build(builder, *args)
    return float32x16(*operands), codegen


def _fma(builder, u, v, w):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                        "llvm.fma.v16f32")
    return builder.call(fn, [u, v, w])


@intrinsic
def add(typingctx, u, v):
    """u + v."""
    return _typed((u, v), lambda b, u, v: b.fadd(u, v))


@intrinsic
def mul(typingctx, u, v):
    """u * v."""
    return _typed((u, v), lambda b, u, v: b.fmul(u, v))


@intrinsic
def fma(typingctx, u, v, w):
    """u * v + w, rounded once."""
    return _typed((u, v, w), _fma)
