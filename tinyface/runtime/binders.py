"""From op records to kernel calls: one binder per op kind, in one table.

``BINDERS[type(op)](op)`` packs the op's weights once, at load time, into the
layout its kernel reads (pointwise Ci x Co, depthwise KH x KW x C, dense
(KH*KW*Ci) x Co, FC K x N) and returns a binder.  ``binder.bind(ctx)`` takes
the op's output buffers from the :class:`BindContext`, stores them in
``ctx.values`` and returns the kernel calls, ``(function, arguments)``, that
compute them.  Every argument is fixed then (buffers, views of them, weights),
so a plan binds its ops once per input shape and a run is only those calls
(see ``runtime.schedule``).  Anything that depends on the data -- a copy, a
reduction -- must happen inside a call, never in ``bind`` itself.

Values are float32 arrays stored NHWC (4-D maps of conv-like ops) or in ONNX's
layout ("plain"); the plan records which (``Plan.layouts``).
"""
import numpy as np

from tinyface.graph import ops as O
from tinyface.graph.shapes import BATCH
from tinyface.kernels.conv import conv2d, im2col
from tinyface.kernels.depthwise import depthwise
from tinyface.kernels.elementwise import add, scale_shift
from tinyface.kernels.epilogue import make_epilogue
from tinyface.kernels.gemm import gemm, pack_panels
from tinyface.kernels.layout import to_nchw, to_nhwc
from tinyface.kernels.narrow import SAME_AS_GEMM, WIDEST, narrow_conv, pad_columns, pad_epilogue
from tinyface.kernels.pool import max_pool
from tinyface.kernels.softmax import softmax_rows
from tinyface.runtime.binders_quantized import (DequantizeBinder, QAddBinder, QConvBinder, QGemmBinder,
                                                QuantizeBinder)
from tinyface.runtime.block import BlockBinder
from tinyface.runtime.deferred import ready

def kernel_array(a):
    """``a`` as every parameter array reaches a kernel: float32, C-contiguous and
    writeable (a copy of the op's read-only array).  Numba compiles a kernel once per
    combination of its arguments' array flags, read-only included, and the GEMM takes
    about 10 s to compile, so parameters that differ only in such flags must not reach it."""
    return np.require(a, np.float32, ["C", "W"])


def make_calls(calls):
    """Make bound kernel calls, ``[(function, arguments)]``, in order."""
    for function, args in calls:
        function(*args)


class BindContext:
    """What binding an op needs: ``values`` (value name -> array, the ones bound so
    far), the run's ``batch`` size, the ``threads`` the op will run with, and
    ``alloc(shape, dtype)``, which gives an uninitialised buffer from the run's pool
    (float32 unless an 8-bit op asks for bytes)."""

    def __init__(self, values, batch, threads, alloc):
        self.values = values
        self.batch = batch
        self.threads = threads
        self.alloc = alloc

    def new_buffer(self, shape, dtype=np.float32):
        return self.alloc(tuple(shape), np.dtype(dtype))

    def contiguous(self, x, calls):
        """``x`` itself when it is C-contiguous; otherwise a new buffer that a call,
        appended to ``calls``, fills with a copy of ``x`` at run time."""
        if x.flags.c_contiguous:
            return x
        buf = self.new_buffer(x.shape, x.dtype)
        calls.append((np.copyto, (buf, x)))
        return buf


class EpilogueArgs:
    """An op's ``Epilogue`` as the conv-like kernels take it (``kernels.epilogue.make_epilogue``):
    bias, act1 (slope, lo, hi), residual, act2 (slope, lo, hi); an activation not fused is
    the identity (slope 1, lo -inf, hi +inf)."""

    def __init__(self, epilogue):
        channels = len(epilogue.bias)
        act1 = epilogue.act1 or O.Activation.identity(channels)
        act2 = epilogue.act2 or O.Activation.identity(channels)
        self.bias = kernel_array(epilogue.bias)
        self.act1 = (kernel_array(act1.slope), act1.lo, act1.hi)
        self.act2 = (kernel_array(act2.slope), act2.lo, act2.hi)
        self.residual = epilogue.residual

    def value(self, ctx, ndim=4, rows_of=None, calls=None):
        """The epilogue value, with the residual from ``ctx.values`` (a dummy ``ndim``-D
        array if none): for the GEMM (``rows_of`` = n) as rows of n values; with ``calls``,
        made C-contiguous (``BindContext.contiguous``)."""
        res = ctx.values[self.residual] if self.residual else None
        if res is not None and calls is not None:
            res = ctx.contiguous(res, calls)
        if res is not None and rows_of is not None:
            res = res.reshape(-1, rows_of)
        return make_epilogue(self.bias, self.act1, self.act2, res, ndim)


def gathers_windows(co, k):
    """May a dense conv of ``co`` output channels and ``k`` = KH*KW*Ci terms per output run as
    ``im2col`` and ``gemm`` while ``narrow_conv`` is not compiled (``runtime.deferred``)?  Where
    the GEMM gives the narrow kernel's bits, and the rows of windows are no larger than the
    output (``graph.ops.Conv.allocated`` counts them)."""
    return co <= WIDEST and co % SAME_AS_GEMM == 0 and k <= co


