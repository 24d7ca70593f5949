"""The op records: what a lowered, fused graph is made of.

Each op is a frozen dataclass: a name (the ONNX node or nodes it came from),
the names of the values it reads and writes, and its parameters as read-only
float32 arrays.  An op knows its own maths, never how it runs: ``infer``
checks input shapes and gives output shapes, ``params`` and ``macs`` count
trained parameters and multiply-adds, ``work`` weighs the multiply-adds by how
slowly the runtime's kernel does them, ``allocated`` lists every array a run
of it allocates, and ``detail`` describes it for ``tinyface inspect``.  The
passes (``graph.passes``) make new ops from old ones with
:func:`dataclasses.replace`; the runtime (``runtime.binders``) packs each
op's weights and binds it to kernels.

Shapes are *logical* (ONNX's NCHW) whatever the storage: 4-D maps made by
conv-like ops are stored channels-last (NHWC), every other value in ONNX's
own layout ("plain"); ``Layout`` converts between the two.
"""
from dataclasses import dataclass, replace

import numpy as np

from tinyface.errors import InputError
from tinyface.graph.shapes import BATCH, conv_output_size, fmt


def frozen_array(a):
    """``a`` as a read-only float32 array: a record's parameters cannot change under it."""
    a = np.array(a, np.float32)
    a.flags.writeable = False
    return a


def widen(v, channels):
    """``v`` as a vector over ``channels`` channels: itself, its one value repeated,
    or None when its length is neither."""
    if len(v) == channels:
        return v
    if len(v) == 1:
        return np.full(channels, v[0], np.float32)
    return None


@dataclass(frozen=True, eq=False)
class Activation:
    """``min(max(y >= 0 ? y : slope[c] * y, lo), hi)``: ReLU (slope 1, lo 0), ReLU6 and Clip
    (slope 1, lo, hi), PReLU and LeakyReLU (their slopes), identity (1, -inf, +inf)."""
    slope: np.ndarray
    lo: np.float32 = np.float32(-np.inf)
    hi: np.float32 = np.float32(np.inf)
    learned: int = 0            # trained parameters it holds (PReLU slopes), for counting

    def __post_init__(self):
        object.__setattr__(self, "slope", frozen_array(self.slope))
        object.__setattr__(self, "lo", np.float32(self.lo))
        object.__setattr__(self, "hi", np.float32(self.hi))

    @classmethod
    def identity(cls, channels):
        return cls(np.ones(channels, np.float32))

    def widened(self, channels):
        """The same activation over ``channels`` channels, or None (see :func:`widen`)."""
        slope = widen(self.slope, channels)
        return None if slope is None else replace(self, slope=slope)

    def apply(self, y, channel_axis=-1):
        """The activation on a NumPy array: what ``kernels.epilogue.activate`` computes."""
        shape = [1] * y.ndim
        shape[channel_axis] = -1
        s = self.slope.reshape(shape)
        y = np.where(y < 0, s * y, y)
        return np.minimum(np.maximum(y, self.lo), self.hi).astype(np.float32)

    def __repr__(self):
        s = self.slope
        if np.all(s == 1) and self.lo == 0 and self.hi == np.inf:
            return "relu"
        kind = ("leaky0" if np.all(s == 0) else "linear" if np.all(s == 1) else "prelu")
        if np.isfinite(self.lo) or np.isfinite(self.hi):
            kind = ("clip" if kind == "linear" else kind) + f"[{self.lo:g},{self.hi:g}]"
        return kind


@dataclass(frozen=True, eq=False)
class Epilogue:
    """What a conv-like op applies to each accumulator of channel c::

        y = act2(act1(acc + bias[c]) + residual)

    ``act1``, ``act2``: None when nothing is fused there (the identity);
    ``residual``: the name of the value added, or None.
    """
    bias: np.ndarray
    act1: Activation = None
    residual: str = None
    act2: Activation = None

    def __post_init__(self):
        object.__setattr__(self, "bias", frozen_array(self.bias))

    def params(self):
        return self.bias.size + sum(act.learned for act in (self.act1, self.act2) if act)

    def describe(self):
        parts = [repr(self.act1)] if self.act1 else []
        if self.residual:
            parts.append("+residual")
        if self.act2:
            parts.append(repr(self.act2))
        return " ".join(parts)


