"""One engine timing one model in a process of its own, for ``tinyface bench``.

    python -m tinyface.tools.worker ENGINE MODEL --batch B --threads T --runs R [--input-size HxW]

ENGINE is tinyface or onnxruntime.  The worker loads MODEL, times its first
run on B random images (uniform in [-1, 1]; for tinyface that run compiles the
Numba kernels or loads them from the cache, the fused inverted-residual block
included), makes WARMUP more runs, then
prints one JSON line: the engine and its version, the first run's seconds
and the median seconds of R runs.  onnxruntime runs a model that declares a
fixed batch size on that many images at a time.
"""
import argparse
import json
import time

import numpy as np

from tinyface.hxw import parse_hxw

WARMUP = 3


def median_time(fn, repeats):
    """The median wall time of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def runner(engine, model, batch, threads, input_size):
    """(run, version): a function making one run of ``model`` on ``batch`` random images."""
    from tinyface.graph.onnx_file import read_model
    from tinyface.tools.inputs import random_feed
    feed = random_feed(read_model(model).inputs, batch, input_size, seed=batch)
    if engine == "tinyface":
        import tinyface
        tinyface.set_num_threads(threads)
        from tinyface.runtime.deferred import bind_all
        loaded = tinyface.load(model)

        def run():
            with bind_all():    # the fastest kernels, as after `tinyface warmup` (runtime/deferred.py)
                return loaded.run(feed)
        return run, tinyface.__version__
    from tinyface.tools.engines import import_onnxruntime, ort_session
    session = ort_session(model, threads)
    declared = session.get_inputs()[0].shape[0]
    step = declared if isinstance(declared, int) and declared > 0 else batch
    parts = [{k: v[i:i + step] for k, v in feed.items()} for i in range(0, batch, step)]
    return (lambda: [session.run(None, part) for part in parts]), import_onnxruntime().__version__


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine", choices=["tinyface", "onnxruntime"])
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--input-size", help="HxW, for models whose input size is free")
    args = ap.parse_args(argv)
    size = parse_hxw(args.input_size) if args.input_size else None
    run, version = runner(args.engine, args.model, args.batch, args.threads, size)
    t = time.perf_counter()
    run()
    first = time.perf_counter() - t
    for _ in range(WARMUP):
        run()
    print(json.dumps({"engine": args.engine, "version": version, "first_s": first,
                      "median_s": median_time(run, args.runs)}))


if __name__ == "__main__":
    main()
