"""Lowering: every supported op on tiny graphs, checked against onnxruntime at
batch 1 and 3 (max abs difference <= 1e-4 unless said otherwise), and the
unsupported ones refused at load with a message naming each op and node."""
import json

import numpy as np
import onnx
import pytest

import tinyface
from tinyface.cli.main import main
from onnx_builders import (GraphBuilder, add_bn, add_conv, check_against_ort, conv_weight, make_model,
                           ort_run, ort_session, single_thread_fixture, step_kinds)

single_thread = single_thread_fixture()


def rng(seed=0):
    return np.random.default_rng(seed)


# -- Conv + BatchNormalization ---------------------------------------------------------

CONV_CASES = {
    # name: (kernel, stride, pads or None, group (0 = depthwise), bias, extra attributes, H x W)
    "3x3_s1_p1": (3, 1, 1, 1, True, {}, (7, 7)),
    "3x3_s2_p1": (3, 2, 1, 1, True, {}, (8, 7)),
    "3x3_s2_p1_nobias": (3, 2, 1, 1, False, {}, (7, 7)),
    "1x1": (1, 1, 0, 1, True, {}, (5, 6)),
    "1x1_s2": (1, 2, 0, 1, False, {}, (7, 7)),
    "1x1_padded": (1, 1, 1, 1, True, {}, (4, 4)),
    "depthwise_3x3_s1": (3, 1, 1, 0, True, {}, (7, 7)),
    "depthwise_3x3_s2": (3, 2, 1, 0, False, {}, (8, 8)),
    "gdconv_7x7": (7, 1, 0, 0, False, {}, (7, 7)),
    "asymmetric_pads": (3, 1, (0, 1, 2, 1), 1, True, {}, (6, 7)),
    "asymmetric_pads_s2_depthwise": (3, 2, (1, 0, 0, 2), 0, True, {}, (7, 8)),
    "same_upper_s2": (3, 2, None, 1, True, {"auto_pad": "SAME_UPPER"}, (7, 8)),
    "same_upper_even_kernel": (2, 2, None, 1, True, {"auto_pad": "SAME_UPPER"}, (7, 7)),
    "same_upper_depthwise": (3, 2, None, 0, False, {"auto_pad": "SAME_UPPER"}, (7, 7)),
    "valid": (3, 1, None, 1, True, {"auto_pad": "VALID"}, (6, 6)),
    "5x5_s2_p2": (5, 2, 2, 1, True, {}, (9, 9)),
}


@pytest.mark.parametrize("opset", [9, 13, 18])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_batchnorm(case, opset):
    k, stride, pad, group, bias, attrs, (h, w) = CONV_CASES[case]
    r = rng(hash(case) % 1000)
    c = 6
    group = c if group == 0 else group
    g = GraphBuilder(opset)
    y = add_conv(g, "x", r, c, c, k=k, stride=stride, pad=pad, group=group, bias=bias, **attrs)
    y = add_bn(g, y, r, c, epsilon=1e-3)
    engine = check_against_ort(g.build({"x": ["N", c, h, w]}, [y]))
    kinds = [kind for kind, _ in step_kinds(engine)]
    assert "scale_shift" not in kinds                   # the BN was folded into the conv
    if group == c:
        assert "depthwise" in kinds


@pytest.mark.parametrize("opset", [9, 13])
def test_conv_without_bn_and_dense_stem(opset):
    r = rng(1)
    g = GraphBuilder(opset)
    y = add_conv(g, "x", r, 3, 16, k=3, stride=2)
    y = add_conv(g, y, r, 16, 8, k=1, pad=0)
    check_against_ort(g.build({"x": ["N", 3, 16, 16]}, [y]))


@pytest.mark.parametrize("epsilon", [None, 1e-3, 0.1])
def test_batchnorm_on_graph_input(epsilon):
    g = GraphBuilder(13)
    y = add_bn(g, "x", rng(2), 3, epsilon=epsilon)
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 4]}, [y]))
    assert [k for k, _ in step_kinds(engine)].count("scale_shift") == 1


def test_batchnorm_on_2d_graph_input():
    g = GraphBuilder(9)
    y = add_bn(g, "x", rng(3), 6, epsilon=1e-2)
    check_against_ort(g.build({"x": ["N", 6]}, [y]))


@pytest.mark.parametrize("opset", [9, 13])
def test_batchnorm_1d_after_gemm_folded(opset):
    r = rng(4)
    g = GraphBuilder(opset)
    y = g.add("Gemm", ["x", g.const(r.normal(size=(6, 5))), g.const(r.normal(size=5))])
    y = add_bn(g, y, r, 5, epsilon=2e-5)
    engine = check_against_ort(g.build({"x": ["N", 6]}, [y]))
    assert [k for k, _ in step_kinds(engine)] == ["gemm"]


def test_batchnorm_1d_after_gemm_not_folded_when_gemm_is_an_output():
    r = rng(5)
    g = GraphBuilder(13)
    fc = g.add("Gemm", ["x", g.const(r.normal(size=(6, 5))), g.const(r.normal(size=5))])
    y = add_bn(g, fc, r, 5, epsilon=1e-3)
    engine = check_against_ort(g.build({"x": ["N", 6]}, [y, fc]))
    assert [k for k, _ in step_kinds(engine)] == ["gemm", "scale_shift"]


def test_batchnorm_of_a_branch_not_folded():
    """A conv read by two nodes keeps its own output; the BN runs on its own."""
    r = rng(6)
    g = GraphBuilder(13)
    c = add_conv(g, "x", r, 3, 4)
    a = g.add("Relu", [c])
    b = add_bn(g, c, r, 4, epsilon=1e-3)
    check_against_ort(g.build({"x": ["N", 3, 5, 6]}, [a, b, c]))


