"""Shape helpers shared by lowering, the op records and the runtime.

Shapes are tuples of ints.  While a graph is lowered (before any input is
seen) a dimension may be ``None`` (unknown, e.g. a free image height) or the
sentinel ``BATCH``, the free batch size: it passes through every op untouched,
so shape arithmetic such as ``Shape -> Gather -> Concat -> Reshape`` can be
folded to a constant target like ``[BATCH, -1]`` that is resolved per run.
"""
import math

from tinyface.limits import check_limit

BATCH = 2**31 - 1


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


def elements(shape, batch=1):
    """Elements of ``shape`` with the free batch as ``batch`` and unknown dims as 1.

    A dim that is a multiple of ``BATCH`` holds the batch flattened with other
    dims (``Flatten`` at axis 0): k * BATCH counts as k * batch.
    """
    return math.prod(1 if d is None else d // BATCH * batch if d >= BATCH and d % BATCH == 0 else d
                     for d in shape)


def check_shapes(shapes, what, error, batch=1):
    """Raise ``error`` when one of ``shapes`` holds more than ``MAX_TENSOR_ELEMENTS``."""
    largest = max(shapes, key=lambda shape: elements(shape, batch))
    check_limit("MAX_TENSOR_ELEMENTS", elements(largest, batch), error, f"{what} {fmt(largest)}")
