"""Lowering: ONNX nodes -> a list of op records (``graph.ops``), with shapes and layouts.

One pass over the nodes in order.  Each supported op has a handler that
either *folds* (all inputs constant: the result is a new constant, which is
how the ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` flatten idiom
disappears) or *emits* an op.  Every value gets a logical shape (free batch
``BATCH``, unknown dims ``None``) and a storage layout ("nhwc" for 4-D maps
that conv-like ops read or write, "plain" otherwise); a layout conversion
op is inserted where a consumer needs the other one.

Sizes are checked as they appear, before anything of that size exists: every
array an op will allocate for one image (``Op.allocated``), and every
constant a fold would make, is held against ``MAX_TENSOR_ELEMENTS``
(:mod:`tinyface.limits`); a dimension below 1 is refused.
"""
import math

import numpy as np

from tinyface.errors import InputError, ModelError, UnsupportedOpError
from tinyface.graph import ops as O
from tinyface.graph.ops import Activation
from tinyface.graph.passes import optimise
from tinyface.graph.qdq import fold_qdq
from tinyface.graph.shapes import BATCH, check_shapes, fmt
from tinyface.limits import check_limit

MAX_RANK = 32        # NumPy 1's most axes per array
# The largest stride, pad, pooling kernel or group tinyface takes: no map is that large,
# and a kernel's index arithmetic (window start + kernel size, in int64) cannot overflow.
MAX_ATTRIBUTE = 2**31 - 1


