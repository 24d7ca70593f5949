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


# -- found by the fuzzer (tests/test_fuzz_models.py) ----------------------------------------

def _entry(model_path, key, value, tensor=0):
    """Set external-data entry ``key`` of initialiser ``tensor`` in the saved model."""
    m = onnx.load(model_path, load_external_data=False)
    t = m.graph.initializer[tensor]
    for e in t.external_data:
        if e.key == key:
            e.value = value
            break
    else:
        t.external_data.add(key=key, value=value)
    onnx.save(m, model_path)
    return t.name


@pytest.mark.parametrize("value", ["-8", "abc", "1e3", str(2**70)])
def test_external_offset_not_a_usable_number(external, value):
    """Before: -8 raised OSError from seek, 'abc' ValueError, 2^70 'cannot fit int'."""
    _, path = external
    name = _entry(path, "offset", value)
    msg = assert_model_error(path)
    assert name in msg and ("non-negative integer" in msg or "truncated" in msg)


def test_external_length_not_a_number(external):
    _, path = external
    _entry(path, "length", "abc")
    assert "non-negative integer" in assert_model_error(path)


def _set_dims(model_path, dims, tensor=0):
    m = onnx.load(model_path, load_external_data=False)
    t = m.graph.initializer[tensor]
    del t.dims[:]
    t.dims.extend(dims)
    for k in reversed([k for k, e in enumerate(t.external_data) if e.key == "length"]):
        del t.external_data[k]
    onnx.save(m, model_path)
    return t.name


@pytest.mark.parametrize("dims", [[2**20, 2**20, 1, 1], [2**32, 2**32, 1, 1]])
def test_external_tensor_claiming_2_40_elements_is_refused_before_reading(external, dims):
    """Before: f.read(2^42 bytes) was attempted (MemoryError); 2^32 x 2^32 overflowed
    np.prod to 0 (ValueError from reshape)."""
    _, path = external
    name = _set_dims(path, dims)
    msg = assert_model_error(path)
    assert name in msg and "MAX_TENSOR_ELEMENTS" in msg


def test_external_tensor_with_negative_dims(external):
    """Before: ValueError 'read length must be non-negative'."""
    _, path = external
    _set_dims(path, [-8, 3, 3, 3])
    assert "negative dims" in assert_model_error(path)


def test_external_offset_past_the_end(external):
    _, path = external
    size = (path.parent / "weights.bin").stat().st_size
    _entry(path, "offset", str(size - 4))
    msg = assert_model_error(path)
    assert "truncated" in msg and f"the file has {size}" in msg


@pytest.mark.parametrize("data_type", [999, TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.INT4])
def test_external_tensor_of_an_unreadable_type(external, data_type):
    """Before: 999 raised KeyError."""
    _, path = external
    m = onnx.load(path, load_external_data=False)
    m.graph.initializer[0].data_type = data_type
    onnx.save(m, path)
    assert "tinyface does not read" in assert_model_error(path)


def test_external_symlink_loop(external):
    """Before: RuntimeError('Symlink loop') from Path.resolve."""
    _, path = external
    os.symlink(path.parent / "b.bin", path.parent / "a.bin")
    os.symlink(path.parent / "a.bin", path.parent / "b.bin")
    _entry(path, "location", "a.bin")
    assert "cannot be opened" in assert_model_error(path)


@pytest.mark.parametrize("location", ["weights.bin\0.txt", "a" * 5000])
def test_external_location_the_os_cannot_take(external, location):
    """Before: ValueError (embedded null byte), OSError (file name too long)."""
    _, path = external
    _entry(path, "location", location)
    assert "cannot be opened" in assert_model_error(path)


def test_external_symlink_to_a_directory_and_a_fifo(external):
    _, path = external
    (path.parent / "sub").mkdir()
    os.symlink(path.parent / "sub", path.parent / "link")
    _entry(path, "location", "link")
    assert "not a regular file" in assert_model_error(path)
    os.mkfifo(path.parent / "fifo")
    _entry(path, "location", "fifo")
    assert "not a regular file" in assert_model_error(path)        # and no hang reading it


