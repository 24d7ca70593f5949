"""Matrix products, Softmax, and the ops that only move, select or convert values.

Gemm, MatMul and Softmax compute in float64.  The others (Flatten, Reshape,
Squeeze, Unsqueeze, Transpose, Shape, Gather, Concat, Cast, Identity,
Dropout, Constant) do no arithmetic and keep their input's dtype -- Cast sets
the one it is asked for -- since exporters use them on int64 shape tensors as
often as on float maps.
"""
import numpy as np

from tinyface.errors import InputError, UnsupportedOpError
from tinyface.reference.pointwise import broadcasts_to


def _matrix(x, what):
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise InputError(f"Gemm {what} of shape {list(x.shape)}: expected a matrix")
    return x


def gemm(A, B, C=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
    """ONNX Gemm: alpha * A' @ B' + beta * C, with A' = A.T if transA (B' likewise).

    C broadcasts one way to the M x N result (a scalar, a row of N, a column
    of M, or M x N).
    """
    a, b = _matrix(A, "A"), _matrix(B, "B")
    a, b = (a.T if transA else a), (b.T if transB else b)
    if a.shape[1] != b.shape[0]:
        raise InputError(f"Gemm: A' is {list(a.shape)} and B' is {list(b.shape)}; their inner sizes differ")
    y = alpha * (a @ b)
    if C is not None:
        c = np.asarray(C, np.float64)
        if not broadcasts_to(c.shape, y.shape):
            raise InputError(f"Gemm: C of shape {list(c.shape)} does not broadcast to {list(y.shape)}")
        y = y + beta * c
    return y


def matmul(A, B):
    """ONNX MatMul: NumPy's matmul (a 1-D operand is a row or column vector that is
    dropped from the result; stacks of matrices broadcast)."""
    a, b = np.asarray(A, np.float64), np.asarray(B, np.float64)
    try:
        return np.matmul(a, b)
    except ValueError:
        raise InputError(f"MatMul: shapes {list(a.shape)} and {list(b.shape)} do not fit") from None


def _axis(axis, rank, what, inclusive=False):
    """``axis`` made non-negative; in [-rank, rank) (or [-rank, rank] if ``inclusive``)."""
    top = rank + 1 if inclusive else rank
    if not -top <= axis < top:
        raise InputError(f"{what}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def softmax(input, *, axis=-1):
    """ONNX Softmax (opset 13 on): exp(x) / sum(exp(x)) along ``axis``, shifted by the
    maximum so exp cannot overflow.  (Before opset 13 Softmax flattened the axes from
    ``axis`` on into one; ``tinyface.reference.run_node`` does that for older graphs.)"""
    x = np.asarray(input, np.float64)
    axis = _axis(axis, x.ndim, "Softmax")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def flatten(input, *, axis=1):
    """ONNX Flatten: a matrix of prod(shape[:axis]) rows and prod(shape[axis:]) columns."""
    x = np.asarray(input)
    axis = _axis(axis, x.ndim, "Flatten", inclusive=True)
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def reshape(data, shape, *, allowzero=0):
    """ONNX Reshape: a target entry 0 copies the input's size on that axis (unless
    ``allowzero``, when it means size 0), -1 is inferred."""
    x = np.asarray(data)
    target = [int(t) for t in np.asarray(shape).reshape(-1)]
    if not allowzero:
        target = [x.shape[i] if t == 0 and i < x.ndim else t for i, t in enumerate(target)]
    try:
        return x.reshape(target)
    except ValueError:
        raise InputError(f"Reshape: cannot reshape {list(x.shape)} to {target}") from None


def squeeze(data, axes=None):
    """ONNX Squeeze: drop the given size-1 axes (all size-1 axes when ``axes`` is None).
    ``axes`` is an input from opset 13, an attribute before: pass it here either way."""
    x = np.asarray(data)
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    axes = [_axis(int(a), x.ndim, "Squeeze") for a in np.asarray(axes).reshape(-1)]
    if any(x.shape[a] != 1 for a in axes):
        raise InputError(f"Squeeze: axes {axes} of shape {list(x.shape)} are not all of size 1")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])


