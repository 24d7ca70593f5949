"""Lowering of the 8-bit nodes: QuantizeLinear, DequantizeLinear and the integer nodes
``graph.qdq`` folds QDQ patterns into (QLinearConv, QGemm, QLinearAdd).

Quantised values are bytes at run time (``graph.ops``: uint8, an int8 tensor held
as uint8 plus 128); ``Lowering.quantized`` holds their names.  A float op may
not read one (a Reshape or Identity may: it passes the bytes on); a
DequantizeLinear must read one or a constant.  Refused with
``UnsupportedOpError``, naming the node: zero points of other types than
uint8/int8 (int4, int16, float8), per-channel scales or zero points of
activations, scales that are not positive and finite, and layers whose int32
accumulators could overflow (more than ``ops.QUANTIZED_MAX_TERMS`` products per
output).
"""
import numpy as np

from tinyface.graph import ops as O
from tinyface.graph.lower import _conv_geometry, activation_layout, need_const, unsupported

def quantize_linear(x, scale, zero, lo=0, hi=255):
    """sat(roundeven(x / scale) + zero) in float32, as ``kernels.quantized.quantize``."""
    return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)).astype(np.int64) + zero, lo, hi)


def dequantize_linear(q, scale, zero, axis):
    """float32(q - zero) * scale, scale and zero per tensor or along ``axis``."""
    shape = [1] * q.ndim
    if q.ndim:
        shape[axis] = -1
    s, z = np.asarray(scale, np.float32), np.asarray(zero, np.int64)
    return (q.astype(np.int64) - z.reshape(shape if z.size > 1 else [])).astype(np.float32) * \
        s.reshape(shape if s.size > 1 else [])



def _scale(low, node, index, what):
    """A per-tensor scale: a positive finite float32."""
    s = need_const(low, node, index, f"the {what} scale")
    if s is None or np.size(s) != 1:
        unsupported(low, node, f"the {what} scale must be one value per tensor "
                               f"(per-channel scales are supported for weights only)")
    s = np.float32(np.asarray(s).reshape(-1)[0])
    if not (np.isfinite(s) and s > 0):
        unsupported(low, node, f"the {what} scale {s} must be positive and finite")
    return s


def _zero(low, node, index, what):
    """A per-tensor zero point in the byte domain (int8 + 128), and the tensor's offset."""
    z = need_const(low, node, index, f"the {what} zero point")
    if z is None:
        return 0, 0
    if np.size(z) != 1:
        unsupported(low, node, f"the {what} zero point must be one value per tensor")
    offset = _offset(low, node, z.dtype, what)
    return int(np.asarray(z).reshape(-1)[0]) + offset, offset


def _offset(low, node, dtype, what):
    if dtype == np.uint8:
        return 0
    if dtype == np.int8:
        return O.INT8_OFFSET
    unsupported(low, node, f"the {what} is quantised to {dtype}; tinyface runs 8-bit quantisation "
                           f"(uint8 or int8)")


def _clip(low, node, scale, zero):
    """The byte range of the output, narrowed by a fused Relu/Clip (``tinyface_clip``)."""
    lo, hi = node.attrs.get("tinyface_clip", (-np.inf, np.inf))
    q_lo = 0 if lo == -np.inf else int(quantize_linear(np.float32(lo), scale, zero, 0, 255))
    q_hi = 255 if hi == np.inf else int(quantize_linear(np.float32(hi), scale, zero, 0, 255))
    return q_lo, q_hi


def _weight(low, node, index, zero_index, channel_axis):
    """The weight less its zero point as int16, and its per-channel zero points' check."""
    w = need_const(low, node, index, "the weight")
    _offset(low, node, w.dtype, "weight")
    z = need_const(low, node, zero_index, "the weight zero point")
    z = np.zeros(1, np.int64) if z is None else np.asarray(z, np.int64).reshape(-1)
    if z.size not in (1, w.shape[channel_axis]):
        unsupported(low, node, f"{z.size} weight zero points for {w.shape[channel_axis]} output channels")
    shape = [1] * w.ndim
    shape[channel_axis] = -1
    return w.astype(np.int64) - z.reshape(shape)


