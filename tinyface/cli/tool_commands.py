"""Tool subcommands, for people who test ops and benchmark kernels: ``compare`` and ``bench``.

* ``compare MODEL`` runs MODEL in tinyface and in a reference engine
  (onnxruntime when installed, else ONNX's reference evaluator) and prints,
  for every fused step, the error of the value it produces.  Exit code 0:
  every step within the tolerance; 1: some step past it (the first is
  marked); 2: an error.
* ``bench [MODEL]`` times MODEL (default: the bundled one) end to end,
  against onnxruntime when installed, and with ``--per-step`` step by step
  against the machine's measured peaks.

Details: docs/compare-and-bench.md.
"""
import json
import math
import sys

from tinyface.cli.options import input_size_option, json_option
from tinyface.errors import TinyfaceError

EXIT_PAST_TOLERANCE = 1


def _positive_ints(text, option):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise TinyfaceError(f"{option} must be positive integers separated by commas, e.g. 1,8,32; got {text!r}")
    return values


def _input_size(args):
    from tinyface.cli.model_commands import parse_input_size
    return parse_input_size(args.input_size) if args.input_size else None


def _finite(value):
    """JSON has no NaN or infinity: such a number becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# ------------------------------------------------------------------ compare

def cmd_compare(args):
    from tinyface.face.model import FaceModel
    from tinyface.tools.compare import compare
    from tinyface.tools.inputs import face_feed, random_feed
    if not args.tolerance > 0:
        raise TinyfaceError(f"--tolerance must be positive, got {args.tolerance}")
    model = FaceModel.load(args.model)
    size = _input_size(args)
    if args.input == ["random"]:
        batch = 1 if args.batch is None else args.batch
        if batch < 1:
            raise TinyfaceError(f"--batch must be positive, got {batch}")
        feed = random_feed(model.graph.inputs, batch, size, args.seed)
        inputs = f"random input (uniform in [-1, 1], seed {args.seed}), batch {batch}"
    else:
        if args.batch is not None:
            raise TinyfaceError("--batch is for random input; with faces the batch is the faces given")
        feed = face_feed(model, args.input, size)
        inputs = f"{len(args.input)} face image{'s' if len(args.input) > 1 else ''}"
    result = compare(model, args.model, feed, args.against, args.tolerance, inputs)
    print(json.dumps(_finite(result.to_dict()), indent=1) if args.json else result.format())
    return 0 if result.first_past is None else EXIT_PAST_TOLERANCE


# ------------------------------------------------------------------ bench

def _progress(text):
    """A one-line progress note on stderr, when it is a terminal."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="" if text else "", file=sys.stderr, flush=True)


def cmd_bench(args):
    import tinyface
    from tinyface.paths import default_model_path
    from tinyface.runtime.model import Model
    from tinyface.tools import bench, peak
    from tinyface.tools.engines import onnxruntime_installed
    from tinyface.tools.inputs import random_feed
    batches = _positive_ints(args.batch, "--batch")
    threads = _positive_ints(args.threads, "--threads")
    bench.check_threads(threads)
    for option in ("rounds", "runs", "repeats"):
        if getattr(args, option) < 1:
            raise TinyfaceError(f"--{option} must be at least 1, got {getattr(args, option)}")
    against = args.against or ("onnxruntime" if onnxruntime_installed() else "none")
    if against == "onnxruntime" and not onnxruntime_installed():
        raise TinyfaceError("--against onnxruntime: onnxruntime is not installed (pip install onnxruntime)")
    against = None if against == "none" else against
    path = args.model or default_model_path()
    model = Model.load(path)
    size = _input_size(args)
    macs = bench.macs_per_image(model.plan, random_feed(model.graph.inputs, 1, size))
    rows, versions = bench.end_to_end(path, batches, threads, against, args.rounds, args.runs, size, _progress)
    result = {"model": str(path), "machine": {**bench.machine(), **versions}, "steps": len(model.steps),
              "macs_per_image": macs, "end_to_end": rows}
    if args.per_step:
        _progress("per step: measuring the machine's peaks")
        result["peak"] = {"fma_gflops_per_core": peak.fma_peak_gflops(),
                          "memory_bandwidth_gbs": peak.memory_bandwidth_gbs()}
        result["per_step"] = []
        before = tinyface.get_num_threads()
        try:
            for th in threads:
                tinyface.set_num_threads(th)
                for b in batches:
                    _progress(f"per step: batch {b}, {th} thread{'s' if th > 1 else ''}")
                    feed = random_feed(model.graph.inputs, b, size, seed=b)
                    result["per_step"].append({"batch": b, "threads": th, "steps": bench.per_step(
                        model.plan, feed, args.repeats, *result["peak"].values())})
        finally:
            tinyface.set_num_threads(before)
    _progress("")
    print(json.dumps(_finite(result), indent=1) if args.json else _format_bench(result, against, args))
    return 0


