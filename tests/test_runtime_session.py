"""tinyface.InferenceSession against onnxruntime.InferenceSession: the same
calling convention, names, shapes and (on the bundled model) numbers.

Tolerance per embedding: cosine similarity >= 0.99999, max abs <= 1e-3."""
from pathlib import Path

import numpy as np
import onnx
import pytest

import tinyface
from tinyface.verify import cosine_similarity
from onnx_builders import GraphBuilder, add_conv, ort_session

ort = pytest.importorskip("onnxruntime")

BUNDLED = tinyface.paths.default_model_path()
FACES = Path(__file__).parent / "data" / "lfw-hard-pairs"
COS_MIN, ABS_MAX = 0.99999, 1e-3


@pytest.fixture(scope="module")
def ours():
    return tinyface.InferenceSession(str(BUNDLED))


@pytest.fixture(scope="module")
def ref():
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(BUNDLED), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def faces(ours):
    """Four real aligned faces, normalised as the model expects: 4 x 3 x 112 x 112 float32."""
    files = sorted(FACES.glob("*_fn_0_aligned.jpg"))[:4]
    assert len(files) == 4
    return tinyface.load(BUNDLED).preprocess(files)


def assert_embeddings_close(a, b):
    assert a.shape == b.shape and a.dtype == np.float32
    for u, v in zip(a, b):
        assert cosine_similarity(u, v) >= COS_MIN
        assert np.abs(u - v).max() <= ABS_MAX


# -- metadata --------------------------------------------------------------------------

def test_input_and_output_names_match(ours, ref):
    assert [a.name for a in ours.get_inputs()] == [a.name for a in ref.get_inputs()] == ["input0"]
    assert [a.name for a in ours.get_outputs()] == [a.name for a in ref.get_outputs()] == ["output0"]


def test_shapes_match_except_the_free_batch(ours, ref):
    """onnxruntime shows the exported batch (1); tinyface runs any batch and shows it as 'N'."""
    for mine, theirs in [(ours.get_inputs(), ref.get_inputs()), (ours.get_outputs(), ref.get_outputs())]:
        for a, b in zip(mine, theirs):
            assert len(a.shape) == len(b.shape)
            assert a.shape[1:] == b.shape[1:]
            assert a.shape[0] == "N"
            assert a.type == b.type == "tensor(float)"
    assert ours.get_inputs()[0].shape == ["N", 3, 112, 112]
    assert ours.get_outputs()[0].shape == ["N", 128]


def test_providers(ours):
    assert isinstance(ours.get_providers(), list) and ours.get_providers()


