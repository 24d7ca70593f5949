"""runtime.block: the inverted-residual block's binder -- its bands (cut finer when there are
fewer images than threads), its scratch, and the unfused path it takes when the fused kernel
is not compiled."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyface
from kernel_testing import needs_2_threads, on_threads
from tinyface.graph.shapes import conv_output_size
from tinyface.kernels.block import inverted_residual
from tinyface.runtime import block
from tinyface.runtime import deferred
from tinyface.runtime.block import SCRATCH_BYTES, band_rows
from tinyface.runtime.deferred import bind_all
from tinyface.runtime.schedule import _root

NAME = "input0"


@pytest.fixture(scope="module")
def model():
    return tinyface.load()          # the bundled MobileFaceNet: 15 blocks


def kernel_names(schedule):
    return [function.__name__ for _, calls in schedule.segments for function, _ in calls]


@given(h=st.integers(1, 120), w=st.integers(1, 120), e=st.sampled_from([16, 128, 512, 2048]),
       stride=st.sampled_from([1, 2]))
def test_band_rows_fit_the_scratch_or_are_one_row(h, w, e, stride):
    oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
    rows = band_rows(oh, w, ow, e, stride)
    assert 1 <= rows <= oh
    scratch = 4 * e * (((rows - 1) * stride + 3) * w + rows * ow)       # what BlockBinder takes
    assert rows == 1 or scratch <= SCRATCH_BYTES
    if rows < oh:                                                      # one more row would not fit
        assert 4 * e * ((rows * stride + 3) * w + (rows + 1) * ow) > SCRATCH_BYTES


def test_mobilefacenet_blocks_run_fused_with_an_image_per_thread(model):
    x = np.zeros((2, 3, 112, 112), np.float32)
    with bind_all():
        names = on_threads(1, lambda: kernel_names(model.plan.schedule({NAME: x}, 2)))
    assert names.count(inverted_residual.__name__) == 15
    assert names.count("gemm") == 3      # the three 1x1 convs outside blocks


def test_blocks_run_unfused_with_the_same_result_until_the_fused_kernel_is_compiled(monkeypatch):
    x = np.random.default_rng(1).standard_normal((2, 3, 112, 112)).astype(np.float32)
    with bind_all():
        fused = on_threads(1, lambda: tinyface.load().run(x)[0])
    monkeypatch.setattr(deferred, "has_code", lambda dispatcher: False)    # as on an empty JIT cache
    fresh = tinyface.load()
    names = on_threads(1, lambda: kernel_names(fresh.plan.schedule({NAME: x}, 2)))
    assert inverted_residual.__name__ not in names
    assert names.count("gemm") == 3 + 2 * 15 + 1      # and the stem conv's
    np.testing.assert_array_equal(on_threads(1, lambda: fresh.run(x)[0]), fused)


@needs_2_threads
def test_fewer_images_than_threads_cut_each_image_into_bands_with_the_same_result(model):
    x = np.random.default_rng(0).standard_normal((1, 3, 112, 112)).astype(np.float32)
    with bind_all():
        schedule = on_threads(2, lambda: model.plan.schedule({NAME: x}, 1))
        assert kernel_names(schedule).count(inverted_residual.__name__) == 15
        bands = [args[10] for _, calls in schedule.segments for f, args in calls if f is inverted_residual]
        heights = [args[-1].shape[1] for _, calls in schedule.segments for f, args in calls if f is inverted_residual]
        assert all(2 * b >= h > b for b, h in zip(bands, heights))     # two bands per image: one per thread
        two = on_threads(2, lambda: model.run(x)[0])
    one = on_threads(1, lambda: model.run(x)[0])
    np.testing.assert_array_equal(one, two)


@given(rows=st.integers(1, 60), height=st.integers(1, 60), images=st.integers(1, 8), threads=st.integers(1, 8))
def test_bands_for_threads_give_each_thread_a_task_where_the_height_allows(rows, height, images, threads):
    rows = min(rows, height)
    got = block.bands_for_threads(rows, height, images, threads)
    assert 1 <= got <= rows
    if images >= threads:
        assert got == rows
    else:           # each image cut in about ceil(threads / images) bands: two threads, two bands
        per_image = -(-threads // images)
        assert got == min(rows, -(-height // per_image))
        if height >= 2:
            assert -(-height // got) >= 2


def test_blocks_share_their_scratch(model):
    """A block's scratch goes back to the pool when it has been bound, so the blocks, of
    whatever shape, bind their scratch in a few shared buffers (runtime.schedule.BufferPool):
    MobileFaceNet's 11 scratch shapes in 4 buffers at batch 1."""
    x = np.zeros((1, 3, 112, 112), np.float32)
    with bind_all():
        schedule = on_threads(1, lambda: model.plan.schedule({NAME: x}, 1))
    shapes, buffers = set(), set()
    for _, calls in schedule.segments:
        for function, args in calls:
            if function is inverted_residual:
                for scratch in args[-3:-1]:
                    shapes.add(scratch.shape)
                    buffers.add(id(_root(scratch)))
    assert len(shapes) >= 3
    assert len(buffers) <= len(shapes) // 2
