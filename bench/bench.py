"""tinyface against onnxruntime on the bundled MobileFaceNet: README's Performance table.

    python bench/bench.py [--quick] [--json FILE] [--model M]

The measurements are ``tinyface bench``'s (tinyface.tools.bench, which says
how they are made); this script adds what is specific to this repository's
research and prints one table:

1. machine: the measured FMA peak of one core and memory bandwidth
2. per kernel (batch 1, one thread): the per-step times grouped by kind,
   kernel and output shape, with GFLOP/s, % of the FMA peak and GB/s; then
   each block's three convs alone, as the unfused kernels run them
3. end to end: ms per face for tinyface and onnxruntime, batch 1/8/32 and
   1/2 threads, and the ratio tinyface / onnxruntime (< 1: tinyface faster)
4. cold start: a fresh process that imports, loads and embeds one face, with
   a warm Numba cache and with an empty one; peak RSS of each
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tinyface
from tinyface.runtime.deferred import bind_all
from tinyface.tools import bench, peak
from tinyface.tools.inputs import random_feed

ROOT = Path(__file__).resolve().parent.parent


def per_kernel(model, repeats, fma, bandwidth):
    """Every step timed alone at batch 1 on one thread, grouped by kind, kernel and output
    shape; and, separately, each block's three convs as the unfused kernels run them (what
    a block does with fewer images than threads), each on the input the block had."""
    tinyface.set_num_threads(1)
    feed = random_feed(model.graph.inputs, 1, seed=0)
    steps = bench.per_step(model.plan, feed, repeats, fma, bandwidth)
    convs = []
    for (st, _, ctx), op_binder, (ins, _) in zip(model.plan.trace(feed), model.plan.binders,
                                                  model.plan.check(feed)):
        if st.kind == "block":
            for conv, (conv_ins, conv_outs) in zip(op_binder.convs, st.conv_shapes(ins)):
                convs.append(bench.step_row(conv.op, conv.bind(ctx), conv_ins, conv_outs, 1, 1, repeats, fma,
                                            bandwidth))
    return group(steps), group(convs)


def group(rows):
    """Rows summed by (kind, kernel and stride, output shape)."""
    groups = {}
    for r in rows:
        key = (r["kind"], r["detail"].split(" ")[0], "x".join(map(str, r["output"][1:])))
        g = groups.setdefault(key, {"count": 0, "time": 0.0, "macs": 0, "bytes": 0})
        g["count"] += 1
        g["time"] += r["seconds"]
        g["macs"] += r["macs"]
        g["bytes"] += r["bytes"]
    return groups


def print_kernel_rows(rows, total, fma):
    """The per-kernel table: one row per (kind, kernel, output shape), slowest first."""
    print(f"{'kind':11} {'k/s':7} {'output':11} {'n':>2} {'us':>8} {'share':>6} {'GFLOP/s':>8} {'%peak':>6} "
          f"{'GB/s':>6}")
    for (kind, ks, shape), r in sorted(rows.items(), key=lambda kv: -kv[1]["time"]):
        seconds = max(r["time"], 1e-9)          # a reshape's view can take no measurable time
        gf = 2 * r["macs"] / seconds / 1e9
        print(f"{kind:11} {ks:7} {shape:11} {r['count']:>2} {1e6 * r['time']:>8.0f} {r['time'] / total:>6.1%} "
              f"{gf:>8.1f} {gf / fma:>6.1%} {r['bytes'] / seconds / 1e9:>6.1f}")


# VmHWM (peak resident set) of the child itself: ru_maxrss would include the forked parent's.
COLD = ("import time; t = time.perf_counter(); import {mod}; {body}; s = time.perf_counter() - t; "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; print(s, hwm)")


def cold_start(path, face):
    tf_body = f"m = tinyface.load({str(path)!r}); m.embed([{str(face)!r}])"
    ort_body = (f"import numpy as np; s = onnxruntime.InferenceSession({str(path)!r}, "
                f"providers=['CPUExecutionProvider']); s.run(None, {{'input0': np.zeros((1, 3, 112, 112), np.float32)}})")

    def run(mod, body, env=None):
        res = subprocess.run([sys.executable, "-c", COLD.format(mod=mod, body=body)], capture_output=True,
                             text=True, env={**os.environ, **(env or {})}, check=True)
        secs, rss = res.stdout.split()[-2:]
        return float(secs), int(rss) / 1024
    with tempfile.TemporaryDirectory() as empty:
        first = run("tinyface", tf_body, {"NUMBA_CACHE_DIR": empty})
    run("tinyface", tf_body)                     # make sure the default cache is warm
    warm = [run("tinyface", tf_body) for _ in range(3)]
    ort = [run("onnxruntime", ort_body) for _ in range(3)]
    med = lambda xs, i: float(np.median([x[i] for x in xs]))  # noqa: E731
    return {"tinyface_warm_s": med(warm, 0), "tinyface_warm_rss_mb": med(warm, 1),
            "tinyface_empty_cache_s": first[0], "onnxruntime_s": med(ort, 0),
            "onnxruntime_rss_mb": med(ort, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights/mobilefacenet-relu6-opset18.onnx"))
    ap.add_argument("--quick", action="store_true", help="fewer repeats, batch 1 and 32 only")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    repeats = 7 if args.quick else 21
    model = tinyface.load(args.model)
    model.run(random_feed(model.graph.inputs, 1))          # JIT compile / cache load
    fma, bw = peak.fma_peak_gflops(), peak.memory_bandwidth_gbs()
    batches = [1, 32] if args.quick else [1, 8, 32]
    e2e, versions = bench.end_to_end(args.model, batches, [1, 2], "onnxruntime", 3 if args.quick else 5)
    m = bench.machine()
    print(f"machine: {m['cpu']} ({m['vectors']}), {m['cores']} cores; numpy {m['numpy']}, "
          f"onnxruntime {versions['onnxruntime']}, tinyface {versions['tinyface']}")
    print(f"measured: FMA peak {fma:.0f} GFLOP/s per core ({peak.fma_target()}), "
          f"memory bandwidth {bw:.1f} GB/s\n")

    kernels, block_convs = per_kernel(model, repeats, fma, bw)
    total = sum(r["time"] for r in kernels.values())
    print("per kernel (batch 1, 1 thread)")
    print_kernel_rows(kernels, total, fma)
    print(f"sum of steps: {1e3 * total:.2f} ms\n")
    if block_convs:
        print("inside the blocks, each conv alone: the unfused kernels (batch 1, 1 thread; GB/s counts "
              "each conv's own input and output)")
        print_kernel_rows(block_convs, sum(r["time"] for r in block_convs.values()), fma)
        print()

    macs = sum(r["macs"] for r in kernels.values())
    print(bench.format_end_to_end(e2e, "onnxruntime", macs, bench.RUNS, 3 if args.quick else 5))

    cold = cold_start(args.model, ROOT / "examples/face_a.jpg")
    print("\ncold start (fresh process: import + load + first embedding)")
    print(f"tinyface, warm JIT cache: {cold['tinyface_warm_s']:.2f} s, peak RSS {cold['tinyface_warm_rss_mb']:.0f} MB")
    print(f"tinyface, empty JIT cache (first ever run): {cold['tinyface_empty_cache_s']:.1f} s")
    print(f"onnxruntime: {cold['onnxruntime_s']:.2f} s, peak RSS {cold['onnxruntime_rss_mb']:.0f} MB "
          f"(RSS ratio {cold['tinyface_warm_rss_mb'] / cold['onnxruntime_rss_mb']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "fma_peak_gflops": fma, "memory_bandwidth_gbs": bw, "end_to_end": e2e, "cold_start": cold,
            "kernels": [{"kind": k[0], "kernel": k[1], "output": k[2], **v} for k, v in kernels.items()],
            "block_convs": [{"kind": k[0], "kernel": k[1], "output": k[2], **v} for k, v in block_convs.items()]},
            indent=1))


if __name__ == "__main__":
    with bind_all():        # the fastest kernels, as after `tinyface warmup` (runtime/deferred.py)
        main()