class Lowering:
    """State of one lowering pass; ``run()`` returns the ops and the output names."""

    def __init__(self, graph):
        self.graph = graph = fold_qdq(graph)      # QDQ patterns as integer nodes (graph.qdq)
        self.constants = dict(graph.constants)
        self.shapes = {}          # value -> logical shape
        self.layouts = {}         # value -> "nhwc" | "plain"
        self.aliases = {}         # value -> the value it is an alias of
        self.ops = []
        self.declared_batch = None
        self.node = None          # the node being lowered (for messages)
        self._converted = {}      # (value, layout) -> converted value
        self.quantized = set()    # values that are bytes at run time (graph.lower_quantized)

    # -- values -------------------------------------------------------------
    def name(self, value):
        while value in self.aliases:
            value = self.aliases[value]
        return value

    def is_const(self, value):
        return self.name(value) in self.constants

    def const(self, value):
        return self.constants[self.name(value)]

    def shape(self, value):
        value = self.name(value)
        if value in self.constants:
            return tuple(self.constants[value].shape)
        return self.shapes[value]

    def use(self, value, layout):
        """The name under which ``value`` is available in ``layout``."""
        value = self.name(value)
        if self.layouts[value] == layout or len(self.shapes[value]) != 4:
            return value
        key = (value, layout)
        if key not in self._converted:
            out = f"{value}:{layout}"
            self._add(O.Layout(f"to_{layout}", [value], [out], layout == "nhwc"), layout)
            self._converted[key] = out
        return self._converted[key]

    def _add(self, op, layout):
        in_shapes = [self.shape(v) for v in op.inputs]
        out_shapes = op.infer(in_shapes)
        what = f"{self.graph.source}: {self.node.describe()}"
        for shape in out_shapes:
            if len(shape) > MAX_RANK:
                raise UnsupportedOpError(f"{what}: output of rank {len(shape)} (tinyface handles at most {MAX_RANK})")
            if any(d is not None and d < 1 for d in shape):
                raise ModelError(f"{what}: output shape {fmt(shape)} has a dimension below 1")
        check_shapes(op.allocated(in_shapes, out_shapes), f"{what}: for one image, an array of shape",
                     ModelError)
        for out, shape in zip(op.outputs, out_shapes):
            self.shapes[out] = tuple(shape)
            self.layouts[out] = layout if len(shape) == 4 else "plain"
        self.ops.append(op)

    def emit(self, op, layout="plain"):
        self._add(op, layout)

    def fold(self, node, value):
        self.constants[node.outputs[0]] = np.asarray(value)

    def check_fold(self, node, shape):
        """Refuse a fold whose result, of ``shape``, would exceed ``MAX_TENSOR_ELEMENTS``."""
        check_limit("MAX_TENSOR_ELEMENTS", math.prod(shape), ModelError,
                    f"{self.graph.source}: {node.describe()}: folding to a constant of shape {list(shape)}")

    # -- the pass -----------------------------------------------------------
    def run(self):
        g = self.graph
        check_supported(g)
        for vi in g.inputs:
            if vi.dtype != np.float32:
                raise UnsupportedOpError(f"{g.source}: input '{vi.name}' has dtype {vi.dtype}; "
                                         f"tinyface runs float32 models")
            if not vi.shape:
                raise UnsupportedOpError(f"{g.source}: input '{vi.name}' has no declared shape")
            shape = (BATCH,) + tuple(vi.shape[1:])
            if any(d is not None and d < 1 for d in shape) or len(shape) > MAX_RANK:
                raise ModelError(f"{g.source}: input '{vi.name}' declares shape {list(vi.shape)}: each "
                                 f"dimension must be positive or symbolic, at most {MAX_RANK} of them")
            check_shapes([shape], f"{g.source}: input '{vi.name}': for one image, shape", ModelError)
            self.declared_batch = vi.shape[0]
            self.shapes[vi.name] = shape
            self.layouts[vi.name] = "plain"
        for node in g.nodes:
            self.node = node
            for v in node.inputs:
                if v and self.name(v) not in self.constants and self.name(v) not in self.shapes:
                    raise ModelError(f"{g.source}: {node.describe()} reads '{v}', which no earlier "
                                     f"node produces (graph not in topological order?)")
            try:
                check_reads(self, node)
                HANDLERS[node.op](self, node)
                mark_views(self, node)
            except (ModelError, UnsupportedOpError):
                raise
            except InputError as exc:
                raise ModelError(f"{g.source}: {node.describe()}: {exc}") from None
            except (AttributeError, KeyError, TypeError, IndexError, ValueError) as exc:
                # a graph onnx.checker would reject: missing inputs or attributes, bad lengths
                raise ModelError(f"{g.source}: {node.describe()} is malformed "
                                 f"({type(exc).__name__}: {exc})") from None
        outputs = []
        for vi in g.outputs:
            if self.name(vi.name) not in self.shapes and not self.is_const(vi.name):
                raise ModelError(f"{g.source}: graph output '{vi.name}' is produced by no node")
            if self.is_const(vi.name):
                raise UnsupportedOpError(f"{g.source}: output '{vi.name}' is a constant")
            if self.name(vi.name) in self.quantized:
                raise UnsupportedOpError(f"{g.source}: output '{vi.name}' is quantised; tinyface returns float32 "
                                         f"outputs (end the graph with a DequantizeLinear)")
            outputs.append(self.use(vi.name, "plain"))
        return self.ops, outputs


def lower(graph):
    """``(ops, outputs, lowering)``: the graph's ops lowered and optimised
    (:func:`~tinyface.graph.passes.optimise`), the names of its output values, and the
    ``Lowering`` itself (every value's shape and layout)."""
    low = Lowering(graph)
    ops, outputs = low.run()
    return optimise(ops, set(outputs)), outputs, low


def check_supported(graph):
    """Refuse a graph with any op tinyface cannot run, naming every one."""
    bad = {}
    for node in graph.nodes:
        if node.op not in HANDLERS:
            bad.setdefault(node.op, []).append(node.name)
    if bad:
        listed = "; ".join(f"{op} (node{'s' if len(n) > 1 else ''} {', '.join(repr(x) for x in n)})"
                           for op, n in sorted(bad.items()))
        raise UnsupportedOpError(f"{graph.source}: unsupported op{'s' if len(bad) > 1 else ''}: {listed}. "
                                 f"Supported: {', '.join(sorted(HANDLERS))}")


def unsupported(low, node, why):
    raise UnsupportedOpError(f"{low.graph.source}: {node.describe()}: {why}")


def need_const(low, node, index, what):
    if index >= len(node.inputs) or not node.inputs[index]:
        return None
    if not low.is_const(node.inputs[index]):
        unsupported(low, node, f"{what} (input {index}) must be a constant")
    return low.const(node.inputs[index])