class ConvBinder:
    """``Conv``: pointwise -> ``gemm`` on (pixels x Ci) rows, depthwise -> ``depthwise``,
    dense -> ``narrow_conv`` up to ``narrow.WIDEST`` output channels (``im2col`` and ``gemm``
    until it is compiled, where that gives the same bits: ``runtime.deferred``), ``conv2d`` above."""

    def __init__(self, op):
        self.op = op
        w = op.weight
        if op.kind == "pointwise":
            self.weight = kernel_array(w[:, :, 0, 0].T)                 # Ci x Co
            self.panels = pack_panels(self.weight)
        elif op.kind == "depthwise":
            self.weight = kernel_array(w[:, 0].transpose(1, 2, 0))      # KH x KW x C
        else:        # (KH*KW*Ci) x Co
            self.weight = kernel_array(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
            if w.shape[0] <= WIDEST:
                self.weight = pad_columns(self.weight)
            # Co from the op: the packed weight's columns may be padded
            self.panels = pack_panels(self.weight) if gathers_windows(w.shape[0], self.weight.shape[0]) else None
        self.epilogue = EpilogueArgs(op.epilogue)

    def bind(self, ctx):
        op = self.op
        x = ctx.values[op.inputs[0]]
        n, h, w, c = x.shape
        co, _, kh, kw = op.weight.shape
        (sh, sw), (pt, pl, _, _) = op.strides, op.pads
        oh, ow = op.out_hw(h, w)
        out = ctx.new_buffer((n, oh, ow, co))
        ctx.values[op.outputs[0]] = out
        calls = []
        if op.kind == "pointwise":
            x = ctx.contiguous(x[:, ::sh, ::sw], calls)
            calls.append((gemm, (x.reshape(-1, c), self.weight, self.epilogue.value(ctx, 2, co),
                                 out.reshape(-1, co), self.panels)))
        elif op.kind == "depthwise":
            calls.append((depthwise, (x, self.weight, sh, sw, pt, pl, self.epilogue.value(ctx), out)))
        elif self.panels is not None and not ready(narrow_conv):
            patches = ctx.new_buffer((n * oh, ow, self.weight.shape[0]))
            calls.append((im2col, (x, kh, kw, sh, sw, pt, pl, patches)))
            calls.append((gemm, (patches.reshape(n * oh * ow, -1), self.weight, self.epilogue.value(ctx, 2, co),
                                 out.reshape(-1, co), self.panels)))
        elif co <= WIDEST:
            epilogue = pad_epilogue(self.epilogue.value(ctx))
            calls.append((narrow_conv, (x, self.weight, kh, kw, sh, sw, pt, pl, epilogue, out)))
        else:
            calls.append((conv2d, (x, self.weight, kh, kw, sh, sw, pt, pl, self.epilogue.value(ctx), out)))
        return calls


class GemmBinder:
    """``Gemm``: ``gemm`` on the input flattened to rows."""

    def __init__(self, op):
        self.op = op
        self.weight = kernel_array(op.weight)
        self.panels = pack_panels(self.weight)
        self.epilogue = EpilogueArgs(op.epilogue)

    def bind(self, ctx):
        calls = []
        x = ctx.contiguous(ctx.values[self.op.inputs[0]], calls)
        k, n = self.weight.shape
        rows = x.reshape(-1, k)
        out = ctx.new_buffer((rows.shape[0], n))
        ctx.values[self.op.outputs[0]] = out.reshape(x.shape[:-1] + (n,))
        calls.append((gemm, (rows, self.weight, self.epilogue.value(ctx, 2, n), out, self.panels)))
        return calls


class ScaleShiftBinder:
    """``ScaleShift``: ``scale_shift`` on rows of the last stored axis, the channels."""

    def __init__(self, op):
        self.op = op
        act = op.act or O.Activation.identity(len(op.scale))
        self.scale, self.shift, self.slope = (kernel_array(v) for v in (op.scale, op.shift, act.slope))
        self.lo, self.hi = act.lo, act.hi
        self._widened = {}          # channel count -> (scale, shift, slope) at that width

    def _params_for(self, c):
        """Scale, shift and slope for ``c`` channels (scalar parameters repeated, once per c)."""
        if c not in self._widened:
            params = tuple(O.widen(v, c) for v in (self.scale, self.shift, self.slope))
            if any(p is None for p in params):
                self.op.fail(f"has {len(self.scale)} channel parameters but the input has {c} channels")
            self._widened[c] = params
        return self._widened[c]

    def bind(self, ctx):
        calls = []
        x = ctx.contiguous(ctx.values[self.op.inputs[0]], calls)
        c = x.shape[-1] if x.ndim >= 1 else 1
        scale, shift, slope = self._params_for(c)
        rows = x.reshape(-1, c)
        out = ctx.new_buffer(rows.shape)
        ctx.values[self.op.outputs[0]] = out.reshape(x.shape)
        calls.append((scale_shift, (rows, scale, shift, slope, self.lo, self.hi, out)))
        return calls


class AddBinder:
    """``Add``: ``add`` on rows of the last stored axis, with no activation."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        calls = []
        a, b = (ctx.contiguous(ctx.values[v], calls) for v in self.op.inputs)
        c = a.shape[-1]
        out = ctx.new_buffer(a.shape)
        ctx.values[self.op.outputs[0]] = out
        identity = (np.ones(c, np.float32), np.float32(-np.inf), np.float32(np.inf))
        calls.append((add, (a.reshape(-1, c), b.reshape(-1, c), *identity, out.reshape(-1, c))))
        return calls


class MaxPoolBinder:
    """``MaxPool``: ``max_pool`` on the NHWC map."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        op = self.op
        calls = []
        x = ctx.contiguous(ctx.values[op.inputs[0]], calls)      # the kernel reads it flat
        n, h, w, c = x.shape
        oh, ow = op.out_hw(h, w)
        out = ctx.new_buffer((n, oh, ow, c))
        ctx.values[op.outputs[0]] = out
        return calls + [(max_pool, (x, *op.kernel, *op.strides, op.pads[0], op.pads[1], out))]


class SoftmaxBinder:
    """``Softmax``: ``softmax_rows`` on contiguous rows (the axis moved last by copies)."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        op = self.op
        calls = []
        x = ctx.contiguous(ctx.values[op.inputs[0]], calls)
        out = ctx.new_buffer(x.shape)
        ctx.values[op.outputs[0]] = out
        if op.flatten_from is not None:
            rows = int(np.prod(x.shape[:op.flatten_from]))
            calls.append((softmax_rows, (x.reshape(rows, -1), out.reshape(rows, -1))))
            return calls
        moved = np.moveaxis(x, op.axis, -1)
        rows = ctx.new_buffer(moved.shape)
        result = ctx.new_buffer(moved.shape)
        last = moved.shape[-1]
        calls += [(np.copyto, (rows, moved)),
                  (softmax_rows, (rows.reshape(-1, last), result.reshape(-1, last))),
                  (np.copyto, (np.moveaxis(out, op.axis, -1), result))]
        return calls


def mean_over_hw(x, out):
    """out[n, 0, 0, c] = mean of x[n, :, :, c], summed in float64."""
    out[...] = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64)


class GlobalAvgPoolBinder:
    """``GlobalAvgPool``: :func:`mean_over_hw` (NumPy) on the NHWC map."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        x = ctx.values[self.op.inputs[0]]
        out = ctx.new_buffer((x.shape[0], 1, 1, x.shape[3]))
        ctx.values[self.op.outputs[0]] = out
        return [(mean_over_hw, (x, out))]


class TransposeBinder:
    """``Transpose``: a NumPy copy of the transposed view."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        x = ctx.values[self.op.inputs[0]]
        out = ctx.new_buffer([x.shape[p] for p in self.op.perm])
        ctx.values[self.op.outputs[0]] = out
        return [(np.copyto, (out, np.transpose(x, self.op.perm)))]


class ReshapeBinder:
    """``Reshape``: a view of the (contiguous) input; no call unless a copy is needed."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        calls = []
        x = ctx.contiguous(ctx.values[self.op.inputs[0]], calls)
        dims = [ctx.batch if t == BATCH else t for t in self.op.target]
        target = [x.shape[i] if t == 0 else t for i, t in enumerate(dims)]
        ctx.values[self.op.outputs[0]] = x.reshape(target)
        return calls


class LayoutBinder:
    """``Layout``: ``to_nhwc`` or ``to_nchw``."""

    def __init__(self, op):
        self.op = op

    def bind(self, ctx):
        x = ctx.values[self.op.inputs[0]]
        perm = (0, 2, 3, 1) if self.op.to_nhwc else (0, 3, 1, 2)
        out = ctx.new_buffer([x.shape[p] for p in perm], x.dtype)
        ctx.values[self.op.outputs[0]] = out
        return [(to_nhwc if self.op.to_nhwc else to_nchw, (x, out))]


def block_binder(op):
    """``InvertedResidual``: ``kernels.block.inverted_residual``, or its three convs
    (see ``runtime.block``)."""
    return BlockBinder(op, tuple(ConvBinder(conv) for conv in op.convs))


BINDERS = {
    O.Conv: ConvBinder,
    O.Gemm: GemmBinder,
    O.ScaleShift: ScaleShiftBinder,
    O.Add: AddBinder,
    O.MaxPool: MaxPoolBinder,
    O.Softmax: SoftmaxBinder,
    O.GlobalAvgPool: GlobalAvgPoolBinder,
    O.Transpose: TransposeBinder,
    O.Reshape: ReshapeBinder,
    O.Layout: LayoutBinder,
    O.InvertedResidual: block_binder,
    O.QConv: QConvBinder,
    O.QGemm: QGemmBinder,
    O.QAdd: QAddBinder,
    O.Quantize: QuantizeBinder,
    O.Dequantize: DequantizeBinder,
}


def binder(op):
    """The packed binder of ``op``."""
    return BINDERS[type(op)](op)