def test_model_file_that_is_a_device_is_refused_without_reading():
    """Before: tinyface.load('/dev/zero') read forever."""
    msg = assert_model_error(Path("/dev/zero"))
    assert "not a regular file" in msg


@pytest.mark.parametrize("source", [123, [1, 2], 3.5])
def test_model_source_of_another_type(source):
    """Before: TypeError from Path()."""
    with pytest.raises(tinyface.ModelError, match="cannot read a model from"):
        tinyface.load(source)


@pytest.mark.parametrize("data_type", [TensorProto.COMPLEX64, TensorProto.INT4, TensorProto.FLOAT8E4M3FN,
                                       TensorProto.BFLOAT16, TensorProto.STRING, 999, 0])
def test_initializer_of_an_unreadable_type(data_type):
    """Before: INT4 raw data loaded as (garbage) weights; the others were refused with
    numpy's reshape message."""
    model = small_model()
    t = model.graph.initializer[0]
    t.data_type = data_type
    with pytest.raises(tinyface.ModelError, match=f"tensor '{t.name}' has data type"):
        tinyface.load(model)


def test_complex_weights_are_refused():
    """Before: loaded, the imaginary part silently dropped (a ComplexWarning)."""
    model = small_model()
    t = model.graph.initializer[0]
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * (1 + 1j), t.name))
    with pytest.raises(tinyface.ModelError, match="COMPLEX"):
        tinyface.load(model)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int64, np.int8])
def test_initializers_of_other_numeric_types_are_read(dtype):
    model = small_model()
    t = model.graph.initializer[0]
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(dtype), t.name))
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32)
    assert tinyface.load(model).run(x)[0].shape == (1, 8, 6, 6)


@pytest.mark.parametrize("dims", [[2**20, 2**20, 1, 1], [2**32, 2**32, 1, 1], [-8, 3, 3, 3]])
def test_inline_tensor_dims_are_checked_before_decoding(dims):
    """Refused by the dims alone (the limit named), not by a failed reshape of the data."""
    model = small_model()
    t = model.graph.initializer[0]
    del t.dims[:]
    t.dims.extend(dims)
    with pytest.raises(tinyface.ModelError, match="MAX_TENSOR_ELEMENTS|negative dims"):
        tinyface.load(model)


@pytest.mark.parametrize("where", ["input", "output"])
def test_value_of_unknown_element_type(where):
    """Before: KeyError from onnx.helper."""
    model = small_model()
    getattr(model.graph, where)[0].type.tensor_type.elem_type = 999
    with pytest.raises(tinyface.ModelError, match="unknown element type 999"):
        tinyface.load(model)


def _two_writers():
    """Conv -> y; Relu(y) -> z; Conv(z) -> y again, never read: not single assignment."""
    g = GraphBuilder(13)
    g.add("Conv", ["x", g.const(np.ones((4, 3, 1, 1)))], outputs=["y"])
    g.add("Relu", ["y"], outputs=["z"])
    g.add("Conv", ["z", g.const(np.ones((4, 4, 1, 1)))], outputs=["y"])
    return g.build({"x": ["N", 3, 4, 4]}, ["z"])


def test_value_written_by_two_nodes():
    """Before: the fuser merged the Relu into the second conv, a step reading its own
    output: KeyError at run time."""
    with pytest.raises(tinyface.ModelError, match="value 'y' is defined twice"):
        tinyface.load(_two_writers())


def test_node_writing_a_graph_input():
    g = GraphBuilder(13)
    g.add("Relu", ["x"], outputs=["x"])
    with pytest.raises(tinyface.ModelError, match="value 'x' is defined twice"):
        tinyface.load(g.build({"x": ["N", 3]}, ["x"]))


