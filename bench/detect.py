"""Face detection time per photo, at full resolution and with the max_side policy.

    python bench/detect.py [--max-side 640 512 ...] [--repeat 3] [--threads 1] [--json FILE]

The photos are collages of the public-domain astronaut photo (bench/photos.py),
0.2-4 Mpx, one to four faces each, faces 6-30 % of the longer side (what an
ordinary web photo of a few people shows).  Each photo is detected ``repeat``
times per setting after one warm-up run; the table gives the median wall time
and the median CPU time of this process (less disturbed by other processes on
a shared machine), the faces found, and against the full-resolution detection:
how many of its faces are found again (a face matches when each of its five
landmarks lies within 0.2 eye distances) and the largest landmark distance,
in eye distances.  A second table splits the median photo's time by stage:
pyramid levels (resampling), P-Net, R-Net crops and net, O-Net crops and net,
and the rest (boxes, NMS).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import tinyface
from tinyface.face import mtcnn
from tinyface.face.detection import MAX_SIDE, Nets, default_nets, detect_faces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photos import FACE_WIDTH, Paste, collage  # noqa: E402

# (width, height, faces: (face width / longer side, x, y as fractions of the canvas, mirrored, angle))
PHOTOS = [
    (560, 373, [(0.22, 0.5, 0.4, False, 0)]),
    (800, 533, [(0.16, 0.28, 0.42, False, 0), (0.12, 0.72, 0.4, True, 10)]),
    (1024, 683, [(0.1, 0.18, 0.35, False, 0), (0.12, 0.5, 0.45, True, -8), (0.08, 0.82, 0.3, False, 15)]),
    (1280, 853, [(0.3, 0.5, 0.42, False, 5)]),
    (1600, 1067, [(0.07, 0.12, 0.3, False, 0), (0.09, 0.37, 0.55, True, 0),
                  (0.1, 0.63, 0.3, False, -12), (0.07, 0.88, 0.6, True, 6)]),
    (1200, 1600, [(0.18, 0.5, 0.35, True, 0)]),
    (1920, 1080, [(0.08, 0.2, 0.4, False, 0), (0.11, 0.5, 0.45, False, 8), (0.08, 0.8, 0.4, True, 0)]),
    (2048, 1365, [(0.12, 0.27, 0.45, True, -5), (0.15, 0.72, 0.4, False, 0)]),
    (2448, 1632, [(0.06, 0.18, 0.3, False, 0), (0.09, 0.5, 0.5, True, 10), (0.07, 0.82, 0.35, False, -6)]),
]


def photos():
    """(name, uint8 image, number of faces pasted) for each photo of PHOTOS."""
    for width, height, faces in PHOTOS:
        side = max(width, height)
        pastes = [Paste(f * side / (FACE_WIDTH * 512), x * width, y * height, mirror, angle)
                  for f, x, y, mirror, angle in faces]
        yield f"{width}x{height}", collage(width, height, pastes), len(faces)


class Stages:
    """Times (and counts) what the cascade spends, by wrapping its nets and resamplers."""

    NAMES = ("levels", "pnet", "rnet crops", "rnet", "onet crops", "onet", "rest")

    def __init__(self, nets):
        self.nets = Nets(self._timed("pnet", nets.pnet), self._timed("rnet", nets.rnet),
                         self._timed("onet", nets.onet))
        self.reset()

    def reset(self):
        self.seconds = dict.fromkeys(self.NAMES, 0.0)
        self.counts = {"pnet runs": 0, "rnet crops": 0, "onet crops": 0}

    def _timed(self, name, net):
        def run(x):
            start = time.perf_counter()
            out = net(x)
            self.seconds[name] += time.perf_counter() - start
            self.counts["pnet runs" if name == "pnet" else f"{name} crops"] += \
                1 if name == "pnet" else len(x)
            return out
        return run

    def measure(self, image, max_side):
        """Detect once with the cascade's resamplers timed; returns seconds by stage."""
        self.reset()
        net_input = mtcnn.net_input

        def timed_resampling(image, regions, size):     # levels pass (rows, cols), crops one side
            start = time.perf_counter()
            out = net_input(image, regions, size)
            stage = "levels" if np.ndim(size) else "onet crops" if size == 48 else "rnet crops"
            self.seconds[stage] += time.perf_counter() - start
            return out

        mtcnn.net_input = timed_resampling
        try:
            start = time.perf_counter()
            detect_faces(image, self.nets, max_side=max_side)
            total = time.perf_counter() - start
        finally:
            mtcnn.net_input = net_input
        self.seconds["rest"] = total - sum(self.seconds.values())
        return dict(self.seconds, total=total)


