"""Reading ONNX files: every bad file is a one-line ModelError naming the file;
external data is read safely; constants come from initialisers and Constant nodes."""
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyface
from tinyface.graph.onnx_file import read_model
from onnx_builders import GraphBuilder, add_bn, add_conv, check_against_ort, make_model, ort_run

BUNDLED = tinyface.paths.default_model_path()


def assert_model_error(path, exc_type=tinyface.ModelError, loader=tinyface.load):
    """Loading ``path`` raises ``exc_type`` with a one-line message naming the file."""
    with pytest.raises(exc_type) as info:
        loader(path)
    msg = str(info.value)
    assert isinstance(info.value, tinyface.ModelError)
    assert "\n" not in msg
    assert str(path) in msg, msg
    return msg


def small_model(seed=0):
    """conv 3x3 -> BN -> relu with a few weights: enough to exercise external data."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 8)
    y = add_bn(g, y, rng, 8)
    y = g.add("Relu", [y])
    return g.build({"x": ["N", 3, 6, 6]}, [y])


# -- bad files -------------------------------------------------------------------

def test_missing_file(tmp_path):
    msg = assert_model_error(tmp_path / "nope.onnx")
    assert "not found" in msg


def test_missing_file_given_as_str(tmp_path):
    assert_model_error(str(tmp_path / "nope.onnx"))


def test_directory(tmp_path):
    msg = assert_model_error(tmp_path)
    assert "directory" in msg


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    msg = assert_model_error(p)
    assert "empty" in msg


@pytest.fixture(scope="module")
def bundled_bytes():
    return BUNDLED.read_bytes()


@pytest.mark.parametrize("cut", [1, 16, 1000, 100_000, 0.5, -1, -4, -5000])
def test_truncated_model(tmp_path, bundled_bytes, cut):
    n = len(bundled_bytes)
    keep = int(n * cut) if isinstance(cut, float) else (cut if cut > 0 else n + cut)
    p = tmp_path / "cut.onnx"
    p.write_bytes(bundled_bytes[:keep])
    assert_model_error(p)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    p = tmp_path / "random.onnx"
    p.write_bytes(np.random.default_rng(seed).bytes(4096))
    assert_model_error(p)


@pytest.mark.parametrize("text", ["hello, this is not a model\n" * 20, '{"graph": []}', "ir_version: 8\n"])
def test_text_file(tmp_path, text):
    p = tmp_path / "model.onnx"
    p.write_text(text)
    assert_model_error(p)


def test_image_file_is_not_a_model(tmp_path):
    p = tmp_path / "face.onnx"
    shutil.copy(Path(__file__).parent / "data" / "lfw_0_fn_0_aligned.jpg", p)
    assert_model_error(p)


def test_graph_with_no_nodes(tmp_path):
    vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    p = tmp_path / "nonodes.onnx"
    onnx.save(make_model(helper.make_graph([], "g", [vi], [vi]), 13), p)
    assert_model_error(p)


def test_graph_with_nothing(tmp_path):
    p = tmp_path / "nothing.onnx"
    onnx.save(make_model(helper.make_graph([], "g", [], []), 13), p)
    assert_model_error(p)


def test_graph_with_no_nodes_in_memory():
    vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    with pytest.raises(tinyface.ModelError):
        tinyface.load(make_model(helper.make_graph([], "g", [vi], [vi]), 13))


@pytest.mark.parametrize("opset", [5, 99])
def test_opset_out_of_range(tmp_path, opset):
    g = GraphBuilder(opset)
    y = g.add("Relu", ["x"])
    p = tmp_path / "m.onnx"
    onnx.save(g.build({"x": ["N", 3]}, [y]), p)
    msg = assert_model_error(p, tinyface.UnsupportedOpError)
    assert str(opset) in msg


def test_foreign_operator_domain(tmp_path):
    model = small_model()
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    p = tmp_path / "m.onnx"
    onnx.save(model, p)
    msg = assert_model_error(p, tinyface.UnsupportedOpError)
    assert "com.example" in msg


def test_undecodable_initializer(tmp_path):
    model = small_model()
    t = model.graph.initializer[0]
    t.raw_data = t.raw_data[:-4]            # one float short of its shape
    p = tmp_path / "m.onnx"
    onnx.save(model, p)
    msg = assert_model_error(p)
    assert t.name in msg


def test_read_model_errors_too(tmp_path):
    assert_model_error(tmp_path / "nope.onnx", loader=read_model)


def test_bundled_model_reads(bundled_bytes):
    graph = read_model(BUNDLED)
    assert [v.name for v in graph.inputs] == ["input0"]
    assert graph.inputs[0].shape == (1, 3, 112, 112)
    assert graph.opset == 18
    # an in-memory ModelProto gives the same graph
    graph2 = read_model(onnx.load_model_from_string(bundled_bytes))
    assert len(graph2.nodes) == len(graph.nodes)
    assert sorted(graph2.constants) == sorted(graph.constants)


# -- external data ---------------------------------------------------------------

def save_external(model, folder, location="weights.bin"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    copy = onnx.ModelProto()
    copy.CopyFrom(model)                  # save_model moves the tensors out of the proto it is given
    onnx.save_model(copy, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


def relocate(src, dst, location):
    """Copy the .onnx at ``src`` to ``dst`` with every external location set to ``location``."""
    m = onnx.load(src, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(m, dst)
    return dst


@pytest.fixture
def external(tmp_path):
    model = small_model()
    path = save_external(model, tmp_path / "ext")
    assert (tmp_path / "ext" / "weights.bin").stat().st_size > 0
    stored = onnx.load(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)
    return model, path


def test_external_data_loads_and_matches_in_file_model(external):
    model, path = external
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    ours_ext = tinyface.load(path).run(x)[0]
    ours_in = tinyface.load(model).run(x)[0]
    np.testing.assert_array_equal(ours_ext, ours_in)
    np.testing.assert_allclose(ours_ext, ort_run(model, {"x": x})[0], atol=1e-4)


def test_external_data_constants_equal_in_file_constants(external):
    model, path = external
    a, b = read_model(path).constants, read_model(model).constants
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_external_data_in_subfolder_is_fine(external):
    _, path = external
    (path.parent / "sub").mkdir()
    shutil.copy(path.parent / "weights.bin", path.parent / "sub" / "w.bin")
    relocate(path, path.parent / "m2.onnx", "sub/w.bin")
    tinyface.load(path.parent / "m2.onnx")


@pytest.mark.parametrize("location", ["../x.bin", "sub/../../x.bin", "ABSOLUTE", ""])
def test_external_location_escaping_folder_is_refused(external, location):
    _, path = external
    outside = path.parent.parent / "x.bin"
    shutil.copy(path.parent / "weights.bin", outside)     # the file exists: refusal is on principle
    (path.parent / "sub").mkdir()
    if location == "ABSOLUTE":
        location = str(outside)
    bad = relocate(path, path.parent / "bad.onnx", location)
    msg = assert_model_error(bad)
    assert "refused" in msg or "escapes" in msg


def test_external_symlink_out_of_folder_is_refused(external):
    _, path = external
    outside = path.parent.parent / "x.bin"
    shutil.copy(path.parent / "weights.bin", outside)
    try:
        os.symlink(outside, path.parent / "link.bin")
    except OSError:
        pytest.skip("no symlinks here")
    assert_model_error(relocate(path, path.parent / "bad.onnx", "link.bin"))


def test_external_file_missing(external):
    _, path = external
    (path.parent / "weights.bin").unlink()
    msg = assert_model_error(path)
    assert "weights.bin" in msg and "not found" in msg


def test_external_file_truncated(external):
    _, path = external
    data = (path.parent / "weights.bin").read_bytes()
    (path.parent / "weights.bin").write_bytes(data[:len(data) // 2])
    msg = assert_model_error(path)
    assert "truncated" in msg


def test_external_file_is_a_directory(external):
    _, path = external
    (path.parent / "weights.bin").unlink()
    (path.parent / "weights.bin").mkdir()
    assert_model_error(path)


def test_external_length_not_matching_shape(external):
    _, path = external
    m = onnx.load(path, load_external_data=False)
    t = m.graph.initializer[0]
    for e in t.external_data:
        if e.key == "length":
            e.value = str(int(e.value) - 4)
    onnx.save(m, path)
    msg = assert_model_error(path)
    assert t.name in msg


def test_external_data_in_memory_proto_is_refused(external):
    _, path = external
    proto = onnx.load(path, load_external_data=False)
    with pytest.raises(tinyface.ModelError) as info:
        tinyface.load(proto)
    assert "external" in str(info.value) and "\n" not in str(info.value)


def test_external_data_via_cli_inspect(external, capsys):
    from tinyface.cli.main import main
    _, path = external
    assert main(["inspect", str(path)]) == 0
    assert "total:" in capsys.readouterr().out


# -- constants -------------------------------------------------------------------

def test_unused_initializers_are_ignored():
    rng = np.random.default_rng(2)
    g = GraphBuilder(13)
    y = add_conv(g, "x", rng, 3, 4)
    y = g.add("Relu", [y])
    g.const(rng.standard_normal((40, 40)), name="unused_f32")
    g.const(rng.integers(0, 9, (3, 3)), name="unused_i64", dtype=np.int64)
    g.const(rng.standard_normal(5), name="unused_f64", dtype=np.float64)
    g.initializers.append(numpy_helper.from_array(np.array([b"a", b"bc"], dtype=object), "unused_str"))
    model = g.build({"x": ["N", 3, 5, 5]}, [y])
    graph = read_model(model)
    assert not any(k.startswith("unused") for k in graph.constants)
    check_against_ort(model)


def test_initializers_listed_as_graph_inputs_are_constants():
    """Old exporters (keep_initializers_as_inputs) list every weight as a graph input."""
    rng = np.random.default_rng(3)
    g = GraphBuilder(9)
    y = add_conv(g, "x", rng, 3, 4)
    y = add_bn(g, y, rng, 4)
    model = g.build({"x": ["N", 3, 5, 5]}, [y])
    for t in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    engine = tinyface.load(model)
    assert engine.input_names == ["x"]
    check_against_ort(model, engine=engine)


def test_constant_nodes_value_value_float_value_ints():
    rng = np.random.default_rng(4)
    g = GraphBuilder(13)
    mean = g.constant_node(value=np.array([0.5, -0.25, 0.125], np.float32).reshape(1, 3, 1, 1))
    two = g.constant_node(value_float=2.0)
    y = g.add("Sub", ["x", mean])
    y = g.add("Mul", [y, two])
    y = add_conv(g, y, rng, 3, 4)
    lo = g.constant_node(value_float=-0.5)
    hi = g.constant_node(value=np.array(0.75, np.float32))
    y = g.add("Clip", [y, lo, hi])
    target = g.constant_node(value_ints=[0, -1])
    y = g.add("Reshape", [y, target])
    axes = g.constant_node(value_ints=[2])
    y = g.add("Unsqueeze", [y, axes])
    model = g.build({"x": ["N", 3, 5, 5]}, [y])
    graph = read_model(model)
    assert np.asarray(graph.constants[two]).dtype == np.float32
    assert np.asarray(graph.constants[target]).dtype == np.int64
    assert not any(n.op == "Constant" for n in graph.nodes)
    check_against_ort(model)


def test_constant_node_value_int_and_floats():
    g = GraphBuilder(13)
    scale = g.constant_node(value_floats=[1.0, 2.0, 3.0])
    y = g.add("Reshape", [scale, g.constant_node(value_ints=[3, 1, 1])])
    y = g.add("Mul", ["x", y])
    zero = g.constant_node(value_int=0)
    shape = g.add("Shape", ["x"])
    batch = g.add("Gather", [shape, zero], axis=0)
    batch = g.add("Unsqueeze", [batch, g.constant_node(value_ints=[0])])
    target = g.add("Concat", [batch, g.constant_node(value_ints=[-1])], axis=0)
    y = g.add("Reshape", [y, target])
    check_against_ort(g.build({"x": ["N", 3, 4, 4]}, [y]))


def test_constant_node_without_supported_value():
    g = GraphBuilder(13)
    s = g.constant_node(value_strings=["a"])
    g.nodes[-1].name = "the_strings"
    y = g.add("Identity", [s])
    z = g.add("Relu", ["x"])
    with pytest.raises(tinyface.UnsupportedOpError) as info:
        tinyface.load(g.build({"x": ["N", 3]}, [z, y]))
    assert "the_strings" in str(info.value)
