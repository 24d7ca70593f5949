"""Sliding-window ops: Conv, MaxPool, GlobalAveragePool (ONNX definitions, 2-D maps).

Layout is ONNX's: maps N x C x H x W, conv weights Co x C/group x KH x KW.
Window attributes use ONNX's names and order: ``pads`` is (top, left, bottom,
right), i.e. (x1_begin, x2_begin, x1_end, x2_end); ``strides``,
``dilations`` and ``kernel_shape`` are (vertical, horizontal).  Supported
beyond what tinyface's kernels run: dilations, any number of groups, and
``auto_pad`` on MaxPool as on Conv.  Not supported (refused with
``UnsupportedOpError``): maps of other than two spatial axes, MaxPool's
Indices output.
"""
import numpy as np

from tinyface.errors import InputError, UnsupportedOpError


def output_size(size, kernel, stride, pad_begin, pad_end, ceil_mode=False, dilation=1):
    """Number of window positions along one axis (ONNX Conv/MaxPool, PyTorch rule).

    With the effective kernel k = dilation * (kernel - 1) + 1: floor (or, in
    ceil mode, ceil) of (size + pads - k) / stride, plus one; in ceil mode a
    last window that would start inside the end padding is dropped.
    """
    span = size + pad_begin + pad_end - (dilation * (kernel - 1) + 1)
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
        return out
    return span // stride + 1


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _pair(values, default, what):
    values = list(default if values is None else values)
    if len(values) != 2 or min(values) < 1:
        raise UnsupportedOpError(f"{what} {values}: expected two positive integers (a 2-D window)")
    return tuple(int(v) for v in values)


