"""kernels.depthwise: NHWC depthwise conv against tinyface.reference.conv with group = C.

Each case builds the ONNX-layout input (N x C x H x W) and weight (C x 1 x KH
x KW), packs them as ConvBinder does (NHWC; KH x KW x C), sizes the output with
``conv_output_size`` and compares with the reference in NCHW.  Cases: H, W
from 1 to 17, kernels 1, 2, 3, 5, 7 (also non-square; 3x3, the common case,
drawn more often so that its interior and border pixels are both covered at
either stride), strides 1 and 2, zero/symmetric/asymmetric padding, channel
counts that are not multiples of 16, batch > 1, every epilogue variant, and
GDConv (kernel = whole map, no padding, 1 x 1 output).

Tolerance: data are uniform in [-1, 1]; ``assert_allclose(rtol=1e-4,
atol=1e-4 * sqrt(K))`` with K = KH * KW, the reduction length.  Cases drawn
``exact`` use small integers (activation parameters multiples of 1/4), for
which float32 is exact, and compare bit for bit.

Example counts: see ``examples`` (they scale with the HYPOTHESIS_PROFILE).
"""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from kernel_testing import check, nhwc_residual, assert_same_on_1_and_2_threads, examples, needs_2_threads
from tinyface.reference import conv, epilogue
from tinyface.testing.data import random_epilogue, values
from tinyface.testing.strategies import depthwise_cases, epilogue_kinds, gdconv_cases, seeds
from tinyface.kernels.depthwise import depthwise
from tinyface.kernels.epilogue import make_epilogue
from tinyface.graph.shapes import conv_output_size


def run_depthwise(x, wt, strides, pads, bias, act1, res, act2):
    """depthwise on NCHW ``x`` and ONNX ``wt``, called as ConvBinder calls it; returns NCHW."""
    n, c, h, w = x.shape
    _, _, kh, kw = wt.shape
    (sh, sw), (pt, pl, pb, pr) = strides, pads
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    packed = np.ascontiguousarray(wt[:, 0].transpose(1, 2, 0))              # KH x KW x C
    res_nhwc = None if res is None else nhwc_residual(res, (n, c, oh, ow))
    out = np.empty((n, oh, ow, c), np.float32)
    depthwise(x_nhwc, packed, sh, sw, pt, pl, make_epilogue(bias, act1, act2, res_nhwc), out)
    return out.transpose(0, 3, 1, 2)


def make_case(case, kinds, exact, seed):
    """Data for ``case``: the reference result and the kernel's arguments."""
    batch, c, h, w, (kh, kw), strides, pads = case
    rng = np.random.default_rng(seed)
    x = values(rng, (batch, c, h, w), exact)
    wt = values(rng, (c, 1, kh, kw), exact)
    acc = conv(x, wt, None, strides=strides, pads=pads, group=c)
    bias, act1, res, act2 = random_epilogue(kinds, c, acc.shape, rng, exact)
    return epilogue(acc, bias, act1, res, act2), (x, wt, strides, pads, bias, act1, res, act2)


PRELU = ("prelu", False, "identity")


