"""Input validation before any kernel runs: every bad input is an InputError
naming the input and its shape or dtype (never a Numba error), and what a run
returns stays valid however the plan reuses its buffers."""
import threading

import numpy as np
import pytest

import tinyface
from tinyface import InputError
from onnx_builders import GraphBuilder, add_conv, ort_run, single_thread_fixture

single_thread = single_thread_fixture()

NAME = "input0"


@pytest.fixture(scope="module")
def model():
    return tinyface.load()          # the bundled MobileFaceNet: input0 is N x 3 x 112 x 112


@pytest.fixture(scope="module")
def good():
    return np.random.default_rng(0).standard_normal((2, 3, 112, 112)).astype(np.float32)


def assert_input_error(model, x, *fragments):
    with pytest.raises(InputError) as info:
        model.run(x)
    msg = str(info.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# -- the bundled model: declared shape N x 3 x 112 x 112 ------------------------------

@pytest.mark.parametrize("shape", [(3, 112, 112), (1, 1, 3, 112, 112), (112, 112), ()])
def test_wrong_rank(model, shape):
    msg = assert_input_error(model, np.zeros(shape, np.float32), NAME, "rank")
    assert str(tuple(shape)) in msg and "112" in msg


@pytest.mark.parametrize("channels", [1, 4])
def test_wrong_channel_count(model, channels):
    assert_input_error(model, np.zeros((1, channels, 112, 112), np.float32), NAME, f"(1, {channels}, 112, 112)",
                       "(N, 3, 112, 112)")


@pytest.mark.parametrize("hw", [(96, 112), (112, 96), (224, 224), (1, 1)])
def test_wrong_spatial_size(model, hw):
    assert_input_error(model, np.zeros((1, 3) + hw, np.float32), NAME, str((1, 3) + hw))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, ">f4"])
def test_wrong_dtype(model, good, dtype):
    assert_input_error(model, good.astype(dtype), NAME, "float32", str(np.dtype(dtype)))


@pytest.mark.parametrize("value", ["list", "tuple", None, 1.0, "string"])
def test_not_an_array(model, good, value):
    x = {"list": good[:1].tolist(), "tuple": (good,), "string": "face.jpg"}.get(value, value)
    assert_input_error(model, x, NAME, "numpy array", type(x).__name__)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(model, good, bad):
    x = good.copy()
    x[1, 2, 50, 60] = bad
    assert_input_error(model, x, NAME, "NaN or inf")


def test_empty_batch(model):
    assert_input_error(model, np.zeros((0, 3, 112, 112), np.float32), NAME, "empty")


def test_wrong_input_name_in_dict(model, good):
    assert_input_error(model, {"input": good}, "input0", "'input'")


def test_extra_and_missing_names_in_dict(model, good):
    assert_input_error(model, {NAME: good, "other": good}, "other")
    assert_input_error(model, {}, NAME)


def test_bad_input_never_reaches_a_kernel(good, monkeypatch):
    """Validation happens before any step is bound to buffers or runs."""
    fresh = tinyface.load()
    reached = []
    for st, op_binder in zip(fresh.steps, fresh.plan.binders):
        def spy(ctx, st=st, bind=op_binder.bind):
            reached.append(st.name)
            return bind(ctx)
        monkeypatch.setattr(op_binder, "bind", spy)
    for x in (good[:, :2], good.astype(np.float64), good[0], good[:0]):
        with pytest.raises(InputError):
            fresh.run(x)
    assert not reached
    fresh.run(good)                      # the spies do see a good input
    assert len(reached) == len(fresh.steps)


def test_good_input_after_bad_inputs_still_runs(model, good):
    for x in (good[:, :, :100], good.astype(np.float64)):
        with pytest.raises(InputError):
            model.run(x)
    out = model.run(good)[0]
    assert out.shape == (2, 128) and out.dtype == np.float32 and np.isfinite(out).all()


def test_unusual_memory_layouts_give_the_same_result(model, good):
    ref = model.run(good)[0]
    readonly = good.copy()
    readonly.flags.writeable = False
    wide = np.concatenate([good, good], axis=3)[..., ::2]      # strided view
    wide_ref = model.run(np.ascontiguousarray(wide))[0]
    np.testing.assert_array_equal(model.run(np.asfortranarray(good))[0], ref)
    np.testing.assert_array_equal(model.run(readonly)[0], ref)
    np.testing.assert_array_equal(model.run(wide)[0], wide_ref)


