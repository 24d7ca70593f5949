"""Hypothesis strategies for whole ONNX nodes: an op type with inputs, attributes and opset.

``nodes(op_type)`` draws :class:`Case` values for any op of
``tinyface.reference.OPS``; the per-op strategies below take options that
narrow or widen what is drawn (``conv_nodes(depthwise=True)``).  By default a
case is what tinyface itself runs, at opset 13; ``onnx_extras=True`` adds the
parts of ONNX's definition that only the reference supports (dilations,
other group counts, ``auto_pad`` on pools), and ``legacy=True`` the older
opsets' forms of Clip, Softmax, Squeeze, Unsqueeze and Dropout.  Float data
are uniform in [-1, 1] from a drawn seed.
"""
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from tinyface.errors import UnsupportedOpError
from tinyface.reference import OPS
from tinyface.testing.data import values
from tinyface.testing.strategies import (batches, conv_cases, depthwise_cases, gemm_depths, gemm_rows, gemm_widths,
                                         nchw_shapes, pool_cases, seeds)

FLOAT, INT32, INT64, DOUBLE = 1, 6, 7, 11          # onnx.TensorProto element types


@dataclass
class Case:
    """One ONNX node: ``op_type`` on ``inputs`` (arrays in ONNX's order, None for an
    omitted optional input) with ``attrs`` (ONNX names), as ``opset`` defines it."""
    op_type: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    opset: int = 13

    def __repr__(self):
        ins = ", ".join("None" if x is None else f"{x.dtype}{list(x.shape)}" for x in self.inputs)
        return f"Case({self.op_type}, inputs [{ins}], attrs {self.attrs}, opset {self.opset})"


def _rng(draw):
    return np.random.default_rng(draw(seeds))


def _window_attrs(kernel, strides, pads):
    return {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads)}


