"""Seeded weights, .npz loading and its errors, and the state_dict converter."""
import subprocess
import sys
from functools import lru_cache

import numpy as np
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tinyface.errors import ModelError, TinyfaceError
from tinyface.models import build, spec
from tinyface.models import weights as W
from tinyface.models.convert_state_dict import convert, main

BN = ("weight", "bias", "running_mean", "running_var")


@lru_cache(maxsize=None)
def seeded(arch, seed=0):
    arrays = W.seeded(spec(arch), seed)
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def embed(model, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


X = np.random.default_rng(3).standard_normal((2, 3, 112, 112)).astype(np.float32)


@lru_cache(maxsize=None)
def seeded_output(arch):
    return embed(build(arch, weights=seeded(arch)), X)


def test_seeded_weights_are_those_of_build_with_a_seed():
    model = build("mobilefacenet-s", (32, 32), seed=3)
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for k, v in W.seeded(spec("mobilefacenet-s", (32, 32)), 3).items():
        assert np.array_equal(arrays[k].reshape(v.shape), v), k


def test_expected_names_follow_the_documented_scheme():
    names = W.expected_shapes(spec("mobilefacenet"))
    assert list(names)[:6] == ["conv1.weight", "conv1.bn.weight", "conv1.bn.bias",
                               "conv1.bn.running_mean", "conv1.bn.running_var", "conv1.prelu.weight"]
    assert names["conv1.weight"] == (64, 3, 3, 3)
    assert names["conv2_dw.weight"] == (64, 1, 3, 3)
    assert names["blocks.0.expand.weight"] == (128, 64, 1, 1)
    assert names["blocks.14.project.bn.running_var"] == (128,)
    assert "blocks.14.project.prelu.weight" not in names
    assert names["gdconv.weight"] == (512, 1, 7, 7)
    assert names["linear.weight"] == (128, 512, 1, 1)
    flipped = W.expected_shapes(spec("flipped-mobiface"))
    assert flipped["fc.weight"] == (512, 25088) and flipped["flip.fc2.bias"] == (512,)
    assert not any("prelu" in k for k in W.expected_shapes(spec("mobiface", activation="relu")))


def test_seeded_statistics_are_realistic():
    w = seeded("mobilefacenet")
    gammas = np.concatenate([v for k, v in w.items() if k.endswith("bn.weight")])
    slopes = np.concatenate([v for k, v in w.items() if k.endswith("prelu.weight")])
    variances = np.concatenate([v for k, v in w.items() if k.endswith("running_var")])
    means = np.concatenate([v for k, v in w.items() if k.endswith("running_mean")])
    assert abs(gammas.mean() - 1) < 0.01 and gammas.std() < 0.1
    assert slopes.min() >= 0.2 and slopes.max() <= 0.3
    assert variances.min() > 0 and not np.allclose(variances, 1) and np.abs(means).max() > 0.01
    assert all(v.dtype == np.float32 for v in w.values())


def test_npz_round_trip_gives_identical_outputs(tmp_path):
    path = tmp_path / "mfn.npz"
    W.save(path, seeded("mobilefacenet"))
    model = build("mobilefacenet", weights=path)
    assert {p.key: p.value for p in model.metadata_props}["tinyface.weights"] == "file:mfn.npz"
    assert np.array_equal(embed(model, X), seeded_output("mobilefacenet"))
    assert np.array_equal(embed(build("mobilefacenet", weights=dict(seeded("mobilefacenet"))), X),
                          seeded_output("mobilefacenet"))


def _load_error(weights, arch="mobilefacenet"):
    with pytest.raises(ModelError) as info:
        build(arch, weights=weights)
    return str(info.value)


def test_missing_wrong_shape_bad_and_extra_keys_are_all_reported():
    w = dict(seeded("mobilefacenet"))
    del w["blocks.3.dw.bn.running_var"]
    w["conv1.weight"] = np.zeros((64, 3, 5, 5), np.float32)
    w["gdconv.bn.bias"] = np.full(512, np.nan, np.float32)
    w["linear.bn.running_var"] = -np.ones(128, np.float32)
    w["fc.weight"] = np.zeros((3, 3), np.float32)
    message = _load_error(w)
    assert "missing: blocks.3.dw.bn.running_var" in message
    assert "conv1.weight expected (64, 3, 3, 3) got (64, 3, 5, 5)" in message
    assert "gdconv.bn.bias has NaN or inf" in message
    assert "linear.bn.running_var has negative variances" in message
    assert "unexpected: fc.weight" in message


def test_weights_of_another_variant_are_refused():
    message = _load_error(dict(seeded("mobilefacenet")), arch="mobilefacenet-m")
    assert "unexpected: linear.weight" in message and "mobilefacenet-m" in message


def test_unreadable_files(tmp_path):
    assert "not found" in _load_error(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    assert "cannot read weights file" in _load_error(junk)
    with pytest.raises(TinyfaceError, match="mapping"):
        build("mobilefacenet", weights=42)


def insightface_state_dict(w):
    """tinyface weights renamed to TreB1eN/InsightFace_Pytorch's MobileFaceNet state_dict,
    written out here by hand from that repository's model.py, in its module order."""
    sd = {}

    def block(src, dst, prelu=True):
        sd[f"{dst}.conv.weight"] = w[f"{src}.weight"]
        for k in BN:
            sd[f"{dst}.bn.{k}"] = w[f"{src}.bn.{k}"]
        sd[f"{dst}.bn.num_batches_tracked"] = np.array(1000, np.int64)
        if prelu:
            sd[f"{dst}.prelu.weight"] = w[f"{src}.prelu.weight"]

    block("conv1", "conv1")
    block("conv2_dw", "conv2_dw")
    modules = (["conv_23"] + [f"conv_3.model.{i}" for i in range(4)] + ["conv_34"]
               + [f"conv_4.model.{i}" for i in range(6)] + ["conv_45"]
               + [f"conv_5.model.{i}" for i in range(2)])
    for i, m in enumerate(modules):
        block(f"blocks.{i}.expand", f"{m}.conv")
        block(f"blocks.{i}.dw", f"{m}.conv_dw")
        block(f"blocks.{i}.project", f"{m}.project", prelu=False)
    block("conv3", "conv_6_sep")
    block("gdconv", "conv_6_dw", prelu=False)
    sd["linear.weight"] = w["linear.weight"].reshape(128, 512)     # nn.Linear(512, 128, bias=False)
    for k in BN:                                                    # nn.BatchNorm1d(128)
        sd[f"bn.{k}"] = w[f"linear.bn.{k}"]
    sd["bn.num_batches_tracked"] = np.array(1000, np.int64)
    return sd


@pytest.mark.parametrize("naming", ["insightface", "order"])
def test_converting_an_insightface_state_dict_reproduces_the_model(tmp_path, naming):
    source, out = tmp_path / "sd.npz", tmp_path / "tinyface.npz"
    np.savez(source, **insightface_state_dict(seeded("mobilefacenet")))
    assert main([str(source), str(out), "--arch", "mobilefacenet", "--naming", naming]) == 0
    assert np.array_equal(embed(build("mobilefacenet", weights=out), X), seeded_output("mobilefacenet"))


def test_order_naming_works_for_any_names():
    w = seeded("flipped-mobiface")
    opaque = {f"module_{i:03d}": v for i, v in enumerate(w.values())}
    converted = convert(opaque, spec("flipped-mobiface"), "order")
    assert list(converted) == list(w)
    assert all(np.array_equal(converted[k], w[k]) for k in w)


def test_converter_errors_name_the_arrays_and_shapes():
    sd = insightface_state_dict(seeded("mobilefacenet"))
    net = spec("mobilefacenet")
    swapped = dict(sd)
    swapped["conv1.conv.weight"], swapped["conv2_dw.conv.weight"] = sd["conv2_dw.conv.weight"], sd["conv1.conv.weight"]
    with pytest.raises(ModelError, match=r"conv1.conv.weight has shape \(64, 1, 3, 3\), but conv1.weight needs \(64, 3, 3, 3\)"):
        convert(swapped, net, "insightface")
    with pytest.raises(ModelError, match="source has no conv_5.model.1.project.bn.bias"):
        convert({k: v for k, v in sd.items() if k != "conv_5.model.1.project.bn.bias"}, net, "insightface")
    with pytest.raises(ModelError, match="not used by mobilefacenet: head.weight"):
        convert({**sd, "head.weight": np.zeros(3)}, net, "insightface")
    with pytest.raises(ModelError, match="282 arrays .* 283 weights"):
        convert(dict(list(sd.items())[1:]), net, "order")
    with pytest.raises(ModelError, match="insightface naming covers mobilefacenet only"):
        convert(sd, spec("mobiface"), "insightface")
    # a misordered BN (bias where running_var belongs) is caught by the value checks
    keys = list(sd)
    i = keys.index("conv1.bn.bias")
    reordered = dict(sd)
    reordered[keys[i]], reordered[keys[i + 2]] = sd[keys[i + 2]], -np.abs(sd[keys[i]]) - 1
    with pytest.raises(ModelError, match="conv1.bn.running_var has negative variances"):
        convert(reordered, net, "order")


def test_converter_command_line(tmp_path):
    source, out = tmp_path / "sd.npz", tmp_path / "out.npz"
    np.savez(source, **insightface_state_dict(seeded("mobilefacenet")))
    done = subprocess.run([sys.executable, "-m", "tinyface.models.convert_state_dict", str(source),
                           str(out), "--arch", "mobilefacenet", "--naming", "insightface"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 283 arrays for mobilefacenet" in done.stdout
    assert np.array_equal(W.read_npz(out)["conv1.weight"], seeded("mobilefacenet")["conv1.weight"])
    assert main([str(source), str(out), "--arch", "mobiface"]) == 1