def test_input_is_not_modified(model, good):
    x = good.copy()
    model.run(x)
    np.testing.assert_array_equal(x, good)


# -- graphs with free spatial dims: errors come from shape inference -----------------

@pytest.fixture(scope="module")
def free_hw():
    """conv 3x3/2 (no pad) -> flatten -> gemm(16 -> 5): input N x 3 x H x W, only 5x5 and 6x6 fit."""
    rng = np.random.default_rng(1)
    g = GraphBuilder(13)
    c = add_conv(g, "x", rng, 3, 4, k=3, stride=2, pad=0)
    f = g.add("Flatten", [c])
    y = g.add("Gemm", [f, g.const(rng.normal(size=(16, 5))), g.const(np.zeros(5))])
    model = g.build({"x": ["N", 3, "H", "W"]}, [y])
    return model, tinyface.load(model)


@pytest.mark.parametrize("hw", [(5, 5), (6, 6), (5, 6)])
def test_free_dims_that_fit_run(free_hw, hw):
    model, engine = free_hw
    x = np.random.default_rng(2).standard_normal((3, 3) + hw).astype(np.float32)
    np.testing.assert_allclose(engine.run(x)[0], ort_run(model, {"x": x})[0], atol=1e-4)


@pytest.mark.parametrize("hw", [(7, 7), (2, 2), (0, 0), (1, 9)])
def test_free_dims_that_do_not_fit_are_input_errors(free_hw, hw):
    _, engine = free_hw
    with pytest.raises(InputError) as info:
        engine.run(np.zeros((1, 3) + hw, np.float32))
    assert "\n" not in str(info.value)


def test_free_dims_wrong_channels(free_hw):
    _, engine = free_hw
    assert_input_error(engine, np.zeros((1, 2, 5, 5), np.float32), "'x'", "(1, 2, 5, 5)")


def test_zero_size_spatial_dims_refused():
    g = GraphBuilder(13)
    y = g.add("GlobalAveragePool", ["x"])
    engine = tinyface.load(g.build({"x": ["N", 3, "H", "W"]}, [y]))
    with pytest.raises(InputError):
        engine.run(np.zeros((1, 3, 0, 0), np.float32))


# -- several inputs --------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_inputs():
    rng = np.random.default_rng(3)
    g = GraphBuilder(13)
    a = add_conv(g, "a", rng, 3, 4)
    y = g.add("Add", [a, "b"])
    return tinyface.load(g.build({"a": ["N", 3, 5, 5], "b": ["N", 4, 5, 5]}, [y]))


def test_two_inputs_need_a_dict(two_inputs):
    with pytest.raises(InputError, match="dict"):
        two_inputs.run(np.zeros((1, 3, 5, 5), np.float32))


def test_two_inputs_disagreeing_on_batch(two_inputs):
    with pytest.raises(InputError, match="batch"):
        two_inputs.run({"a": np.zeros((2, 3, 5, 5), np.float32), "b": np.zeros((3, 4, 5, 5), np.float32)})


def test_two_inputs_second_one_wrong(two_inputs):
    with pytest.raises(InputError, match="'b'"):
        two_inputs.run({"a": np.zeros((2, 3, 5, 5), np.float32), "b": np.zeros((2, 3, 5, 5), np.float32)})


def test_two_inputs_run(two_inputs):
    rng = np.random.default_rng(4)
    feed = {"a": rng.standard_normal((2, 3, 5, 5)).astype(np.float32),
            "b": rng.standard_normal((2, 4, 5, 5)).astype(np.float32)}
    base = two_inputs.run({"a": feed["a"], "b": np.zeros_like(feed["b"])})[0]
    np.testing.assert_allclose(two_inputs.run(feed)[0], base + feed["b"], atol=1e-5)


# -- results stay valid ----------------------------------------------------------------

