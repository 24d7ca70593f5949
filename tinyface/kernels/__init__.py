"""Numba kernels, one module per op family.

All maps are NHWC float32 (channels contiguous, so inner loops vectorise over
channels) and every weight is packed at load time into the layout its kernel
reads.  Kernels trust their arguments: shapes are validated by the caller
(``tinyface.runtime.steps``) because Numba does not bounds-check.
"""
