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

The bound.  For a query q (float32, finite, ||q|| <= 2^32) and a row x of
magnitude at most 2^64 (``encode`` refuses larger ones), let

* f = the float32 score the search's exact kernel computes (``topk``: D
  products summed in 16 lanes, the lanes added in a tree, the D mod 16 left
  over one by one: every product goes through at most h = D + 5 roundings);
* a = fl(s * t), t = the same float32 sum over the int8 codes instead of x
  (the int8 -> float32 conversion is exact).

With u = 2^-24, gamma = h u / (1 - h u) and the standard bound on a sum of
products computed in floating point (|error| <= gamma sum |q_d x_d|), the
Cauchy-Schwarz inequality and (1) (||x||, ||c|| <= 127.5 sqrt(D) s):

    |f - q.x|          <= gamma ||q|| 127.5 sqrt(D) s (1 + 2^-45)
    |q.x - s q.c|      <= ||q|| sqrt(D) s (1/2 + 2^-46)
    |a - s q.c|        <= s gamma ||q|| 127 sqrt(D) + u s ||q|| 127 sqrt(D) (1 + gamma)

and, where a value underflows, each of at most 2D + 5 roundings adds at most
2^-150 (doubled by the roundings after it), at most (2D + 6) 2^-23 s in all
since s >= 2^-126.  Hence, with

    C(q) = ||q|| sqrt(D) (1/2 + 2^-40 + 256 gamma + 128 u) + (2D + 6) 2^-23,

|f - a| <= C(q) s.  ``bound_factors`` returns C'(q) >= C(q) (1 + 2^-20) + 2^-24
in float32 (made in float64 and enlarged by 1 + 2^-22 before rounding to
float32, which loses less than 2^-24; the float64 arithmetic is off by far less),
enough that fl(C'(q) s) >= C(q) s whether or not the product underflows.  Rounding to nearest is monotone, so

    fl(a + fl(C'(q) s)) >= f            for every row,

fused into one FMA or not.  A search that skips the rows where
``a + C'(q) s < r`` (r the k-th best score so far, a float32) therefore skips
no row whose score f reaches r, and keeps the same top k as a scan of the
float32 rows, ties included.  On 128-d unit vectors C' is about 5.7 and s
about 0.002: a row's score is known to within about 0.01 before its float32
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


def bound_factors(queries) -> np.ndarray:
    """C'(q) for each row of ``queries`` (M x D float32, finite): see the module docstring.
    A row of codes with scale s scores within C'(q) s of the float32 row's score."""
    q = np.asarray(queries)
    d = q.shape[1]
    u = 2.0 ** -24
    gamma = (d + 5) * u / (1 - (d + 5) * u)
    # C' = C (1 + 2^-20) + 2^-24, times 1 + 2^-22 so that rounding to float32 cannot lower it
    up = (1 + 2.0 ** -20) * (1 + 2.0 ** -22)
    per_norm = np.sqrt(d) * (0.5 + 2.0 ** -40 + 256 * gamma + 128 * u) * up
    constant = ((2 * d + 6) * 2.0 ** -23 * (1 + 2.0 ** -20) + 2.0 ** -24) * (1 + 2.0 ** -22)
    factors, longest = _factors(q, per_norm, constant)
    if longest > MAX_QUERY_NORM:
        raise InputError(f"queries searched with int8 codes must have norm at most 2^32, got {longest:.3g}")
    return factors


@numba.njit(cache=True)
def _factors(q, per_norm, constant):
    """(norm * per_norm + constant for each row of q, in float32; the largest norm), the
    norms in float64."""
    m, d = q.shape
    out = np.empty(m, np.float32)
    longest = 0.0
    for j in range(m):
        total = 0.0
        for c in range(d):
            total += np.float64(q[j, c]) * np.float64(q[j, c])
        norm = np.sqrt(total)
        longest = max(longest, norm)
        out[j] = np.float32(norm * per_norm + constant)
    return out, longest
