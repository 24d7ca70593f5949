"""tinyface.testing: check_against_reference catches wrong kernels, passes right ones; the example runs.

The implementations checked here are independent of tinyface.reference:
tinyface's own Numba kernels (called as its steps call them) and the
example's NumPy depthwise conv.  A wrong one -- padding mirrored, a stride
ignored -- must fail, naming the case hypothesis shrank it to.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from tinyface.testing import Case, check_against_reference, conv_nodes, max_pool_nodes, nodes, reduction_length

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples/check_my_depthwise.py"


def tinyface_max_pool(x, *, kernel_shape, strides, pads, ceil_mode):
    """tinyface's max-pool kernel on an ONNX-layout input, as MaxPoolBinder calls it."""
    from tinyface.kernels.pool import max_pool
    from tinyface.graph.shapes import conv_output_size
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel_shape, strides, pads
    oh, ow = conv_output_size(h, kh, sh, pt, pb, ceil_mode), conv_output_size(w, kw, sw, pl, pr, ceil_mode)
    out = np.empty((n, oh, ow, c), np.float32)
    max_pool(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), kh, kw, sh, sw, pt, pl, out)
    return out.transpose(0, 3, 1, 2)


def test_a_right_kernel_passes():
    assert check_against_reference("MaxPool", tinyface_max_pool, max_pool_nodes(), max_examples=30) == 30


def test_a_kernel_that_ignores_the_stride_fails_and_the_case_is_named():
    def no_stride(x, *, strides, **attrs):
        return tinyface_max_pool(x, strides=[1, 1], **attrs)
    with pytest.raises(AssertionError, match=r"Case\(MaxPool"):
        check_against_reference("MaxPool", no_stride, max_pool_nodes(), max_examples=50)


def test_the_default_cases_are_the_ops_nodes():
    """Without ``cases``, the op's own strategy: here a GEMM in NumPy float32, every form tinyface runs."""
    def gemm32(a, b, c=None, *, alpha, beta, transA, transB):
        a, b = (a.T if transA else a), (b.T if transB else b)
        y = np.float32(alpha) * (a @ b)
        return y if c is None else y + np.float32(beta) * c
    assert check_against_reference("Gemm", gemm32, max_examples=30) == 30


def test_cases_of_another_op_are_refused():
    with pytest.raises(ValueError, match="cases of Conv"):
        check_against_reference("MaxPool", tinyface_max_pool, conv_nodes(), max_examples=5)


def test_integer_results_must_be_equal():
    def off_by_one(data, *, start=0, end=None):
        return np.array(np.shape(data)[start:end], np.int64) + 1
    with pytest.raises(AssertionError, match=r"Case\(Shape"):
        check_against_reference("Shape", off_by_one, max_examples=20)


def test_reduction_length():
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((6, 2, 3, 3), np.float32)
    assert reduction_length(Case("Conv", (x, w), {"group": 2})) == 18
    assert reduction_length(Case("Gemm", (np.zeros((7, 3)), np.zeros((7, 2))), {"transA": 1})) == 7
    assert reduction_length(Case("Relu", (x,))) == 1


def test_depthwise_strategy_draws_depthwise_nodes():
    @settings(max_examples=20, deadline=None)
    @given(case=conv_nodes(depthwise=True))
    def check(case):
        x, w = case.inputs[:2]
        assert case.attrs["group"] == x.shape[1] == w.shape[0] and w.shape[1] == 1
    check()


def test_unknown_op_is_a_named_error():
    from tinyface.errors import UnsupportedOpError
    with pytest.raises(UnsupportedOpError, match="no strategy for op LSTM"):
        nodes("LSTM")


@pytest.mark.parametrize("flag, code, fragment", [
    ([], 0, "agrees with tinyface.reference.conv on 200 depthwise Conv nodes"),
    (["--break-padding"], 1, "Case(op_type='Conv'"),
])
def test_the_example_runs(flag, code, fragment):
    res = subprocess.run([sys.executable, str(EXAMPLE), *flag], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == code, res.stderr[-2000:]
    assert fragment in res.stdout + res.stderr


def test_without_hypothesis_the_import_error_says_what_to_install():
    code = "import sys; sys.modules['hypothesis'] = None\nimport tinyface.testing"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1
    assert "tinyface.testing needs hypothesis" in res.stderr and "pip install hypothesis" in res.stderr


def test_a_case_describes_itself_briefly():
    case = Case("Conv", (np.zeros((1, 3, 5, 5), np.float32), np.zeros((2, 3, 1, 1), np.float32), None),
                {"group": 1})
    assert repr(case) == ("Case(Conv, inputs [float32[1, 3, 5, 5], float32[2, 3, 1, 1], None], "
                          "attrs {'group': 1}, opset 13)")
