"""kernels.codes: the int8 codes of float32 rows and the bound on a code's score.

The bound is checked on the scores the search's kernels compute (``topk._score``
on the float32 row, ``topk._code_sum`` on its code and the query's int16 code,
scaled in float64 as the search scales it): on random rows and queries of any
scale, and on adversarial ones, whose every value sits just inside half a step
of its code, the errors all of one sign and the query along them, so that the
float32 score is within one percent of the bound.
"""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernel_testing import examples
from tinyface.errors import InputError
from tinyface.kernels.codes import MIN_SCALE, QUERY_MAX, encode, query_codes, row_bytes, split
from tinyface.kernels.topk import _code_sum, _code_sums4, _score
from tinyface.testing.strategies import seeds

dims = st.sampled_from([1, 3, 15, 16, 17, 31, 32, 33, 64, 128, 130])


@numba.njit
def _scores(x, codes, scales, q, b, sigma, bound):
    """(f, a, bound * s) for every row of x and query of q, as the search computes them
    (a and bound * s in float64)."""
    n, m = x.shape[0], q.shape[0]
    f = np.empty((n, m), np.float32)
    a = np.empty((n, m), np.float64)
    e = np.empty((n, m), np.float64)
    xf, qf, cf, bf = x.reshape(-1), q.reshape(-1), codes.reshape(-1), b.reshape(-1)
    for r in range(n):
        s = np.float64(scales[r])
        for j in range(m):
            f[r, j] = _score(xf, x, r, qf, q, j)
            a[r, j] = (s * sigma[j]) * np.float64(_code_sum(cf, codes.shape[1], r, bf, j, q.shape[1]))
            e[r, j] = bound[j] * s
    return f, a, e


def scores(x, q):
    values, words = split(encode(x))
    return _scores(x, values, np.ascontiguousarray(words[:, -1]), q, *query_codes(q))


def check_bound(x, q):
    """Every code's score is within the bound of its float32 row's, as the search tests it."""
    f, a, e = scores(x, q)
    assert (a + e >= f).all()          # what the search relies on
    assert (a - e <= f).all()
    return f, a, e


def adversarial(rng, n, d, scale=2.0 ** -7):
    """Rows whose every value but the first is (c + 1/2 - 2^-14) s times the query's sign:
    the code c errs by almost half a step, all errors along the query (q = the signs, q0 = 0).
    Returns (x, q)."""
    signs = rng.choice([-1.0, 1.0], d).astype(np.float32)
    signs[0] = 0
    c = rng.integers(-126, 126, (n, d)).astype(np.float64)
    x = (c + signs * (0.5 - 2.0 ** -14)) * scale
    x[:, 0] = 127 * scale                                  # pins the row's scale at s
    return x.astype(np.float32), signs[None].copy()


def sparse_normal(rng, shape, log_scale, zeros):
    """Normal values times 2^log_scale in float32, a fraction ``zeros`` of them set to 0."""
    x = (rng.standard_normal(shape) * 2.0 ** log_scale).astype(np.float32)
    x[rng.random(shape) < zeros] = 0
    return x


@settings(max_examples=examples(40), deadline=None)
@given(n=st.integers(1, 50), d=dims, log_scale=st.integers(-140, 60), seed=seeds)
def test_codes_are_within_half_a_step(n, d, log_scale, seed):
    x = sparse_normal(np.random.default_rng(seed), (n, d), log_scale, 0.1)
    codes = encode(x)
    assert codes.shape == (n, row_bytes(d)) and row_bytes(d) % 4 == 0
    values, words = split(codes)
    scales = words[:, -1]
    c = values[:, :d].astype(np.float64)
    assert (np.abs(c) <= 127).all() and (values[:, d:-4] == 0).all() and (scales >= MIN_SCALE).all()
    s = scales.astype(np.float64)[:, None]
    assert (np.abs(x - s * c) <= s * (0.5 + 2.0 ** -46)).all()
    np.testing.assert_array_equal(encode(x[::-1]), codes[::-1])      # a row's code is its own


@settings(max_examples=examples(40), deadline=None)
@given(n=st.integers(1, 40), d=dims, m=st.integers(1, 4), log_scale=st.integers(-130, 60),
       log_q=st.integers(-60, 24), seed=seeds)
def test_the_bound_holds_on_random_rows(n, d, m, log_scale, log_q, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * 2.0 ** log_scale).astype(np.float32)
    q = (rng.standard_normal((m, d)) * 2.0 ** log_q).astype(np.float32)
    check_bound(x, q)


