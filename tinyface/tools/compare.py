"""``tinyface compare``: every fused step of a model against a reference engine.

tinyface runs the model one step at a time (``Plan.trace``) and keeps the
value each step produces.  Each is mapped back to the ONNX value it stands
for -- a fused step's output is the output of the last ONNX node it fuses; a
layout step's is its input, stored the other way -- and put in ONNX's layout
(NCHW).  The reference engine runs a copy of the model in which all those
values are graph outputs: onnxruntime with its graph rewrites turned off, so
each node runs as itself, or ONNX's own ``ReferenceEvaluator`` (slower, but
installed with onnx).  For each step, with t tinyface's value and r the
reference's (computed in float64):

- max abs error: max |t - r|
- max rel error: max |t - r| / max |r|, relative to the value's largest
  magnitude (an element-wise ratio would blow up wherever r is near zero)
- cosine: the smallest, over the images of the batch (the first axis), of
  t_i . r_i / (|t_i| |r_i|); 1 where both are zero

A quantised value (uint8 or int8 in the reference; tinyface holds int8 as
uint8 plus 128, ``graph.lower_quantized``) is compared as the real numbers it
stands for, ``(q - zero_point) * scale`` with the scale and zero point of the
QuantizeLinear that makes it, so its errors read like a float step's; its max
abs error is also given in quantisation steps ("steps").

A step is past the tolerance when its max rel error exceeds it (NaN counts
as infinitely far).  Errors accumulate along the graph, so the first step
past the tolerance is where to look.
"""
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from tinyface.graph.ops import BYTE_VIEWS, INT8_OFFSET
from tinyface.tools.engines import ONNX_REFERENCE, ONNXRUNTIME, onnxruntime_installed, run_reference

DEFAULT_TOLERANCE = 1e-4


@dataclass
class StepResult:
    """One step of the plan against the reference."""
    index: int
    kind: str          # e.g. "conv", "block", "layout"
    step: str          # the step's name (its first ONNX node; "first .. last" for a block)
    nodes: list        # [(op, name)] of the ONNX nodes it computes, in graph order
    value: str         # the ONNX value compared: the step's output
    shape: tuple       # its shape, in ONNX's layout
    max_abs: float
    max_rel: float
    cosine: float
    steps: float = None  # a quantised value's max abs error in quantisation steps; None for floats


@dataclass
class Comparison:
    model: str
    engine: str        # the reference, with its version
    inputs: str        # what the model was fed
    tolerance: float   # on the max rel error
    steps: list        # [StepResult], in plan order

    def past(self):
        """The steps whose max rel error exceeds the tolerance (NaN included)."""
        return [s for s in self.steps if not s.max_rel <= self.tolerance]

    @property
    def first_past(self):
        past = self.past()
        return past[0].index if past else None

    def to_dict(self):
        return {"model": self.model, "engine": self.engine, "inputs": self.inputs,
                "tolerance": self.tolerance, "first_past": self.first_past,
                "steps": [{**asdict(s), "shape": list(s.shape), "nodes": [list(n) for n in s.nodes],
                           "within": s.max_rel <= self.tolerance} for s in self.steps]}

    def format(self):
        lines = [f"tinyface vs {self.engine}: {self.model}, {self.inputs}",
                 f"{'#':>3}  {'kind':15} {'shape':16} {'max abs':>9} {'max rel':>9} {'cosine':>11} {'steps':>5}"
                 f"    nodes"]
        first = self.first_past
        for s in self.steps:
            mark = "x" if not s.max_rel <= self.tolerance else " "
            steps = "" if s.steps is None else f"{s.steps:.0f}"
            line = (f"{s.index:>3}  {s.kind:15} {'x'.join(map(str, s.shape)):16} {s.max_abs:>9.2e} "
                    f"{s.max_rel:>9.2e} {s.cosine:>11.8f} {steps:>5} {mark}  {describe_nodes(s)}")
            lines.append(line + ("   <- first step past the tolerance" if s.index == first else ""))
        past = self.past()
        if not past:
            lines.append(f"all {len(self.steps)} steps within the tolerance (max rel error <= {self.tolerance:g})")
        else:
            s = past[0]
            lines.append(f"{len(past)} of {len(self.steps)} steps past the tolerance (max rel error > "
                         f"{self.tolerance:g}); the first is step {s.index}, {s.kind} '{s.step}'")
        return "\n".join(lines)


def describe_nodes(result):
    """E.g. 'Conv+Clip  /conv1/Conv .. /conv1/Clip': the ops, then the first and last node."""
    if not result.nodes:
        return f"(layout of {result.value})"
    ops = "+".join(op for op, _ in result.nodes)
    names = result.nodes[0][1] if len(result.nodes) == 1 else f"{result.nodes[0][1]} .. {result.nodes[-1][1]}"
    return f"{ops}  {names}"


