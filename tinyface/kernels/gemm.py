"""Matrix multiply with a fused epilogue: pointwise 1x1 convs and FC layers.

Layout: ``a`` is M x K (rows are pixels of an NHWC map, or batch rows of an FC
layer), ``w`` is K x N (packed once at load time, output channels contiguous),
``out`` is M x N.  Then ``out[m, n] = epilogue(sum_k a[m, k] * w[k, n])``.

The bulk of ``out`` is computed in register tiles of 4 rows x ``TILE_VECTORS``
vectors (``_tile``; ``kernels.simd``: 4 x 64 columns on AVX-512, 4 x 24 on AVX2):
4 * TILE_VECTORS accumulator vectors stay in registers for the whole k-loop,
where per k ``TILE_VECTORS`` vector loads of ``w`` and four broadcasts of ``a``
feed 4 * TILE_VECTORS fused multiply-adds; then the epilogue is applied in
registers and each vector is stored once.  The tile is sized to the target's
register file: its accumulators, one row of ``w`` and a broadcast must fit
(``tile_vectors``), else they spill to the stack on every k.  Columns left over
in whole vectors take the same tile one vector wide.  Which columns the tiles
take does not depend on the vector width: N - N mod 16 (``COLUMN_BLOCK``) of
them, and the rows in fours, each output one fused multiply-add chain over k in
order, so every target computes the same bits.  The last N mod 16 columns and
the last M mod 4 rows go through ``accumulate_block`` (a loop LLVM vectorises
over n, accumulators in ``out``) and a scalar epilogue pass.

The order of the tiles (``gemm_panels``): a run of rows (about ``TASK_ROWS``)
is done one column panel at a time, every 4-row tile of the panel before the
next panel, with the panel's K x ``TILE_COLUMNS`` weights first copied to a
contiguous scratch, where they stay in L1 for all the rows.  Row tile by row
tile (``gemm_rows``, the conv's patch rows), each tile reads its columns of
``w`` afresh: a 128 x 256 ``w`` (128 KB) from L2 every 4 rows, and a panel
left in place, its rows a power-of-two stride apart, falls into a few of L1's
sets.  The runs of rows are independent and run in parallel (``prange``), at
least one per thread; a product with fewer rows than a tile and a long
reduction (an FC layer on a flattened map) splits k instead (``_gemm_split_k``).

Every helper of the tiles is inlined into the kernel (``inline="always"``):
compiled as separate functions, the tiles ran 10-20 % slower.  The epilogue's
vector activation is an LLVM-level intrinsic (``epilogue.activate_vector``), which
keeps Numba's compile time of the inlined tiles down.  What the tiles leave
(``leftover_block``) is one function of its own, shared by every kernel that
uses ``gemm_rows``: inlined, its loops took about 10 s of each such kernel's
compile, and the leftover GEMMs measured no slower as a call (1 x 512 @ 512 x
128: 10.2 -> 8.5 us; 49 x 128 @ 128 x 256: 35.1 -> 34.1 us).
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import finish, finish_run, vector_activations
from tinyface.kernels.simd import FAST, LANES, REGISTERS, fma_run, load, load_run, splat, store, zeros_run
from tinyface.kernels.tuning import GEMM_ROWS as ROWS, GEMM_TASK_ROWS as TASK_ROWS, K_CHUNK, \
    LEFTOVER_K_UNROLL as KU, LEFTOVER_ROWS as SMALL, MAX_TILE_VECTORS

# ROWS: rows per register tile; TASK_ROWS: rows per parallel task of ``_gemm``; KU and SMALL: the k-unrolling and rows per block of
# ``accumulate_block``; K_CHUNK: reduction rows per task of ``_gemm_split_k`` (measured:
# see ``kernels.tuning``)
COLUMN_BLOCK = 16   # the vector tiles take the columns in multiples of this, on every target


def tile_vectors(registers):
    """Vectors per tile row for a register file of ``registers`` vectors: the 4 x v
    accumulators, v loaded vectors of ``w`` and one broadcast fit, at most
    ``MAX_TILE_VECTORS`` (4: see ``kernels.tuning``).  AVX2 (16): 3; AVX-512 (32): 4."""
    return min(MAX_TILE_VECTORS, (registers - 1) // (ROWS + 1))


TILE_VECTORS = tile_vectors(REGISTERS)
TILE_COLUMNS = TILE_VECTORS * LANES


@numba.njit(inline="always", cache=True, fastmath=FAST)
def accumulate_block(a, w, out, m0, rows, n_lo, N):
    """out[m0:m0+rows, n_lo:N] = a[m0:m0+rows] @ w[:, n_lo:N] for 1 <= rows <= SMALL.

    The column loops run over unsigned indices: with a signed start that is not a
    constant, LLVM must allow for Python's negative indexing and does not vectorise them.
    """
    K = a.shape[1]
    n_lo, N = numba.uint64(n_lo), numba.uint64(N)
    for r in range(rows):
        for n in range(n_lo, N):
            out[m0 + r, n] = 0.0
    k_main = K - K % KU
    if rows == SMALL:
        for k in range(0, k_main, KU):
            a00 = a[m0, k]; a01 = a[m0, k + 1]; a02 = a[m0, k + 2]; a03 = a[m0, k + 3]
            a10 = a[m0 + 1, k]; a11 = a[m0 + 1, k + 1]; a12 = a[m0 + 1, k + 2]; a13 = a[m0 + 1, k + 3]
            a20 = a[m0 + 2, k]; a21 = a[m0 + 2, k + 1]; a22 = a[m0 + 2, k + 2]; a23 = a[m0 + 2, k + 3]
            a30 = a[m0 + 3, k]; a31 = a[m0 + 3, k + 1]; a32 = a[m0 + 3, k + 2]; a33 = a[m0 + 3, k + 3]
            w0 = w[k]; w1 = w[k + 1]; w2 = w[k + 2]; w3 = w[k + 3]
            o0 = out[m0]; o1 = out[m0 + 1]; o2 = out[m0 + 2]; o3 = out[m0 + 3]
            for n in range(n_lo, N):
                b0 = w0[n]; b1 = w1[n]; b2 = w2[n]; b3 = w3[n]
                o0[n] += a00 * b0 + a01 * b1 + a02 * b2 + a03 * b3
                o1[n] += a10 * b0 + a11 * b1 + a12 * b2 + a13 * b3
                o2[n] += a20 * b0 + a21 * b1 + a22 * b2 + a23 * b3
                o3[n] += a30 * b0 + a31 * b1 + a32 * b2 + a33 * b3
    else:
        k_main = 0
    for r in range(rows):
        o = out[m0 + r]
        for k in range(k_main, K):
            x = a[m0 + r, k]
            wk = w[k]
            for n in range(n_lo, N):
                o[n] += x * wk[n]


@numba.njit(inline="always", cache=True)
def finish_tile(c0, c1, c2, c3, n0, N, out, o, res, has_res, bias, act1, act2):
    """Epilogue and store of a tile's four rows ``c<r>`` (runs of vectors from column n0),
    the first at flat offset ``o`` of ``out`` (row length N; ``res`` alike); ``act<k>``
    from ``epilogue.vector_activations``."""
    finish_run(c0, n0, out, o, res, has_res, bias, act1, act2)
    finish_run(c1, n0, out, o + N, res, has_res, bias, act1, act2)
    finish_run(c2, n0, out, o + 2 * N, res, has_res, bias, act1, act2)
    finish_run(c3, n0, out, o + 3 * N, res, has_res, bias, act1, act2)


@numba.njit(inline="always", cache=True)
def _tile(a, w, w_row, w_col, N, out, res, has_res, m0, n0, bias, act1, act2, vectors):
    """out[m0:m0+4, n0:n0+vectors*LANES] = epilogue(a[m0:m0+4] @ w[:, those columns]), with
    ``out`` and ``res`` flat (row length N) and ``w`` flat, its row k's columns from
    ``w[k * w_row + w_col]`` (``w`` itself, or a panel of it); ``vectors`` a compile-time constant."""
    c0 = c1 = c2 = c3 = zeros_run(vectors)
    for k in range(a.shape[1]):
        wk = load_run(w, k * w_row + w_col, vectors)
        c0 = fma_run(splat(a[m0, k]), wk, c0)
        c1 = fma_run(splat(a[m0 + 1, k]), wk, c1)
        c2 = fma_run(splat(a[m0 + 2, k]), wk, c2)
        c3 = fma_run(splat(a[m0 + 3, k]), wk, c3)
    finish_tile(c0, c1, c2, c3, n0, N, out, m0 * N + n0, res, has_res, bias, act1, act2)


@numba.njit(inline="always", cache=True, fastmath=FAST)
def gemm_rows(a, w, out, m0, rows, flat, epilogue, act1, act2):
    """out[m0:m0+rows] = epilogue(a[m0:m0+rows] @ w) for 1 <= rows <= ROWS.

    ``out`` and the epilogue's residual are C-contiguous M x N arrays (the residual
    read when has_res); ``flat`` is (w, out, residual) flattened; ``act1, act2`` are
    ``epilogue.vector_activations(epilogue)``.
    """
    N = w.shape[1]
    if rows == ROWS:
        w_flat, out_flat, res_flat = flat
        bias = epilogue[0]
        has_res = epilogue[5]
        n_tiled = N - N % COLUMN_BLOCK
        n_wide = n_tiled - n_tiled % TILE_COLUMNS
        for n0 in range(0, n_wide, TILE_COLUMNS):
            _tile(a, w_flat, N, n0, N, out_flat, res_flat, has_res, m0, n0, bias, act1, act2, TILE_VECTORS)
        for n0 in range(n_wide, n_tiled, LANES):
            _tile(a, w_flat, N, n0, N, out_flat, res_flat, has_res, m0, n0, bias, act1, act2, 1)
        if n_tiled < N:
            leftover_block(a, w, out, m0, ROWS, n_tiled, epilogue)
    else:
        leftover_block(a, w, out, m0, rows, 0, epilogue)


@numba.njit(inline="always", cache=True)
def _pack_panel(w, N, K, n0, width, panel):
    """panel[k * width + j] = w[k * N + n0 + j] for k < K, j < width: columns n0..n0+width-1
    of the flat K x N ``w``, contiguous (``width`` a multiple of LANES)."""
    for k in range(K):
        for j in range(0, width, LANES):
            store(panel, k * width + j, load(w, k * N + n0 + j))


@numba.njit(inline="always", cache=True, fastmath=FAST)
def gemm_panels(a, w, out, m_lo, m_hi, flat, epilogue, act1, act2, panel):
    """out[m_lo:m_hi] = epilogue(a[m_lo:m_hi] @ w), one column panel at a time.

    The same tiles as ``gemm_rows`` (each output the same FMA chain, so the same
    bits), in another order: every 4-row tile of a panel of ``TILE_COLUMNS``
    columns, then the next panel.  Each panel's K x TILE_COLUMNS weights are first
    copied to ``panel`` (at least K * TILE_COLUMNS floats), contiguous, where they
    stay in L1 for all the rows; row by row, the tiles read all of ``w`` (128 KB
    for a 128 x 256 GEMM) from L2 every 4 rows, and a panel left in ``w``, its rows
    a power-of-two stride apart, falls into a few of L1's sets and does not stay.
    """
    K, N = w.shape
    w_flat, out_flat, res_flat = flat
    bias = epilogue[0]
    has_res = epilogue[5]
    n_tiled = N - N % COLUMN_BLOCK
    n_wide = n_tiled - n_tiled % TILE_COLUMNS
    m_tiled = m_hi - (m_hi - m_lo) % ROWS
    for n0 in range(0, n_wide, TILE_COLUMNS):
        _pack_panel(w_flat, N, K, n0, TILE_COLUMNS, panel)
        for m0 in range(m_lo, m_tiled, ROWS):
            _tile(a, panel, TILE_COLUMNS, 0, N, out_flat, res_flat, has_res, m0, n0, bias, act1, act2,
                  TILE_VECTORS)
    for n0 in range(n_wide, n_tiled, LANES):
        _pack_panel(w_flat, N, K, n0, LANES, panel)
        for m0 in range(m_lo, m_tiled, ROWS):
            _tile(a, panel, LANES, 0, N, out_flat, res_flat, has_res, m0, n0, bias, act1, act2, 1)
    if n_tiled < N:
        for m0 in range(m_lo, m_tiled, ROWS):
            leftover_block(a, w, out, m0, ROWS, n_tiled, epilogue)
    if m_tiled < m_hi:
        leftover_block(a, w, out, m_tiled, m_hi - m_tiled, 0, epilogue)


@numba.njit(cache=True, fastmath=FAST)
def leftover_block(a, w, out, m0, rows, n_lo, epilogue):
    """out[m0:m0+rows, n_lo:] = epilogue(a[m0:m0+rows] @ w[:, n_lo:]) by ``accumulate_block``
    and ``finish_block``: what the vector tiles leave (rows mod 4, columns mod ``COLUMN_BLOCK``).

    A function of its own, not inlined: inlined, these loops took about 10 s of each
    kernel's compile (LLVM vectorising them), and they run on a few rows or columns.
    """
    accumulate_block(a, w, out, m0, rows, n_lo, w.shape[1])
    finish_block(out, m0, rows, n_lo, epilogue)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _gemm(a, w, epilogue, out, tasks):
    """``tasks`` runs of whole row tiles (at most one per tile), each by ``gemm_panels``."""
    M, K = a.shape
    act1, act2 = vector_activations(epilogue)
    flat = (w.reshape(-1), out.reshape(-1), epilogue[4].reshape(-1))
    tiles = (M + ROWS - 1) // ROWS
    for task in prange(tasks):
        m_lo = task * tiles // tasks * ROWS
        m_hi = min(M, (task + 1) * tiles // tasks * ROWS)
        panel = np.empty(K * TILE_COLUMNS, np.float32)
        gemm_panels(a, w, out, m_lo, m_hi, flat, epilogue, act1, act2, panel)


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


def gemm(a, w, epilogue, out):
    """out = epilogue(a @ w); see the module and ``epilogue`` docs.

    The epilogue's residual is M x N, read when has_res (any 2-D array otherwise).
    Rows are split between threads in tasks of about ``TASK_ROWS`` rows (whole
    tiles of ``ROWS``), at least one per thread; fewer rows than a tile with a
    reduction of at least two ``K_CHUNK`` split k instead.
    """
    M = a.shape[0]
    if M < ROWS and a.shape[1] >= 2 * K_CHUNK:
        _gemm_split_k(a, w, epilogue, out)
    else:
        tiles = (M + ROWS - 1) // ROWS
        _gemm(a, w, epilogue, out, max(1, min(tiles, max((M + TASK_ROWS - 1) // TASK_ROWS,
                                                         numba.get_num_threads()))))


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
