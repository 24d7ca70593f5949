"""Plain NumPy reference implementations of the ops tinyface's kernels run.

Everything here follows ONNX's own definitions and layout (NCHW maps, Co x Ci/g
x KH x KW conv weights), is written for reading rather than speed, uses no
Numba, and computes in float64 so that the float32 kernels can be compared
against it with tolerances that only have to cover *their* rounding.

Conventions: ``pads`` are (top, left, bottom, right), i.e. ONNX's
(x1_begin, x2_begin, x1_end, x2_end) for 2-D; ``strides`` and ``kernel`` are
(vertical, horizontal).  Results are float64 arrays.
"""
import numpy as np


def output_size(size, kernel, stride, pad_begin, pad_end, ceil_mode=False):
    """Number of window positions along one axis (ONNX Conv/MaxPool, PyTorch rule).

    floor (or ceil) of (size + pads - kernel) / stride, plus one; in ceil mode
    a last window that would start inside the end padding is dropped.
    """
    span = size + pad_begin + pad_end - kernel
    if span < 0:
        return 0
    if ceil_mode:
        out = int(np.ceil(span / stride)) + 1
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
        return out
    return span // stride + 1


def _window(padded, ky, kx, out_h, out_w, strides):
    """The (..., out_h, out_w) slice of ``padded`` that kernel tap (ky, kx) sees."""
    sh, sw = strides
    return padded[..., ky:ky + sh * (out_h - 1) + 1:sh, kx:kx + sw * (out_w - 1) + 1:sw]


# --- convolution and pooling --------------------------------------------------------

def conv2d_nchw(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), groups=1):
    """ONNX Conv: x is N x C x H x W, w is Co x C/groups x KH x KW, b is Co.

    y[n, o, i, j] = b[o] + sum over the input channels c of o's group and over
    the window (ky, kx) of x_padded[n, c, i*sh + ky, j*sw + kx] * w[o, c, ky, kx]
    (zero padding).  Written as one multiply-add of whole output planes per
    kernel tap.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    CO, CG, KH, KW = w.shape
    assert C == CG * groups and CO % groups == 0
    pt, pl, pb, pr = pads
    OH = output_size(H, KH, strides[0], pt, pb)
    OW = output_size(W, KW, strides[1], pl, pr)
    assert OH > 0 and OW > 0, "the padded input is smaller than the kernel"
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    # Split channels into groups: x -> N x G x C/G x Hp x Wp, w -> G x Co/G x C/G x KH x KW.
    xg = xp.reshape(N, groups, CG, H + pt + pb, W + pl + pr)
    wg = w.reshape(groups, CO // groups, CG, KH, KW)
    y = np.zeros((N, groups, CO // groups, OH, OW))
    for ky in range(KH):
        for kx in range(KW):
            patch = _window(xg, ky, kx, OH, OW, strides)          # N x G x C/G x OH x OW
            y += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, ky, kx])
    y = y.reshape(N, CO, OH, OW)
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def maxpool_nchw(x, kernel, strides, pads=(0, 0, 0, 0), ceil_mode=False):
    """ONNX MaxPool on N x C x H x W (no dilation).

    y[n, c, i, j] = max over the window of x_padded[n, c, i*sh + ky, j*sw + kx],
    where padding is -inf, so padded positions never win.  In ceil mode the
    map is padded further at the end (also with -inf) so that the last, partial
    window fits; see ``output_size`` for when it is dropped.
    """
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    OH = output_size(H, KH, sh, pt, pb, ceil_mode)
    OW = output_size(W, KW, sw, pl, pr, ceil_mode)
    assert OH > 0 and OW > 0, "the padded input is smaller than the window"
    extra_b = max(pb, (OH - 1) * sh + KH - pt - H)    # the bottom pad the windows need
    extra_r = max(pr, (OW - 1) * sw + KW - pl - W)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, extra_b), (pl, extra_r)), constant_values=-np.inf)
    y = np.full((N, C, OH, OW), -np.inf)
    for ky in range(KH):
        for kx in range(KW):
            y = np.maximum(y, _window(xp, ky, kx, OH, OW, strides))
    return y


# --- softmax and GEMM ---------------------------------------------------------------

def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum so exp cannot overflow."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    """ONNX Gemm: alpha * A' @ B' + beta * C, with A' = A.T if transA (B' likewise).

    C broadcasts to the M x N result (a scalar, a row of N, or M x N).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if transA:
        a = a.T
    if transB:
        b = b.T
    y = alpha * (a @ b)
    if c is not None:
        y = y + beta * np.asarray(c, np.float64)
    return y


# --- activations and the fused epilogue ---------------------------------------------