def default_engine():
    """onnxruntime when it is installed, else ONNX's reference evaluator."""
    return ONNXRUNTIME if onnxruntime_installed() else ONNX_REFERENCE


def compare(model, onnx_model, feed, against=None, tolerance=DEFAULT_TOLERANCE, inputs="given inputs"):
    """Compare every step of ``model`` (a loaded ``tinyface.Model``) on ``feed`` with
    ``against`` (ONNXRUNTIME or ONNX_REFERENCE; default ``default_engine()``) running
    ``onnx_model``, the same model as a path or ``onnx.ModelProto``.  ``inputs``
    describes the feed in the report.  Returns a :class:`Comparison`."""
    if not isinstance(onnx_model, onnx.ModelProto):
        onnx_model = onnx.load(str(onnx_model))
    plan = model.plan
    values = [onnx_value(step) for step in plan.steps]
    wanted = [v for v in dict.fromkeys(values) if v not in feed]
    reference, engine = run_reference(onnx_model, wanted, feed, against or default_engine())
    reference.update(feed)
    nodes = fused_nodes(model.graph, plan.steps)
    results = []
    for i, (step, _, ctx) in enumerate(plan.trace(feed)):
        out = step.outputs[0]
        value = ctx.values[out]
        ours = value.transpose(0, 3, 1, 2) if plan.layouts.get(out) == "nhwc" and value.ndim == 4 else value
        theirs, scale = reference[values[i]], None
        if theirs.dtype in (np.uint8, np.int8) and ours.dtype == np.uint8:
            scale, zero = quantization(model.graph, values[i])
            offset = INT8_OFFSET if theirs.dtype == np.int8 else 0
            ours, theirs = ((q.astype(np.int64) - z) * np.float64(scale)
                            for q, z in ((ours, zero + offset), (theirs, zero)))
        found = errors(ours, theirs)
        results.append(StepResult(i, step.kind, step.name, nodes[i], values[i], tuple(ours.shape), *found,
                                  None if scale is None else found[0] / np.float64(scale)))
    return Comparison(str(model.path or model.graph.source), engine, inputs, tolerance, results)


def onnx_value(step):
    """The ONNX value a step's output stands for (a layout step's: its input's)."""
    return step.inputs[0] if step.kind == "layout" else step.outputs[0]


def quantization(graph, value):
    """(scale, zero point) of the quantised ``value``: those of the QuantizeLinear that makes
    it, found through the ops that pass bytes on (Reshape, Flatten, ...); the zero point in
    the value's own type (int8 or uint8)."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    node = producer[value]
    while node.op in BYTE_VIEWS:
        node = producer[node.inputs[0]]
    scale = float(np.asarray(graph.constants[node.inputs[1]]).reshape(-1)[0])
    zero = node.inputs[2] if len(node.inputs) > 2 else ""
    return scale, int(np.asarray(graph.constants[zero]).reshape(-1)[0]) if zero else 0


def fused_nodes(graph, steps):
    """For each step, the ONNX nodes it computes: walking back from the node that produces
    its value, every node up to the values that exist on their own (graph inputs,
    constants and the other steps' values).  Constant-folded nodes (the exporters'
    shape arithmetic) count for the step that reads them."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    order = {id(node): i for i, node in enumerate(graph.nodes)}
    stop = {vi.name for vi in graph.inputs} | set(graph.constants) | {onnx_value(st) for st in steps}
    per_step = []
    for step in steps:
        if step.kind == "layout":
            per_step.append([])
            continue
        found, todo = {}, [producer[onnx_value(step)]]
        while todo:
            node = todo.pop()
            if id(node) in found:
                continue
            found[id(node)] = node
            todo += [producer[v] for v in node.inputs if v and v not in stop and v in producer]
        per_step.append([(n.op, n.name) for n in sorted(found.values(), key=lambda n: order[id(n)])])
    return per_step


def errors(ours, theirs):
    """(max abs error, max rel error, worst cosine over the first axis), in float64."""
    t, r = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if t.shape != r.shape:
        return np.inf, np.inf, 0.0
    if t.size == 0:
        return 0.0, 0.0, 1.0
    diff = np.abs(t - r)
    diff[np.isnan(t) & np.isnan(r)] = 0.0             # both NaN: they agree
    diff[np.isnan(diff)] = np.inf                      # NaN on one side only, or inf - inf
    max_abs = float(diff.max())
    magnitudes = np.abs(r[~np.isnan(r)])
    scale = float(magnitudes.max()) if magnitudes.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
    rows_t = t.reshape(len(t), -1) if t.ndim else t.reshape(1, 1)
    rows_r = r.reshape(len(r), -1) if r.ndim else r.reshape(1, 1)
    cosines = []
    for a, b in zip(rows_t, rows_r):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cosines.append(1.0 if na == nb == 0 else 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb)))
    cosine = min(cosines)
    return max_abs, max_rel, (0.0 if np.isnan(cosine) else min(cosine, 1.0))