@dataclass(frozen=True, eq=False)
class Op:
    """A named operation from ``inputs`` to ``outputs`` (tuples of value names)."""
    name: str
    inputs: tuple
    outputs: tuple
    kind = "op"

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def fail(self, message):
        raise InputError(f"{self.kind} step '{self.name}': {message}")

    def infer(self, shapes):
        return [shapes[0]]

    def params(self):
        return 0

    def macs(self, in_shapes, out_shapes):
        return 0

    def work(self, in_shapes, out_shapes):
        """Multiply-adds weighted by how slowly the runtime's kernel does them relative
        to the GEMM: what the plan compares with ``PARALLEL_MIN_MACS``."""
        return self.macs(in_shapes, out_shapes)

    def allocated(self, in_shapes, out_shapes):
        """Logical shapes of the float32 arrays a run of this op allocates: its outputs,
        and for some ops a scratch (see ``runtime.sizes``)."""
        return [tuple(s) for s in out_shapes]

    def detail(self):
        return ""


def _check_residual(op, residual, shapes, out):
    """A fused residual (value name ``residual``, the op's second input) must match the output."""
    if residual and len(shapes) > 1 and shapes[1] != out:
        op.fail(f"residual shape {fmt(shapes[1])} does not match output {fmt(out)}")


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """Conv2d: dense (groups 1), depthwise (groups = C) or pointwise (1x1, no pads).

    ``weight`` is ONNX's Co x Ci/g x KH x KW; ``pads`` (top, left, bottom, right).
    """
    weight: np.ndarray = None
    epilogue: Epilogue = None
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    groups: int = 1

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "weight", frozen_array(self.weight))
        object.__setattr__(self, "strides", tuple(self.strides))
        object.__setattr__(self, "pads", tuple(self.pads))

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def kind(self):
        co, ci_g, kh, kw = self.weight.shape
        if self.groups == 1 and kh == kw == 1 and not any(self.pads):
            return "pointwise"
        if self.groups == self.in_channels and ci_g == 1 and co == self.groups:
            return "depthwise"
        return "conv"

    def scaled(self, scale, shift):
        """This conv followed by y -> y * scale + shift (per output channel), folded
        into its weight and bias."""
        weight = (self.weight * scale[:, None, None, None]).astype(np.float32)
        bias = (self.epilogue.bias * scale + shift).astype(np.float32)
        return replace(self, weight=weight, epilogue=replace(self.epilogue, bias=bias))

    def out_hw(self, h, w):
        _, _, kh, kw = self.weight.shape
        (sh, sw), (pt, pl, pb, pr) = self.strides, self.pads
        return conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)

    def output_shape(self, x):
        """The output shape for input shape ``x``, checked (also ``QConv``'s)."""
        if len(x) != 4:
            self.fail(f"expects a 4-D N x C x H x W input, got shape {fmt(x)}")
        if x[1] is not None and x[1] != self.in_channels:
            self.fail(f"expects {self.in_channels} input channels, got shape {fmt(x)}")
        co, _, kh, kw = self.weight.shape
        oh, ow = self.out_hw(x[2], x[3])
        if oh == 0 or ow == 0:
            self.fail(f"input {fmt(x)} is smaller than the {kh}x{kw} kernel")
        return (x[0], co, oh, ow)

    def infer(self, shapes):
        out = self.output_shape(shapes[0])
        _check_residual(self, self.epilogue.residual, shapes, out)
        return [out]

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

    def allocated(self, in_shapes, out_shapes):
        """A dense conv also allocates a zero-padded copy of its input (``kernels.conv``), and
        with at most as many terms per output as output channels, perhaps its windows as rows
        instead (``runtime.binders.gathers_windows``): no more than the output."""
        shapes = super().allocated(in_shapes, out_shapes)
        if self.kind == "conv":
            n, c, h, w = in_shapes[0]
            pt, pl, pb, pr = self.pads
            shapes.append((n, c, _grown(h, pt + pb), _grown(w, pl + pr)))
            _, co, oh, ow = out_shapes[0]
            terms = self.weight[0].size
            if terms <= co:
                shapes.append((n, terms, oh, ow))
        return shapes

    def detail(self):
        co, ci_g, kh, kw = self.weight.shape
        return (f"{kh}x{kw}/{self.strides[0]} {self.in_channels}->{co} " + self.epilogue.describe()).strip()


