"""int8 codes of float32 rows: a compact copy that an exact search scans first.

Layout.  The code of a row ``x`` of D float32 values is ``row_bytes(D)`` =
4 * ceil(D / 4) + 4 bytes: D int8 values ``c``, zeros up to a multiple of 4,
then the row's scale ``s`` (float32, little-endian), with

    s = max(fl32(max_d |x_d| / 127), 2^-126)       c_d = rint(x_d / s)   (in float64)

so that |c_d| <= 127 and x is approximately s * c.  Each row's code depends on
that row alone: codes of an append-only table are appended with it.

The error.  ``y = x_d / s`` is at most 127 / (1 - 2^-24) in magnitude, and its
float64 quotient is off by at most 2^-46 (relative 2^-53), so

    |x_d - s c_d| <= s (1/2 + 2^-46)    and    |x_d| <= 127.5 s (1 + 2^-45).   (1)

The query's code.  A query q (float32, finite, ||q|| <= 2^32) is coded too,
in int16: with B = min(32767, floor((2^31 - 1) / (127 D))) and, in float64,

    sigma = max_d |q_d| / B        b_d = rint(q_d / sigma)       (sigma = 1 if q = 0)

so |b_d| <= B (the quotient is at most B (1 + 2^-52)) and no int32 sum of D
products c_d b_d can overflow.  The search computes T = sum_d c_d b_d exactly
in int32 (``isimd.madd_bytes``: any order gives the same integer) and

    a = fl64(fl64(s sigma) T)                                            (2)

in float64: s sigma >= 2^-290 is a normal float64, so (2) is off by at most
2.0001 * 2^-53 |s sigma T|, and sigma |T| <= 127 (sqrt(D) ||q|| + D sigma).

The bound.  Let f be the float32 score the search's exact kernel computes
(``topk``: D products summed in 16 lanes, the lanes added in a tree, the D
mod 16 left over one by one: every product goes through at most h = D + 5
roundings), u = 2^-24 and gamma = h u / (1 - h u).  By the standard bound on
a sum of products in floating point, the Cauchy-Schwarz inequality and (1)
(||x|| <= 127.5 sqrt(D) s (1 + 2^-45)):

    |f - q.x|             <= gamma ||q|| 127.5 sqrt(D) s (1 + 2^-45) + (2D + 6) 2^-23 s
    |q.x - s q.c|         <= ||q|| sqrt(D) s (1/2 + 2^-46)
    |s q.c - s sigma T|   <= s sum_d |c_d| |q_d - sigma b_d| <= 127 s e(q)
    |s sigma T - a|       <= 2^-52 s 127 (sqrt(D) ||q|| + D sigma)

where (2D + 6) 2^-23 s covers the roundings that underflow (each at most
2^-150, doubled by the roundings after it, and s >= 2^-126) and
e(q) = sum_d |q_d - sigma b_d|, which ``query_codes`` computes in float64 and
enlarges to cover that arithmetic's error (1 + 2^-30, plus 2^-40 (||q||_1 +
D sigma): far more than D + 3 roundings of 2^-53 can lose).  Hence |f - a| <=
C(q) s with

    C(q) = ||q|| sqrt(D) (1/2 + 2^-46 + 127.5 gamma (1 + 2^-45) + 127 * 2^-52)
           + 127 e(q) + 127 * 2^-52 D sigma + (2D + 6) 2^-23,

and ``query_codes`` returns C'(q) = C(q) (1 + 2^-20) (float64; ||q|| in
float64 is off by far less than 2^-20).  The search skips a row when
fl64(a + fl64(C'(q) s)) < r, r the k-th best score so far.  That sum's two
roundings lose at most 2^-52 (|a| + C'(q) s) <= 2^-43 C(q) s (|a| <= 508 C(q)
s, as D sigma 127 <= sqrt(D) ||q|| for D <= 66,000), less than the C(q) s
2^-20 that C' adds: so a + C'(q) s as computed exceeds f, and a skipped row's
score f is below r.  The search therefore keeps the same top k as a scan of
the float32 rows, ties included.  On 128-d unit vectors C' is about 5.9 and s
about 0.002: a row's score is known to within about 0.012 before its float32
row is read.
"""
import numba
import numpy as np

from tinyface.errors import InputError

