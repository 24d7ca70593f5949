"""Run pytest with the pair multiply-adds compiled in generic LLVM operations.

    NUMBA_CACHE_DIR=DIR TINYFACE_CACHE_DIR=DIR python tests/generic_pairs.py [pytest arguments]

``isimd.PAIR_INSTRUCTION``, ``QUAD_INSTRUCTION`` and ``DOT_INSTRUCTION`` are set to None
before any kernel compiles, so ``_pmaddwd`` and ``_quad_dot`` are written as the forms a CPU
without x86's ``pmaddwd``, ``pmaddubsw`` and ``vpdpbusd`` compiles (ARM's NEON): the 8-bit
kernels and the int8 codes' sums must still equal their references bit for bit.  Give
it a cache folder of its own: kernels compiled with x86's instruction must not be loaded.
.ci/run runs it on the tests of those kernels.
"""
import sys

import pytest

from tinyface.kernels import isimd

isimd.PAIR_INSTRUCTION = isimd.QUAD_INSTRUCTION = isimd.DOT_INSTRUCTION = None
sys.exit(pytest.main(sys.argv[1:]))
