"""FaceModel (tinyface.load): the bundled MobileFaceNet (both exports) against onnxruntime.

Tolerance, per embedding: cosine similarity >= 0.99999 and max abs difference
<= 1e-3 (embeddings have norm ~18).  Golden outputs come from onnxruntime
(tests/make_golden.py) so the check runs without it; the live comparison
runs too when onnxruntime is installed (CI installs it).
"""
import csv
from pathlib import Path

import numpy as np
import pytest

import tinyface
from tinyface.kernels.quantized import qconv2d_quads, qgemm_quads
from tinyface.runtime.binders_quantized import QConvBinder
from tinyface.verify import cosine_similarity, threshold_for

DATA = Path(__file__).parent / "data"
FACES = DATA / "lfw-hard-pairs"
GOLDEN = np.load(DATA / "golden/mobilefacenet_lfw.npz")
MODELS = {"opset18": tinyface.paths.default_model_path(),
          "opset10": DATA / "models/mobilefacenet-relu6-opset10.onnx"}
COS_MIN, ABS_MAX = 0.99999, 1e-3


def assert_close(ours, ref):
    assert ours.shape == ref.shape
    for a, b in zip(ours, ref):
        assert cosine_similarity(a, b) >= COS_MIN
        assert np.abs(a - b).max() <= ABS_MAX


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    return request.param, tinyface.load(MODELS[request.param])


def test_default_model_is_the_bundled_opset18():
    m = tinyface.load()
    assert m.info.input_size == (112, 112) and m.info.embedding_size == 128
    assert m.info.mean == pytest.approx((123.675, 116.28, 103.53))


def test_all_faces_match_golden(model):
    key, m = model
    files = [FACES / n for n in GOLDEN["faces"]]
    assert_close(m.embed(files), GOLDEN[key])


def test_batch_1_and_8_agree_with_golden(model):
    key, m = model
    files = [FACES / n for n in GOLDEN["faces"][:8]]
    x = m.preprocess(files)
    batch8 = m.run(x)[0]
    singles = np.concatenate([m.run(x[i:i + 1])[0] for i in range(8)])
    assert_close(batch8, GOLDEN[key][:8])
    assert_close(singles, GOLDEN[key][:8])
    np.testing.assert_allclose(batch8, singles, atol=1e-5)


def test_verification_decisions_agree_with_golden():
    m = tinyface.load()
    threshold, _ = threshold_for(m)            # the one verify decides with
    index = {n: i for i, n in enumerate(GOLDEN["faces"])}
    emb = m.embed([FACES / n for n in GOLDEN["faces"]])
    with open(FACES / "pairs.csv") as f:
        for row in csv.DictReader(f):
            a, b = index[row["image_a"]], index[row["image_b"]]
            ours = cosine_similarity(emb[a], emb[b])
            ref = cosine_similarity(GOLDEN["opset18"][a], GOLDEN["opset18"][b])
            assert abs(ours - ref) < 1e-5
            assert (ours >= threshold) == (ref >= threshold)


def test_flip_averages_face_and_mirror():
    m = tinyface.load()
    face = FACES / GOLDEN["faces"][0]
    x = m.preprocess([face])
    mirror = np.ascontiguousarray(x[..., ::-1])
    expected = (m.run(x)[0] + m.run(mirror)[0]) / 2
    np.testing.assert_allclose(m.embed([face], flip=True), expected, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 8])
def test_live_onnxruntime_on_random_inputs(model, batch):
    ort = pytest.importorskip("onnxruntime")
    key, m = model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(MODELS[key]), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(batch).normal(size=(batch, 3, 112, 112)).astype(np.float32)
    ref = np.concatenate([sess.run(None, {"input0": x[i:i + 1]})[0] for i in range(batch)])
    assert_close(m.run(x)[0], ref)


def test_live_onnxruntime_on_faces(model):
    ort = pytest.importorskip("onnxruntime")
    key, m = model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(MODELS[key]), opts, providers=["CPUExecutionProvider"])
    x = m.preprocess([FACES / n for n in GOLDEN["faces"][:16]])
    ref = np.concatenate([sess.run(None, {"input0": x[i:i + 1]})[0] for i in range(16)])
    assert_close(m.run(x)[0], ref)



# -- the bundled 8-bit model (docs/int8.md) ------------------------------------------------

def test_the_int8_model_runs_on_integer_steps_with_its_own_threshold():
    m = tinyface.load(precision="int8")
    kinds = [st.kind for st in m.steps]
    assert sum(kind in ("qconv", "qdepthwise", "qpointwise") for kind in kinds) == 51       # every Conv
    assert not {"conv", "depthwise", "pointwise", "qadd"} & set(kinds)                     # the Adds fused
    threshold, calibration = threshold_for(m)
    assert threshold != threshold_for(tinyface.load())[0] and calibration["pairs"].startswith("pairsDevTrain")


def test_the_int8_models_gemms_and_dense_convs_take_the_quad_kernels():
    """Its pair-bounded weight scales (bench/quantize_int8.py) let every pointwise and dense
    conv run on the quad kernels; the depthwise convs keep 8-bit weights."""
    binders = [QConvBinder(st) for st in tinyface.load(precision="int8").steps if st.kind in ("qconv", "qpointwise")]
    assert len(binders) == 34 and all(b.gemm is qgemm_quads and b.conv is qconv2d_quads for b in binders)


def test_int8_embeddings_are_close_to_fp32():
    """On the test faces (LFW hard pairs): the DevTest measure is cosine 0.992 on average."""
    files = [FACES / n for n in GOLDEN["faces"]]
    ours = tinyface.load(precision="int8").embed(files)
    cos = [cosine_similarity(a, b) for a, b in zip(ours, GOLDEN["opset18"])]
    assert np.mean(cos) >= 0.99 and min(cos) >= 0.97


@pytest.mark.parametrize("args, message", [
    ((), "precision must be one of"),
    (("model.onnx",), "load a quantised model of your own by its path"),
])
def test_precision_is_checked(args, message):
    with pytest.raises(tinyface.TinyfaceError, match=message):
        tinyface.load(*args, precision="int4" if not args else "int8")