@settings(max_examples=examples(100), deadline=None)
@given(case=depthwise_cases(), kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
@example(case=(1, 3, 1, 1, (3, 3), (1, 1), (1, 1, 1, 1)), kinds=PRELU, exact=False, seed=0)     # 1x1 map
@example(case=(2, 17, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=PRELU, exact=False, seed=1)    # s2, odd
@example(case=(1, 5, 6, 5, (3, 3), (2, 2), (0, 0, 1, 1)), kinds=PRELU, exact=False, seed=2)     # SAME_UPPER
@example(case=(1, 33, 11, 10, (5, 5), (1, 1), (2, 2, 2, 2)), kinds=PRELU, exact=True, seed=3)
@example(case=(1, 2, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)), kinds=PRELU, exact=True, seed=4)      # pad-only rim
@example(case=(2, 17, 9, 14, (3, 3), (1, 1), (1, 1, 1, 1)), kinds=("relu6", True, "prelu"), exact=False,
         seed=5)                                                           # 3x3/1 with wide interior rows
@example(case=(1, 5, 8, 13, (3, 3), (2, 1), (0, 0, 0, 0)), kinds=("prelu", True, "relu"), exact=True,
         seed=6)                                                           # 3x3, strides (2, 1), no pad
@example(case=(1, 3, 9, 16, (3, 3), (1, 2), (1, 0, 1, 1)), kinds=("clip", True, "leaky"), exact=False,
         seed=7)                                                           # 3x3, strides (1, 2)
# the vector path (3x3, channels a multiple of 16): borders, strides, pads, residuals
@example(case=(1, 16, 1, 1, (3, 3), (1, 1), (1, 1, 1, 1)), kinds=PRELU, exact=True, seed=8)     # 1x1 map
@example(case=(2, 32, 7, 9, (3, 3), (2, 2), (1, 1, 1, 1)), kinds=("relu6", True, "prelu"), exact=False,
         seed=9)
@example(case=(1, 48, 8, 13, (3, 3), (2, 1), (0, 0, 0, 0)), kinds=("prelu", True, "relu"), exact=True,
         seed=10)
@example(case=(1, 16, 9, 16, (3, 3), (1, 2), (1, 0, 1, 1)), kinds=("clip", True, "leaky"), exact=False,
         seed=11)
@example(case=(1, 64, 6, 5, (3, 3), (2, 2), (0, 0, 1, 1)), kinds=PRELU, exact=True, seed=12)    # SAME_UPPER
@example(case=(1, 16, 2, 17, (3, 3), (1, 1), (3, 3, 3, 3)), kinds=("leaky", True, "clip"), exact=True,
         seed=13)                                                          # pads wider than the kernel
def test_depthwise_matches_reference(case, kinds, exact, seed):
    want, args = make_case(case, kinds, exact, seed)
    kh, kw = case[4]
    check(run_depthwise(*args), want, kh * kw, exact)


@settings(max_examples=examples(25), deadline=None)
@given(case=gdconv_cases(), kinds=epilogue_kinds, exact=st.booleans(), seed=seeds)
@example(case=(1, 16, 7, 7, (7, 7), (1, 1), (0, 0, 0, 0)), kinds=("identity", False, "identity"),
         exact=False, seed=0)
def test_gdconv(case, kinds, exact, seed):
    want, args = make_case(case, kinds, exact, seed)
    assert want.shape[2:] == (1, 1)
    check(run_depthwise(*args), want, case[2] * case[3], exact)


@needs_2_threads
@settings(max_examples=examples(10), deadline=None)
@given(case=depthwise_cases(), kinds=epilogue_kinds, seed=seeds)
def test_same_result_on_1_and_2_threads(case, kinds, seed):
    _, args = make_case(case, kinds, False, seed)
    assert_same_on_1_and_2_threads(lambda: run_depthwise(*args))


@pytest.mark.slow
@pytest.mark.parametrize("case, kinds", [
    ((1, 512, 7, 7, (7, 7), (1, 1), (0, 0, 0, 0)), ("identity", False, "identity")),  # GDConv 7x7x512
    ((1, 64, 56, 56, (3, 3), (1, 1), (1, 1, 1, 1)), ("prelu", False, "identity")),    # conv_2_dw
    ((2, 128, 56, 56, (3, 3), (2, 2), (1, 1, 1, 1)), ("prelu", False, "identity")),   # conv_23 dw, s2
    ((1, 128, 28, 28, (3, 3), (1, 1), (1, 1, 1, 1)), ("prelu", True, "identity")),    # with a residual
])
def test_mobilefacenet_shapes(case, kinds):
    want, args = make_case(case, kinds, False, seed=1)
    kh, kw = case[4]
    check(run_depthwise(*args), want, kh * kw)
