"""Matrix multiply with a fused epilogue: pointwise 1x1 convs and FC layers.

Layout: ``a`` is M x K (rows are pixels of an NHWC map, or batch rows of an FC
layer), ``w`` is K x N (packed once at load time, output channels contiguous),
``out`` is M x N.  Then ``out[m, n] = epilogue(sum_k a[m, k] * w[k, n])``.

The bulk of ``out`` is computed by the register tile of ``kernels.tiles``
(8 rows x 16 columns whose accumulators stay in registers over all of k: per k,
one vector load of ``w`` feeds 8 fused multiply-adds).  Rows and columns left
over (M mod 8, N mod 16) go through ``accumulate_block``, a loop LLVM
vectorises over n that keeps its accumulators in ``out``.  Blocks of 8 rows are
independent and run in parallel (``prange``); a product with fewer rows than a
tile and a long reduction (an FC layer on a flattened map) splits k instead
(``_gemm_split_k``).

The tile needs LLVM's SLP vectoriser, which Numba leaves off by default (it
once miscompiled other code); ``slp_vectorized`` turns it on only while these
kernels are compiled, and the kernel tests check every shape family against
NumPy.
"""
import threading

import numba
import numpy as np
from numba import prange
from numba.core import config

from tinyface.kernels.epilogue import finish
from tinyface.kernels.tiles import COLS, ROWS, tiles

FAST = {"contract"}   # only fuse a*b+c into one FMA (one rounding); no reassociation
KU = 4     # depth of the k-unrolling in ``accumulate_block``
SMALL = 4  # rows per block in ``accumulate_block``

_SLP_LOCK = threading.Lock()


def slp_vectorized(kernel):
    """Compile the jitted ``kernel`` with LLVM's SLP vectoriser on, so that the
    register tile is vectorised; returns ``kernel`` itself.

    The switch wraps the dispatcher's ``compile``, which Numba calls only when
    no compiled version matches the arguments (it then loads the cache or
    compiles), so a call that finds its version pays nothing.  The lock keeps
    the setting from changing under a compile in another thread.
    """
    compile_plain = kernel.compile

    def compile_with_slp(sig):
        with _SLP_LOCK:
            saved = config.SLP_VECTORIZE
            config.SLP_VECTORIZE = 1
            try:
                return compile_plain(sig)
            finally:
                config.SLP_VECTORIZE = saved
    kernel.compile = compile_with_slp
    return kernel


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


@numba.njit(inline="always", cache=True, fastmath=FAST)
def matmul_rows(a, w, out, m0, rows):
    """out[m0:m0+rows] = a[m0:m0+rows] @ w for 1 <= rows <= ROWS: tiles where they fit."""
    N = w.shape[1]
    if rows == ROWS:
        n_tiles = N - N % COLS
        tiles(a, w, out, m0, n_tiles)
        if n_tiles < N:
            for r0 in range(m0, m0 + ROWS, SMALL):
                accumulate_block(a, w, out, r0, SMALL, n_tiles, N)
    else:
        for r0 in range(m0, m0 + rows, SMALL):
            accumulate_block(a, w, out, r0, min(SMALL, m0 + rows - r0), 0, N)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _gemm(a, w, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    M = a.shape[0]
    blocks = (M + ROWS - 1) // ROWS
    for b in prange(blocks):
        m0 = b * ROWS
        rows = min(ROWS, M - m0)
        matmul_rows(a, w, out, m0, rows)
        finish_block(out, m0, rows, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2)


K_CHUNK = 2048   # reduction rows per parallel task in ``_gemm_split_k``


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _gemm_split_k(a, w, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
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
    finish_block(out, 0, M, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2)


_by_rows = slp_vectorized(_gemm)


def gemm(a, w, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(a @ w); see the module and ``epilogue`` docs.

    ``res`` is an M x N residual read when ``has_res`` (any 2-D array otherwise).
    Rows are split between threads in blocks of ``ROWS``; fewer rows than that
    with a reduction of at least two ``K_CHUNK`` split k instead.
    """
    if a.shape[0] < ROWS and a.shape[1] >= 2 * K_CHUNK:
        _gemm_split_k(a, w, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out)
    else:
        _by_rows(a, w, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out)


@numba.njit(inline="always", cache=True)
def finish_block(out, m0, rows, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2):
    """Apply the epilogue to out[m0:m0+rows] in place (``res`` indexed like ``out``)."""
    for r in range(rows):
        o = out[m0 + r]
        res_row = res[m0 + r] if has_res else res[0]
        for n in range(o.size):
            o[n] = finish(o[n], n, bias, slope1, lo1, hi1, res_row, has_res, slope2, lo2, hi2)
