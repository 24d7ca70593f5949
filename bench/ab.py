"""A/B of steady-state speed between two source trees of tinyface (two commits checked out).

    python bench/ab.py A_TREE B_TREE [--batches 1 8 32] [--threads 1 2] [--rounds 5] [--model M]
    git worktree add /tmp/before <commit>; python bench/ab.py /tmp/before .

Each measurement is a fresh worker process with ``PYTHONPATH`` set to one tree,
running the bundled MobileFaceNet or ``--model`` (a path in tree B, e.g.
``weights/mobilefacenet-int8.onnx``; the file of tree B, so both run the same
weights): it loads the model, runs it once (JIT compile or cache load, not
timed), then times ``runs`` calls and reports their median.  The trees alternate
A, B, A, B ... for ``rounds`` rounds per (batch, threads), so a slow spell of the
machine falls on both; the table gives the medians of the workers' medians and
the median of the per-round ratios B / A (< 1: B is faster).

The worker is a script of its own, not ``tinyface.tools.worker`` (what
``bench.py`` runs): tree A may be a commit from before that module, so the
worker uses only ``tinyface.load``, ``Model.run`` and ``set_num_threads`` (and
``runtime.deferred.bind_all``, or the older ``runtime.block.fusing``, where the tree has it).

Every tree's kernels are cached beside its own sources, so run this once to
compile both before reading the figures (the first-run column says how long the
first call took in each worker: it should be well under a second when cached).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = """
import json, sys, time
import numpy as np
import tinyface
path, batch, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tinyface.set_num_threads(threads)
model = tinyface.load(path)
x = np.random.default_rng(0).standard_normal((batch, 3, 112, 112)).astype(np.float32)
try:        # trees from the eleventh session on defer two kernels until compiled
    from tinyface.runtime.deferred import bind_all
except ImportError:
    try:    # trees from 2026-12-02 on fuse blocks only once the fused kernel is compiled
        from tinyface.runtime.block import fusing as bind_all
    except ImportError:
        from contextlib import nullcontext as bind_all
with bind_all():
    t = time.perf_counter(); model.run(x); first = time.perf_counter() - t
times = []
for _ in range(runs):
    t = time.perf_counter(); model.run(x); times.append(time.perf_counter() - t)
print(json.dumps({"median_s": float(np.median(times)), "first_s": first,
                  "source": tinyface.__file__}))
"""


def worker(tree, model, batch, threads, runs):
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", WORKER, str(model), str(batch), str(threads), str(runs)],
                         capture_output=True, text=True, env=env, cwd=tree, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["source"].startswith(str(tree)):
        sys.exit(f"worker for {tree} imported tinyface from {result['source']}")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path, help="source tree A (e.g. the commit before)")
    ap.add_argument("b", type=Path, help="source tree B (e.g. the working tree)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=0, help="timed calls per worker (default: ~0.5 s worth)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--model", default="weights/mobilefacenet-relu6-opset18.onnx",
                    help="the model, a path in tree B (default: the bundled fp32 MobileFaceNet)")
    args = ap.parse_args()
    a, b = args.a.resolve(), args.b.resolve()
    model = b / args.model
    rows = []
    print(f"A = {a}\nB = {b}\n")
    print(f"{'batch':>5} {'threads':>7} {'A ms/img':>9} {'B ms/img':>9} {'B/A':>6} {'first A/B s':>12}")
    for th in args.threads:
        for bt in args.batches:
            runs = args.runs or max(10, 200 // bt)
            ra, rb = [], []
            for _ in range(args.rounds):
                ra.append(worker(a, model, bt, th, runs))
                rb.append(worker(b, model, bt, th, runs))
            med = lambda rs, k: float(np.median([r[k] for r in rs]))  # noqa: E731
            row = {"batch": bt, "threads": th, "a_ms_per_image": 1e3 * med(ra, "median_s") / bt,
                   "b_ms_per_image": 1e3 * med(rb, "median_s") / bt,
                   "ratio": float(np.median([y["median_s"] / x["median_s"] for x, y in zip(ra, rb)])),
                   "first_a_s": med(ra, "first_s"), "first_b_s": med(rb, "first_s")}
            rows.append(row)
            print(f"{bt:>5} {th:>7} {row['a_ms_per_image']:>9.3f} {row['b_ms_per_image']:>9.3f} "
                  f"{row['ratio']:>6.3f} {row['first_a_s']:>5.2f}/{row['first_b_s']:<5.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