def _format_bench(result, against, args):
    from tinyface.tools import bench
    m = result["machine"]
    versions = ", ".join(f"{k} {m[k]}" for k in ("numpy", "numba", "tinyface", "onnxruntime") if k in m)
    lines = [f"tinyface bench: {result['model']} ({result['steps']} steps, "
             f"{result['macs_per_image'] / 1e6:.1f}M multiply-adds per image)",
             f"machine: {m['cpu']}" + (f" ({m['vectors']})" if m["vectors"] else "") + f", {m['cores']} cores; "
             f"{versions}", "",
             bench.format_end_to_end(result["end_to_end"], against, result["macs_per_image"], args.runs,
                                     args.rounds)]
    if "peak" in result:
        p = result["peak"]
        lines += ["", f"measured peaks: FMA {p['fma_gflops_per_core']:.0f} GFLOP/s per core, memory bandwidth "
                      f"{p['memory_bandwidth_gbs']:.1f} GB/s (one core copying)"]
        for table in result["per_step"]:
            lines += ["", bench.format_per_step(table["steps"], table["batch"], table["threads"], args.repeats)]
    return "\n".join(lines)


# ------------------------------------------------------------------ parser

def register(sub):
    import numba

    from tinyface.tools.bench import REPEATS, ROUNDS, RUNS
    from tinyface.tools.compare import DEFAULT_TOLERANCE
    from tinyface.tools.engines import ONNX_REFERENCE, ONNXRUNTIME
    c = sub.add_parser("compare", help="compare every fused step of a model with onnxruntime or ONNX's reference",
                       description="Run MODEL in tinyface and in a reference engine and print, for every fused "
                       "step, the ONNX nodes it computes, the shape of its value and that value's max abs "
                       "error, max relative error (max |t - r| / max |r|) and worst cosine over the images. "
                       "Exit code 0: every step within the tolerance; 1: some step past it (the first one "
                       "is marked); 2: an error.")
    c.add_argument("model")
    c.add_argument("--against", choices=[ONNXRUNTIME, ONNX_REFERENCE],
                   help="the reference engine (default: onnxruntime when installed, else onnx-reference)")
    c.add_argument("--input", nargs="+", default=["random"], metavar="random|FACE",
                   help="'random' (default) or aligned face images")
    c.add_argument("--batch", type=int, help="images of random input (default 1)")
    c.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    input_size_option(c)
    c.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"largest max relative error allowed per step (default {DEFAULT_TOLERANCE:g})")
    json_option(c)
    c.set_defaults(run=cmd_compare)

    b = sub.add_parser("bench", help="time a model end to end (against onnxruntime) and step by step",
                       description="Steady-state time per image of MODEL (default: the bundled one) for each "
                       "batch size and thread count, each engine in fresh processes of its own, alternating; "
                       "the first run (JIT compile or cache load) is reported apart. With --per-step, also "
                       "each fused step's time, GFLOP/s and GB/s against the machine's measured peaks. "
                       "Figures from a busy machine are noisy: compare ratios from one run.")
    b.add_argument("model", nargs="?")
    b.add_argument("--batch", default="1,8,32", help="batch sizes (default 1,8,32)")
    threads = "1,2" if numba.config.NUMBA_NUM_THREADS >= 2 else "1"
    b.add_argument("--threads", default=threads, help=f"thread counts (default {threads})")
    b.add_argument("--against", choices=[ONNXRUNTIME, "none"],
                   help="time onnxruntime too (default: when it is installed)")
    b.add_argument("--per-step", action="store_true", help="also time each fused step alone")
    b.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating rounds per row (default {ROUNDS})")
    b.add_argument("--runs", type=int, default=RUNS, help=f"timed runs per process (default {RUNS})")
    b.add_argument("--repeats", type=int, default=REPEATS, help=f"runs of each step with --per-step "
                   f"(default {REPEATS})")
    input_size_option(b)
    json_option(b)
    b.set_defaults(run=cmd_bench)
