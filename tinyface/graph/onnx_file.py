"""Reading an ONNX file into a :class:`tinyface.graph.ir.Graph`.

Checks, each with a one-line :class:`ModelError` that names the file: missing,
empty, not parseable as ONNX, no graph, external data that is missing, short or
whose location escapes the model's folder.  Constants from initialisers and
``Constant`` nodes become NumPy arrays; initialisers nobody reads are dropped.
"""
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tinyface.errors import ModelError, UnsupportedOpError
from tinyface.graph.ir import Graph, Node, ValueInfo

MIN_OPSET, MAX_OPSET = 7, 21


def read_model(source):
    """Return a Graph from a path or an in-memory ``onnx.ModelProto``."""
    if isinstance(source, onnx.ModelProto):
        return _to_graph(source, "<in-memory model>", base_dir=None)
    if isinstance(source, (bytes, bytearray)):
        return _to_graph(_parse(bytes(source), "<serialized model>"), "<serialized model>", base_dir=None)
    path = Path(source)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not an ONNX model file")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path}: model file is empty")
    return _to_graph(_parse(data, path), str(path), base_dir=path.resolve().parent)


def _parse(data, where):
    if not data:
        raise ModelError(f"{where}: model is empty")
    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{where}: not a valid ONNX model ({type(exc).__name__})") from None


def _to_graph(proto, source, base_dir):
    g = proto.graph
    if not g.node or not g.output:
        raise ModelError(f"{source}: not a valid ONNX model (no graph nodes or outputs)")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedOpError(f"{source}: opset {opset} is not supported (tinyface reads {MIN_OPSET}-{MAX_OPSET})")
    for o in proto.opset_import:
        if o.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{source}: operator domain '{o.domain}' is not supported")

    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    constants = {}
    for init in g.initializer:
        if init.name in used:                      # unused initialisers are never read
            constants[init.name] = _tensor_to_array(init, source, base_dir)
    nodes = []
    for index, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{index}"
        attrs = {a.name: _attribute(a, source, base_dir) for a in n.attribute}
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            constants[n.output[0]] = _constant_value(attrs, name, source)
            continue
        nodes.append(Node(n.op_type, name, list(n.input), list(n.output), attrs))

    initialisers = {init.name for init in g.initializer}
    inputs = [_value_info(v) for v in g.input if v.name not in constants and v.name not in initialisers]
    outputs = [_value_info(v) for v in g.output]
    used = {i for n in nodes for i in n.inputs} | {o.name for o in outputs}
    constants = {k: v for k, v in constants.items() if k in used}
    metadata = {p.key: p.value for p in proto.metadata_props}
    return Graph(nodes, inputs, outputs, constants, opset, source, metadata)


def _value_info(v):
    t = v.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    names = tuple(d.dim_param if d.HasField("dim_param") else None for d in t.shape.dim)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else np.dtype(np.float32)
    return ValueInfo(v.name, dims, np.dtype(dtype), names)


def _attribute(a, source, base_dir):
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor_to_array(a.t, source, base_dir)
    return onnx.helper.get_attribute_value(a)


def _constant_value(attrs, name, source):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = attrs[key]
            if key in ("value_float", "value_floats"):
                return np.asarray(value, dtype=np.float32)
            if key in ("value_int", "value_ints"):
                return np.asarray(value, dtype=np.int64)
            return value
    raise UnsupportedOpError(f"{source}: Constant node '{name}' has no supported value attribute "
                             f"(found {sorted(attrs)})")


def _tensor_to_array(t, source, base_dir):
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return _read_external(t, source, base_dir)
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:
        raise ModelError(f"{source}: tensor '{t.name}' cannot be decoded ({exc})") from None


def _read_external(t, source, base_dir):
    """Read a tensor stored in an external-data file, refusing unsafe paths."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ModelError(f"{source}: tensor '{t.name}' uses external data, which needs the model loaded from a file")
    target = (base_dir / location).resolve()
    if not location or os.path.isabs(location) or base_dir not in target.parents:
        raise ModelError(f"{source}: tensor '{t.name}' external data location '{location}' "
                         f"escapes the model's folder; refused")
    if not target.is_file():
        raise ModelError(f"{source}: external data file '{location}' for tensor '{t.name}' not found")
    offset = int(info.get("offset", 0))
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    count = int(np.prod(t.dims, dtype=np.int64))
    length = int(info.get("length", count * dtype.itemsize))
    if length != count * dtype.itemsize:
        raise ModelError(f"{source}: tensor '{t.name}' external length {length} does not match "
                         f"its shape {list(t.dims)}")
    with open(target, "rb") as f:
        f.seek(offset)
        raw = f.read(length)
    if len(raw) != length:
        raise ModelError(f"{source}: external data file '{location}' is truncated "
                         f"(tensor '{t.name}' needs {length} bytes at offset {offset})")
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(t.dims)).copy()
