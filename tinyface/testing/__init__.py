"""Property testing of op implementations against ``tinyface.reference``, with hypothesis.

    from tinyface.testing import check_against_reference, conv_nodes
    check_against_reference("Conv", my_depthwise, conv_nodes(depthwise=True))

* ``check_against_reference(op_type, implementation, cases)``: draw cases,
  run both, compare (see its docstring for the tolerance).
* ``nodes(op_type)`` and the per-op ``*_nodes`` strategies
  (``tinyface.testing.nodes``): whole ONNX nodes as :class:`Case` values.
* ``tinyface.testing.strategies``: the op geometries tinyface's own kernel
  tests draw (odd sizes, strides, pads, channel counts off the vector width,
  batch > 1).
* ``tinyface.testing.data``: float32 test data and the epilogue's activations.

Needs hypothesis, which is not one of tinyface's runtime dependencies:
``pip install hypothesis`` (or ``pip install "tinyface[testing]"``).
"""
try:
    import hypothesis  # noqa: F401
except ImportError:
    raise ImportError("tinyface.testing needs hypothesis, which tinyface does not install: "
                      "pip install hypothesis (or tinyface[testing])") from None

from tinyface.testing.check import assert_matches, check_against_reference, reduction_length
from tinyface.testing.nodes import (NODES, Case, conv_nodes, gemm_nodes, max_pool_nodes, nodes)

__all__ = ["check_against_reference", "assert_matches", "reduction_length", "Case", "nodes", "NODES",
           "conv_nodes", "max_pool_nodes", "gemm_nodes"]
