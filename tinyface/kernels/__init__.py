"""Numba kernels, one module per op family.

All maps are NHWC float32 (channels contiguous, so inner loops vectorise over
channels) and every weight is packed at load time into the layout its kernel
reads.  Kernels trust their arguments: shapes are validated by the caller
(``tinyface.runtime.binders``) because Numba does not bounds-check.
"""
from tinyface import jit_cache

jit_cache.apply_environment()        # TINYFACE_CACHE_DIR: before any kernel is defined


def _where_kernels_cache():
    """Defined here only so that ``jit_cache`` can ask Numba where this folder's kernels cache."""


jit_cache.drop_stale(_where_kernels_cache)   # compiled kernels of older sources: gone
