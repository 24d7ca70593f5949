"""Plain NumPy references for every ONNX op tinyface runs, computed in float64.

For people who test kernels: each op is one short function written for
reading rather than speed, with no Numba, following ONNX's definition of the
op (https://onnx.ai/onnx/operators/) in ONNX's layout (NCHW maps, Co x
C/group x KH x KW conv weights).  Arithmetic is done in float64, so that a
float32 kernel can be compared against it with a tolerance that only has to
cover *its* rounding.  Each function is itself checked against ONNX's own
``onnx.reference.ReferenceEvaluator`` (tests/test_reference.py).

Calling convention: the op's inputs positionally, in ONNX's order (optional
ones may be None), then its attributes as keyword arguments with their ONNX
names and defaults, so that a node reads the same in Python::

    from tinyface import reference
    y = reference.conv(x, w, b, strides=[2, 2], pads=[1, 1, 1, 1], group=1)
    y = reference.run_node("Conv", [x, w, b], {"strides": [2, 2]})   # the same, by op type

``OPS`` maps each ONNX op type to its function.  ``run_node`` also accepts
the older opsets' forms (Clip's bounds and Squeeze's axes as attributes,
Softmax's flattening before opset 13); ``run_graph`` runs a whole model node
by node.

Beyond what tinyface's kernels run, the references support Conv and MaxPool
dilations, Conv with any number of groups, Gemm's transA, and broadcasting
of Add/Sub/Mul/Div between two tensors of different shapes.  Refused, with
``UnsupportedOpError``: maps with other than two spatial axes, MaxPool's
Indices output, BatchNormalization and Dropout in training mode.  A bad
input (shapes that do not fit) raises ``InputError``.

Besides the ONNX ops, ``epilogue`` and ``act`` state what tinyface's fused
conv epilogue computes, in ONNX terms, and ``output_size`` the window count
of a Conv or MaxPool along one axis.
"""
import inspect

import numpy as np

from tinyface.errors import ModelError, UnsupportedOpError
from tinyface.reference.pointwise import (act, add, batch_normalization, clip, div, epilogue, leaky_relu, mul,
                                          per_channel, prelu, relu, sub)
from tinyface.reference.tensor import (cast, concat, constant, dropout, flatten, gather, gemm, identity, matmul,
                                       reshape, shape, softmax, squeeze, transpose, unsqueeze)
from tinyface.reference.window import conv, global_average_pool, max_pool, output_size

OPS = {
    "Conv": conv, "MaxPool": max_pool, "GlobalAveragePool": global_average_pool,
    "BatchNormalization": batch_normalization,
    "Relu": relu, "LeakyRelu": leaky_relu, "Clip": clip, "PRelu": prelu,
    "Add": add, "Sub": sub, "Mul": mul, "Div": div,
    "Gemm": gemm, "MatMul": matmul, "Softmax": softmax,
    "Flatten": flatten, "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Transpose": transpose, "Shape": shape, "Gather": gather, "Concat": concat, "Cast": cast,
    "Identity": identity, "Dropout": dropout, "Constant": constant,
}

__all__ = ["OPS", "run_node", "run_graph", "output_size", "per_channel", "act", "epilogue",
           *(fn.__name__ for fn in OPS.values())]


def run_node(op_type, inputs, attrs=None, opset=13):
    """The (first) output of an ONNX node of ``op_type`` with ``inputs`` (arrays, None for
    an omitted optional input) and ``attrs`` (ONNX attribute names -> Python values), as
    opset ``opset`` defines the op."""
    attrs = dict(attrs or {})
    if op_type not in OPS:
        raise UnsupportedOpError(f"no reference for op {op_type}; there are references for "
                                 f"{', '.join(sorted(OPS))}")
    inputs = list(inputs)
    while inputs and inputs[-1] is None:          # trailing omitted inputs: the defaults
        inputs.pop()
    if op_type == "Softmax" and opset < 13:
        return _softmax_before_13(inputs[0], attrs.get("axis", 1))
    function = OPS[op_type]
    try:
        inspect.signature(function).bind(*inputs, **attrs)
    except TypeError as exc:                      # an attribute or input the op does not have
        raise UnsupportedOpError(f"{op_type} with {len(inputs)} inputs and attributes "
                                 f"{sorted(attrs)}: {exc}") from None
    return function(*inputs, **attrs)


def _softmax_before_13(x, axis):
    """Softmax up to opset 12: the input seen as a matrix, axes before ``axis`` as rows
    and the rest as columns, and the softmax taken along each row."""
    x = np.asarray(x)
    rows = flatten(x, axis=axis)
    return softmax(rows, axis=-1).reshape(x.shape)


def run_graph(model, feed):
    """Run an ONNX model (a path, bytes or ``onnx.ModelProto``, or a
    ``tinyface.graph.ir.Graph``) node by node through the references.

    ``feed`` maps input names to arrays; returns ``{value name: array}`` for every
    value of the graph (its outputs, intermediate values, constants and inputs).
    """
    from tinyface.graph.ir import Graph
    from tinyface.graph.onnx_file import read_model
    graph = model if isinstance(model, Graph) else read_model(model)
    values = {**graph.constants, **feed}
    for node in graph.nodes:
        missing = [v for v in node.inputs if v and v not in values]
        if missing:
            raise ModelError(f"{graph.source}: {node.describe()} reads {missing}, which no earlier node computes")
        out = run_node(node.op, [values[v] if v else None for v in node.inputs], node.attrs, graph.opset)
        values[node.outputs[0]] = out
    return values
