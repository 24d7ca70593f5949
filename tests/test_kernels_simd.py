"""kernels.simd: each vector operation against NumPy, lane by lane; the target's vector width.

Inputs are float32 arrays of 3 to 5 vectors (of the target's ``LANES``) drawn by hypothesis, including
NaN, +-inf, +-0.0 and subnormals, at every vector offset.  add and mul must
equal NumPy's float32 results bit for bit (NaNs compared as NaNs); fma must be
within one ulp of the float64 result rounded to float32 (that double rounding
can itself be one ulp off a true fused multiply-add) and bit-exact on small
integers.  The runs (tuples of vectors) must equal their vectors' operations.
The vector width follows the CPU Numba compiles for, read in fresh processes
with ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` set (x86 hosts only).
"""
import os
import platform
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from kernel_testing import examples
from tinyface.kernels.simd import (LANES, add, fma, fma_run, load, load_part, load_run, maximum, mul, splat, store,
                                   store_part, zeros, zeros_run)

any_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
finite_float32 = st.floats(-2.0**60, 2.0**60, width=32)


def vectors(count, elements=any_float32):
    return arrays(np.float32, count * LANES, elements=elements)


@numba.njit(cache=True)
def _apply(op, u, v, w, x, out):
    """out[i:i+LANES] = op(u, v, w, x) at each vector offset i, where op numbers the operation."""
    for i in range(0, out.size, LANES):
        a, b, c, d = load(u, i), load(v, i), load(w, i), load(x, i)
        if op == 0:
            r = add(a, b)
        elif op == 1:
            r = mul(a, b)
        elif op == 2:
            r = fma(a, b, c)
        elif op == 3:
            r = maximum(a, b)
        elif op == 4:
            r = zeros()
        else:
            r = a
        store(out, i, r)


def apply(op, u, v=None, w=None, x=None):
    v, w, x = (u if a is None else a for a in (v, w, x))
    out = np.full(u.size, np.float32(1234.5))
    _apply(op, u, v, w, x, out)
    return out


def same_bits_or_both_nan(got, want):
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.int32), want[~nan].view(np.int32))


@settings(max_examples=examples(50), deadline=None)
@given(u=vectors(4), v=vectors(4))
def test_add_and_mul_are_numpys_float32(u, v):
    with np.errstate(all="ignore"):
        same_bits_or_both_nan(apply(0, u, v), u + v)
        same_bits_or_both_nan(apply(1, u, v), u * v)


@settings(max_examples=examples(50), deadline=None)
@given(u=vectors(4), v=vectors(4))
def test_maximum_is_the_running_maximum_of_a_comparison(u, v):
    """v where v > u, else u: NaN in v never wins, NaN in u is kept, -0.0 stays against 0.0."""
    same_bits_or_both_nan(apply(3, u, v), np.where(v > u, v, u))


@settings(max_examples=examples(50), deadline=None)
@given(u=vectors(3, finite_float32), v=vectors(3, finite_float32), w=vectors(3, finite_float32))
def test_fma_is_the_exact_product_plus_w_rounded(u, v, w):
    want = (u.astype(np.float64) * v + w).astype(np.float32)
    got = apply(2, u, v, w)
    finite = np.isfinite(want)
    np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=1)


@settings(max_examples=examples(25), deadline=None)
@given(data=st.data())
def test_fma_on_small_integers_is_exact(data):
    ints = vectors(3, st.integers(-2048, 2048).map(float))
    u, v, w = (data.draw(ints) for _ in range(3))
    np.testing.assert_array_equal(apply(2, u, v, w), u * v + w)


@settings(max_examples=examples(25), deadline=None)
@given(u=vectors(5), offset=st.integers(0, 4))
def test_load_and_store_move_exactly_the_lanes_at_an_offset(u, offset):
    """Copying one vector at a (possibly unaligned) offset leaves every other element alone."""
    @numba.njit(cache=False)
    def copy_one(src, dst, i):
        store(dst, i, load(src, i))
    start = offset * LANES // 2                              # also half-vector offsets
    dst = np.full(u.size, np.float32(-7.0))
    if start + LANES <= u.size:
        copy_one(u, dst, start)
        same_bits_or_both_nan(dst[start:start + LANES], u[start:start + LANES])
        assert (dst[:start] == -7.0).all() and (dst[start + LANES:] == -7.0).all()


