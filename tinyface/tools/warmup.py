"""Compiling ahead of a job: what ``tinyface warmup`` does.

A job's first run spends nearly all its time in Numba compiling the kernel
specialisations its steps call: one per kernel and tuple of argument types
(docs/packaging.md, "Compiling ahead").  ``warmup`` compiles them into the JIT
cache before the job, which then only loads them.  In two phases:

1. **Find** the specialisations a job needs by running it *dry*: every
   tinyface kernel, called with argument types it has no specialisation for
   in memory, records ``(kernel, types)`` and returns without compiling or
   running (:func:`recording`).  Steps bind their arguments from shapes alone
   (``runtime.binders``), so a dry run calls the kernels with the types a real
   run would.  What runs dry (:func:`needed`): the model on aligned faces at
   batch 1 and at the thread count (with fewer images than threads an
   inverted-residual block runs as three separate steps, other kernels);
   with the detector, P-Net on every level of the pyramid of a ``MAX_SIDE``
   photo (a conv picks its kernel by the width of its output), R-Net and O-Net
   at those batches, the resampling, the NMS and the alignment warp.
2. **Compile** each of them with ``Dispatcher.compile``: in this process, or
   spread over ``jobs`` worker processes (``spawn``), each compiling into the
   shared cache; this process then loads every one from the cache.  Two
   workers may save specialisations of one kernel (a kernel also saves the
   ``cache=True`` functions it calls), and Numba updates a kernel's cache index
   by read-modify-write, so the workers' saves take turns under one lock.

A command's first run does the same by itself (:func:`first_run`): before its
job, the specialisations the job needs that the cache lacks are compiled side by
side in worker processes, instead of one after another in the command's process.

Kernels are found by walking ``tinyface.kernels``: any Numba dispatcher defined
there.  ``_compile_for_args`` (what a dispatcher calls when no specialisation
matches) and ``_cache`` are Numba internals, stable since Numba 0.2x; they are
used here only, and only while warming up.
"""
import functools
import hashlib
import importlib
import multiprocessing
import os
import pkgutil
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

import tinyface.kernels
from tinyface.errors import TinyfaceError
from tinyface.jit_cache import is_cached
from tinyface.kernels.tuning import COMPILE_FIRST, DEFERRED_FACES
from tinyface.limits import positive_int
from tinyface.progress import Progress
from tinyface.runtime.deferred import bind_all