def unsqueeze(data, axes):
    """ONNX Unsqueeze: insert size-1 axes at ``axes`` (positions in the result).
    ``axes`` is an input from opset 13, an attribute before: pass it here either way."""
    x = np.asarray(data)
    rank = x.ndim + np.asarray(axes).size
    axes = sorted(_axis(int(a), rank, "Unsqueeze") for a in np.asarray(axes).reshape(-1))
    if len(set(axes)) != len(axes):
        raise InputError(f"Unsqueeze: axes {axes} repeat")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return x.reshape(shape)


def transpose(data, *, perm=None):
    """ONNX Transpose: axes permuted by ``perm`` (default: reversed)."""
    x = np.asarray(data)
    perm = list(range(x.ndim))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.ndim)):
        raise InputError(f"Transpose: perm {perm} is not a permutation of the {x.ndim} axes")
    return np.transpose(x, perm)


def shape(data, *, start=0, end=None):
    """ONNX Shape: the input's shape as int64, sliced to [start, end) as Python slices are."""
    return np.array(np.shape(data)[start:end], np.int64)


def gather(data, indices, *, axis=0):
    """ONNX Gather: ``np.take`` along ``axis``; negative indices count from the end."""
    x, idx = np.asarray(data), np.asarray(indices)
    axis = _axis(axis, x.ndim, "Gather")
    if np.any(idx < -x.shape[axis]) or np.any(idx >= x.shape[axis]):
        raise InputError(f"Gather: indices {idx.tolist()} out of range for axis {axis} of size {x.shape[axis]}")
    return np.take(x, idx, axis=axis)


def concat(*inputs, axis):
    """ONNX Concat: the inputs joined along ``axis``."""
    arrays = [np.asarray(x) for x in inputs]
    axis = _axis(axis, arrays[0].ndim, "Concat")
    try:
        return np.concatenate(arrays, axis=axis)
    except ValueError:
        raise InputError(f"Concat: shapes {[list(a.shape) for a in arrays]} differ off axis {axis}") from None


def cast(input, *, to, saturate=1):
    """ONNX Cast to the element type ``to`` (a TensorProto data type, e.g. 1 = FLOAT,
    7 = INT64); float to integer truncates toward zero.  ``saturate`` concerns only
    float8 types, which are not supported."""
    import onnx
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))
    except (KeyError, TypeError, ValueError):
        raise UnsupportedOpError(f"Cast to element type {to!r} is not supported") from None
    if dtype.kind not in "biuf":
        raise UnsupportedOpError(f"Cast to {dtype} is not supported")
    return np.asarray(input).astype(dtype)


def identity(input):
    """ONNX Identity: the input itself."""
    return np.asarray(input)


def dropout(data, ratio=None, training_mode=None, *, seed=None):
    """ONNX Dropout at inference: the input itself (the mask output is not computed).
    ``ratio`` is an input from opset 12, an attribute before; ``training_mode`` (opset
    12) true is refused: random dropping has no reference value."""
    if training_mode is not None and bool(np.asarray(training_mode)):
        raise UnsupportedOpError("Dropout with training_mode true is not supported")
    return np.asarray(data)


def constant(*, value=None, value_float=None, value_floats=None, value_int=None, value_ints=None):
    """ONNX Constant: the value of whichever attribute is given (a tensor, float(s) as
    float32, int(s) as int64)."""
    given = [v is not None for v in (value, value_float, value_floats, value_int, value_ints)]
    if sum(given) != 1:
        raise UnsupportedOpError("Constant needs exactly one of value, value_float(s), value_int(s)")
    if value is not None:
        return np.asarray(value)
    if value_float is not None or value_floats is not None:
        return np.asarray(value_float if value_float is not None else value_floats, np.float32)
    return np.asarray(value_int if value_int is not None else value_ints, np.int64)