# -- activations ---------------------------------------------------------------------

@pytest.mark.parametrize("opset", [9, 10])
def test_clip_attributes(opset):
    g = GraphBuilder(opset)
    y = g.add("Clip", ["x"], min=0.0, max=6.0)
    y = g.add("Clip", [y], min=-0.2)          # max omitted
    z = g.add("Clip", ["x"], max=0.3)         # min omitted
    z = g.add("Clip", [z])                    # neither
    check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y, z]), scale=4.0)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_clip_inputs(opset):
    r = rng(7)
    g = GraphBuilder(opset)
    c = add_conv(g, "x", r, 3, 4)
    y = g.add("Clip", [c, g.const(0.0), g.const(6.0)])
    a = g.add("Clip", ["x", "", g.const(0.3)])          # min omitted
    b = g.add("Clip", ["x", g.const(-0.2)])             # max omitted
    n = g.add("Clip", ["x"])                            # both omitted
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y, a, b, n]), scale=4.0)
    assert any(kind == "conv" and "[0,6]" in d for kind, d in step_kinds(engine))


def test_relu_leaky_relu_fused_into_conv():
    r = rng(8)
    g = GraphBuilder(13)
    y = add_conv(g, "x", r, 3, 4)
    y = g.add("Relu", [y])
    z = add_conv(g, y, r, 4, 4)
    z = g.add("LeakyRelu", [z], alpha=0.2)
    u = add_conv(g, z, r, 4, 4)
    u = g.add("LeakyRelu", [u])                         # default alpha 0.01
    engine = check_against_ort(g.build({"x": ["N", 3, 6, 6]}, [u]))
    kinds = [k for k, _ in step_kinds(engine)]
    assert kinds.count("conv") == 3 and "scale_shift" not in kinds


@pytest.mark.parametrize("opset", [9, 13])
def test_relu_and_leaky_relu_standalone(opset):
    g = GraphBuilder(opset)
    a = g.add("Relu", ["x"])
    b = g.add("LeakyRelu", ["x"], alpha=0.3)
    check_against_ort(g.build({"x": ["N", 3, 4, 5]}, [a, b]))


@pytest.mark.parametrize("opset", [9, 13])
def test_prelu_per_channel_scalar_and_2d(opset):
    r = rng(9)
    g = GraphBuilder(opset)
    y = add_conv(g, "x", r, 3, 4)
    y = g.add("PRelu", [y, g.const(r.uniform(0, 0.5, (4, 1, 1)))])     # per channel, fused
    y = g.add("PRelu", [y, g.const([0.25])])                            # scalar slope
    y = g.add("GlobalAveragePool", [y])
    y = g.add("Flatten", [y], axis=1)
    y = g.add("Gemm", [y, g.const(r.normal(size=(4, 5))), g.const(r.normal(size=5))])
    y = g.add("PRelu", [y, g.const(r.uniform(0, 0.5, 5))])              # 2-D per feature
    engine = check_against_ort(g.build({"x": ["N", 3, 6, 6]}, [y]))
    details = dict(step_kinds(engine))
    assert "prelu" in details["conv"] and "prelu" in details["gemm"]


def test_prelu_on_graph_input():
    g = GraphBuilder(13)
    y = g.add("PRelu", ["x", g.const(rng(10).uniform(0, 0.5, (3, 1, 1)))])
    z = g.add("PRelu", ["x", g.const(0.2)])
    check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y, z]))


def test_prelu_with_slope_along_width_is_refused_not_wrong():
    """A (C,) slope on an N x C x H x W tensor broadcasts along W in ONNX, not C."""
    g = GraphBuilder(13)
    y = g.add("PRelu", ["x", g.const([0.1, 0.2, 0.3])], name="prelu_w")
    with pytest.raises(tinyface.UnsupportedOpError, match="prelu_w"):
        tinyface.load(g.build({"x": ["N", 3, 4, 3]}, [y]))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_prelu_after_scalar_constant_op(op):
    g = GraphBuilder(13)
    y = g.add(op, ["x", g.const(0.7)])
    y = g.add("PRelu", [y, g.const(rng(11).uniform(0, 0.5, (3, 1, 1)))])
    check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y]))


# -- residual Add ------------------------------------------------------------------------

def residual_block_model(opset=13, seed=12):
    r = rng(seed)
    g = GraphBuilder(opset)
    a = add_conv(g, "x", r, 4, 4)
    a = add_bn(g, a, r, 4)
    a = g.add("Relu", [a])
    b = add_conv(g, a, r, 4, 4, k=1, pad=0)
    b = add_bn(g, b, r, 4)
    y = g.add("Add", [b, a], name="the_residual")
    y = g.add("Clip", [y, g.const(0.0), g.const(6.0)])
    c = add_conv(g, y, r, 4, 4, group=4)
    y = g.add("Add", [y, c])                             # the conv output second
    return g.build({"x": ["N", 4, 6, 6]}, [y])


def test_residual_add_is_fused_and_correct():
    engine = check_against_ort(residual_block_model())
    details = [d for k, d in step_kinds(engine)]
    assert sum("+residual" in d for d in details) == 2
    assert not any(k == "add" for k, _ in step_kinds(engine))
    fused = [d for d in details if "+residual" in d and "1x1" in d]
    assert fused and "clip[0,6]" in fused[0]           # the clip after the add is fused too


