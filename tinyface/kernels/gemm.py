"""Matrix multiply with a fused epilogue: pointwise 1x1 convs and FC layers.

Layout: ``a`` is M x K (rows are pixels of an NHWC map, or batch rows of an FC
layer), ``w`` is K x N (packed once at load time, output channels contiguous,
and again as column panels: ``pack_panels``),
``out`` is M x N.  Then ``out[m, n] = epilogue(sum_k a[m, k] * w[k, n])``.

Every output is one chain of fused multiply-adds over k in order, from zero, then
the epilogue, whichever code computes it, so every target, tiling, thread count
and band of the fused block computes the same bits.

The bulk of ``out`` is computed in register tiles of ``ROWS`` (4) rows x
``TILE_VECTORS`` vectors (``_tile``; ``kernels.simd``: 4 x 64 columns on
AVX-512, 4 x 24 on AVX2, 4 x 16 on NEON): the accumulators stay in registers for
the whole k-loop, where per k ``TILE_VECTORS`` vector loads of ``w`` and four
broadcasts of ``a`` feed 4 * TILE_VECTORS fused multiply-adds; then the epilogue
is applied in registers and each vector is stored once.  The tile is sized to
the target's register file: its accumulators, one row of ``w`` and a broadcast
must fit (``tile_vectors``), else they spill to the stack on every k.  The tiles
take N - N mod 16 (``COLUMN_BLOCK``) columns: the wide tiles whole multiples of
both their width and 16 (``WIDE_BLOCK``), the rest tiles of ``REST_VECTORS``
(16 columns on AVX2 and AVX-512: a 4 x 8 tile has too few accumulators to hide
the multiply-adds' latency, and ran at half speed).  A run of rows whose count
is not a multiple of 4 ends with a tile that overlaps the one before it
(recomputing the same values).  The last N mod 16 columns, and all columns of
fewer rows than a tile, go through ``leftover_block``: ``accumulate_block`` (a
loop LLVM vectorises over n, accumulators in ``out``, the same chain of fused
multiply-adds) and a scalar epilogue pass.

The order of the tiles (``gemm_panels``): a run of rows (about ``TASK_ROWS``)
is done one column panel at a time, every tile of the panel before the next
panel, the panel's K x ``TILE_COLUMNS`` weights contiguous, where they stay in
L1 for all the rows.  The panels are packed once, at load time (``pack_panels``:
the panel of columns n0.. starts at ``K * n0``), so a kernel reads each weight
once, in order, as the prefetchers like it.  Row tile by row tile (``gemm_rows``,
the conv's patch rows), each tile reads its columns of ``w`` afresh: a 128 x 256
``w`` (128 KB) from L2 every tile, and a panel left in place, its rows a
power-of-two stride apart, falls into a few of L1's sets.
The runs of rows are independent and run in parallel (``prange``), at least
one per thread; a product with fewer rows than a tile and a long reduction (an
FC layer on a flattened map) splits k instead (``_gemm_split_k``).

The k step of a tile and its epilogue are intrinsics (``simd.fma_rows``,
``epilogue.finish_rows``): LLVM instructions emitted in place, which keep the
tiles' registers free of Numba's reference counting and keep Numba's compile
time of the inlined tiles down.  What the tiles leave (``leftover_block``) is one
function of its own, shared by every kernel that uses ``gemm_rows``: inlined,
its loops took about 10 s of each such kernel's compile, and the leftover GEMMs
measured no slower as a call (1 x 512 @ 512 x 128: 10.2 -> 8.5 us; 49 x 128 @
128 x 256: 35.1 -> 34.1 us).
"""
import math

import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import finish, finish_rows, vector_activations
from tinyface.kernels.simd import FAST, LANES, REGISTERS, fma_rows, load_run, zeros_tile
from tinyface.kernels.tuning import GEMM_ROWS, GEMM_TASK_ROWS as TASK_ROWS, K_CHUNK, LEFTOVER_ROWS as SMALL, \
    MAX_TILE_VECTORS

# TASK_ROWS: rows per parallel task of ``_gemm``; SMALL: rows per block of ``accumulate_block``;
# K_CHUNK: reduction rows per task of ``_gemm_split_k`` (measured: see ``kernels.tuning``)
COLUMN_BLOCK = 16   # the vector tiles take the columns in multiples of this, on every target


