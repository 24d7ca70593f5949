"""Save or compare the outputs of every shipped and exported model, bit for bit.

    python bench/bitcheck.py save DIR     # with one tinyface (e.g. main's), write DIR/*.npy
    python bench/bitcheck.py compare DIR  # with another, np.array_equal against DIR

Models: the bundled MobileFaceNet, the three MTCNN nets, and each architecture
``tinyface export`` builds (seeded weights, each paper input size, PReLU and
ReLU).  Inputs are seeded; each model runs at batch 1, 3 and 9 (9 > the run
chunk of 8), on 1 thread and on 2 (``TINYFACE_NUM_THREADS`` is not used: the
count is set per run with ``tinyface.set_num_threads``).  Uses only the public
API (``tinyface.load``, ``Model.run``), which both sides share.
"""
import sys
from pathlib import Path

import numpy as np

import tinyface
from tinyface.models import PAPER_INPUT_SIZES, build
from tinyface.paths import weights_dir

BATCHES = (1, 3, 9)


def models():
    """(name, model source, input shape past the batch) of every model checked."""
    yield "bundled", None, (3, 112, 112)
    for net, size in (("pnet", (3, 37, 53)), ("rnet", (3, 24, 24)), ("onet", (3, 48, 48))):
        yield net, weights_dir() / "mtcnn" / f"{net}.onnx", size
    for arch, sizes in PAPER_INPUT_SIZES.items():
        for h, w in sizes:
            for act in ("prelu", "relu"):
                yield f"{arch}-{h}x{w}-{act}", build(arch, (h, w), seed=3, activation=act), (3, h, w)


def outputs():
    """(key, array) of every model, batch and thread count."""
    for name, source, shape in models():
        model = tinyface.load(source)
        for batch in BATCHES:
            x = np.random.default_rng(batch).standard_normal((batch,) + shape).astype(np.float32)
            for threads in (1, 2):
                tinyface.set_num_threads(threads)
                for i, out in enumerate(model.run(x)):
                    yield f"{name}-b{batch}-t{threads}-o{i}", out
        tinyface.set_num_threads(2)


def main(argv):
    mode, folder = argv[1], Path(argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    differ = 0
    count = 0
    for key, out in outputs():
        count += 1
        path = folder / f"{key}.npy"
        if mode == "save":
            np.save(path, out)
        elif not np.array_equal(np.load(path), out):
            differ += 1
            print(f"DIFFERS: {key}", flush=True)
    print(f"{mode}: {count} arrays, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
