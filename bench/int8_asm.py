"""Which integer instructions the 8-bit kernels compile to, per target CPU.

    .venv/bin/python bench/int8_asm.py [CPU ...]      (default: haswell alderlake icelake-server znver4)

For each CPU, a fresh process with ``NUMBA_CPU_NAME=<cpu> NUMBA_CPU_FEATURES=``
(the CPU's own features, not the host's: docs/kernels.md) and an empty Numba
cache compiles ``kernels.quantized.qgemm``, ``qgemm_quads`` and ``qdepthwise`` and counts the
multiply-add instructions in their assembly.  Nothing runs: a target this
machine lacks compiles all the same.
"""
import json
import os
import subprocess
import sys
import tempfile

CPUS = ["haswell", "alderlake", "icelake-server", "znver4"]
WATCH = ["vpmaddwd", "pmaddwd", "vpdpwssd", "vpdpbusd", "vpmaddubsw", "vpmulld", "pmulld", "vpaddd"]

PROBE = r"""
import collections, json, re
import numpy as np
from tinyface.kernels import isimd, quantized as Q
from tinyface.kernels.simd import CPU, LANES
F32, I32 = np.float32, np.int32
def epi(n):
    return (np.zeros(n, I32), np.zeros(n, F32), F32(0), F32(255), I32(0), False, I32(0), F32(0), I32(0), F32(0),
            F32(0), F32(0), I32(0))
def sig(fn, *args):
    fn.compile(tuple(__import__("numba").typeof(a) for a in args))
    asm = "\n".join(fn.inspect_asm().values())
    return dict(collections.Counter(m.group(1) for m in re.finditer(r"^\s+(?:\{vex\}\s+)?([a-z0-9]+)\s", asm, re.M)))
g = sig(Q.qgemm, np.zeros((8, 64), np.uint8), np.zeros(64 * 64, np.int16), epi(64), np.zeros(1, np.uint8),
        np.zeros((8, 64), np.uint8))
q = sig(Q.qgemm_quads, np.zeros((8, 64), np.uint8), np.zeros(64 * 64, np.int8), epi(64), np.zeros(1, np.uint8),
        np.zeros((8, 64), np.uint8))
d = sig(Q.qdepthwise, np.zeros((1, 8, 8, 64), np.uint8), I32(0), *Q.pack_depthwise(np.zeros((3, 3, 64), np.int32), 0),
        1, 1, 1, 1, epi(64),
        np.zeros(1, np.uint8), np.zeros((1, 8, 8, 64), np.uint8))
print(json.dumps({"cpu": CPU, "lanes": LANES, "pair_instruction": isimd.PAIR_INSTRUCTION,
                  "quad_instruction": isimd.QUAD_INSTRUCTION, "qgemm": g, "qgemm_quads": q, "qdepthwise": d}))
"""


def probe(cpu):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=cache,
                   TINYFACE_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(cpus):
    print(f"{'cpu':16} {'lanes':>5}  {'pmaddwd / pmaddubsw as':58} {'qgemm':36} {'qgemm_quads':48} qdepthwise")
    for cpu in cpus:
        r = probe(cpu)
        show = lambda counts: ", ".join(f"{k} {counts[k]}" for k in WATCH if counts.get(k))  # noqa: E731
        instructions = f"{r['pair_instruction']} / {r['quad_instruction']}"
        print(f"{r['cpu']:16} {r['lanes']:>5}  {instructions:58} {show(r['qgemm']):36} {show(r['qgemm_quads']):48} "
              f"{show(r['qdepthwise'])}")


if __name__ == "__main__":
    main(sys.argv[1:] or CPUS)
