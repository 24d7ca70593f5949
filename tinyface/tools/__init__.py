"""Tools for people who test ops and benchmark kernels: ``tinyface compare`` and ``tinyface bench``.

* ``compare``: a model's every fused step against onnxruntime or ONNX's
  reference evaluator, value by value.
* ``bench``: steady-state time per image, end to end against onnxruntime and
  step by step against the machine's measured peaks (``peak``).
* ``inputs``: random or face inputs of a model's declared shapes.
* ``engines``: onnxruntime sessions and ONNX's evaluator, for the other side.
* ``worker``: one engine timing one model in a process of its own.

onnxruntime is optional: it is imported only when a tool is asked to use it.
"""
