"""Exact top-k inner-product search: the scores fused with the selection of the best.

Layout: ``x`` is N x D float32, one row per stored vector (row-major, as the
gallery's memory-mapped file holds them), ``queries`` M x D.  For each query
``j`` the result is the k rows ``i`` with the largest

    s(i, j) = sum_d x[i, d] * queries[j, d]

ordered by score, highest first; among equal scores the smaller row id comes
first.  Rows are offered in chunks (``TopK.scan``), each with the id of its
first row, so a table larger than memory is searched one chunk at a time and
no M x N score matrix is ever made.

Selection.  Each thread owns a contiguous part of every chunk and, per query,
a min-heap of the k best (score, id) keys it has seen, key a beating key b
when a.score > b.score, or the scores are equal and a.id < b.id.  The heap's
root is the k-th best key so far, and a row's score is first compared with
that root's score alone; on random data all but about k ln(N/k) rows fail
that one comparison, so selecting costs little more than computing the
scores.  Because keys are unique and the comparison is total, each heap
holds exactly the k best keys offered to it whatever the order they came in;
merging the threads' heaps gives the same answer for any thread count or
chunking, bit for bit.

Scores, two ways:

* fewer than ``MANY`` queries (the product is memory-bound): per row, the D
  products summed in 16 lanes (``kernels.simd``) and the lanes added in a
  fixed tree (``hsum``), then the D mod 16 left-over products one by one;
* ``MANY`` queries or more (compute-bound): register tiles of 4 rows x 16
  queries: 4 accumulator vectors, per d one vector load of the transposed,
  zero-padded queries and four broadcasts of ``x``; each lane's score is one
  FMA chain over d in order, as is the scalar loop that takes the N mod 4 rows
  left over.  Wider tiles (4 x 32, the GEMM's 4 x 64) ran at half the speed
  here: 30-37 GFLOP/s against 60-75 on one core of the measured machine.  The accumulators are stored to a small
  per-thread tile, then each 16 of them are compared with the 16 queries' roots
  at once (``ge_mask``) and only the lanes that pass are looked at.

The two sum the same products in a different order, so a score can differ by
a float32 rounding between a search with few queries and one with many.

Int8 codes first (``TopK.scan(x, offset, live, codes)``, ``kernels.codes``):
the same search over a compact copy of the rows, a quarter of the bytes.  Per
row and query, the int8 code c is multiplied by the query's int16 code b in
integers, exactly (``isimd.madd_bytes``: a ``pmaddwd`` per 16 values on x86),
and scaled in float64 to a = (s sigma) T; ``kernels.codes`` bounds how far the
float32 row's score f can be from it: f <= a + C'(q) s, s the code's scale.
Only when that bound reaches the heap's root is the float32 row read and its
score f computed exactly as the few-queries path does, then offered.  A row
that could enter the heap is never skipped, so the heaps end as a scan of the
float32 rows would leave them, bit for bit, ties included (tested).  On 1M
random 128-d unit rows about 70 of the million rows are read in float32 per
query (``TopK.rescored``).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from tinyface.errors import InputError
from tinyface.kernels import codes as int8_codes
from tinyface.kernels.isimd import LANES as ILANES, ihsum, izeros_run, madd_bytes
from tinyface.kernels.simd import FAST, float32x16, fma, load16, splat16, store, zeros16
from tinyface.kernels.tuning import SEARCH_WORK_PER_THREAD as WORK_PER_THREAD, TOPK_MANY as MANY, \
    TOPK_TILE_ROWS as TILE_ROWS, \
    SEARCH_CODED_BLOCK as CODED_BLOCK, SEARCH_CACHED_BYTES as CACHED_BYTES   # tiled from MANY queries

LANES = 16               # lanes of the score vectors on every CPU: the sums' order must not depend on it
NO_ID = np.iinfo(np.int64).max     # the id of an empty heap slot (score -inf)


# ------------------------------------------------------------ vector helpers

@intrinsic
def hsum(typingctx, v):
    """The sum of the 16 lanes of ``v``: halves added pairwise (8 + 8, 4 + 4, 2 + 2, 1 + 1)."""
    if v != float32x16:
        return None

    def codegen(context, builder, sig, args):
        value = args[0]
        width = LANES
        while width > 1:
            width //= 2
            undef = ir.Constant(value.type, ir.Undefined)
            low = builder.shuffle_vector(value, undef, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                                   list(range(width))))
            high = builder.shuffle_vector(value, undef, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                                    list(range(width, 2 * width))))
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))
    return types.float32(v), codegen


@intrinsic
def ge_mask(typingctx, u, v):
    """Bit ``b`` set where lane b of ``u`` >= lane b of ``v`` (ordered: NaN never passes)."""
    if u != float32x16 or v != float32x16:
        return None

    def codegen(context, builder, sig, args):
        bits = builder.fcmp_ordered(">=", args[0], args[1])
        return builder.zext(builder.bitcast(bits, ir.IntType(LANES)), ir.IntType(64))
    return types.int64(u, v), codegen


@intrinsic
def lane(typingctx, v, i):
    """Lane ``i`` (0..15, not checked) of ``v``."""
    if v != float32x16 or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.extract_element(args[0], index)
    return types.float32(v, i), codegen


# ------------------------------------------------------------ heaps

@numba.njit(inline="always", cache=True)
def _below(s, i, t, u):
    """Whether key (s, i) is worse than key (t, u): lower score, or equal score and larger id."""
    return s < t or (s == t and i > u)


@numba.njit(cache=True)
def offer(vals, ids, s, i):
    """Put key (s, i) into the min-heap (``vals``, ``ids``) of the k best if it beats the
    root, the k-th best; returns the root's score afterwards."""
    if not _below(vals[0], ids[0], s, i):
        return vals[0]
    k = vals.size
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        if child + 1 < k and _below(vals[child + 1], ids[child + 1], vals[child], ids[child]):
            child += 1
        if not _below(vals[child], ids[child], s, i):
            break
        vals[pos] = vals[child]
        ids[pos] = ids[child]
        pos = child
    vals[pos] = s
    ids[pos] = i
    return vals[0]


