"""The load-time passes (graph.passes): each a pure function on op records, tested on
hand-made ops (what it merges, what it leaves, that its input is untouched), and end to
end: every rewrite must leave the outputs unchanged (checked against onnxruntime at
batch 1 and 3), and the fused steps are checked where it matters."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyface
from onnx_builders import (GraphBuilder, add_bn, add_conv, check_against_ort, single_thread_fixture,
                           step_kinds)
from tinyface.graph import ops as O
from tinyface.graph import passes

single_thread = single_thread_fixture()


def kinds(engine):
    return [k for k, _ in step_kinds(engine)]


# -- each pass on hand-made ops ------------------------------------------------------

RELU = O.Activation(np.ones(1, np.float32), 0.0, np.inf)


def conv(name, x, out, co=4, ci=4, k=1, groups=1, pads=(0, 0, 0, 0), stride=1, seed=0):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(co, ci // groups, k, k)).astype(np.float32)
    return O.Conv(name, [x], [out], weight, O.Epilogue(rng.normal(size=co)), (stride, stride), pads, groups)


def scale_shift(name, x, out, c=4, trained=False, act=None, pure=False):
    rng = np.random.default_rng(1)
    scale, shift = (np.ones(c), np.zeros(c)) if pure else (rng.uniform(0.5, 2, c), rng.normal(size=c))
    return O.ScaleShift(name, [x], [out], scale, shift, act, trained)


def relu(name, x, out):
    return scale_shift(name, x, out, c=1, act=RELU, pure=True)


def test_records_are_frozen_and_their_arrays_read_only():
    c = conv("c", "x", "y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "d"
    with pytest.raises(ValueError, match="read-only"):
        c.weight[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        c.epilogue.bias[0] = 1


def test_fold_batchnorm_folds_into_weight_and_bias_and_leaves_its_input_alone():
    ops = [conv("c", "x", "y"), scale_shift("bn", "y", "z", trained=True)]
    before = [op.weight.copy() for op in ops[:1]]
    (folded,) = passes.fold_batchnorm(ops, {"z"})
    c, bn = ops
    assert folded.outputs == ("z",) and folded.name == "c"
    np.testing.assert_array_equal(folded.weight, (c.weight * bn.scale[:, None, None, None]).astype(np.float32))
    np.testing.assert_array_equal(folded.epilogue.bias, (c.epilogue.bias * bn.scale + bn.shift).astype(np.float32))
    np.testing.assert_array_equal(ops[0].weight, before[0])         # the input list and its ops unchanged
    assert len(ops) == 2 and ops[0].outputs == ("y",)


def test_fold_batchnorm_leaves_a_constant_scale_to_fold_scale_shift():
    ops = [conv("c", "x", "y"), scale_shift("mul", "y", "z")]
    assert passes.fold_batchnorm(ops, {"z"}) == ops
    (folded,) = passes.fold_scale_shift(ops, {"z"})
    assert isinstance(folded, O.Conv) and folded.outputs == ("z",)


def test_no_fold_past_an_activation_or_into_a_value_read_twice_or_a_graph_output():
    after_act = [dataclasses.replace(conv("c", "x", "y"), epilogue=O.Epilogue(np.zeros(4), act1=RELU)),
                 scale_shift("bn", "y", "z", trained=True)]
    assert passes.fold_batchnorm(after_act, {"z"}) == after_act
    read_twice = [conv("c", "x", "y"), scale_shift("bn", "y", "z", trained=True), O.Add("a", ["y", "z"], ["w"])]
    assert passes.fold_batchnorm(read_twice, {"w"}) == read_twice
    output = [conv("c", "x", "y"), scale_shift("bn", "y", "z", trained=True)]
    assert passes.fold_batchnorm(output, {"y", "z"}) == output


def test_fuse_activation_before_and_after_a_residual():
    ops = [conv("c", "x", "y"), relu("r1", "y", "z"), O.Add("a", ["z", "x"], ["w"]), relu("r2", "w", "v")]
    ops = passes.fuse_activation(ops, {"v"})
    assert [op.name for op in ops] == ["c", "a", "r2"] and repr(ops[0].epilogue.act1) == "relu"
    ops = passes.fuse_residual(ops, {"v"})
    assert [op.name for op in ops] == ["c", "r2"] and ops[0].epilogue.residual == "x"
    assert ops[0].inputs == ("x", "x")
    (fused,) = passes.fuse_activation(ops, {"v"})
    assert fused.epilogue.describe() == "relu +residual relu" and fused.outputs == ("v",)
    assert fused.epilogue.act1.slope.shape == (4,)                  # widened to the channels


def test_fuse_activation_joins_an_affine_scale_shift_without_one():
    ops = [scale_shift("bn", "x", "y", trained=True), relu("r", "y", "z")]
    (fused,) = passes.fuse_activation(ops, {"z"})
    assert fused.name == "bn" and repr(fused.act) == "relu" and fused.trained


def test_fuse_residual_needs_the_other_value_before_the_producer():
    later = [conv("c", "x", "y"), conv("d", "x", "u", seed=1), O.Add("a", ["y", "u"], ["w"])]
    (c, d) = passes.fuse_residual(later, {"w"})
    assert c.epilogue.residual is None and d.epilogue.residual == "y" and d.outputs == ("w",)
    twice = [conv("c", "x", "y"), O.Add("a", ["y", "y"], ["w"])]
    assert passes.fuse_residual(twice, {"w"}) == twice


def block_convs(channels=16, stride=1):
    return [conv("e", "x", "e_out", co=channels, ci=4),
            conv("dw", "e_out", "d_out", co=channels, ci=channels, k=3, groups=channels, pads=(1, 1, 1, 1),
                 stride=stride),
            conv("p", "d_out", "y", co=4, ci=channels)]


@pytest.mark.parametrize("stride", [1, 2])
def test_fuse_blocks_makes_one_block_of_the_three_convs(stride):
    ops = block_convs(stride=stride)
    (block,) = passes.fuse_blocks(ops, {"y"})
    assert isinstance(block, O.InvertedResidual) and block.convs == tuple(ops)
    assert block.inputs == ("x",) and block.outputs == ("y",) and block.name == "e .. p"
    shapes = [(O.BATCH, 4, 9, 9)]
    assert block.infer(shapes) == ops[2].infer(ops[1].infer(ops[0].infer(shapes)))
    assert block.params() == sum(op.params() for op in ops)


def test_fuse_blocks_needs_a_multiple_of_16_channels_and_no_reader_in_between():
    ops = block_convs(channels=8)
    assert passes.fuse_blocks(ops, {"y"}) == ops
    ops = block_convs()
    assert passes.fuse_blocks(ops, {"y", "e_out"}) == ops


def test_optimise_runs_the_passes_to_a_fixed_point():
    ops = [conv("c", "x", "y"), scale_shift("mul", "y", "z"), scale_shift("bn", "z", "u", trained=True),
           relu("r", "u", "v")]
    (fused,) = passes.optimise(ops, {"v"})
    assert fused.detail() == "1x1/1 4->4 relu"
    assert passes.optimise([fused], {"v"}) == [fused]
def activation(g, y, kind, channels, rng, opset):
    if kind == "none":
        return y
    if kind == "relu":
        return g.add("Relu", [y])
    if kind == "relu6":
        if opset < 11:
            return g.add("Clip", [y], min=0.0, max=6.0)
        return g.add("Clip", [y, g.const(0.0), g.const(6.0)])
    if kind == "leaky":
        return g.add("LeakyRelu", [y], alpha=0.15)
    if kind == "prelu":
        return g.add("PRelu", [y, g.const(rng.uniform(-0.5, 0.5, (channels, 1, 1)))])
    raise ValueError(kind)


# -- BN folding: a property ---------------------------------------------------------

@st.composite
def conv_bn_cases(draw):
    depthwise = draw(st.booleans())
    ci = draw(st.integers(1, 6))
    co = ci if depthwise else draw(st.integers(1, 8))
    k = draw(st.sampled_from([1, 2, 3, 5]))
    stride = draw(st.sampled_from([1, 2]))
    pads = draw(st.lists(st.integers(0, k - 1), min_size=4, max_size=4))
    h = draw(st.integers(k, 9))
    w = draw(st.integers(k, 9))
    return dict(depthwise=depthwise, ci=ci, co=co, k=k, stride=stride, pads=pads, h=h, w=w,
                bias=draw(st.booleans()), epsilon=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
                opset=draw(st.sampled_from([9, 13, 18])), seed=draw(st.integers(0, 2**32 - 1)))


@settings(deadline=None)              # example count from the conftest profile (25; "thorough": 250)
@given(conv_bn_cases())
def test_bn_folding_preserves_outputs(case):
    rng = np.random.default_rng(case["seed"])
    g = GraphBuilder(case["opset"])
    group = case["ci"] if case["depthwise"] else 1
    y = add_conv(g, "x", rng, case["ci"], case["co"], k=case["k"], stride=case["stride"],
                 pad=case["pads"], group=group, bias=case["bias"])
    c = case["co"]
    gamma = rng.uniform(-2, 2, c)                      # negative scales too
    var = rng.uniform(0.01, 3.0, c)
    y = g.add("BatchNormalization", [y, g.const(gamma), g.const(rng.normal(0, 1, c)),
                                     g.const(rng.normal(0, 1, c)), g.const(var)], epsilon=case["epsilon"])
    engine = check_against_ort(g.build({"x": ["N", case["ci"], case["h"], case["w"]]}, [y]),
                               atol=1e-4, rtol=1e-5, seed=case["seed"] % 1000)
    assert "scale_shift" not in kinds(engine)          # folded into the conv


# -- random conv-bn-act-residual chains: a property --------------------------------------

ACTS = ["none", "relu", "relu6", "leaky", "prelu"]


@st.composite
def chains(draw):
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        blocks.append(dict(conv=draw(st.sampled_from(["dense3", "pointwise", "depthwise3", "dense3_s2"])),
                           bn=draw(st.booleans()), act1=draw(st.sampled_from(ACTS)),
                           residual=draw(st.booleans()), act2=draw(st.sampled_from(["none", "relu", "relu6"]))))
    return dict(c=draw(st.integers(1, 5)), h=draw(st.integers(3, 8)), blocks=blocks,
                head=draw(st.sampled_from(["none", "gap_gemm_bn", "flatten"])),
                opset=draw(st.sampled_from([9, 11, 13])), seed=draw(st.integers(0, 2**32 - 1)))


def build_chain(case):
    rng = np.random.default_rng(case["seed"])
    g = GraphBuilder(case["opset"])
    c, h = case["c"], case["h"]
    y = "x"
    for b in case["blocks"]:
        inp = y
        stride = 2 if b["conv"] == "dense3_s2" else 1
        if b["conv"] == "pointwise":
            y = add_conv(g, y, rng, c, c, k=1, pad=0)
        else:
            y = add_conv(g, y, rng, c, c, k=3, stride=stride, pad=1,
                         group=c if b["conv"] == "depthwise3" else 1)
        if b["bn"]:
            y = add_bn(g, y, rng, c)
        y = activation(g, y, b["act1"], c, rng, case["opset"])
        if b["residual"] and stride == 1:
            y = g.add("Add", [y, inp] if rng.random() < 0.5 else [inp, y])
            y = activation(g, y, b["act2"], c, rng, case["opset"])
        h = (h - 1) // stride + 1
    if case["head"] == "gap_gemm_bn":
        y = g.add("GlobalAveragePool", [y])
        y = g.add("Flatten", [y])
        y = g.add("Gemm", [y, g.const(rng.normal(size=(3, c))), g.const(rng.normal(size=3))], transB=1)
        y = add_bn(g, y, rng, 3)
    elif case["head"] == "flatten":
        y = g.add("Flatten", [y])
    return g.build({"x": ["N", c, case["h"], case["h"]]}, [y])


@settings(deadline=None)              # example count from the conftest profile (25; "thorough": 250)
@given(chains())
def test_random_conv_bn_act_residual_chains(case):
    check_against_ort(build_chain(case), atol=1e-4, rtol=1e-5, seed=case["seed"] % 1000)


# -- the rules, one at a time ---------------------------------------------------------

def test_conv_bn_relu_is_one_step():
    rng = np.random.default_rng(0)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = add_bn(g, y, rng, 4)
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]))
    assert step_kinds(engine)[1] == ("conv", "3x3/1 3->4 relu")
    assert kinds(engine) == ["layout", "conv", "layout"]


def test_bn_after_activation_is_not_folded():
    rng = np.random.default_rng(1)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = g.add("Relu", [y])
    y = add_bn(g, y, rng, 4)
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]))
    assert "scale_shift" in kinds(engine)


def test_two_bns_in_a_row_both_fold():
    rng = np.random.default_rng(2)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = add_bn(g, y, rng, 4)
    y = add_bn(g, y, rng, 4, epsilon=0.01)
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]))
    assert kinds(engine) == ["layout", "conv", "layout"]


def test_negative_scale_folds_before_activation():
    rng = np.random.default_rng(3)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = g.add("Mul", [y, g.const(-2.0)])
    y = g.add("Add", [y, g.const(np.array([0.1, -0.2, 0.3, 0.0]).reshape(4, 1, 1))])
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]))
    assert kinds(engine) == ["layout", "conv", "layout"]


def test_second_activation_stays_separate():
    rng = np.random.default_rng(4)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = g.add("LeakyRelu", [y], alpha=0.2)
    y = g.add("Clip", [y, g.const(-0.1), g.const(0.5)])
    check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]), scale=3.0)


def test_activation_residual_activation():
    rng = np.random.default_rng(5)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 4, 4)
    y = g.add("PRelu", [y, g.const(rng.uniform(0, 0.5, (4, 1, 1)))])
    y = g.add("Add", ["x", y])
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 4, 5, 5]}, [y]))
    assert step_kinds(engine)[1] == ("conv", "3x3/1 4->4 prelu +residual relu")


def test_bn_after_residual_is_not_folded():
    rng = np.random.default_rng(6)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 4, 4)
    y = g.add("Add", [y, "x"])
    y = add_bn(g, y, rng, 4)
    engine = check_against_ort(g.build({"x": ["N", 4, 5, 5]}, [y]))
    assert "scale_shift" in kinds(engine)


def test_graph_output_in_the_middle_is_not_fused_away():
    rng = np.random.default_rng(7)
    g = GraphBuilder(13)
    c = add_conv(g, "x", rng, 3, 4)
    r = g.add("Relu", [c])
    f = g.add("Flatten", [r])
    fc = g.add("Gemm", [f, g.const(rng.normal(size=(100, 5))), g.const(np.zeros(5))])
    out = add_bn(g, fc, rng, 5)
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [c, out, fc]))
    assert engine.output_names == [c, out, fc]


def test_affine_then_activation_on_graph_input_is_one_step():
    rng = np.random.default_rng(8)
    g = GraphBuilder(13)
    y = add_bn(g, "x", rng, 3)
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y]))
    assert [k for k in kinds(engine) if k == "scale_shift"] == ["scale_shift"]


def test_gemm_bn_prelu_is_one_step():
    rng = np.random.default_rng(9)
    g = GraphBuilder(13)
    y = g.add("Gemm", ["x", g.const(rng.normal(size=(6, 5))), g.const(rng.normal(size=5))])
    y = add_bn(g, y, rng, 5)
    y = g.add("PRelu", [y, g.const(rng.uniform(0, 0.5, 5))])
    engine = check_against_ort(g.build({"x": ["N", 6]}, [y]))
    assert kinds(engine) == ["gemm"]


def test_two_parallel_convs_added():
    rng = np.random.default_rng(10)
    g = GraphBuilder(13)
    a = add_conv(g, "x", rng, 3, 4)
    b = add_conv(g, "x", rng, 3, 4, k=1, pad=0)
    y = g.add("Add", [a, b])
    y = g.add("Relu", [y])
    engine = check_against_ort(g.build({"x": ["N", 3, 5, 5]}, [y]))
    assert "add" not in kinds(engine)


def test_fusion_keeps_param_count_of_bundled_model():
    from tinyface.graph.summary import summarize
    info = summarize(tinyface.paths.default_model_path())
    assert info["params"] == 989_952 and info["macs"] == 233_810_432
    assert not any(s["kind"] == "scale_shift" for s in info["steps"])
    assert sum("+residual" in s["detail"] for s in info["steps"]) > 0
    assert sum(s["kind"] == "block" for s in info["steps"]) == 15     # every bottleneck of Table 1


# -- inverted-residual blocks: 1x1 -> depthwise 3x3 -> 1x1 as one step -------------------

@st.composite
def inverted_residuals(draw):
    stride = draw(st.sampled_from([1, 2]))
    ci = draw(st.sampled_from([3, 16]))
    return dict(ci=ci, e=draw(st.sampled_from([16, 24, 32])), co=draw(st.sampled_from([ci, 5])),
                stride=stride, h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)),
                bn=draw(st.booleans()), acts=draw(st.tuples(*[st.sampled_from(ACTS)] * 3)),
                residual=draw(st.booleans()), opset=draw(st.sampled_from([9, 13])),
                seed=draw(st.integers(0, 2**32 - 1)))


def build_inverted_residual(case):
    """expand 1x1 (+BN, act) -> depthwise 3x3 (+BN, act) -> project 1x1 (+BN, act) (+ x)."""
    rng = np.random.default_rng(case["seed"])
    g = GraphBuilder(case["opset"])
    ci, e, co = case["ci"], case["e"], case["co"]
    convs = [(ci, e, dict(k=1, pad=0)), (e, e, dict(k=3, pad=1, group=e, stride=case["stride"])),
             (e, co, dict(k=1, pad=0))]
    y = "x"
    for (c_in, c_out, attrs), act in zip(convs, case["acts"]):
        y = add_conv(g, y, rng, c_in, c_out, **attrs)
        if case["bn"]:
            y = add_bn(g, y, rng, c_out)
        y = activation(g, y, act, c_out, rng, case["opset"])
    if case["residual"] and case["stride"] == 1 and ci == co:
        y = g.add("Add", [y, "x"])
    return g.build({"x": ["N", ci, case["h"], case["w"]]}, [y])


@settings(deadline=None)              # example count from the conftest profile (25; "thorough": 250)
@given(inverted_residuals())
def test_inverted_residual_blocks(case):
    """Fused into one block step exactly when the expanded channels are a multiple of 16
    (then the whole chain, residual and activations included); outputs unchanged."""
    engine = check_against_ort(build_inverted_residual(case), atol=1e-4, rtol=1e-5, seed=case["seed"] % 1000)
    if case["e"] % 16 == 0:
        assert [k for k in kinds(engine) if k != "layout"] == ["block"]
    else:
        assert "block" not in kinds(engine)


def test_inverted_residual_not_fused_when_its_expanded_map_is_read_twice():
    rng = np.random.default_rng(11)
    g = GraphBuilder(13)
    e = add_conv(g, "x", rng, 3, 16, k=1, pad=0)
    d = add_conv(g, e, rng, 16, 16, k=3, pad=1, group=16)
    p = add_conv(g, d, rng, 16, 16, k=1, pad=0)
    y = g.add("Add", [p, e])                   # the expanded map is also the residual
    engine = check_against_ort(g.build({"x": ["N", 3, 6, 6]}, [y]))
    assert "block" not in kinds(engine)


def test_inverted_residual_not_fused_with_a_strided_1x1_or_unpadded_depthwise():
    rng = np.random.default_rng(12)
    for expand_stride, dw_pad in ((2, 1), (1, 0)):
        g = GraphBuilder(13)
        e = add_conv(g, "x", rng, 3, 16, k=1, pad=0, stride=expand_stride)
        d = add_conv(g, e, rng, 16, 16, k=3, pad=dw_pad, group=16)
        p = add_conv(g, d, rng, 16, 8, k=1, pad=0)
        engine = check_against_ort(g.build({"x": ["N", 3, 7, 7]}, [p]))
        assert "block" not in kinds(engine)
