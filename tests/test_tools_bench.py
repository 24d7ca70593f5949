"""tinyface.tools.bench, worker and peak: the figures are what they say they are.

Timings themselves cannot be checked on a shared machine; what is checked is
what surrounds them: one row per step with its multiply-adds (summing to the
model's), bytes and shares computed from them, workers that run in fresh
processes and report both engines, failures that name the worker, and
thread counts the machine cannot run refused before anything starts.
"""
import numpy as np
import pytest

import tinyface
from onnx_builders import op_mix_file, single_thread_fixture, supported_models
from tinyface.errors import TinyfaceError
from tinyface.tools import bench, peak
from tinyface.tools.inputs import random_feed

single_thread = single_thread_fixture()


@pytest.fixture(scope="module")
def mix_path(tmp_path_factory):
    return op_mix_file(tmp_path_factory.mktemp("bench"))


def test_per_step_rows(mix_path):
    model = tinyface.load(mix_path)
    feed = random_feed(model.graph.inputs, 3)
    rows = bench.per_step(model.plan, feed, repeats=3, fma_gflops=50.0, bandwidth_gbs=20.0)
    assert [r["kind"] for r in rows] == [st.kind for st in model.steps]
    assert sum(r["macs"] for r in rows) == 3 * bench.macs_per_image(model.plan, feed)
    for r, (st, (ins, outs)) in zip(rows, zip(model.steps, model.plan.check(feed))):
        assert r["threads"] == 1 and r["output"] == [3] + list(outs[0][1:])
        if r["kind"] == "reshape":                 # a view: no call, no time, nothing moved
            assert r["seconds"] == r["bytes"] == r["gflops"] == r["gbs"] == 0
            continue
        moved = sum(int(np.prod([3] + list(s[1:]))) for s in ins + outs)
        assert r["seconds"] > 0 and r["bytes"] == 4 * (moved + st.params())
        assert r["gflops"] == pytest.approx(2 * r["macs"] / r["seconds"] / 1e9)
        assert r["peak_share"] == pytest.approx(r["gflops"] / 50.0)
        assert r["bandwidth_share"] == pytest.approx(r["gbs"] / 20.0)


@pytest.mark.parametrize("name, proto, size", supported_models(), ids=lambda v: v if isinstance(v, str) else "")
def test_per_step_on_every_model_kind(name, proto, size):
    model = tinyface.load(proto)
    feed = random_feed(model.graph.inputs, 2, size)
    rows = bench.per_step(model.plan, feed, repeats=1)
    assert len(rows) == len(model.steps) and all(r["seconds"] > 0 for r in rows if r["kind"] != "reshape")
    assert sum(r["macs"] for r in rows) == 2 * bench.macs_per_image(model.plan, feed) > 0


def test_end_to_end_in_fresh_processes_against_onnxruntime(mix_path):
    pytest.importorskip("onnxruntime")
    rows, versions = bench.end_to_end(mix_path, [2], [1], "onnxruntime", rounds=2, runs=2)
    (row,) = rows
    assert row["batch"] == 2 and row["threads"] == 1
    assert row["tinyface_ms_per_image"] > 0 and row["onnxruntime_ms_per_image"] > 0 and row["ratio"] > 0
    assert row["first_run_s"] > 0
    assert set(versions) == {"tinyface", "onnxruntime"} and versions["tinyface"] == tinyface.__version__


def test_end_to_end_alone(mix_path):
    rows, versions = bench.end_to_end(mix_path, [1], [1], None, rounds=1, runs=1)
    assert "ratio" not in rows[0] and set(versions) == {"tinyface"}


def test_a_failing_worker_is_named(tmp_path):
    bad = tmp_path / "not_a_model.onnx"
    bad.write_bytes(b"nonsense")
    with pytest.raises(TinyfaceError, match="the tinyface worker failed on .*not_a_model.onnx.*not a valid ONNX"):
        bench.worker("tinyface", bad, 1, 1, 1)


def test_thread_counts_beyond_the_machine_are_refused():
    import numba
    with pytest.raises(TinyfaceError, match=f"runs 1 to {numba.config.NUMBA_NUM_THREADS} threads"):
        bench.check_threads([1, numba.config.NUMBA_NUM_THREADS + 1])
    bench.check_threads([1])


def test_machine_and_peaks():
    m = bench.machine()
    assert m["cores"] >= 1 and m["cpu"] and m["numpy"] == np.__version__
    assert peak.fma_peak_gflops() > 0.1
    assert peak.memory_bandwidth_gbs(mib=4) > 0.1


def test_the_tables(mix_path):
    model = tinyface.load(mix_path)
    rows = bench.per_step(model.plan, random_feed(model.graph.inputs, 2), repeats=1)
    text = bench.format_per_step(rows, 2, 1, 1).splitlines()
    assert len(text) == len(rows) + 3 and text[-1].startswith("sum of steps:")
    e2e = [{"batch": 1, "threads": 1, "tinyface_ms_per_image": 2.0, "first_run_s": 0.5,
            "onnxruntime_ms_per_image": 4.0, "ratio": 0.5}]
    table = bench.format_end_to_end(e2e, "onnxruntime", 1_000_000, 15, 5).splitlines()
    assert table[2].split() == ["1", "1", "2.00", "4.00", "0.50", "1.0", "0.50"]