def small_branchy_model():
    rng = np.random.default_rng(5)
    g = GraphBuilder(13)
    c = add_conv(g, "x", rng, 3, 4)
    r = g.add("Relu", [c])
    f = g.add("Flatten", [r])
    t = g.add("Transpose", [c], perm=[0, 1, 3, 2])
    return g.build({"x": ["N", 3, 5, 5]}, [f, t])


def test_earlier_results_survive_later_runs():
    engine = tinyface.load(small_branchy_model())
    rng = np.random.default_rng(6)
    x1, x2 = (rng.standard_normal((2, 3, 5, 5)).astype(np.float32) for _ in range(2))
    first = engine.run(x1)
    copies = [a.copy() for a in first]
    for _ in range(3):
        engine.run(x2)
        engine.run(x1[:1])
    for a, b in zip(first, copies):
        np.testing.assert_array_equal(a, b)


def test_runs_from_several_threads(model, good):
    ref = model.run(good[:1])[0]
    results, errors = [], []

    def work():
        try:
            for _ in range(2):
                results.append(model.run(good[:1])[0])
        except Exception as exc:          # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6
    for r in results:
        np.testing.assert_array_equal(r, ref)


def test_batch_1_and_3_agree(model, good):
    x = np.concatenate([good, good[:1]])
    full = model.run(x)[0]
    singles = np.concatenate([model.run(x[i:i + 1])[0] for i in range(3)])
    np.testing.assert_allclose(full, singles, atol=1e-5)


def test_small_steps_run_on_one_thread_weighted_by_kernel_speed(model):
    """A step runs on one thread when its work is below PARALLEL_MIN_MACS over the batch:
    its multiply-adds, a depthwise conv's counted three times (it does them about 3x
    slower than the GEMM), a block's the sum of its three convs'.  At batch 1 the 1x1
    conv on the 1x1 map (65K) and GDConv (25K x 3) are serial, the 56x56 depthwise conv
    and the smallest blocks (7x7) are not."""
    from tinyface.runtime.plan import PARALLEL_MIN_MACS
    x = np.zeros((1, 3, 112, 112), np.float32)
    feed = {NAME: x}
    serial = model.plan.serial_steps(feed, 1)
    by_kind = {}
    for i, (st, (ins, outs)) in enumerate(zip(model.steps, model.plan.check(feed))):
        by_kind.setdefault((st.kind, outs[0][1:]), set()).add(i in serial)
        assert (i in serial) == (st.work(ins, outs) < PARALLEL_MIN_MACS)
        if st.kind == "block":
            per_conv = st.conv_shapes(ins)
            assert st.work(ins, outs) == sum(c.work(*s) for c, s in zip(st.convs, per_conv))
            assert st.convs[1].work(*per_conv[1]) == 3 * st.convs[1].macs(*per_conv[1])
    assert by_kind[("pointwise", (128, 1, 1))] == {True}
    assert by_kind[("depthwise", (512, 1, 1))] == {True}
    assert by_kind[("depthwise", (64, 56, 56))] == {False}
    assert by_kind[("block", (128, 7, 7))] == {False}
    serial8 = model.plan.serial_steps(feed, 8)
    at_8 = {(st.kind, outs[0][1:]): i in serial8
            for i, (st, (_, outs)) in enumerate(zip(model.steps, model.plan.check(feed)))}
    assert at_8[("depthwise", (512, 1, 1))] and at_8[("pointwise", (128, 1, 1))]      # 0.6M, 0.5M
    assert not at_8[("pointwise", (512, 7, 7))]