INT8_MAX = 127
MIN_SCALE = np.float32(2.0 ** -126)      # the smallest normal float32
MAX_MAGNITUDE = 2.0 ** 64                # rows larger than this are refused
MAX_QUERY_NORM = 2.0 ** 32               # queries longer than this are refused


def row_bytes(dim) -> int:
    """Bytes of one row's code: ``dim`` int8, padding to a multiple of 4, a float32 scale."""
    return 4 * -(-int(dim) // 4) + 4


def encode(rows) -> np.ndarray:
    """The codes of ``rows`` (n x D float32) as an n x ``row_bytes(D)`` uint8 array."""
    x = np.asarray(rows)
    if x.ndim != 2 or x.dtype != np.float32 or x.shape[1] == 0:
        raise InputError(f"rows to encode must be float32 n x D, got {x.dtype} of shape {x.shape}")
    n, d = x.shape
    out = np.zeros((n, row_bytes(d)), np.uint8)
    if n == 0:
        return out
    peak = np.abs(x).max(axis=1)
    if not np.isfinite(peak).all() or peak.max() > MAX_MAGNITUDE:
        raise InputError(f"rows to encode must be finite and at most 2^64 in magnitude, "
                         f"got a largest value of {peak.max()}")
    scale = np.maximum(peak / np.float32(INT8_MAX), MIN_SCALE)
    out[:, :d] = np.rint(x / scale[:, None].astype(np.float64)).astype(np.int8).view(np.uint8)
    out[:, -4:] = scale.astype("<f4")[:, None].view(np.uint8)
    return out


def split(codes):
    """(c, w): the codes ``codes`` (n x row bytes uint8) as n x row bytes int8 values (row
    r's code in c[r, :dim]) and as n x row bytes / 4 float32 words (its scale: w[r, -1])."""
    return codes.view(np.int8), codes.view("<f4")


QUERY_MAX = 32767                        # the largest |b_d| of a query's int16 code


def query_codes(queries):
    """(b, sigma, bound) for the rows of ``queries`` (M x D float32, finite; see the module
    docstring): their int16 codes b (M x D), steps sigma (M, float64) and bound factors
    C'(q) (M, float64).  A row of codes c with scale s scores a = (s sigma) T, T = c . b,
    within C'(q) s of the float32 row's score."""
    q = np.asarray(queries)
    d = q.shape[1]
    most = min(QUERY_MAX, (2 ** 31 - 1) // (INT8_MAX * d))
    if most < INT8_MAX:
        raise InputError(f"int8 codes search rows of at most 133,000 values, not {d}")
    u = 2.0 ** -24
    gamma = (d + 5) * u / (1 - (d + 5) * u)
    per_norm = np.sqrt(d) * (0.5 + 2.0 ** -46 + 127.5 * gamma * (1 + 2.0 ** -45) + INT8_MAX * 2.0 ** -52)
    b, sigma, bound, longest = _query_codes(q, most, per_norm, INT8_MAX * 2.0 ** -52 * d, (2 * d + 6) * 2.0 ** -23)
    if longest > MAX_QUERY_NORM:
        raise InputError(f"queries searched with int8 codes must have norm at most 2^32, got {longest:.3g}")
    return b, sigma, bound


@numba.njit(cache=True)
def _query_codes(q, most, per_norm, per_sigma, constant):
    """``query_codes``'s arrays, and the largest norm, all in float64: C'(q) = (||q||
    per_norm + 127 e(q) + per_sigma sigma + constant) (1 + 2^-20)."""
    m, d = q.shape
    b = np.empty((m, d), np.int16)
    sigma = np.empty(m)
    bound = np.empty(m)
    longest = 0.0
    for j in range(m):
        total = peak = ones = 0.0
        for c in range(d):
            v = np.float64(q[j, c])
            total += v * v
            peak = max(peak, abs(v))
            ones += abs(v)
        norm = np.sqrt(total)
        longest = max(longest, norm)
        step = peak / most if peak > 0 else 1.0
        error = 0.0
        for c in range(d):
            v = np.float64(q[j, c])
            code = np.rint(v / step)
            b[j, c] = np.int16(code)
            error += abs(v - step * code)
        error = error * (1 + 2.0 ** -30) + 2.0 ** -40 * (ones + d * step)
        sigma[j] = step
        bound[j] = (norm * per_norm + INT8_MAX * error + per_sigma * step + constant) * (1 + 2.0 ** -20)
    return b, sigma, bound, longest
