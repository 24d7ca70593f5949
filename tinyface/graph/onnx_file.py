"""Reading an ONNX file into a :class:`tinyface.graph.ir.Graph`.

Checks, each with a one-line :class:`ModelError` that names the file: missing,
empty, not a regular file, not parseable as ONNX, no graph, a name that is not
UTF-8 text, a value defined
twice (ONNX graphs assign each value once), a node that breaks its op's schema
(input count, required or unknown attributes), a tensor of an unknown or
non-numeric type, of negative dims or of more elements than
``MAX_TENSOR_ELEMENTS`` (refused before its data is read: see
:mod:`tinyface.limits`), and external data that is missing, short, not a
regular file or whose location escapes the model's folder.  Constants from
initialisers and ``Constant`` nodes become NumPy arrays; initialisers nobody
reads are dropped.
"""
import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from tinyface.errors import ModelError, UnsupportedOpError
from tinyface.graph.ir import Graph, Node, ValueInfo
from tinyface.limits import check_limit

MIN_OPSET, MAX_OPSET = 7, 21
MAX_FILE_BYTES = 2**31 - 1       # protobuf's own limit on one message; bigger models use external data

# The tensor types tinyface reads as constants: NumPy's own numeric types.  Strings,
# complex numbers and the narrow float/int types (bfloat16, float8, int4, ...) are refused.
NUMERIC_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BOOL,
                 TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
                 TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64}


def read_model(source):
    """Return a Graph from a path, serialized bytes or an in-memory ``onnx.ModelProto``."""
    if isinstance(source, onnx.ModelProto):
        return _to_graph(source, "<in-memory model>", base_dir=None)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _to_graph(_parse(bytes(source), "<serialized model>"), "<serialized model>", base_dir=None)
    if not isinstance(source, (str, os.PathLike)):
        raise ModelError(f"cannot read a model from a {type(source).__name__}: expected a path, "
                         f"bytes or an onnx.ModelProto")
    path = Path(source)
    try:
        if not path.exists():
            raise ModelError(f"{path}: model file not found")
        if path.is_dir():
            raise ModelError(f"{path}: is a directory, not an ONNX model file")
        if not path.is_file():
            raise ModelError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelError(f"{path}: larger than 2 GB, which ONNX stores as external data")
        data = path.read_bytes()
        base_dir = path.resolve().parent
    except OSError as exc:            # permission, I/O, a name too long
        raise ModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    if not data:
        raise ModelError(f"{path}: model file is empty")
    return _to_graph(_parse(data, path), str(path), base_dir)


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
    _check_text(proto, source)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedOpError(f"{source}: opset {opset} is not supported (tinyface reads {MIN_OPSET}-{MAX_OPSET})")
    for o in proto.opset_import:
        if o.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{source}: operator domain '{o.domain}' is not supported")
    _check_single_assignment(g, source)
    checker = _node_checker(proto, opset)

    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    constants = {}
    for init in g.initializer:
        if init.name in used:                      # unused initialisers are never read
            constants[init.name] = _tensor_to_array(init, source, base_dir)
    nodes = []
    for index, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{index}"
        where = f"{source}: {n.op_type} node '{name}'"
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{where} is in operator domain '{n.domain}', which is not supported")
        checker(n, where)
        attrs = {a.name: _attribute(a, where, source, base_dir) for a in n.attribute}
        if n.op_type == "Constant":
            if len(n.output) != 1 or not n.output[0]:
                raise ModelError(f"{where} must have one output, has {list(n.output)}")
            constants[n.output[0]] = _constant_value(attrs, name, source)
            continue
        nodes.append(Node(n.op_type, name, list(n.input), list(n.output), attrs))

    initialisers = {init.name for init in g.initializer}
    inputs = [_value_info(v, source) for v in g.input if v.name not in constants and v.name not in initialisers]
    outputs = [_value_info(v, source) for v in g.output]
    used = {i for n in nodes for i in n.inputs} | {o.name for o in outputs}
    constants = {k: v for k, v in constants.items() if k in used}
    metadata = {p.key: p.value for p in proto.metadata_props}
    return Graph(nodes, inputs, outputs, constants, opset, source, metadata)


def _check_text(proto, source):
    """Every name and key tinyface reads must be text: protobuf hands a string field that is
    not valid UTF-8 over as bytes (ONNX requires UTF-8)."""
    g = proto.graph
    texts = [(o.domain, "an opset domain") for o in proto.opset_import]
    texts += [(text, "a metadata entry") for p in proto.metadata_props for text in (p.key, p.value)]
    for v in list(g.input) + list(g.output):
        texts += [(v.name, "a value name")] + [(d.dim_param, "a dim name") for d in v.type.tensor_type.shape.dim]
    for t in list(g.initializer) + [a.t for n in g.node for a in n.attribute]:
        texts += [(t.name, "a tensor name")] + [(text, "an external data entry")
                                                for e in t.external_data for text in (e.key, e.value)]
    for n in g.node:
        texts += [(text, "a node's op, name or domain") for text in (n.op_type, n.name, n.domain)]
        texts += [(text, "a node's input or output") for text in list(n.input) + list(n.output)]
        texts += [(a.name, "an attribute name") for a in n.attribute]
    bad = next((what for text, what in texts if not isinstance(text, str)), None)
    if bad:
        raise ModelError(f"{source}: {bad} is not valid UTF-8 text")


