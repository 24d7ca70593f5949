"""Numba kernels, one module per op family.

All maps are NHWC float32 (channels contiguous, so inner loops vectorise over
channels) and every weight is packed at load time into the layout its kernel
reads.  Kernels trust their arguments: shapes are validated by the caller
(``tinyface.runtime.binders``) because Numba does not bounds-check.
"""
from tinyface import jit_cache

jit_cache.apply_environment()        # TINYFACE_CACHE_DIR: before any kernel is defined
