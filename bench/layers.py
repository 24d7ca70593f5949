"""Layer by layer: where tinyface's time goes, next to onnxruntime's.

    python bench/layers.py [--model M] [--runs 200] [--json FILE]

Batch 1, one thread.  Every convolution of the model (1x1, depthwise, dense,
GDConv, the final 1x1 "FC") is timed three ways, each a median over ``runs``:

- alone: the step re-run by itself, so its weights and input stay in cache
  (the kernel's own speed, as in ``tinyface bench --per-step``);
- in sequence: the step inside full runs of the model, with the caches as the
  layers before it leave them;
- onnxruntime: the same layer in onnxruntime's own profiler, in sequence, in a
  process of its own (its fused Conv node's kernel time).

Layers are paired in execution order, and the pairing is checked: both engines
must list the same convolutions with the same output shapes.  A fused
inverted-residual block (kind ``block``) is one step of tinyface's and three
Conv nodes of onnxruntime's; their times are summed.  The
gap between "alone" and "in sequence" is what the layer pays for data that is
no longer in cache -- mostly its weights (the model's 4 MB do not stay in L2).
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import tinyface
from tinyface.runtime.deferred import bind_all
from tinyface.runtime.binders import make_calls
from tinyface.tools.engines import ort_session
from tinyface.tools.worker import median_time

ROOT = Path(__file__).resolve().parent.parent
CONV_KINDS = {"conv": 1, "pointwise": 1, "depthwise": 1, "block": 3}   # step kind -> ONNX Convs in it
WARMUP = 10


def tinyface_layers(path, runs):
    """[(kind, detail, (C, H, W), alone_s, in_sequence_s, convs)] for every conv step, in order."""
    tinyface.set_num_threads(1)
    model = tinyface.load(path)
    x = np.random.default_rng(0).normal(size=(1, 3) + model.info.input_size).astype(np.float32)
    feed = {model.input_names[0]: x}
    binders = model.plan.binders
    checked = model.plan.check(feed)
    seq = defaultdict(list)
    for i, op_binder in enumerate(binders):   # time each step's calls where they run (bound timed; undone below)
        def timed_bind(ctx, bind=op_binder.bind, i=i):
            calls = bind(ctx)

            def timed():
                t = time.perf_counter()
                make_calls(calls)
                seq[i].append(time.perf_counter() - t)
            return [(timed, ())]
        op_binder.bind = timed_bind
    try:
        for _ in range(WARMUP + runs):
            model.run(x)
    finally:
        for op_binder in binders:
            del op_binder.bind
    layers = []
    for i, ((st, calls, _), (_, outs)) in enumerate(zip(model.plan.trace(feed), checked)):
        if st.kind in CONV_KINDS:
            alone = median_time(lambda: make_calls(calls), runs)
            layers.append((st.kind, st.detail().split(" ")[0], tuple(outs[0][1:]), alone,
                           float(np.median(seq[i][WARMUP:])), CONV_KINDS[st.kind]))
    return layers


def ort_worker(path, runs, out_file):
    """Write [(output shape, median kernel seconds)] of onnxruntime's Conv nodes, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(path, 1, profile_prefix=Path(tmp) / "profile")
        inp = sess.get_inputs()[0]
        size = tuple(d for d in inp.shape[2:])
        x = np.random.default_rng(0).normal(size=(1, 3) + size).astype(np.float32)
        for _ in range(WARMUP + runs):
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    durations, shapes = defaultdict(list), {}
    for e in events:
        args = e.get("args", {})
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and args.get("op_name") == "Conv":
            durations[e["name"]].append(e["dur"] * 1e-6)
            shapes[e["name"]] = list(args["output_type_shape"][0].values())[0][1:]
    layers = [(shapes[n], float(np.median(d[WARMUP:]))) for n, d in durations.items()]  # dict keeps run order
    Path(out_file).write_text(json.dumps(layers))


def ort_layers(path, runs):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "layers.json"
        subprocess.run([sys.executable, __file__, "--ort-worker", "--model", str(path), "--runs", str(runs),
                        "--out", str(out)], check=True)
        return [(tuple(s), t) for s, t in json.loads(out.read_text())]


def pair(ours, theirs):
    """onnxruntime's seconds for each of our conv steps: the sum over the Conv nodes it
    stands for, whose last output shape must be the step's (else exit with a message)."""
    paired, i = [], 0
    for kind, _, shape, _, _, convs in ours:
        nodes = theirs[i:i + convs]
        i += convs
        if len(nodes) < convs or nodes[-1][0] != shape:
            sys.exit(f"cannot pair the layers: tinyface's {kind} step with output {shape} against "
                     f"onnxruntime's Conv nodes {[n[0] for n in nodes]}")
        paired.append(sum(t for _, t in nodes))
    if i != len(theirs):
        sys.exit(f"cannot pair the layers: onnxruntime has {len(theirs) - i} Conv nodes more than tinyface")
    return paired


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights/mobilefacenet-relu6-opset18.onnx"))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", help="also write the per-layer results to this JSON file")
    ap.add_argument("--ort-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ort_worker:
        return ort_worker(args.model, args.runs, args.out)
    ours = tinyface_layers(args.model, args.runs)
    theirs = pair(ours, ort_layers(args.model, args.runs))
    groups = {}
    for (kind, kernel, shape, alone, seq, _), ort_t in zip(ours, theirs):
        g = groups.setdefault((kind, kernel, "x".join(map(str, shape))), [0, 0.0, 0.0, 0.0])
        g[0] += 1
        g[1] += alone
        g[2] += seq
        g[3] += ort_t
    print(f"batch 1, 1 thread, medians of {args.runs} runs; us summed over the n layers of each row; "
          "ratio = in sequence / onnxruntime")
    print(f"{'kind':10} {'kernel':7} {'output':11} {'n':>2} {'alone':>7} {'in seq':>7} {'ort':>7} {'ratio':>6}")
    for (kind, kernel, shape), (n, alone, seq, ort_t) in sorted(groups.items(), key=lambda kv: -kv[1][2]):
        print(f"{kind:10} {kernel:7} {shape:11} {n:>2} {alone * 1e6:>7.0f} {seq * 1e6:>7.0f} "
              f"{ort_t * 1e6:>7.0f} {seq / ort_t:>6.2f}")
    alone, seq, ort_t = (sum(g[i] for g in groups.values()) for i in (1, 2, 3))
    convs = sum(o[5] for o in ours)
    print(f"{'all convolutions':21} {convs:>4} {alone * 1e6:>7.0f} {seq * 1e6:>7.0f} {ort_t * 1e6:>7.0f} "
          f"{seq / ort_t:>6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"kind": k, "kernel": kn, "output": list(s), "alone_s": a, "in_sequence_s": q, "onnxruntime_s": t}
             for (k, kn, s, a, q, _), t in zip(ours, theirs)], indent=1))


if __name__ == "__main__":
    with bind_all():        # the fastest kernels, as after `tinyface warmup` (runtime/deferred.py)
        main()