def _check_single_assignment(g, source):
    """Every value is defined once: by a graph input, an initialiser or one node output.

    An initialiser may also be listed as a graph input (old exporters list every
    weight there); graph outputs may each be listed once.
    """
    defined = {}

    def define(name, by):
        if name in defined:
            raise ModelError(f"{source}: value '{name}' is defined twice ({defined[name]} and {by}); "
                             f"an ONNX graph assigns each value once")
        defined[name] = by

    initialisers = set()
    for t in g.initializer:
        define(t.name, f"initialiser '{t.name}'")
        initialisers.add(t.name)
    for v in g.input:
        if v.name not in initialisers:
            define(v.name, f"graph input '{v.name}'")
    for index, n in enumerate(g.node):
        for out in n.output:
            if out:                                 # "" is an omitted optional output
                define(out, f"{n.op_type} node '{n.name or f'{n.op_type}_{index}'}'")
    listed = set()
    for v in g.output:
        if v.name in listed:
            raise ModelError(f"{source}: graph output '{v.name}' is listed twice")
        listed.add(v.name)


def _node_checker(proto, opset):
    """A function ``check(node, where)`` that holds a node of an ONNX op against the op's
    schema (onnx.checker: input and output counts, required, unknown or mistyped attributes)
    and raises a one-line ModelError.  Ops ONNX does not know are left for lowering to report."""
    context = onnx.checker.C.CheckerContext()
    context.ir_version = min(max(proto.ir_version, 3), onnx.IR_VERSION)
    context.opset_imports = {"": opset}

    def check(node, where):
        if not onnx.defs.has(node.op_type):
            return
        try:
            onnx.checker.check_node(node, context)
        except onnx.checker.ValidationError as exc:
            raise ModelError(f"{where}: {' '.join(str(exc).split())}") from None
    return check


def _value_info(v, source):
    t = v.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    names = tuple(d.dim_param if d.HasField("dim_param") else None for d in t.shape.dim)
    if not t.elem_type:
        return ValueInfo(v.name, dims, np.dtype(np.float32), names)
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{source}: value '{v.name}' has unknown element type {t.elem_type}") from None
    return ValueInfo(v.name, dims, dtype, names)


def _attribute(a, where, source, base_dir):
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor_to_array(a.t, source, base_dir)
    try:
        return onnx.helper.get_attribute_value(a)
    except Exception as exc:           # an attribute of no (or an unknown) type
        raise ModelError(f"{where}: attribute '{a.name}' cannot be read ({exc})") from None


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
    """A tensor's data as a NumPy array; its type and size are checked before any is read."""
    if t.data_type not in NUMERIC_TYPES:
        kind = TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values() \
            else f"unknown ({t.data_type})"
        raise ModelError(f"{source}: tensor '{t.name}' has data type {kind}, which tinyface does not read")
    shape = tuple(t.dims)
    if any(d < 0 for d in shape):
        raise ModelError(f"{source}: tensor '{t.name}' has negative dims {list(shape)}")
    check_limit("MAX_TENSOR_ELEMENTS", math.prod(shape), ModelError,
                f"{source}: tensor '{t.name}' of shape {list(shape)}")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    if t.data_location == TensorProto.EXTERNAL:
        return _read_external(t, source, base_dir, dtype, shape)
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:
        raise ModelError(f"{source}: tensor '{t.name}' cannot be decoded ({exc})") from None


def _read_external(t, source, base_dir, dtype, shape):
    """Read a tensor stored in an external-data file, refusing unsafe paths and bad ranges."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ModelError(f"{source}: tensor '{t.name}' uses external data, which needs the model loaded from a file")
    try:
        target = (base_dir / location).resolve()
        inside = bool(location) and not os.path.isabs(location) and base_dir in target.parents
        exists = inside and target.exists()
        size = target.stat().st_size if exists and target.is_file() else None
    except (OSError, RuntimeError, ValueError) as exc:   # a symlink loop, a NUL byte, a name too long
        raise ModelError(f"{source}: tensor '{t.name}' external data location {location!r} "
                         f"cannot be opened ({exc})") from None
    if not inside:
        raise ModelError(f"{source}: tensor '{t.name}' external data location '{location}' "
                         f"escapes the model's folder; refused")
    if not exists:
        raise ModelError(f"{source}: external data file '{location}' for tensor '{t.name}' not found")
    if size is None:
        raise ModelError(f"{source}: external data '{location}' for tensor '{t.name}' is not a regular file")
    needed = math.prod(shape) * dtype.itemsize
    offset = _external_number(info, "offset", 0, t, source)
    length = _external_number(info, "length", needed, t, source)
    if length != needed:
        raise ModelError(f"{source}: tensor '{t.name}' external length {length} does not match "
                         f"its shape {list(shape)}")
    if offset + length > size:
        raise ModelError(f"{source}: external data file '{location}' is truncated "
                         f"(tensor '{t.name}' needs {length} bytes at offset {offset}, the file has {size})")
    try:
        with open(target, "rb") as f:
            f.seek(offset)
            raw = f.read(length)
    except OSError as exc:
        raise ModelError(f"{source}: external data file '{location}' cannot be read ({exc.strerror or exc})") from None
    if len(raw) != length:
        raise ModelError(f"{source}: external data file '{location}' is truncated "
                         f"(tensor '{t.name}' needs {length} bytes at offset {offset})")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _external_number(info, key, default, t, source):
    """An external-data field that must be a non-negative integer (``offset``, ``length``)."""
    text = info.get(key)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ModelError(f"{source}: tensor '{t.name}' external data {key} {text!r} is not a "
                         f"non-negative integer")
    return value
