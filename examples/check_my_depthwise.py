"""Property-test your own depthwise convolution against tinyface's reference, in a few lines.

    pip install tinyface hypothesis
    python examples/check_my_depthwise.py                 # passes
    python examples/check_my_depthwise.py --break-padding # fails, on a small case hypothesis finds

``my_depthwise`` stands for your kernel: a depthwise conv written channels-last
(NHWC), as fast kernels usually are, wrapped to take ONNX Conv's inputs
(x: N x C x H x W, w: C x 1 x KH x KW, an optional bias) and attributes.
``check_against_reference`` draws Conv nodes -- odd map sizes down to 1 x 1,
kernels 1 to 7 (also non-square), strides 1 and 2, asymmetric padding up to the
kernel size, channel counts off the vector width, batches of up to 3 -- runs
both, and compares with a tolerance that grows with the kernel's size.
"""
import sys

import numpy as np

from tinyface.testing import check_against_reference, conv_nodes


def my_depthwise(x, w, b=None, *, kernel_shape, strides, pads, group, break_padding=False):
    """Depthwise conv (``group`` = channels), computed channels-last in float32."""
    n, c, h, wd = x.shape
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel_shape, strides, pads
    if break_padding:                                  # a classic slip: the padding mirrored
        top, left, bottom, right = bottom, right, top, left
    assert group == c and w.shape == (c, 1, kh, kw)
    padded = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (h + top + bottom - kh) // sh + 1
    ow = (wd + left + right - kw) // sw + 1
    out = np.zeros((n, oh, ow, c), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            window = padded[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
            out += window * w[:, 0, ky, kx]
    if b is not None:
        out += b
    return out.transpose(0, 3, 1, 2)


if __name__ == "__main__":
    broken = "--break-padding" in sys.argv[1:]
    cases = check_against_reference(
        "Conv", lambda *inputs, **attrs: my_depthwise(*inputs, **attrs, break_padding=broken),
        conv_nodes(depthwise=True), max_examples=200)
    print(f"my_depthwise agrees with tinyface.reference.conv on {cases} depthwise Conv nodes")