def window_pads(auto_pad, pads, size, kernel, strides, dilations):
    """(top, left, bottom, right) padding of a window op.

    ``auto_pad`` NOTSET (or empty): ``pads`` as given (zeros when absent);
    VALID: none; SAME_UPPER / SAME_LOWER: enough for ceil(size / stride)
    outputs, the odd pixel at the end (UPPER) or at the beginning (LOWER).
    Where the stride is larger than the window ONNX's formula for that
    padding goes negative; it is taken as zero, as TensorFlow (whose SAME
    this is) does (onnxruntime refuses such a MaxPool).
    """
    auto_pad = _text(auto_pad) or "NOTSET"
    if auto_pad == "NOTSET":
        pads = [0, 0, 0, 0] if pads is None else [int(p) for p in pads]
        if len(pads) != 4 or min(pads) < 0:
            raise UnsupportedOpError(f"pads {pads}: expected four integers >= 0 "
                                     f"(top, left, bottom, right)")
        return tuple(pads)
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedOpError(f"auto_pad {auto_pad!r}: expected NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def _map(x, what):
    x = np.asarray(x)
    if x.ndim != 4:
        raise UnsupportedOpError(f"{what} of shape {list(x.shape)}: only N x C x H x W maps (2-D windows)")
    return x


def _tap(padded, ky, kx, out_hw, strides, dilations):
    """The (..., OH, OW) slice of ``padded`` that kernel tap (ky, kx) sees."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, strides, dilations
    top, left = ky * dh, kx * dw
    return padded[..., top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]


def _out_hw(size, kernel, strides, pads, dilations, ceil_mode=False):
    out = tuple(output_size(n, k, s, pb, pe, ceil_mode, d) for n, k, s, pb, pe, d in
                zip(size, kernel, strides, pads[:2], pads[2:], dilations))
    if min(out) < 1:
        raise InputError(f"input of spatial size {list(size)} is smaller than the "
                         f"{kernel[0]}x{kernel[1]} window (pads {list(pads)}, dilations {list(dilations)})")
    return out


def conv(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
         strides=None):
    """ONNX Conv on N x C x H x W maps: X, W (Co x C/group x KH x KW), optional bias B (Co).

    y[n, o, i, j] = B[o] + sum over the channels c of o's group and the taps
    (ky, kx) of x_padded[n, c, i*sh + ky*dh, j*sw + kx*dw] * W[o, c, ky, kx],
    with zero padding.  Written as one multiply-add of whole output planes per
    kernel tap, in float64.
    """
    x = _map(X, "Conv input").astype(np.float64)
    w = _map(W, "Conv weight").astype(np.float64)
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    if group < 1 or c != cg * group or co % group:
        raise InputError(f"Conv with group={group}: input has {c} channels and the weight is "
                         f"{list(w.shape)} (needs C = group * W.shape[1] and Co a multiple of group)")
    if kernel_shape is not None and list(kernel_shape) != [kh, kw]:
        raise InputError(f"Conv kernel_shape {list(kernel_shape)} does not match the weight's {kh}x{kw}")
    strides, dilations = _pair(strides, (1, 1), "strides"), _pair(dilations, (1, 1), "dilations")
    pt, pl, pb, pr = p = window_pads(auto_pad, pads, (h, wd), (kh, kw), strides, dilations)
    out_hw = _out_hw((h, wd), (kh, kw), strides, p, dilations)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    # channels split into groups: x -> N x G x C/G x Hp x Wp, w -> G x Co/G x C/G x KH x KW
    xg = xp.reshape(n, group, cg, *xp.shape[2:])
    wg = w.reshape(group, co // group, cg, kh, kw)
    y = np.zeros((n, group, co // group) + out_hw)
    for ky in range(kh):
        for kx in range(kw):
            patch = _tap(xg, ky, kx, out_hw, strides, dilations)            # N x G x C/G x OH x OW
            y += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, ky, kx])
    y = y.reshape((n, co) + out_hw)
    if B is not None:
        b = np.asarray(B, np.float64)
        if b.shape != (co,):
            raise InputError(f"Conv bias of shape {list(b.shape)}: expected ({co},)")
        y += b[None, :, None, None]
    return y


def max_pool(X, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None, pads=None,
             storage_order=0, strides=None):
    """ONNX MaxPool on N x C x H x W maps (output Y; the Indices output is not computed,
    so ``storage_order``, which only orders those indices, changes nothing).

    y[n, c, i, j] = max over the window of x_padded[n, c, i*sh + ky*dh, j*sw + kx*dw],
    where padding is -inf, so padded positions never win.  In ceil mode the
    map is padded further at the end (also with -inf) so that a last, partial
    window fits; see ``output_size`` for when it is dropped.
    """
    x = _map(X, "MaxPool input").astype(np.float64)
    n, c, h, w = x.shape
    kernel = _pair(kernel_shape, None, "kernel_shape")
    strides, dilations = _pair(strides, (1, 1), "strides"), _pair(dilations, (1, 1), "dilations")
    pt, pl, pb, pr = p = window_pads(auto_pad, pads, (h, w), kernel, strides, dilations)
    # with an auto_pad, ONNX gives the output size by its formula alone: ceil_mode plays no part
    ceil_mode = bool(ceil_mode) and (_text(auto_pad) or "NOTSET") == "NOTSET"
    out_hw = _out_hw((h, w), kernel, strides, p, dilations, ceil_mode)
    # the bottom and right padding the windows need (more than ``pads`` in ceil mode)
    need_b, need_r = ((o - 1) * s + d * (k - 1) + 1 - pad - size for o, s, d, k, pad, size in
                      zip(out_hw, strides, dilations, kernel, (pt, pl), (h, w)))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, max(pb, need_b)), (pl, max(pr, need_r))), constant_values=-np.inf)
    y = np.full((n, c) + out_hw, -np.inf)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y = np.maximum(y, _tap(xp, ky, kx, out_hw, strides, dilations))
    return y


def global_average_pool(X):
    """ONNX GlobalAveragePool: the mean over every spatial axis (axes 2...), kept as size-1 axes."""
    x = np.asarray(X, np.float64)
    if x.ndim < 3:
        raise InputError(f"GlobalAveragePool input of shape {list(x.shape)}: expected N x C x spatial axes")
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