def test_residual_shown_by_inspect(tmp_path, capsys):
    path = tmp_path / "res.onnx"
    onnx.save(residual_block_model(), path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("+residual") == 2 and "total:" in out


def test_residual_from_graph_input():
    g = GraphBuilder(13)
    b = add_conv(g, "x", rng(13), 4, 4)
    y = g.add("Add", ["x", b])
    engine = check_against_ort(g.build({"x": ["N", 4, 5, 5]}, [y]))
    assert any("+residual" in d for _, d in step_kinds(engine))


def test_add_with_operand_produced_later_is_not_fused():
    r = rng(14)
    g = GraphBuilder(13)
    a = add_conv(g, "x", r, 4, 4)
    later = g.add("Mul", ["x", g.const(0.5)])            # produced after the conv
    y = g.add("Add", [a, later])
    engine = check_against_ort(g.build({"x": ["N", 4, 5, 5]}, [y]))
    assert "add" in [k for k, _ in step_kinds(engine)]


def test_add_of_a_value_with_itself():
    g = GraphBuilder(13)
    a = add_conv(g, "x", rng(15), 4, 4)
    y = g.add("Add", [a, a])
    check_against_ort(g.build({"x": ["N", 4, 5, 5]}, [y]))


def test_add_after_gemm_residual():
    g = GraphBuilder(13)
    y = g.add("Gemm", ["x", g.const(rng(16).normal(size=(6, 6))), g.const(np.zeros(6))])
    y = g.add("Add", [y, "x"])
    y = g.add("Relu", [y])
    check_against_ort(g.build({"x": ["N", 6]}, [y]))


# -- arithmetic with constants ---------------------------------------------------------

def test_input_normalisation_sub_div():
    """(x - mean) / std per channel at the start, then a conv: as normalising exports have."""
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    g = GraphBuilder(13)
    y = g.add("Sub", ["x", g.const(mean)])
    y = g.add("Div", [y, g.const(std)])
    y = add_conv(g, y, rng(17), 3, 4, stride=2)
    check_against_ort(g.build({"x": ["N", 3, 8, 8]}, [y]))


@pytest.mark.parametrize("opset", [9, 13])
def test_arithmetic_with_constants_every_form(opset):
    g = GraphBuilder(opset)
    y = g.add("Mul", ["x", g.const(np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1))])
    y = g.add("Add", [g.const(np.array([0.5]).reshape(1, 1, 1, 1)), y])     # constant first
    y = g.add("Sub", [g.const(0.1), y])                                    # constant - x
    y = g.add("Sub", [y, g.const([[[0.2]], [[0.3]], [[0.4]]])])
    y = g.add("Div", [y, g.const(4.0)])
    y = g.add("Mul", [g.const(-1.5), y])
    check_against_ort(g.build({"x": ["N", 3, 5, 4]}, [y]))


def test_arithmetic_with_constants_on_2d():
    r = rng(18)
    g = GraphBuilder(13)
    y = g.add("Gemm", ["x", g.const(r.normal(size=(6, 4))), g.const(np.zeros(4))])
    y = g.add("Mul", [y, g.const(r.normal(size=(1, 4)))])
    y = g.add("Add", [y, g.const(r.normal(size=4))])
    y = g.add("Div", [y, g.const(2.0)])
    z = g.add("Sub", [g.const(r.normal(size=6)), "x"])
    check_against_ort(g.build({"x": ["N", 6]}, [y, z]))


def test_constant_that_is_not_per_channel_is_refused():
    g = GraphBuilder(13)
    y = g.add("Add", ["x", g.const(np.ones((1, 1, 4, 4)))], name="add_hw")
    with pytest.raises(tinyface.UnsupportedOpError, match="add_hw"):
        tinyface.load(g.build({"x": ["N", 3, 4, 4]}, [y]))


# -- Gemm / MatMul ---------------------------------------------------------------------

@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", ["none", "scalar", "vector", "row"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 2.0)])
def test_gemm(trans_b, c_shape, alpha, beta):
    r = rng(19)
    g = GraphBuilder(13)
    b = r.normal(size=(5, 6) if trans_b else (6, 5))
    ins = ["x", g.const(b)]
    if c_shape != "none":
        ins.append(g.const(r.normal(size={"scalar": (), "vector": (5,), "row": (1, 5)}[c_shape])))
    y = g.add("Gemm", ins, transB=trans_b, alpha=alpha, beta=beta)
    check_against_ort(g.build({"x": ["N", 6]}, [y]))


def test_gemm_opset9_with_scalar_c():
    g = GraphBuilder(9)
    y = g.add("Gemm", ["x", g.const(rng(20).normal(size=(4, 6))), g.const(0.5)], transB=1, beta=0.5)
    check_against_ort(g.build({"x": ["N", 6]}, [y]))


@pytest.mark.parametrize("shape", [["N", 6], ["N", 3, 6]])
def test_matmul(shape):
    r = rng(21)
    g = GraphBuilder(13)
    y = g.add("MatMul", ["x", g.const(r.normal(size=(6, 5)))])
    y = g.add("Add", [y, g.const(r.normal(size=5) if len(shape) == 2 else 0.25)])
    check_against_ort(g.build({"x": shape}, [y]))


def test_gemm_trans_a_refused():
    g = GraphBuilder(13)
    y = g.add("Gemm", ["x", g.const(np.ones((6, 5)))], transA=1, name="gemm_ta")
    with pytest.raises(tinyface.UnsupportedOpError, match="gemm_ta"):
        tinyface.load(g.build({"x": [6, "N"]}, [y]))


# -- shapes: Flatten, the PyTorch flatten idiom, Reshape, Squeeze ---------------------------

@pytest.mark.parametrize("axis", [1, 0, 2, -1])
def test_flatten(axis):
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng(22), 3, 4)
    y = g.add("Flatten", [y], axis=axis)
    check_against_ort(g.build({"x": ["N", 3, 5, 6]}, [y]))


