"""Fuzzing the model loader: thousands of malformed models, each ending in a valid result
(the same as onnxruntime's, when it runs the model too) or exactly one TinyfaceError.

The seeded cases run in a watched worker process (tests/fuzz_harness.py): a case that
takes more than 10 s is a hang, one that kills the worker a crash, and the worker's peak
RSS may not grow past the bound its lowered limits imply.  The hypothesis tests draw
shape attributes, dims and dtypes directly (and shrink a failure to its smallest form).
More cases: ``python bench/fuzz.py`` (10x by default) or HYPOTHESIS_PROFILE=thorough.
"""
import numpy as np
import onnx
from hypothesis import given, settings, strategies as st
from onnx import numpy_helper

import tinyface
from fuzz_harness import compare_with_onnxruntime, measure_big_cases, outcome_of, run_seeded
from kernel_testing import examples
from onnx_builders import GraphBuilder, single_thread_fixture

single_thread = single_thread_fixture()

MODEL_KINDS = ["model_bytes", "model_proto", "model_external", "cli"]


def test_seeded_mutations_of_models():
    _, report = run_seeded(MODEL_KINDS, scale=examples(25) // 25)
    assert report.errors["ModelError"] > 0 and sum(report.ok.values()) > 0     # both outcomes reached
    assert report.notes["onnxruntime agrees"] > 0


def test_sizes_far_past_the_limits_are_refused_before_allocating():
    """At the default limits, with the peak RSS of a fresh process watched (a weight of
    2^40 elements, a broadcast fold of 2^40, pads implying 2^42, a run of two 1 GiB maps)."""
    for case in measure_big_cases("models"):
        assert case["seconds"] < 10, case
        assert case["rss_mb"] < 64, case
        if case["what"].startswith("max pool"):
            assert case["status"] == "ok", case                      # small output, clamped loops
        else:
            assert case["status"] == "error", case
            assert "MAX_" in case["detail"], case


# -- hypothesis: attributes, dims and dtypes drawn directly ----------------------------------

any_int = st.one_of(st.integers(-3, 8), st.sampled_from([2**31 - 1, 2**31, 2**40, 2**63 - 1, -2**63]))
spatial = st.one_of(st.integers(1, 9), st.none())


def must_be_valid_or_one_error(model, x):
    """tinyface loads and runs ``model`` on ``x``, or raises one one-line TinyfaceError; what it
    runs, onnxruntime (when it runs it) agrees with."""
    def feed():
        engine = tinyface.load(model)
        ours = engine.run(x)
        return compare_with_onnxruntime(model.SerializeToString(), {"x": x}, ours)
    out = outcome_of(feed)
    assert out.status != "fail", out


@settings(max_examples=examples(60), deadline=10_000)
@given(op=st.sampled_from(["Conv", "MaxPool"]), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       strides=st.lists(any_int, min_size=1, max_size=3), pads=st.lists(any_int, min_size=1, max_size=5),
       dilations=st.lists(st.integers(0, 2), max_size=3), group=st.sampled_from([1, 2, 3, 0, -1]),
       hw=st.tuples(spatial, spatial), ceil=st.booleans(), seed=st.integers(0, 2**16))
def test_window_attributes(op, kernel, strides, pads, dilations, group, hw, ceil, seed):
    rng = np.random.default_rng(seed)
    g = GraphBuilder(13)
    attrs = {"kernel_shape": list(kernel), "strides": strides, "pads": pads}
    if dilations:
        attrs["dilations"] = dilations
    if op == "Conv":                              # group 3: depthwise; 2, 0, -1: to be refused
        ins = ["x", g.const(rng.standard_normal((3, 1 if group == 3 else 3) + kernel))]
        attrs["group"] = group
    else:
        ins = ["x"]
        attrs["ceil_mode"] = int(ceil)
    y = g.add(op, ins, **attrs)
    model = g.build({"x": ["N", 3, hw[0] or "h", hw[1] or "w"]}, [y])
    x = rng.standard_normal((1, 3, hw[0] or 7, hw[1] or 5)).astype(np.float32)
    must_be_valid_or_one_error(model, x)


@settings(max_examples=examples(60), deadline=10_000)
@given(dims=st.lists(any_int, min_size=0, max_size=5), dtype=st.sampled_from(
    [np.float32, np.float16, np.float64, np.int64, np.int8, np.uint8, np.bool_]),
       extra=st.integers(-5, 5), where=st.sampled_from(["raw", "typed"]), seed=st.integers(0, 2**16))
def test_initializer_dims_dtypes_and_lengths(dims, dtype, extra, where, seed):
    """A conv weight whose dims, dtype and data length disagree in every way."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(13)
    y = g.add("Conv", ["x", g.const(np.zeros(1), name="w")], pads=[1, 1, 1, 1])
    model = g.build({"x": ["N", 3, 5, 5]}, [y])
    count = max(0, int(np.prod([d for d in dims if 0 <= d < 64], dtype=np.int64)) + extra) if dims else 1
    t = numpy_helper.from_array(rng.standard_normal(min(count, 4096)).astype(dtype), "w")
    if where == "typed" and t.raw_data:
        values = numpy_helper.to_array(t)
        t.ClearField("raw_data")
        if dtype in (np.float32, np.float16):
            t.float_data.extend(values.astype(np.float32).tolist()) if dtype == np.float32 else \
                t.int32_data.extend(values.view(np.uint16).tolist())
        elif dtype == np.float64:
            t.double_data.extend(values.tolist())
        else:
            t.int64_data.extend(values.astype(np.int64).tolist()) if dtype == np.int64 else \
                t.int32_data.extend(values.astype(np.int32).tolist())
    del t.dims[:]
    t.dims.extend(dims)
    model.graph.initializer[0].CopyFrom(t)
    must_be_valid_or_one_error(model, rng.standard_normal((1, 3, 5, 5)).astype(np.float32))


@settings(max_examples=examples(60), deadline=10_000)
@given(op=st.sampled_from(["Reshape", "Unsqueeze", "Squeeze", "Softmax", "Flatten", "Transpose", "Gather"]),
       values=st.lists(st.integers(-6, 6), max_size=6), big=st.booleans(), seed=st.integers(0, 2**16))
def test_axes_targets_and_permutations(op, values, big, seed):
    rng = np.random.default_rng(seed)
    if big and values:
        values[0] = int(rng.choice([2**31 - 1, 2**40, -2**40]))
    g = GraphBuilder(13)
    if op in ("Reshape", "Unsqueeze", "Squeeze"):
        y = g.add(op, ["x", g.const(values, dtype=np.int64)])
    elif op == "Transpose":
        y = g.add(op, ["x"], **({"perm": values} if values else {}))
    elif op == "Gather":
        y = g.add("Add", ["x", g.add(op, [g.const(rng.standard_normal((2, 3, 4))),
                                          g.const(values or [0], dtype=np.int64)], axis=1)])
    else:
        y = g.add(op, ["x"], axis=values[0] if values else 1)
    model = g.build({"x": ["N", 2, 3, 4]}, [y])
    must_be_valid_or_one_error(model, rng.standard_normal((2, 2, 3, 4)).astype(np.float32))


@settings(max_examples=examples(40), deadline=10_000)
@given(offset=st.one_of(st.integers(-2**63, 2**80).map(str), st.text(max_size=8)),
       length=st.one_of(st.none(), st.integers(-10, 2**70).map(str), st.text(max_size=8)))
def test_external_offsets_and_lengths(tmp_path_factory, offset, length):
    from fuzz_model_cases import save_external, seed_small_conv
    path = save_external(seed_small_conv(np.random.default_rng(0)), tmp_path_factory.mktemp("ext"))
    m = onnx.load(path, load_external_data=False)
    t = m.graph.initializer[0]
    entries = {e.key: e for e in t.external_data}
    for key, value in (("offset", offset), ("length", length)):
        if value is None:
            continue
        if key in entries:
            entries[key].value = value
        else:
            t.external_data.add(key=key, value=value)
    onnx.save(m, path)
    out = outcome_of(lambda: tinyface.load(path) and None)
    assert out.status != "fail", out
    if out.status == "error":
        assert str(path) in out.detail