@st.composite
def conv_nodes(draw, depthwise=None, onnx_extras=False):
    """Conv nodes: dense (``depthwise=False``), depthwise (True) or either (None), with
    or without a bias; ``onnx_extras`` draws, instead, any group count, dilations 1-2 and
    every ``auto_pad``."""
    rng = _rng(draw)
    if onnx_extras:
        return draw(_onnx_conv(rng))
    if depthwise is None:
        depthwise = draw(st.booleans())
    if depthwise:
        batch, c, h, w, kernel, strides, pads = draw(depthwise_cases())
        ci, co, group = c, c, c
    else:
        batch, ci, h, w, co, kernel, strides, pads = draw(conv_cases())
        group = 1
    bias = values(rng, co) if draw(st.booleans()) else None
    x, wt = values(rng, (batch, ci, h, w)), values(rng, (co, ci // group) + tuple(kernel))
    return Case("Conv", (x, wt, bias), {**_window_attrs(kernel, strides, pads), "group": group})


@st.composite
def _onnx_conv(draw, rng):
    group = draw(st.sampled_from([1, 2, 3]))
    cg, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    attrs, size = _auto_pad_attrs(draw, reach, [min(3, r) for r in reach])
    x = values(rng, (draw(batches), cg * group) + size)
    wt = values(rng, (per_group * group, cg) + kernel)
    bias = values(rng, per_group * group) if draw(st.booleans()) else None
    return Case("Conv", (x, wt, bias), {"strides": list(strides), "dilations": list(dilations), "group": group,
                                        **attrs})


def _auto_pad_attrs(draw, reach, max_pads):
    """Padding attributes (explicit ``pads`` up to ``max_pads`` per axis, or an
    ``auto_pad``) and a map size they fit, for windows reaching ``reach`` pixels."""
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
    if auto_pad == "NOTSET":
        pads = [draw(st.integers(0, p)) for p in max_pads + max_pads]
        size = tuple(draw(st.integers(max(1, r - pads[i] - pads[i + 2]), 12)) for i, r in enumerate(reach))
        return {"pads": pads}, size
    low = reach if auto_pad == "VALID" else [1, 1]
    return {"auto_pad": auto_pad}, tuple(draw(st.integers(lo, 12)) for lo in low)


@st.composite
def max_pool_nodes(draw, onnx_extras=False):
    """MaxPool nodes: windows 1-5, strides 1-3, pads below the window, ceil_mode on and
    off; half of them on all-negative maps (a zero-padded pool would fail there).

    ``onnx_extras``: also dilations 1-2 (with no padding, so that no window lies wholly
    in the padding, where ONNX does not say what the maximum is) and every ``auto_pad``
    (SAME without dilations and with strides up to the window: beyond, ONNX's padding
    formula goes negative and onnxruntime refuses the node).
    """
    rng = _rng(draw)
    negative = draw(st.booleans())
    if onnx_extras:
        kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        auto_pad = draw(st.sampled_from(["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
        same = auto_pad.startswith("SAME")
        dilations = (1, 1) if same else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        strides = [draw(st.integers(1, k if same else 3)) for k in kernel]
        reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
        attrs = {"auto_pad": auto_pad, "kernel_shape": list(kernel), "strides": strides,
                 "dilations": list(dilations), "ceil_mode": int(draw(st.booleans()))}
        pads = [0] * 4
        if auto_pad == "NOTSET" and dilations == (1, 1):
            pads = [draw(st.integers(0, k - 1)) for k in kernel + kernel]
        if auto_pad == "NOTSET":
            attrs["pads"] = pads
        low = [1, 1] if same else [max(1, r - pads[i] - pads[i + 2]) for i, r in enumerate(reach)]
        shape = (draw(batches), draw(st.integers(1, 5))) + tuple(draw(st.integers(lo, 12)) for lo in low)
    else:
        batch, c, h, w, kernel, strides, pads, ceil_mode = draw(pool_cases())
        attrs = {**_window_attrs(kernel, strides, pads), "ceil_mode": int(ceil_mode)}
        shape = (batch, c, h, w)
    x = rng.uniform(-10, -1, shape) if negative else rng.standard_normal(shape)
    return Case("MaxPool", (x.astype(np.float32),), attrs)


@st.composite
def global_average_pool_nodes(draw):
    """GlobalAveragePool on N x C x H x W maps."""
    shape = draw(nchw_shapes().filter(lambda s: len(s) == 4))
    return Case("GlobalAveragePool", (values(_rng(draw), shape),))


@st.composite
def batch_normalization_nodes(draw):
    """BatchNormalization (inference) on maps and on N x C matrices."""
    rng = _rng(draw)
    shape = draw(nchw_shapes())
    c = shape[1]
    params = (rng.uniform(0.5, 1.5, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c), rng.uniform(0.2, 2.0, c))
    attrs = {"epsilon": draw(st.sampled_from([1e-5, 1e-3, 0.1]))}
    return Case("BatchNormalization", (values(rng, shape),) + tuple(p.astype(np.float32) for p in params), attrs)


def _any_shape(max_rank=4):
    return st.lists(st.integers(1, 6), min_size=0, max_size=max_rank).map(tuple)


@st.composite
def relu_nodes(draw):
    return Case("Relu", (values(_rng(draw), draw(_any_shape())),))


@st.composite
def leaky_relu_nodes(draw):
    alpha = draw(st.sampled_from([0.01, 0.1, 0.2, 1.5, -0.3]))
    return Case("LeakyRelu", (values(_rng(draw), draw(_any_shape())),), {"alpha": alpha})


@st.composite
def clip_nodes(draw, legacy=False):
    """Clip with a lower bound, an upper one, both (also min > max) or neither: as inputs
    (opset 11 on) or, with ``legacy``, also as opset 6's attributes."""
    rng = _rng(draw)
    x = values(rng, draw(_any_shape())) * 2
    bounds = [draw(st.one_of(st.none(), st.floats(-1.5, 1.5, width=32))) for _ in range(2)]
    if legacy and draw(st.booleans()):
        attrs = {k: b for k, b in zip(("min", "max"), bounds) if b is not None}
        return Case("Clip", (x,), attrs, opset=6)
    return Case("Clip", (x,) + tuple(None if b is None else np.float32(b) for b in bounds))


@st.composite
def prelu_nodes(draw):
    """PRelu with one slope per channel (shaped C x 1 x 1 or 1 x C x 1 x 1 for maps), one
    for all, or one per element."""
    rng = _rng(draw)
    shape = draw(nchw_shapes())
    c = shape[1]
    slope_shape = draw(st.sampled_from([(1,), shape[1:], (c,) + (1,) * (len(shape) - 2),
                                        (1, c) + (1,) * (len(shape) - 2)]))
    return Case("PRelu", (values(rng, shape), rng.uniform(-0.5, 1.5, slope_shape).astype(np.float32)))


@st.composite
def _broadcast_pair(draw):
    """Two shapes that broadcast together: some axes of one set to 1, leading axes dropped."""
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    other = [1 if draw(st.booleans()) else d for d in shape][draw(st.integers(0, len(shape))):]
    return (tuple(shape), tuple(other)) if draw(st.booleans()) else (tuple(other), tuple(shape))


def _binary_nodes(op):
    @st.composite
    def strategy(draw, integers=None):
        """``op`` on two tensors that broadcast; float32, or int64 (the shape arithmetic of
        exporters) when ``integers`` is True (either when None)."""
        rng = _rng(draw)
        a_shape, b_shape = draw(_broadcast_pair())
        if integers is None:
            integers = draw(st.booleans())
        if integers:
            a = rng.integers(-20, 21, a_shape)
            b = rng.integers(-20, 21, b_shape)
            if op == "Div":
                b[b == 0] = 3
            return Case(op, (a, b))
        b = values(rng, b_shape)
        if op == "Div":
            b = np.where(np.abs(b) < 0.1, np.float32(0.5), b)
        return Case(op, (values(rng, a_shape), b))
    strategy.__name__ = f"{op.lower()}_nodes"
    return strategy


add_nodes, sub_nodes, mul_nodes, div_nodes = (_binary_nodes(op) for op in ("Add", "Sub", "Mul", "Div"))


@st.composite
def gemm_nodes(draw, trans_a=None):
    """Gemm with transA (drawn unless ``trans_a`` says; tinyface runs only transA=0),
    transB, alpha, beta and C absent, a scalar, a row, a column or a full matrix."""
    rng = _rng(draw)
    m, k, n = draw(gemm_rows), draw(gemm_depths), draw(gemm_widths)
    ta = draw(st.booleans()) if trans_a is None else trans_a
    tb = draw(st.booleans())
    a = values(rng, (k, m) if ta else (m, k))
    b = values(rng, (n, k) if tb else (k, n))
    c_shape = draw(st.sampled_from([None, (), (1,), (n,), (1, n), (m, 1), (m, n)]))
    inputs = (a, b) if c_shape is None else (a, b, values(rng, c_shape))
    attrs = {"alpha": draw(st.sampled_from([1.0, 0.5, -2.0])), "beta": draw(st.sampled_from([1.0, 0.0, 3.0])),
             "transA": int(ta), "transB": int(tb)}
    return Case("Gemm", inputs, attrs)


@st.composite
def matmul_nodes(draw):
    """MatMul of matrices, of a stack of matrices by a matrix or a stack, and of vectors."""
    rng = _rng(draw)
    m, k, n, s = (draw(st.integers(1, 9)) for _ in range(4))
    a_shape, b_shape = draw(st.sampled_from([((m, k), (k, n)), ((s, m, k), (k, n)), ((s, m, k), (s, k, n)),
                                             ((k,), (k, n)), ((m, k), (k,)), ((2, s, m, k), (s, k, n))]))
    return Case("MatMul", (values(rng, a_shape), values(rng, b_shape)))


@st.composite
def softmax_nodes(draw, legacy=False):
    """Softmax along any axis of tensors of rank 1-4, at magnitudes where exp alone would
    overflow; with ``legacy`` also opset 11's (flattening) definition."""
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple))
    x = values(_rng(draw), shape) * np.float32(draw(st.sampled_from([1.0, 30.0, 1e3])))
    opset = draw(st.sampled_from([11, 13])) if legacy else 13
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Case("Softmax", (x,), {"axis": axis}, opset)


@st.composite
def flatten_nodes(draw):
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    axis = draw(st.integers(-len(shape), len(shape)))
    return Case("Flatten", (values(_rng(draw), shape),), {"axis": axis})


@st.composite
def reshape_nodes(draw):
    """Reshape to the same elements regrouped: a -1 for one axis, 0s copying the input's."""
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    total = int(np.prod(shape))
    factor = draw(st.sampled_from([d for d in range(1, total + 1) if total % d == 0]))
    target = draw(st.sampled_from([[factor, -1], [-1, factor], [total], [0, -1], list(shape)[::-1],
                                   [0] * len(shape)]))
    return Case("Reshape", (values(_rng(draw), shape), np.array(target, np.int64)))


@st.composite
def squeeze_nodes(draw, legacy=False):
    """Squeeze of some (or, with no axes, all) size-1 axes, negative ones too; axes as an
    input (opset 13) or, with ``legacy``, as opset 11's attribute."""
    shape = draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=1, max_size=4).map(tuple))
    ones = [i for i, d in enumerate(shape) if d == 1]
    axes = draw(st.one_of(st.none(), st.lists(st.sampled_from(ones), unique=True, min_size=1))) if ones else None
    if axes is not None:
        axes = [a - len(shape) if draw(st.booleans()) else a for a in axes]
    return _axes_case(draw, "Squeeze", values(_rng(draw), shape), axes, legacy)


@st.composite
def unsqueeze_nodes(draw, legacy=False):
    """Unsqueeze at one or two positions of the result, negative ones too."""
    shape = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple))
    rank = len(shape) + draw(st.integers(1, 2))
    axes = draw(st.lists(st.integers(0, rank - 1), unique=True, min_size=rank - len(shape),
                         max_size=rank - len(shape)))
    axes = [a - rank if draw(st.booleans()) else a for a in axes]
    return _axes_case(draw, "Unsqueeze", values(_rng(draw), shape), axes, legacy)


