"""The bundled int8 MobileFaceNet on tinyface against onnxruntime in fp32 and in int8: README's int8 rows.

    python bench/int8_speed.py [--batches 1 8 32] [--threads 1 2] [--rounds 5] [--json FILE]

For each thread count and batch, three fresh processes per round, in turn
(``tinyface.tools.bench.worker``, as ``bench/bench.py`` runs them): tinyface on
the int8 file, onnxruntime on the same int8 (QDQ) file, onnxruntime on the fp32
file it was made from.  Each makes a first run, warm-up runs and the timed runs
(their median); figures are medians over the rounds, each ratio the median of
the per-round ratios (tinyface int8 / the peer, < 1: tinyface faster).  The
issue's targets: batch 1 on one thread at most 0.6 of onnxruntime fp32's time,
and below 1 against onnxruntime int8 everywhere.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tinyface.tools.bench import RUNS, machine, worker

ROOT = Path(__file__).resolve().parent.parent
INT8 = ROOT / "weights" / "mobilefacenet-int8.onnx"
FP32 = ROOT / "weights" / "mobilefacenet-relu6-opset18.onnx"
ENGINES = (("tinyface int8", "tinyface", INT8), ("onnxruntime int8", "onnxruntime", INT8),
           ("onnxruntime fp32", "onnxruntime", FP32))


def measure(batches, threads, rounds, runs):
    """One row per (threads, batch): each engine's ms per image and tinyface's ratios to both peers."""
    rows = []
    for th in threads:
        for b in batches:
            seconds = {name: [] for name, _, _ in ENGINES}
            for r in range(rounds):
                print(f"batch {b}, {th} thread(s): round {r + 1} of {rounds}", file=sys.stderr, flush=True)
                for name, engine, path in ENGINES:
                    seconds[name].append(worker(engine, path, b, th, runs)["median_s"])
            ours = np.array(seconds["tinyface int8"])
            row = {"batch": b, "threads": th}
            for name, _, _ in ENGINES:
                row[f"{name} ms"] = 1e3 * float(np.median(seconds[name])) / b
            for name in ("onnxruntime int8", "onnxruntime fp32"):
                row[f"ratio to {name}"] = float(np.median(ours / np.array(seconds[name])))
            rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = ap.parse_args()
    rows = measure(args.batches, args.threads, args.rounds, args.runs)
    m = machine()
    print(f"machine: {m['cpu']} ({m['vectors']}), {m['cores']} cores; medians of {args.rounds} rounds, "
          f"ms per face; ratio = tinyface int8 / the peer (< 1: tinyface faster)")
    print(f"{'batch':>5} {'threads':>7} {'tinyface int8':>13} {'ort int8':>9} {'ort fp32':>9} "
          f"{'/ ort int8':>10} {'/ ort fp32':>10}")
    for r in rows:
        print(f"{r['batch']:>5} {r['threads']:>7} {r['tinyface int8 ms']:>13.2f} {r['onnxruntime int8 ms']:>9.2f} "
              f"{r['onnxruntime fp32 ms']:>9.2f} {r['ratio to onnxruntime int8']:>10.2f} "
              f"{r['ratio to onnxruntime fp32']:>10.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
