"""The machine's measured peaks, for the roofline shares in ``tinyface bench --per-step``.

* FMA peak (one core): a Numba loop of 128 independent multiply-add chains
  held in registers, compiled with fastmath "contract" so that each
  ``a * x + b`` becomes one FMA instruction, on the widest vectors LLVM picks.
* Memory bandwidth (one core): NumPy copying a 256 MiB array, counting the
  bytes read and written.

Both are the best of 5 runs: what the machine can do, not what it usually does.
"""
import time

import numba
import numpy as np

from tinyface import kernels  # noqa: F401  (sets Numba's cache folder before the loop below is defined)

LANES = 128          # floats per pass: 8 AVX-512 registers of independent chains
REPEATS = 1_000_000


@numba.njit(fastmath={"contract"}, cache=True)
def _fma_loop(acc, a, b, repeats):
    # The literal trip count lets LLVM unroll the pass and keep acc in registers.
    for _ in range(repeats):
        for j in range(128):
            acc[j] = acc[j] * a + b
    return acc


def fma_peak_gflops():
    """GFLOP/s of one core: 2 flops per FMA, LANES * REPEATS FMAs per run."""
    acc = np.ones(LANES, np.float32)
    _fma_loop(acc, np.float32(0.999), np.float32(0.001), 10)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        _fma_loop(acc, np.float32(0.999), np.float32(0.001), REPEATS)
        best = min(best, time.perf_counter() - t)
    return 2 * LANES * REPEATS / best / 1e9


def memory_bandwidth_gbs(mib=256):
    """GB/s of one core copying ``mib`` MiB (bytes read + bytes written)."""
    src = np.ones(mib * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best / 1e9
