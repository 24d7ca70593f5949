"""A model's summary for ``tinyface inspect``: fused steps, shapes, params, MACs.

Shapes are shown for batch 1; multiply-adds (MACs) are per image.  A graph
with unsupported ops is still summarised: every such op is listed with its
node name, and no steps are given (tinyface would refuse to run it).  In a
quantised (QDQ) model, the compute steps that no integer pattern covered, and
that therefore run in float32 between a Dequantize and a Quantize, are noted.
"""

from tinyface.errors import UnsupportedOpError
from tinyface.graph.lower import HANDLERS, lower
from tinyface.graph.onnx_file import read_model
from tinyface.graph.ops import infer_shapes
from tinyface.graph.shapes import BATCH


def _shape(shape):
    return [1 if d == BATCH else d for d in shape]


# Steps that move or convert values without computing on them
_NOT_COMPUTE = ("layout", "reshape", "transpose", "quantize", "dequantize")


def float_in_quantized(ops):
    """The compute steps of a quantised model that run in float32 (none in a float model)."""
    if not any(op.kind == "quantize" for op in ops):
        return []
    return [op for op in ops if not op.kind.startswith("q") and op.kind not in _NOT_COMPUTE]


def summarize(source, kernels=None):
    """The summary of the model file ``source`` (a dict, as ``inspect --json`` prints it).
    ``kernels(op)``, when given, names the kernels a step runs on where that depends on the
    machine (``runtime.binders_quantized.int8_form``); its answer, unless None, is the
    step's ``"kernels"``."""
    graph = read_model(source)
    info = {
        "model": str(source),
        "opset": graph.opset,
        "inputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.inputs],
        "outputs": [{"name": v.name, "shape": list(v.shape)} for v in graph.outputs],
        "unsupported": [{"op": n.op, "node": n.name} for n in graph.nodes if n.op not in HANDLERS],
        "onnx_nodes": len(graph.nodes),
        "steps": [], "params": None, "macs": None,
    }
    if info["unsupported"]:
        return info
    try:
        ops, _, low = lower(graph)
    except UnsupportedOpError as exc:
        info["unsupported"].append({"op": "?", "node": "?", "reason": str(exc)})
        return info
    shapes = {vi.name: low.shapes[vi.name] for vi in graph.inputs}
    known = all(None not in s for s in shapes.values())
    per_step = infer_shapes(ops, shapes) if known else None
    total_params = total_macs = 0
    for i, st in enumerate(ops):
        params = int(st.params())
        row = {"kind": st.kind, "node": st.name, "detail": st.detail(), "params": params}
        form = kernels(st) if kernels else None
        if form:
            row["kernels"] = form
        if per_step:
            ins, outs = per_step[i]
            macs = int(st.macs(ins, outs))
            row.update(input=_shape(ins[0]), output=_shape(outs[0]), macs=macs)
            total_macs += macs
        total_params += params
        info["steps"].append(row)
    info["float_in_quantized"] = [f"{op.kind} [{op.name}]" for op in float_in_quantized(ops)]
    info["params"] = total_params
    info["macs"] = total_macs if per_step else None
    return info


def format_summary(info):
    lines = [f"model   {info['model']}  (opset {info['opset']}, {info['onnx_nodes']} ONNX nodes)"]
    for kind in ("inputs", "outputs"):
        for v in info[kind]:
            dims = "x".join("?" if d is None else str(d) for d in v["shape"])
            lines.append(f"{kind[:-1]:7} {v['name']}  {dims}")
    if info["unsupported"]:
        lines.append("unsupported ops (tinyface cannot run this model):")
        lines += [f"  {u['op']}  node '{u['node']}'" + (f"  {u['reason']}" if "reason" in u else "")
                  for u in info["unsupported"]]
        lines.append("supported ops: " + ", ".join(sorted(HANDLERS)))
        return "\n".join(lines)
    lines.append(f"{'#':>3}  {'step':12} {'output':18} {'params':>9} {'MACs':>12}  detail / node")
    for i, s in enumerate(info["steps"]):
        out = "x".join(str(d) for d in s.get("output", [])) or "?"
        macs = f"{s['macs']:,}" if "macs" in s else "?"
        detail = s["detail"] + (f" ({s['kernels']} kernels)" if "kernels" in s else "")
        lines.append(f"{i:>3}  {s['kind']:12} {out:18} {s['params']:>9,} {macs:>12}  {detail}  [{s['node']}]")
    if info.get("float_in_quantized"):
        lines.append("note: quantised model; these steps run in float32 between DequantizeLinear and "
                     "QuantizeLinear (no integer pattern covers them): " + ", ".join(info["float_in_quantized"]))
    macs = f"{info['macs']:,}" if info["macs"] is not None else "? (input size not fixed)"
    lines.append(f"total: {len(info['steps'])} fused steps, {info['params']:,} parameters, {macs} multiply-adds per image")
    return "\n".join(lines)
