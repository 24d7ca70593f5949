"""The machine's measured peaks, for the roofline shares in ``tinyface bench --per-step``.

* FMA peak (one core): ``CHAINS`` independent chains of fused multiply-adds on
  vectors as wide as the kernels use (``kernels.simd``: the CPU Numba compiles
  for), one register each, ``acc = acc * x + acc``.  The chains fill the
  register file but for the broadcast ``x`` and one spare, so they neither
  spill nor wait on each other's latency (4-5 cycles on two FMA pipes needs at
  least 8-10 chains).  A fixed number of chains gets one or the other wrong on
  some CPU: 8 AVX-512 vectors are 16 AVX2 ones, which with ``x`` do not fit in
  AVX2's 16 registers.
* Memory bandwidth (one core): NumPy copying a 256 MiB array, counting the
  bytes read and written.

Both are the best of 5 runs: what the machine can do, not what it usually does.
"""
import time

import numba
import numpy as np

from tinyface.kernels.simd import CPU, LANES, REGISTERS, fma_run, load_run, splat, store

CHAINS = REGISTERS - 2     # vectors of independent chains: all registers but the broadcast and a spare
REPEATS = 1_000_000
X = 1e-7                   # acc * (1 + X) over REPEATS passes: no overflow, no subnormals


@numba.njit(cache=True)
def _fma_chains(acc, x, repeats):
    """acc = acc * x + acc on CHAINS vectors held in registers, ``repeats`` times."""
    chains = load_run(acc, 0, CHAINS)
    xv = splat(x)
    for _ in range(repeats):
        chains = fma_run(xv, chains, chains)
    for v in range(CHAINS):
        store(acc, v * LANES, chains[v])


def fma_peak_gflops():
    """GFLOP/s of one core: 2 flops per FMA, CHAINS * LANES * REPEATS FMAs per run."""
    acc = np.ones(CHAINS * LANES, np.float32)
    _fma_chains(acc, np.float32(X), 10)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        _fma_chains(acc, np.float32(X), REPEATS)
        best = min(best, time.perf_counter() - t)
    return 2 * CHAINS * LANES * REPEATS / best / 1e9


def fma_target():
    """What the FMA peak is measured on, e.g. "haswell: 14 chains of 8 float32 lanes"."""
    return f"{CPU}: {CHAINS} chains of {LANES} float32 lanes"


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
