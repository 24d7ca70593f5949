"""tinyface against onnxruntime on the papers' architectures: one Markdown table.

    python bench/architectures.py [--blocks 15] [--json FILE]

Every architecture of ``tinyface.models`` (MobileFaceNet also at 112x96 and
96x96) is built with seed 0 and timed at batch 1 on one thread (tinyface:
``set_num_threads(1)``; onnxruntime: ``intra_op_num_threads = 1``) on the same
random input. As in bench/bench.py's end-to-end section, JIT compilation and a
warm-up are excluded, and the engines alternate in blocks of 3 runs (a noisy
machine slows both alike); each block's time is the median of its 3 runs, each
engine's time the median over the blocks, and the ratio (tinyface /
onnxruntime, < 1: tinyface faster) the median of the per-block ratios.

The load average (os.getloadavg) before and after is printed with the table:
on a machine busy with other work the absolute times mean little, the ratios
somewhat more.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinyface
from tinyface.models import PAPER_INPUT_SIZES, build, count
from tinyface.tools.engines import ort_session
from tinyface.tools.worker import median_time

ROOT = Path(__file__).resolve().parent.parent
RUNS_PER_BLOCK = 3


def block_time(fn):
    return median_time(fn, RUNS_PER_BLOCK)


def measure(arch, size, blocks):
    proto = build(arch, size, seed=0)
    c = count(proto)
    model = tinyface.load(proto)
    sess = ort_session(proto.SerializeToString(), threads=1)
    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    tf_run = lambda: model.run(x)                                  # noqa: E731
    ort_run = lambda: sess.run(None, {"input": x})                 # noqa: E731
    tf_out, ort_out = tf_run()[0], ort_run()[0]                    # JIT compile / cache load, excluded
    for _ in range(2):                                             # warm-up
        tf_run(), ort_run()
    tf_t, ort_t = [], []
    for _ in range(blocks):                                        # interleaved, blocks of 3 runs
        tf_t.append(block_time(tf_run))
        ort_t.append(block_time(ort_run))
    cos = float(np.sum(tf_out * ort_out) / np.linalg.norm(tf_out) / np.linalg.norm(ort_out))
    return {"architecture": arch, "input": f"{size[0]}x{size[1]}", "params": c.params, "madds": c.madds,
            "tinyface_ms": 1e3 * float(np.median(tf_t)), "onnxruntime_ms": 1e3 * float(np.median(ort_t)),
            "ratio": float(np.median(np.array(tf_t) / np.array(ort_t))),
            "tinyface_ms_min": 1e3 * min(tf_t), "onnxruntime_ms_min": 1e3 * min(ort_t),
            "cosine_vs_onnxruntime": cos}


def git_state():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "tinyface"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, []


def markdown(rows):
    lines = ["| architecture | input | params | MAdds | tinyface ms | onnxruntime ms | ratio |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['architecture']} | {r['input']} | {r['params'] / 1e6:.2f}M | "
                     f"{r['madds'] / 1e6:.1f}M | {r['tinyface_ms']:.2f} | {r['onnxruntime_ms']:.2f} | "
                     f"{r['ratio']:.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=15, help="interleaved blocks of 3 runs per engine (default 15)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    import onnxruntime
    tinyface.set_num_threads(1)
    head, dirty = git_state()
    load_before = os.getloadavg()
    rows = []
    for arch, sizes in PAPER_INPUT_SIZES.items():
        for size in sizes:
            rows.append(measure(arch, size, args.blocks))
            print(f"  {arch} {size[0]}x{size[1]}: tinyface {rows[-1]['tinyface_ms']:.2f} ms, "
                  f"onnxruntime {rows[-1]['onnxruntime_ms']:.2f} ms", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"batch 1, 1 thread, seed-0 weights; median of {args.blocks} interleaved blocks of "
          f"{RUNS_PER_BLOCK} runs; ratio = tinyface / onnxruntime (median of per-block ratios)\n")
    print(markdown(rows))
    fmt = lambda la: ", ".join(f"{v:.2f}" for v in la)            # noqa: E731
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, tinyface {tinyface.__version__}"
          f" (git {head}{', uncommitted changes in ' + ', '.join(dirty) if dirty else ''})")
    print(f"load average (1, 5, 15 min): before {fmt(load_before)}; after {fmt(load_after)}")
    print("outputs: cosine similarity tinyface vs onnxruntime >= "
          f"{min(r['cosine_vs_onnxruntime'] for r in rows):.6f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": rows, "blocks": args.blocks, "runs_per_block": RUNS_PER_BLOCK, "threads": 1, "batch": 1,
            "load_average_before": load_before, "load_average_after": load_after,
            "git_head": head, "uncommitted": dirty, "onnxruntime": onnxruntime.__version__,
            "cpu_count": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