def per_channel(low, node, value, rank):
    """A constant that broadcasts along the channel axis only -> 1-D vector.

    Channel axis: 1 for 4-D (NCHW) and 2-D (N x C) tensors.  Scalars give a
    length-1 vector.  Anything else is not per-channel and is refused.
    """
    a = np.asarray(value, dtype=np.float32)
    if a.size == 1:
        return a.reshape(1)
    if a.ndim > rank or rank not in (2, 4):
        unsupported(low, node, f"constant of shape {list(a.shape)} does not broadcast per channel "
                               f"over a rank-{rank} tensor")
    full = (1,) * (rank - a.ndim) + a.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1):
        unsupported(low, node, f"constant of shape {list(a.shape)} varies along an axis other than "
                               f"the channel axis")
    return a.reshape(-1)


def activation_layout(low, value):
    return "nhwc" if len(low.shape(value)) == 4 else "plain"


# -- handlers: one per op ------------------------------------------------------

def _conv_geometry(low, node, w, x):
    """(strides, pads, groups) of a Conv-like node with weight ``w`` (Co x Ci/g x KH x KW) on ``x``."""
    a = node.attrs
    if w.ndim != 4:
        unsupported(low, node, f"only 2-D convolutions are supported (weight shape {list(w.shape)})")
    co, ci_g, kh, kw = w.shape
    if w.size == 0:
        raise ModelError(f"{low.graph.source}: {node.describe()}: the weight of shape {list(w.shape)} is empty")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        unsupported(low, node, f"dilations {a['dilations']} are not supported")
    groups = a.get("group", 1)
    if not _in_range([groups], 1):
        unsupported(low, node, f"group={groups!r} must be a positive integer")
    c = low.shape(x)[1] if len(low.shape(x)) == 4 else None
    if groups != 1 and not (groups == c and ci_g == 1 and co == groups):
        unsupported(low, node, f"group={groups} is supported only as a depthwise conv "
                               f"(one filter per channel)")
    if list(a.get("kernel_shape", [kh, kw])) != [kh, kw]:
        unsupported(low, node, f"kernel_shape {list(a['kernel_shape'])} does not match the weight's {kh}x{kw}")
    strides = _strides(low, node)
    return strides, _pads(low, node, low.shape(x), (kh, kw), strides), groups


def h_conv(low, node):
    w = need_const(low, node, 1, "the weight")
    x = node.inputs[0]
    strides, pads, groups = _conv_geometry(low, node, w, x)
    b = need_const(low, node, 2, "the bias")
    co = w.shape[0]
    if b is not None and b.shape != (co,):
        raise ModelError(f"{low.graph.source}: {node.describe()}: the bias of shape {list(b.shape)} "
                         f"does not match the {co} output channels")
    bias = np.zeros(co, np.float32) if b is None else b
    low.emit(O.Conv(node.name, [low.use(x, "nhwc")], node.outputs, w, O.Epilogue(bias), strides, pads, groups),
             "nhwc")


def _strides(low, node):
    """A conv's or pool's (stride_h, stride_w): two positive integers."""
    strides = list(node.attrs.get("strides", [1, 1]))
    if len(strides) != 2 or not _in_range(strides, 1):
        unsupported(low, node, f"strides {strides} must be two positive integers (a 2-D window)")
    return tuple(strides)


