"""QDQ models: QuantizeLinear/DequantizeLinear patterns folded into integer nodes, before lowering.

``onnxruntime.quantization.quantize_static`` (QDQ format) writes an 8-bit model
as the float model with a DequantizeLinear (DQ) before each quantised input
and a QuantizeLinear (Q) after each quantised output::

    DQ(x_q) ------------\\
    DQ(w_q) -- Conv ----- [Relu | Clip] -- Q -> y_q          (Gemm, MatMul alike)
    DQ(b_q) ------------/
    DQ(a_q), DQ(b_q) -- Add -- [Relu | Clip] -- Q -> y_q

:func:`fold_qdq` rewrites each such pattern as one integer node, the way
onnxruntime itself does before it runs the model: ``QLinearConv`` (ONNX's own
op: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
y_zero_point, B), ``QGemm`` (A, a_scale, a_zero_point, B, b_scale,
b_zero_point, C, y_scale, y_zero_point; attribute transB) and ``QLinearAdd``
(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point),
with a fused Relu/Clip as the attribute ``tinyface_clip`` (lo, hi in float).
The nodes the pattern used are dropped when nothing else reads them.  What
matches no pattern keeps its DQ and Q nodes and runs in float32 between them
(``graph.lower``: Dequantize, the float op, Quantize; ``tinyface inspect``
notes it).

A pattern matches when: the activations' scales and zero points are constant
and per tensor; the weight is a constant of int8 or uint8, its scale per
tensor or per output channel (Conv: axis 0; MatMul: axis 1; Gemm: axis 0
with transB, 1 without); the bias is absent, a float constant, or a DQ of an
int32 constant; and each intermediate float value has the next node of the
pattern as its only reader and is not a graph output.  A bias whose scale is
not x_scale * w_scale (float32) is requantised to it:
round(bias / (x_scale * w_scale)), half to even.
"""
from dataclasses import replace

import numpy as np

from tinyface.graph.ir import Node

ACTIVATIONS = ("Relu", "Clip")


class _Index:
    """Who produces and who reads each value of a graph."""

    def __init__(self, graph):
        self.graph = graph
        self.producer = {o: n for n in graph.nodes for o in n.outputs}
        self.readers = {}
        for n in graph.nodes:
            for v in n.inputs:
                if v:
                    self.readers.setdefault(v, []).append(n)
        self.outputs = {vi.name for vi in graph.outputs}

    def const(self, v):
        return self.graph.constants.get(v) if v else None

    def dq(self, v, runtime):
        """The DQ node producing ``v`` with a runtime (or, ``runtime`` False, a constant
        integer) input and constant scale and zero point; else None."""
        node = self.producer.get(v)
        if node is None or node.op != "DequantizeLinear":
            return None
        if any(i not in self.graph.constants for i in node.inputs[1:] if i):
            return None
        return node if (node.inputs[0] not in self.graph.constants) == runtime else None

    def only_reader(self, v):
        found = self.readers.get(v, [])
        return found[0] if len(found) == 1 and v not in self.outputs else None

    def quantized_output(self, node):
        """(Q node, clip bounds or None) after ``node``: through at most one Relu/Clip with
        constant bounds, each float value read by the next node alone."""
        nxt = self.only_reader(node.outputs[0])
        clip = None
        if nxt is not None and nxt.op in ACTIVATIONS:
            clip = self._bounds(nxt)
            nxt = self.only_reader(nxt.outputs[0]) if clip else None
        if nxt is None or nxt.op != "QuantizeLinear" or any(i not in self.graph.constants for i in nxt.inputs[1:] if i):
            return None, None
        if np.size(self.const(nxt.inputs[1])) != 1:
            return None, None
        return nxt, clip

    def _bounds(self, node):
        if node.op == "Relu":
            return (0.0, float("inf"))
        if self.graph.opset < 11:
            return (node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf))
        bounds = [node.inputs[i] if len(node.inputs) > i else "" for i in (1, 2)]
        if any(b and b not in self.graph.constants for b in bounds):
            return None
        lo, hi = (float(self.const(b)) if b else d for b, d in zip(bounds, (-np.inf, np.inf)))
        return (lo, hi)


def _per_tensor(index, dq):
    return np.size(index.const(dq.inputs[1])) == 1


def _int_bias(index, node, b_name, x_dq, w_dq, channels):
    """The int32 bias of scale x_scale * w_scale, and its constant's name (a new one when
    it had to be made), or None when the bias is not a form the fold reads."""
    g = index.graph
    if not b_name:
        return np.zeros(channels, np.int32), None
    scale = (np.float32(index.const(x_dq.inputs[1])) * np.asarray(index.const(w_dq.inputs[1]), np.float32))
    if b_name in g.constants:
        b = np.asarray(g.constants[b_name])
        if b.dtype.kind != "f":
            return None
        value = b.astype(np.float64)
    else:
        b_dq = index.dq(b_name, runtime=False)
        if b_dq is None:
            return None
        b_q = index.const(b_dq.inputs[0])
        b_scale = np.asarray(index.const(b_dq.inputs[1]), np.float32)
        b_zero = index.const(b_dq.inputs[2]) if len(b_dq.inputs) > 2 and b_dq.inputs[2] else 0
        if b_q.dtype == np.int32 and np.all(b_scale == scale) and np.all(np.asarray(b_zero) == 0):
            return b_q, b_dq.inputs[0]
        value = (b_q.astype(np.float64) - np.asarray(b_zero, np.float64)) * b_scale
    if np.shape(value) not in ((channels,), (1,), ()):
        return None
    return np.broadcast_to(np.rint(value / scale.astype(np.float64)), (channels,)).astype(np.int32), None