def test_flatten_default_axis_on_input_then_gemm():
    g = GraphBuilder(11)
    y = g.add("Flatten", ["x"])
    y = g.add("Gemm", [y, g.const(rng(23).normal(size=(4, 60))), g.const(np.zeros(4))], transB=1)
    check_against_ort(g.build({"x": ["N", 3, 4, 5]}, [y]))


@pytest.mark.parametrize("opset", [9, 11, 12, 13, 18])
def test_pytorch_flatten_idiom(opset):
    """x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape, folded away."""
    r = rng(24)
    g = GraphBuilder(opset)
    c = add_conv(g, "x", r, 3, 4, stride=2)
    c = g.add("GlobalAveragePool", [c]) if opset == 18 else c
    shape = g.add("Shape", [c])
    n = g.add("Gather", [shape, g.const(0, dtype=np.int64)], axis=0)
    if opset < 13:
        n = g.add("Unsqueeze", [n], axes=[0])
    else:
        n = g.add("Unsqueeze", [n, g.const([0], dtype=np.int64)])
    target = g.add("Concat", [n, g.const([-1], dtype=np.int64)], axis=0)
    y = g.add("Reshape", [c, target])
    features = 4 if opset == 18 else 4 * 3 * 3
    y = g.add("Gemm", [y, g.const(r.normal(size=(7, features))), g.const(np.zeros(7))], transB=1)
    engine = check_against_ort(g.build({"x": ["N", 3, 6, 6]}, [y]))
    kinds = [k for k, _ in step_kinds(engine)]
    assert not {"shape", "gather", "concat", "unsqueeze"} & set(kinds)


def test_reshape_with_literal_batch_1_runs_at_batch_4():
    r = rng(25)
    g = GraphBuilder(13)
    c = add_conv(g, "x", r, 3, 4)
    y = g.add("Reshape", [c, g.const([1, -1], dtype=np.int64)])
    y = g.add("Gemm", [y, g.const(r.normal(size=(80, 5))), g.const(np.zeros(5))])
    model = g.build({"x": [1, 3, 4, 5]}, [y])             # exported with a fixed batch of 1
    engine = tinyface.load(model)
    x = r.standard_normal((4, 3, 4, 5)).astype(np.float32)
    ours = engine.run(x)[0]
    sess = ort_session(model)
    ref = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(4)])
    assert ours.shape == (4, 5)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    np.testing.assert_allclose(engine.run(x[:1])[0], ref[:1], atol=1e-4)


def test_reshape_to_3d_and_back():
    r = rng(26)
    g = GraphBuilder(13)
    y = add_conv(g, "x", r, 3, 4)
    y = g.add("Reshape", [y, g.const([-1, 4, 30], dtype=np.int64)])
    y = g.add("Reshape", [y, g.const([0, 0, 5, 6], dtype=np.int64)])
    y = add_conv(g, y, r, 4, 2)
    check_against_ort(g.build({"x": ["N", 3, 5, 6]}, [y]))


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_after_global_average_pool(opset):
    g = GraphBuilder(opset)
    y = g.add("GlobalAveragePool", ["x"])
    if opset < 13:
        y = g.add("Squeeze", [y], axes=[2, 3])
    else:
        y = g.add("Squeeze", [y, g.const([2, 3], dtype=np.int64)])
    y = g.add("LeakyRelu", [y], alpha=0.1)
    check_against_ort(g.build({"x": ["N", 3, 7, 7]}, [y]))


def test_reshape_of_a_constant_with_zero_in_target():
    r = rng(27)
    g = GraphBuilder(13)
    w = g.add("Reshape", [g.const(r.normal(size=(6, 1, 5))), g.const([0, -1], dtype=np.int64)])   # -> 6 x 5
    y = g.add("MatMul", ["x", w])
    check_against_ort(g.build({"x": ["N", 6]}, [y]))


# -- removed ops -----------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [9, 12, 13])
def test_identity_and_dropout_are_removed(opset):
    g = GraphBuilder(opset)
    y = add_conv(g, "x", rng(28), 3, 4)
    y = g.add("Identity", [y])
    y = g.add("Dropout", [y, g.const(0.3)] if opset >= 12 else [y], **({} if opset >= 12 else {"ratio": 0.3}))
    y = g.add("Relu", [y])
    y = g.add("Flatten", [y])
    y = g.add("Dropout", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y]))
    assert [k for k, _ in step_kinds(engine)] == ["layout", "conv", "layout", "reshape"]


# -- pooling, softmax, transpose -------------------------------------------------------------

@pytest.mark.parametrize("h,k,s,pads,ceil", [
    (7, 3, 2, 0, 0), (7, 3, 2, 0, 1), (6, 3, 2, 0, 1), (8, 3, 2, 1, 1), (8, 2, 2, 0, 1),
    (7, 2, 3, 0, 1), (8, 3, 3, 1, 0), (9, 3, 2, (1, 0, 0, 1), 0), (5, 2, 1, 0, 0),
])
def test_maxpool(h, k, s, pads, ceil):
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng(29), 3, 4)
    pads = [pads] * 4 if isinstance(pads, int) else list(pads)
    y = g.add("MaxPool", [y], kernel_shape=[k, k], strides=[s, s], pads=pads, ceil_mode=ceil)
    check_against_ort(g.build({"x": ["N", 3, h, h]}, [y]))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "VALID"])
def test_maxpool_auto_pad_on_graph_input(auto_pad):
    g = GraphBuilder(11)
    y = g.add("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad=auto_pad)
    check_against_ort(g.build({"x": ["N", 3, 7, 8]}, [y]))


def test_global_average_pool():
    g = GraphBuilder(13)
    a = g.add("GlobalAveragePool", ["x"])
    c = add_conv(g, "x", rng(30), 3, 5)
    b = g.add("GlobalAveragePool", [c])
    check_against_ort(g.build({"x": ["N", 3, 7, 9]}, [a, b]))


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [1, 2, 3, -1])
def test_softmax_4d(opset, axis):
    g = GraphBuilder(opset)
    y = add_conv(g, "x", rng(31), 3, 4)
    y = g.add("Softmax", [y], axis=axis)
    check_against_ort(g.build({"x": ["N", 3, 4, 5]}, [y]))