@pytest.mark.parametrize("value", [0, 3, -2.5, np.float32(1e-40), np.float64(0.1), np.inf])
def test_splat_puts_the_float32_value_in_every_lane(value):
    @numba.njit(cache=False)
    def fill(out, x):
        store(out, 0, splat(x))
    out = np.empty(LANES, np.float32)
    fill(out, value)
    np.testing.assert_array_equal(out, np.full(LANES, np.float32(value)))


def test_zeros_are_positive_zeros():
    got = apply(4, np.full(2 * LANES, np.float32(np.nan)))
    np.testing.assert_array_equal(got.view(np.int32), 0)


def test_operations_refuse_other_types():
    """Mixing a vector with a scalar is a typing error at compile time, not a wrong answer."""
    @numba.njit(cache=False)
    def bad(a):
        return add(load(a, 0), 1.0)
    with pytest.raises(numba.core.errors.TypingError):
        bad(np.zeros(LANES, np.float32))

    @numba.njit(cache=False)
    def bad_load(a):
        return load(a, 0)
    with pytest.raises(numba.core.errors.TypingError):
        bad_load(np.zeros(LANES, np.float64))


RUN = 3     # vectors in the runs tested


@numba.njit(cache=True)
def _runs(x, w, c, out):
    """out = the run of RUN vectors fma_run(splat(x), w, c), then zeros_run, stored side by side."""
    r = fma_run(splat(x), load_run(w, 0, RUN), load_run(c, 0, RUN))
    z = zeros_run(RUN)
    for v in range(RUN):
        store(out, v * LANES, r[v])
        store(out, (RUN + v) * LANES, z[v])


@settings(max_examples=examples(25), deadline=None)
@given(x=finite_float32, w=vectors(RUN, finite_float32), c=vectors(RUN, finite_float32))
def test_runs_are_their_vectors(x, w, c):
    """A run's fma is each vector's fma (the same bits as ``apply``'s), zeros_run all zeros."""
    out = np.full(2 * RUN * LANES, np.float32(-1.0))
    _runs(np.float32(x), w, c, out)
    same_bits_or_both_nan(out[:RUN * LANES], apply(2, np.full_like(w, x), w, c))
    np.testing.assert_array_equal(out[RUN * LANES:].view(np.int32), 0)


def _target_in(env):
    """(cpu, lanes, registers) that ``simd.target`` reads in a fresh process with ``env``."""
    code = "from tinyface.kernels import simd; print(simd.CPU, simd.LANES, simd.REGISTERS)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 CPU names")
@pytest.mark.parametrize("cpu, lanes, registers", [("haswell", 8, 16), ("x86-64", 4, 16),
                                                    ("x86-64-v4", 16, 32)])
def test_vector_width_follows_numba_cpu_name(cpu, lanes, registers):
    """NUMBA_CPU_NAME with NUMBA_CPU_FEATURES empty (that CPU's own features): AVX2, SSE2, AVX-512."""
    assert _target_in({"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": ""}) == (cpu, lanes, registers)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 feature names")
def test_vector_width_follows_numba_cpu_features():
    """Features switched off narrow the vectors (what Numba's cache keys on, with the name)."""
    assert _target_in({"NUMBA_CPU_NAME": "x86-64-v4", "NUMBA_CPU_FEATURES": "-avx512f"})[1:] == (8, 16)


@numba.njit(cache=True)
def _parts(a, i, count, out):
    """out[j:j+count] = load_part(a, i, count) for out's first LANES; then store_part of
    load_part(a, i, count) + 1 into out from LANES on."""
    store(out, 0, load_part(a, i, count))
    store_part(out, LANES, add(load_part(a, i, count), splat(1.0)), count)


@pytest.mark.parametrize("count", range(LANES + 2))
def test_load_part_and_store_part_touch_only_their_lanes(count):
    """load_part reads count floats (zeros after: its input ends there) and store_part writes
    count floats (the sentinels after them stay); count >= LANES is a whole vector."""
    real = min(count, LANES)
    a = np.arange(1, real + 1, dtype=np.float32)
    out = np.full(3 * LANES, np.nan, np.float32)
    _parts(a, 0, count, out)
    np.testing.assert_array_equal(out[:LANES], np.concatenate([a, np.zeros(LANES - real, np.float32)]))
    np.testing.assert_array_equal(out[LANES:LANES + real], a + 1)
    assert np.isnan(out[LANES + real:]).all()