def test_constructor_accepts_onnxruntime_arguments():
    so = ort.SessionOptions()
    sess = tinyface.InferenceSession(BUNDLED, so, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "input0"


def tiny_model():
    g = GraphBuilder(13)
    y = add_conv(g, "x", np.random.default_rng(0), 3, 4)
    y = g.add("Relu", [y], outputs=["y"])
    return g.build({"x": ["batch", 3, 5, 5]}, [("y", ["batch", 4, 5, 5])])


def test_session_from_model_proto():
    model = tiny_model()
    sess = tinyface.InferenceSession(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, ort_session(model).run(None, {"x": x})[0], atol=1e-4)


def test_session_from_serialized_bytes():
    sess = tinyface.InferenceSession(BUNDLED.read_bytes())
    assert sess.get_inputs()[0].name == "input0"


def test_symbolic_dim_names_as_onnxruntime():
    g = GraphBuilder(13)
    g.add("Relu", ["x"], outputs=["y"])
    model = g.build({"x": ["batch", 3, "height", "width"]}, [("y", ["batch", 3, "height", "width"])])
    assert tinyface.InferenceSession(model).get_inputs()[0].shape[1:] == \
        ort_session(model).get_inputs()[0].shape[1:] == [3, "height", "width"]


# -- run ----------------------------------------------------------------------------------

def test_run_none_and_named_outputs(ours, faces):
    all_outputs = ours.run(None, {"input0": faces[:1]})
    named = ours.run(["output0"], {"input0": faces[:1]})
    as_tuple = ours.run(("output0",), {"input0": faces[:1]})
    assert isinstance(all_outputs, list) and len(all_outputs) == 1
    np.testing.assert_array_equal(all_outputs[0], named[0])
    np.testing.assert_array_equal(all_outputs[0], as_tuple[0])


def test_run_with_empty_output_list_means_all(ours, ref, faces):
    assert len(ours.run([], {"input0": faces[:1]})) == len(ref.run([], {"input0": faces[:1]})) == 1


def test_unknown_output_name(ours, faces):
    with pytest.raises(tinyface.TinyfaceError) as info:
        ours.run(["embedding"], {"input0": faces[:1]})
    assert "embedding" in str(info.value) and "output0" in str(info.value)


def test_feed_must_be_a_dict(ours, faces):
    with pytest.raises(tinyface.InputError):
        ours.run(None, [faces[:1]])


def test_wrong_input_name(ours, faces):
    with pytest.raises(tinyface.InputError, match="input0"):
        ours.run(None, {"data": faces[:1]})


def test_bad_input_is_an_input_error(ours, faces):
    with pytest.raises(tinyface.InputError, match="float32"):
        ours.run(None, {"input0": faces[:1].astype(np.float64)})


def test_multiple_outputs_in_requested_order():
    rng = np.random.default_rng(2)
    g = GraphBuilder(13)
    c = add_conv(g, "x", rng, 3, 4, outputs=None)
    a = g.add("Relu", [c], outputs=["a"])
    b = g.add("GlobalAveragePool", [c], outputs=["b"])
    model = g.build({"x": ["N", 3, 5, 5]}, ["a", "b"])
    sess, refs = tinyface.InferenceSession(model), ort_session(model)
    x = rng.standard_normal((3, 3, 5, 5)).astype(np.float32)
    for names in (None, ["b", "a"], ["b"], ["a", "a"]):
        mine, theirs = sess.run(names, {"x": x}), refs.run(names, {"x": x})
        assert len(mine) == len(theirs)
        for u, v in zip(mine, theirs):
            np.testing.assert_allclose(u, v, atol=1e-4)
    assert [o.name for o in sess.get_outputs()] == [a, b]


# -- numbers -----------------------------------------------------------------------------

def test_same_numbers_as_onnxruntime_batch_1(ours, ref, faces):
    for i in range(len(faces)):
        x = faces[i:i + 1]
        assert_embeddings_close(ours.run(None, {"input0": x})[0], ref.run(None, {"input0": x})[0])


def test_same_numbers_as_onnxruntime_batch_4(ours, ref, faces):
    """onnxruntime runs the exported batch of 1 four times; tinyface runs one batch of 4."""
    mine = ours.run(None, {"input0": faces})[0]
    theirs = np.concatenate([ref.run(None, {"input0": faces[i:i + 1]})[0] for i in range(4)])
    assert mine.shape == (4, 128)
    assert_embeddings_close(mine, theirs)


def test_same_numbers_on_random_input(ours, ref):
    x = np.random.default_rng(3).uniform(-2, 2, (1, 3, 112, 112)).astype(np.float32)
    assert_embeddings_close(ours.run(None, {"input0": x})[0], ref.run(None, {"input0": x})[0])


def redeclared_with_free_batch(tmp_path, fix_reshape):
    """The bundled model with a symbolic batch "N"; ``fix_reshape`` also turns the export's
    literal Reshape target [1, -1] into [0, -1] so that onnxruntime can run batch 4."""
    model = onnx.load(BUNDLED)
    for vi in list(model.graph.input) + list(model.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    if fix_reshape:
        (reshape,) = [n for n in model.graph.node if n.op_type == "Reshape"]
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, -1], np.int64), "flat_target"))
        reshape.input[1] = "flat_target"
    path = tmp_path / f"dynamic_{fix_reshape}.onnx"
    onnx.save(model, path)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return tinyface.InferenceSession(path), ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def test_free_batch_model_batch_1_and_4(tmp_path, faces):
    mine, theirs = redeclared_with_free_batch(tmp_path, fix_reshape=True)
    for x in (faces, faces[:1]):
        a, b = mine.run(None, {"input0": x})[0], theirs.run(None, {"input0": x})[0]
        assert a.shape == (len(x), 128)
        assert_embeddings_close(a, b)


def test_free_batch_with_literal_reshape_follows_onnx(tmp_path, faces):
    """With the batch declared free, Reshape(x, [1, -1]) means what ONNX says: one row."""
    mine, theirs = redeclared_with_free_batch(tmp_path, fix_reshape=False)
    a, b = mine.run(None, {"input0": faces[:2]})[0], theirs.run(None, {"input0": faces[:2]})[0]
    assert a.shape == b.shape == (1, 256)
    assert_embeddings_close(a.reshape(2, 128), b.reshape(2, 128))
