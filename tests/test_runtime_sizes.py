"""runtime.sizes: what a run would allocate is refused before it is, naming the step."""
import tracemalloc

import numpy as np
import pytest

import tinyface
from tinyface.graph.shapes import BATCH, elements
from onnx_builders import GraphBuilder, add_conv, single_thread_fixture

single_thread = single_thread_fixture()


def conv_chain(channels=(3, 8, 8), k=1, pad=0, shape=("N", 3, "h", "w")):
    rng = np.random.default_rng(0)
    g = GraphBuilder(13)
    y = "x"
    for ci, co in zip(channels, channels[1:]):
        y = g.add("Relu", [add_conv(g, y, rng, ci, co, k=k, pad=pad)])
    return tinyface.load(g.build({"x": list(shape)}, [y]))


def test_elements_counts_the_batch_and_a_flattened_batch():
    assert elements((BATCH, 3, None, 4), batch=5) == 5 * 3 * 4
    assert elements((2 * BATCH, 7), batch=3) == 6 * 7          # Flatten at axis 0: (N * 2) x 7


def test_dense_conv_allocates_its_padded_input():
    model = conv_chain((3, 4), k=3, pad=2)
    (step,) = [st for st in model.steps if st.kind == "conv"]
    assert step.allocated([(1, 3, 5, 6)], [(1, 4, 7, 8)]) == [(1, 4, 7, 8), (1, 3, 9, 10)]


def test_dynamic_input_with_huge_pads_is_refused_before_allocating():
    """Before: MemoryError (128 GiB) from the first run of a conv with pads 2^16 on a
    free-size input; now an InputError naming the step, with next to nothing allocated."""
    g = GraphBuilder(13)
    y = g.add("Conv", ["x", g.const(np.ones((2, 3, 1, 1)))], pads=[2**16] * 4, name="wide")
    model = tinyface.load(g.build({"x": ["N", 3, "h", "w"]}, [y]))
    x = np.ones((1, 3, 8, 8), np.float32)
    tracemalloc.start()
    with pytest.raises(tinyface.InputError, match="step 'wide'.*MAX_TENSOR_ELEMENTS"):
        model.run(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1e6


def test_run_bytes_limit_counts_live_values_and_the_chunk(monkeypatch):
    model = conv_chain()
    x = np.ones((20, 3, 16, 16), np.float32)
    model.run(x)
    # the largest moment of a chunk of 8 images: two 8 x 8 x 16 x 16 maps (the second conv
    # writing while the first one's output is read; the input is dead), plus 20 outputs
    live = 4 * 2 * 8 * 8 * 256 + 4 * 20 * 8 * 256
    tinyface.set_limits(MAX_RUN_BYTES=live)
    try:
        model.run(x)                                  # exactly at the limit: runs
        tinyface.set_limits(MAX_RUN_BYTES=live - 1)
        with pytest.raises(tinyface.InputError, match="a run of 8 image\\(s\\) of shape \\(3, 16, 16\\)"):
            model.run(x)
    finally:
        tinyface.set_limits(MAX_RUN_BYTES=None)
    model.run(x)


def test_tensor_limit_at_run_time_names_the_batch(monkeypatch):
    model = conv_chain()
    monkeypatch.setenv("TINYFACE_MAX_TENSOR_ELEMENTS", str(2 * 8 * 16 * 16))
    model.run(np.ones((2, 3, 16, 16), np.float32))
    with pytest.raises(tinyface.InputError, match="for 3 image\\(s\\), an array of shape \\(N, 8, 16, 16\\)"):
        model.run(np.ones((3, 3, 16, 16), np.float32))