def test_serial_steps_run_on_one_thread_and_the_setting_comes_back(model, good, monkeypatch):
    """Each step runs with the thread count the plan chose for it (switched once per
    run of serial steps), and the caller's setting is restored afterwards, also
    when a step fails."""
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    fresh = tinyface.load()
    serial = fresh.plan.serial_steps({NAME: good[:1]}, 1)
    assert serial and len(serial) < len(fresh.steps)
    seen = {}

    def spied(i, function):
        def call(*args):
            seen[i] = numba.get_num_threads()
            function(*args)
        return call
    for i, op_binder in enumerate(fresh.plan.binders):
        def spy(ctx, bind=op_binder.bind, i=i):
            return [(spied(i, f), args) for f, args in bind(ctx)] or [(spied(i, lambda: None), ())]
        monkeypatch.setattr(op_binder, "bind", spy)
    previous = tinyface.get_num_threads()
    tinyface.set_num_threads(2)
    try:
        fresh.run(good[:1])
        assert seen == {i: 1 if i in serial else 2 for i in range(len(fresh.steps))}
        assert numba.get_num_threads() == 2

        def fail():
            raise RuntimeError("step failed")
        serial = fresh.plan.serial_steps({NAME: good[:2]}, 2)      # batch 2: a new schedule
        failing = fresh.plan.binders[max(serial)]
        monkeypatch.setattr(failing, "bind", lambda ctx, bind=failing.bind: [(fail, ())] + bind(ctx))
        with pytest.raises(RuntimeError, match="step failed"):
            fresh.run(good[:2])
        assert numba.get_num_threads() == 2
    finally:
        tinyface.set_num_threads(previous)


# -- trace: the steps one at a time, for tools ------------------------------------------

def test_trace_gives_every_step_and_the_run_outputs_bit_for_bit(model, good):
    feed = {NAME: good[:1]}
    seen = []
    for step, calls, ctx in model.plan.trace(feed):
        seen.append(step)
        assert step.outputs[0] in ctx.values
    assert seen == model.steps
    np.testing.assert_array_equal(ctx.values[model.plan.outputs[0]], model.run(good[:1])[0])
    # values no later step reads have left the context; the outputs stay
    assert not set(ctx.values) & {v for st in model.steps[:-1] for v in st.outputs} - set(model.plan.outputs)


def test_trace_runs_each_step_on_the_schedules_thread_count_and_restores_it(model, good):
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    feed = {NAME: good[:1]}
    serial = model.plan.serial_steps(feed, 1)
    previous = tinyface.get_num_threads()
    tinyface.set_num_threads(2)
    try:
        counts = [(ctx.threads, numba.get_num_threads()) for _, _, ctx in model.plan.trace(feed)]
        assert counts == [(1, 1) if i in serial else (2, 2) for i in range(len(model.steps))]
        assert numba.get_num_threads() == 2
        for _ in zip(range(3), model.plan.trace(feed)):       # left early: restored too
            pass
        assert numba.get_num_threads() == 2
    finally:
        tinyface.set_num_threads(previous)


def test_trace_checks_the_input_before_any_kernel_runs(model):
    with pytest.raises(InputError, match="expected shape"):
        next(model.plan.trace({NAME: np.zeros((1, 3, 50, 50), np.float32)}))


def test_the_plan_knows_how_each_value_is_stored(model):
    layouts = model.plan.layouts
    assert {layouts[st.outputs[0]] for st in model.steps if st.kind in ("conv", "block")} == {"nhwc"}
    assert all(layouts[v] == "plain" for v in model.plan.outputs)


def test_an_unpickled_plan_packs_its_weights_again(model, monkeypatch):
    """A pickled plan carries its ops, not their packed weights: the GEMM panels follow the
    tile widths of the CPU a process compiles for, so an AVX-512 machine's panels would be
    wrong, silently, on an AVX2 cluster worker.  The process that unpickles packs them."""
    import pickle
    import tinyface.runtime.binders as binders
    blob = pickle.dumps(model.plan)
    packed, pack = [], binders.pack_panels
    monkeypatch.setattr(binders, "pack_panels", lambda w: packed.append(w.shape) or pack(w))
    plan = pickle.loads(blob)
    kinds = [step.kind for step in plan.steps]
    gathering = sum(step.kind == "conv" and binders.gathers_windows(step.weight.shape[0], step.weight[0].size)
                    for step in plan.steps)          # dense convs the GEMM may run (runtime/deferred.py)
    assert gathering == 1                            # the stem
    assert len(packed) == kinds.count("pointwise") + kinds.count("gemm") + 2 * kinds.count("block") + gathering
    x = np.random.default_rng(0).standard_normal((1, 3, 112, 112)).astype(np.float32)
    np.testing.assert_array_equal(plan.run({plan.inputs[0].name: x})[0], model.plan.run({plan.inputs[0].name: x})[0])
