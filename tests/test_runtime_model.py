"""runtime.model: the engine's Model runs any supported graph, knows no faces, and runs
a large batch in chunks only when the images of a batch never meet."""
from pathlib import Path

import numpy as np
import pytest

import tinyface
from kernel_testing import needs_2_threads
from onnx_builders import GraphBuilder, ort_run
from tinyface.runtime.model import Model

BUNDLED = tinyface.paths.default_model_path()


def test_the_engine_runs_a_graph_and_knows_no_faces():
    engine = Model.load(BUNDLED)
    face = tinyface.load(BUNDLED)
    assert type(engine) is Model and isinstance(face, Model)
    assert not any(hasattr(engine, name) for name in ("info", "preprocess", "embed", "embed_photo"))
    x = np.random.default_rng(0).standard_normal((2, 3, 112, 112)).astype(np.float32)
    np.testing.assert_array_equal(engine.run(x)[0], face.run(x)[0])


@pytest.mark.parametrize("op, attrs", [("Flatten", {"axis": 0}), ("Softmax", {"axis": 0}),
                                       ("Transpose", {"perm": [1, 0]}), ("Relu", {})])
def test_a_batch_of_20_runs_in_chunks_only_when_images_are_independent(op, attrs):
    """Before: Model.run split any batch over 8 into chunks, so a Flatten at axis 0 or a
    Transpose moving the batch axis failed to concatenate (ValueError), and a softmax over
    the batch normalised each chunk apart (wrong values).  (Found while reading the
    fuzzer's batch handling: its cases stay at batch 1-2.)"""
    g = GraphBuilder(13)
    y = g.add(op, ["x"], **attrs)
    model = g.build({"x": ["N", 3]}, [y])
    engine = Model.load(model)
    assert engine.chunk == (8 if op == "Relu" else None)
    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    np.testing.assert_allclose(engine.run(x)[0], ort_run(model, {"x": x})[0], atol=1e-6)


@pytest.mark.parametrize("path", [BUNDLED, Path(__file__).parent / "data/models/mobilefacenet-relu6-opset10.onnx"])
def test_the_bundled_models_run_in_chunks(path):
    assert Model.load(path).chunk == 8


# -- bit for bit as stored: the bundled model and the MTCNN nets --------------------------

BITS = Path(__file__).parent / "data" / "golden" / "runtime_bits.npz"
NETS = {"bundled": (BUNDLED, (3, 112, 112))} | {
    net: (BUNDLED.parent / "mtcnn" / f"{net}.onnx", shape)
    for net, shape in (("pnet", (3, 37, 53)), ("rnet", (3, 24, 24)), ("onet", (3, 48, 48)))}


def stored_outputs():
    """{key: output} of each net at batch 1 and 3 (seeded inputs), on 1 and 2 threads."""
    outputs = {}
    previous = tinyface.get_num_threads()
    try:
        for name, (path, shape) in NETS.items():
            model = tinyface.load(path)       # (main, which made the stored arrays, had no Model.load)
            for batch in (1, 3):
                x = np.random.default_rng(batch).standard_normal((batch,) + shape).astype(np.float32)
                for threads in (1, 2):
                    tinyface.set_num_threads(threads)
                    for i, out in enumerate(model.run(x)):
                        outputs[f"{name}-b{batch}-t{threads}-o{i}"] = out
    finally:
        tinyface.set_num_threads(previous)
    return outputs


@needs_2_threads
def test_outputs_are_bit_for_bit_the_stored_ones():
    """The stored arrays were made by main before the graph/runtime redesign (issue 15),
    with ``python tests/test_runtime_model.py``; a kernel change that moves a rounding
    (a new tile, another summation order) must make them again and say so."""
    stored = np.load(BITS)
    ours = stored_outputs()
    assert sorted(ours) == sorted(stored.files)
    differ = [key for key in ours if not np.array_equal(ours[key], stored[key])]
    assert not differ, differ


if __name__ == "__main__":
    np.savez_compressed(BITS, **stored_outputs())
