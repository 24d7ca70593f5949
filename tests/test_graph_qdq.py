"""graph.qdq and graph.lower_quantized: QDQ models from onnxruntime's quantize_static folded
into integer steps, run against onnxruntime, and the quantisation forms refused by name."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyface
from tinyface.errors import UnsupportedOpError
from tinyface.graph.onnx_file import read_model
from tinyface.graph.qdq import fold_qdq

from onnx_builders import float_block, ort_session, quantize_qdq, step_kinds

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def qdq_models(tmp_path_factory):
    """{name: path} of the float net and its QDQ forms: per channel, per tensor, int8
    activations, 7-bit weights (``reduce_range``)."""
    folder = tmp_path_factory.mktemp("qdq")
    fp32 = folder / "fp32.onnx"
    onnx.save(float_block(), fp32)
    forms = {"per_channel": dict(per_channel=True), "per_tensor": dict(per_channel=False),
             "s8_activations": dict(per_channel=True, activation_type=quantization.QuantType.QInt8),
             "reduce_range": dict(per_channel=True, reduce_range=True)}
    paths = {"fp32": fp32}
    for name, options in forms.items():
        paths[name] = folder / f"{name}.onnx"
        quantize_qdq(fp32, paths[name], **options)
    return paths


def _inputs(count=4, seed=5):
    return np.random.default_rng(seed).standard_normal((count, 3, 8, 8)).astype(np.float32)


def output_scale(path):
    """The scale of the DequantizeLinear that makes the graph's output."""
    model = onnx.load(path)
    last = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    return float(next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == last.input[1]))


def _ort(path, x, optimised):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimised:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


@pytest.mark.parametrize("form", ["per_channel", "per_tensor", "s8_activations", "reduce_range"])
def test_each_pattern_folds_into_one_integer_step(qdq_models, form):
    kinds = [kind for kind, _ in step_kinds(tinyface.load(qdq_models[form]))]
    assert kinds.count("qconv") == 1 and kinds.count("qdepthwise") == 2 and kinds.count("qgemm") == 1
    assert kinds.count("qpointwise") == 3 and "qadd" not in kinds          # the Add fused as a residual
    assert "conv" not in kinds and "gemm" not in kinds and "pointwise" not in kinds
    assert kinds[:2] == ["layout", "quantize"] and kinds[-1] == "dequantize"


@pytest.mark.parametrize("form", ["per_channel", "per_tensor", "s8_activations", "reduce_range"])
def test_matches_the_qdq_graph_run_in_float_within_a_step_or_two(qdq_models, form):
    """Against onnxruntime running the QDQ nodes as written (float convs between DQ and Q):
    integer accumulation and one float32 multiply instead of a float32 conv round a value
    at most one quantisation step differently per layer."""
    x = _inputs()
    ours = tinyface.load(qdq_models[form]).run(x)[0]
    ref = _ort(qdq_models[form], x, optimised=False)
    assert np.abs(ours - ref).max() <= 4 * output_scale(qdq_models[form])


def test_equals_onnxruntimes_integer_kernels_bit_for_bit_where_they_cannot_saturate(qdq_models):
    """With 7-bit weights (reduce_range) onnxruntime's u8 x s8 kernels cannot saturate their
    16-bit pair sums (2 * 255 * 64 < 2**15): then its QLinearConv, QGemm and QLinearAdd
    requantise exactly as tinyface does, and every output is equal."""
    x = _inputs(8)
    np.testing.assert_array_equal(tinyface.load(qdq_models["reduce_range"]).run(x)[0],
                                  _ort(qdq_models["reduce_range"], x, optimised=True))


def test_a_model_without_quantize_nodes_is_left_alone(qdq_models):
    graph = read_model(qdq_models["fp32"])
    assert fold_qdq(graph) is graph


# -- what the fold leaves, and what lowering refuses -------------------------------------------