def tile_vectors(registers, rows=GEMM_ROWS):
    """Vectors per tile row for ``rows`` rows and a register file of ``registers``
    vectors: the rows x v accumulators, v loaded vectors of ``w`` and one broadcast
    fit, at most ``MAX_TILE_VECTORS`` (4: see ``kernels.tuning``).  4 rows: AVX2
    (16 registers) 3, AVX-512 and NEON (32) 4."""
    return min(MAX_TILE_VECTORS, (registers - 1) // (rows + 1))


ROWS = GEMM_ROWS
TILE_VECTORS = tile_vectors(REGISTERS)
TILE_COLUMNS = TILE_VECTORS * LANES
# What the wide tiles leave of the 16-column blocks goes to tiles of the widest run of
# vectors that divides a block: 16 columns on AVX2 (its wide tiles are 24: 64 = 48 + 16,
# 128 = 96 + 2 x 16, 256 = 240 + 16), 16 on AVX-512 (one vector; its wide tiles are 64),
# none on NEON (its wide tiles are 16).
REST_VECTORS = max(v for v in range(1, TILE_VECTORS + 1) if max(1, COLUMN_BLOCK // LANES) % v == 0)
REST_COLUMNS = REST_VECTORS * LANES
WIDE_BLOCK = math.lcm(TILE_COLUMNS, COLUMN_BLOCK)     # the wide tiles take the columns in multiples of this


@numba.njit(inline="always", cache=True, fastmath=FAST)
def accumulate_block(a, w, out, m0, rows, n_lo, N):
    """out[m0:m0+rows, n_lo:N] = a[m0:m0+rows] @ w[:, n_lo:N] for 1 <= rows <= SMALL: per
    row and k, ``out`` row += a[m, k] * w[k] (one fused multiply-add per output: the tiles'
    chain).

    The column loops run over unsigned indices: with a signed start that is not a
    constant, LLVM must allow for Python's negative indexing and does not vectorise them.
    """
    K = a.shape[1]
    n_lo, N = numba.uint64(n_lo), numba.uint64(N)
    for r in range(rows):
        o = out[m0 + r]
        for n in range(n_lo, N):
            o[n] = 0.0
        for k in range(K):
            x = a[m0 + r, k]
            wk = w[k]
            for n in range(n_lo, N):
                o[n] += x * wk[n]


@numba.njit(inline="always", cache=True)
def _tile(a, w, w_row, w_col, N, out, res, has_res, m0, n0, bias, act1, act2, rows, vectors):
    """out[m0:m0+rows, n0:n0+vectors*LANES] = epilogue(a[m0:m0+rows] @ w[:, those columns]),
    with ``out`` and ``res`` flat (row length N) and ``w`` flat, its row k's columns from
    ``w[k * w_row + w_col]`` (``w`` itself, or a panel of it); ``rows`` and ``vectors``
    compile-time constants."""
    acc = zeros_tile(rows, vectors)
    for k in range(a.shape[1]):
        acc = fma_rows(a, m0, k, load_run(w, k * w_row + w_col, vectors), acc)
    finish_rows(acc, n0, N, out, m0 * N + n0, res, has_res, bias, act1, act2)


@numba.njit(inline="always", cache=True)
def _column_tiles(a, w, w_row, w_col, N, out, res, has_res, m_lo, m_hi, n0, bias, act1, act2, vectors):
    """Rows m_lo..m_hi-1 (at least ROWS of them) of the columns from n0 (see ``_tile``) in
    ROWS-row tiles, the last one overlapping the one before it when the rows are not a
    multiple of ROWS (it recomputes the same values)."""
    for t in range((m_hi - m_lo + ROWS - 1) // ROWS):
        m0 = min(m_lo + t * ROWS, m_hi - ROWS)
        _tile(a, w, w_row, w_col, N, out, res, has_res, m0, n0, bias, act1, act2, ROWS, vectors)


@numba.njit(inline="always", cache=True)
def _leftover_rows(a, w, out, m_lo, m_hi, n_lo, epilogue):
    """Rows m_lo..m_hi-1 of the columns from n_lo by ``leftover_block``, SMALL rows a call."""
    for m0 in range(m_lo, m_hi, SMALL):
        leftover_block(a, w, out, m0, min(SMALL, m_hi - m0), n_lo, epilogue)


def tiled_columns(N):
    """The columns ``N - N mod COLUMN_BLOCK`` that the vector tiles take (when there are
    rows enough for a tile), and of them the ``n_wide`` that the wide tiles take."""
    n_tiled = N - N % COLUMN_BLOCK
    return n_tiled, n_tiled - n_tiled % WIDE_BLOCK


tiled_columns_in_kernel = numba.njit(inline="always", cache=True)(tiled_columns)


@numba.njit(inline="always", cache=True, fastmath=FAST)
def gemm_rows(a, w, out, m0, rows, flat, epilogue, act1, act2):
    """out[m0:m0+rows] = epilogue(a[m0:m0+rows] @ w), each tile reading ``w`` in place.

    ``out`` and the epilogue's residual are C-contiguous M x N arrays (the residual
    read when has_res); ``flat`` is (w, out, residual) flattened; ``act1, act2`` are
    ``epilogue.vector_activations(epilogue)``.
    """
    N = w.shape[1]
    w_flat, out_flat, res_flat = flat
    bias = epilogue[0]
    has_res = epilogue[5]
    n_tiled, n_wide = tiled_columns_in_kernel(N) if rows >= ROWS else (0, 0)
    for n0 in range(0, n_wide, TILE_COLUMNS):
        _column_tiles(a, w_flat, N, n0, N, out_flat, res_flat, has_res, m0, m0 + rows, n0, bias, act1, act2,
                      TILE_VECTORS)
    for n0 in range(n_wide, n_tiled, REST_COLUMNS):
        _column_tiles(a, w_flat, N, n0, N, out_flat, res_flat, has_res, m0, m0 + rows, n0, bias, act1, act2,
                      REST_VECTORS)
    if n_tiled < N:
        _leftover_rows(a, w, out, m0, m0 + rows, n_tiled, epilogue)


def pack_panels(w):
    """The column panels of the K x N ``w`` that ``gemm_panels`` reads, one flat float32
    array: panel after panel, each K x width row-major, ``TILE_COLUMNS`` wide up to
    ``n_wide`` then ``REST_COLUMNS`` wide up to ``n_tiled`` (``tiled_columns``), so the
    panel of columns n0.. starts at ``K * n0``.  Packed for the target this process
    compiles for (its tile widths)."""
    K, N = w.shape
    n_tiled, n_wide = tiled_columns(N)
    starts = [(n0, TILE_COLUMNS) for n0 in range(0, n_wide, TILE_COLUMNS)]
    starts += [(n0, REST_COLUMNS) for n0 in range(n_wide, n_tiled, REST_COLUMNS)]
    panels = np.empty(K * n_tiled, np.float32)
    for n0, width in starts:
        panels[K * n0:K * (n0 + width)] = w[:, n0:n0 + width].reshape(-1)
    return panels


@numba.njit(inline="always", cache=True, fastmath=FAST)
def gemm_panels(a, w, panels, out, m_lo, m_hi, flat, epilogue, act1, act2):
    """out[m_lo:m_hi] = epilogue(a[m_lo:m_hi] @ w), one column panel at a time.

    The same tiles as ``gemm_rows`` in another order: every tile of a panel of
    ``TILE_COLUMNS`` columns, then the next panel, each tile reading its weights from
    ``panels`` (``pack_panels(w)``), where a panel's K x TILE_COLUMNS weights are
    contiguous and stay in L1 for all the rows; row by row, the tiles read all of ``w``
    (128 KB for a 128 x 256 GEMM) from L2 every tile, and a panel left in ``w``, its
    rows a power-of-two stride apart, falls into a few of L1's sets and does not stay.
    The columns past the tiles' come from ``w`` itself.
    """
    K, N = w.shape
    _, out_flat, res_flat = flat
    bias = epilogue[0]
    has_res = epilogue[5]
    n_tiled, n_wide = tiled_columns_in_kernel(N) if m_hi - m_lo >= ROWS else (0, 0)
    for n0 in range(0, n_wide, TILE_COLUMNS):
        _column_tiles(a, panels, TILE_COLUMNS, K * n0, N, out_flat, res_flat, has_res, m_lo, m_hi, n0, bias, act1,
                      act2, TILE_VECTORS)
    for n0 in range(n_wide, n_tiled, REST_COLUMNS):
        _column_tiles(a, panels, REST_COLUMNS, K * n0, N, out_flat, res_flat, has_res, m_lo, m_hi, n0, bias, act1,
                      act2, REST_VECTORS)
    if n_tiled < N:
        _leftover_rows(a, w, out, m_lo, m_hi, n_tiled, epilogue)


@numba.njit(cache=True, fastmath=FAST)
def leftover_block(a, w, out, m0, rows, n_lo, epilogue):
    """out[m0:m0+rows, n_lo:] = epilogue(a[m0:m0+rows] @ w[:, n_lo:]) by ``accumulate_block``
    and ``finish_block`` (1 <= rows <= SMALL): what the vector tiles leave (the last N mod
    ``COLUMN_BLOCK`` columns; every column of fewer rows than a tile).

    A function of its own, not inlined: inlined, these loops took about 10 s of each
    kernel's compile (LLVM vectorising them), and they run on a few rows or columns.
    """
    accumulate_block(a, w, out, m0, rows, n_lo, w.shape[1])
    finish_block(out, m0, rows, n_lo, epilogue)


@numba.njit(inline="always", cache=True)
def run_rows(M, runs, r):
    """Rows [lo, hi) of run r of ``runs`` (see ``row_runs``) over M rows: whole tiles, the
    last run also the rows left over, so that a run has at least ROWS rows when M does."""
    tiles = M // ROWS
    hi = M if r == runs - 1 else (r + 1) * tiles // runs * ROWS
    return r * tiles // runs * ROWS, hi


def row_runs(M, parts):
    """How many runs of rows (``run_rows``) to split M rows into: about one per
    ``TASK_ROWS`` rows and at least ``parts``, but at most one per whole tile.  Plain
    Python for ``gemm`` (which runs the kernel), and jitted for the kernels (``row_runs_in_kernel``)."""
    return max(1, min(M // ROWS, max((M + TASK_ROWS - 1) // TASK_ROWS, parts)))


row_runs_in_kernel = numba.njit(inline="always", cache=True)(row_runs)


@numba.njit(cache=True, fastmath=FAST)
def _gemm_task(a, w, panels, out, flat, epilogue, act1, act2, tasks, task):
    """Run ``task`` of ``tasks`` (its rows by ``run_rows``), by ``gemm_panels``."""
    m_lo, m_hi = run_rows(a.shape[0], tasks, task)
    gemm_panels(a, w, panels, out, m_lo, m_hi, flat, epilogue, act1, act2)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _gemm(a, w, panels, epilogue, out, tasks):
    """``tasks`` runs of rows, each by ``_gemm_task`` (compiled on its own, the task index
    made int64: docs/kernels.md, "A parallel loop's body is one call")."""
    act1, act2 = vector_activations(epilogue)
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    for task in prange(tasks):
        _gemm_task(a, w, panels, out, flat, epilogue, act1, act2, tasks, np.int64(task))


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _gemm_split_k(a, w, epilogue, out):
    """As ``_gemm`` for a long reduction over few rows (MobiFace's FC: 1 x 25088 @
    25088 x 512, 51 MB of weights): the threads share fixed chunks of k, each
    streaming its own contiguous rows of ``w`` into a partial sum; the partial
    sums are then added in chunk order, so the result does not depend on the
    thread count."""
    M, K = a.shape
    N = w.shape[1]
    chunks = (K + K_CHUNK - 1) // K_CHUNK
    partial = np.empty((chunks, M, N), np.float32)
    for chunk in prange(chunks):
        k_lo = chunk * K_CHUNK
        k_hi = min(K, k_lo + K_CHUNK)
        part = partial[chunk]
        for r0 in range(0, M, SMALL):
            accumulate_block(a[:, k_lo:k_hi], w[k_lo:k_hi], part, r0, min(SMALL, M - r0), 0, N)
    for r in range(M):
        o = out[r]
        o[:] = partial[0, r]
        for chunk in range(1, chunks):
            p = partial[chunk, r]
            for n in range(N):
                o[n] += p[n]
    finish_block(out, 0, M, 0, epilogue)


def gemm(a, w, epilogue, out, panels=None):
    """out = epilogue(a @ w); see the module and ``epilogue`` docs.

    The epilogue's residual is M x N, read when has_res (any 2-D array otherwise).
    ``panels`` is ``pack_panels(w)``, packed once by the caller that owns ``w`` (None: packed
    here, for this call).  Rows are split between threads in runs of about ``TASK_ROWS``
    rows (whole tiles of ``ROWS``, ``row_runs``), at least one per thread; fewer rows than a
    tile with a reduction of at least two ``K_CHUNK`` split k instead.
    """
    M, K = a.shape
    if M < ROWS and K >= 2 * K_CHUNK:
        _gemm_split_k(a, w, epilogue, out)
        return
    if panels is None:
        panels = pack_panels(w)
    if panels.shape != (K * tiled_columns(w.shape[1])[0],):
        raise ValueError(f"gemm: panels of {panels.shape} for a {K} x {w.shape[1]} weight: not pack_panels(w)")
    _gemm(a, w, panels, epilogue, out, row_runs(M, numba.get_num_threads()))


@numba.njit(inline="always", cache=True)
def finish_block(out, m0, rows, n_lo, epilogue):
    """Apply the epilogue to out[m0:m0+rows, n_lo:] in place (its residual indexed like
    ``out``); unsigned column indices, as in ``accumulate_block``."""
    bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2 = epilogue
    for r in range(rows):
        o = out[m0 + r]
        res_row = res[m0 + r] if has_res else res[0]
        for n in range(numba.uint64(n_lo), numba.uint64(o.size)):
            o[n] = finish(o[n], n, bias, slope1, lo1, hi1, res_row, has_res, slope2, lo2, hi2)