@numba.njit(cache=True)
def _offer_lanes(mask, c, row_id, n0, m, p, live, check_live, vals, ids, thr):
    """Offer row ``row_id``'s scores for queries n0..n0+15 (lanes of ``c``) whose bit is set."""
    if check_live and not live[row_id]:
        return
    for b in range(LANES):
        j = n0 + b
        if (mask >> b) & 1 and j < m:
            thr[p, j] = offer(vals[p, j], ids[p, j], lane(c, b), row_id)


# ------------------------------------------------------------ kernels

@numba.njit(inline="always", cache=True, fastmath=FAST)
def _score(af, a, r, qf, q, j):
    """Row r of a (N x width float32 rows; flat: ``af``) times query j of q (M x D, flat:
    ``qf``): the D products summed in 16 lanes, the lanes
    added in a tree, the D mod 16 others in order."""
    d = q.shape[1]
    width = a.shape[1]
    d16 = d - d % LANES
    acc = zeros16()
    for c in range(0, d16, LANES):
        acc = fma(load16(af, r * width + c), load16(qf, j * d + c), acc)
    s = hsum(acc)
    for c in range(d16, d):
        s += a[r, c] * q[j, c]
    return s


@numba.njit(inline="always", cache=True, fastmath=FAST)
def _scores4(af, a, r, qf, q, j):
    """``_score`` of rows r .. r + 3 and query j, their four chains of FMAs side by side (one
    FMA's latency is several of its issue slots) and each summed in ``_score``'s order."""
    d = q.shape[1]
    width = a.shape[1]
    d16 = d - d % LANES
    a0 = zeros16(); a1 = zeros16(); a2 = zeros16(); a3 = zeros16()                  # noqa: E702
    for c in range(0, d16, LANES):
        w = load16(qf, j * d + c)
        a0 = fma(load16(af, r * width + c), w, a0)
        a1 = fma(load16(af, (r + 1) * width + c), w, a1)
        a2 = fma(load16(af, (r + 2) * width + c), w, a2)
        a3 = fma(load16(af, (r + 3) * width + c), w, a3)
    s0 = hsum(a0); s1 = hsum(a1); s2 = hsum(a2); s3 = hsum(a3)                      # noqa: E702
    for c in range(d16, d):
        s0 += a[r, c] * q[j, c]
        s1 += a[r + 1, c] * q[j, c]
        s2 += a[r + 2, c] * q[j, c]
        s3 += a[r + 3, c] * q[j, c]
    return s0, s1, s2, s3


