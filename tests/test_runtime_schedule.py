"""Schedules: steps bound once per (input shapes, batch, threads), buffers shared
between the values of a schedule, results that never alias those buffers."""
import numpy as np
import pytest

import tinyface
from tinyface.runtime.memory import SCHEDULES
from tinyface.runtime.schedule import BufferPool, _root
from onnx_builders import GraphBuilder, add_conv, ort_run


def branchy_model():
    """conv -> relu -> (flatten, transpose, softmax over channels, residual add): several
    outputs, a view (flatten) and values that die at different steps."""
    rng = np.random.default_rng(0)
    g = GraphBuilder(13)
    c = add_conv(g, "x", rng, 3, 4)
    r = g.add("Relu", [c])
    d = add_conv(g, r, rng, 4, 4)
    s = g.add("Add", [d, c])
    f = g.add("Flatten", [s])
    t = g.add("Transpose", [r], perm=[0, 1, 3, 2])
    m = g.add("Softmax", [s], axis=1)
    return g.build({"x": ["N", 3, 5, "W"]}, [f, t, m])


@pytest.fixture
def model():
    onnx_model = branchy_model()
    return onnx_model, tinyface.load(onnx_model)


def count_binds(engine, monkeypatch):
    bound = []
    for st, op_binder in zip(engine.steps, engine.plan.binders):
        def spy(ctx, bind=op_binder.bind, name=st.name):
            bound.append(name)
            return bind(ctx)
        monkeypatch.setattr(op_binder, "bind", spy)
    return bound


def test_each_key_is_bound_once(model, monkeypatch):
    _, engine = model
    bound = count_binds(engine, monkeypatch)
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6)).astype(np.float32)
    first = engine.run(x)
    assert len(bound) == len(engine.steps)
    for _ in range(3):
        for a, b in zip(engine.run(x), first):
            np.testing.assert_array_equal(a, b)
    assert len(bound) == len(engine.steps)                 # the same key: no binding
    engine.run(x[:1])                                      # a new batch size
    engine.run(np.concatenate([x, x], axis=3))             # a new width
    assert len(bound) == 3 * len(engine.steps)


@pytest.mark.parametrize("threads", [1, 2])
def test_schedules_sharing_buffers_agree_with_onnxruntime(model, threads):
    """Runs alternating between keys: every schedule's results stay right."""
    onnx_model, engine = model
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(shape).astype(np.float32)
              for shape in [(1, 3, 5, 4), (3, 3, 5, 4), (1, 3, 5, 7), (2, 3, 5, 4)]]
    previous = tinyface.get_num_threads()
    tinyface.set_num_threads(threads)
    try:
        for x in inputs + inputs[::-1] + inputs:
            for got, want in zip(engine.run(x), ort_run(onnx_model, {"x": x})):
                np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    finally:
        tinyface.set_num_threads(previous)


def test_results_are_new_arrays(model):
    _, engine = model
    x = np.ones((1, 3, 5, 5), np.float32)
    first = engine.run(x)
    kept = [a.copy() for a in first]
    for a in first:
        a[...] = np.nan                  # writing into a result must not reach the engine
    for a, b in zip(engine.run(x), kept):
        np.testing.assert_array_equal(a, b)


def test_idle_schedules_are_left_in_the_cache_for_the_next_run(model):
    _, engine = model
    x = np.zeros((1, 3, 5, 4), np.float32)
    engine.run(x)
    key = (((("x", x.shape[1:]),), 1, tinyface.get_num_threads()))
    schedule = SCHEDULES.take(engine.plan._token, key)
    assert schedule is not None and schedule.nbytes > 0
    assert SCHEDULES.take(engine.plan._token, key) is None       # taken: the caller's alone
    SCHEDULES.give(engine.plan._token, key, schedule)


def chain(length):
    rng = np.random.default_rng(3)
    g = GraphBuilder(13)
    v = "x"
    for _ in range(length):
        v = add_conv(g, v, rng, 4, 4)
    return tinyface.load(g.build({"x": ["N", 4, 6, 6]}, [v]))


def test_values_share_buffers_when_lifetimes_do_not_overlap():
    """A chain of convs needs two buffers between its convs, whatever its length."""
    x = {"x": np.zeros((1, 4, 6, 6), np.float32)}
    three, nine = (chain(n).plan.schedule(x, 1) for n in (3, 9))
    assert three.nbytes == nine.nbytes
    assert three.nbytes <= 5 * x["x"].nbytes          # input, two maps, the output (and its layout)


def test_buffer_pool_lends_the_smallest_free_buffer_that_fits_any_shape():
    pool = BufferPool()
    big, small = pool.take((4, 6)), pool.take((2, 2))            # 96 and 16 bytes
    assert pool.nbytes == 112 and big.flags.c_contiguous and big.dtype == np.float32
    pool.give(_root(big))
    pool.give(_root(small))
    again = pool.take((3,))                                        # 12 bytes: the 16-byte one
    assert _root(again) is _root(small) and again.shape == (3,)
    codes = pool.take((5, 7), np.uint8)                            # 35 bytes: the 96-byte one
    assert _root(codes) is _root(big) and codes.dtype == np.uint8
    assert pool.take((2, 3)) is not None and pool.nbytes == 112 + 24   # none free: a new one
    pool.give(_root(codes))
    assert _root(pool.take((24,))) is _root(big) and pool.nbytes == 136
