"""Binders of the 8-bit ops (``graph.ops``: QConv, QGemm, QAdd, Quantize, Dequantize).

As ``runtime.binders``: each packs its op once (weights less their zero point, in
the layout ``kernels.quantized`` reads; the input zero point folded into the bias
where the kernel sums raw bytes) and binds it to buffers per input shape.  Byte
values are uint8 buffers (``ctx.new_buffer(shape, np.uint8)``); every kernel
scalar is passed with one fixed type (int32 or float32) and every residual as a
flat array, so each kernel compiles once.  A GEMM or dense conv whose weights
``fits_quads`` admits (7-bit or pair-bounded weights) runs on the quad kernels, the others on the
pair kernels: the same bytes either way, the quads twice the products per step.
"""
import numpy as np

from tinyface.kernels.quantized import (dequantize, fits_quads, pack_depthwise, pack_pairs, pack_quads, qadd, qconv2d,
                                        qconv2d_quads, qdepthwise, qgemm, qgemm_quads, quantize)

F32, I32 = np.float32, np.int32
_NO_RESIDUAL = np.zeros(1, np.uint8)


def _flat(ctx, calls, value):
    return ctx.contiguous(value, calls).reshape(-1)


def weight_rows(op):
    """The (K x N) int32 weight rows of a ``QGemm``, or of a pointwise or dense ``QConv``
    ((KH*KW*Ci) x Co), as their kernels take them."""
    w = op.weight.astype(np.int32)
    return w if op.kind == "qgemm" else w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])


def int8_form(op):
    """Which 8-bit kernels this machine runs ``op``'s products on: "quads" or "pairs" for a
    GEMM or a pointwise or dense conv (``fits_quads`` of its weights, on this target), None
    for other ops (``tinyface inspect`` shows it)."""
    if op.kind not in ("qgemm", "qpointwise", "qconv"):
        return None
    return "quads" if fits_quads(weight_rows(op)) else "pairs"


def _packed_rows(rows):
    """(packed weight, GEMM kernel, dense conv kernel) for the (K x N) weight ``rows``: quads
    where they fit, else pairs."""
    if fits_quads(rows):
        return pack_quads(rows), qgemm_quads, qconv2d_quads
    return pack_pairs(rows), qgemm, qconv2d


def _ratio(scale, to):
    """scale / to in float32: an Add's factor for one operand."""
    return F32(F32(scale) / F32(to))


class RequantizeArgs:
    """A ``Requantize`` as the kernels take it: the ``epi`` tuple (bias', m, lo, hi, z,
    has_res, zq, sq, zr, sr, lo2, hi2, z2) and the residual's name.  ``weight_sums``
    (per channel) folds the input zero point into the bias: bias' = bias - zx * sum(w)
    (within 2**30: ``graph.lower_quantized``); None where the kernel subtracts it itself
    (depthwise)."""

    def __init__(self, rq, weight_sums):
        bias = rq.bias.astype(np.int64)
        if weight_sums is not None:
            bias = bias - rq.x_zero * weight_sums.astype(np.int64)
        self.residual = rq.residual
        z = rq.y_zero
        if rq.residual:
            tail = (True, I32(z), _ratio(rq.y_scale, rq.sum_scale), I32(rq.residual_zero),
                    _ratio(rq.residual_scale, rq.sum_scale), F32(rq.sum_lo - rq.sum_zero),
                    F32(rq.sum_hi - rq.sum_zero), I32(rq.sum_zero))
        else:
            tail = (False, I32(0), F32(0), I32(0), F32(0), F32(0), F32(0), I32(0))
        self.epi = (bias.astype(I32), np.ascontiguousarray(rq.multiplier(), F32), F32(rq.lo - z), F32(rq.hi - z),
                    I32(z)) + tail

    def residual_bytes(self, ctx, calls):
        return _flat(ctx, calls, ctx.values[self.residual]) if self.residual else _NO_RESIDUAL


