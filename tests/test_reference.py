"""tinyface.reference against ONNX's own ReferenceEvaluator, op by op, and on whole models.

Every op of ``reference.OPS`` is run on hypothesis-drawn single-node models
(``tinyface.testing.nodes``: what tinyface runs, plus, for Conv and MaxPool,
dilations, other group counts and every auto_pad, and for Clip, Softmax,
Squeeze, Unsqueeze and Dropout the older opsets' forms) by the reference and
by ONNX's evaluator -- or, where the evaluator was found to be wrong, by
onnxruntime (``second_opinion`` lists where and why) -- and the two must
agree: exactly for ops that do no arithmetic (and with the same dtype), else
within rtol 1e-5, atol 1e-5 * sqrt(K) (K products per output value; the
others compute in float32, the reference in float64).  Then whole models --
the bundled one, every exported architecture, the MTCNN nets and a model of
other ops -- run node by node through ``run_graph`` must match onnxruntime.
Hand-worked cases pin down rules that two implementations could get wrong
together (integer division, Softmax before opset 13, ceil_mode).
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kernel_testing import examples
from onnx_builders import ort_run, ort_session, supported_models
from tinyface import reference
from tinyface.errors import InputError, ModelError, UnsupportedOpError
from tinyface.testing import NODES, assert_matches, nodes

EXTRAS = {"Conv", "MaxPool"}                                       # ops with onnx_extras=True
LEGACY = {"Clip", "Softmax", "Squeeze", "Unsqueeze", "Dropout"}    # ops with legacy=True


def single_node_model(case, out_dtype=np.float32):
    """A model of the one node ``case`` describes: every input a graph input, output 'y'."""
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(case.inputs)]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
              for n, x in zip(names, case.inputs) if x is not None]
    attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v for k, v in case.attrs.items()}
    node = helper.make_node(case.op_type, names, ["y"], **attrs)
    graph = helper.make_graph([node], "one_node", inputs, [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    return model


def second_opinion(case):
    """What ``case`` is checked against: ONNX's evaluator, except where it was found to
    be wrong, which onnxruntime checks instead: Softmax, Squeeze and Unsqueeze before
    opset 13 (it applies opset 13's Softmax, and fails on negative or unsorted axes
    attributes) and MaxPool with padding (it shifts asymmetric pads and computes its
    own SAME padding) and Shape with a start or end below -rank (it does not clamp them
    to 0).  onnxruntime in turn lets ceil_mode add a window to VALID, which ONNX's output
    size formula does not, so MaxPool VALID stays with the evaluator."""
    if case.opset < 13 and case.op_type in ("Softmax", "Squeeze", "Unsqueeze"):
        return "onnxruntime"
    if case.op_type == "Shape" and min(case.attrs.get("start", 0), case.attrs.get("end") or 0) < -case.inputs[0].ndim:
        return "onnxruntime"
    if case.op_type == "MaxPool" and case.attrs.get("auto_pad", "NOTSET") != "VALID":
        return "onnxruntime"
    return "evaluator"


def evaluate(case, out_dtype):
    """``case`` run by its second opinion, with output type ``out_dtype``."""
    feed = {f"x{i}": x for i, x in enumerate(case.inputs) if x is not None}
    if second_opinion(case) == "onnxruntime":
        pytest.importorskip("onnxruntime")
        return ort_session(single_node_model(case, out_dtype)).run(None, feed)[0]
    if case.op_type == "BatchNormalization":
        # the evaluator's BatchNormalization-9 (opsets 9-13) blends in the batch's own
        # statistics whenever momentum is set, and the schema's default sets it; the spec's
        # one-output form is inference.  From opset 14, training_mode=0 says so.
        case = dataclasses.replace(case, opset=15)
    return ReferenceEvaluator(single_node_model(case, out_dtype)).run(None, feed)[0]


def strategy(op):
    if op in EXTRAS:
        return st.one_of(nodes(op), nodes(op, onnx_extras=True))
    return nodes(op, legacy=True) if op in LEGACY else nodes(op)


def test_every_op_has_a_reference_and_a_strategy():
    """Every float op; the 8-bit ones' exact arithmetic is ``reference.quantized``, checked
    against the kernels (test_kernels_quantized.py) and onnxruntime (test_graph_qdq.py)."""
    from tinyface.graph.lower import HANDLERS
    from tinyface.graph.lower_quantized import HANDLERS as QUANTIZED
    assert set(HANDLERS) - set(QUANTIZED) | {"Constant"} == set(reference.OPS) == set(NODES)


@pytest.mark.parametrize("op", sorted(reference.OPS))
def test_reference_matches_onnx_reference_evaluator(op):
    @settings(max_examples=examples(20), deadline=None)
    @given(case=strategy(op))
    def check(case):
        ours = reference.run_node(case.op_type, case.inputs, case.attrs, case.opset)
        theirs = np.asarray(evaluate(case, np.float32 if ours.dtype == np.float64 else ours.dtype))
        want_dtype = np.float64 if op in ARITHMETIC and theirs.dtype.kind == "f" else theirs.dtype
        assert ours.dtype == want_dtype, f"{case}: dtype {ours.dtype}, the evaluator's {theirs.dtype}"
        assert_matches(ours, theirs.astype(ours.dtype), case, rtol=1e-5, atol=1e-5)
    check()


ARITHMETIC = {"Conv", "MaxPool", "GlobalAveragePool", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "PRelu",
              "Add", "Sub", "Mul", "Div", "Gemm", "MatMul", "Softmax"}


def test_arithmetic_is_float64_and_data_movement_keeps_the_dtype():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert reference.relu(x).dtype == np.float64
    assert reference.gemm(x, x.T).dtype == np.float64
    assert reference.transpose(x).dtype == np.float32
    assert reference.add(np.int64(2), np.array([3], np.int64)).dtype == np.int64


def test_integer_div_rounds_toward_zero():
    a, b = np.array([7, -7, 7, -7], np.int64), np.array([2, 2, -2, -2], np.int64)
    np.testing.assert_array_equal(reference.div(a, b), [3, -3, -3, 3])


def test_softmax_before_opset_13_flattens_the_tail():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    old = reference.run_node("Softmax", [x], {"axis": 1}, opset=11)
    np.testing.assert_allclose(old.reshape(2, 12).sum(axis=1), 1.0)
    new = reference.run_node("Softmax", [x], {"axis": 1}, opset=13)
    np.testing.assert_allclose(new.sum(axis=1), 1.0)
    assert not np.allclose(old, new)


def test_ceil_mode_drops_a_window_that_starts_in_the_padding():
    """5 pixels, window 2, stride 2, pads 1 and 1: ceil gives 4 windows, the last of which
    would start in the end padding, so 3 (PyTorch's and onnxruntime's rule)."""
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    y = reference.max_pool(x, kernel_shape=[1, 2], strides=[1, 2], pads=[0, 1, 0, 1], ceil_mode=1)
    np.testing.assert_array_equal(y, [[[[0, 2, 4]]]])
    assert reference.output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: reference.conv(np.zeros((1, 2, 3)), np.zeros((1, 2, 1))), UnsupportedOpError, "2-D windows"),
    (lambda: reference.conv(np.zeros((1, 3, 4, 4)), np.zeros((2, 2, 1, 1))), InputError, "group=1"),
    (lambda: reference.conv(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))), InputError, "smaller than"),
    (lambda: reference.conv(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 1, 1)), strides=[0, 1]), UnsupportedOpError,
     "strides"),
    (lambda: reference.max_pool(np.zeros((1, 1, 4, 4)), kernel_shape=[2, 2], auto_pad="SAME"), UnsupportedOpError,
     "auto_pad"),
    (lambda: reference.prelu(np.zeros((2, 3)), np.zeros(4)), InputError, "broadcast"),
    (lambda: reference.add(np.zeros(2), np.zeros(3)), InputError, "do not broadcast"),
    (lambda: reference.div(np.ones(2, np.int64), np.zeros(2, np.int64)), InputError, "by zero"),
    (lambda: reference.gemm(np.zeros((2, 3)), np.zeros((2, 3))), InputError, "inner sizes"),
    (lambda: reference.batch_normalization(*[np.zeros(2)] * 5, training_mode=1), UnsupportedOpError, "training"),
    (lambda: reference.gather(np.zeros(3), np.array([3])), InputError, "out of range"),
    (lambda: reference.run_node("Conv", [np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 1, 1))], {"padding": 1}),
     UnsupportedOpError, "padding"),
    (lambda: reference.run_node("LSTM", [], {}), UnsupportedOpError, "no reference for op LSTM"),
])
def test_bad_arguments_are_named_errors(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# -- whole models, node by node ------------------------------------------------------

@pytest.mark.parametrize("name, model, size", supported_models(), ids=lambda v: v if isinstance(v, str) else "")
def test_run_graph_matches_onnxruntime(name, model, size):
    pytest.importorskip("onnxruntime")
    from tinyface.tools.inputs import random_feed
    from tinyface.graph.onnx_file import read_model
    feed = random_feed(read_model(model).inputs, 1, size, seed=0)
    ours = reference.run_graph(model, feed)
    theirs = ort_run(model, feed)
    for out, want in zip(model.graph.output, theirs):
        np.testing.assert_allclose(ours[out.name], want, rtol=1e-4, atol=1e-4 * np.abs(want).max(),
                                   err_msg=f"{name}: output {out.name}")


def test_run_graph_names_a_value_no_node_computes():
    node = helper.make_node("Relu", ["nowhere"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ModelError, match="nowhere"):
        reference.run_graph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), {"x": np.zeros(1, np.float32)})
