"""``tinyface warmup``: compile ahead every kernel a job will need.

    tinyface warmup                        # the bundled model, on aligned faces (embed --aligned)
    tinyface warmup --detector             # and MTCNN: what embed / verify on photos need
    tinyface warmup --int8                 # the bundled model's 8-bit form (jobs run with --int8)
    TINYFACE_CACHE_DIR=/opt/jit tinyface warmup --detector    # e.g. in a Dockerfile

Afterwards a job with the same model, thread count and CPU loads its kernels
from the JIT cache instead of compiling them.  See ``tinyface.tools.warmup``
and docs/packaging.md ("Compiling ahead").
"""
import time

from tinyface.cli.options import apply_threads, int8_option, model_options, model_source


def cmd_warmup(args):
    import numba
    import tinyface
    from tinyface.tools import warmup
    apply_threads(args)
    jobs = numba.config.NUMBA_DEFAULT_NUM_THREADS if args.jobs is None else args.jobs
    if jobs < 1:
        raise tinyface.TinyfaceError(f"--jobs must be at least 1, got {jobs}")
    start = time.perf_counter()
    wanted = warmup.needed(tinyface.load(model_source(args)), args.detector)
    compiled = warmup.compile_ahead(wanted, jobs)
    print(f"{len(wanted)} kernel specialisations ready ({compiled} compiled, {len(wanted) - compiled} "
          f"already cached) in {time.perf_counter() - start:.1f} s; cache: {warmup.cache_folder()}")
    return 0


def register(sub):
    w = sub.add_parser("warmup", help="compile ahead the kernels a job needs (for images, CI, clusters)",
                       description="Compile into the JIT cache every kernel specialisation that "
                                   "embedding faces with the model needs (and, with --detector, "
                                   "detecting them in photos), so that later runs with the same "
                                   "model and thread count start without compiling. The cache "
                                   "folder is TINYFACE_CACHE_DIR when set (docs/packaging.md).")
    model_options(w, "ONNX model the jobs will run (default: the bundled one)",
                  "the thread count the jobs will use (default: all cores)")
    int8_option(w)
    w.add_argument("--detector", action="store_true",
                   help="also MTCNN's nets, resampling and alignment (embed/verify on photos)")
    w.add_argument("--jobs", type=int,
                   help="worker processes compiling at once (default: the cores; 1: in this process)")
    w.set_defaults(run=cmd_warmup)
