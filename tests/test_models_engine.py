"""The papers' architectures (tinyface.models) run on tinyface's engine.

Each builder's ONNX graph (Conv + unfolded BatchNorm + PReLU, seeded
weights) is run by tinyface and by onnxruntime at batch 1 and 4, on random
inputs and on real aligned faces.  Tolerance: cosine similarity >= 0.99999
per embedding (and max abs <= 1e-3).
"""
from pathlib import Path

import numpy as np
import pytest

import tinyface
from tinyface.models import build

FACES = sorted((Path(__file__).parent / "data/lfw-hard-pairs").glob("*.jpg"))[:4]
CASES = [("mobilefacenet", (112, 112)), ("mobilefacenet", (112, 96)), ("mobilefacenet", (96, 96)),
         ("mobilefacenet-m", (112, 112)), ("mobilefacenet-s", (112, 112)),
         ("mobiface", (112, 112)), ("flipped-mobiface", (112, 112))]


def cosines(a, b):
    return np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module", params=CASES, ids=[f"{a}-{h}x{w}" for a, (h, w) in CASES])
def built(request):
    arch, size = request.param
    proto = build(arch, input_size=size, seed=1)
    return arch, size, proto, tinyface.load(proto)


def onnxruntime_outputs(proto, x):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 4])
def test_matches_onnxruntime_on_random_input(built, batch):
    arch, size, proto, model = built
    x = np.random.default_rng(batch).normal(size=(batch, 3) + size).astype(np.float32)
    ours, ref = model.run(x)[0], onnxruntime_outputs(proto, x)
    assert ours.shape == ref.shape
    assert cosines(ours, ref).min() >= 0.99999
    assert np.abs(ours - ref).max() <= 1e-3


@pytest.mark.slow
def test_matches_onnxruntime_on_real_faces(built):
    arch, size, proto, model = built
    with pytest.warns(UserWarning) if size != (112, 112) else _nothing():
        x = model.preprocess(FACES)          # the faces are 112x112: other sizes are resized
    ours, ref = model.run(x)[0], onnxruntime_outputs(proto, x)
    assert cosines(ours, ref).min() >= 0.99999


def test_exported_file_reloads_bit_identical(built, tmp_path):
    arch, size, proto, model = built
    path = tmp_path / f"{arch}.onnx"
    path.write_bytes(proto.SerializeToString())
    reloaded = tinyface.load(path)
    x = np.random.default_rng(7).normal(size=(2, 3) + size).astype(np.float32)
    assert np.array_equal(model.run(x)[0], reloaded.run(x)[0])
    assert reloaded.info.input_size == size


def test_metadata_gives_the_papers_normalisation(built):
    arch, size, proto, model = built
    assert model.info.mean == (127.5, 127.5, 127.5) and model.info.std == (128.0, 128.0, 128.0)
    assert model.info.input_size == size


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