def _pads(low, node, shape, kernel, strides):
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``; never negative."""
    a = node.attrs
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        p = list(a.get("pads", [0, 0, 0, 0]))
        if len(p) != 4 or not _in_range(p, 0):
            unsupported(low, node, f"pads {p} must be four integers >= 0 (begin and end of a 2-D window; "
                                   f"negative, cropping pads are not supported)")
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s in zip(shape[2:], kernel, strides):
            if size is None:
                unsupported(low, node, "auto_pad SAME needs a known input size")
            total = max((-(-size // s) - 1) * s + k - size, 0)
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    unsupported(low, node, f"auto_pad '{auto}' is not supported")


def _flag(low, node, name):
    """A 0/1 attribute (absent: 0) as a bool; any other value is refused, since engines
    disagree on it (onnxruntime reads ceil_mode=65536 as floor)."""
    value = node.attrs.get(name, 0)
    if value not in (0, 1):
        raise ModelError(f"{low.graph.source}: {node.describe()}: {name}={value} must be 0 or 1")
    return bool(value)


def _in_range(values, minimum):
    """Whether every value lies from ``minimum`` to ``MAX_ATTRIBUTE`` (attributes are
    integers: ``onnx_file`` held each node to its op's schema)."""
    return all(minimum <= v <= MAX_ATTRIBUTE for v in values)


def h_batchnorm(low, node):
    if _flag(low, node, "training_mode"):
        unsupported(low, node, "training_mode=1 is not supported")
    gamma, beta, mean, var = (need_const(low, node, i, n) for i, n in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    shapes = {np.shape(p) for p in (gamma, beta, mean, var)}
    if len(shapes) != 1 or len(shapes.pop()) != 1:
        raise ModelError(f"{low.graph.source}: {node.describe()}: scale, bias, mean and var must be "
                         f"vectors of one length, got shapes {[list(np.shape(p)) for p in (gamma, beta, mean, var)]}")
    eps = node.attrs.get("epsilon", 1e-5)
    scale = (gamma / np.sqrt(var.astype(np.float64) + eps)).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    x = node.inputs[0]
    if len(low.shape(x)) not in (2, 4):
        unsupported(low, node, f"BatchNormalization on shape {fmt(low.shape(x))} (only 2-D and 4-D)")
    _emit_scale_shift(low, node, x, node.outputs[:1], scale, shift, trained=True)


def _emit_scale_shift(low, node, x, outputs, scale, shift, act=None, trained=False):
    """A ScaleShift op on ``x``, in x's layout (NHWC for a 4-D map, so it can fuse into a conv)."""
    layout = activation_layout(low, x)
    low.emit(O.ScaleShift(node.name, [low.use(x, layout)], outputs, scale, shift, act, trained), layout)


def _emit_activation(low, node, act):
    ones = np.ones(len(act.slope), np.float32)
    _emit_scale_shift(low, node, node.inputs[0], node.outputs[:1], ones, 0 * ones, act)


def h_relu(low, node):
    # max(y, 0) as a clamp (slope 1, lo 0), not as slope 0: 0 * -inf would be NaN.
    _emit_activation(low, node, Activation(np.ones(1, np.float32), 0.0, np.inf))


def h_leaky(low, node):
    _emit_activation(low, node, Activation(np.full(1, node.attrs.get("alpha", 0.01), np.float32)))


def h_clip(low, node):
    if low.graph.opset < 11:
        lo, hi = node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf)
    else:
        lo_c, hi_c = need_const(low, node, 1, "min"), need_const(low, node, 2, "max")
        lo = -np.inf if lo_c is None else float(lo_c)
        hi = np.inf if hi_c is None else float(hi_c)
    _emit_activation(low, node, Activation(np.ones(1, np.float32), lo, hi))


def h_prelu(low, node):
    slope = need_const(low, node, 1, "the slope")
    rank = len(low.shape(node.inputs[0]))
    slopes = per_channel(low, node, slope, rank)
    _emit_activation(low, node, Activation(slopes, learned=slopes.size))


def h_binary(low, node):
    """Add/Sub/Mul/Div: fold, a per-channel scale/shift, or a runtime Add."""
    a, b = node.inputs[:2]
    if low.is_const(a) and low.is_const(b):
        x, y = low.const(a), low.const(b)
        if np.any(x == BATCH) or np.any(y == BATCH):
            unsupported(low, node, "arithmetic on the free batch dimension is not supported")
        low.check_fold(node, np.broadcast_shapes(np.shape(x), np.shape(y)))
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}.get(node.op)
        if fn is None:
            fn = np.floor_divide if np.issubdtype(np.asarray(x).dtype, np.integer) else np.divide
        return low.fold(node, fn(x, y).astype(np.result_type(x, y)))
    if not low.is_const(a) and not low.is_const(b):
        if node.op != "Add":
            unsupported(low, node, f"{node.op} of two runtime tensors is not supported")
        layout = activation_layout(low, a)
        return low.emit(O.Add(node.name, [low.use(a, layout), low.use(b, layout)], node.outputs), layout)
    const_first = low.is_const(a)
    x, c = (b, low.const(a)) if const_first else (a, low.const(b))
    rank = len(low.shape(x))
    if np.asarray(c).ndim > rank:
        unsupported(low, node, f"constant of shape {list(np.shape(c))} would broadcast the "
                               f"tensor {fmt(low.shape(x))} to a higher rank")
    v = per_channel(low, node, c, rank)
    one, zero = np.ones_like(v), np.zeros_like(v)
    if node.op == "Add":
        scale, shift = one, v
    elif node.op == "Mul":
        scale, shift = v, zero
    elif node.op == "Sub":
        scale, shift = (-one, v) if const_first else (one, -v)
    else:
        if const_first:
            unsupported(low, node, "dividing a constant by a runtime tensor is not supported")
        scale, shift = 1 / v, zero
    _emit_scale_shift(low, node, x, node.outputs, scale, shift)