def _axes_case(draw, op, x, axes, legacy):
    if legacy and draw(st.booleans()):
        return Case(op, (x,), {} if axes is None else {"axes": axes}, opset=11)
    return Case(op, (x,) if axes is None else (x, np.array(axes, np.int64)))


@st.composite
def transpose_nodes(draw):
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    perm = draw(st.one_of(st.none(), st.permutations(range(len(shape)))))
    return Case("Transpose", (values(_rng(draw), shape),), {} if perm is None else {"perm": list(perm)})


@st.composite
def shape_nodes(draw):
    """Shape, whole or sliced by start and end (opset 15)."""
    shape = draw(_any_shape())
    x = values(_rng(draw), shape)
    if draw(st.booleans()):
        return Case("Shape", (x,))
    bound = st.integers(-len(shape) - 1, len(shape) + 1)
    return Case("Shape", (x,), {"start": draw(bound), "end": draw(bound)}, opset=15)


@st.composite
def gather_nodes(draw):
    """Gather along any axis with scalar or 1-D indices, negative ones too, on float or int64 data."""
    rng = _rng(draw)
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    size = shape[axis]
    index = st.integers(-size, size - 1)
    indices = np.array(draw(st.one_of(index, st.lists(index, min_size=1, max_size=4))), np.int64)
    data = rng.integers(-9, 10, shape) if draw(st.booleans()) else values(rng, shape)
    return Case("Gather", (data, indices), {"axis": axis})