def _weight_scales(low, node, index, channels):
    s = np.asarray(need_const(low, node, index, "the weight scale"), np.float32).reshape(-1)
    if s.size not in (1, channels) or not (np.all(np.isfinite(s)) and np.all(s > 0)):
        unsupported(low, node, f"the weight scale must be positive and finite, one value or one per output "
                               f"channel ({channels}), got {s.size}")
    return np.broadcast_to(s, (channels,))


def _bias(low, node, index, channels):
    b = need_const(low, node, index, "the bias")
    if b is None:
        return np.zeros(channels, np.int32)
    if b.dtype != np.int32 or b.reshape(-1).shape not in ((channels,), (1,)):
        unsupported(low, node, f"the bias must be int32 with one value per output channel ({channels})")
    return np.broadcast_to(b.reshape(-1), (channels,))


def _check_sums(low, node, terms, requant, weight_sums):
    """Refuse a layer whose int32 accumulator could overflow: too many products per output,
    or a bias (with the input zero point folded in, ``runtime.binders_quantized``) of 2**30
    or more in magnitude."""
    if terms > O.QUANTIZED_MAX_TERMS:
        unsupported(low, node, f"{terms} products per output could overflow the int32 accumulator "
                               f"(at most {O.QUANTIZED_MAX_TERMS})")
    bias = requant.bias.astype(np.int64) - requant.x_zero * weight_sums
    if np.abs(bias).max(initial=0) >= 2**30:
        unsupported(low, node, "a bias of 2**30 or more in magnitude could overflow the int32 accumulator")


def _requant(low, node, x, w, y, bias_index, channels):
    """The ``Requantize`` of an integer node: ``x``, ``w``, ``y`` are the input indices of
    the (scale, zero point) of its input, weight and output."""
    y_scale = _scale(low, node, y, "output")
    y_zero, _ = _zero(low, node, y + 1, "output")
    lo, hi = _clip(low, node, y_scale, y_zero)
    return O.Requantize(_bias(low, node, bias_index, channels), _scale(low, node, x, "input"),
                        _zero(low, node, x + 1, "input")[0], _weight_scales(low, node, w, channels),
                        y_scale, y_zero, lo, hi)


def _emit_bytes(low, op, layout):
    low.emit(op, layout)
    low.quantized.update(op.outputs)


def h_qlinearconv(low, node):
    """QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B."""
    x = node.inputs[0]
    _check_byte_input(low, node, x)
    w = _weight(low, node, 3, 5, 0)
    strides, pads, groups = _conv_geometry(low, node, w, x)
    requant = _requant(low, node, 1, 4, 6, 8, w.shape[0])
    _check_sums(low, node, int(np.prod(w.shape[1:])), requant, w.sum((1, 2, 3)) if groups == 1 else 0)
    _emit_bytes(low, O.QConv(node.name, [low.use(x, "nhwc")], node.outputs[:1], w, requant, strides, pads,
                             groups), "nhwc")


def h_qgemm(low, node):
    """QGemm: A, a_scale, a_zero_point, B, b_scale, b_zero_point, C, y_scale, y_zero_point."""
    x = node.inputs[0]
    _check_byte_input(low, node, x)
    trans_b = node.attrs.get("transB", 0) == 1
    w = _weight(low, node, 3, 5, 0 if trans_b else 1)
    if w.ndim != 2 or len(low.shape(x)) != 2:
        unsupported(low, node, f"the integer matrix product needs a 2-D input and weight, got "
                               f"{len(low.shape(x))}-D and {w.ndim}-D")
    w = w.T if trans_b else w
    requant = _requant(low, node, 1, 4, 7, 6, w.shape[1])
    _check_sums(low, node, w.shape[0], requant, w.sum(0))
    _emit_bytes(low, O.QGemm(node.name, [low.use(x, "plain")], node.outputs[:1], w, requant), "plain")


