"""The graph as tinyface reads it from ONNX, before lowering to steps.

A :class:`Graph` is ONNX's own structure with the protobuf taken away: nodes
with plain-Python attributes, every constant (initialiser or ``Constant``
node) as a NumPy array, and the declared inputs and outputs.
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Node:
    op: str                      # ONNX op_type, e.g. "Conv"
    name: str                    # node name (or a generated one)
    inputs: list                 # value names; "" for an omitted optional input
    outputs: list
    attrs: dict = field(default_factory=dict)

    def describe(self):
        return f"{self.op} node '{self.name}'"


@dataclass
class ValueInfo:
    name: str
    shape: tuple                 # ints, or None for a symbolic/unknown dim
    dtype: np.dtype
    dim_names: tuple = ()        # the dim_param of each symbolic dim (None where not named)


@dataclass
class Graph:
    nodes: list
    inputs: list                 # [ValueInfo] of runtime inputs (not initialisers)
    outputs: list                # [ValueInfo]
    constants: dict              # name -> np.ndarray
    opset: int
    source: str                  # file name (for messages)
    metadata: dict = field(default_factory=dict)