def agreement(reference, faces):
    """(faces of ``reference`` found again, largest landmark distance in eye distances)."""
    found, worst = 0, 0.0
    for ref in reference:
        eye = np.linalg.norm(ref.landmarks[0] - ref.landmarks[1])
        distances = [np.linalg.norm(f.landmarks - ref.landmarks, axis=1).max() / eye for f in faces]
        if distances and min(distances) < 0.2:
            found += 1
            worst = max(worst, min(distances))
    return found, worst


def time_detection(image, nets, max_side, repeat):
    detect_faces(image, nets, max_side=max_side)              # warm-up: compile, bind
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        faces = detect_faces(image, nets, max_side=max_side)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return faces, statistics.median(walls), statistics.median(cpus)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-side", type=int, nargs="+", default=[MAX_SIDE],
                        help=f"max_side settings to compare with full resolution (default {MAX_SIDE})")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    tinyface.set_num_threads(args.threads)
    nets = default_nets()
    settings = [None] + args.max_side
    label = {s: "full" if s is None else f"max {s}" for s in settings}
    rows, medians = [], {s: [] for s in settings}
    print(f"threads {args.threads}; wall and CPU ms, median of {args.repeat}; "
          "found = faces (of the full-resolution ones found again), worst landmark distance in eye distances")
    print(f"{'photo':>10} {'Mpx':>4} {'pasted':>6}  " + "  ".join(f"{label[s]:>27}" for s in settings))
    photo_list = list(photos())
    for name, image, pasted in photo_list:
        cells, record = [], {"photo": name, "megapixels": image.shape[0] * image.shape[1] / 1e6,
                             "pasted": pasted}
        reference = None
        for s in settings:
            faces, wall, cpu = time_detection(image, nets, s, args.repeat)
            if reference is None:
                reference = faces
            found, worst = agreement(reference, faces)
            medians[s].append(cpu)
            record[label[s]] = {"wall_ms": 1e3 * wall, "cpu_ms": 1e3 * cpu, "faces": len(faces),
                                "found_again": found, "worst_landmark_eye": worst}
            cells.append(f"{1e3 * wall:5.0f} {1e3 * cpu:5.0f} {len(faces)} ({found}) {worst:6.3f}")
        rows.append(record)
        print(f"{name:>10} {record['megapixels']:4.1f} {pasted:6d}  " + "  ".join(f"{c:>27}" for c in cells),
              flush=True)
    print(f"{'median':>10} {'':>4} {'':>6}  " + "  ".join(
        f"{'':>6}{1e3 * statistics.median(medians[s]):5.0f} ms CPU{'':>11}" for s in settings))

    stages = Stages(nets)
    median_photo = sorted(photo_list, key=lambda p: p[1].shape[0] * p[1].shape[1])[len(photo_list) // 2]
    print(f"\nstages on {median_photo[0]} (wall ms, median of {args.repeat}; counts per detection)")
    print(f"{'':>9} " + " ".join(f"{n:>10}" for n in Stages.NAMES + ("total",)) + "   counts")
    split = {}
    for s in settings:
        stages.measure(median_photo[1], s)
        runs = [stages.measure(median_photo[1], s) for _ in range(args.repeat)]
        split[label[s]] = {n: 1e3 * statistics.median(r[n] for r in runs) for n in runs[0]}
        print(f"{label[s]:>9} " + " ".join(f"{split[label[s]][n]:10.1f}" for n in Stages.NAMES + ("total",))
              + "   " + ", ".join(f"{k} {v}" for k, v in stages.counts.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "photos": rows,
                                               "stages": {"photo": median_photo[0], **split}}, indent=1))


if __name__ == "__main__":
    main()
