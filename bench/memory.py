"""Resident memory over many input shapes: the curve behind docs/memory.md.

    python bench/memory.py [--photos 200] [--batches 120] [--every 10] [--json F]

Runs three jobs, each in a fresh process on one thread, printing the resident
set size (RSS, MB) every ``--every`` units and the peak:

- photos: photos of 0.05-4 Mpx at random aspect ratios (the astronaut photo
  resized), alternately through ``tinyface.detect`` and ``model.embed_photo``;
- batches: ``Model.run`` over batch sizes 1-64 in random order;
- threads: eight threads sharing MTCNN's P-Net, each with its own input sizes
  (one unit = one round of the eight).

Run it on two commits to compare them (it uses only the public API).
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, sys
trace = []
def mark():
    with open("/proc/self/statm") as f:
        trace.append(int(f.read().split()[1]) * 4096 / 2**20)
def peak():
    # VmHWM, the high-water mark of this process's own memory (ru_maxrss would carry
    # the parent's over exec: a child of a large pytest process reports the parent's peak)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
"""

JOBS = {
    "photos": """
        import numpy as np
        from PIL import Image
        import tinyface
        model = tinyface.load()
        photo = Image.open("examples/astronaut.jpg").convert("RGB")
        rng = np.random.default_rng(0)
        for i in range({photos}):
            pixels, aspect = rng.uniform(0.05e6, 4e6), rng.uniform(0.6, 1.7)
            w = int((pixels * aspect) ** 0.5)
            image = np.asarray(photo.resize((w, int(pixels / w))))
            if i % 2:
                model.embed_photo(image)
            else:
                tinyface.detect(image)
            mark()
    """,
    "batches": """
        import numpy as np
        import tinyface
        model = tinyface.load()
        rng = np.random.default_rng(0)
        for i in range({batches}):
            n = 1 if i == 0 else int(rng.integers(1, 65))
            model.run(rng.standard_normal((n, 3, 112, 112)).astype(np.float32))
            mark()
    """,
    "threads": """
        import threading
        import numpy as np
        import tinyface
        from tinyface.paths import weights_dir
        model = tinyface.load(weights_dir() / "mtcnn" / "pnet.onnx")
        def work(t, round_):
            rng = np.random.default_rng(100 * round_ + t)
            for _ in range(3):
                h, w = (int(v) for v in rng.integers(40, 400, size=2))
                model.run(rng.standard_normal((1, 3, h, w)).astype(np.float32))
        for round_ in range(25):
            threads = [threading.Thread(target=work, args=(t, round_)) for t in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            mark()
    """,
}


def trace(name, **sizes):
    body = PRELUDE + textwrap.dedent(JOBS[name].format(**sizes))
    body += "\nprint(json.dumps([trace, peak()]))\n"
    env = dict(os.environ, TINYFACE_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", body], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    rss, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return rss, peak


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--batches", type=int, default=120)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--json", help="write the curves here")
    args = p.parse_args()
    results = {}
    for name in JOBS:
        rss, peak = trace(name, photos=args.photos, batches=args.batches)
        results[name] = {"rss_mb": rss, "peak_mb": peak}
        points = " ".join(f"{rss[i]:.0f}" for i in range(0, len(rss), args.every))
        print(f"{name:8s} RSS every {args.every}: {points} | last {rss[-1]:.0f} | "
              f"peak {peak:.0f} MB ({peak - rss[0]:.0f} over the first unit)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
