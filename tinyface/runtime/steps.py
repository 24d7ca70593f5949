"""Steps: the fused operations a plan runs, each calling one kernel.

A step reads named values from an environment dict and writes its outputs.
Values are float32 arrays in one of two layouts, fixed at load time:
``"nhwc"`` for 4-D feature maps produced by conv-like steps (channels last),
and ``"plain"`` for everything else (ONNX's own layout).  Shapes in ``infer``
are always *logical* (ONNX's NCHW), whatever the storage.

``infer`` validates input shapes and returns output shapes; a plan calls it
for every step before running any kernel, because Numba does not bounds-check.

``bind`` takes the step's output buffers, stores them in the environment and
returns the kernel calls, ``(function, arguments)``, that compute them.  Every
argument is bound then (buffers, views of them, weights), so a plan binds its
steps once per input shape and a run is only those calls (see
``runtime.schedule``).  Anything that depends on the data -- a copy, a
reduction -- must happen inside a call, never in ``bind`` itself.
"""
import numpy as np

from tinyface.errors import InputError
from tinyface.kernels.conv import conv2d
from tinyface.kernels.depthwise import depthwise
from tinyface.kernels.elementwise import add, scale_shift
from tinyface.kernels.epilogue import Activation
from tinyface.kernels.gemm import KU, gemm
from tinyface.kernels.layout import to_nchw, to_nhwc
from tinyface.kernels.pool import max_pool
from tinyface.kernels.softmax import softmax_rows
from tinyface.runtime.shapes import ALLOC_KEY, BATCH, BATCH_KEY, conv_output_size, fmt

_NO_RESIDUAL = {2: np.zeros((1, 1), np.float32), 4: np.zeros((1, 1, 1, 1), np.float32)}


def widen(v, channels):
    """``v`` as a vector over ``channels`` channels: itself, its one value repeated,
    or None when its length is neither."""
    if len(v) == channels:
        return v
    if len(v) == 1:
        return np.full(channels, v[0], np.float32)
    return None


def kernel_array(a):
    """``a`` as every parameter array reaches a kernel: float32, C-contiguous and
    writeable.  Numba compiles a kernel once per combination of its arguments'
    array flags, read-only included, and the GEMM takes about 10 s to compile, so
    parameters that differ only in such flags must not reach it."""
    return np.require(a, np.float32, ["C", "W"])


def new_buffer(env, shape):
    """An output buffer from the run's pool (uninitialised float32)."""
    return env[ALLOC_KEY](tuple(shape))


def make_calls(calls):
    """Make bound kernel calls, ``[(function, arguments)]``, in order."""
    for function, args in calls:
        function(*args)


def contiguous(env, x, calls):
    """``x`` itself when it is C-contiguous; otherwise a new buffer that a call,
    appended to ``calls``, fills with a copy of ``x`` at run time."""
    if x.flags.c_contiguous:
        return x
    buf = new_buffer(env, x.shape)
    calls.append((np.copyto, (buf, x)))
    return buf


class Step:
    """Base class: a named operation from ``inputs`` to ``outputs``."""
    kind = "step"

    def __init__(self, name, inputs, outputs):
        self.name = name            # the ONNX node(s) it came from
        self.inputs = list(inputs)
        self.outputs = list(outputs)

    def fail(self, message):
        raise InputError(f"{self.kind} step '{self.name}': {message}")

    def infer(self, shapes):
        return [shapes[0]]

    def bind(self, env):
        """Store output buffers in ``env``; return the calls that fill them."""
        raise NotImplementedError

    def run(self, env):
        """Bind and make the calls at once (by hand, in tests and benchmarks)."""
        make_calls(self.bind(env))

    def params(self):
        return 0

    def macs(self, in_shapes, out_shapes):
        return 0

    def work(self, in_shapes, out_shapes):
        """Multiply-adds weighted by how slowly this step's kernel runs them relative
        to the GEMM: what the plan compares with ``PARALLEL_MIN_MACS``."""
        return self.macs(in_shapes, out_shapes)

    def detail(self):
        return ""