def test_softmax_axis_1_opset_11_vs_13_semantics():
    """Opset < 13: softmax over the flattened C*H*W; 13+: over C alone."""
    outs = {}
    for opset in (11, 13):
        g = GraphBuilder(opset)
        y = add_conv(g, "x", rng(32), 3, 4)
        y = g.add("Softmax", [y], axis=1)
        engine = check_against_ort(g.build({"x": ["N", 3, 4, 5]}, [y]))
        outs[opset] = engine.run(np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32))[0]
    np.testing.assert_allclose(outs[11].sum(axis=(1, 2, 3)), 1.0, atol=1e-5)
    np.testing.assert_allclose(outs[13].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_2d_default_axis(opset):
    g = GraphBuilder(opset)
    y = g.add("Gemm", ["x", g.const(rng(33).normal(size=(6, 5))), g.const(np.zeros(5))])
    y = g.add("Softmax", [y])
    check_against_ort(g.build({"x": ["N", 6]}, [y]), scale=5.0)


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 1, 3, 2], [3, 2, 1, 0]])
def test_transpose_4d(perm):
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng(34), 3, 4)
    y = g.add("Transpose", [y], perm=perm)
    check_against_ort(g.build({"x": ["N", 3, 4, 5]}, [y]))


def test_transpose_3d_and_default_perm():
    g = GraphBuilder(13)
    a = g.add("Transpose", ["x"], perm=[0, 2, 1])
    b = g.add("Transpose", ["x"])
    check_against_ort(g.build({"x": ["N", 3, 4]}, [a, b]))


def test_cast_to_float_is_free():
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng(35), 3, 4)
    y = g.add("Cast", [y], to=onnx.TensorProto.FLOAT)
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y]))
    assert [k for k, _ in step_kinds(engine)] == ["layout", "conv", "layout"]


# -- unsupported graphs ----------------------------------------------------------------------

def unsupported_model():
    r = rng(36)
    g = GraphBuilder(13)
    y = add_conv(g, "x", r, 3, 4, name="stem")
    y = g.add("Resize", [y, "", g.const([1, 1, 2, 2])], name="upsample", mode="nearest")
    y = g.add("Reshape", [y, g.const([0, 4, 64], dtype=np.int64)])
    y = g.add("Transpose", [y], perm=[0, 2, 1])
    y = g.add("LSTM", [y, g.const(r.normal(size=(1, 8, 4))), g.const(r.normal(size=(1, 8, 2)))],
              name="rnn", hidden_size=2)
    y = g.add("Resize", [y, "", g.const([1, 1, 1, 1])], name="upsample2", mode="nearest")
    return g.build({"x": ["N", 3, 4, 4]}, [y])


def test_unsupported_ops_are_listed_at_load(monkeypatch):
    import tinyface.runtime.plan as plan_module
    ran = []
    monkeypatch.setattr(plan_module.Plan, "run", lambda self, feed: ran.append(feed))
    with pytest.raises(tinyface.UnsupportedOpError) as info:
        tinyface.load(unsupported_model())
    msg = str(info.value)
    assert "\n" not in msg
    for op, node in [("Resize", "upsample"), ("Resize", "upsample2"), ("LSTM", "rnn")]:
        assert op in msg and f"'{node}'" in msg
    assert "Supported" in msg or "supported" in msg
    for op in ("Conv", "BatchNormalization", "Gemm", "PRelu", "MaxPool", "Softmax"):
        assert op in msg
    assert not ran                       # refused before anything ran


def test_unsupported_op_in_session_too():
    with pytest.raises(tinyface.UnsupportedOpError, match="rnn"):
        tinyface.InferenceSession(unsupported_model())