@functools.cache
def kernels():
    """Every Numba dispatcher defined in ``tinyface.kernels``: ``{(module, name): dispatcher}``."""
    found = {}
    for info in pkgutil.iter_modules(tinyface.kernels.__path__):
        module = importlib.import_module(f"{tinyface.kernels.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                found[(module.__name__, name)] = value
    return found


def _skip(*args):
    return None


@contextmanager
def recording():
    """Within: a kernel called with argument types it has no specialisation for in
    memory adds ``(module, name, types)`` to the yielded dict (an ordered set) and
    returns None, leaving its output buffers as they were."""
    wanted = {}
    found = kernels()

    def recorder(key, dispatcher):
        def record(*args):
            wanted[key + (tuple(dispatcher.typeof_pyval(a) for a in args),)] = None
            return _skip
        return record

    for key, dispatcher in found.items():
        dispatcher._compile_for_args = recorder(key, dispatcher)
    try:
        yield wanted
    finally:
        for dispatcher in found.values():
            del dispatcher._compile_for_args


def needed(model, detector=False, threads=None, batches=None, deferred=True):
    """The ``(module, name, types)`` a job compiles that embeds faces with ``model`` (and
    with ``detector``, finds them in photos) on ``threads`` threads (default: the
    current count), found by running it dry; the model runs at ``batches`` (default: 1
    and the thread count, the two kinds of schedule), the detector's nets at 1 and the
    thread count.  ``deferred``: its ops bind to the deferred kernels, which are compiled
    for them (``runtime.deferred.bind_all``); False: as a job binds them when those may not
    be compiled yet (``runtime.deferred``'s module doc)."""
    if model.info.input_size is None:
        raise TinyfaceError(f"{model.graph.source}: the model's input size is unknown (no metadata "
                            f"and no fixed input shape), so warmup cannot make faces for it")
    h, w = model.info.input_size
    before = numba.get_num_threads()
    threads = threads or before
    net_batches = sorted({1, threads})
    numba.set_num_threads(threads)
    try:
        with recording() as wanted, (bind_all() if deferred else nullcontext()):
            for batch in batches or net_batches:
                model.embed(np.zeros((batch, h, w, 3), np.uint8))
            if detector:
                _detector_dry_run(net_batches)
    finally:
        numba.set_num_threads(before)
    return list(wanted)


def _detector_dry_run(batches):
    from tinyface.face.alignment import warp_affine
    from tinyface.face.detection import MAX_SIDE, default_nets
    from tinyface.face.mtcnn import level_size, net_input, nms, pyramid_scales

    nets = default_nets()
    photo = np.zeros((MAX_SIDE, MAX_SIDE, 3), np.uint8)
    smallest_face = 12          # the finest pyramid detect_faces allows: every level size
    for scale in pyramid_scales(MAX_SIDE, MAX_SIDE, smallest_face, 0.709):
        nets.pnet(np.zeros((1, 3) + level_size(MAX_SIDE, MAX_SIDE, scale), np.float32))
    for b in batches:
        nets.rnet(np.zeros((b, 3, 24, 24), np.float32))
        nets.onet(np.zeros((b, 3, 48, 48), np.float32))
    net_input(photo, np.array([[0.0, 0.0, 48.0, 48.0]]), 48)
    nms(np.zeros((1, 4)), np.ones(1), 0.5)
    warp_affine(photo, np.eye(2, 3), (112, 112))


def _cached(dispatcher, types):
    """Does the JIT cache hold this specialisation?"""
    return dispatcher._cache.load_overload(types, dispatcher.targetctx) is not None


def _ready_marker(model, detector, threads, faces=None):
    """The file in the cache folder that says a job of this kind found every kernel it needs
    in the cache: named by a digest of the model (its fingerprint), the detector flag, the
    thread count, the faces embedded at once, the CPU the code is compiled for and the kernels' sources."""
    from tinyface.gallery.fingerprint import model_card
    from tinyface.jit_cache import kernels_digest
    codegen = next(iter(kernels().values())).targetctx.codegen()
    kind = (model_card(model).fingerprint, bool(detector), threads or numba.get_num_threads(), faces,
            codegen.magic_tuple(), kernels_digest())
    return Path(cache_folder()) / f"tinyface-ready-{hashlib.sha256(repr(kind).encode()).hexdigest()[:32]}"


def compile_jobs():
    """Worker processes a command's first run compiles in: ``TINYFACE_COMPILE_JOBS``, else the
    cores (1: compile in the command's own process, one kernel after another)."""
    text = os.environ.get("TINYFACE_COMPILE_JOBS")
    if text is None:
        return numba.config.NUMBA_DEFAULT_NUM_THREADS
    return positive_int(text, "TINYFACE_COMPILE_JOBS")


def job_batches(faces):
    """The batches ``Model.run`` runs ``faces`` images in (chunks of ``RUN_CHUNK``)."""
    from tinyface.runtime.model import RUN_CHUNK
    return sorted({b for b in (min(faces, RUN_CHUNK), faces % RUN_CHUNK) if b})


def _workers_can_start():
    """Whether ``spawn`` workers may start: each imports the process's main module, which
    runs a script's unguarded top level again.  Safe for tinyface's command line (the
    console script calls ``main`` under a ``__name__`` guard) and where there is no main
    file (``python -c``, a REPL)."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or Path(path).name == "tinyface"


def first_run(model, detector=False, threads=None, faces=None, jobs=None, stream=None):
    """Before a command's job: compile in ``jobs`` worker processes (default: ``compile_jobs()``) the
    specialisations the job needs (see :func:`needed`; with ``faces``, the job embeds that
    many at once: only their batches, not those of :func:`needed`'s default) that the JIT
    cache lacks, when there are at least two; return how many were compiled.  With one job,
    or one missing, or in a program whose main module the workers cannot import safely
    (:func:`_workers_can_start`), the job compiles as it would have.

    A job of fewer than ``tuning.DEFERRED_FACES`` faces does not compile the deferred
    kernels (the fused inverted-residual block, the narrow conv where the GEMM can stand
    in): it runs without them unless the cache has them already (``runtime.deferred``).
    A job of more, or of a number not known ahead (a folder, a dataset), compiles them,
    and the cache keeps them for later runs.

    The first time a kind of job runs on a cache this costs a dry run (about 0.1 s on this
    project's VM); once the cache holds all the job needs, a marker file in the cache folder
    (:func:`_ready_marker`) says so, and later runs only check that the file exists.
    """
    jobs = compile_jobs() if jobs is None else jobs
    marker = _ready_marker(model, detector, threads, faces)
    if marker.exists():
        return 0
    found = kernels()
    wanted = needed(model, detector, threads, job_batches(faces) if faces else None,
                    deferred=faces is None or faces >= DEFERRED_FACES)
    missing = [w for w in wanted if not is_cached(found[w[:2]], w[2])]
    compiled = 0
    if jobs > 1 and len(missing) > 1 and _workers_can_start():
        compiled = compile_ahead(missing, jobs, stream)
        missing = []
    if not missing:
        try:
            marker.write_text("every kernel specialisation this kind of job needs is in this cache\n")
        except OSError:
            pass                # a cache that cannot be written: the check runs again next time
    return compiled


def compile_ahead(wanted, jobs=1, stream=None):
    """Compile (or load from the cache) every ``(module, name, types)`` in ``wanted``;
    return how many were compiled rather than loaded.

    ``jobs`` > 1: those not in the cache yet are first compiled by that many
    ``spawn`` worker processes, the slowest to compile handed out first (``compile_order``);
    this process then loads them all.  As with any ``spawn`` pool, a
    script calling this must do so under ``if __name__ == "__main__":`` (each
    worker imports the script's main module).
    """
    found = kernels()
    compiled = 0
    if jobs > 1:
        missing = sorted((w for w in wanted if not _cached(found[w[:2]], w[2])),
                         key=lambda w: compile_order(w[0], w[1], found[w[:2]]))
        if len(missing) > 1:
            context = multiprocessing.get_context("spawn")
            with Progress("compiling kernels", len(missing), stream=stream) as progress, \
                    context.Pool(min(jobs, len(missing)), _start_worker, (context.Lock(),)) as pool:
                for made in pool.imap_unordered(_compile_in_worker, missing):
                    compiled += made
                    progress.advance()
    with Progress("compiling kernels" if jobs == 1 else "loading kernels", len(wanted), stream=stream) as progress:
        for module, name, types in wanted:
            compiled += _compile(found[(module, name)], types)
            progress.advance()
    return compiled


def compile_order(module, name, dispatcher):
    """Sort key of a kernel for the compile workers: ``tuning.COMPILE_FIRST`` in its order,
    then the other parallel kernels, then the rest."""
    key = f"{module.rsplit('.', 1)[-1]}.{name}"
    if key in COMPILE_FIRST:
        return 0, COMPILE_FIRST.index(key)
    return (1, 0) if dispatcher.targetoptions.get("parallel") else (2, 0)


def _compile(dispatcher, types):
    """Compile or load one specialisation; 1 if it was compiled."""
    misses = sum(dispatcher._cache_misses.values())
    dispatcher.compile(types)
    return sum(dispatcher._cache_misses.values()) - misses


def _start_worker(lock):
    """In a worker: every kernel saves to the cache under the workers' shared lock."""
    for dispatcher in kernels().values():
        def locked(sig, data, save=dispatcher._cache.save_overload):
            with lock:
                save(sig, data)
        dispatcher._cache.save_overload = locked


def _compile_in_worker(item):
    module, name, types = item
    return _compile(kernels()[(module, name)], types)


def cache_folder():
    """Where the kernels' compiled code is kept: ``TINYFACE_CACHE_DIR`` (or ``NUMBA_CACHE_DIR``)
    when set, else the folder Numba chose (see ``tinyface.jit_cache``)."""
    return numba.config.CACHE_DIR or next(iter(kernels().values()))._cache.cache_path
