"""tinyface against onnxruntime on the bundled MobileFaceNet: one table.

    python bench/bench.py [--quick] [--json FILE] [--model M]

Sections (all times are medians; A/B runs are interleaved so a noisy
machine slows both engines alike; JIT compile is excluded from steady state):

1. machine: measured FMA peak of one core and memory bandwidth (bench/peak.py)
2. per kernel (batch 1, one thread): each fused step timed alone, grouped by
   kind and shape, with GFLOP/s (2 x multiply-adds / time), % of the FMA peak
   and GB/s (bytes of input, output and weights / time); then each block's
   three convs alone, as the unfused kernels run them
3. end to end: ms per face for tinyface and onnxruntime, batch 1/8/32 and
   1/2 threads, and the ratio tinyface / onnxruntime (< 1: tinyface faster).
   Each engine runs in a fresh worker process of its own (median of 15 runs
   after 3 warm-ups), and the two alternate 5 times per configuration; the
   figures are medians over those rounds.  (In one process, the two engines'
   thread pools, which both spin for a while after each run, would steal each
   other's cores.)
4. cold start: a fresh process that imports, loads and embeds one face, with
   a warm Numba cache and with an empty one; peak RSS of each
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import peak  # noqa: E402

import tinyface  # noqa: E402
from tinyface.runtime.steps import make_calls  # noqa: E402


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def ort_session(model, threads, profile_prefix=None):
    """An onnxruntime session on ``threads`` threads (0: its default); ``model`` is a path or
    serialized bytes; ``profile_prefix`` turns on onnxruntime's profiler, writing there."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def bound_steps(model, feed):
    """Every step's bound calls for ``feed``, each step on buffers of its own, after one run."""
    env = model.plan.new_env(feed)
    bound = []
    for st in model.steps:
        bound.append(st.bind(env))
        make_calls(bound[-1])
    return bound


def per_kernel(model, repeats):
    """Time every step alone at batch 1 on one thread; group by kind and shape.  Also,
    separately, each block's three convs as the unfused kernels run them (what a block
    does with fewer images than threads), each on the input the block had."""
    tinyface.set_num_threads(1)
    x = np.random.default_rng(0).normal(size=(1, 3) + model.info.input_size).astype(np.float32)
    feed = {model.input_names[0]: x}
    env = model.plan.new_env(feed)
    rows, block_convs = {}, {}
    for st, (ins, outs) in zip(model.steps, model.plan.check(feed)):    # one run, each step on buffers of its own
        if st.kind == "block":
            for conv, (conv_ins, conv_outs) in zip(st.convs, st.conv_shapes(ins)):
                calls = conv.bind(env)
                make_calls(calls)
                _add_timed(block_convs, conv, calls, conv_ins, conv_outs, repeats)
        calls = st.bind(env)
        make_calls(calls)
        _add_timed(rows, st, calls, ins, outs, repeats)
    return rows, block_convs


def _add_timed(rows, st, calls, ins, outs, repeats):
    """Add the median time of ``calls`` (step ``st``), its multiply-adds and bytes (inputs,
    outputs and parameters) to its row, keyed by kind, kernel and output shape."""
    t = median_time(lambda: make_calls(calls), repeats)
    nbytes = 4 * (sum(int(np.prod([1 if d > 2**30 else d for d in s])) for s in ins + outs)) + 4 * st.params()
    key = (st.kind, st.detail().split(" ")[0], "x".join(str(d) for d in outs[0][1:]))
    r = rows.setdefault(key, {"count": 0, "time": 0.0, "macs": 0, "bytes": 0})
    r["count"] += 1
    r["time"] += t
    r["macs"] += st.macs(ins, outs)
    r["bytes"] += nbytes


def print_kernel_rows(rows, total, fma):
    """The per-kernel table: one row per (kind, kernel, output shape), slowest first."""
    print(f"{'kind':11} {'k/s':7} {'output':11} {'n':>2} {'us':>8} {'share':>6} {'GFLOP/s':>8} {'%peak':>6} "
          f"{'GB/s':>6}")
    for (kind, ks, shape), r in sorted(rows.items(), key=lambda kv: -kv[1]["time"]):
        gf = 2 * r["macs"] / r["time"] / 1e9
        print(f"{kind:11} {ks:7} {shape:11} {r['count']:>2} {1e6 * r['time']:>8.0f} {r['time'] / total:>6.1%} "
              f"{gf:>8.1f} {gf / fma:>6.1%} {r['bytes'] / r['time'] / 1e9:>6.1f}")