@pytest.mark.parametrize("attrs,group", [({"dilations": [2, 2]}, 1), ({}, 2), ({"dilations": [1, 2]}, 4)])
def test_conv_dilation_or_grouped_refused(attrs, group):
    g = GraphBuilder(13)
    w = conv_weight(rng(37), 4, 4 // group, 3, 3)
    y = g.add("Conv", ["x", g.const(w)], name="odd_conv", pads=[2, 2, 2, 2], group=group, **attrs)
    with pytest.raises(tinyface.UnsupportedOpError) as info:
        tinyface.load(g.build({"x": ["N", 4, 6, 6]}, [y]))
    assert "odd_conv" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("attrs, fragment", [
    (dict(pads=[-1, 0, 0, 0]), "pads [-1, 0, 0, 0]"),     # cropping
    (dict(pads=[1, 1]), "pads [1, 1]"),
    (dict(strides=[0, 1]), "strides [0, 1]"),
    (dict(strides=[2]), "strides [2]"),
    (dict(kernel_shape=[5, 5]), "kernel_shape [5, 5]"),
])
def test_conv_with_bad_window_attributes_refused(attrs, fragment):
    g = GraphBuilder(13)
    y = g.add("Conv", ["x", g.const(conv_weight(rng(40), 4, 4, 3, 3))], name="bad_window", **attrs)
    with pytest.raises(tinyface.UnsupportedOpError) as info:
        tinyface.load(g.build({"x": ["N", 4, 6, 6]}, [y]))
    assert "bad_window" in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("attrs, fragment", [
    (dict(kernel_shape=[2, 2], pads=[0, -1, 0, 0]), "pads [0, -1, 0, 0]"),
    (dict(kernel_shape=[2, 2], strides=[1, 0]), "strides [1, 0]"),
    (dict(kernel_shape=[0, 2]), "kernel [0, 2]"),
])
def test_maxpool_with_bad_window_attributes_refused(attrs, fragment):
    g = GraphBuilder(13)
    y = g.add("MaxPool", ["x"], name="bad_pool", **attrs)
    with pytest.raises(tinyface.UnsupportedOpError) as info:
        tinyface.load(g.build({"x": ["N", 4, 6, 6]}, [y]))
    assert "bad_pool" in str(info.value) and fragment in str(info.value)


def test_depthwise_with_channel_multiplier_refused():
    g = GraphBuilder(13)
    y = g.add("Conv", ["x", g.const(conv_weight(rng(38), 8, 1, 3, 3))], name="dw_x2", pads=[1] * 4, group=4)
    with pytest.raises(tinyface.UnsupportedOpError, match="dw_x2"):
        tinyface.load(g.build({"x": ["N", 4, 6, 6]}, [y]))


@pytest.mark.parametrize("build,name", [
    (lambda g: g.add("Conv", ["x", "w"], name="runtime_weight", pads=[1] * 4), "runtime_weight"),
    (lambda g: g.add("Mul", ["x", "w"], name="mul_two_tensors"), "mul_two_tensors"),
])
def test_runtime_operands_refused(build, name):
    g = GraphBuilder(13)
    y = build(g)
    with pytest.raises(tinyface.UnsupportedOpError, match=name):
        tinyface.load(g.build({"x": ["N", 4, 3, 3], "w": [4, 4, 3, 3]}, [y]))


def test_batchnorm_training_mode_refused():
    g = GraphBuilder(15)
    s, b, m, v = (g.const(a) for a in (np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)))
    y = g.add("BatchNormalization", ["x", s, b, m, v], name="bn_train", training_mode=1)
    with pytest.raises(tinyface.UnsupportedOpError, match="bn_train"):
        tinyface.load(g.build({"x": ["N", 3, 4, 4]}, [y]))


def test_inspect_lists_unsupported_ops(tmp_path, capsys):
    path = tmp_path / "unsupported.onnx"
    onnx.save(unsupported_model(), path)
    assert main(["inspect", str(path)]) == 4
    out = capsys.readouterr().out
    assert "unsupported" in out
    for op, node in [("Resize", "upsample"), ("Resize", "upsample2"), ("LSTM", "rnn")]:
        assert any(op in line and node in line for line in out.splitlines())
    assert main(["inspect", "--json", str(path)]) == 4
    info = json.loads(capsys.readouterr().out)
    assert {"params", "macs", "inputs", "outputs", "unsupported"} <= set(info)
    assert sorted((u["op"], u["node"]) for u in info["unsupported"]) == \
        [("LSTM", "rnn"), ("Resize", "upsample"), ("Resize", "upsample2")]
    assert info["inputs"][0]["name"] == "x"


def test_inspect_lists_a_refused_conv(tmp_path, capsys):
    g = GraphBuilder(13)
    w = conv_weight(rng(39), 4, 4, 3, 3)
    y = g.add("Conv", ["x", g.const(w)], name="dilated", pads=[2] * 4, dilations=[2, 2])
    path = tmp_path / "dilated.onnx"
    onnx.save(g.build({"x": ["N", 4, 6, 6]}, [y]), path)
    assert main(["inspect", "--json", str(path)]) == 4
    info = json.loads(capsys.readouterr().out)
    assert info["unsupported"] and "dilated" in json.dumps(info["unsupported"])


# -- dynamic batch and bad graphs ----------------------------------------------------------

def test_every_batch_size_agrees_with_batch_1():
    model = residual_block_model()
    engine = tinyface.load(model)
    x = np.random.default_rng(40).standard_normal((5, 4, 6, 6)).astype(np.float32)
    full = engine.run(x)[0]
    singles = np.concatenate([engine.run(x[i:i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(full, singles, atol=1e-6)
    np.testing.assert_allclose(full, ort_run(model, {"x": x})[0], atol=1e-4)


def test_graph_not_in_topological_order():
    g = GraphBuilder(13)
    a = g.add("Relu", ["x"])
    b = g.add("Relu", [a])
    g.nodes.reverse()
    with pytest.raises(tinyface.ModelError, match="topological"):
        tinyface.load(g.build({"x": ["N", 3]}, [b]))


def test_non_float_input_refused():
    g = GraphBuilder(13)
    y = g.add("Relu", ["x"])
    with pytest.raises(tinyface.UnsupportedOpError, match="float32"):
        tinyface.load(g.build({"x": ["N", 3]}, [y], elem_type=onnx.TensorProto.DOUBLE))


# -- malformed graphs (invalid ONNX that onnx.checker refuses): still a ModelError ----------

def _malformed(case):
    from onnx import helper, numpy_helper
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "W")
    x4 = [("x", ["N", 2, 3, 3])]
    cases = {
        "conv_without_weight": ([helper.make_node("Conv", ["x"], ["y"], name="c")], x4, [], "y"),
        "maxpool_without_kernel_shape": ([helper.make_node("MaxPool", ["x"], ["y"], name="p")], x4, [], "y"),
        "cast_without_to": ([helper.make_node("Cast", ["x"], ["y"], name="c")], x4, [], "y"),
        "output_never_produced": ([helper.make_node("Relu", ["x"], ["y"], name="r")], x4, [], "z"),
        "reshape_without_shape": ([helper.make_node("Reshape", ["x"], ["y"], name="r")], x4, [], "y"),
        "conv_pads_too_short": ([helper.make_node("Conv", ["x", "W"], ["y"], name="c", pads=[1, 1])], x4, [w], "y"),
        "batchnorm_without_stats": ([helper.make_node("BatchNormalization", ["x"], ["y"], name="b")], x4, [], "y"),
    }
    nodes, ins, inits, out = cases[case]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in ins],
                              [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)], initializer=inits)
    return make_model(graph, 13)


