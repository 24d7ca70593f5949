"""A/B of detection time between two source trees of tinyface, on bench/detect.py's photos.

    python bench/detect_ab.py A_TREE B_TREE [--max-side 640] [--rounds 3] [--repeat 3]
    git archive <commit> | tar -x -C /tmp/before; python bench/detect_ab.py /tmp/before .

Each measurement is a fresh worker process with ``PYTHONPATH`` set to one tree, on
one thread: it detects every photo of that tree's ``bench/detect.py`` ``repeat``
times after a warm-up and reports each photo's median CPU ms, and the faces.
The trees alternate A, B, A, B ... for ``rounds`` rounds, so a slow spell of a
shared machine falls on both.  Printed: per round the median over the photos
for A and B and their ratio, then the largest difference between the trees'
boxes, scores and landmarks (the same faces are required).  Run once to fill
both trees' JIT caches before reading the figures.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np

WORKER = """
import json, statistics, sys
sys.path.insert(0, sys.argv[1] + "/bench")
import numpy as np
import tinyface
from detect import photos, time_detection
from tinyface.face.detection import default_nets
tinyface.set_num_threads(1)
nets = default_nets()
cpu, faces = [], []
for name, image, _ in photos():
    found, _, seconds = time_detection(image, nets, int(sys.argv[2]), int(sys.argv[3]))
    cpu.append(1e3 * seconds)
    faces.append([[*f.box, f.score, *np.ravel(f.landmarks)] for f in found])
print(json.dumps({"cpu_ms": cpu, "faces": faces}))
"""


def measure(tree, max_side, repeat):
    """One worker's figures for ``tree`` (run in it: ``python -c`` puts the working folder first)."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "-c", WORKER, os.path.abspath(tree), str(max_side), str(repeat)],
                         env=env, cwd=os.path.abspath(tree), check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"one thread, max_side {args.max_side}; median over the photos of each photo's median CPU ms")
    print(f"{'round':>5} {'A ms':>8} {'B ms':>8} {'B/A':>6}")
    for r in range(args.rounds):
        a, b = (measure(tree, args.max_side, args.repeat) for tree in (args.a, args.b))
        ma, mb = statistics.median(a["cpu_ms"]), statistics.median(b["cpu_ms"])
        print(f"{r + 1:5d} {ma:8.1f} {mb:8.1f} {mb / ma:6.2f}", flush=True)
    worst = 0.0
    for fa, fb in zip(a["faces"], b["faces"]):
        if len(fa) != len(fb):
            sys.exit(f"the trees find different faces: {len(fa)} against {len(fb)}")
        if fa:
            worst = max(worst, float(np.abs(np.array(fa) - np.array(fb)).max()))
    print(f"same faces; largest difference in boxes, scores and landmarks: {worst:.3g}")


if __name__ == "__main__":
    main()
