"""kernels.block: the fused inverted-residual block against NumPy and the unfused kernels.

Each case draws a block's geometry (batch, H, W, input, expanded and output
channels, stride 1 or 2), the band height (1 row up to the whole map, so
bands share rows or not, and the last band is short), the number of task runs
T (1 to 3, more than the tasks at times) and each conv's epilogue.  Two
checks:

* against ``tinyface.reference.conv`` + ``reference.epilogue`` in float64:
  ``assert_allclose(rtol=1e-4, atol=1e-4 * max |result|)`` (three chained
  float32 convs; weights scaled by 1 / sqrt(fan-in) keep values near 1);
* against the three unfused kernels (``gemm``, ``depthwise``, ``gemm``) as
  ConvBinder calls them: bit for bit, whatever the channels (the GEMM computes
  every output as one chain of fused multiply-adds, however its rows are
  grouped into tiles and bands).

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import assert_same_on_1_and_2_threads, examples, needs_2_threads, nhwc_residual
from tinyface.reference import conv, epilogue
from tinyface.testing.data import ACTIVATIONS, activation_params, values
from tinyface.testing.strategies import seeds
from tinyface.kernels.block import inverted_residual
from tinyface.kernels.depthwise import depthwise
from tinyface.kernels.epilogue import make_epilogue
from tinyface.kernels.gemm import gemm, pack_panels
from tinyface.graph.shapes import conv_output_size

INF = np.float32(np.inf)


@st.composite
def block_cases(draw):
    """(batch, h, w, ci, e, co, stride, band_rows, runs)."""
    stride = draw(st.sampled_from([1, 2]))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    oh = conv_output_size(h, 3, stride, 1, 1)
    return (draw(st.integers(1, 3)), h, w, draw(st.sampled_from([1, 3, 16, 17, 33])),
            draw(st.sampled_from([16, 32, 48, 64, 80])), draw(st.sampled_from([1, 5, 16, 17, 64, 65])),
            stride, draw(st.integers(1, oh)), draw(st.integers(1, 3)))


kinds = st.tuples(st.sampled_from(ACTIVATIONS), st.sampled_from(ACTIVATIONS), st.sampled_from(ACTIVATIONS),
                  st.booleans(), st.sampled_from(ACTIVATIONS))    # expand, dw, project act1, residual, act2


def kernel_epilogue(bias, act1, res=None, act2=None):
    """The kernel's epilogue value of a reference epilogue (NCHW ``res``)."""
    act2 = act2 or (np.ones_like(bias), -INF, INF)
    return make_epilogue(bias, act1, act2, None if res is None else nhwc_residual(res, res.shape))


def make_block(case, kinds, seed):
    """ONNX-layout data (NCHW x, Co x Ci x 1 x 1 and C x 1 x 3 x 3 weights) and the NumPy result."""
    n, h, w, ci, e, co, stride, _, _ = case
    rng = np.random.default_rng(seed)
    x = values(rng, (n, ci, h, w))
    w_expand = values(rng, (e, ci, 1, 1)) / np.float32(np.sqrt(ci))
    w_dw = values(rng, (e, 1, 3, 3)) / np.float32(3)
    w_project = values(rng, (co, e, 1, 1)) / np.float32(np.sqrt(e))
    eps = [(values(rng, c), activation_params(kind, c, rng)) for c, kind in ((e, kinds[0]), (e, kinds[1]),
                                                                            (co, kinds[2]))]
    oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
    res = values(rng, (n, co, oh, ow)) if kinds[3] else None
    act2 = activation_params(kinds[4], co, rng)
    y = epilogue(conv(x, w_expand), *eps[0])
    y = epilogue(conv(y, w_dw, None, strides=(stride, stride), pads=(1, 1, 1, 1), group=e), *eps[1])
    want = epilogue(conv(y, w_project), *eps[2], res, act2)
    data = (x, w_expand, w_dw, w_project, eps, res, act2)
    return want, data


def packed(data):
    """NHWC input and the weights as ConvBinder packs them; the three epilogue tuples."""
    x, w_expand, w_dw, w_project, eps, res, act2 = data
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    weights = (np.ascontiguousarray(w_expand[:, :, 0, 0].T), np.ascontiguousarray(w_dw[:, 0].transpose(1, 2, 0)),
               np.ascontiguousarray(w_project[:, :, 0, 0].T))
    epilogues = (kernel_epilogue(*eps[0]), kernel_epilogue(*eps[1]), kernel_epilogue(*eps[2], res, act2))
    return x_nhwc, weights, epilogues