def _qdq_conv(weight_zero=0, zero_type=TensorProto.UINT8, act_scale=(0.05,), w_scale_axis=0, between="Relu"):
    """x -> Q -> DQ -> Conv(DQ(w)) -> [between] -> Q -> DQ -> y, written by hand."""
    rng = np.random.default_rng(0)
    zero = helper.make_tensor("zx", zero_type, [], [3])
    inits = [helper.make_tensor("sx", TensorProto.FLOAT, [len(act_scale)] if len(act_scale) > 1 else [],
                                list(act_scale)), zero,
             numpy_helper.from_array(rng.integers(-100, 100, (4, 2, 3, 3)).astype(np.int8), "wq"),
             numpy_helper.from_array(np.full(4, 0.01, np.float32), "sw"),
             numpy_helper.from_array(np.full(4, weight_zero, np.int8), "zw"),
             numpy_helper.from_array(np.array(0.1, np.float32), "sy"),
             numpy_helper.from_array(np.array(5, np.uint8), "zy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=w_scale_axis),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1], name="conv")]
    last = "c"
    if between:
        nodes.append(helper.make_node(between, ["c"], ["r"], name="between"))
        last = "r"
    nodes += [helper.make_node("QuantizeLinear", [last, "sy", "zy"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def test_a_fused_relu_clamps_in_the_quantised_domain_and_matches_onnxruntime():
    model = _qdq_conv()
    engine = tinyface.load(model)
    assert [k for k, _ in step_kinds(engine)] == ["layout", "quantize", "qconv", "dequantize", "layout"]
    assert "clip[5,255]" in engine.steps[2].detail()
    x = _inputs(1)[:, :2, :5, :5] * 3
    np.testing.assert_array_equal(engine.run(x)[0], ort_session(model).run(None, {"x": x})[0])


def test_an_op_between_dq_and_q_that_no_pattern_covers_runs_in_float():
    model = _qdq_conv(between="LeakyRelu")
    engine = tinyface.load(model)
    kinds = [k for k, _ in step_kinds(engine)]
    assert kinds == ["layout", "quantize", "dequantize", "conv", "quantize", "dequantize", "layout"]
    x = _inputs(1)[:, :2, :5, :5]
    ours, ref = engine.run(x)[0], ort_session(model).run(None, {"x": x})[0]
    assert np.abs(ours - ref).max() <= 0.1 + 1e-6                  # one output step at most


@pytest.mark.parametrize("model, message", [
    (lambda: _qdq_conv(zero_type=TensorProto.INT16), "quantised to int16"),
    (lambda: _qdq_conv(act_scale=(0.05, 0.05)), "per-channel quantisation of a runtime tensor"),
    (lambda: _qdq_conv(act_scale=(-0.05,)), "must be positive and finite"),
])
def test_unsupported_quantisation_forms_are_refused_by_name(model, message):
    with pytest.raises(UnsupportedOpError, match=message) as err:
        tinyface.load(model())
    assert "QuantizeLinear" in str(err.value) or "Conv" in str(err.value)


def test_a_float_op_reading_bytes_is_refused():
    model = _qdq_conv(between=None)
    relu = helper.make_node("Relu", ["xq"], ["bad"], name="relu_on_bytes")
    model.graph.node.insert(1, relu)
    model.graph.output.append(helper.make_tensor_value_info("bad", TensorProto.FLOAT, None))
    with pytest.raises(UnsupportedOpError, match="relu_on_bytes.*without a DequantizeLinear"):
        tinyface.load(model)


def test_a_quantised_graph_output_is_refused():
    model = _qdq_conv()
    model.graph.node.pop()                               # the last DequantizeLinear
    model.graph.output[0].name = "yq"
    with pytest.raises(UnsupportedOpError, match="output 'yq' is quantised"):
        tinyface.load(model)


def test_nonzero_weight_zero_points_are_subtracted_exactly():
    model = _qdq_conv(weight_zero=7, between=None)
    x = _inputs(1)[:, :2, :5, :5] * 3
    ours, ref = tinyface.load(model).run(x)[0], ort_session(model).run(None, {"x": x})[0]
    assert np.abs(ours - ref).max() <= 0.1 + 1e-6


def test_inspect_notes_the_steps_that_run_in_float():
    from tinyface.graph.summary import format_summary, summarize
    info = summarize(_qdq_conv(between="LeakyRelu"))
    assert info["float_in_quantized"] == ["conv [conv]"]
    assert "run in float32 between DequantizeLinear and QuantizeLinear" in format_summary(info)
    assert summarize(_qdq_conv())["float_in_quantized"] == []
