"""Helpers shared by the kernel property tests (tests/test_kernels_*.py).

The op geometries they draw, the seeds and the epilogue kinds are public, in
``tinyface.testing.strategies``; the test data in ``tinyface.testing.data``."""
import re

import numba
import numpy as np
import pytest
from hypothesis import settings


def examples(n):
    """``n`` examples under the default profile, 10x under "thorough" (see conftest)."""
    return max(1, n * settings.default.max_examples // 25)


def on_threads(n, fn):
    """Run ``fn()`` with ``n`` Numba threads, then restore the previous count."""
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(old)


needs_2_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")


def check(got, want, k, exact=False):
    """Equal shapes; bit-equal when ``exact``, else within rtol 1e-4, atol 1e-4 * sqrt(k)
    (``k`` the reduction length; data in [-1, 1])."""
    assert got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


def nhwc_residual(res, out_nchw_shape):
    """The NCHW residual ``res`` as the NHWC kernels read it."""
    assert res.shape == out_nchw_shape
    return np.ascontiguousarray(res.transpose(0, 2, 3, 1))


def assert_same_on_1_and_2_threads(fn):
    """``fn()`` gives bit-identical results on 1 and 2 threads and leaves the count as it was."""
    before = numba.get_num_threads()
    one = on_threads(1, fn)
    two = on_threads(2, fn)
    assert numba.get_num_threads() == before
    np.testing.assert_array_equal(one, two)


_FUNCTION = re.compile(r"^([A-Za-z_$][\w.$]*):")
_LABEL = re.compile(r"^(\.?L\w+):")
_FMA = re.compile(r"^\s*(vfmadd\w+|vfmsub\w+|fmla)\s")
# Stack slots: x86's spills are %rsp-relative (LLVM uses %rbp as a register of its own), AArch64's sp or x29.
_STACK = re.compile(r"\(%rsp\)|\[sp\b|\[x29\b")
_VECTOR_REGISTER = re.compile(r"%[xyz]mm\d|\b[qvs]\d+\b")
_JUMP = re.compile(r"^\s*(j\w+|b\.\w+|b)\s+(\.?L\w+)\s*$")


def fma_loops(asm, function, instruction=_FMA):
    """The loops doing fused multiply-adds (or the ``instruction``, a pattern matching its
    lines) in the compiled ``function`` (its name as in the source) of assembly ``asm`` (x86
    AT&T or AArch64 syntax), as (such instructions, stack accesses) per loop: each a basic block that ends jumping back to its own label.  The functions
    it calls are left out.  A stack access of a vector register in such a loop is a spill
    or reload of a vector (an accumulator, a weight) on every pass; integer registers
    (an address, a count) reloaded from the stack are not counted."""
    loops, inside, label, fmas, stack = [], False, None, 0, 0
    for line in asm.splitlines():
        found = _FUNCTION.match(line)
        if found:
            inside = f"{len(function)}{function}" in found.group(1)     # Itanium-mangled name
            continue
        found = _LABEL.match(line)
        if found:
            label, fmas, stack = found.group(1), 0, 0
            continue
        if not inside:
            continue
        fmas += bool(instruction.match(line))
        stack += bool(_STACK.search(line) and _VECTOR_REGISTER.search(line))
        jump = _JUMP.match(line)
        if jump and jump.group(2) == label and fmas:
            loops.append((fmas, stack))
    return loops
