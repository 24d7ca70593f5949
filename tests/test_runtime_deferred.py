"""runtime.deferred: which ops bind to the two kernels slow to compile, and what they bind to
until those are compiled (the same results bit for bit)."""
import numpy as np

import tinyface
from kernel_testing import on_threads
from tinyface.kernels.block import inverted_residual
from tinyface.kernels.narrow import narrow_conv
from tinyface.runtime import binders, deferred
from tinyface.runtime.deferred import bind_all, ready

NAME = "input0"


def kernel_names(schedule):
    return [function.__name__ for _, calls in schedule.segments for function, _ in calls]


def test_ready_when_compiled_or_within_bind_all(monkeypatch):
    monkeypatch.setattr(deferred, "has_code", lambda dispatcher: False)    # as on an empty JIT cache
    assert not ready(narrow_conv) and not ready(inverted_residual)
    with bind_all():
        assert ready(narrow_conv) and ready(inverted_residual)
        with bind_all():
            pass
        assert ready(narrow_conv)                  # nested: still within the outer one
    assert not ready(narrow_conv)
    monkeypatch.setattr(deferred, "has_code", lambda dispatcher: dispatcher is narrow_conv)
    assert ready(narrow_conv) and not ready(inverted_residual)


def test_the_stem_conv_runs_as_im2col_and_gemm_until_the_narrow_kernel_is_compiled(monkeypatch):
    """The bundled model's stem (3x3/2, 3 -> 64: 27 terms per output) on one face."""
    x = np.random.default_rng(2).standard_normal((1, 3, 112, 112)).astype(np.float32)
    with bind_all():
        model = tinyface.load()
        assert "narrow_conv" in on_threads(1, lambda: kernel_names(model.plan.schedule({NAME: x}, 1)))
        want = on_threads(1, lambda: model.run(x)[0])
    monkeypatch.setattr(deferred, "has_code", lambda dispatcher: dispatcher is inverted_residual)
    fresh = tinyface.load()
    names = on_threads(1, lambda: kernel_names(fresh.plan.schedule({NAME: x}, 1)))
    assert "narrow_conv" not in names and names.count("im2col") == 1
    np.testing.assert_array_equal(on_threads(1, lambda: fresh.run(x)[0]), want)


def test_only_convs_the_gemm_gives_the_same_bits_for_and_no_bigger_than_their_output_gather():
    assert binders.gathers_windows(64, 27)             # the stem
    assert binders.gathers_windows(32, 27)             # O-Net's conv1
    assert not binders.gathers_windows(10, 27)         # P-Net's conv1: not a multiple of 16
    assert not binders.gathers_windows(16, 90)         # P-Net's conv2: windows 5.6x the output
    assert not binders.gathers_windows(256, 27)        # wider than the narrow kernel takes: conv2d


def test_the_windows_are_counted_in_the_memory_a_step_allocates():
    model = tinyface.load()
    stem = next(step for step in model.plan.steps if getattr(step, "kind", "") == "conv")
    shapes = stem.allocated([(1, 3, 112, 112)], [(1, 64, 56, 56)])
    assert (1, 27, 56, 56) in shapes


def test_a_conv_whose_columns_are_padded_to_16_does_not_gather(monkeypatch):
    """P-Net's conv1 (3 -> 10 channels, 27 terms) packs its weight in 16 columns for the narrow
    kernel; run as im2col and the GEMM, those 16 columns would be written into 10."""
    monkeypatch.setattr(deferred, "has_code", lambda dispatcher: False)
    pnet = tinyface.load(tinyface.paths.weights_dir() / "mtcnn/pnet.onnx")
    convs = [b for b in pnet.plan.binders if isinstance(b, binders.ConvBinder) and b.op.kind == "conv"]
    assert convs[0].op.weight.shape[0] == 10 and convs[0].weight.shape[1] == 16
    assert all(b.panels is None for b in convs)
    x = np.zeros((1, 3, 24, 30), np.float32)
    assert "im2col" not in kernel_names(pnet.plan.schedule({pnet.input_names[0]: x}, 1))
