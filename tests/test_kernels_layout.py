"""kernels.layout: NCHW <-> NHWC conversion is exactly np.transpose (pure data
movement, compared bit for bit), for any sizes down to 1, contiguous or not."""
import numpy as np
from hypothesis import given, settings, strategies as st

from kernel_testing import examples
from tinyface.testing.strategies import seeds
from tinyface.kernels.layout import to_nchw, to_nhwc

dims = st.integers(1, 17)


@settings(max_examples=examples(40), deadline=None)
@given(n=st.integers(1, 3), c=dims, h=dims, w=dims, seed=seeds)
def test_to_nhwc_and_back(n, c, h, w, seed):
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)
    nhwc = np.empty((n, h, w, c), np.float32)
    to_nhwc(x, nhwc)
    np.testing.assert_array_equal(nhwc, x.transpose(0, 2, 3, 1))
    back = np.empty_like(x)
    to_nchw(nhwc, back)
    np.testing.assert_array_equal(back, x)


def test_strided_and_read_only_inputs():
    base = np.arange(2 * 6 * 5 * 8, dtype=np.float32).reshape(2, 6, 5, 8)
    strided = base[:, ::2, :, ::2]                      # a view: N x 3 x 5 x 4
    out = np.empty((2, 5, 4, 3), np.float32)
    to_nhwc(strided, out)
    np.testing.assert_array_equal(out, strided.transpose(0, 2, 3, 1))
    frozen = np.ascontiguousarray(strided)
    frozen.flags.writeable = False
    to_nhwc(frozen, out)
    np.testing.assert_array_equal(out, strided.transpose(0, 2, 3, 1))