class Epilogue:
    """What a conv-like step applies to its accumulators; see kernels.epilogue."""

    def __init__(self, bias):
        channels = len(bias)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)
        self.act1 = Activation.identity(channels)
        self.act2 = Activation.identity(channels)
        self.residual = None        # name of the value added after act1
        self.fused_act1 = False
        self.fused_act2 = False

    def args(self, env, ndim):
        """Kernel arguments; the residual as an ``ndim``-D array (a dummy if none)."""
        res = env[self.residual] if self.residual else _NO_RESIDUAL[ndim]
        return (self.bias, self.act1.slope, self.act1.lo, self.act1.hi, res, self.residual is not None,
                self.act2.slope, self.act2.lo, self.act2.hi)

    def rows_args(self, env, n):
        """``args`` for the GEMM: the residual as rows of ``n`` values."""
        args = self.args(env, 2)
        if self.residual:
            args = args[:4] + (args[4].reshape(-1, n),) + args[5:]
        return args

    def pack(self):
        self.bias = kernel_array(self.bias)
        for act in (self.act1, self.act2):
            act.slope = kernel_array(act.slope)

    def params(self):
        return self.bias.size + self.act1.learned + self.act2.learned

    def describe(self):
        parts = []
        if self.fused_act1:
            parts.append(repr(self.act1))
        if self.residual:
            parts.append("+residual")
        if self.fused_act2:
            parts.append(repr(self.act2))
        return " ".join(parts)