def run_block(case, data):
    """The fused kernel, called as BlockBinder calls it; returns NCHW."""
    n, h, w, _, e, co, stride, rows, runs = case
    x, (w_expand, w_dw, w_project), (ep_expand, ep_dw, ep_project) = packed(data)
    oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
    expanded = np.full((runs, ((rows - 1) * stride + 3) * w, e), np.nan, np.float32)   # garbage must not leak
    depthwised = np.full((runs, rows * ow, e), np.nan, np.float32)
    out = np.empty((n, oh, ow, co), np.float32)
    inverted_residual(x, w_expand, pack_panels(w_expand), ep_expand, w_dw, stride, ep_dw, w_project,
                      pack_panels(w_project), ep_project, rows, expanded, depthwised, out)
    return out.transpose(0, 3, 1, 2)


def run_unfused(case, data):
    """gemm -> depthwise -> gemm, as three ConvBinders call them; returns NCHW."""
    n, h, w, ci, e, co, stride, _, _ = case
    x, (w_expand, w_dw, w_project), (ep_expand, ep_dw, ep_project) = packed(data)
    oh, ow = conv_output_size(h, 3, stride, 1, 1), conv_output_size(w, 3, stride, 1, 1)
    expanded = np.empty((n, h, w, e), np.float32)
    gemm(x.reshape(-1, ci), w_expand, make_epilogue(ep_expand[0], ep_expand[1:4], ep_expand[6:], ndim=2),
         expanded.reshape(-1, e))
    depthwised = np.empty((n, oh, ow, e), np.float32)
    depthwise(expanded, w_dw, stride, stride, 1, 1, ep_dw, depthwised)
    out = np.empty((n, oh, ow, co), np.float32)
    res = ep_project[4].reshape(-1, co) if ep_project[5] else None
    gemm(depthwised.reshape(-1, e), w_project, make_epilogue(ep_project[0], ep_project[1:4], ep_project[6:], res, 2),
         out.reshape(-1, co))
    return out.transpose(0, 3, 1, 2)


RELU6 = ("relu6", "relu6", "identity", True, "identity")


@settings(max_examples=examples(40), deadline=None)
@given(case=block_cases(), kinds=kinds, seed=seeds)
@example(case=(1, 1, 1, 3, 16, 5, 1, 1, 1), kinds=RELU6, seed=0)              # 1x1 map
@example(case=(2, 9, 7, 17, 32, 17, 1, 2, 3), kinds=RELU6, seed=1)            # bands share 2 rows
@example(case=(1, 13, 12, 16, 48, 16, 2, 3, 2), kinds=("prelu", "prelu", "identity", False, "identity"),
         seed=2)                                                            # stride 2: bands share 1 row
@example(case=(3, 8, 8, 33, 80, 65, 2, 4, 2), kinds=("relu", "clip", "leaky", True, "relu6"), seed=3)
@example(case=(1, 5, 13, 16, 64, 64, 1, 5, 3), kinds=RELU6, seed=4)           # more runs than tasks
def test_block_matches_reference_and_unfused_kernels(case, kinds, seed):
    want, data = make_block(case, kinds, seed)
    got = run_block(case, data)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
    assert_same_as_unfused(got, case, data)


def assert_same_as_unfused(got, case, data):
    """Bit for bit."""
    np.testing.assert_array_equal(got, run_unfused(case, data))


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(case=block_cases(), kinds=kinds, seed=seeds)
def test_same_result_on_1_and_2_threads(case, kinds, seed):
    _, data = make_block(case, kinds, seed)
    assert_same_on_1_and_2_threads(lambda: run_block(case, data))


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    (2, 56, 56, 64, 128, 64, 2, 14, 2),      # MobileFaceNet's first bottleneck, two bands per image
    (3, 28, 28, 64, 128, 64, 1, 28, 2),      # a residual one at 28 x 28, one band per image
    (2, 7, 7, 128, 256, 128, 1, 7, 1),
])
def test_mobilefacenet_shapes(case):
    want, data = make_block(case, RELU6, seed=5)
    got = run_block(case, data)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
    assert_same_as_unfused(got, case, data)