def h_gemm(low, node):
    a = node.attrs
    if _flag(low, node, "transA"):
        unsupported(low, node, "transA=1 is not supported")
    b = need_const(low, node, 1, "B (the weight)")
    if b.ndim != 2:
        unsupported(low, node, f"B must be 2-D, got shape {list(b.shape)}")
    w = (b.T if _flag(low, node, "transB") else b) * np.float32(a.get("alpha", 1.0))
    n = w.shape[1]
    c = need_const(low, node, 2, "C (the bias)")
    bias = np.zeros(n, np.float32)
    if c is not None:
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
            unsupported(low, node, f"bias C of shape {list(c.shape)} does not broadcast over {n} outputs")
        bias = np.broadcast_to(c.reshape(-1), (n,)) * np.float32(a.get("beta", 1.0))
    x = node.inputs[0]
    if len(low.shape(x)) != 2:
        unsupported(low, node, f"Gemm input must be 2-D, got shape {fmt(low.shape(x))}")
    low.emit(O.Gemm(node.name, [low.use(x, "plain")], node.outputs, w, O.Epilogue(bias)))


def h_matmul(low, node):
    b = need_const(low, node, 1, "the second operand")
    if b.ndim != 2:
        unsupported(low, node, f"MatMul with a {b.ndim}-D constant is not supported")
    x = node.inputs[0]
    if len(low.shape(x)) < 2:
        unsupported(low, node, f"MatMul input must be at least 2-D, got {fmt(low.shape(x))}")
    low.emit(O.Gemm(node.name, [low.use(x, "plain")], node.outputs, b,
                    O.Epilogue(np.zeros(b.shape[1], np.float32))))


def h_flatten(low, node):
    axis = node.attrs.get("axis", 1)
    x = node.inputs[0]
    shape = low.shape(x)
    if not -len(shape) <= axis <= len(shape):
        raise ModelError(f"{low.graph.source}: {node.describe()}: axis {axis} is out of range for "
                         f"shape {fmt(shape)}")
    if low.is_const(x):
        return low.fold(node, low.const(x).reshape(int(np.prod(shape[:axis])), -1))
    axis = axis + len(shape) if axis < 0 else axis
    if axis == 0:
        target = (1, -1)
    elif axis == 1:
        target = (0, -1)
    elif all(isinstance(d, int) and d != BATCH for d in shape[axis:]):
        target = (-1, int(np.prod(shape[axis:])))
    else:
        unsupported(low, node, f"Flatten axis {axis} of {fmt(shape)}")
    _reshape(low, node, x, target)


def _reshape(low, node, x, target):
    low.emit(O.Reshape(node.name, [low.use(x, "plain")], node.outputs[:1], tuple(int(t) for t in target)))


