"""Memory has an owner: idle schedules are kept within a byte and a count limit,
freed when dropped, and the process stays bounded over many input shapes.

The whole-process checks run a job in a fresh Python process and read its
resident set size after every step (``/proc/self/statm``) and its peak
(``VmHWM`` in ``/proc/self/status``: ``ru_maxrss`` would be at least the peak of
the pytest process that forked it, which Linux keeps across exec); the bounds
they assert are the ones docs/memory.md states.
"""
import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

import tinyface
from tinyface.errors import TinyfaceError
from tinyface.runtime.memory import SCHEDULES, LRUDict, ScheduleCache, buffer_cache_stats, set_buffer_cache
from onnx_builders import GraphBuilder, add_conv

REPO = Path(__file__).resolve().parent.parent


class Fake:
    """A stand-in schedule of a given size."""

    def __init__(self, nbytes):
        self.nbytes = nbytes


class Owner:
    """Something a weak reference can point at, standing in for a plan."""


def test_cache_keeps_within_its_byte_limit_dropping_the_least_recent():
    cache = ScheduleCache(max_bytes=100, max_schedules=10)
    token = cache.register(owner := Owner())
    for key in "abcd":
        cache.give(token, key, Fake(30))
    assert cache.stats() == (3, 90)                 # "a" went first
    assert cache.take(token, "a") is None
    assert cache.take(token, "d").nbytes == 30
    assert cache.stats() == (2, 60)
    del owner


def test_cache_keeps_within_its_count_limit_and_reading_refreshes():
    cache = ScheduleCache(max_bytes=10**9, max_schedules=2)
    token = cache.register(owner := Owner())
    a = Fake(1)
    cache.give(token, "a", a)
    cache.give(token, "b", Fake(1))
    cache.give(token, "a", cache.take(token, "a"))      # "a" is now the most recent
    cache.give(token, "c", Fake(1))
    assert cache.take(token, "b") is None
    assert cache.take(token, "a") is a
    del owner


def test_a_schedule_over_the_limit_alone_is_not_kept():
    cache = ScheduleCache(max_bytes=100, max_schedules=10)
    token = cache.register(owner := Owner())
    cache.give(token, "small", Fake(10))
    cache.give(token, "huge", Fake(101))
    assert cache.stats() == (0, 0)
    del owner


def test_two_schedules_of_one_key_are_both_kept_and_each_taken_once():
    cache = ScheduleCache()
    token = cache.register(owner := Owner())
    a, b = Fake(1), Fake(1)
    cache.give(token, "k", a)
    cache.give(token, "k", b)
    assert {id(cache.take(token, "k")), id(cache.take(token, "k"))} == {id(a), id(b)}
    assert cache.take(token, "k") is None
    del owner


def test_a_collected_plans_schedules_are_dropped():
    cache = ScheduleCache()
    owner = Owner()
    token = cache.register(owner)
    cache.give(token, "k", Fake(5))
    del owner
    gc.collect()
    assert cache.stats() == (0, 0)


def test_lru_dict_is_bounded():
    d = LRUDict(3)
    for i in range(5):
        d.put(i, str(i))
    d.get(2)
    d.put(5, "5")
    assert len(d) == 3
    assert [d.get(i) for i in range(6)] == [None, None, "2", None, "4", "5"]


def small_model():
    rng = np.random.default_rng(0)
    g = GraphBuilder(13)
    return tinyface.load(g.build({"x": ["N", 3, "H", "W"]}, [add_conv(g, add_conv(g, "x", rng, 3, 8), rng, 8, 4)]))


def test_model_schedules_are_freed_when_evicted():
    model = small_model()
    before = SCHEDULES.max_bytes
    set_buffer_cache(max_bytes=0)
    try:
        x = np.ones((1, 3, 9, 9), np.float32)
        first = model.run(x)
        assert buffer_cache_stats()[1] == 0
        np.testing.assert_array_equal(model.run(x)[0], first[0])     # bound anew, same answer
    finally:
        set_buffer_cache(max_bytes=before)


def test_a_dropped_schedule_frees_its_buffers():
    model = small_model()
    schedule = model.plan.schedule({"x": np.ones((2, 3, 9, 9), np.float32)}, 2)
    buffer = weakref.ref(schedule.outputs[0].base if schedule.outputs[0].base is not None else schedule.outputs[0])
    del schedule
    gc.collect()
    assert buffer() is None