@settings(max_examples=examples(25), deadline=None)
@given(d=st.sampled_from([16, 17, 33, 128, 130]), log_scale=st.integers(-20, 20), seed=seeds)
def test_the_bound_holds_on_rows_near_it(d, log_scale, seed):
    rng = np.random.default_rng(seed)
    x, q = adversarial(rng, 30, d, 2.0 ** log_scale)
    f, a, e = check_bound(x, q)
    closest = ((f - a) / e).max()
    assert closest > 0.99 * np.sqrt((d - 1) / d)     # the bound is all but reached: it is tight


def test_a_zero_row_and_a_huge_one():
    x = np.zeros((2, 8), np.float32)
    x[1] = 2.0 ** 64
    codes = encode(x)
    values, words = split(codes)
    assert words[0, -1] == MIN_SCALE and (values[0, :8] == 0).all()
    check_bound(x, np.ones((1, 8), np.float32))


@pytest.mark.parametrize("rows, message", [
    (np.zeros((2, 4), np.float64), "float32"),
    (np.zeros(4, np.float32), "float32"),
    (np.zeros((2, 0), np.float32), "float32"),
    (np.array([[1, np.nan]], np.float32), "finite"),
    (np.array([[1, np.inf]], np.float32), "finite"),
    (np.array([[1, 2.0 ** 65]], np.float32), "2\\^64"),
])
def test_bad_rows_are_refused(rows, message):
    with pytest.raises(InputError, match=message):
        encode(rows)


@settings(max_examples=examples(30), deadline=None)
@given(m=st.integers(1, 4), d=dims, log_q=st.integers(-149, 25), seed=seeds)
def test_query_codes_are_exact_int16_within_half_a_step(m, d, log_q, seed):
    q = sparse_normal(np.random.default_rng(seed), (m, d), log_q, 0.2)
    b, sigma, bound = query_codes(q)
    assert b.dtype == np.int16 and (np.abs(b.astype(np.int64)) <= QUERY_MAX).all()
    assert (np.abs(q - sigma[:, None] * b) <= sigma[:, None] * (0.5 + 2.0 ** -36)).all()
    assert np.isfinite(bound).all() and (bound > 0).all()


def test_integer_sums_cannot_overflow_and_wide_rows_are_refused():
    d = 2000                                   # B = (2^31 - 1) // (127 * 2000) = 8454
    q = np.full((1, d), 1.0, np.float32)
    b, _, _ = query_codes(q)
    assert b.max() == (2 ** 31 - 1) // (127 * d)
    x = np.full((1, d), 1.0, np.float32)       # codes 127: the largest sum, 127 * B * D < 2^31
    f, a, e = check_bound(x, q)
    np.testing.assert_allclose(a, d, rtol=1e-6)
    with pytest.raises(InputError, match="at most 133,000"):
        query_codes(np.ones((1, 140_000), np.float32))


def test_long_queries_are_refused():
    with pytest.raises(InputError, match="norm at most"):
        query_codes(np.full((1, 4), 2.0 ** 40, np.float32))


@settings(max_examples=examples(30), deadline=None)
@given(n=st.integers(1, 9), m=st.integers(1, 3), d=dims, seed=seeds)
def test_code_sums_are_the_exact_integer_products(n, m, d, seed):
    """``topk._code_sum`` and ``_code_sums4`` (vectors of 2 x isimd.LANES values, then the rest
    one by one) equal the int64 matrix product of the codes and the queries' int16 codes."""
    rng = np.random.default_rng(seed)
    values, _ = split(encode(rng.standard_normal((n + 3, d)).astype(np.float32)))
    b, _, _ = query_codes(rng.standard_normal((m, d)).astype(np.float32))
    want = values[:, :d].astype(np.int64) @ b.T.astype(np.int64)
    one, four = _sums(values, b, n)
    np.testing.assert_array_equal(one, want[:n])
    np.testing.assert_array_equal(four, np.stack([want[r:r + 4] for r in range(n)]))


@numba.njit
def _sums(values, b, n):
    """(T of rows 0..n-1 by ``_code_sum``; T of rows r..r+3 by ``_code_sums4`` for each r < n)."""
    m, d = b.shape
    one = np.empty((n, m), np.int64)
    four = np.empty((n, 4, m), np.int64)
    cf, bf = values.reshape(-1), b.reshape(-1)
    for r in range(n):
        for j in range(m):
            one[r, j] = _code_sum(cf, values.shape[1], r, bf, j, d)
            t = _code_sums4(cf, values.shape[1], r, bf, j, d)
            for i in range(4):
                four[r, i, j] = t[i]
    return one, four