def h_qlinearadd(low, node):
    """QLinearAdd: A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point."""
    a, b = node.inputs[0], node.inputs[3]
    for v in (a, b):
        _check_byte_input(low, node, v)
    y_scale = _scale(low, node, 6, "output")
    y_zero, _ = _zero(low, node, 7, "output")
    lo, hi = _clip(low, node, y_scale, y_zero)
    layout = activation_layout(low, a)
    _emit_bytes(low, O.QAdd(node.name, [low.use(a, layout), low.use(b, layout)], node.outputs[:1],
                            _scale(low, node, 1, "A"), _zero(low, node, 2, "A")[0], _scale(low, node, 4, "B"),
                            _zero(low, node, 5, "B")[0], y_scale, y_zero, lo, hi), layout)


def h_quantize(low, node):
    x = node.inputs[0]
    if len(node.inputs) > 1 and node.inputs[1] and low.is_const(node.inputs[1]) and \
            np.size(low.const(node.inputs[1])) != 1:
        unsupported(low, node, "per-channel quantisation of a runtime tensor is not supported "
                               "(only weights may have a scale per channel)")
    scale = _scale(low, node, 1, "output")
    zero, offset = _zero(low, node, 2, "output")
    if low.is_const(x):
        q = quantize_linear(low.const(x), scale, zero) - offset
        return low.fold(node, q.astype(np.int8 if offset else np.uint8))
    if low.name(x) in low.quantized:
        unsupported(low, node, "reads a value that is already quantised")
    layout = activation_layout(low, x)
    _emit_bytes(low, O.Quantize(node.name, [low.use(x, layout)], node.outputs[:1], scale, zero), layout)


def h_dequantize(low, node):
    x = node.inputs[0]
    if low.is_const(x):
        q = low.const(x)
        if q.dtype not in (np.int8, np.uint8, np.int32):
            unsupported(low, node, f"dequantising a constant of type {q.dtype} is not supported")
        scale = np.asarray(need_const(low, node, 1, "the scale"), np.float32)
        zero = need_const(low, node, 2, "the zero point")
        axis = node.attrs.get("axis", 1)
        return low.fold(node, dequantize_linear(q, scale, 0 if zero is None else zero, axis % max(q.ndim, 1)))
    _check_byte_input(low, node, x)
    scale = _scale(low, node, 1, "input")
    zero, _ = _zero(low, node, 2, "input")
    x = low.name(x)
    low.emit(O.Dequantize(node.name, [x], node.outputs[:1], scale, zero), low.layouts[x])


def _check_byte_input(low, node, v):
    if low.name(v) not in low.quantized:
        unsupported(low, node, f"reads '{v}', which is not a quantised value (a QuantizeLinear's or "
                               f"an integer op's output)")


def check_reads(low, node):
    """Refuse a float op reading a quantised value; a byte view's output stays quantised."""
    read = [v for v in node.inputs if v and low.name(v) in low.quantized]
    if not read or node.op in HANDLERS:
        return
    if node.op not in O.BYTE_VIEWS:
        unsupported(low, node, f"reads the quantised value '{read[0]}' without a DequantizeLinear")


def mark_views(low, node):
    """After a byte view is lowered: its output is quantised too."""
    if node.op in O.BYTE_VIEWS and any(v and low.name(v) in low.quantized for v in node.inputs[:1]):
        low.quantized.update(low.name(o) for o in node.outputs[:1])


HANDLERS = {
    "QuantizeLinear": h_quantize, "DequantizeLinear": h_dequantize,
    "QLinearConv": h_qlinearconv, "QGemm": h_qgemm, "QLinearAdd": h_qlinearadd,
}