def h_reshape(low, node):
    x = node.inputs[0]
    target = need_const(low, node, 1, "the target shape")
    target = [int(t) for t in np.asarray(target).reshape(-1)]
    if any(t < -1 for t in target):
        raise ModelError(f"{low.graph.source}: {node.describe()}: target shape {target} has a "
                         f"dimension below -1")
    if low.is_const(x):
        data = low.const(x)
        if not _flag(low, node, "allowzero"):    # ONNX: 0 copies the input's dim
            target = [data.shape[i] if t == 0 and i < data.ndim else t for i, t in enumerate(target)]
        try:
            return low.fold(node, data.reshape(target))
        except ValueError:
            unsupported(low, node, f"cannot reshape a constant of shape {list(data.shape)} to {target}")
    if _flag(low, node, "allowzero") and 0 in target:
        unsupported(low, node, "allowzero=1 with a zero in the target shape")
    # graphs exported with a fixed batch carry it as a literal: free it.
    if target and low.shape(x)[0] == BATCH and target[0] == low.declared_batch and target[0] != -1:
        target[0] = BATCH
    _reshape(low, node, x, target)


def _axes(low, node, index_input):
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    axes = need_const(low, node, index_input, "axes")
    return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


def _checked_axes(low, node, axes, rank):
    """``axes`` of a rank-``rank`` tensor made non-negative; out of range or repeated: refused."""
    fixed = [a + rank if _in_range([a], -rank) and a < 0 else a for a in axes]
    if not _in_range(fixed, 0) or max(fixed, default=0) >= max(rank, 1) or len(set(fixed)) != len(fixed):
        raise ModelError(f"{low.graph.source}: {node.describe()}: axes {axes} are out of range or "
                         f"repeated for rank {rank}")
    return fixed


def h_unsqueeze(low, node):
    x = node.inputs[0]
    axes = _axes(low, node, 1)
    shape = list(low.shape(x))
    axes = sorted(_checked_axes(low, node, axes, len(shape) + len(axes)))
    for a in axes:
        shape.insert(a, 1)
    if low.is_const(x):
        return low.fold(node, low.const(x).reshape(shape))
    _reshape(low, node, x, [0 if i == 0 and d == BATCH else d for i, d in enumerate(shape)])


def h_squeeze(low, node):
    x = node.inputs[0]
    shape = list(low.shape(x))
    axes = _axes(low, node, 1)
    if axes is None:
        if any(d is None or d == BATCH for d in shape):
            unsupported(low, node, f"Squeeze without axes of {fmt(tuple(shape))}: which dims are 1 depends on "
                                   f"the input (a batch of 1 would lose its batch axis)")
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = _checked_axes(low, node, axes, len(shape))
    if any(shape[a] != 1 for a in axes):
        unsupported(low, node, f"cannot squeeze axes {axes} of shape {fmt(tuple(shape))}")
    new = [d for i, d in enumerate(shape) if i not in axes]
    if low.is_const(x):
        return low.fold(node, low.const(x).reshape(new))
    if None in new:
        unsupported(low, node, "Squeeze of a tensor with unknown dims")
    _reshape(low, node, x, new)


def h_shape(low, node):
    shape = low.shape(node.inputs[0])
    start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
    dims = list(shape)[start:end]
    if None in dims:
        unsupported(low, node, f"Shape of {fmt(shape)}, which has unknown dimensions")
    low.fold(node, np.array(dims, np.int64))


def h_gather(low, node):
    data = need_const(low, node, 0, "the data")
    idx = need_const(low, node, 1, "the indices")
    shape = np.shape(data)
    (axis,) = _checked_axes(low, node, [node.attrs.get("axis", 0)], len(shape))
    low.check_fold(node, shape[:axis] + np.shape(idx) + shape[axis + 1:])
    low.fold(node, np.take(data, idx, axis=axis))


def h_concat(low, node):
    parts = [need_const(low, node, i, "every input") for i in range(len(node.inputs))]
    low.check_fold(node, (sum(np.size(p) for p in parts),))
    low.fold(node, np.concatenate([np.atleast_1d(p) for p in parts], axis=node.attrs.get("axis", 0)))