def _grown(size, pad):
    return None if size is None else size + pad


@dataclass(frozen=True, eq=False)
class Gemm(Op):
    """Fully connected: out (M x N) = epilogue(x (M x K) @ weight (K x N)).

    Inputs of higher rank (MatMul) are flattened to rows and reshaped back.
    """
    weight: np.ndarray = None
    epilogue: Epilogue = None
    kind = "gemm"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "weight", frozen_array(self.weight))

    def scaled(self, scale, shift):
        weight = (self.weight * scale[None, :]).astype(np.float32)
        bias = (self.epilogue.bias * scale + shift).astype(np.float32)
        return replace(self, weight=weight, epilogue=replace(self.epilogue, bias=bias))

    def infer(self, shapes):
        x = shapes[0]
        k = self.weight.shape[0]
        if len(x) < 2 or (x[-1] is not None and x[-1] != k):
            self.fail(f"expects an input of shape (..., {k}), got {fmt(x)}")
        out = tuple(x[:-1]) + (self.weight.shape[1],)
        _check_residual(self, self.epilogue.residual, shapes, out)
        return [out]

    def params(self):
        return self.weight.size + self.epilogue.params()

    def macs(self, in_shapes, out_shapes):
        rows = int(np.prod(out_shapes[0][1:-1], dtype=np.int64)) if len(out_shapes[0]) > 2 else 1
        return rows * self.weight.size

    def detail(self):
        k, n = self.weight.shape
        return (f"{k}->{n} " + self.epilogue.describe()).strip()


@dataclass(frozen=True, eq=False)
class ScaleShift(Op):
    """out = act(x * scale[c] + shift[c]) over the channel axis.

    An unfolded BatchNorm (``trained``: its scale and shift count as params),
    Mul/Add/Sub/Div by per-channel or scalar constants, or an activation alone
    (scale 1, shift 0).  ``act`` None: no activation.  The channel axis is the
    last stored axis: NHWC maps and N x C matrices alike.
    """
    scale: np.ndarray = None
    shift: np.ndarray = None
    act: Activation = None
    trained: bool = False
    kind = "scale_shift"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "scale", frozen_array(self.scale))
        object.__setattr__(self, "shift", frozen_array(self.shift))

    def params(self):
        return (2 * len(self.scale) if self.trained else 0) + (self.act.learned if self.act else 0)

    def is_pure_activation(self):
        return bool(np.all(self.scale == 1) and np.all(self.shift == 0))

    def infer(self, shapes):
        x = shapes[0]
        c = (x[-1] if x else 1) if len(x) < 2 else x[1]
        if c is not None and len(self.scale) not in (1, c):
            self.fail(f"has {len(self.scale)} channel parameters, input shape {fmt(x)}")
        return [x]

    def detail(self):
        s = "" if self.is_pure_activation() else "affine "
        return (s + (repr(self.act) if self.act else "")).strip()


@dataclass(frozen=True, eq=False)
class Add(Op):
    """out = a + b for two runtime tensors of the same shape and layout."""
    kind = "add"

    def infer(self, shapes):
        a, b = shapes
        if a != b:
            self.fail(f"cannot add shapes {fmt(a)} and {fmt(b)} (broadcasting two runtime tensors "
                      f"is not supported)")
        return [a]


