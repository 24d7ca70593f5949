"""Indexing on a Dask cluster: the workers embed, the client writes.

    from distributed import Client
    import tinyface.distributed
    client = Client("tcp://scheduler:8786")
    tinyface.distributed.index(client, ["/shared/photos"], "people.db")

The client plans as a local run does (:func:`tinyface.gallery.index.plan`:
walk, hash, skip what the gallery holds), submits each batch of files as one
task and commits each result as it arrives, so it is the gallery's only
writer and the store's guarantees hold unchanged.  At most ``in_flight``
tasks (default: two per worker thread) are out at a time, so memory stays
bounded on both sides.  Workers must see the files at the same paths (a
shared filesystem) and have tinyface with the same model: each result says
which model made it, and a batch from another model is refused.

On a worker, the first task loads the model and the detector (once for the
worker process's life); tasks then run one at a time on a lock, each with
Numba's thread count set to the worker's number of threads, so each batch
uses all of them.  So give each worker process the cores it may use as threads
(``dask worker ADDRESS --nworkers 1 --nthreads 8``).

A worker lost mid-job: the scheduler runs its tasks again on another worker.
A task's future resolves once, so its batch is committed once, and a commit
drops files the gallery already holds in any case: nothing is lost or added
twice.  A batch whose workers keep dying (``distributed.scheduler.allowed-failures``,
3 by default) stops the run with an error naming its first file; the batches
committed so far stay, and running again resumes.

Compiled kernels: Numba caches them beside tinyface's sources, or in the
folder ``NUMBA_CACHE_DIR`` names (``TINYFACE_CACHE_DIR`` where tinyface
supports it): set it to a folder all workers share, and the first worker's
compile serves the others.
"""
import os
import threading
import time

from tinyface.errors import TinyfaceError
from tinyface.gallery.index import (DEFAULT_BATCH, IndexReport, commit, count_files,
                                    embed_batch, empty_batch, plan)
from tinyface.gallery.progress import Progress
from tinyface.gallery.store import Gallery

_pipelines = {}                 # per worker process: model source -> FacePipeline
_loading = threading.Lock()
_running = threading.Lock()


def worker_pipeline(model_source):
    """This worker process's pipeline for ``model_source``, loaded on first use."""
    with _loading:
        if model_source not in _pipelines:
            from tinyface.face.pipeline import FacePipeline
            from tinyface.runtime.model import load_model
            _pipelines[model_source] = FacePipeline(load_model(model_source))
        return _pipelines[model_source]


def worker_threads() -> int:
    """The worker's thread count (``--nthreads``), within the cores Numba may use."""
    import numba
    from distributed import get_worker
    return max(1, min(get_worker().state.nthreads, numba.config.NUMBA_NUM_THREADS))


def embed_task(model_source, items, aligned, all_faces):
    """The task a worker runs: :func:`~tinyface.gallery.index.embed_batch` of ``items``
    on all the worker's threads (Numba's thread count is per calling thread, so it is
    set in the task itself)."""
    from tinyface.runtime.threads import set_num_threads
    pipeline = worker_pipeline(model_source)
    with _running:
        set_num_threads(worker_threads())
        return embed_batch(pipeline, items, aligned, all_faces)


def worker_model_path(gallery):
    """How workers find the gallery's model: a path, or None for the bundled one."""
    model = gallery.model_given
    if model is None or isinstance(model, (str, os.PathLike)):
        return None if model is None else os.path.abspath(model)
    if getattr(model, "path", None) is None:
        raise TinyfaceError("distributed indexing needs the model as a file the workers can "
                            "read, not an in-memory model")
    return os.path.abspath(model.path)


def index(client, paths, gallery, identity_from="folder", aligned=False, all_faces=False,
          batch=DEFAULT_BATCH, progress=True, in_flight=None) -> IndexReport:
    """Index the photos under ``paths`` into ``gallery`` (a Gallery or a path) with the
    workers of the Dask ``client``; the arguments are those of
    :func:`tinyface.gallery.index.index`."""
    if not isinstance(gallery, Gallery):
        with Gallery(gallery) as opened:
            return index(client, paths, opened, identity_from, aligned, all_faces, batch,
                         progress, in_flight)
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    start = time.monotonic()
    gallery.check_model()
    source = worker_model_path(gallery)
    report = IndexReport(files=count_files(paths))
    bar = Progress(report.files, enabled=progress)
    limit = in_flight or 2 * max(1, sum(client.nthreads().values()))
    works = plan(gallery, paths, identity_from, batch)
    waiting = as_completed()
    work_of = {}

    def submit_next():
        work = next(works, None)
        while work is not None and not work.items:      # only skipped files or problems
            nothing = empty_batch(gallery.card)
            report.add(work, nothing, len(commit(gallery, work, nothing)))
            work = next(works, None)
        if work is not None:
            future = client.submit(embed_task, source, work.items, aligned, all_faces, pure=False)
            work_of[future.key] = work
            waiting.add(future)

    for _ in range(limit):
        submit_next()
    for future in waiting:
        work = work_of.pop(future.key)
        try:
            result = future.result()
        except KilledWorker:
            first = work.items[0].path if work.items else "(no file)"
            raise TinyfaceError(f"the workers running the batch from {first} kept dying; "
                                f"the batches committed so far are kept: run again to resume") from None
        future.release()
        report.add(work, result, len(commit(gallery, work, result)))
        bar.update(report.handled, report.faces)
        submit_next()
    bar.close()
    report.seconds = time.monotonic() - start
    return report
