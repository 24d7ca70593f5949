"""Hypothesis strategies for op geometries: the shapes and attributes tinyface's own kernel tests draw.

Each draws sizes that catch the usual slips of a hand-written kernel: odd
and tiny maps (down to 1 x 1), kernels 1 to 7 (also non-square), strides 1
and 2 (3 for pooling, wider than the window), symmetric and asymmetric
padding up to the kernel size (so some windows see only padding), channel
counts off the 16-float vector width, and batches of more than one image.
The geometry tuples are what ``tinyface.testing.nodes`` turns into ONNX
nodes; the kernel tests (tests/test_kernels_*.py) call kernels with them
directly.
"""
from hypothesis import strategies as st

from tinyface.testing.data import ACTIVATIONS

seeds = st.integers(0, 2**32 - 1)

# (act1, has a residual, act2) of a conv epilogue
epilogue_kinds = st.tuples(st.sampled_from(ACTIVATIONS), st.booleans(), st.sampled_from(ACTIVATIONS))

batches = st.integers(1, 3)


def _conv_window(draw, kernel_sizes):
    """(kh, kw), (sh, sw), pads and the map's h, w: kernels from ``kernel_sizes`` (square
    or not), strides 1 or 2, each pad 0 to min(kernel, 3), maps of 1 to 17 pixels that
    the padded window fits."""
    kh = draw(kernel_sizes)
    kw = draw(st.one_of(st.just(kh), kernel_sizes))
    strides = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])))
    pads = tuple(draw(st.integers(0, min(k, 3))) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 17))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 17))
    return (kh, kw), strides, pads, h, w


@st.composite
def conv_cases(draw):
    """A dense conv's geometry: (batch, ci, h, w, co, (kh, kw), (sh, sw), pads), pads being
    (top, left, bottom, right)."""
    (kh, kw), strides, pads, h, w = _conv_window(draw, st.sampled_from([1, 2, 3, 5, 7]))
    batch = draw(batches)
    ci = draw(st.sampled_from([1, 2, 3, 5, 17, 33]))
    co = draw(st.sampled_from([1, 3, 5, 16, 17, 33, 64, 80, 128]))   # 64s: tinyface's direct path; others: patches
    return batch, ci, h, w, co, (kh, kw), strides, pads


depthwise_kernel_sizes = st.sampled_from([1, 2, 3, 3, 3, 5, 7])        # 3x3 (the common case) more often
depthwise_channel_counts = st.sampled_from([1, 2, 3, 5, 16, 17, 32, 33, 48, 64])   # multiples of 16: vector path


@st.composite
def depthwise_cases(draw):
    """A depthwise conv's geometry: (batch, channels, h, w, (kh, kw), (sh, sw), pads)."""
    (kh, kw), strides, pads, h, w = _conv_window(draw, depthwise_kernel_sizes)
    return draw(batches), draw(depthwise_channel_counts), h, w, (kh, kw), strides, pads


@st.composite
def gdconv_cases(draw):
    """GDConv (a depthwise conv whose kernel covers the whole, possibly non-square, map;
    no padding), in ``depthwise_cases``' form."""
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return draw(batches), draw(depthwise_channel_counts), h, w, (h, w), (1, 1), (0, 0, 0, 0)


@st.composite
def pool_cases(draw):
    """A max pool's geometry: (batch, c, h, w, (kh, kw), (sh, sw), pads, ceil_mode), pads < kernel."""
    windows = st.integers(1, 5)
    kh = draw(windows)
    kw = draw(st.one_of(st.just(kh), windows))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 17))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 17))
    batch = draw(batches)
    c = draw(st.sampled_from([1, 3, 5, 10, 16, 17, 33]))
    return batch, c, h, w, (kh, kw), strides, pads, draw(st.booleans())


@st.composite
def nchw_shapes(draw):
    """N x C x H x W maps, or N x C matrices (FC outputs), for element-wise ops."""
    n, c = draw(batches), draw(st.sampled_from([1, 3, 5, 16, 17, 33, 64]))
    if draw(st.booleans()):
        return (n, c)
    return (n, c, draw(st.integers(1, 17)), draw(st.integers(1, 17)))


# A GEMM's M x K @ K x N, drawn around tinyface's register tiles (4 rows, 16- and
# 64-column vectors) and its 4-deep unrolling of K.
gemm_rows = st.integers(1, 27)
gemm_depths = st.one_of(st.integers(1, 9), st.integers(10, 70))
gemm_widths = st.one_of(st.sampled_from([1, 3, 5, 15, 16, 17, 32, 33, 48, 63, 64, 65, 80, 127, 128, 144]),
                        st.integers(1, 40))
