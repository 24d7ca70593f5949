"""MTCNN's dense convs, each on the engine's existing path and on ``kernels.narrow``, in one process.

    python bench/mtcnn_convs.py [--rounds 15] [--reps 5]

One thread.  The shapes are those of the median benchmark photo at max_side 640
(P-Net on a 257x385 pyramid level; R-Net and O-Net on a chunk of 8 crops, the
engine's ``RUN_CHUNK``), and MobileFaceNet's stem conv for comparison.  Each round times every conv ``reps`` times on both
paths, alternating, and keeps the per-round medians; the table gives the medians
over rounds of those (µs), G multiply-adds/s and the ratio new / old.  The old
path is what ``kernels.conv.conv2d`` picks: direct for 64s of channels and at
least 4 output columns, gathered patches otherwise.  Both paths' outputs are
checked equal within float32 rounding (and printed when equal bit for bit).
"""
import argparse
import statistics
import time

import numpy as np

import tinyface
from tinyface.kernels.conv import conv2d
from tinyface.kernels.narrow import narrow_conv, pad_columns, pad_epilogue

# name, (N, H, W, Ci), Co, kernel[, stride, pad]
CONVS = [
    ("P-Net conv1", (1, 257, 385, 3), 10, 3),
    ("P-Net conv2", (1, 128, 192, 10), 16, 3),
    ("P-Net conv3", (1, 126, 190, 16), 32, 3),
    ("R-Net conv1", (8, 24, 24, 3), 28, 3),
    ("R-Net conv2", (8, 11, 11, 28), 48, 3),
    ("R-Net conv3", (8, 4, 4, 48), 64, 2),
    ("O-Net conv1", (8, 48, 48, 3), 32, 3),
    ("O-Net conv2", (8, 23, 23, 32), 64, 3),
    ("O-Net conv3", (8, 10, 10, 64), 64, 3),
    ("O-Net conv4", (8, 4, 4, 64), 128, 2),
    ("MFN stem", (1, 112, 112, 3), 64, 3, 2, 1),      # MobileFaceNet's first conv: stride 2, pad 1
]


def case(rng, shape, co, k, stride=1, pad=0):
    """(old arguments, new arguments, output shape, multiply-adds) of one conv with PReLU."""
    n, h, w, ci = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    weight = rng.uniform(-1, 1, (k * k * ci, co)).astype(np.float32)
    epilogue = (rng.uniform(-1, 1, co).astype(np.float32), np.full(co, 0.25, np.float32),
                np.float32(-np.inf), np.float32(np.inf), np.zeros((1, 1, 1, 1), np.float32), False,
                np.ones(co, np.float32), np.float32(-np.inf), np.float32(np.inf))
    geometry = (k, k, stride, stride, pad, pad)
    old = (x, np.vstack([weight, np.zeros((-len(weight) % 4, co), np.float32)]), *geometry, *epilogue)
    new = (x, pad_columns(weight), *geometry, pad_epilogue(epilogue))
    return old, new, (n, oh, ow, co), n * oh * ow * co * k * k * ci


def timed(kernel, args, out, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        kernel(*args, out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    tinyface.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = [(name, *case(rng, *conv)) for name, *conv in CONVS]
    rounds = {name: ([], []) for name, *_ in cases}
    same = {}
    for name, old, new, shape, _ in cases:        # compile or load, and compare
        a, b = np.empty(shape, np.float32), np.empty(shape, np.float32)
        conv2d(*old, a)
        narrow_conv(*new, b)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.sqrt(old[1].shape[0]))
        same[name] = np.array_equal(a, b)
    for _ in range(args.rounds):
        for name, old, new, shape, _ in cases:
            out = np.empty(shape, np.float32)
            rounds[name][0].append(timed(conv2d, old, out, args.reps))
            rounds[name][1].append(timed(narrow_conv, new, out, args.reps))
    print(f"one thread; µs, median over {args.rounds} rounds of medians of {args.reps}; GMAC/s")
    print(f"{'conv':>12} {'output':>16} {'MACs':>6} {'old µs':>8} {'GMAC/s':>6} {'new µs':>8} {'GMAC/s':>6}"
          f" {'new/old':>7}  bits")
    for name, _, _, shape, macs in cases:
        t_old, t_new = (statistics.median(r) for r in rounds[name])
        print(f"{name:>12} {'x'.join(map(str, shape)):>16} {macs / 1e6:5.1f}M {1e6 * t_old:8.0f} "
              f"{macs / t_old / 1e9:6.1f} {1e6 * t_new:8.0f} {macs / t_new / 1e9:6.1f} {t_new / t_old:7.2f}  "
              f"{'same' if same[name] else 'differ'}")


if __name__ == "__main__":
    main()