@pytest.mark.parametrize("what", ["initializer", "input", "output"])
def test_listed_twice(what):
    """Before: a repeated graph input made every run an InputError; a repeated output or
    initialiser was accepted."""
    g = GraphBuilder(13)
    y = g.add("Add", ["x", g.const(np.ones(3))])
    model = g.build({"x": ["N", 3]}, [y])
    items = getattr(model.graph, what)
    items.add().CopyFrom(items[0])
    with pytest.raises(tinyface.ModelError, match="twice"):
        tinyface.load(model)


def test_node_in_a_foreign_domain():
    """Before: a Relu in domain 'com.example' ran as ONNX's Relu."""
    model = small_model()
    model.graph.node[-1].domain = "com.example"
    with pytest.raises(tinyface.UnsupportedOpError, match="com.example"):
        tinyface.load(model)


def test_constant_node_without_output():
    """Before: IndexError."""
    g = GraphBuilder(13)
    g.nodes.append(helper.make_node("Constant", [], [], name="k", value_float=1.0))
    with pytest.raises(tinyface.ModelError, match="Constant node 'k'"):
        tinyface.load(g.build({"x": ["N", 3]}, [g.add("Relu", ["x"])]))


def _node_with(change):
    model = small_model()
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    change(conv)
    return model


def _drop_attribute_name(conv):
    next(a for a in conv.attribute if a.name == "pads").name = ""


@pytest.mark.parametrize("change, words", [
    (_drop_attribute_name, "name"),
    (lambda n: n.input.append(n.input[1]), "input size"),
    (lambda n: n.attribute.add(name="bogus", type=onnx.AttributeProto.INT, i=1), "bogus"),
    (lambda n: n.attribute.add(name="weird"), "type")])
def test_node_against_its_op_schema(change, words):
    """Before: each of these loaded (an unnamed or mistagged pads fell back to no padding,
    a fourth input and an unknown attribute were ignored)."""
    with pytest.raises(tinyface.ModelError, match=words):
        tinyface.load(_node_with(change))


def test_attribute_whose_type_tag_does_not_match_its_value():
    """Before: LeakyRelu's alpha tagged INT was read as the (unset) int 0: a ReLU."""
    g = GraphBuilder(13)
    y = g.add("LeakyRelu", ["x"], alpha=0.1)
    model = g.build({"x": ["N", 3]}, [y])
    model.graph.node[0].attribute[0].type = onnx.AttributeProto.INT
    with pytest.raises(tinyface.ModelError, match="mismatch"):
        tinyface.load(model)


def test_concat_without_its_required_axis():
    """Before: axis 0 was assumed."""
    g = GraphBuilder(13)
    target = g.add("Concat", [g.const([0], dtype=np.int64), g.const([-1], dtype=np.int64)])
    y = g.add("Reshape", ["x", target])
    with pytest.raises(tinyface.ModelError, match="Required attribute 'axis'"):
        tinyface.load(g.build({"x": ["N", 3, 2]}, [y]))


@pytest.mark.parametrize("where", ["op_type", "node name", "attribute", "input", "metadata"])
def test_names_that_are_not_utf8(where):
    """Protobuf hands a string field that is not UTF-8 over as bytes.  Before: an attribute
    so named was ignored (pads: no padding), a metadata key was a TypeError from
    str.startswith, a node name loaded.  The schema check of this round then met such an op
    type with a TypeError (onnx.defs) and an attribute name with a UnicodeDecodeError
    (onnx.checker): the 10x fuzz run found both."""
    model = small_model()
    model.metadata_props.add(key="tinyface.zz", value="1")
    data = model.SerializeToString()
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    old = {"op_type": b"\x22\x04Conv", "node name": node.name.encode(), "attribute": b"pads",
           "input": node.input[0].encode(), "metadata": b"tinyface.zz"}[where]   # 0x22 0x04: field 4, 4 bytes
    assert old in data
    with pytest.raises(tinyface.ModelError, match="is not valid UTF-8 text"):
        tinyface.load(data.replace(old, old[:-1] + b"\xff", 1))