@dataclass(frozen=True, eq=False)
class MaxPool(Op):
    """Max pooling (ONNX MaxPool, with pads and ceil_mode)."""
    kernel: tuple = (1, 1)
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    ceil: bool = False
    kind = "maxpool"

    def out_hw(self, h, w):
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.strides, self.pads
        return (conv_output_size(h, kh, sh, pt, pb, self.ceil),
                conv_output_size(w, kw, sw, pl, pr, self.ceil))

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            self.fail(f"expects a 4-D input, got shape {fmt(x)}")
        oh, ow = self.out_hw(x[2], x[3])
        if oh == 0 or ow == 0:
            self.fail(f"input {fmt(x)} is smaller than the pooling window {self.kernel}")
        return [(x[0], x[1], oh, ow)]

    def detail(self):
        return f"{self.kernel[0]}x{self.kernel[1]}/{self.strides[0]}" + (" ceil" if self.ceil else "")


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """Softmax over one axis; ``axis`` is the stored axis (already mapped for NHWC).
    ``flatten_from`` (opset < 13): softmax over all axes from this one on."""
    axis: int = -1
    flatten_from: int = None
    kind = "softmax"

    def allocated(self, in_shapes, out_shapes):
        """Also two copies of the input with the axis moved last."""
        return super().allocated(in_shapes, out_shapes) + [tuple(out_shapes[0])] * 2


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Op):
    """Mean over H and W; the output N x C x 1 x 1 stays NHWC."""
    kind = "global_avg_pool"

    def infer(self, shapes):
        x = shapes[0]
        if len(x) != 4:
            self.fail(f"expects a 4-D input, got shape {fmt(x)}")
        return [(x[0], x[1], 1, 1)]


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """ONNX Transpose on a plain-layout tensor."""
    perm: tuple = ()
    kind = "transpose"

    def infer(self, shapes):
        x = shapes[0]
        if sorted(self.perm) != list(range(len(x))):
            self.fail(f"perm {list(self.perm)} does not fit an input of shape {fmt(x)}")
        return [tuple(x[p] for p in self.perm)]


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Reshape/Flatten/Squeeze/Unsqueeze with a target fixed at load time.

    The target may hold ``BATCH`` (the run's batch size), -1 (inferred) and 0
    (copy the input's dim, ONNX's allowzero = 0 rule).
    """
    target: tuple = ()
    kind = "reshape"

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

    def detail(self):
        return fmt(self.target).replace("-1", "*")


@dataclass(frozen=True, eq=False)
class Layout(Op):
    """Convert a 4-D map between ONNX's NCHW and tinyface's NHWC storage."""
    to_nhwc: bool = True
    kind = "layout"

    def detail(self):
        return "NCHW->NHWC" if self.to_nhwc else "NHWC->NCHW"


@dataclass(frozen=True, eq=False)
class InvertedResidual(Op):
    """expand (1x1) -> dw (depthwise 3x3) -> project (1x1, maybe with a residual) as one op,
    made by ``passes.fuse_blocks``; inputs: the block's input (and the residual), output:
    the projection's."""
    convs: tuple = ()
    kind = "block"

    @classmethod
    def of(cls, expand, dw, project):
        return cls(f"{expand.name} .. {project.name}", expand.inputs[:1] + project.inputs[1:],
                   project.outputs, (expand, dw, project))

    def conv_shapes(self, shapes):
        """The three convs' (input shapes, output shapes)."""
        expand, dw, project = self.convs
        e = expand.infer(shapes[:1])
        d = dw.infer(e)
        return [(shapes[:1], e), (e, d), (d + shapes[1:], project.infer(d + shapes[1:]))]

    def infer(self, shapes):
        return self.conv_shapes(shapes)[2][1]

    def params(self):
        return sum(conv.params() for conv in self.convs)

    def macs(self, in_shapes, out_shapes):
        return sum(conv.macs(ins, outs) for conv, (ins, outs) in zip(self.convs, self.conv_shapes(in_shapes)))

    def work(self, in_shapes, out_shapes):
        return sum(conv.work(ins, outs) for conv, (ins, outs) in zip(self.convs, self.conv_shapes(in_shapes)))

    def allocated(self, in_shapes, out_shapes):
        """Also the expanded and depthwise maps, for when it runs as three convs
        (``runtime.binders``: fewer images than threads)."""
        (_, expanded), (_, depthwised), _ = self.conv_shapes(list(in_shapes))
        return super().allocated(in_shapes, out_shapes) + [tuple(expanded[0]), tuple(depthwised[0])]

    def detail(self):
        """E.g. ``3x3/2 64->128->64 clip[0,6] | clip[0,6] | +residual``: the depthwise
        kernel and stride, the channels, then each conv's epilogue."""
        expand, dw, project = self.convs
        channels = f"{expand.in_channels}->{dw.in_channels}->{project.weight.shape[0]}"
        epilogues = " | ".join(conv.epilogue.describe() or "linear" for conv in self.convs)
        return f"3x3/{dw.strides[0]} {channels} {epilogues}"


# -- 8-bit ops (QDQ models: graph.qdq folds the patterns, kernels.quantized runs them) ----------
#
# Quantised values are uint8 with a zero point; an int8 tensor of the model is held as uint8
# with 128 added to it and to its zero point (x - z is unchanged).  ``zero``/``lo``/``hi``
# below are in that byte domain.
INT8_OFFSET = 128
# ONNX ops that pass a quantised value's bytes on unchanged
BYTE_VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")

# Most products one output of an integer op may sum: each is at most 255 * 255 in magnitude
# (bytes less a zero point, weights less theirs), so the int32 accumulator with a bias of at
# most 2**30 in magnitude cannot overflow.
QUANTIZED_MAX_TERMS = (2**31 - 2**30) // (255 * 255)


def frozen_ints(a, dtype):
    """``a`` as a read-only integer array of ``dtype``."""
    a = np.array(a, dtype)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Requantize:
    """How an integer op's int32 accumulators become output bytes, per channel c::

        q = roundeven(clip(float32(acc + bias[c]) * m[c], lo - zero, hi - zero)) + zero
        m[c] = float32(x_scale * w_scale[c]) / y_scale

    ``lo``..``hi``: the output bytes, narrowed by a fused ReLU/Clip.  With a fused
    residual Add (``residual``, the name of a byte value r of scale ``residual_scale``
    and zero point ``residual_zero``) the output is then::

        out = roundeven(clip(float32(q - zero) * (y_scale / sum_scale)
                             + float32(r - residual_zero) * (residual_scale / sum_scale),
                             sum_lo - sum_zero, sum_hi - sum_zero)) + sum_zero
    """
    bias: np.ndarray                 # int32 per channel: the model's, scale x_scale * w_scale
    x_scale: np.float32
    x_zero: int
    w_scale: np.ndarray              # float32 per channel
    y_scale: np.float32
    y_zero: int
    lo: int = 0
    hi: int = 255
    residual: str = None
    residual_scale: np.float32 = None
    residual_zero: int = 0
    sum_scale: np.float32 = None
    sum_zero: int = 0
    sum_lo: int = 0
    sum_hi: int = 255

    def __post_init__(self):
        object.__setattr__(self, "bias", frozen_ints(self.bias, np.int32))
        object.__setattr__(self, "w_scale", frozen_array(self.w_scale))

    def multiplier(self):
        """m[c], float32, in onnxruntime's order of operations."""
        return (np.float32(self.x_scale) * self.w_scale) / np.float32(self.y_scale)

    def describe(self):
        parts = [f"clip[{self.lo},{self.hi}]"] if (self.lo, self.hi) != (0, 255) else []
        if self.residual:
            parts.append("+residual")
        return " ".join(parts)


@dataclass(frozen=True, eq=False)
class QConv(Op):
    """An 8-bit Conv (QLinearConv): bytes in, bytes out, int32 accumulation, then
    ``requant``.  ``weight`` is ONNX's Co x Ci/g x KH x KW less the weight zero point
    (int16: -255..255); geometry as ``Conv``."""
    weight: np.ndarray = None
    requant: Requantize = None
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    groups: int = 1

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "weight", frozen_ints(self.weight, np.int16))
        object.__setattr__(self, "strides", tuple(self.strides))
        object.__setattr__(self, "pads", tuple(self.pads))

    in_channels = Conv.in_channels
    out_hw = Conv.out_hw
    macs = Conv.macs

    def work(self, in_shapes, out_shapes):
        # the 8-bit depthwise does its multiply-adds about 6x slower than the fp32 GEMM (bench/bench.py's
        # per-kernel table, Zen 3, 2026-12-02: 10-20 against ~95 GFLOP/s); the 8-bit GEMMs are as fast
        # (110-146 GOP/s), the 8-bit stem about 3x slower (37)
        return self.macs(in_shapes, out_shapes) * {"qdepthwise": 6, "qconv": 3}.get(self.kind, 1)

    @property
    def kind(self):
        return "q" + Conv.kind.fget(self)

    output_shape = Conv.output_shape

    def infer(self, shapes):
        out = self.output_shape(shapes[0])
        _check_residual(self, self.requant.residual, shapes, out)
        return [out]

    def params(self):
        return self.weight.size + self.requant.bias.size

    def detail(self):
        co, _, kh, kw = self.weight.shape
        return (f"{kh}x{kw}/{self.strides[0]} {self.in_channels}->{co} int8 " + self.requant.describe()).strip()


