"""tinyface.tools.compare: every fused step against onnxruntime and ONNX's evaluator.

Every supported model kind -- the bundled MobileFaceNet, each exported
architecture, the MTCNN nets and a model of other ops -- has every step
within the default tolerance against onnxruntime.  An error injected into
one step's kernel arguments (a bias changed after load) must be reported at
that step first, the steps before it within the tolerance; ONNX nodes map to
steps one to one; and the error measures behave at their edges (NaN, zeros,
values near zero).  Quantised steps are compared as the real values they
stand for, int8 ones too (held as uint8 plus 128 inside tinyface).
"""
import numpy as np
import onnx
import pytest

import tinyface
from onnx_builders import float_block, op_mix_model, quantize_qdq, single_thread_fixture, supported_models
from tinyface.graph.onnx_file import read_model
from tinyface.paths import default_model_path, weights_dir
from tinyface.tools.compare import DEFAULT_TOLERANCE, compare, errors
from tinyface.tools.engines import ONNX_REFERENCE, ONNXRUNTIME
from tinyface.tools.inputs import random_feed

BUNDLED = default_model_path()
MTCNN = weights_dir() / "mtcnn"

single_thread = single_thread_fixture()


def run_compare(proto, size=None, batch=1, against=ONNXRUNTIME, model=None):
    model = model or tinyface.load(proto)
    return compare(model, proto, random_feed(model.graph.inputs, batch, size), against)