class _Rewriter:
    def __init__(self, graph):
        self.index = _Index(graph)
        self.constants = dict(graph.constants)
        self.folded = set()              # ids of the Q nodes whose outputs a folded node now makes

    def new_constant(self, name, value):
        self.constants[name] = value
        return name

    def weight(self, node, w_name, axis):
        """The weight's DQ when it is a constant int8/uint8 with a scale per tensor or along
        ``axis``; else None."""
        w_dq = self.index.dq(w_name, runtime=False)
        if w_dq is None or self.index.const(w_dq.inputs[0]).dtype not in (np.int8, np.uint8):
            return None
        scale = self.index.const(w_dq.inputs[1])
        if np.size(scale) != 1 and w_dq.attrs.get("axis", 1) % self.index.const(w_dq.inputs[0]).ndim != axis:
            return None
        return w_dq

    def attrs(self, node, clip):
        attrs = dict(node.attrs)
        if clip:
            attrs["tinyface_clip"] = clip
        return attrs

    def fold_linear(self, node):
        """Conv, Gemm or MatMul between DQs and a Q: a QLinearConv or QGemm node."""
        idx = self.index
        x_dq = idx.dq(node.inputs[0], runtime=True)
        if x_dq is None or not _per_tensor(idx, x_dq) or len(node.inputs) < 2:
            return None
        trans_b = node.op == "Gemm" and node.attrs.get("transB", 0) == 1
        if node.op == "Gemm" and (node.attrs.get("transA", 0) or node.attrs.get("alpha", 1.0) != 1.0
                                  or node.attrs.get("beta", 1.0) != 1.0):
            return None
        axis = 0 if node.op == "Conv" or trans_b else 1
        w_dq = self.weight(node, node.inputs[1], axis)
        if w_dq is None:
            return None
        channels = idx.const(w_dq.inputs[0]).shape[axis]
        bias = _int_bias(idx, node, node.inputs[2] if len(node.inputs) > 2 else "", x_dq, w_dq, channels)
        q, clip = idx.quantized_output(node)
        if bias is None or q is None:
            return None
        b, b_name = bias
        self.folded.add(id(q))
        b_name = b_name or self.new_constant(f"{node.name}:bias_int32", b)
        x = x_dq.inputs[:3] + [""] * (3 - len(x_dq.inputs))
        w = w_dq.inputs[:3] + [""] * (3 - len(w_dq.inputs))
        y = q.inputs[1:3] + [""] * (3 - len(q.inputs))
        if node.op == "Conv":
            inputs = x + w + y + [b_name]
            op = "QLinearConv"
        else:
            inputs = x + w + [b_name] + y
            op = "QGemm"
        attrs = self.attrs(node, clip)
        if node.op == "MatMul":
            attrs = {"transB": 0, **attrs}
        return Node(op, node.name, inputs, list(q.outputs), attrs)

    def fold_add(self, node):
        """Add of two DQs, then a Q: a QLinearAdd node."""
        idx = self.index
        dqs = [idx.dq(v, runtime=True) for v in node.inputs[:2]]
        if any(d is None or not _per_tensor(idx, d) for d in dqs):
            return None
        q, clip = idx.quantized_output(node)
        if q is None:
            return None
        self.folded.add(id(q))
        padded = [list(d.inputs[:3]) + [""] * (3 - len(d.inputs)) for d in dqs]
        y = q.inputs[1:3] + [""] * (3 - len(q.inputs))
        return Node("QLinearAdd", node.name, padded[0] + padded[1] + y, list(q.outputs), self.attrs(node, clip))

    def run(self):
        g = self.index.graph
        nodes = []
        for node in g.nodes:
            folded = None
            if node.op in ("Conv", "Gemm", "MatMul"):
                folded = self.fold_linear(node)
            elif node.op == "Add":
                folded = self.fold_add(node)
            if id(node) not in self.folded:
                nodes.append(folded or node)
        return replace(g, nodes=_live(nodes, {vi.name for vi in g.outputs}), constants=self.constants)


def _live(nodes, outputs):
    """``nodes`` without those whose outputs nothing reads (dropped until none is)."""
    while True:
        read = {v for n in nodes for v in n.inputs} | outputs
        kept = [n for n in nodes if any(o in read for o in n.outputs)]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


def fold_qdq(graph):
    """``graph`` with its QDQ patterns folded into integer nodes (see the module); a graph
    without QuantizeLinear nodes is returned as it is."""
    if not any(n.op == "QuantizeLinear" for n in graph.nodes):
        return graph
    return _Rewriter(graph).run()
