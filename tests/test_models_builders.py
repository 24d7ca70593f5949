"""The ONNX builders of tinyface.models, checked with onnx.checker and onnxruntime."""
from functools import lru_cache

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from tinyface.errors import TinyfaceError
from tinyface.models import ARCHITECTURES, build, spec
from tinyface.models import forward

EMBEDDING = {"mobilefacenet": 128, "mobilefacenet-m": 512, "mobilefacenet-s": 128,
             "mobiface": 512, "flipped-mobiface": 512}


def model_bytes(arch, input_size=(112, 112), activation="prelu") -> bytes:
    """The seed-0 model, built once per test session."""
    return _model_bytes(arch, tuple(input_size), activation)


@lru_cache(maxsize=None)
def _model_bytes(arch, input_size, activation):
    return build(arch, input_size, activation=activation).SerializeToString()


def model(arch, input_size=(112, 112), activation="prelu") -> onnx.ModelProto:
    return onnx.load_from_string(model_bytes(arch, input_size, activation))


@lru_cache(maxsize=None)
def session(data: bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run(data: bytes, x: np.ndarray, outputs=None):
    return session(data).run(outputs, {"input": x})


def images(n, h=112, w=112, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 3, h, w)).astype(np.float32)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_graph_is_valid_onnx_with_named_io_and_metadata(arch):
    m = model(arch)
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == 13
    (inp,), (out,) = m.graph.input, m.graph.output
    assert inp.name == "input" and out.name == "embedding"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, 112, 112]
    assert inp.type.tensor_type.elem_type == TensorProto.FLOAT
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["tinyface.architecture"] == arch
    assert meta["tinyface.input_size"] == "112x112"
    assert meta["tinyface.mean"] == "127.5,127.5,127.5"
    assert meta["tinyface.std"] == "128,128,128"
    assert meta["tinyface.embedding_size"] == str(EMBEDDING[arch])
    ops = {n.op_type for n in m.graph.node}
    assert {"Conv", "BatchNormalization", "PRelu"} <= ops


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_output_shape_for_batch_1_and_4_and_stable_activations(arch):
    for n in (1, 4):
        (y,) = run(model_bytes(arch), images(n))
        assert y.shape == (n, EMBEDDING[arch]) and y.dtype == np.float32
    # seeded weights keep activations O(1) through the whole depth
    assert np.all(np.isfinite(y)) and 0.1 <= y.std() <= 10
    # image-like input too: (pixel - 127.5) / 128 of uniform random pixels
    pixels = np.random.default_rng(2).integers(0, 256, (4, 3, 112, 112))
    (y,) = run(model_bytes(arch), ((pixels - 127.5) / 128).astype(np.float32))
    assert np.all(np.isfinite(y)) and 0.1 <= y.std() <= 10


@pytest.mark.parametrize("arch", ["mobilefacenet", "mobiface"])
def test_relu_variant(arch):
    m = model(arch, activation="relu")
    ops = [n.op_type for n in m.graph.node]
    assert "PRelu" not in ops and "Relu" in ops
    assert not any("prelu" in t.name for t in m.graph.initializer)
    (y,) = run(model_bytes(arch, activation="relu"), images(2))
    assert y.shape == (2, EMBEDDING[arch]) and np.all(np.isfinite(y)) and 0.1 <= y.std() <= 10


@pytest.mark.parametrize("size, kernel", [((112, 96), [7, 6]), ((96, 96), [6, 6])])
def test_smaller_inputs_use_the_final_map_as_gdconv_kernel(size, kernel):
    m = model("mobilefacenet", size)
    gd = next(n for n in m.graph.node if n.name == "gdconv.conv/Conv")
    assert list(helper.get_attribute_value(next(a for a in gd.attribute if a.name == "kernel_shape"))) == kernel
    assert {p.key: p.value for p in m.metadata_props}["tinyface.input_size"] == f"{size[0]}x{size[1]}"
    (y,) = run(model_bytes("mobilefacenet", size), images(3, *size))
    assert y.shape == (3, 128) and np.all(np.isfinite(y))


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    assert build("mobilefacenet").SerializeToString() == model_bytes("mobilefacenet")
    small = build("flipped-mobiface", (32, 32), seed=7).SerializeToString()
    assert small == build("flipped-mobiface", (32, 32), seed=7).SerializeToString()
    assert small != build("flipped-mobiface", (32, 32), seed=8).SerializeToString()


def test_flipped_mobiface_outputs_the_mean_of_its_two_heads():
    m = model("flipped-mobiface")
    m.graph.output.extend([helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 512])
                           for name in ("fc", "flip.fc2")])
    y, e, f = run(m.SerializeToString(), images(4), ["embedding", "fc", "flip.fc2"])
    np.testing.assert_allclose(y, (e + f) / 2, rtol=1e-6, atol=1e-7)
    assert not np.allclose(e, f)
    # f is ReLU(FC2(ReLU(FC1(e)))) with the graph's own weights
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    h = np.maximum(e @ w["flip.fc1.weight"].T + w["flip.fc1.bias"], 0)
    np.testing.assert_allclose(f, np.maximum(h @ w["flip.fc2.weight"].T + w["flip.fc2.bias"], 0),
                               rtol=1e-4, atol=1e-5)
    # and e is plain MobiFace with the same seed
    (e_alone,) = run(model_bytes("mobiface"), images(4))
    assert e_alone.shape == e.shape


@pytest.mark.parametrize("arch, activation", [("mobilefacenet", "prelu"), ("mobilefacenet-s", "relu"),
                                              ("flipped-mobiface", "prelu")])
def test_onnx_graph_matches_the_numpy_reference(arch, activation):
    """The graph builder and the float64 NumPy reference share only the layer list."""
    m = model(arch, activation=activation)
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    w = {k: v.reshape(-1) if k.endswith("prelu.weight") else v for k, v in w.items()}
    x = images(2, seed=5)
    (y,) = run(model_bytes(arch, activation=activation), x)
    expected = forward.forward(spec(arch, activation=activation), w, x)[spec(arch).output]
    np.testing.assert_allclose(y, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_unknown_architecture_names_the_choices():
    with pytest.raises(TinyfaceError, match="unknown architecture 'resnet'.*mobilefacenet"):
        build("resnet")


@pytest.mark.parametrize("size", [(100, 100), (112, 8), (0, 112), (-16, 112), (112,), "big",
                                  (112.0, 112), (True, 112)])
def test_impossible_input_size(size):
    with pytest.raises(TinyfaceError, match="input size"):
        build("mobilefacenet", size)


def test_unknown_activation():
    with pytest.raises(TinyfaceError, match="activation 'gelu'"):
        build("mobiface", activation="gelu")


@settings(max_examples=25, deadline=None)
@given(arch=st.sampled_from(list(ARCHITECTURES)), h=st.integers(1, 300), w=st.integers(1, 300))
def test_any_input_size_is_either_built_exactly_or_refused(arch, h, w):
    """Multiples of 16 give a final map of exactly H/16 x W/16; anything else is refused."""
    if h % 16 or w % 16:
        with pytest.raises(TinyfaceError, match="multiples of 16"):
            spec(arch, (h, w))
        return
    net = spec(arch, (h, w))
    last_conv = "gdconv" if arch.startswith("mobilefacenet") else "conv3"
    before = next(layer for layer in net.layers if layer.name == last_conv).input
    assert net.shapes[before][1:] == (h // 16, w // 16)
    assert net.embedding_size == EMBEDDING[arch]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None.__class__])
def test_bad_seed(seed):
    with pytest.raises(TinyfaceError, match="seed"):
        build("mobilefacenet-s", (16, 16), seed=seed)
