"""Shape helpers shared by lowering and steps.

Shapes are tuples of ints.  While a graph is lowered (before any input is
seen) a dimension may be ``None`` (unknown, e.g. a free image height) or the
sentinel ``BATCH``, the free batch size: it passes through every op untouched,
so shape arithmetic such as ``Shape -> Gather -> Concat -> Reshape`` can be
folded to a constant target like ``[BATCH, -1]`` that is resolved per run.
"""
BATCH = 2**31 - 1
BATCH_KEY = "__batch__"   # where a run stores its batch size in the value environment
ALLOC_KEY = "__alloc__"   # where a run stores its buffer allocator: alloc(shape) -> float32 array
THREADS_KEY = "__threads__"   # where a run stores the thread count the step being bound will run with


def conv_output_size(size, kernel, stride, pad_begin, pad_end, ceil=False):
    """Output length of a conv or pool window sliding along one axis (ONNX rule)."""
    if size is None:
        return None
    if size == BATCH:
        raise ValueError("batch dimension used as a spatial dimension")
    span = size + pad_begin + pad_end - kernel
    if span < 0:
        return 0
    if ceil:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_begin:   # last window starts in the padding
            out -= 1
        return out
    return span // stride + 1


def fmt(shape):
    """Human-readable shape: 'N' for the free batch, '?' for unknown dims."""
    dims = ["N" if d == BATCH else "?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ")"