class ConvStep(Step):
    """Conv2d on NHWC: dense (groups 1), depthwise (groups = C) or pointwise 1x1.

    ``weight`` is ONNX's Co x Ci/g x KH x KW; it is packed per kernel by
    ``pack()`` once the graph rewrites (BatchNorm folding) are done.
    """
    kind = "conv"

    def __init__(self, name, inputs, outputs, weight, bias, strides, pads, groups):
        super().__init__(name, inputs, outputs)
        self.weight = np.asarray(weight, np.float32)
        self.epilogue = Epilogue(bias)
        self.strides = tuple(strides)
        self.pads = tuple(pads)            # top, left, bottom, right
        self.groups = groups
        co, ci_g, kh, kw = self.weight.shape
        self.in_channels = ci_g * groups
        if groups == 1 and kh == kw == 1 and not any(self.pads):
            self.kind = "pointwise"
        elif groups == self.in_channels and ci_g == 1 and co == groups:
            self.kind = "depthwise"
        self.packed = None

    def scale_output(self, scale, shift):
        """Fold y -> y * scale + shift (per output channel) into weight and bias."""
        self.weight = (self.weight * scale[:, None, None, None]).astype(np.float32)
        self.epilogue.bias = (self.epilogue.bias * scale + shift).astype(np.float32)

    def pack(self):
        w = self.weight
        if self.kind == "pointwise":
            self.packed = kernel_array(w[:, :, 0, 0].T)                 # Ci x Co
        elif self.kind == "depthwise":
            self.packed = kernel_array(w[:, 0].transpose(1, 2, 0))      # KH x KW x C
        else:        # (KH*KW*Ci) x Co, zero rows up to a multiple of the GEMM's k-unrolling
            rows = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
            self.packed = np.zeros((-(-len(rows) // KU) * KU, w.shape[0]), np.float32)
            self.packed[:len(rows)] = rows
        self.epilogue.pack()

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            self.fail(f"expects a 4-D N x C x H x W input, got shape {fmt(x)}")
        if x[1] is not None and x[1] != self.in_channels:
            self.fail(f"expects {self.in_channels} input channels, got shape {fmt(x)}")
        co, _, kh, kw = self.weight.shape
        (sh, sw), (pt, pl, pb, pr) = self.strides, self.pads
        oh = conv_output_size(x[2], kh, sh, pt, pb)
        ow = conv_output_size(x[3], kw, sw, pl, pr)
        if oh == 0 or ow == 0:
            self.fail(f"input {fmt(x)} is smaller than the {kh}x{kw} kernel")
        out = (x[0], co, oh, ow)
        if self.epilogue.residual and len(shapes) > 1 and shapes[1] != out:
            self.fail(f"residual shape {fmt(shapes[1])} does not match output {fmt(out)}")
        return [out]

    def bind(self, env):
        x = env[self.inputs[0]]
        n, h, w, c = x.shape
        co, _, kh, kw = self.weight.shape
        (sh, sw), (pt, pl, pb, pr) = self.strides, self.pads
        oh = conv_output_size(h, kh, sh, pt, pb)
        ow = conv_output_size(w, kw, sw, pl, pr)
        out = new_buffer(env, (n, oh, ow, co))
        env[self.outputs[0]] = out
        calls = []
        if self.kind == "pointwise":
            x = contiguous(env, x[:, ::sh, ::sw], calls)
            calls.append((gemm, (x.reshape(-1, c), self.packed, *self.epilogue.rows_args(env, co),
                                 out.reshape(-1, co))))
        elif self.kind == "depthwise":
            calls.append((depthwise, (x, self.packed, sh, sw, pt, pl, *self.epilogue.args(env, 4), out)))
        else:
            calls.append((conv2d, (x, self.packed, kh, kw, sh, sw, pt, pl, *self.epilogue.args(env, 4), out)))
        return calls

    def params(self):
        return self.weight.size + self.epilogue.params()

    def macs(self, in_shapes, out_shapes):
        n, co, oh, ow = out_shapes[0]
        _, ci_g, kh, kw = self.weight.shape
        return co * oh * ow * ci_g * kh * kw

    def work(self, in_shapes, out_shapes):
        # in a run, depthwise does its multiply-adds about 3x slower than the GEMM
        # (bench/layers.py: ~35 against ~95 GFLOP/s in sequence; its loads and stores dominate)
        return self.macs(in_shapes, out_shapes) * (3 if self.kind == "depthwise" else 1)

    def detail(self):
        co, ci_g, kh, kw = self.weight.shape
        s = f"{kh}x{kw}/{self.strides[0]} {self.in_channels}->{co}"
        if self.kind == "conv" and self.groups > 1:
            s += f" groups={self.groups}"
        return (s + " " + self.epilogue.describe()).strip()


class GemmStep(Step):
    """Fully connected: out (M x N) = epilogue(x (M x K) @ W (K x N)).

    Inputs of higher rank (MatMul) are flattened to rows and reshaped back.
    """
    kind = "gemm"

    def __init__(self, name, inputs, outputs, weight_kn, bias):
        super().__init__(name, inputs, outputs)
        self.weight = np.ascontiguousarray(weight_kn, np.float32)
        self.epilogue = Epilogue(bias)

    def scale_output(self, scale, shift):
        self.weight = (self.weight * scale[None, :]).astype(np.float32)
        self.epilogue.bias = (self.epilogue.bias * scale + shift).astype(np.float32)

    def pack(self):
        self.weight = kernel_array(self.weight)
        self.epilogue.pack()

    def infer(self, shapes):
        x = shapes[0]
        k = self.weight.shape[0]
        if len(x) < 2 or (x[-1] is not None and x[-1] != k):
            self.fail(f"expects an input of shape (..., {k}), got {fmt(x)}")
        out = tuple(x[:-1]) + (self.weight.shape[1],)
        if self.epilogue.residual and len(shapes) > 1 and shapes[1] != out:
            self.fail(f"residual shape {fmt(shapes[1])} does not match output {fmt(out)}")
        return [out]

    def bind(self, env):
        calls = []
        x = contiguous(env, env[self.inputs[0]], calls)
        k, n = self.weight.shape
        rows = x.reshape(-1, k)
        out = new_buffer(env, (rows.shape[0], n))
        env[self.outputs[0]] = out.reshape(x.shape[:-1] + (n,))
        calls.append((gemm, (rows, self.weight, *self.epilogue.rows_args(env, n), out)))
        return calls

    def params(self):
        return self.weight.size + self.epilogue.params()

    def macs(self, in_shapes, out_shapes):
        rows = int(np.prod(out_shapes[0][1:-1], dtype=np.int64)) if len(out_shapes[0]) > 2 else 1
        return rows * self.weight.size

    def detail(self):
        k, n = self.weight.shape
        return (f"{k}->{n} " + self.epilogue.describe()).strip()


class ScaleShiftStep(Step):
    """out = act(x * scale[c] + shift[c]) over the channel axis.

    Covers an unfolded BatchNorm, Mul/Add/Sub/Div by per-channel or scalar
    constants, and standalone activations.  The channel axis is the last
    physical axis: NHWC maps and N x C matrices alike.
    """
    kind = "scale_shift"

    def __init__(self, name, inputs, outputs, scale, shift, act=None, trained=False):
        super().__init__(name, inputs, outputs)
        self.trained = trained               # an unfolded BatchNorm: its scale and shift count as params
        self.scale = np.ascontiguousarray(scale, np.float32)
        self.shift = np.ascontiguousarray(shift, np.float32)
        self.act = act or Activation.identity(len(self.scale))
        self.fused_act = act is not None
        self._widened = {}                   # channel count -> (scale, shift, slope) at that width

    def pack(self):
        self.scale, self.shift = kernel_array(self.scale), kernel_array(self.shift)
        self.act.slope = kernel_array(self.act.slope)
        self._widened.clear()

    def params(self):
        return (2 * len(self.scale) if self.trained else 0) + self.act.learned

    def is_pure_activation(self):
        return bool(np.all(self.scale == 1) and np.all(self.shift == 0))

    def _params_for(self, c):
        """Scale, shift and slope for ``c`` channels (scalar parameters repeated, once per c)."""
        if c not in self._widened:
            params = tuple(widen(v, c) for v in (self.scale, self.shift, self.act.slope))
            if any(p is None for p in params):
                self.fail(f"has {len(self.scale)} channel parameters but the input has {c} channels")
            self._widened[c] = params
        return self._widened[c]

    def infer(self, shapes):
        x = shapes[0]
        if len(x) < 2:
            c = x[-1] if x else 1
        else:
            c = x[1]
        if c is not None and len(self.scale) not in (1, c):
            self.fail(f"has {len(self.scale)} channel parameters, input shape {fmt(x)}")
        return [x]

    def bind(self, env):
        calls = []
        x = contiguous(env, env[self.inputs[0]], calls)
        c = x.shape[-1] if x.ndim >= 1 else 1
        scale, shift, slope = self._params_for(c)
        rows = x.reshape(-1, c)
        out = new_buffer(env, rows.shape)
        env[self.outputs[0]] = out.reshape(x.shape)
        calls.append((scale_shift, (rows, scale, shift, slope, self.act.lo, self.act.hi, out)))
        return calls

    def detail(self):
        s = "" if self.is_pure_activation() else "affine "
        return (s + (repr(self.act) if self.fused_act else "")).strip()


class AddStep(Step):
    """out = act(a + b) for two runtime tensors of the same shape and layout."""
    kind = "add"

    def __init__(self, name, inputs, outputs):
        super().__init__(name, inputs, outputs)
        self.act = None

    def pack(self):
        if self.act:
            self.act.slope = kernel_array(self.act.slope)

    def infer(self, shapes):
        a, b = shapes
        if a != b:
            self.fail(f"cannot add shapes {fmt(a)} and {fmt(b)} (broadcasting two runtime tensors "
                      f"is not supported)")
        return [a]

    def bind(self, env):
        calls = []
        a, b = (contiguous(env, env[v], calls) for v in self.inputs)
        c = a.shape[-1]
        act = self.act or Activation.identity(c)
        out = new_buffer(env, a.shape)
        env[self.outputs[0]] = out
        calls.append((add, (a.reshape(-1, c), b.reshape(-1, c), act.slope, act.lo, act.hi, out.reshape(-1, c))))
        return calls


class MaxPoolStep(Step):
    """Max pooling on NHWC maps (ONNX MaxPool, with pads and ceil_mode)."""
    kind = "maxpool"

    def __init__(self, name, inputs, outputs, kernel, strides, pads, ceil):
        super().__init__(name, inputs, outputs)
        self.kernel, self.strides, self.pads, self.ceil = tuple(kernel), tuple(strides), tuple(pads), ceil

    def _out_hw(self, h, w):
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.strides, self.pads
        return (conv_output_size(h, kh, sh, pt, pb, self.ceil),
                conv_output_size(w, kw, sw, pl, pr, self.ceil))

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            self.fail(f"expects a 4-D input, got shape {fmt(x)}")
        oh, ow = self._out_hw(x[2], x[3])
        if oh == 0 or ow == 0:
            self.fail(f"input {fmt(x)} is smaller than the pooling window {self.kernel}")
        return [(x[0], x[1], oh, ow)]

    def bind(self, env):
        x = env[self.inputs[0]]
        n, h, w, c = x.shape
        oh, ow = self._out_hw(h, w)
        out = new_buffer(env, (n, oh, ow, c))
        env[self.outputs[0]] = out
        return [(max_pool, (x, *self.kernel, *self.strides, self.pads[0], self.pads[1], out))]

    def detail(self):
        return f"{self.kernel[0]}x{self.kernel[1]}/{self.strides[0]}" + (" ceil" if self.ceil else "")


class SoftmaxStep(Step):
    """Softmax over one axis; ``axis`` is physical (already mapped for NHWC)."""
    kind = "softmax"

    def __init__(self, name, inputs, outputs, axis, flatten_from=None):
        super().__init__(name, inputs, outputs)
        self.axis = axis
        self.flatten_from = flatten_from   # opset < 13: softmax over all axes >= this

    def bind(self, env):
        calls = []
        x = contiguous(env, env[self.inputs[0]], calls)
        out = new_buffer(env, x.shape)
        env[self.outputs[0]] = out
        if self.flatten_from is not None:
            rows = int(np.prod(x.shape[:self.flatten_from]))
            calls.append((softmax_rows, (x.reshape(rows, -1), out.reshape(rows, -1))))
            return calls
        # softmax along the last axis of views with ``axis`` moved last, through contiguous rows
        moved = np.moveaxis(x, self.axis, -1)
        rows = new_buffer(env, moved.shape)
        result = new_buffer(env, moved.shape)
        last = moved.shape[-1]
        calls += [(np.copyto, (rows, moved)),
                  (softmax_rows, (rows.reshape(-1, last), result.reshape(-1, last))),
                  (np.copyto, (np.moveaxis(out, self.axis, -1), result))]
        return calls


class GlobalAvgPoolStep(Step):
    """Mean over H and W of an NHWC map; the output N x C x 1 x 1 stays NHWC."""
    kind = "global_avg_pool"

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            self.fail(f"expects a 4-D input, got shape {fmt(x)}")
        return [(x[0], x[1], 1, 1)]

    def bind(self, env):
        x = env[self.inputs[0]]
        out = new_buffer(env, (x.shape[0], 1, 1, x.shape[3]))
        env[self.outputs[0]] = out
        return [(_mean_over_hw, (x, out))]


def _mean_over_hw(x, out):
    """out[n, 0, 0, c] = mean of x[n, :, :, c], summed in float64."""
    out[...] = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64)


class TransposeStep(Step):
    """ONNX Transpose on a plain-layout tensor."""
    kind = "transpose"

    def __init__(self, name, inputs, outputs, perm):
        super().__init__(name, inputs, outputs)
        self.perm = tuple(perm)

    def infer(self, shapes):
        x = shapes[0]
        if sorted(self.perm) != list(range(len(x))):
            self.fail(f"perm {list(self.perm)} does not fit an input of shape {fmt(x)}")
        return [tuple(x[p] for p in self.perm)]

    def bind(self, env):
        x = env[self.inputs[0]]
        out = new_buffer(env, [x.shape[p] for p in self.perm])
        env[self.outputs[0]] = out
        return [(np.copyto, (out, np.transpose(x, self.perm)))]


class ReshapeStep(Step):
    """Reshape/Flatten/Squeeze/Unsqueeze with a target fixed at load time.

    The target may hold ``BATCH`` (the run's batch size), -1 (inferred) and 0
    (copy the input's dim, ONNX's allowzero = 0 rule).
    """
    kind = "reshape"

    def __init__(self, name, inputs, outputs, target):
        super().__init__(name, inputs, outputs)
        self.target = tuple(int(t) for t in target)

    def resolve(self, shape):
        dims = [shape[i] if t == 0 else t for i, t in enumerate(self.target)]
        if any(d is None for d in shape):
            return tuple(None if d == -1 else d for d in dims)
        total = int(np.prod([d for d in shape], dtype=object))
        known = int(np.prod([d for d in dims if d != -1], dtype=object))
        if dims.count(-1) > 1 or (dims.count(-1) == 1 and (known == 0 or total % known)) or \
                (dims.count(-1) == 0 and known != total):
            self.fail(f"cannot reshape {fmt(shape)} to {fmt(self.target)}")
        return tuple(total // known if d == -1 else d for d in dims)

    def infer(self, shapes):
        return [self.resolve(shapes[0])]

    def bind(self, env):
        calls = []
        x = contiguous(env, env[self.inputs[0]], calls)
        dims = [env[BATCH_KEY] if t == BATCH else t for t in self.target]
        target = [x.shape[i] if t == 0 else t for i, t in enumerate(dims)]
        env[self.outputs[0]] = x.reshape(target)      # a view: no data moves
        return calls

    def detail(self):
        return fmt(self.target).replace("-1", "*")


class LayoutStep(Step):
    """Convert a 4-D map between ONNX's NCHW and tinyface's NHWC storage."""
    kind = "layout"

    def __init__(self, name, inputs, outputs, to_nhwc):
        super().__init__(name, inputs, outputs)
        self.to_nhwc = to_nhwc

    def bind(self, env):
        x = env[self.inputs[0]]
        perm = (0, 2, 3, 1) if self.to_nhwc else (0, 3, 1, 2)
        out = new_buffer(env, [x.shape[p] for p in perm])
        env[self.outputs[0]] = out
        return [(to_nhwc if self.to_nhwc else to_nchw, (x, out))]

    def detail(self):
        return "NCHW->NHWC" if self.to_nhwc else "NHWC->NCHW"

