"""``tinyface bench``: how fast a model runs, end to end and step by step.

End to end: for each thread count and batch size, tinyface and (when asked
and installed) onnxruntime each run the model in a fresh process of their
own (``tinyface.tools.worker``): one first run, which for tinyface compiles
the Numba kernels or loads them from the cache and is reported on its own,
then WARMUP runs, then the median of ``runs`` timed runs.  The two engines
alternate ``rounds`` times, so that a machine whose speed drifts slows both
alike; the figures are medians over the rounds, the ratio (tinyface /
onnxruntime, < 1: tinyface faster) the median of the per-round ratios.  Each
engine has a process of its own because both keep their thread pools
spinning for a while after a run, and in one process would take each
other's cores.

Per step (``per_step``): in this process, each fused step is bound on
buffers of its own (``Plan.trace``) and its kernel calls are re-run
``repeats`` times alone, on the thread count a run gives it; the median is
the step's time.  Its weights and input stay in cache, so this is the
kernel's own speed, not what it gets in sequence.  GFLOP/s = 2 x its
multiply-adds / time, shown as a share of the measured FMA peak of the
threads it ran on; GB/s = the bytes of its inputs, outputs and parameters /
time, as a share of the measured memory bandwidth of one core copying
(``tinyface.tools.peak``; several threads, or data that stays in cache, can
exceed it).
"""
import json
import os
import platform
import subprocess
import sys

import numba
import numpy as np

from tinyface.errors import TinyfaceError
from tinyface.graph.shapes import BATCH
from tinyface.runtime.binders import make_calls
from tinyface.runtime.threads import launches
from tinyface.tools.worker import median_time

ROUNDS, RUNS, REPEATS = 5, 15, 21


VECTOR_EXTENSIONS = ("avx512f", "avx2", "avx", "sse4_2", "neon", "asimd")     # widest first


def machine():
    """The CPU's name and widest vector extension (from /proc/cpuinfo where there is one),
    its core count and the library versions."""
    name, vectors = platform.processor() or platform.machine(), None
    try:
        with open("/proc/cpuinfo") as f:
            info = [line.split(":", 1) for line in f if ":" in line]
        name = next((v.strip() for k, v in info if k.strip() == "model name"), name)
        flags = set(next((v.split() for k, v in info if k.strip() in ("flags", "Features")), []))
        vectors = next((x for x in VECTOR_EXTENSIONS if x in flags), None)
    except OSError:
        pass
    return {"cpu": name, "vectors": vectors, "cores": os.cpu_count(), "numpy": np.__version__,
            "numba": numba.__version__}


def check_threads(threads):
    limit = numba.config.NUMBA_NUM_THREADS
    bad = [t for t in threads if not 1 <= t <= limit]
    if bad:
        raise TinyfaceError(f"--threads {','.join(map(str, bad))}: this machine runs 1 to {limit} "
                            f"threads (NUMBA_NUM_THREADS)")


def macs_per_image(plan, feed):
    """Multiply-adds of one image through every step."""
    return sum(int(st.macs(ins, outs)) for st, (ins, outs) in zip(plan.steps, plan.check(feed)))


def worker(engine, path, batch, threads, runs, input_size=None):
    """Run ``tinyface.tools.worker`` in a fresh process; returns its JSON result."""
    cmd = [sys.executable, "-m", "tinyface.tools.worker", engine, str(path), "--batch", str(batch),
           "--threads", str(threads), "--runs", str(runs)]
    if input_size:
        cmd += ["--input-size", "x".join(map(str, input_size))]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise TinyfaceError(f"the {engine} worker failed on {path} (batch {batch}, {threads} threads): {last}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def end_to_end(path, batches, threads, against=None, rounds=ROUNDS, runs=RUNS, input_size=None,
               progress=lambda text: None):
    """One row per (threads, batch): ms per image of tinyface (and of onnxruntime, and the
    ratio, when ``against`` is "onnxruntime"), medians over ``rounds`` alternating
    worker processes, and the median first-run seconds of tinyface's workers."""
    rows, versions = [], {}
    for th in threads:
        for b in batches:
            ours, theirs = [], []
            for r in range(rounds):
                progress(f"batch {b}, {th} thread{'s' if th > 1 else ''}: round {r + 1} of {rounds}")
                ours.append(worker("tinyface", path, b, th, runs, input_size))
                if against:
                    theirs.append(worker(against, path, b, th, runs, input_size))
            row = {"batch": b, "threads": th,
                   "tinyface_ms_per_image": 1e3 * float(np.median([o["median_s"] for o in ours])) / b,
                   "first_run_s": float(np.median([o["first_s"] for o in ours]))}
            versions.update({o["engine"]: o["version"] for o in ours + theirs})
            if against:
                row[f"{against}_ms_per_image"] = 1e3 * float(np.median([t["median_s"] for t in theirs])) / b
                row["ratio"] = float(np.median([o["median_s"] / t["median_s"] for o, t in zip(ours, theirs)]))
            rows.append(row)
    return rows, versions