@numba.njit(inline="always", cache=True)
def _take(s, row_id, p, j, live, check_live, vals, ids, thr):
    """Offer score s of row ``row_id`` to heap (p, j) if it reaches the root and the row is live."""
    if s >= thr[p, j] and (not check_live or live[row_id]):
        thr[p, j] = offer(vals[p, j], ids[p, j], s, row_id)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _scan_few(x, q, offset, live, check_live, vals, ids, thr, four):
    """Offer rows x (ids offset..) to the heaps of each of the M < MANY queries ``q`` (M x D),
    four rows at a time if ``four`` (faster on rows in cache), else one at a time (faster on
    rows streamed from memory: the one sequential stream of loads the prefetcher likes)."""
    n = x.shape[0]
    m = q.shape[0]
    parts = vals.shape[0]
    xf = x.reshape(-1)
    qf = q.reshape(-1)
    for p in prange(parts):
        r, stop = n * p // parts, n * (p + 1) // parts
        while four and r + 4 <= stop:
            for j in range(m):
                s0, s1, s2, s3 = _scores4(xf, x, r, qf, q, j)
                _take(s0, offset + r, p, j, live, check_live, vals, ids, thr)
                _take(s1, offset + r + 1, p, j, live, check_live, vals, ids, thr)
                _take(s2, offset + r + 2, p, j, live, check_live, vals, ids, thr)
                _take(s3, offset + r + 3, p, j, live, check_live, vals, ids, thr)
            r += 4
        for r in range(r, stop):
            for j in range(m):
                _take(_score(xf, x, r, qf, q, j), offset + r, p, j, live, check_live, vals, ids, thr)


@numba.njit(inline="always", cache=True)
def _code_sum(cf, width, r, bf, j, d):
    """T = sum_d c[r, d] b[j, d], exactly, in int32: row r of the int8 codes (flat: ``cf``,
    rows of ``width`` bytes) times query j's int16 code (flat: ``bf``, rows of d values)."""
    step = 2 * ILANES
    d2 = d - d % step
    acc = izeros_run(1)[0]
    for c in range(0, d2, step):
        acc = madd_bytes(acc, cf, r * width + c, bf, j * d + c)
    t = ihsum(acc)
    for c in range(d2, d):
        t += np.int32(cf[r * width + c]) * np.int32(bf[j * d + c])
    return t


@numba.njit(cache=True, fastmath=FAST)
def _rescore(xf, x, r, qf, q, j, row_id, p, vals, ids, thr):
    """Score row r of x for query j as ``_score`` does and offer it to heap (p, j): a call
    of its own, so that the rare re-scoring stays out of the code scan's loop."""
    s = _score(xf, x, r, qf, q, j)
    if s >= thr[p, j]:
        thr[p, j] = offer(vals[p, j], ids[p, j], s, row_id)


@numba.njit(inline="always", cache=True)
def _code_sums4(cf, width, r, bf, j, d):
    """``_code_sum`` of rows r .. r + 3, side by side (one loop's overhead for four rows)."""
    step = 2 * ILANES
    d2 = d - d % step
    a0, a1, a2, a3 = izeros_run(4)
    for c in range(0, d2, step):
        at = r * width + c
        a0 = madd_bytes(a0, cf, at, bf, j * d + c)
        a1 = madd_bytes(a1, cf, at + width, bf, j * d + c)
        a2 = madd_bytes(a2, cf, at + 2 * width, bf, j * d + c)
        a3 = madd_bytes(a3, cf, at + 3 * width, bf, j * d + c)
    t0, t1, t2, t3 = ihsum(a0), ihsum(a1), ihsum(a2), ihsum(a3)
    for c in range(d2, d):
        w = np.int32(bf[j * d + c])
        t0 += np.int32(cf[r * width + c]) * w
        t1 += np.int32(cf[(r + 1) * width + c]) * w
        t2 += np.int32(cf[(r + 2) * width + c]) * w
        t3 += np.int32(cf[(r + 3) * width + c]) * w
    return t0, t1, t2, t3


@numba.njit(inline="always", cache=True)
def _passes(r, t, words, last, step, slack, root, passed, count):
    """Append row r to ``passed`` (at ``count``, returned one more if it passes) when its code,
    with integer score t, could reach ``root``."""
    scale = np.float64(words[r, last])
    if (scale * step) * np.float64(t) + slack * scale >= root:
        passed[count] = r
        return count + 1
    return count