@pytest.mark.parametrize("name, proto, size", supported_models(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_step_of_every_model_within_the_tolerance(name, proto, size):
    pytest.importorskip("onnxruntime")
    result = run_compare(proto, size, batch=2)
    assert result.first_past is None, result.format()
    assert len(result.steps) == len(tinyface.load(proto).steps)
    assert all(s.cosine > 0.99999 for s in result.steps)


@pytest.mark.parametrize("name", ["op mix", "rnet"])
def test_onnx_reference_evaluator_agrees_too(name):
    """(The op mix has a BatchNormalization at opset 13, which the evaluator itself would
    run with the batch's statistics; compare gives it the inference form.)"""
    proto = op_mix_model() if name == "op mix" else onnx.load(MTCNN / "rnet.onnx")
    result = run_compare(proto, against=ONNX_REFERENCE)
    assert result.engine.endswith("ReferenceEvaluator")
    assert result.first_past is None, result.format()


@pytest.mark.parametrize("name, index", [("bundled", 5), ("bundled", 20), ("op mix", 3), ("op mix", 7)])
def test_an_error_injected_into_one_step_is_named_first(name, index):
    """Perturb one step's packed bias (a kernel argument) after loading: compare must put the
    first step past the tolerance there, and every step before it within."""
    pytest.importorskip("onnxruntime")
    proto = onnx.load(BUNDLED) if name == "bundled" else op_mix_model()
    model = tinyface.load(proto)
    op_binder = model.plan.binders[index]
    conv = op_binder.convs[2] if model.steps[index].kind == "block" else op_binder
    conv.epilogue.bias[0] += 0.5
    result = run_compare(proto, model=model)
    assert result.first_past == index, result.format()
    assert all(s.max_rel <= DEFAULT_TOLERANCE for s in result.steps[:index])
    assert "<- first step past the tolerance" in result.format().splitlines()[2 + index]


def test_each_onnx_node_belongs_to_one_step():
    model = tinyface.load(BUNDLED)
    result = run_compare(onnx.load(BUNDLED), model=model)
    names = [name for s in result.steps for _, name in s.nodes]
    assert sorted(names) == sorted(n.name for n in model.graph.nodes)
    block = result.steps[5]
    assert block.kind == "block" and [op for op, _ in block.nodes] == ["Conv", "Clip", "Conv", "Clip", "Conv", "Add"]
    assert result.steps[0].nodes == [] and result.steps[0].value == "input0"


def test_folded_shape_arithmetic_counts_for_the_step_that_reads_it():
    """R-Net's flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape is the reshape step."""
    proto = onnx.load(MTCNN / "rnet.onnx")
    result = run_compare(proto, against=ONNX_REFERENCE)
    reshape = next(s for s in result.steps if s.kind == "reshape")
    assert {"Shape", "Gather", "Reshape"} <= {op for op, _ in reshape.nodes}


def test_a_fixed_batch_model_is_run_by_the_reference_image_by_image():
    pytest.importorskip("onnxruntime")
    assert read_model(BUNDLED).inputs[0].shape[0] == 1
    result = run_compare(onnx.load(BUNDLED), batch=3)
    assert result.steps[-1].shape == (3, 128) and result.first_past is None


def test_the_report_as_json_and_text():
    result = run_compare(op_mix_model(), against=ONNX_REFERENCE)
    d = result.to_dict()
    assert d["first_past"] is None and len(d["steps"]) == len(result.steps)
    assert set(d["steps"][0]) == {"index", "kind", "step", "nodes", "value", "shape", "max_abs", "max_rel",
                                  "cosine", "steps", "within"}
    text = result.format().splitlines()
    assert len(text) == len(result.steps) + 3 and text[-1].startswith(f"all {len(result.steps)} steps within")


@pytest.mark.parametrize("activations", ["QUInt8", "QInt8"])
def test_quantised_steps_are_compared_as_the_values_they_stand_for(tmp_path, activations):
    """A QDQ model against onnxruntime running its QDQ nodes as written: the Quantize of the
    input equal, every integer step within a few quantisation steps (float convs round
    differently now and then, docs/int8.md) -- not 128 apart for int8 activations."""
    ort = pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import QuantType
    onnx.save(float_block(), tmp_path / "fp32.onnx")
    quantize_qdq(tmp_path / "fp32.onnx", tmp_path / "q.onnx", activation_type=getattr(QuantType, activations))
    result = run_compare(onnx.load(tmp_path / "q.onnx"), batch=2)
    quantised = [s for s in result.steps if s.steps is not None]
    assert [s.kind for s in quantised[:2]] == ["quantize", "qconv"] and quantised[0].steps == 0
    assert len(quantised) >= 8 and all(s.steps <= 4 and s.cosine > 0.99 for s in quantised), result.format()
    assert all(s.steps is None for s in result.steps if s.kind in ("layout", "dequantize"))
    assert " steps " in result.format().splitlines()[1]


def test_the_bundled_int8_model_agrees_per_step():
    """The first steps equal onnxruntime's QDQ graph run in float; differences of a few steps
    appear and grow slowly over the 51 integer layers (docs/int8.md, "Agreement": at most 11
    steps, worst cosine 0.989 on these inputs)."""
    pytest.importorskip("onnxruntime")
    path = default_model_path("int8")
    result = run_compare(onnx.load(path), model=tinyface.load(precision="int8"))
    quantised = [s for s in result.steps if s.steps is not None]
    assert len(quantised) == 53 and all(s.steps == 0 for s in quantised[:4]), result.format()
    assert max(s.steps for s in quantised) <= 32 and min(s.cosine for s in result.steps) > 0.98, result.format()


def test_error_measures():
    r = np.array([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]])
    assert errors(r, r) == (0.0, 0.0, pytest.approx(1.0))
    t = r + np.array([[0.0, 0.02, 0.0], [0.0, 0.0, 0.0]])
    max_abs, max_rel, cos = errors(t, r)
    assert max_abs == pytest.approx(0.02) and max_rel == pytest.approx(0.01) and 0.999 < cos < 1
    t = r.copy()
    t[1, 0] = 1.0                                      # one image all zeros in the reference, not in ours
    assert errors(t, r)[2] == 0.0
    t[1, 0] = np.nan
    assert errors(t, r)[:2] == (np.inf, np.inf)
    both = np.full(3, np.nan)
    assert errors(both, both)[:2] == (0.0, 0.0)
    assert errors(np.zeros(2), np.zeros(3)) == (np.inf, np.inf, 0.0)