@st.composite
def concat_nodes(draw):
    rng = _rng(draw)
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        part = list(shape)
        part[axis] = draw(st.integers(1, 4))
        parts.append(values(rng, part))
    return Case("Concat", tuple(parts), {"axis": axis})


@st.composite
def cast_nodes(draw):
    """Cast between float32, float64, int32 and int64 (floats to integers truncate)."""
    rng = _rng(draw)
    shape = draw(_any_shape())
    x = rng.integers(-50, 51, shape) if draw(st.booleans()) else (values(rng, shape) * 50)
    return Case("Cast", (x,), {"to": draw(st.sampled_from([FLOAT, DOUBLE, INT32, INT64]))})


@st.composite
def identity_nodes(draw):
    return Case("Identity", (values(_rng(draw), draw(_any_shape())),))


@st.composite
def dropout_nodes(draw, legacy=False):
    """Dropout at inference (opset 13; with ``legacy`` also opset 10's ratio attribute)."""
    x = values(_rng(draw), draw(_any_shape()))
    if legacy and draw(st.booleans()):
        return Case("Dropout", (x,), {"ratio": 0.3}, opset=10)
    return Case("Dropout", (x,))


@st.composite
def constant_nodes(draw):
    rng = _rng(draw)
    form = draw(st.sampled_from(["value", "value_float", "value_floats", "value_int", "value_ints"]))
    value = {"value": lambda: values(rng, draw(_any_shape())), "value_float": lambda: float(rng.uniform(-1, 1)),
             "value_floats": lambda: [float(v) for v in rng.uniform(-1, 1, 3)],
             "value_int": lambda: int(rng.integers(-9, 10)),
             "value_ints": lambda: [int(v) for v in rng.integers(-9, 10, 4)]}[form]()
    return Case("Constant", (), {form: value})


# Each op's strategy is named after its reference function: Conv -> conv -> conv_nodes.
NODES = {op: globals()[f"{function.__name__}_nodes"] for op, function in OPS.items()}


def nodes(op_type, **options):
    """A strategy of :class:`Case` for ``op_type`` (options: see that op's strategy)."""
    if op_type not in NODES:
        raise UnsupportedOpError(f"no strategy for op {op_type}; there are strategies for {', '.join(sorted(NODES))}")
    return NODES[op_type](**options)
