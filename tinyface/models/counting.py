"""Counting parameters and multiply-adds of a CNN from its ONNX graph.

Conventions (per image; the batch dimension is ignored):

* MAdds count the multiply-adds of Conv and Gemm only:
  Conv: (output elements) x (I/groups x kh x kw); Gemm: in x out.
  BatchNormalization, activations, Add, Flatten are not counted.
* ``params`` is what the deployed graph holds once every BatchNormalization
  is folded into the conv before it: all conv/dense weights and biases, plus
  one shift per BN channel (its scale folds into the conv weights; a conv that
  already has a bias absorbs the shift), plus the PReLU slopes.
  The other common conventions are available as fields: ``weights`` only, or
  the PyTorch trainable count ``trainable`` (BN gamma and beta both counted).
"""
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import shape_inference

from tinyface.errors import ModelError


@dataclass(frozen=True)
class Counts:
    weights: int      # conv and dense weight tensors
    biases: int       # conv and dense bias vectors
    bn_channels: int  # channels of BatchNormalization nodes (each has gamma, beta, mean, var)
    bn_folded: int    # BN shifts that fold into a conv without its own bias
    prelu: int        # PReLU slopes
    madds: int        # multiply-adds per image, Conv + Gemm

    @property
    def params(self) -> int:
        """Parameters of the BN-folded inference graph (this package's convention)."""
        return self.weights + self.biases + self.bn_folded + self.prelu

    @property
    def trainable(self) -> int:
        """PyTorch's count: weights, biases, BN gamma and beta, PReLU slopes."""
        return self.weights + self.biases + 2 * self.bn_channels + self.prelu


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def count(model: onnx.ModelProto) -> Counts:
    """Count parameters and MAdds of ``model`` (see the module docstring).

    Weights must be initialisers; output shapes come from ONNX shape inference.
    """
    graph = shape_inference.infer_shapes(model).graph
    shapes = {vi.name: _dims(vi) for vi in (*graph.input, *graph.value_info, *graph.output)}
    inits = {t.name: tuple(t.dims) for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def size(node, i: int) -> int:          # elements of the node's i-th input, 0 if absent
        if len(node.input) <= i or not node.input[i]:
            return 0
        if node.input[i] not in inits:
            raise ModelError(f"{node.op_type} node {node.name!r}: input {node.input[i]!r} "
                             "is not an initialiser")
        return int(np.prod(inits[node.input[i]]))

    def has_bias(node) -> bool:
        return node is not None and node.op_type in ("Conv", "Gemm") and size(node, 2) > 0

    weights = biases = bn_channels = bn_folded = prelu = madds = 0
    for node in graph.node:
        if node.op_type == "Conv":
            out = shapes.get(node.output[0])
            if out is None or None in out[1:]:
                raise ModelError(f"cannot infer the output shape of Conv node {node.name!r}")
            w = size(node, 1)
            weights, biases = weights + w, biases + size(node, 2)
            madds += int(np.prod(out[1:])) * (w // out[1])     # outputs x (I/groups * kh * kw)
        elif node.op_type == "Gemm":                           # one row per image
            w = size(node, 1)
            weights, biases, madds = weights + w, biases + size(node, 2), madds + w
        elif node.op_type == "BatchNormalization":
            c = size(node, 1)
            bn_channels += c
            bn_folded += 0 if has_bias(producer.get(node.input[0])) else c
        elif node.op_type == "PRelu":
            prelu += size(node, 1)
    return Counts(weights, biases, bn_channels, bn_folded, prelu, madds)