def per_step(plan, feed, repeats=REPEATS, fma_gflops=None, bandwidth_gbs=None):
    """One ``step_row`` per step of ``plan`` on ``feed``."""
    batch = len(next(iter(feed.values())))
    return [step_row(st, calls, ins, outs, batch, ctx.threads, repeats, fma_gflops, bandwidth_gbs)
            for (st, calls, ctx), (ins, outs) in zip(plan.trace(feed), plan.check(feed))]


def step_row(step, calls, ins, outs, batch, threads, repeats=REPEATS, fma_gflops=None, bandwidth_gbs=None):
    """A step's bound ``calls`` timed alone (the median of ``repeats``; ``ins`` and ``outs``
    its shapes from ``Plan.check``): its multiply-adds, bytes moved (inputs, outputs and
    parameters), GFLOP/s and GB/s, and, given the measured peaks, its shares of them.
    A step with no calls (a reshape that is a view) takes no time and moves nothing."""
    shapes = [[batch if d == BATCH else d for d in s] for s in ins + outs]
    macs = int(step.macs(ins, outs)) * batch
    nbytes = 4 * (sum(int(np.prod(s)) for s in shapes) + int(step.params()))
    seconds = 0.0
    if calls:
        with launches():
            seconds = median_time(lambda: make_calls(calls), repeats)
    else:                       # nothing runs (a reshape's view): no time, nothing moved
        nbytes = 0
    row = {"kind": step.kind, "step": step.name, "detail": step.detail(), "output": shapes[len(ins)],
           "threads": threads, "seconds": seconds, "macs": macs, "bytes": nbytes,
           "gflops": 2 * macs / seconds / 1e9 if seconds else 0.0, "gbs": nbytes / seconds / 1e9 if seconds else 0.0}
    if fma_gflops:
        row["peak_share"] = row["gflops"] / (fma_gflops * threads)
    if bandwidth_gbs:
        row["bandwidth_share"] = row["gbs"] / bandwidth_gbs
    return row


def format_end_to_end(rows, against, macs, runs, rounds):
    lines = [f"end to end, ms per image: in each round a fresh process per engine makes a first run, "
             f"3 warm-up runs and {runs} timed runs (their median); figures are medians over {rounds} "
             f"alternating rounds" + (f"; ratio = tinyface / {against} (< 1: tinyface faster)" if against else ""),
             f"{'batch':>5} {'threads':>7} {'tinyface':>9}" + (f" {against:>11} {'ratio':>6}" if against else "")
             + f" {'GFLOP/s':>8} {'first run s':>11}"]
    for r in rows:
        gflops = 2 * macs / (r["tinyface_ms_per_image"] / 1e3) / 1e9
        line = f"{r['batch']:>5} {r['threads']:>7} {r['tinyface_ms_per_image']:>9.2f}"
        if against:
            line += f" {r[f'{against}_ms_per_image']:>11.2f} {r['ratio']:>6.2f}"
        lines.append(line + f" {gflops:>8.1f} {r['first_run_s']:>11.2f}")
    lines.append("first run: tinyface's first run in each process (Numba compiling its kernels, or loading "
                 "them from the cache), not in the times above")
    return "\n".join(lines)


def format_per_step(rows, batch, threads, repeats):
    total = sum(r["seconds"] for r in rows)
    lines = [f"per step, batch {batch}, {threads} thread{'s' if threads > 1 else ''} (each step's kernel calls "
             f"re-run alone, median of {repeats}; thr: the threads it runs on)",
             f"{'#':>3}  {'kind':15} {'output':16} {'thr':>3} {'us':>8} {'share':>6} {'GFLOP/s':>8} {'%peak':>6} "
             f"{'GB/s':>6} {'%bw':>5}  detail [node]"]
    for i, r in enumerate(rows):
        out = "x".join(map(str, r["output"]))
        peak = f"{r['peak_share']:>6.1%}" if "peak_share" in r else f"{'':>6}"
        bw = f"{r['bandwidth_share']:>5.0%}" if "bandwidth_share" in r else f"{'':>5}"
        lines.append(f"{i:>3}  {r['kind']:15} {out:16} {r['threads']:>3} {1e6 * r['seconds']:>8.1f} "
                     f"{r['seconds'] / total:>6.1%} {r['gflops']:>8.1f} {peak} {r['gbs']:>6.1f} {bw}  "
                     f"{r['detail']} [{r['step']}]")
    lines.append(f"sum of steps: {1e3 * total:.3f} ms ({1e3 * total / batch:.3f} ms per image)")
    return "\n".join(lines)
