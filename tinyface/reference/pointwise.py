"""Element-wise ops: activations, BatchNormalization, Add/Sub/Mul/Div, and tinyface's epilogue.

Float inputs are computed, and returned, in float64.  Add, Sub, Mul and Div
broadcast both ways as NumPy does (ONNX's multidirectional broadcasting);
on integer inputs (the shape arithmetic exporters emit) they keep the
integer type, and Div rounds toward zero as ONNX's integer division does.
PRelu's slope broadcasts one way, to the shape of X.
"""
import numpy as np

from tinyface.errors import InputError, UnsupportedOpError


def _float(x):
    return np.asarray(x, np.float64)


def broadcasts_to(shape, target):
    """Whether an array of ``shape`` broadcasts to ``target`` without enlarging it
    (ONNX's unidirectional broadcasting)."""
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def relu(X):
    """ONNX Relu: max(x, 0)."""
    return np.maximum(_float(X), 0.0)


def leaky_relu(X, *, alpha=0.01):
    """ONNX LeakyRelu: x where x >= 0, alpha * x where x < 0."""
    x = _float(X)
    return np.where(x < 0, alpha * x, x)


def prelu(X, slope):
    """ONNX PRelu: x where x >= 0, slope * x where x < 0.

    ``slope`` broadcasts to X's shape (one way: it may not enlarge X); for one
    slope per channel of an N x C x H x W map it has shape C x 1 x 1 (or use
    ``per_channel``).  The same function serves LeakyRelu with a scalar slope.
    """
    x, s = _float(X), _float(slope)
    if not broadcasts_to(s.shape, x.shape):
        raise InputError(f"PRelu slope of shape {list(s.shape)} does not broadcast to X of shape {list(x.shape)}")
    return np.where(x < 0, s * x, x)


def clip(input, min=None, max=None):
    """ONNX Clip: min(max(x, min), max); an absent bound is no bound.

    ``min`` and ``max`` are inputs from opset 11 and attributes before: either
    way, pass them here.  When min > max every value becomes max, as ONNX says.
    NaN stays NaN.
    """
    x = _float(input)
    lo = -np.inf if min is None else float(np.asarray(min))
    hi = np.inf if max is None else float(np.asarray(max))
    return np.minimum(np.maximum(x, lo), hi)


def batch_normalization(X, scale, B, input_mean, input_var, *, epsilon=1e-5, momentum=0.9,
                        training_mode=0, spatial=1):
    """ONNX BatchNormalization for inference, per channel (axis 1)::

        y = (x - input_mean[c]) / sqrt(input_var[c] + epsilon) * scale[c] + B[c]

    ``momentum`` only matters in training; ``training_mode=1`` (opset 14) and
    ``spatial=0`` (opset 7's per-element statistics) are refused.
    """
    if training_mode:
        raise UnsupportedOpError("BatchNormalization with training_mode=1 (batch statistics) is not supported")
    if not spatial:
        raise UnsupportedOpError("BatchNormalization with spatial=0 is not supported")
    x = _float(X)
    if x.ndim < 2:
        raise InputError(f"BatchNormalization input of shape {list(x.shape)}: expected N x C x ...")
    params = [_float(p) for p in (scale, B, input_mean, input_var)]
    if any(p.shape != (x.shape[1],) for p in params):
        raise InputError(f"BatchNormalization parameters of shapes {[list(p.shape) for p in params]}: "
                         f"expected one value per channel ({x.shape[1]})")
    s, b, mean, var = (per_channel(p, x.ndim) for p in params)
    return (x - mean) / np.sqrt(var + epsilon) * s + b


def _operands(op, A, B):
    """A and B as arrays of one type (float64 unless both are integers), with their
    broadcast shape checked."""
    a, b = np.asarray(A), np.asarray(B)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise InputError(f"{op}: shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        kind = np.result_type(a, b)
        return a.astype(kind), b.astype(kind)
    return a.astype(np.float64), b.astype(np.float64)


def add(A, B):
    """ONNX Add: A + B, broadcast."""
    a, b = _operands("Add", A, B)
    return a + b


def sub(A, B):
    """ONNX Sub: A - B, broadcast."""
    a, b = _operands("Sub", A, B)
    return a - b


def mul(A, B):
    """ONNX Mul: A * B, broadcast."""
    a, b = _operands("Mul", A, B)
    return a * b


def div(A, B):
    """ONNX Div: A / B, broadcast; on integers the quotient rounded toward zero."""
    a, b = _operands("Div", A, B)
    if a.dtype.kind == "f":
        return a / b
    if np.any(b == 0):
        raise InputError("Div: integer division by zero")
    quotient = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -quotient, quotient).astype(a.dtype)


# --- tinyface's fused epilogue, in ONNX terms (not an ONNX op) ---------------------

def per_channel(v, ndim, axis=1):
    """A per-channel vector shaped to broadcast along ``axis`` of an ``ndim``-D array."""
    shape = [1] * ndim
    shape[axis] = -1
    return _float(v).reshape(shape)


def act(y, slope, lo, hi, axis=1):
    """The one activation form of tinyface's epilogue, as ONNX ops:
    Clip(PRelu(y, slope), lo, hi), with ``slope`` per channel along ``axis``.

    Relu is (slope 0, lo -inf, hi inf) or (1, 0, inf), Relu6 (1, 0, 6),
    LeakyRelu(alpha) (alpha, -inf, inf), Clip(lo, hi) (1, lo, hi), and no
    activation (1, -inf, inf).
    """
    y = _float(y)
    return clip(prelu(y, per_channel(slope, y.ndim, axis)), lo, hi)


def epilogue(y, bias, act1, residual=None, act2=None, axis=1):
    """What every conv-like kernel of tinyface (tinyface.kernels.epilogue) does to its
    accumulator ``y`` -- a Conv or Gemm with its BatchNormalization folded in, then an
    activation, a residual Add and another activation::

        y = act2(act1(y + bias) + residual)

    ``bias`` is per channel (along ``axis``: 1 for both NCHW maps and M x N
    Gemm outputs); ``act1`` and ``act2`` are (slope per channel, lo, hi) as
    in ``act`` (None for none); ``residual`` has y's shape (None: no add).
    """
    y = _float(y) + per_channel(bias, np.ndim(y), axis)
    if act1 is not None:
        y = act(y, *act1, axis=axis)
    if residual is not None:
        y = y + _float(residual)
    if act2 is not None:
        y = act(y, *act2, axis=axis)
    return y