def per_channel(v, ndim, axis=1):
    """Shape a per-channel vector to broadcast along ``axis`` of an ``ndim``-D array."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(v, np.float64).reshape(shape)


def relu(x):
    """ONNX Relu: max(x, 0)."""
    return np.maximum(np.asarray(x, np.float64), 0.0)


def clip(x, lo=-np.inf, hi=np.inf):
    """ONNX Clip: min(max(x, lo), hi)."""
    return np.minimum(np.maximum(np.asarray(x, np.float64), lo), hi)


def prelu(x, slope):
    """ONNX PRelu (and LeakyRelu): x where x >= 0, slope * x where x < 0.

    ``slope`` broadcasts to x (per channel: shape it with ``per_channel``).
    """
    x = np.asarray(x, np.float64)
    return np.where(x < 0, np.asarray(slope, np.float64) * x, x)


def act(y, slope, lo, hi, axis=1):
    """The generalised activation of tinyface's epilogue, as ONNX ops:
    Clip(PRelu(y, slope), lo, hi) with ``slope`` per channel along ``axis``."""
    y = np.asarray(y, np.float64)
    return clip(prelu(y, per_channel(slope, y.ndim, axis)), lo, hi)


def epilogue(y, bias, act1, residual=None, act2=None, axis=1):
    """What tinyface.kernels.epilogue applies to a conv/GEMM accumulator ``y``::

        y = act2(act1(y + bias) + residual)

    ``bias`` is per channel (along ``axis``: 1 for both NCHW maps and M x N
    GEMM outputs); ``act1`` and ``act2`` are (slope per channel, lo, hi) as in
    ``act`` (``None`` for none); ``residual`` has y's shape (``None``: no add).
    """
    y = np.asarray(y, np.float64)
    y = y + per_channel(bias, y.ndim, axis)
    if act1 is not None:
        y = act(y, *act1, axis=axis)
    if residual is not None:
        y = y + np.asarray(residual, np.float64)
    if act2 is not None:
        y = act(y, *act2, axis=axis)
    return y


# --- Random test data: ONNX activations in the epilogue's (slope, lo, hi) form ------

ACTIVATIONS = ("identity", "relu", "relu6", "leaky", "prelu", "clip")


def activation_params(kind, channels, rng, exact=False):
    """(slope[channels], lo, hi) as float32 for one ONNX activation ``kind``.

    identity: (1, -inf, inf); Relu: (0, -inf, inf); Relu6 = Clip(0, 6):
    (1, 0, 6); LeakyRelu(alpha): (alpha, -inf, inf) on every channel; PRelu:
    (learned per-channel slopes, -inf, inf); Clip(lo, hi): (1, lo, hi).
    Random parameters are drawn from ``rng``; with ``exact`` they are rounded
    to multiples of 1/4, so that on small-integer data no float32 operation
    rounds (see ``values``).
    """
    inf = np.float32(np.inf)
    ones = np.ones(channels, np.float32)
    if kind == "identity":
        slope, lo, hi = ones, -inf, inf
    elif kind == "relu":
        slope, lo, hi = 0 * ones, -inf, inf
    elif kind == "relu6":
        slope, lo, hi = ones, 0.0, 6.0
    elif kind == "leaky":
        slope, lo, hi = rng.choice([0.01, 0.1, 0.2]) * ones, -inf, inf
    elif kind == "prelu":   # learned slopes: usually in (0, 1), but any sign or size is allowed
        slope, lo, hi = rng.uniform(-0.5, 1.5, channels), -inf, inf
    elif kind == "clip":
        lo = rng.uniform(-1.0, 0.25)
        slope, hi = ones, lo + rng.uniform(0.0, 1.0)
    else:
        raise ValueError(kind)
    if exact:
        slope, lo, hi = (np.round(np.float64(v) * 4) / 4 for v in (slope, lo, hi))
    return np.asarray(slope, np.float32), np.float32(lo), np.float32(hi)


def values(rng, shape, exact=False):
    """float32 test data: U[-1, 1], or with ``exact`` integers in [-3, 3] (float32
    sums and products of those stay exact far beyond the sizes tested)."""
    v = rng.integers(-3, 4, shape) if exact else rng.uniform(-1, 1, shape)
    return v.astype(np.float32)


def random_epilogue(kinds, channels, out_shape, rng, exact=False):
    """(bias, act1, residual or None, act2) for ``kinds`` = (act1 kind, has residual, act2 kind)."""
    kind1, has_res, kind2 = kinds
    bias = values(rng, channels, exact)
    act1 = activation_params(kind1, channels, rng, exact)
    res = values(rng, out_shape, exact) if has_res else None
    act2 = activation_params(kind2, channels, rng, exact)
    return bias, act1, res, act2