@pytest.mark.parametrize("case", ["conv_without_weight", "maxpool_without_kernel_shape", "cast_without_to",
                                  "output_never_produced", "reshape_without_shape", "conv_pads_too_short",
                                  "batchnorm_without_stats"])
def test_malformed_graph_is_a_model_error(case):
    with pytest.raises(tinyface.ModelError):
        tinyface.load(_malformed(case))


# -- found by the fuzzer (tests/test_fuzz_models.py): refused at load, naming the node ------

def one_node(op, inputs, attrs=None, shape=("N", 3, 6, 6), opset=13, consts=()):
    """A graph of one ``op`` node reading "x" and the constants ``consts`` (in order)."""
    g = GraphBuilder(opset)
    names = [g.const(c, dtype=np.asarray(c).dtype) for c in consts]
    y = g.add(op, ["x"] + names if inputs is None else inputs(g, names), name="the_node", **(attrs or {}))
    return g.build({"x": list(shape)}, [y])


def refused(model, match, exc=tinyface.ModelError):
    with pytest.raises(exc, match=match) as info:
        tinyface.load(model)
    assert "the_node" in str(info.value) and "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("bias", [np.ones(5, np.float32), np.ones((8, 1), np.float32)])
def test_conv_bias_not_one_per_output_channel(bias):
    """Before: a bias of 5 for 8 channels loaded and the kernel read past its end (Numba
    does not bound-check): silent garbage; a 2-D bias was a Numba TypingError at run time."""
    refused(one_node("Conv", None, {"pads": [1] * 4}, consts=[np.ones((8, 3, 3, 3), np.float32), bias]),
            "bias of shape")


@pytest.mark.parametrize("attrs", [{"strides": [1.5, 1.5]}, {"pads": [1.5, 1, 1, 1]}, {"group": 3.0}])
def test_conv_window_attributes_must_be_integers(attrs):
    """Before: they loaded; float strides and pads were a TypeError from range() at run
    time, group 3.0 ran as 3.
    Now the op's schema refuses them as the file is read."""
    attrs = {"group": 3, **attrs}
    refused(one_node("Conv", None, attrs, consts=[np.ones((3, 1, 3, 3), np.float32)]), "Mismatched attribute type")


@pytest.mark.parametrize("attrs", [{"strides": [2**40, 1]}, {"pads": [0, 2**31, 0, 0]}])
def test_conv_window_attributes_in_range(attrs):
    refused(one_node("Conv", None, attrs, consts=[np.ones((3, 3, 3, 3), np.float32)]), "must be",
            tinyface.UnsupportedOpError)


def test_maxpool_kernel_must_be_integers():
    refused(one_node("MaxPool", None, {"kernel_shape": [2.5, 2.0]}), "Mismatched attribute type")


def test_folding_a_broadcast_of_2_40_elements():
    """Before: numpy tried to allocate the 4 TiB result (MemoryError)."""
    g = GraphBuilder(13)
    s = g.add("Add", [g.const(np.ones((2**20, 1), np.float32)), g.const(np.ones((1, 2**20), np.float32))],
              name="the_node")
    y = g.add("Add", ["x", g.add("Reshape", [s, g.const([-1], dtype=np.int64)])])
    msg = refused(g.build({"x": ["N", 1]}, [y]), "MAX_TENSOR_ELEMENTS")
    assert "[1048576, 1048576]" in msg


def _fold_as_target(op, inputs, attrs):
    """x reshaped to the folded result of ``op`` on constants (a limit test, not a valid target)."""
    g = GraphBuilder(13)
    y = g.add("Reshape", ["x", g.add(op, inputs(g), name="the_node", **attrs)])
    return g.build({"x": ["N", 6]}, [y])


def test_folding_a_concat_past_the_limit(monkeypatch):
    monkeypatch.setenv("TINYFACE_MAX_TENSOR_ELEMENTS", "1000")
    model = _fold_as_target("Concat", lambda g: [g.const(np.ones(400), name="c", dtype=np.int64)] * 3, {"axis": 0})
    refused(model, "folding to a constant of shape \\[1200\\]")


def test_folding_a_gather_past_the_limit(monkeypatch):
    monkeypatch.setenv("TINYFACE_MAX_TENSOR_ELEMENTS", "1000")
    model = _fold_as_target("Gather", lambda g: [g.const(np.ones((10, 50)), dtype=np.int64),
                                                 g.const(np.zeros((5, 5)), dtype=np.int64)], {"axis": 0})
    refused(model, "\\[5, 5, 50\\]")


def test_batchnorm_parameters_that_are_not_vectors():
    """Before: (3, 1) and (1, 3) parameters broadcast to 3 x 3 and became a Numba
    TypingError at run time; lengths 5 and 3 were 'malformed' with numpy's message."""
    consts = [np.ones((3, 1), np.float32), np.zeros((1, 3), np.float32), np.zeros(3, np.float32),
              np.ones(3, np.float32)]
    refused(one_node("BatchNormalization", None, consts=consts), "vectors of one length")


@pytest.mark.parametrize("opset, axis, shape", [(13, 5, ("N", 4)), (13, -7, ("N", 4)), (11, 3, ("N", 4)),
                                                (13, 4, ("N", 3, 6, 6))])
def test_softmax_axis_out_of_range(opset, axis, shape):
    """Before: numpy AxisError at run time (opset 13); opset 11 ran a softmax over no axis
    (all ones)."""
    refused(one_node("Softmax", None, {"axis": axis}, shape=shape, opset=opset), "out of range")


