"""The 8-bit arithmetic of tinyface's integer kernels, in NumPy, exactly.

Unlike the float references (float64, compared with a tolerance), these state
bit for bit what ``kernels.quantized`` computes, in ONNX's layout (NCHW maps,
Co x C/group x KH x KW weights).  The integer sums are exact (float64 holds
every int below 2**53; ``window.conv`` of integer-valued arrays sums them
exactly); the float steps are float32, in onnxruntime's order:

* ``quantize_linear``: ``q = sat(roundeven(x / scale) + zero_point)``, float32
  division (ONNX QuantizeLinear; onnxruntime's MLAS divides too);
* ``dequantize_linear``: ``float32(q - zero_point) * scale``;
* ``requantize``: ``roundeven(clip(float32(acc) * m, lo, hi)) + z`` with ``m`` the
  float32 product ``x_scale * w_scale / y_scale`` (``multiplier``), as
  onnxruntime's QLinearConv requantises;
* ``qadd``: ``roundeven(clip(float32(a - za) * sa + float32(b - zb) * sb, lo, hi)) + z``,
  ``sa``, ``sb`` the float32 ratios of the operands' scales to the output's.

Round half to even throughout (``np.rint``).  ``lo`` and ``hi`` are the output's
range minus its zero point.
"""
import numpy as np

from tinyface.reference.window import conv

F32 = np.float32


def quantize_linear(x, scale, zero_point, lo=0, hi=255):
    """x (float32) to integers in lo..hi: sat(roundeven(x / scale) + zero_point)."""
    y = np.asarray(x, F32) / F32(scale)
    return np.clip(np.rint(y).astype(np.int64) + int(zero_point), lo, hi)


def dequantize_linear(q, scale, zero_point, axis=1):
    """float32(q - zero_point) * scale, the scale and zero point per tensor or per ``axis``."""
    q = np.asarray(q).astype(np.int64)
    shape = [1] * q.ndim
    if np.ndim(scale) == 1 and q.ndim:
        shape[axis] = -1
    s = np.asarray(scale, F32).reshape(shape) if np.ndim(scale) else F32(scale)
    z = np.asarray(zero_point, np.int64).reshape(shape) if np.ndim(zero_point) else int(zero_point)
    return (q - z).astype(F32) * s


def multiplier(x_scale, w_scale, y_scale):
    """The float32 requantisation factor per output channel: x_scale * w_scale / y_scale."""
    return (F32(x_scale) * np.asarray(w_scale, F32)) / F32(y_scale)


def requantize(acc, m, lo, hi, z, axis=1):
    """roundeven(clip(float32(acc) * m, lo, hi)) + z, ``m`` per channel along ``axis``."""
    acc = np.asarray(acc)
    shape = [1] * acc.ndim
    shape[axis] = -1
    y = acc.astype(F32) * np.asarray(m, F32).reshape(shape)
    return np.rint(np.clip(y, F32(lo), F32(hi))).astype(np.int64) + int(z)


def qconv_accumulate(xq, zx, wq, bias, strides=(1, 1), pads=(0, 0, 0, 0), group=1):
    """The int32 accumulators of a quantised Conv: bias[o] + sum (x - zx) * w over each
    window, padding counting as x = zx (ONNX QLinearConv); returned as int64."""
    x = np.asarray(xq, np.int64) - int(zx)
    acc = conv(x, np.asarray(wq, np.int64), np.asarray(bias, np.int64), strides=list(strides),
               pads=list(pads), group=group)
    return np.rint(acc).astype(np.int64)


def qconv(xq, zx, wq, bias, m, lo, hi, z, strides=(1, 1), pads=(0, 0, 0, 0), group=1):
    """A quantised Conv from bytes to bytes: ``requantize`` of ``qconv_accumulate``."""
    return requantize(qconv_accumulate(xq, zx, wq, bias, strides, pads, group), m, lo, hi, z)


def qadd(a, za, sa, b, zb, sb, lo, hi, z):
    """A quantised Add: roundeven(clip(float32(a - za) * sa + float32(b - zb) * sb, lo, hi)) + z."""
    ya = (np.asarray(a, np.int64) - int(za)).astype(F32) * F32(sa)
    yb = (np.asarray(b, np.int64) - int(zb)).astype(F32) * F32(sb)
    return np.rint(np.clip(ya + yb, F32(lo), F32(hi))).astype(np.int64) + int(z)