def test_limits_are_checked():
    with pytest.raises(TinyfaceError, match="max_bytes"):
        set_buffer_cache(max_bytes=-1)
    with pytest.raises(TinyfaceError, match="max_schedules"):
        set_buffer_cache(max_schedules=1.5)


def test_limit_from_the_environment_is_checked():
    env = dict(os.environ, TINYFACE_BUFFER_CACHE_MB="lots")
    done = subprocess.run([sys.executable, "-c", "import tinyface.runtime.memory"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "TINYFACE_BUFFER_CACHE_MB must be a number" in done.stderr


def rss_trace(body, timeout=900):
    """Run ``body`` (Python source using ``mark()`` after each unit of work) in a
    fresh process; returns (RSS in MB after each mark, peak RSS in MB)."""
    prelude = textwrap.dedent("""
        import json, sys
        trace = []
        def mark():
            with open("/proc/self/statm") as f:
                trace.append(int(f.read().split()[1]) * 4096 / 2**20)
    """)
    ending = ("\nhwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))"
              "\nprint(json.dumps([trace, int(hwm.split()[1]) / 1024]))\n")
    env = dict(os.environ, TINYFACE_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body) + ending], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    trace, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return np.array(trace), peak


def assert_bounded(trace, peak, first, growth_window, bound_mb, trend_mb):
    """Peak within ``bound_mb`` of the RSS after unit ``first``, and over the last
    ``growth_window`` units a fitted trend of less than ``trend_mb`` in all."""
    base = trace[first]
    assert peak - base < bound_mb, (f"peak {peak:.0f} MB is {peak - base:.0f} MB over the "
                                    f"{base:.0f} MB after the first unit")
    tail = trace[-growth_window:]
    slope = np.polyfit(np.arange(len(tail)), tail, 1)[0]
    assert slope * len(tail) < trend_mb, f"RSS grows {slope * len(tail):.0f} MB over the last {len(tail)}"


@pytest.mark.slow
def test_photos_of_200_sizes_keep_memory_bounded():
    """200 photos, 0.05 to 4 Mpx at random aspect ratios, through detect and embed_photo."""
    trace, peak = rss_trace("""
        import numpy as np
        from PIL import Image
        import tinyface
        model = tinyface.load()
        photo = Image.open("examples/astronaut.jpg").convert("RGB")
        rng = np.random.default_rng(0)
        for i in range(200):
            pixels, aspect = rng.uniform(0.05e6, 4e6), rng.uniform(0.6, 1.7)
            w = int((pixels * aspect) ** 0.5)
            h = int(pixels / w)
            image = np.asarray(photo.resize((w, h)))
            if i % 2:
                model.embed_photo(image)
            else:
                tinyface.detect(image)
            mark()
    """)
    assert_bounded(trace, peak, first=0, growth_window=150, bound_mb=300, trend_mb=60)


@pytest.mark.slow
def test_batches_of_1_to_64_in_random_order_keep_memory_bounded():
    trace, peak = rss_trace("""
        import numpy as np
        import tinyface
        model = tinyface.load()
        rng = np.random.default_rng(0)
        for i in range(80):
            n = 1 if i == 0 else int(rng.integers(1, 65))
            model.run(rng.standard_normal((n, 3, 112, 112)).astype(np.float32))
            mark()
    """)
    assert_bounded(trace, peak, first=0, growth_window=60, bound_mb=300, trend_mb=40)


@pytest.mark.slow
def test_threads_with_their_own_shapes_keep_memory_bounded():
    """Eight threads share one model (MTCNN's P-Net, which takes any image size), each
    running its own input sizes, round after round."""
    trace, peak = rss_trace("""
        import threading
        import numpy as np
        import tinyface
        from tinyface.paths import weights_dir
        model = tinyface.load(weights_dir() / "mtcnn" / "pnet.onnx")
        model.run(np.zeros((1, 3, 200, 200), np.float32))
        mark()
        def work(t, round_):
            rng = np.random.default_rng(100 * round_ + t)
            for _ in range(3):
                h, w = (int(v) for v in rng.integers(40, 400, size=2))
                model.run(rng.standard_normal((1, 3, h, w)).astype(np.float32))
        for round_ in range(25):
            threads = [threading.Thread(target=work, args=(t, round_)) for t in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            mark()
    """)
    assert_bounded(trace, peak, first=0, growth_window=20, bound_mb=300, trend_mb=40)