def h_cast(low, node):
    import onnx
    to = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(node.attrs["to"]))
    x = node.inputs[0]
    if low.is_const(x):
        return low.fold(node, low.const(x).astype(to))
    if to != np.float32:
        unsupported(low, node, f"Cast of a runtime tensor to {to}")
    low.aliases[node.outputs[0]] = low.name(x)


def h_identity(low, node):
    low.aliases[node.outputs[0]] = low.name(node.inputs[0])


def h_transpose(low, node):
    x = node.inputs[0]
    perm = node.attrs.get("perm", list(range(len(low.shape(x))))[::-1])
    if low.is_const(x):
        return low.fold(node, np.transpose(low.const(x), perm))
    low.emit(O.Transpose(node.name, [low.use(x, "plain")], node.outputs, tuple(perm)))


def h_maxpool(low, node):
    a = node.attrs
    if any(d != 1 for d in a.get("dilations", [1, 1])) or _flag(low, node, "storage_order"):
        unsupported(low, node, "dilations or storage_order are not supported")
    if len(node.outputs) > 1 and node.outputs[1]:
        unsupported(low, node, "the Indices output is not supported")
    kernel = tuple(a["kernel_shape"])
    if len(kernel) != 2 or not _in_range(kernel, 1):
        unsupported(low, node, f"only 2-D pooling with a positive kernel_shape is supported "
                               f"(kernel {list(kernel)})")
    strides = _strides(low, node)
    x = node.inputs[0]
    pads = _pads(low, node, low.shape(x), kernel, strides)
    if any(p >= k for p, k in zip(pads, kernel + kernel)):
        unsupported(low, node, f"pads {list(pads)} (top, left, bottom, right) must be smaller than the "
                               f"kernel {list(kernel)}: a window wholly in the padding has no maximum")
    low.emit(O.MaxPool(node.name, [low.use(x, "nhwc")], node.outputs[:1], kernel, strides, pads,
                       _flag(low, node, "ceil_mode")), "nhwc")


def h_global_avg_pool(low, node):
    low.emit(O.GlobalAvgPool(node.name, [low.use(node.inputs[0], "nhwc")], node.outputs), "nhwc")


def h_softmax(low, node):
    x = node.inputs[0]
    rank = len(low.shape(x))
    old = low.graph.opset < 13
    axis = node.attrs.get("axis", 1 if old else -1)
    if not _in_range([axis], -rank) or axis >= rank:
        raise ModelError(f"{low.graph.source}: {node.describe()}: axis {axis!r} is out of range for "
                         f"rank {rank}")
    axis = axis + rank if axis < 0 else axis
    if old and axis != rank - 1:       # opset < 13: softmax of the flattened tail
        return low.emit(O.Softmax(node.name, [low.use(x, "plain")], node.outputs, axis, axis))
    layout = low.layouts[low.name(x)] if rank == 4 else "plain"
    physical = (0, 3, 1, 2)[axis] if layout == "nhwc" else axis
    low.emit(O.Softmax(node.name, [low.use(x, layout)], node.outputs, physical), layout)


HANDLERS = {
    "Conv": h_conv, "BatchNormalization": h_batchnorm,
    "Relu": h_relu, "LeakyRelu": h_leaky, "Clip": h_clip, "PRelu": h_prelu,
    "Add": h_binary, "Sub": h_binary, "Mul": h_binary, "Div": h_binary,
    "Gemm": h_gemm, "MatMul": h_matmul,
    "Flatten": h_flatten, "Reshape": h_reshape, "Unsqueeze": h_unsqueeze, "Squeeze": h_squeeze,
    "Shape": h_shape, "Gather": h_gather, "Concat": h_concat, "Cast": h_cast,
    "Identity": h_identity, "Dropout": h_identity, "Transpose": h_transpose,
    "MaxPool": h_maxpool, "GlobalAveragePool": h_global_avg_pool, "Softmax": h_softmax,
}


# The 8-bit nodes' handlers use the helpers above (imported last for that reason).
from tinyface.graph.lower_quantized import HANDLERS as _QUANTIZED, check_reads, mark_views  # noqa: E402

HANDLERS.update(_QUANTIZED)