class QConvBinder:
    """``QConv``: pointwise -> ``qgemm`` on (pixels x Ci) rows, depthwise -> ``qdepthwise``,
    dense -> ``qconv2d`` (the GEMM and dense conv in their quad forms where the weights fit)."""

    def __init__(self, op):
        self.op = op
        if op.kind == "qdepthwise":
            w = op.weight.astype(np.int32)[:, 0].transpose(1, 2, 0)                 # KH x KW x C
            self.weight = pack_depthwise(w, op.requant.x_zero)
            self.requant = RequantizeArgs(op.requant, None)
        else:
            rows = weight_rows(op)
            self.weight, self.gemm, self.conv = _packed_rows(rows)
            self.requant = RequantizeArgs(op.requant, rows.sum(0))

    def bind(self, ctx):
        op = self.op
        calls = []
        x = ctx.contiguous(ctx.values[op.inputs[0]], calls)
        n, h, w, c = x.shape
        co, _, kh, kw = op.weight.shape
        (sh, sw), (pt, pl, _, _) = op.strides, op.pads
        oh, ow = op.out_hw(h, w)
        out = ctx.new_buffer((n, oh, ow, co), np.uint8)
        ctx.values[op.outputs[0]] = out
        res = self.requant.residual_bytes(ctx, calls)
        epi = self.requant.epi
        zx = op.requant.x_zero
        if op.kind == "qpointwise":
            x = ctx.contiguous(x[:, ::sh, ::sw], calls)
            calls.append((self.gemm, (x.reshape(-1, c), self.weight, epi, res, out.reshape(-1, co))))
        elif op.kind == "qdepthwise":
            calls.append((qdepthwise, (x, I32(zx), *self.weight, sh, sw, pt, pl, epi, res, out)))
        else:
            calls.append((self.conv, (x, np.uint8(zx), self.weight, kh, kw, sh, sw, pt, pl, epi, res, out)))
        return calls


class QGemmBinder:
    """``QGemm``: ``qgemm`` (or ``qgemm_quads``) on the (N x K) input."""

    def __init__(self, op):
        self.op = op
        w = weight_rows(op)
        self.weight, self.gemm, _ = _packed_rows(w)
        self.requant = RequantizeArgs(op.requant, w.sum(0))

    def bind(self, ctx):
        calls = []
        x = ctx.contiguous(ctx.values[self.op.inputs[0]], calls)
        out = ctx.new_buffer((x.shape[0], self.op.weight.shape[1]), np.uint8)
        ctx.values[self.op.outputs[0]] = out
        calls.append((self.gemm, (x, self.weight, self.requant.epi, self.requant.residual_bytes(ctx, calls), out)))
        return calls


class QAddBinder:
    """``QAdd``: ``qadd`` on the flat bytes."""

    def __init__(self, op):
        self.op = op
        self.args = (I32(op.a_zero), _ratio(op.a_scale, op.y_scale), I32(op.b_zero), _ratio(op.b_scale, op.y_scale),
                     F32(op.lo - op.y_zero), F32(op.hi - op.y_zero), I32(op.y_zero))

    def bind(self, ctx):
        calls = []
        a, b = (_flat(ctx, calls, ctx.values[v]) for v in self.op.inputs)
        shape = ctx.values[self.op.inputs[0]].shape
        out = ctx.new_buffer(shape, np.uint8)
        ctx.values[self.op.outputs[0]] = out
        za, sa, zb, sb, lo, hi, z = self.args
        calls.append((qadd, (a, za, sa, b, zb, sb, lo, hi, z, out.reshape(-1))))
        return calls


class QuantizeBinder:
    """``Quantize``: ``quantize`` on the flat floats (and the base of ``DequantizeBinder``:
    a kernel from one flat array to another of ``out_dtype``)."""
    kernel = staticmethod(quantize)
    out_dtype = np.uint8

    def __init__(self, op):
        self.op = op
        self.args = (F32(op.scale), I32(op.zero), F32(op.lo - op.zero), F32(op.hi - op.zero))

    def bind(self, ctx):
        calls = []
        x = ctx.values[self.op.inputs[0]]
        out = ctx.new_buffer(x.shape, self.out_dtype)
        ctx.values[self.op.outputs[0]] = out
        calls.append((self.kernel, (_flat(ctx, calls, x), *self.args, out.reshape(-1))))
        return calls


class DequantizeBinder(QuantizeBinder):
    """``Dequantize``: ``dequantize`` on the flat bytes."""
    kernel = staticmethod(dequantize)
    out_dtype = np.float32

    def __init__(self, op):
        self.op = op
        self.args = (F32(op.scale), I32(op.zero))
