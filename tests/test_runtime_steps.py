"""Steps as the kernels see them: one compiled version of each kernel serves every
model the face pipeline runs (the GEMM takes about 10 s to compile, and Numba
compiles again for any difference in its arguments' types or array flags)."""
import numba
import numpy as np
import pytest

import tinyface
from tinyface.runtime.steps import kernel_array

WEIGHTS = tinyface.paths.weights_dir()
MODELS = ["mobilefacenet-relu6-opset18.onnx", "mtcnn/pnet.onnx", "mtcnn/rnet.onnx", "mtcnn/onet.onnx"]
INPUTS = {"mtcnn/pnet.onnx": (3, 40, 52), "mtcnn/rnet.onnx": (3, 24, 24), "mtcnn/onet.onnx": (3, 48, 48)}


def bound_signatures(path):
    """{kernel name: {argument types}} over every call a schedule of ``path`` binds."""
    engine = tinyface.load(path)
    shape = INPUTS.get(str(path.relative_to(WEIGHTS)), (3, 112, 112))
    x = np.zeros((2,) + shape, np.float32)
    schedule = engine.plan.schedule({engine.input_names[0]: x}, 2)
    found = {}
    for _, calls in schedule.segments:
        for function, args in calls:
            found.setdefault(function.__name__, set()).add(tuple(numba.typeof(a) for a in args))
    return found


def test_each_kernel_is_called_with_one_signature_across_the_pipelines_models():
    every = {}
    for name in MODELS:
        for kernel, types in bound_signatures(WEIGHTS / name).items():
            every.setdefault(kernel, set()).update(types)
    for kernel in ("gemm", "depthwise", "conv2d", "inverted_residual"):
        assert len(every[kernel]) == 1, (kernel, every[kernel])


@pytest.mark.parametrize("make", [
    lambda: np.frombuffer(np.arange(6, dtype=np.float32).tobytes(), np.float32),   # read-only
    lambda: np.arange(12, dtype=np.float64)[::2],                                  # strided, float64
    lambda: np.arange(6, dtype=np.float32),                                        # already fine
])
def test_kernel_array_is_contiguous_writeable_float32(make):
    a = make()
    b = kernel_array(a)
    assert b.dtype == np.float32 and b.flags.c_contiguous and b.flags.writeable
    np.testing.assert_array_equal(b, np.asarray(a, np.float32))