def end_to_end(path, input_size, batches, threads, rounds):
    """ms per face for both engines: each measured in a fresh worker process of its own,
    alternating tinyface / onnxruntime ``rounds`` times per configuration."""
    out = []
    for th in threads:
        for b in batches:
            tf_t, ort_t = [], []
            for _ in range(rounds):
                tf_t.append(_worker_time("tinyface", path, input_size, b, th))
                ort_t.append(_worker_time("onnxruntime", path, input_size, b, th))
            ratios = np.array(tf_t) / np.array(ort_t)
            out.append({"batch": b, "threads": th, "tinyface_ms_per_face": 1e3 * np.median(tf_t) / b,
                        "onnxruntime_ms_per_face": 1e3 * np.median(ort_t) / b,
                        "ratio": float(np.median(ratios))})
    return out


def _worker_time(engine, path, input_size, batch, threads):
    cmd = [sys.executable, __file__, "--worker", engine, "--model", str(path), "--batch", str(batch),
           "--threads", str(threads), "--input-size", "x".join(map(str, input_size))]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(res.stdout.split()[-1])


def worker(engine, path, input_size, batch, threads, runs=15):
    """Print the median time of ``runs`` calls (after 3 warm-up calls) of one engine."""
    x = np.random.default_rng(batch).normal(size=(batch, 3) + input_size).astype(np.float32)
    if engine == "tinyface":
        tinyface.set_num_threads(threads)
        model = tinyface.load(path)
        run = lambda: model.run(x)  # noqa: E731
    else:
        sess = ort_session(path, threads)
        name = sess.get_inputs()[0].name
        run = (lambda: [sess.run(None, {name: x[i:i + 1]}) for i in range(batch)]) if _fixed_batch(sess) \
            else (lambda: sess.run(None, {name: x}))
    for _ in range(3):
        run()
    print(median_time(run, runs))


def _fixed_batch(sess):
    dim = sess.get_inputs()[0].shape[0]
    return isinstance(dim, int) and dim == 1


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
    ap.add_argument("--worker", choices=["tinyface", "onnxruntime"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--input-size", default="112x112", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.model, tuple(int(v) for v in args.input_size.split("x")),
                      args.batch, args.threads)
    import onnxruntime
    repeats = 7 if args.quick else 21
    model = tinyface.load(args.model)
    model.run(np.zeros((1, 3) + model.info.input_size, np.float32))   # JIT compile / cache load
    fma, bw = peak.fma_peak_gflops(), peak.memory_bandwidth_gbs()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, tinyface {tinyface.__version__}")
    print(f"measured: FMA peak {fma:.0f} GFLOP/s per core, memory bandwidth {bw:.1f} GB/s\n")

    kernels, block_convs = per_kernel(model, repeats)
    total = sum(r["time"] for r in kernels.values())
    print("per kernel (batch 1, 1 thread)")
    print_kernel_rows(kernels, total, fma)
    print(f"sum of steps: {1e3 * total:.2f} ms\n")
    if block_convs:
        print("inside the blocks, each conv alone: the unfused kernels (batch 1, 1 thread; GB/s counts "
              "each conv's own input and output)")
        print_kernel_rows(block_convs, sum(r["time"] for r in block_convs.values()), fma)
        print()

    batches = [1, 32] if args.quick else [1, 8, 32]
    e2e = end_to_end(args.model, model.info.input_size, batches, [1, 2], 3 if args.quick else 5)
    print("end to end (ms per face; each engine in its own process, alternating; ratio = tinyface / onnxruntime)")
    print(f"{'batch':>5} {'threads':>7} {'tinyface':>9} {'onnxruntime':>11} {'ratio':>6} {'tinyface GFLOP/s':>16}")
    macs = sum(r["macs"] for r in kernels.values())
    for r in e2e:
        gf = 2 * macs / (r["tinyface_ms_per_face"] / 1e3) / 1e9
        print(f"{r['batch']:>5} {r['threads']:>7} {r['tinyface_ms_per_face']:>9.2f} "
              f"{r['onnxruntime_ms_per_face']:>11.2f} {r['ratio']:>6.2f} {gf:>16.1f}")

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
    main()