def test_reshape_target_below_minus_one():
    """Before: [0, -2, -54] loaded (N x -2 x -54 is N x 108 elements) and failed in numpy
    at run time."""
    refused(one_node("Reshape", None, consts=[np.array([0, -2, -54], np.int64)]), "below -1")


@pytest.mark.parametrize("op, axes", [("Unsqueeze", [100]), ("Unsqueeze", [1, 1]), ("Squeeze", [-10]),
                                      ("Squeeze", [7])])
def test_axes_out_of_range_or_repeated(op, axes):
    """Before: Unsqueeze axis 100 appended a dim at the end, [1, 1] inserted two."""
    refused(one_node(op, None, consts=[np.array(axes, np.int64)]), "out of range or repeated")


@pytest.mark.parametrize("axis", [5, -6])
def test_flatten_axis_out_of_range(axis):
    """Before: axis 5 of a rank-4 tensor loaded and flattened everything."""
    refused(one_node("Flatten", None, {"axis": axis}), "out of range")


def test_maxpool_pads_as_large_as_the_kernel():
    """Before: windows wholly in the padding gave -inf (onnxruntime refuses such pads)."""
    refused(one_node("MaxPool", None, {"kernel_shape": [2, 2], "pads": [3, 3, 3, 3]}), "smaller than the kernel",
            tinyface.UnsupportedOpError)


def test_conv_whose_pads_imply_an_output_of_2_42_elements():
    """Before: loaded; the first run would have allocated the output (35 TB)."""
    msg = refused(one_node("Conv", None, {"pads": [2**20] * 4}, consts=[np.ones((2, 3, 1, 1), np.float32)]),
                  "for one image, an array of shape")
    assert "MAX_TENSOR_ELEMENTS" in msg


@pytest.mark.parametrize("shape, match", [(("N", 3, 2**30, 2**30), "MAX_TENSOR_ELEMENTS"),
                                          (("N", 3, -6, 6), "positive or symbolic"),
                                          (("N", 0, 6, 6), "positive or symbolic")])
def test_declared_input_shapes(shape, match):
    """Before: all loaded; embed would resize faces to 2^30 x 2^30, and the others made
    every run an InputError about a shape no input can have."""
    with pytest.raises(tinyface.ModelError, match=match):
        tinyface.load(one_node("Relu", None, shape=shape))


def test_empty_weights_and_outputs():
    """Before: a conv weight with no output channels was a ValueError from numpy; a Gemm
    with none loaded and ran to an empty output."""
    refused(one_node("Conv", None, consts=[np.ones((0, 3, 1, 1), np.float32)]), "empty")
    refused(one_node("Gemm", None, shape=("N", 4), consts=[np.ones((4, 0), np.float32)]), "below 1")


@pytest.mark.parametrize("outputs", [[], [""]])
def test_node_without_an_output(outputs):
    """Before: IndexError at the first run.  Now the op's schema refuses it."""
    g = GraphBuilder(13)
    g.add("Relu", ["x"], outputs=outputs, name="the_node")
    with pytest.raises(tinyface.ModelError, match="output size 0|output 0 is marked single"):
        tinyface.load(g.build({"x": ["N", 3]}, [g.add("Relu", ["x"])]))


@pytest.mark.parametrize("op, attrs, opset", [("Clip", {"min": [0.0, 1.0]}, 9),
                                              ("LeakyRelu", {"alpha": [0.1, 0.2]}, 13),
                                              ("BatchNormalization", {"epsilon": [1e-5] * 3}, 13)])
def test_float_attributes_must_be_one_number(op, attrs, opset):
    """Before: a list reached the kernels as an array where they take a float32: a Numba
    TypingError, after a ~10 s compile.  Now the op's schema refuses it."""
    consts = [np.ones(3, np.float32)] * 4 if op == "BatchNormalization" else []
    model = one_node(op, None, shape=("N", 3, 4, 4), opset=opset, consts=consts)
    node = model.graph.node[0]
    name, values = next(iter(attrs.items()))
    node.attribute.extend([onnx.helper.make_attribute(name, values)])
    with pytest.raises(tinyface.ModelError, match="Mismatched attribute type"):
        tinyface.load(model)


@pytest.mark.parametrize("op, attr, shape", [("MaxPool", "ceil_mode", ("N", 3, 6, 6)), ("Gemm", "transB", ("N", 3)),
                                             ("Reshape", "allowzero", ("N", 3, 6, 6))])
def test_flags_other_than_0_or_1(op, attr, shape):
    """Before: ceil_mode=65536 was taken as true, where onnxruntime floors: output shapes
    (2, 4, 5, 6) against (2, 4, 4, 6) on MTCNN's P-Net."""
    consts = {"MaxPool": [], "Gemm": [np.ones((3, 3), np.float32)], "Reshape": [np.array([0, -1], np.int64)]}[op]
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]} if op == "MaxPool" else {}
    refused(one_node(op, None, {**attrs, attr: 65536}, shape=shape, consts=consts, opset=14),
            f"{attr}=65536 must be 0 or 1")


def test_squeeze_without_axes_of_a_free_batch():
    """Before: the dims of size 1 were those of (N, 6, 1), so (1, 6) at batch 1 where
    onnxruntime, squeezing the batch of 1 too, gives (6,) (found by the 10x fuzz run)."""
    refused(one_node("Squeeze", lambda g, c: ["x"], shape=("N", 6, 1)), "Squeeze without axes",
            tinyface.UnsupportedOpError)
    g = GraphBuilder(13)                                      # on a constant, every dim is known
    y = g.add("Add", ["x", g.add("Squeeze", [g.const(np.ones((1, 6, 1), np.float32))])])
    check_against_ort(g.build({"x": ["N", 6]}, [y]))