@numba.njit(cache=True)
def _block_passes(cf, width, words, bf, j, d, r0, r1, step, slack, root, passed):
    """How many rows r0..r1-1 of the codes could reach ``root`` for query j, listed in
    ``passed``: a call of its own, a tight loop that LLVM keeps in registers."""
    last = words.shape[1] - 1
    count, r = 0, r0
    while r + 4 <= r1:
        t0, t1, t2, t3 = _code_sums4(cf, width, r, bf, j, d)
        count = _passes(r, t0, words, last, step, slack, root, passed, count)
        count = _passes(r + 1, t1, words, last, step, slack, root, passed, count)
        count = _passes(r + 2, t2, words, last, step, slack, root, passed, count)
        count = _passes(r + 3, t3, words, last, step, slack, root, passed, count)
        r += 4
    for r in range(r, r1):
        count = _passes(r, _code_sum(cf, width, r, bf, j, d), words, last, step, slack, root, passed, count)
    return count


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _scan_coded(codes, words, x, q, b, sigma, bound, offset, live, check_live, vals, ids, thr, rescored):
    """``_scan_few`` reading row r of ``x`` only where its int8 code says its score could
    reach the root: a + bound[j] s >= root, with a = (s sigma[j]) T, T the exact integer
    product of the code and query j's int16 code ``b[j]``, s the row's scale
    (``kernels.codes``; codes and words: the codes as int8 and as float32 words, the scale
    the last word).  Rows go in blocks of ``CODED_BLOCK``: per query, a tight loop over the
    block's codes lists the rows that pass (against the root as the block began), then
    those are read and offered.  ``rescored[p]`` counts the rows read."""
    n = x.shape[0]
    m, d = q.shape
    parts = vals.shape[0]
    width = codes.shape[1]
    xf = x.reshape(-1)
    qf = q.reshape(-1)
    cf = codes.reshape(-1)
    bf = b.reshape(-1)
    for p in prange(parts):
        passed = np.empty(CODED_BLOCK, np.int64)
        start, stop = n * p // parts, n * (p + 1) // parts
        r0 = start
        while r0 < stop:
            filled = True                     # while a heap has empty slots, blocks of 4 rows
            for j in range(m):
                filled &= thr[p, j] > -np.inf
            r1 = min(stop, r0 + (min(CODED_BLOCK, 4 + (r0 - start) // 8) if filled else 4))
            for j in range(m):
                count = _block_passes(cf, width, words, bf, j, d, r0, r1, sigma[j], bound[j], thr[p, j], passed)
                for i in range(count):
                    r = passed[i]
                    if not check_live or live[offset + r]:
                        rescored[p] += 1
                        _rescore(xf, x, r, qf, q, j, offset + r, p, vals, ids, thr)
            r0 = r1


@numba.njit(cache=True)
def _check_tile(tile, r0, n0, m, offset, p, live, check_live, vals, ids, thr, thr_flat):
    """Compare a tile's scores (``tile``: rows r0..r0+3 for queries n0..n0+15, row by row)
    with those queries' roots, and offer the lanes that pass."""
    t = load16(thr_flat, p * thr.shape[1] + n0)
    for i in range(TILE_ROWS):
        c = load16(tile, i * LANES)
        mask = ge_mask(c, t)
        if mask:
            _offer_lanes(mask, c, offset + r0 + i, n0, m, p, live, check_live, vals, ids, thr)
            t = load16(thr_flat, p * thr.shape[1] + n0)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _scan_many(x, qt, m, offset, live, check_live, vals, ids, thr):
    """Offer rows x (ids offset..) to the heaps of M >= MANY queries; ``qt`` is D x M16,
    the queries transposed and zero-padded to M16 (a multiple of 16) columns."""
    n, d = x.shape
    m16 = qt.shape[1]
    parts = vals.shape[0]
    qf = qt.reshape(-1)
    thr_flat = thr.reshape(-1)
    tiles = n // TILE_ROWS
    for p in prange(parts):
        tile = np.empty(TILE_ROWS * LANES, np.float32)      # a tile's scores, row by row
        for t in range(tiles * p // parts, tiles * (p + 1) // parts):
            r0 = t * TILE_ROWS
            for n0 in range(0, m16, LANES):
                c0 = zeros16(); c1 = zeros16(); c2 = zeros16(); c3 = zeros16()                    # noqa: E702
                for k in range(d):
                    w0 = load16(qf, k * m16 + n0)
                    c0 = fma(splat16(x[r0, k]), w0, c0)
                    c1 = fma(splat16(x[r0 + 1, k]), w0, c1)
                    c2 = fma(splat16(x[r0 + 2, k]), w0, c2)
                    c3 = fma(splat16(x[r0 + 3, k]), w0, c3)
                store(tile, 0, c0); store(tile, 16, c1); store(tile, 32, c2); store(tile, 48, c3)  # noqa
                _check_tile(tile, r0, n0, m, offset, p, live, check_live, vals, ids, thr, thr_flat)
        if p == parts - 1:
            for r in range(tiles * TILE_ROWS, n):
                for j in range(m):
                    s = np.float32(0.0)
                    for k in range(d):
                        s += x[r, k] * qt[k, j]
                    if s >= thr[p, j]:
                        row_id = offset + r
                        if not check_live or live[row_id]:
                            thr[p, j] = offer(vals[p, j], ids[p, j], s, row_id)


# ------------------------------------------------------------ the running selection

class TopK:
    """The k best rows for each of M queries, over rows offered chunk by chunk.

        top = TopK(queries, k)              # M x D float32
        for start in range(0, N, chunk):
            top.scan(x[start:start + chunk], start, live)
        scores, ids = top.result()          # M x min(k, rows offered), best first

    ``live`` (optional): a boolean or uint8 array over all row ids; rows where it
    is 0 are never selected.  ``parts``: independent heaps per query, one per
    thread (default: the current Numba thread count, or fewer for a search of
    ``rows`` rows, when given: at least ``WORK_PER_THREAD`` multiply-adds each).
    ``rescored``: how many (row, query) pairs the scans with int8 codes read in
    float32.  Fewer than ``MANY`` queries over float32 rows are scored four rows at a
    time unless ``rows`` says the table is larger than ``CACHED_BYTES``.
    """

    def __init__(self, queries, k, parts=None, rows=None):
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] == 0 or q.dtype != np.float32:
            raise InputError(f"queries must be a non-empty float32 M x D array, got "
                             f"{q.dtype} of shape {q.shape}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        self.k, self.dim, self.offered = int(k), q.shape[1], 0
        self.queries = _read_only(np.ascontiguousarray(q))
        self.many = q.shape[0] >= MANY
        self._threads = numba.get_num_threads()        # restored after each scan
        self._four = rows is None or rows * q.shape[1] * 4 <= CACHED_BYTES
        if parts is None:
            parts = self._threads if rows is None else max(1, min(self._threads, rows * q.size // WORK_PER_THREAD))
        finite, self.q, self.vals, self.ids, self.thr = _start(self.queries, self.k, int(parts), self.many)
        if not finite:
            raise InputError("queries hold NaN or infinity")
        if not self.many:
            self.q = self.queries
        self._coded = None                      # kernels.codes.query_codes, once needed
        self._rescored = np.zeros(len(self.vals), np.int64)

    @property
    def rescored(self) -> int:
        return int(self._rescored.sum())

    def scan(self, x, offset=0, live=None, codes=None):
        """Offer the rows of ``x`` (n x D float32), ids offset .. offset + n - 1.

        ``codes`` (optional, fewer than ``MANY`` queries): the rows' int8 codes,
        ``kernels.codes.encode(x)`` (n x row bytes uint8): then x is read only for the
        rows whose code's score, with its error bound, could reach a heap's root; the
        result is the same as without them."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim or x.dtype != np.float32:
            raise InputError(f"rows must be float32 n x {self.dim}, got {x.dtype} of shape {x.shape}")
        n = len(x)
        if n == 0:
            return
        x = _read_only(np.ascontiguousarray(x))
        if live is None:
            mask, check = _NO_MASK, False
        else:
            mask, check = np.asarray(live).view(np.uint8), True
            if mask.ndim != 1 or mask.size < offset + n:
                raise InputError(f"live mask of shape {mask.shape} does not cover rows "
                                 f"{offset}..{offset + n - 1}")
            mask = _read_only(mask)
        if codes is not None:
            if self.many:
                raise InputError(f"int8 codes are for fewer than {MANY} queries, not {self.vals.shape[1]}")
            codes = np.asarray(codes)
            if codes.shape != (n, int8_codes.row_bytes(self.dim)) or codes.dtype != np.uint8:
                raise InputError(f"codes of {n} rows must be uint8 {n} x "
                                 f"{int8_codes.row_bytes(self.dim)}, got {codes.dtype} of shape {codes.shape}")
            if self._coded is None:
                self._coded = tuple(_read_only(a) for a in int8_codes.query_codes(self.queries))
            values, words = int8_codes.split(np.ascontiguousarray(codes))
        fewer = len(self.vals) < self._threads
        if fewer:
            numba.set_num_threads(len(self.vals))    # wake no thread without a part
        try:
            if codes is not None:
                _scan_coded(_read_only(values), _read_only(words), x, self.queries, *self._coded,
                            int(offset), mask, check, self.vals, self.ids, self.thr, self._rescored)
            elif self.many:
                _scan_many(x, self.q, self.vals.shape[1], int(offset), mask, check,
                           self.vals, self.ids, self.thr)
            else:
                _scan_few(x, self.q, int(offset), mask, check, self.vals, self.ids, self.thr, self._four)
        finally:
            if fewer:
                numba.set_num_threads(self._threads)
        self.offered += n

    def result(self):
        """(scores M x k', ids M x k'): each query's best rows, best first, ties by smaller
        id; k' = min(k, live rows offered)."""
        vals, ids, found = _merge(self.vals, self.ids)
        return vals[:, :found], ids[:, :found]


@numba.njit(cache=True)
def _start(q, k, parts, many):
    """(finite, qt, vals, ids, thr) for a search of the M x D queries ``q``: whether they
    are all finite; if ``many``, the queries transposed and zero-padded to D x M16 (M16: M
    rounded up to 16), else an empty array; ``parts`` x M x k heaps of empty slots (score
    -inf, id NO_ID) and their roots' scores, parts x M16 (-inf; +inf in the padding, which
    no score passes)."""
    m, d = q.shape
    finite = True
    for j in range(m):
        for c in range(d):
            finite &= np.isfinite(q[j, c])
    m16 = -(-m // LANES) * LANES
    qt = np.zeros((d, m16) if many else (0, 0), np.float32)
    if many:
        qt[:, :m] = q.T
    vals = np.full((parts, m, k), -np.inf, np.float32)
    ids = np.full((parts, m, k), NO_ID, np.int64)
    thr = np.full((parts, m16), np.inf, np.float32)
    thr[:, :m] = -np.inf
    return finite, qt, vals, ids, thr


@numba.njit(cache=True)
def _merge(vals, ids):
    """Each query's k best keys of its P heaps (vals, ids: P x M x k), best first, and how
    many of the first query's are not empty slots."""
    parts, m, k = vals.shape
    out_vals = np.empty((m, k), np.float32)
    out_ids = np.empty((m, k), np.int64)
    cand_vals = np.empty(parts * k, np.float32)
    cand_ids = np.empty(parts * k, np.int64)
    for j in range(m):
        for p in range(parts):
            cand_vals[p * k:(p + 1) * k] = vals[p, j]
            cand_ids[p * k:(p + 1) * k] = ids[p, j]
        by_id = np.argsort(cand_ids, kind="mergesort")
        by_key = by_id[np.argsort(-cand_vals[by_id], kind="mergesort")]   # stable: ties by id
        for i in range(k):
            out_vals[j, i] = cand_vals[by_key[i]]
            out_ids[j, i] = cand_ids[by_key[i]]
    return out_vals, out_ids, int((out_ids[0] != NO_ID).sum())


def _read_only(a):
    """A read-only view, so that Numba compiles one version of each kernel."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


_NO_MASK = _read_only(np.ones(1, np.uint8))     # the live mask of a scan without one


def reference_top_k(x, queries, k, live=None):
    """NumPy reference of ``TopK``: float64 scores, full sort by (-score, id)."""
    s = np.asarray(queries, np.float64) @ np.asarray(x, np.float64).T
    ids = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    if live is not None:
        s = np.where(np.asarray(live, bool)[None, :s.shape[1]], s, -np.inf)
    order = np.lexsort((ids, -s), axis=-1)[:, :k]
    found = min(k, s.shape[1] if live is None else int(np.asarray(live, bool)[:s.shape[1]].sum()))
    return (np.take_along_axis(s, order, axis=-1)[:, :found],
            np.take_along_axis(ids, order, axis=-1)[:, :found])