@dataclass(frozen=True, eq=False)
class QGemm(Op):
    """An 8-bit fully connected layer: out (M x N bytes) = requant(x (M x K bytes) @ weight),
    ``weight`` K x N less its zero point (int16)."""
    weight: np.ndarray = None
    requant: Requantize = None
    kind = "qgemm"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "weight", frozen_ints(self.weight, np.int16))

    macs = Gemm.macs

    def infer(self, shapes):
        x = shapes[0]
        k = self.weight.shape[0]
        if len(x) != 2 or (x[-1] is not None and x[-1] != k):
            self.fail(f"expects an input of shape (N, {k}), got {fmt(x)}")
        out = (x[0], self.weight.shape[1])
        _check_residual(self, self.requant.residual, shapes, out)
        return [out]

    def params(self):
        return self.weight.size + self.requant.bias.size

    def detail(self):
        k, n = self.weight.shape
        return (f"{k}->{n} int8 " + self.requant.describe()).strip()


@dataclass(frozen=True, eq=False)
class QAdd(Op):
    """An 8-bit Add of two byte tensors of one shape::

        out = roundeven(clip(float32(a - a_zero) * (a_scale / y_scale)
                             + float32(b - b_zero) * (b_scale / y_scale), lo - y_zero, hi - y_zero)) + y_zero
    """
    a_scale: np.float32 = None
    a_zero: int = 0
    b_scale: np.float32 = None
    b_zero: int = 0
    y_scale: np.float32 = None
    y_zero: int = 0
    lo: int = 0
    hi: int = 255
    kind = "qadd"

    def infer(self, shapes):
        a, b = shapes
        if a != b:
            self.fail(f"cannot add shapes {fmt(a)} and {fmt(b)}")
        return [a]


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """float32 -> bytes: roundeven(clip(x / scale, lo - zero, hi - zero)) + zero (QuantizeLinear)."""
    scale: np.float32 = None
    zero: int = 0
    lo: int = 0
    hi: int = 255
    kind = "quantize"

    def detail(self):
        return f"scale {self.scale:.4g} zero {self.zero}"


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """bytes -> float32: float32(q - zero) * scale (DequantizeLinear)."""
    scale: np.float32 = None
    zero: int = 0
    kind = "dequantize"

    def detail(self):
        return f"scale {self.scale:.4g} zero {self.zero}"


def infer_shapes(ops, shapes):
    """Every op's (input shapes, output shapes), in order, from ``shapes`` (value -> shape
    of the graph's inputs)."""
    shapes = dict(shapes)
    per_op = []
    for op in ops:
        ins = [shapes[v] for v in op.inputs]
        outs = op.infer(ins)
        per_op.append((ins, outs))
        shapes.update(zip(op.outputs, (tuple(o) for o in outs)))
    return per_op


def images_independent(shapes, ops):
    """Whether the images of a batch never meet, so that a batch may run in chunks: every
    value keeps the free batch as its first axis and nowhere else (no Transpose moving it,
    no Flatten at axis 0 merging it), and no softmax runs over that axis."""
    batch_first = all(len(s) > 0 and s[0] == BATCH and all(d is None or d < BATCH for d in s[1:])
                      for s in shapes.values())
    return batch_first and not any(isinstance(op, Softmax) and 0 in (op.axis, op.flatten_from)
                                   for op in ops)
